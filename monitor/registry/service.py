"""Model registration, immutable versions, first activation and deployment history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.db import utcnow
from monitor.errors import Conflict, NotFound
from monitor.registry.models import Deployment, Model, ModelVersion
from monitor.registry.schemas import DeploymentOut, ModelCreate, VersionCreate


def find_model(*, session: Session, name: str) -> Model:
    """The model with that name, or NotFound (no authorization: for other services)."""
    model = session.execute(select(Model).where(Model.name == name)).scalar_one_or_none()
    if model is None:
        raise NotFound(f"unknown model '{name}'")
    return model


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
    return dict(rows.tuples().all())


def model_ids(*, session: Session, names: set[str]) -> dict[str, int]:
    rows = session.execute(select(Model.name, Model.id).where(Model.name.in_(names)))
    return dict(rows.tuples().all())


def create_model(*, session: Session, actor: Actor, data: ModelCreate) -> Model:
    """Register a model (admin)."""
    authorize(actor, Permission.MODELS_WRITE)
    if session.execute(select(Model.id).where(Model.name == data.name)).first():
        raise Conflict(f"model '{data.name}' already exists")
    model = Model(**data.model_dump(), created_by=actor.username, created_at=utcnow())
    session.add(model)
    session.flush()
    audit_service.record(
        session=session, actor=actor, action="model.create", entity="model", entity_id=model.name, after=data.model_dump()
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
        session.execute(select(ModelVersion.id, ModelVersion.version).where(ModelVersion.id.in_(active.values())))
        .tuples()
        .all()
    )
    return {mid: names[vid] for mid, vid in active.items()}


def create_version(*, session: Session, actor: Actor, model_name: str, data: VersionCreate) -> ModelVersion:
    """Register an immutable version (admin); the same version string can never be reused."""
    authorize(actor, Permission.MODELS_WRITE)
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
            select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.created_at, ModelVersion.id)
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


def version_active_at(
    *, session: Session, model: Model, at: datetime | None
) -> tuple[ModelVersion, Deployment] | None:
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
    return [
        DeploymentOut(
            model=model.name,
            version=version,
            activated_at=deployment.activated_at,
            activated_by=deployment.activated_by,
            reason=deployment.reason,
            change_request_id=deployment.change_request_id,
        )
        for deployment, version in rows
    ]
