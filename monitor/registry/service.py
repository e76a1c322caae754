"""Model registration, immutable versions, first activation and deployment history."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from monitor.audit import service as audit_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.db import utcnow
from monitor.errors import Conflict, Invalid, NotFound
from monitor.ingest import phi
from monitor.ingest.models import Inference
from monitor.registry.models import Deployment, Model, ModelVersion
from monitor.registry.schemas import (
    DeploymentOut,
    ModelCreate,
    VersionCreate,
    VersionMismatch,
    VersionMismatchReport,
)


def find_model(*, session: Session, name: str) -> Model:
    """The model with that name, or NotFound (no authorization: for other services)."""
    model = session.execute(select(Model).where(Model.name == name)).scalar_one_or_none()
    if model is None:
        raise NotFound(f"unknown model '{name}'")
    return model


def all_models(*, session: Session) -> list[Model]:
    """Every registered model (no authorization: for scheduled jobs)."""
    return list(session.execute(select(Model).order_by(Model.name)).scalars())


def find_version(*, session: Session, model: Model, version: str) -> ModelVersion:
    found = session.execute(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == version)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"model '{model.name}' has no version '{version}'")
    return found


def version_ids(*, session: Session, model_id: int) -> dict[str, int]:
    """Version string -> id for one model (ingest resolves a batch with one query)."""
    rows = session.execute(select(ModelVersion.version, ModelVersion.id).where(ModelVersion.model_id == model_id))
    return dict(rows.all())


def model_ids(*, session: Session, names: set[str]) -> dict[str, int]:
    rows = session.execute(select(Model.name, Model.id).where(Model.name.in_(names)))
    return dict(rows.all())


def create_model(*, session: Session, actor: Actor, data: ModelCreate) -> Model:
    """Register a model (admin)."""
    authorize(actor, Permission.MODELS_WRITE)
    phi.check_free_text(field="intended_use", value=data.intended_use, record=f"model '{data.name}'")
    if session.execute(select(Model.id).where(Model.name == data.name)).first():
        raise Conflict(f"model '{data.name}' already exists")
    model = Model(**data.model_dump(), created_by=actor.username, created_at=utcnow())
    session.add(model)
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="model.create",
        entity="model",
        entity_id=model.name,
        after=data.model_dump(),
    )
    return model


def list_models(*, session: Session, actor: Actor) -> list[tuple[Model, str | None]]:
    """Every model with its active version string."""
    authorize(actor, Permission.MODELS_READ)
    models = session.execute(select(Model).order_by(Model.name)).scalars().all()
    active = _active_versions(session=session)
    return [(model, active.get(model.id)) for model in models]


def get_model(*, session: Session, actor: Actor, name: str) -> tuple[Model, str | None]:
    authorize(actor, Permission.MODELS_READ)
    model = find_model(session=session, name=name)
    return model, _active_versions(session=session, model_id=model.id).get(model.id)


def _active_versions(*, session: Session, model_id: int | None = None) -> dict[int, str]:
    latest = select(Deployment.model_id, Deployment.version_id, Deployment.id).order_by(
        Deployment.model_id, Deployment.activated_at, Deployment.id
    )
    if model_id is not None:
        latest = latest.where(Deployment.model_id == model_id)
    active: dict[int, int] = {}
    for row in session.execute(latest):
        active[row.model_id] = row.version_id  # later rows win: the newest deployment
    if not active:
        return {}
    names = dict(
        session.execute(select(ModelVersion.id, ModelVersion.version).where(ModelVersion.id.in_(active.values()))).all()
    )
    return {mid: names[vid] for mid, vid in active.items()}


def create_version(*, session: Session, actor: Actor, model_name: str, data: VersionCreate) -> ModelVersion:
    """Register an immutable version (admin); the same version string can never be reused."""
    authorize(actor, Permission.MODELS_WRITE)
    phi.check_free_text(field="training_data", value=data.training_data, record=f"version '{data.version}'")
    model = find_model(session=session, name=model_name)
    exists = session.execute(
        select(ModelVersion.id).where(ModelVersion.model_id == model.id, ModelVersion.version == data.version)
    ).first()
    if exists:
        raise Conflict(f"model '{model_name}' already has version '{data.version}'; versions are immutable")
    version = ModelVersion(model_id=model.id, **data.model_dump(), created_by=actor.username, created_at=utcnow())
    session.add(version)
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="version.create",
        entity="model_version",
        entity_id=f"{model_name}:{data.version}",
        after=data.model_dump(),
    )
    return version


def list_versions(*, session: Session, actor: Actor, model_name: str) -> list[ModelVersion]:
    authorize(actor, Permission.MODELS_READ)
    model = find_model(session=session, name=model_name)
    return list(
        session.execute(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.created_at, ModelVersion.id)
        ).scalars()
    )


def deploy(
    *,
    session: Session,
    actor: Actor,
    model: Model,
    version: ModelVersion,
    reason: str,
    change_request_id: int | None = None,
) -> Deployment:
    """Make a version the active one (callers have checked they may); audited."""
    before = _active_versions(session=session, model_id=model.id).get(model.id)
    deployment = Deployment(
        model_id=model.id,
        version_id=version.id,
        activated_at=utcnow(),
        activated_by=actor.username,
        reason=reason,
        change_request_id=change_request_id,
    )
    session.add(deployment)
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="deployment.activate",
        entity="model",
        entity_id=model.name,
        before={"active_version": before},
        after={"active_version": version.version, "change_request_id": change_request_id},
        reason=reason,
    )
    return deployment


def activate_first(*, session: Session, actor: Actor, model_name: str, version: str, reason: str) -> Deployment:
    """The first activation of a model (admin); later changes go through change requests."""
    authorize(actor, Permission.DEPLOY_FIRST)
    phi.check_free_text(field="reason", value=reason, record=f"activation of '{model_name}'")
    model = find_model(session=session, name=model_name)
    target = find_version(session=session, model=model, version=version)
    if session.execute(select(Deployment.id).where(Deployment.model_id == model.id).limit(1)).first():
        raise Conflict(
            f"model '{model_name}' already has an active version; "
            "changing it needs a change request (rollback or promotion) and its approvals"
        )
    return deploy(session=session, actor=actor, model=model, version=target, reason=reason)


def active_version(*, session: Session, actor: Actor, model_name: str) -> tuple[ModelVersion, Deployment]:
    """The version live now and the deployment that made it live."""
    authorize(actor, Permission.ACTIVE_READ)
    model = find_model(session=session, name=model_name)
    found = version_active_at(session=session, model=model, at=None)
    if found is None:
        raise NotFound(f"model '{model_name}' has no active version yet")
    return found


def version_active_at(*, session: Session, model: Model, at: datetime | None) -> tuple[ModelVersion, Deployment] | None:
    """Which version was live at an instant (now when at is None)."""
    query = (
        select(ModelVersion, Deployment)
        .join(Deployment, Deployment.version_id == ModelVersion.id)
        .where(Deployment.model_id == model.id)
        .order_by(Deployment.activated_at.desc(), Deployment.id.desc())
        .limit(1)
    )
    if at is not None:
        query = query.where(Deployment.activated_at <= at)
    row = session.execute(query).first()
    return None if row is None else (row[0], row[1])


def require_aware(name: str, value: datetime | None) -> datetime | None:
    """The instant in UTC; refuses a naive one (a hospital's local time and UTC differ by hours)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise Invalid(f"{name} must include a timezone, e.g. 2026-11-02T08:14:05Z", details={"field": name})
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{name} is out of range", details={"field": name}) from None


def _deployment_out(model: Model, deployment: Deployment, version: str) -> DeploymentOut:
    return DeploymentOut(
        model=model.name,
        version=version,
        activated_at=deployment.activated_at,
        activated_by=deployment.activated_by,
        reason=deployment.reason,
        change_request_id=deployment.change_request_id,
    )


def deployment_at(*, session: Session, actor: Actor, model_name: str, at: datetime) -> DeploymentOut:
    """The deployment that was live at an instant, or NotFound before the first one."""
    authorize(actor, Permission.MODELS_READ)
    aware = require_aware("at", at)
    assert aware is not None
    at = aware
    model = find_model(session=session, name=model_name)
    found = version_active_at(session=session, model=model, at=at)
    if found is None:
        raise NotFound(f"model '{model_name}' had no active version at {at.isoformat()}")
    version, deployment = found
    return _deployment_out(model, deployment, version.version)


def version_mismatches(
    *, session: Session, actor: Actor, model_name: str, since: datetime | None = None, until: datetime | None = None
) -> VersionMismatchReport:
    """Inferences whose reported version differs from the one active when they occurred.

    One set-based query: the deployment history becomes [activated_at, next activated_at)
    spans, and every inference in the range joins the span it fell in."""
    authorize(actor, Permission.MODELS_READ)
    since, until = require_aware("since", since), require_aware("until", until)
    model = find_model(session=session, name=model_name)
    spans = (
        select(
            Deployment.version_id,
            Deployment.activated_at.label("start_at"),
            func.lead(Deployment.activated_at).over(order_by=(Deployment.activated_at, Deployment.id)).label("end_at"),
        )
        .where(Deployment.model_id == model.id)
        .subquery("spans")
    )
    reported, active = aliased(ModelVersion), aliased(ModelVersion)
    query = (
        select(reported.version, active.version, func.count())
        .select_from(Inference)
        .join(reported, reported.id == Inference.version_id)
        .outerjoin(
            spans,
            and_(
                Inference.occurred_at >= spans.c.start_at,
                or_(spans.c.end_at.is_(None), Inference.occurred_at < spans.c.end_at),
            ),
        )
        .outerjoin(active, active.id == spans.c.version_id)
        .where(Inference.model_id == model.id)
        .group_by(reported.version, active.version)
    )
    if since is not None:
        query = query.where(Inference.occurred_at >= since)
    if until is not None:
        query = query.where(Inference.occurred_at < until)
    rows = session.execute(query).all()
    mismatches = sorted(
        (VersionMismatch(reported_version=r, active_version=a, count=n) for r, a, n in rows if r != a),
        key=lambda m: (-m.count, m.reported_version, m.active_version or ""),
    )
    return VersionMismatchReport(
        model=model.name,
        since=since,
        until=until,
        inferences=sum(n for _, _, n in rows),
        mismatched=sum(m.count for m in mismatches),
        mismatches=mismatches,
    )


def deployment_history(*, session: Session, actor: Actor, model_name: str) -> list[DeploymentOut]:
    """Every deployment of the model, oldest first."""
    authorize(actor, Permission.MODELS_READ)
    model = find_model(session=session, name=model_name)
    rows = session.execute(
        select(Deployment, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == Deployment.version_id)
        .where(Deployment.model_id == model.id)
        .order_by(Deployment.activated_at, Deployment.id)
    ).all()
    return [_deployment_out(model, deployment, version) for deployment, version in rows]
