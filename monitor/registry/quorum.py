"""The quorum of a version change: how many signed approvals a rollback or promotion needs.

The rule binds the person who files a request, so that person's role cannot loosen it: fewer
than two approvals is refused for everyone, changing the number is an admin action of its
own in the audit trail, and a request never needs fewer than two whatever a stored policy says."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.errors import Invalid

MIN_APPROVALS = 2
DEFAULT_APPROVALS = 2


def required_approvals(policy_value: int) -> int:
    """The approvals a new request needs: the policy's number, never below the minimum."""
    return max(policy_value, MIN_APPROVALS)


def check_policy_change(
    *, session: Session, actor: Actor, model_name: str, before: dict[str, Any] | None, after: dict[str, Any]
) -> None:
    """Refuse a quorum below the minimum, and a change of it by anyone but an admin; audit the change."""
    old = int((before or {}).get("approvals_required", DEFAULT_APPROVALS))
    new = int(after.get("approvals_required", DEFAULT_APPROVALS))
    if new < MIN_APPROVALS:
        raise Invalid(
            f"approvals_required must be at least {MIN_APPROVALS}: a rollback or promotion of '{model_name}' "
            f"needs two people besides its requester to sign (got {new})",
            details={"field": "approvals_required", "minimum": MIN_APPROVALS},
        )
    if new == old:
        return
    authorize(actor, Permission.QUORUM_WRITE)
    audit_service.record(
        session=session,
        actor=actor,
        action="policy.quorum_change",
        entity="model",
        entity_id=model_name,
        before={"approvals_required": old},
        after={"approvals_required": new},
    )
