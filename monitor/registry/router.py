"""HTTP routes for models, versions, activation, deployments and change requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, status

from monitor.auth.dependencies import ActorDep
from monitor.db import SessionDep
from monitor.registry import changes, service, webhooks
from monitor.registry.models import Model
from monitor.registry.schemas import (
    ActivateRequest,
    ActiveOut,
    ChangeRequestCreate,
    ChangeRequestOut,
    DecisionCreate,
    DeploymentOut,
    ModelCreate,
    ModelOut,
    VersionCreate,
    VersionMismatchReport,
    VersionOut,
)

router = APIRouter(prefix="/models", tags=["registry"])
change_requests_router = APIRouter(prefix="/change-requests", tags=["change requests"])
# Ids are 32-bit integer columns; a larger number cannot name a request.
ChangeRequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]


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


@router.get("/{model}/deployments", response_model=list[DeploymentOut] | DeploymentOut)
def deployments(
    model: str,
    session: SessionDep,
    actor: ActorDep,
    at: Annotated[datetime | None, Query(description="an instant (with timezone): the deployment live then")] = None,
) -> list[DeploymentOut] | DeploymentOut:
    """Deployment history, oldest first; with `at`, the one deployment live at that instant (404 before the first)."""
    if at is not None:
        return service.deployment_at(session=session, actor=actor, model_name=model, at=at)
    return service.deployment_history(session=session, actor=actor, model_name=model)


@router.get("/{model}/version-mismatches", response_model=VersionMismatchReport)
def version_mismatches(
    model: str,
    session: SessionDep,
    actor: ActorDep,
    since: Annotated[datetime | None, Query(description="occurred_at from (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="occurred_at until (exclusive)")] = None,
) -> VersionMismatchReport:
    """Inferences that reported a version other than the one active when they occurred."""
    return service.version_mismatches(session=session, actor=actor, model_name=model, since=since, until=until)


@change_requests_router.post("", status_code=status.HTTP_201_CREATED, response_model=ChangeRequestOut)
def request_change(body: ChangeRequestCreate, session: SessionDep, actor: ActorDep) -> ChangeRequestOut:
    """Request a rollback or promotion (qa, admin); it needs signed approvals before it executes."""
    return changes.request_change(session=session, actor=actor, data=body)


@change_requests_router.get("", response_model=list[ChangeRequestOut])
def list_change_requests(
    session: SessionDep,
    actor: ActorDep,
    status: Literal["pending", "approved", "rejected", "expired", "executed"] | None = None,
    model: str | None = None,
) -> list[ChangeRequestOut]:
    """Change requests, newest first."""
    return changes.list_change_requests(session=session, actor=actor, status=status, model_name=model)


@change_requests_router.get("/{change_request_id}", response_model=ChangeRequestOut)
def get_change_request(change_request_id: ChangeRequestId, session: SessionDep, actor: ActorDep) -> ChangeRequestOut:
    """One change request with its signatures."""
    return changes.get_change_request(session=session, actor=actor, change_request_id=change_request_id)


@change_requests_router.post("/{change_request_id}/decision", response_model=ChangeRequestOut)
def decide(
    change_request_id: ChangeRequestId,
    body: DecisionCreate,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    actor: ActorDep,
) -> ChangeRequestOut:
    """Approve or reject with an electronic signature (approver, admin; never the requester)."""
    settings = request.app.state.settings
    result = changes.decide(
        session=session, actor=actor, change_request_id=change_request_id, data=body, webhook_url=settings.webhook_url
    )
    if result.refusal is not None:
        # The failed signature or the expiry is on record: commit it, then refuse (decision 0200).
        session.commit()
        raise result.refusal
    if result.notification_id is not None:
        # Background tasks run after the response, hence after the commit.
        background.add_task(
            webhooks.deliver_after_commit, notification_id=result.notification_id, secret=settings.webhook_secret
        )
    return result.change_request
