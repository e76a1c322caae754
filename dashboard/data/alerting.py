"""The alerts list, one alert's detail and the actions on it."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.data.base import _validated, transaction
from monitor.alerts import service as alerts_service
from monitor.alerts.schemas import AlertNote, AlertOut, OccurrenceOut
from monitor.auth.actors import Actor
from monitor.config import Settings

# -- alerts ------------------------------------------------------------------------------------

ALERT_LIST_LIMIT = 200
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class AlertFilters:
    """What the alerts page filters on; `active` (the default) is open and acknowledged together."""

    status: str = "active"
    severity: str | None = None
    model: str | None = None

    def query(self) -> dict[str, str]:
        pairs = {
            "status": self.status if self.status != "active" else None,
            "severity": self.severity,
            "model": self.model,
        }
        return {key: value for key, value in pairs.items() if value}


def alerts(*, actor: Actor, filters: AlertFilters, settings: Settings) -> list[AlertOut]:
    """Matching alerts, most severe first, then most recently seen."""
    statuses: list[str | None] = (
        ["open", "acknowledged"]
        if filters.status == "active"
        else [None if filters.status == "all" else filters.status]
    )
    with transaction() as session:
        found = [
            alert
            for status in statuses
            for alert in alerts_service.list_alerts(
                session=session,
                actor=actor,
                status=status,
                severity=filters.severity,
                model=filters.model,
                limit=ALERT_LIST_LIMIT,
                settings=settings,
            )
        ]
    found.sort(key=lambda a: a.last_seen, reverse=True)
    found.sort(key=lambda a: SEVERITY_ORDER.get(a.severity, 9))
    return found


@dataclass(frozen=True)
class AlertDetail:
    alert: AlertOut
    occurrences: list[OccurrenceOut]


def alert_detail(*, actor: Actor, alert_id: int, settings: Settings) -> AlertDetail:
    """One alert with its evidence, history and every window in which it held."""
    with transaction() as session:
        alert = alerts_service.get_alert(session=session, actor=actor, alert_id=alert_id, settings=settings)
        occurrences = alerts_service.list_occurrences(session=session, actor=actor, alert_id=alert_id)
        return AlertDetail(alert, occurrences)


def act_on_alert(*, actor: Actor, alert_id: int, action: str, note: str | None, settings: Settings) -> AlertOut:
    """Acknowledge or resolve with a note (qa, admin); the service audits and notifies."""
    body = _validated(AlertNote, {"note": note or ""})
    act = {"acknowledge": alerts_service.acknowledge, "resolve": alerts_service.resolve}[action]
    with transaction() as session:
        return act(session=session, actor=actor, alert_id=alert_id, note=body.note, settings=settings)
