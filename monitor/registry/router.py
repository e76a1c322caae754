"""HTTP routes for models, versions, activation and deployments."""

from __future__ import annotations

from fastapi import APIRouter, status

from monitor.auth.dependencies import ActorDep
from monitor.db import SessionDep
from monitor.registry import service
from monitor.registry.models import Model
from monitor.registry.schemas import (
    ActivateRequest,
    ActiveOut,
    DeploymentOut,
    ModelCreate,
    ModelOut,
    VersionCreate,
    VersionOut,
)

router = APIRouter(prefix="/models", tags=["registry"])


def _model_out(model: Model, active: str | None) -> ModelOut:
    return ModelOut.model_validate(model).model_copy(update={"active_version": active})


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ModelOut)
def create_model(body: ModelCreate, session: SessionDep, actor: ActorDep) -> ModelOut:
    """Register a model (admin)."""
    return _model_out(service.create_model(session=session, actor=actor, data=body), None)


@router.get("", response_model=list[ModelOut])
def list_models(session: SessionDep, actor: ActorDep) -> list[ModelOut]:
    """Every model with its active version."""
    return [_model_out(model, active) for model, active in service.list_models(session=session, actor=actor)]


@router.get("/{model}", response_model=ModelOut)
def get_model(model: str, session: SessionDep, actor: ActorDep) -> ModelOut:
    return _model_out(*service.get_model(session=session, actor=actor, name=model))


@router.post("/{model}/versions", status_code=status.HTTP_201_CREATED, response_model=VersionOut)
def create_version(model: str, body: VersionCreate, session: SessionDep, actor: ActorDep) -> VersionOut:
    """Register an immutable version (admin)."""
    return VersionOut.model_validate(service.create_version(session=session, actor=actor, model_name=model, data=body))


@router.get("/{model}/versions", response_model=list[VersionOut])
def list_versions(model: str, session: SessionDep, actor: ActorDep) -> list[VersionOut]:
    return [VersionOut.model_validate(v) for v in service.list_versions(session=session, actor=actor, model_name=model)]


@router.get("/{model}/active", response_model=ActiveOut)
def active_version(model: str, session: SessionDep, actor: ActorDep) -> ActiveOut:
    """The version inference services should run now."""
    version, deployment = service.active_version(session=session, actor=actor, model_name=model)
    return ActiveOut(
        model=model,
        version=version.version,
        activated_at=deployment.activated_at,
        decision_threshold=version.decision_threshold,
        artifact_sha256=version.artifact_sha256,
        artifact_uri=version.artifact_uri,
    )


@router.post("/{model}/versions/{version}/activate", status_code=status.HTTP_201_CREATED, response_model=DeploymentOut)
def activate(
    model: str, version: str, session: SessionDep, actor: ActorDep, body: ActivateRequest | None = None
) -> DeploymentOut:
    """First deployment only (admin); later changes go through change requests."""
    reason = (body or ActivateRequest()).reason
    deployment = service.activate_first(session=session, actor=actor, model_name=model, version=version, reason=reason)
    return DeploymentOut(
        model=model,
        version=version,
        activated_at=deployment.activated_at,
        activated_by=deployment.activated_by,
        reason=deployment.reason,
        change_request_id=deployment.change_request_id,
    )


@router.get("/{model}/deployments", response_model=list[DeploymentOut])
def deployments(model: str, session: SessionDep, actor: ActorDep) -> list[DeploymentOut]:
    """Deployment history, oldest first."""
    return service.deployment_history(session=session, actor=actor, model_name=model)
