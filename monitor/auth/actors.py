"""Who is acting, and what each role may do. Every service checks here before it acts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from monitor.errors import Forbidden


class Permission(StrEnum):
    MODELS_READ = "read models, checks, metrics and alerts"
    ACTIVE_READ = "read the active version"
    INFERENCES_WRITE = "post inferences"
    OUTCOMES_WRITE = "post outcomes"
    MODELS_WRITE = "register models and versions"
    DEPLOY_FIRST = "activate a model's first version"
    POLICY_WRITE = "edit the monitoring policy"
    QUORUM_WRITE = "change how many approvals a version change needs"
    REFERENCE_WRITE = "upload reference data"
    CHECKS_RUN = "run checks"
    ALERTS_ACT = "acknowledge or resolve alerts"
    CHANGES_REQUEST = "request a version change"
    CHANGES_DECIDE = "approve or reject change requests"
    AUDIT_READ = "read the audit trail"
    USERS_MANAGE = "manage users and API keys"


_READ = {Permission.MODELS_READ, Permission.ACTIVE_READ, Permission.AUDIT_READ}
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "ingest": frozenset({Permission.ACTIVE_READ, Permission.INFERENCES_WRITE, Permission.OUTCOMES_WRITE}),
    "viewer": frozenset(_READ),
    "qa": frozenset(
        _READ
        | {
            Permission.POLICY_WRITE,
            Permission.REFERENCE_WRITE,
            Permission.CHECKS_RUN,
            Permission.ALERTS_ACT,
            Permission.CHANGES_REQUEST,
        }
    ),
    "approver": frozenset(_READ | {Permission.CHANGES_DECIDE}),
    "admin": frozenset(Permission),
}
ROLES = tuple(ROLE_PERMISSIONS)


@dataclass(frozen=True)
class Actor:
    """A user (or the system itself) as services see it: no ORM state, safe to pass around."""

    username: str
    role: str
    user_id: int | None = None
    printed_name: str = ""

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())


# Scheduled jobs and operator commands run on the machine act as the system.
SYSTEM = Actor(username="system", role="admin", printed_name="radmon system")


def authorize(actor: Actor, permission: Permission) -> None:
    """Raise Forbidden unless the actor's role grants the permission."""
    if not actor.can(permission):
        raise Forbidden(f"role '{actor.role}' may not {permission.value}", details={"user": actor.username})
