"""Models, versions, deployments, change requests (rollback, promotion) and the monitoring policy."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from dashboard.data.base import _validated, transaction
from monitor.auth.actors import Actor
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy, PolicyOut
from monitor.config import Settings
from monitor.errors import Conflict, Invalid
from monitor.registry import changes as changes_service
from monitor.registry import service as registry_service
from monitor.registry import webhooks
from monitor.registry.schemas import (
    ChangeRequestCreate,
    ChangeRequestOut,
    DecisionCreate,
    DeploymentOut,
    ModelOut,
    VersionOut,
)

# -- models, versions, deployments -------------------------------------------------------------


@dataclass(frozen=True)
class ModelSummary:
    model: ModelOut
    version_count: int
    last_deployment: DeploymentOut | None


@dataclass(frozen=True)
class ModelDetail:
    model: ModelOut
    versions: list[VersionOut]
    deployments: list[DeploymentOut]


def _model_out(model: object, active_version: str | None) -> ModelOut:
    return ModelOut.model_validate(model).model_copy(update={"active_version": active_version})


def overview(*, actor: Actor) -> list[ModelSummary]:
    """Every model with its active version and its latest deployment."""
    with transaction() as session:
        summaries = []
        for model, active in registry_service.list_models(session=session, actor=actor):
            versions = registry_service.list_versions(session=session, actor=actor, model_name=model.name)
            history = registry_service.deployment_history(session=session, actor=actor, model_name=model.name)
            summaries.append(ModelSummary(_model_out(model, active), len(versions), history[-1] if history else None))
        return summaries


def model_choices(*, actor: Actor) -> list[tuple[str, str]]:
    """(name, display name) of every model, for pickers."""
    with transaction() as session:
        return [(m.name, m.display_name) for m, _ in registry_service.list_models(session=session, actor=actor)]


def model_detail(*, actor: Actor, model_name: str) -> ModelDetail:
    """One model with its versions and its deployment history (oldest first)."""
    with transaction() as session:
        model, active = registry_service.get_model(session=session, actor=actor, name=model_name)
        versions = registry_service.list_versions(session=session, actor=actor, model_name=model_name)
        history = registry_service.deployment_history(session=session, actor=actor, model_name=model_name)
        return ModelDetail(
            model=_model_out(model, active),
            versions=[VersionOut.model_validate(v) for v in versions],
            deployments=history,
        )


def activate_first_version(*, actor: Actor, model_name: str, version: str, reason: str) -> DeploymentOut:
    """Make a model's first version live (admin; the service refuses anyone else and any later change)."""
    with transaction() as session:
        deployment = registry_service.activate_first(
            session=session, actor=actor, model_name=model_name, version=version, reason=reason
        )
        return DeploymentOut(
            model=model_name,
            version=version,
            activated_at=deployment.activated_at,
            activated_by=deployment.activated_by,
            reason=deployment.reason,
            change_request_id=deployment.change_request_id,
        )


# -- change requests (rollback, promotion) and their signatures ----------------------------------


def change_requests(
    *, actor: Actor, model_name: str | None = None, status: str | None = None
) -> list[ChangeRequestOut]:
    """Change requests with their signatures, newest first (status as the service reads it: expiry applied)."""
    with transaction() as session:
        return changes_service.list_change_requests(session=session, actor=actor, model_name=model_name, status=status)


def change_request(*, actor: Actor, change_request_id: int) -> ChangeRequestOut:
    with transaction() as session:
        return changes_service.get_change_request(session=session, actor=actor, change_request_id=change_request_id)


def request_change(
    *, actor: Actor, model_name: str, kind: str, target_version: str, reason: str, alert_id: int | None = None
) -> ChangeRequestOut:
    """File a rollback or promotion (qa, admin); the form's values are validated as the API validates them."""
    create = _validated(
        ChangeRequestCreate,
        {"model": model_name, "kind": kind, "target_version": target_version, "reason": reason, "alert_id": alert_id},
    )
    with transaction() as session:
        return changes_service.request_change(session=session, actor=actor, data=create)


def decide_change_request(
    *,
    actor: Actor,
    change_request_id: int,
    decision: str,
    meaning: str,
    password: str,
    comment: str,
    settings: Settings,
) -> ChangeRequestOut:
    """Sign a decision; the service re-authenticates the signer and switches the deployment at quorum.

    A refused signature (wrong password, lockout, expiry) is recorded and committed before the
    refusal is raised, as the API does (decision 0200); the deployment webhook goes out after commit."""
    body = _validated(
        DecisionCreate, {"decision": decision, "meaning": meaning, "password": password, "comment": comment}
    )
    with transaction() as session:
        result = changes_service.decide(
            session=session,
            actor=actor,
            change_request_id=change_request_id,
            data=body,
            webhook_url=settings.webhook_url,
        )
    if result.refusal is not None:
        raise result.refusal
    if result.notification_id is not None:
        # Delivery retries with pauses: never hold the signer's request open for it.
        threading.Thread(
            target=webhooks.deliver_after_commit,
            kwargs={"notification_id": result.notification_id, "secret": settings.webhook_secret},
            name=f"deployment-webhook-{result.notification_id}",
            daemon=True,
        ).start()
    return result.change_request


# -- monitoring policy -------------------------------------------------------------------------


def policy(*, actor: Actor, model_name: str) -> PolicyOut:
    """The model's monitoring policy (the defaults until one is saved)."""
    with transaction() as session:
        return checks_policy.get_policy(session=session, actor=actor, model_name=model_name)


def policy_json(policy_out: PolicyOut) -> str:
    """The editable part of a policy as pretty JSON (what PUT /models/{model}/policy takes)."""
    editable = MonitoringPolicy.model_validate(policy_out.model_dump(include=set(MonitoringPolicy.model_fields)))
    return json.dumps(editable.model_dump(mode="json"), indent=2)


def parse_policy(text: str | None) -> MonitoringPolicy:
    """A policy from the editor's JSON; Invalid with a {field, reason} per problem, as the API answers."""
    try:
        body = json.loads(text or "")
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise Invalid(reason, details=[{"field": "JSON", "reason": reason}]) from None
    if not isinstance(body, dict):
        reason = "the policy must be a JSON object ({...})"
        raise Invalid(reason, details=[{"field": "JSON", "reason": reason}])
    return _validated(MonitoringPolicy, body)


def save_policy(*, actor: Actor, model_name: str, text: str | None, loaded_at: str | None) -> PolicyOut:
    """Replace the policy from the editor's JSON (qa, admin; audited by the service).

    `loaded_at` is the updated_at the editor was opened with: a policy saved by someone else in
    the meantime is not silently overwritten."""
    new_policy = parse_policy(text)
    with transaction() as session:
        current = checks_policy.get_policy(session=session, actor=actor, model_name=model_name)
        current_at = current.updated_at.isoformat() if current.updated_at else None
        if current_at != (loaded_at or None):
            raise Conflict(
                f"{current.updated_by} saved this policy at {current.updated_at:%Y-%m-%d %H:%M:%S} UTC after you "
                "opened it; reload the page to see their version before saving yours"
            )
        return checks_policy.put_policy(session=session, actor=actor, model_name=model_name, policy=new_policy)
