"""HTTP routes for alerts and the notification outbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from monitor.alerts import service
from monitor.alerts.schemas import (
    AlertNote,
    AlertOut,
    AlertStatus,
    NotificationOut,
    NotificationStatus,
    OccurrenceOut,
    Severity,
)
from monitor.auth.dependencies import ActorDep
from monitor.config import Settings
from monitor.db import SessionDep

router = APIRouter(tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    status: AlertStatus | None = None,
    model: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="model name")] = None,
    severity: Annotated[
        Severity | None, Query(description="info lists the near-misses, which are not incidents (decision 0303)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    members: Annotated[
        bool, Query(description="also list the alerts that belong to an incident (aliases, linked evidence)")
    ] = False,
) -> list[AlertOut]:
    """Incidents (warning, critical), most recently seen first, each with its aliases and linked evidence;
    near-misses (info alerts in no incident) only with severity=info."""
    return service.list_alerts(
        session=session,
        actor=actor,
        status=status,
        model=model,
        severity=severity,
        limit=limit,
        settings=_settings(request),
        members=members,
    )


@router.get("/alerts/{alert_id}", response_model=AlertOut)
def get_alert(alert_id: AlertId, request: Request, session: SessionDep, actor: ActorDep) -> AlertOut:
    """One alert with its evidence and history."""
    return service.get_alert(session=session, actor=actor, alert_id=alert_id, settings=_settings(request))


@router.get("/alerts/{alert_id}/occurrences", response_model=list[OccurrenceOut])
def list_occurrences(alert_id: AlertId, session: SessionDep, actor: ActorDep) -> list[OccurrenceOut]:
    """Every window in which the alert's condition held."""
    return service.list_occurrences(session=session, actor=actor, alert_id=alert_id)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge(alert_id: AlertId, body: AlertNote, request: Request, session: SessionDep, actor: ActorDep) -> AlertOut:
    """Acknowledge (qa, admin): someone is on it."""
    return service.acknowledge(
        session=session, actor=actor, alert_id=alert_id, note=body.note, settings=_settings(request)
    )


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
def resolve(alert_id: AlertId, body: AlertNote, request: Request, session: SessionDep, actor: ActorDep) -> AlertOut:
    """Resolve (qa, admin) with a note; the alert reopens if the condition returns."""
    return service.resolve(session=session, actor=actor, alert_id=alert_id, note=body.note, settings=_settings(request))


@router.get("/notifications", response_model=list[NotificationOut])
def list_notifications(
    session: SessionDep,
    actor: ActorDep,
    status: NotificationStatus | None = None,
    alert_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NotificationOut]:
    """The outbox with every delivery attempt; status=dead lists the dead letters."""
    return service.list_notifications(session=session, actor=actor, status=status, alert_id=alert_id, limit=limit)


@router.post("/notifications/{notification_id}/requeue", status_code=204)
def requeue(notification_id: AlertId, session: SessionDep, actor: ActorDep) -> None:
    """Retry a dead letter (qa, admin), e.g. after the mail server was fixed."""
    service.requeue(session=session, actor=actor, notification_id=notification_id)
