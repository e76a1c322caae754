"""HTTP routes for the monitoring policy."""

from __future__ import annotations

from fastapi import APIRouter

from monitor.auth.dependencies import ActorDep
from monitor.checks import service
from monitor.checks.schemas import MonitoringPolicy, PolicyOut
from monitor.db import SessionDep

router = APIRouter(tags=["checks"])


@router.get("/models/{model}/policy", response_model=PolicyOut)
def get_policy(model: str, session: SessionDep, actor: ActorDep) -> PolicyOut:
    """The model's monitoring policy (defaults until one is saved)."""
    return service.get_policy(session=session, actor=actor, model_name=model)


@router.put("/models/{model}/policy", response_model=PolicyOut)
def put_policy(model: str, body: MonitoringPolicy, session: SessionDep, actor: ActorDep) -> PolicyOut:
    """Replace the monitoring policy (qa, admin)."""
    return service.put_policy(session=session, actor=actor, model_name=model, policy=body)
