"""The adverse-event clock's reads and signed writes for the alerts and overview pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from dashboard.data import base
from monitor.adverse import dossier, service
from monitor.adverse.schemas import AdverseEventOut, ClassifyCreate, JurisdictionOut, ReportedCreate
from monitor.alerts import service as alerts_service
from monitor.alerts.schemas import AlertOut
from monitor.auth.actors import Actor
from monitor.config import Settings
from monitor.errors import Invalid, NotFound


@dataclass(frozen=True)
class Dossier:
    file_name: str
    pdf: bytes
    sha256: str


def adverse_event(*, actor: Actor, alert_id: int, settings: Settings) -> AdverseEventOut | None:
    """The incident's adverse event, or None when it is not classified."""
    try:
        with base.transaction() as session:
            return service.get_for_alert(session=session, actor=actor, alert_id=alert_id, settings=settings)
    except NotFound:
        return None


def incident(*, actor: Actor, alert_id: int, settings: Settings) -> AlertOut:
    with base.transaction() as session:
        return alerts_service.get_alert(session=session, actor=actor, alert_id=alert_id, settings=settings)


def open_adverse_events(*, actor: Actor, settings: Settings) -> list[AdverseEventOut]:
    """Events with a report still to file, the nearest deadline first."""
    with base.transaction() as session:
        return service.list_events(session=session, actor=actor, settings=settings, open_only=True)


def jurisdictions(*, actor: Actor, settings: Settings) -> list[JurisdictionOut]:
    return service.list_jurisdictions(actor=actor, settings=settings)


def _local(value: str | None, settings: Settings) -> datetime | None:
    """A datetime-local form value, read in the facility's time zone."""
    if not (value or "").strip():
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise Invalid(f"aware at: {value!r} is not a date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(settings.facility_timezone))


def classify(
    *,
    actor: Actor,
    alert_id: int,
    jurisdiction_codes: list[str],
    aware_at: str | None,
    remedial_action: bool,
    reason: str,
    meaning: str,
    password: str,
    settings: Settings,
) -> AdverseEventOut:
    """Classify the incident, signed; a refused signature is committed before the refusal is raised."""
    values = {
        "jurisdictions": jurisdiction_codes,
        "aware_at": _local(aware_at, settings),
        "remedial_action": remedial_action,
        "reason": reason,
        "password": password,
    }
    if meaning.strip():
        values["meaning"] = meaning
    body = base._validated(ClassifyCreate, values)
    with base.transaction() as session:
        outcome = service.classify(session=session, actor=actor, alert_id=alert_id, data=body, settings=settings)
    if outcome.refusal is not None:
        raise outcome.refusal
    assert outcome.event is not None
    return outcome.event


def mark_reported(
    *,
    actor: Actor,
    event_id: int,
    jurisdiction: str,
    reference: str,
    reported_on: str | None,
    password: str,
    settings: Settings,
) -> AdverseEventOut:
    """Record a filed report with its reference, signed."""
    values: dict[str, object] = {"reference": reference, "password": SecretStr(password or "")}
    if (reported_on or "").strip():
        try:
            values["reported_on"] = date.fromisoformat(str(reported_on).strip())
        except ValueError:
            raise Invalid(f"reported on: {reported_on!r} is not a date (YYYY-MM-DD)") from None
    body = base._validated(ReportedCreate, values)
    with base.transaction() as session:
        outcome = service.mark_reported(
            session=session, actor=actor, event_id=event_id, jurisdiction=jurisdiction, data=body, settings=settings
        )
    if outcome.refusal is not None:
        raise outcome.refusal
    assert outcome.event is not None
    return outcome.event


def dossier_pdf(*, actor: Actor, event_id: int, settings: Settings) -> Dossier:
    with base.transaction() as session:
        rendered = dossier.render(session=session, actor=actor, event_id=event_id, settings=settings)
    return Dossier(f"adverse-event-{event_id}-dossier.pdf", rendered.pdf, rendered.sha256)
