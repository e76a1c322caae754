"""The dashboard's only door to radmon: every read and write goes through monitor services.

Each function opens its own transaction and acts as the signed-in Actor, so the services
authorize and audit exactly as they do for the API. Results are plain pydantic or dataclass
values, never ORM objects, because the session is closed when the page renders them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.audit.schemas import AuditEventOut
from monitor.auth import service as auth_service
from monitor.auth.actors import Actor, Permission
from monitor.db import get_database
from monitor.errors import Invalid, NotFound
from monitor.registry import service as registry_service
from monitor.registry.schemas import DeploymentOut, ModelOut, VersionOut

AUDIT_PAGE_SIZE = 50


def transaction() -> AbstractContextManager[Session]:
    """One unit of work: commits on success, rolls back on error (tests point it at their session)."""
    return get_database().transaction()


# -- sign-in -----------------------------------------------------------------------------------


def sign_in(*, username: str, password: str) -> Actor | None:
    """The actor for valid credentials of a dashboard role, else None; every outcome is audited."""
    with transaction() as session:
        actor = auth_service.authenticate_password(session=session, username=username, password=password)
        if actor is None:
            return None  # the failure event commits with this transaction
        if not actor.can(Permission.MODELS_READ):
            audit_service.record(
                session=session,
                actor=actor,
                action="auth.login_failed",
                entity="user",
                entity_id=username,
                reason=f"role '{actor.role}' has no dashboard access",
            )
            return None
        audit_service.record(
            session=session, actor=actor, action="auth.login", entity="user", entity_id=username, after={"via": "dashboard"}
        )
        return actor


def active_actor(*, username: str) -> Actor | None:
    """The actor for a signed-in username as the database knows it now (None once disabled)."""
    with transaction() as session:
        try:
            user = auth_service.get_user(session=session, username=username)
        except NotFound:
            return None
        return auth_service.actor_for(user) if user.is_active else None


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


# -- audit trail -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page filters on (exact matches, as the service does)."""

    actor_name: str | None = None
    action: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    since: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        actor_name: str | None = None,
        action: str | None = None,
        entity: str | None = None,
        entity_id: str | None = None,
        since: str | None = None,
    ) -> AuditFilters:
        """Filters from form fields or URL parameters; `since` is a date or an ISO timestamp (UTC if no zone)."""
        since_at = None
        if since and since.strip():
            try:
                since_at = datetime.fromisoformat(since.strip())
            except ValueError:
                raise Invalid(f"'since' must be a date like 2026-01-31; got '{since}'") from None
            if since_at.tzinfo is None:
                since_at = since_at.replace(tzinfo=UTC)

        def clean(value: str | None) -> str | None:
            return value.strip() or None if value else None

        return cls(clean(actor_name), clean(action), clean(entity), clean(entity_id), since_at)

    def service_kwargs(self) -> dict[str, object]:
        return {
            "actor_name": self.actor_name or None,
            "action": self.action or None,
            "entity": self.entity or None,
            "entity_id": self.entity_id or None,
            "since": self.since,
        }

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (export link, shareable page URL)."""
        pairs = {
            "actor": self.actor_name,
            "action": self.action,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "since": self.since.isoformat() if self.since else None,
        }
        return {key: value for key, value in pairs.items() if value}


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEventOut]
    next_before_seq: int | None  # None when this is the oldest page


def audit_events(
    *, actor: Actor, filters: AuditFilters, before_seq: int | None = None, limit: int = AUDIT_PAGE_SIZE
) -> AuditPage:
    """One page of events, newest first; pass next_before_seq back for the next (older) page."""
    with transaction() as session:
        # One extra row tells whether an older page exists without a count query.
        events = audit_service.list_events(
            session=session, actor=actor, before_seq=before_seq, limit=limit + 1, **filters.service_kwargs()
        )
        page = [AuditEventOut.model_validate(e) for e in events[:limit]]
        return AuditPage(events=page, next_before_seq=page[-1].seq if len(events) > limit else None)


def verify_audit(*, actor: Actor) -> audit_service.Verification:
    """Recompute the hash chain from the first event."""
    with transaction() as session:
        return audit_service.verify(session=session, actor=actor)


def audit_csv(*, actor: Actor, filters: AuditFilters) -> Iterator[str]:
    """The matching events as CSV lines, streamed from one read transaction.

    Authorization happens before this returns (the header line is produced eagerly), so a
    refused export fails as a whole instead of starting a 200 response."""
    scope = transaction()
    session = scope.__enter__()
    try:
        lines = audit_service.export_csv(session=session, actor=actor, **filters.service_kwargs())
        header = next(lines)
    except BaseException as exc:
        scope.__exit__(type(exc), exc, exc.__traceback__)
        raise

    def stream() -> Iterator[str]:
        try:
            yield header
            yield from lines
        except BaseException as exc:
            scope.__exit__(type(exc), exc, exc.__traceback__)
            raise
        scope.__exit__(None, None, None)

    return stream()
