"""Classify an incident as a reportable adverse event, read its deadlines, record each report (signed)."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.adverse import deadlines as clock
from monitor.adverse import jurisdictions
from monitor.adverse.models import AdverseDeadline, AdverseEvent, AdverseSignature
from monitor.adverse.schemas import (
    AdverseEventOut,
    ClassifyCreate,
    DeadlineOut,
    JurisdictionOut,
    ReportedCreate,
    SignatureOut,
)
from monitor.alerts import emails
from monitor.alerts.models import Alert
from monitor.audit import service as audit_service
from monitor.auth import service as auth_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.auth.models import User
from monitor.config import Settings
from monitor.db import utcnow
from monitor.errors import Conflict, Invalid, MonitorError, NotFound
from monitor.ingest import phi
from monitor.registry.models import Model

# A clock a few minutes ahead of the server's must not make "now" an invalid awareness time.
AWARE_AT_SLACK = timedelta(minutes=5)
# Older awareness is a data-entry slip (and far-away years overflow the calendar arithmetic).
AWARE_AT_MAX_AGE = timedelta(days=3650)


@dataclass(frozen=True)
class Outcome:
    """What a signed action did. With `refusal` nothing was signed but the failed signature was recorded:
    the caller commits, then raises the refusal (as change requests do, decision 0200)."""

    event: AdverseEventOut | None
    refusal: MonitorError | None = None


def _iso(value: datetime) -> str:
    return value.isoformat()


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def manifestation(signature: AdverseSignature) -> str:
    """21 CFR 11.50: printed name, date and time, and meaning."""
    return (
        f"Signed by {signature.printed_name} ({signature.username}) on "
        f"{signature.signed_at:%Y-%m-%d %H:%M:%S} UTC; meaning: {signature.meaning}"
    )


def list_jurisdictions(*, actor: Actor, settings: Settings) -> list[JurisdictionOut]:
    """The jurisdictions an event can be classified for, with their deadlines."""
    authorize(actor, Permission.MODELS_READ)
    return [
        JurisdictionOut(
            code=j.code,
            name=j.spec.name,
            regulation=j.spec.regulation,
            days=j.spec.days,
            unit=j.spec.unit,
            remedial_days=j.spec.remedial_days,
            remedial_unit=j.spec.remedial_unit,
            remedial_regulation=j.spec.remedial_regulation,
            country=j.spec.country,
        )
        for j in jurisdictions.configured(settings).values()
    ]


def _primary(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"alert #{alert_id} does not exist")
    if alert.incident_id is not None:
        raise Invalid(
            f"alert #{alert_id} belongs to incident #{alert.incident_id} ({alert.incident_role}); "
            f"classify the incident itself, alert #{alert.incident_id}",
            details={"incident_id": alert.incident_id},
        )
    return alert


def _chosen(settings: Settings, codes: list[str]) -> list[jurisdictions.Jurisdiction]:
    configured = jurisdictions.configured(settings)
    unknown = [code for code in codes if code not in configured]
    if unknown:
        raise Invalid(
            f"unknown jurisdiction {', '.join(repr(c) for c in unknown)}; configured: {', '.join(configured)}",
            details={"unknown": unknown, "configured": list(configured)},
        )
    return [configured[code] for code in codes]


def classify(
    *,
    session: Session,
    actor: Actor,
    alert_id: int,
    data: ClassifyCreate,
    settings: Settings,
    now: datetime | None = None,
) -> Outcome:
    """Classify an incident as a reportable adverse event for jurisdictions (qa, admin), signed."""
    authorize(actor, Permission.ALERTS_ACT)
    phi.check_free_text(field="reason", value=data.reason, record=f"adverse event classification of alert #{alert_id}")
    now = now or utcnow()
    alert = _primary(session, alert_id)
    chosen = _chosen(settings, data.jurisdictions)
    aware_at = data.aware_at or now
    if aware_at > now + AWARE_AT_SLACK:
        raise Invalid(f"aware_at {aware_at.isoformat()} is in the future; the facility cannot be aware yet")
    if aware_at < now - AWARE_AT_MAX_AGE:
        raise Invalid(f"aware_at {aware_at.isoformat()} is more than ten years ago; check the date")
    existing = session.execute(select(AdverseEvent).where(AdverseEvent.alert_id == alert.id)).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            f"incident #{alert.id} is already classified as adverse event #{existing.id} "
            f"(by {existing.classified_by}, {existing.classified_at:%Y-%m-%d %H:%M} UTC)"
        )
    check = auth_service.reauthenticate(
        session=session,
        actor=actor,
        password=data.password.get_secret_value(),
        purpose=f"adverse_event:alert:{alert.id}",
        now=now,
    )
    if check.refusal is not None:
        return Outcome(None, refusal=check.refusal)
    assert check.user is not None
    event = _record_classification(session, alert, chosen, data, aware_at, settings, check.user, now)
    return Outcome(_views(session, [event], settings, now)[0])


def _record_classification(
    session: Session,
    alert: Alert,
    chosen: list[jurisdictions.Jurisdiction],
    data: ClassifyCreate,
    aware_at: datetime,
    settings: Settings,
    signer: User,
    now: datetime,
) -> AdverseEvent:
    zone = jurisdictions.facility_zone(settings)
    event = AdverseEvent(
        alert_id=alert.id,
        model_id=alert.model_id,
        aware_at=aware_at,
        time_zone=settings.facility_timezone,
        remedial_action=data.remedial_action,
        reason=data.reason,
        classified_by=signer.username,
        classified_at=now,
    )
    session.add(event)
    try:
        session.flush()
    except IntegrityError:  # a concurrent classification of the same incident won
        raise Conflict(f"incident #{alert.id} was classified meanwhile by someone else") from None
    rows = []
    for jurisdiction in chosen:
        days, unit, regulation = jurisdiction.rule(data.remedial_action)
        due_day = clock.due_date(clock.local_date(aware_at, zone), days, unit, jurisdiction.calendar)
        rows.append(
            AdverseDeadline(
                adverse_event_id=event.id,
                jurisdiction=jurisdiction.code,
                name=jurisdiction.spec.name,
                regulation=regulation,
                days=days,
                unit=unit,
                due_date=due_day,
                due_at=clock.end_of_local_day(due_day, zone),
            )
        )
    session.add_all(rows)
    session.flush()
    content = {
        "adverse_event": event.id,
        "incident": alert.id,
        "fingerprint": alert.fingerprint,
        "aware_at": _iso(aware_at),
        "time_zone": event.time_zone,
        "remedial_action": event.remedial_action,
        "reason": event.reason,
        "deadlines": [
            {"jurisdiction": r.jurisdiction, "regulation": r.regulation, "due_at": _iso(r.due_at)} for r in rows
        ],
    }
    signature = _sign(session, event, None, "classified", signer, data.meaning, content, now)
    audit_service.record(
        session=session,
        actor=signer.username,
        action="adverse_event.classified",
        entity="adverse_event",
        entity_id=event.id,
        after={**content, "signature": _signature_audit(signature)},
        reason=data.reason,
    )
    return event


def _sign(
    session: Session,
    event: AdverseEvent,
    deadline: AdverseDeadline | None,
    action: str,
    signer: User,
    meaning: str,
    content: dict[str, Any],
    now: datetime,
) -> AdverseSignature:
    signature = AdverseSignature(
        adverse_event_id=event.id,
        deadline_id=deadline.id if deadline is not None else None,
        action=action,
        user_id=signer.id,
        username=signer.username,
        printed_name=signer.printed_name,
        meaning=meaning,
        signed_at=now,
        content_hash=content_hash(content),
    )
    session.add(signature)
    session.flush()
    return signature


def _signature_audit(signature: AdverseSignature) -> dict[str, str]:
    return {
        "username": signature.username,
        "printed_name": signature.printed_name,
        "meaning": signature.meaning,
        "signed_at": _iso(signature.signed_at),
        "content_hash": signature.content_hash,
    }


def mark_reported(
    *,
    session: Session,
    actor: Actor,
    event_id: int,
    jurisdiction: str,
    data: ReportedCreate,
    settings: Settings,
    now: datetime | None = None,
) -> Outcome:
    """Record that the report to one jurisdiction was filed, with its reference (qa, admin), signed."""
    authorize(actor, Permission.ALERTS_ACT)
    # No PHI gate on the reference: regulators' report numbers are long numbers by design
    # (e.g. FDA's 1234567-2026-00001); the schema allows one token of letters, digits and separators.
    now = now or utcnow()
    event = session.get(AdverseEvent, event_id)
    if event is None:
        raise NotFound(f"adverse event #{event_id} does not exist")
    deadline = session.execute(
        select(AdverseDeadline)
        .where(AdverseDeadline.adverse_event_id == event.id, AdverseDeadline.jurisdiction == jurisdiction)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if deadline is None:
        codes = session.execute(
            select(AdverseDeadline.jurisdiction)
            .where(AdverseDeadline.adverse_event_id == event.id)
            .order_by(AdverseDeadline.id)
        ).scalars()
        raise NotFound(
            f"adverse event #{event.id} was not classified for {jurisdiction!r}; its jurisdictions: {', '.join(codes)}"
        )
    if deadline.reported_at is not None:
        raise Conflict(
            f"the report to {deadline.name} on adverse event #{event.id} is already recorded "
            f"(reference {deadline.reference}, filed {deadline.reported_on}, by {deadline.reported_by})"
        )
    zone = ZoneInfo(event.time_zone)
    reported_on = data.reported_on or clock.local_date(now, zone)
    _check_report_date(reported_on, event, zone, now)
    check = auth_service.reauthenticate(
        session=session,
        actor=actor,
        password=data.password.get_secret_value(),
        purpose=f"adverse_event:{event.id}:{jurisdiction}",
        now=now,
    )
    if check.refusal is not None:
        return Outcome(None, refusal=check.refusal)
    assert check.user is not None
    deadline.reported_at, deadline.reported_on = now, reported_on
    deadline.reference, deadline.reported_by = data.reference, check.user.username
    content = {
        "adverse_event": event.id,
        "jurisdiction": deadline.jurisdiction,
        "regulation": deadline.regulation,
        "reference": data.reference,
        "reported_on": reported_on.isoformat(),
        "due_at": _iso(deadline.due_at),
    }
    signature = _sign(session, event, deadline, "reported", check.user, data.meaning, content, now)
    audit_service.record(
        session=session,
        actor=check.user.username,
        action="adverse_event.reported",
        entity="adverse_event",
        entity_id=event.id,
        before={"jurisdiction": deadline.jurisdiction, "reported": False},
        after={**content, "on_time": reported_on <= deadline.due_date, "signature": _signature_audit(signature)},
    )
    return Outcome(_views(session, [event], settings, now)[0])


def _check_report_date(reported_on: date, event: AdverseEvent, zone: ZoneInfo, now: datetime) -> None:
    if reported_on > clock.local_date(now, zone):
        raise Invalid(f"reported_on {reported_on} is in the future")
    aware_on = clock.local_date(event.aware_at, zone)
    if reported_on < aware_on:
        raise Invalid(f"reported_on {reported_on} is before the facility became aware ({aware_on})")


def get_for_alert(*, session: Session, actor: Actor, alert_id: int, settings: Settings) -> AdverseEventOut:
    """The adverse event of an incident, with its deadlines as a countdown."""
    authorize(actor, Permission.MODELS_READ)
    event = session.execute(select(AdverseEvent).where(AdverseEvent.alert_id == alert_id)).scalar_one_or_none()
    if event is None:
        if session.get(Alert, alert_id) is None:
            raise NotFound(f"alert #{alert_id} does not exist")
        raise NotFound(f"incident #{alert_id} is not classified as a reportable adverse event")
    return _views(session, [event], settings, utcnow())[0]


def get_event(*, session: Session, actor: Actor, event_id: int) -> AdverseEvent:
    authorize(actor, Permission.MODELS_READ)
    event = session.get(AdverseEvent, event_id)
    if event is None:
        raise NotFound(f"adverse event #{event_id} does not exist")
    return event


def list_events(
    *, session: Session, actor: Actor, settings: Settings, open_only: bool = False, now: datetime | None = None
) -> list[AdverseEventOut]:
    """Adverse events, the nearest open deadline first; open_only: those with a report still to file."""
    authorize(actor, Permission.MODELS_READ)
    now = now or utcnow()
    query = select(AdverseEvent).order_by(AdverseEvent.id)
    if open_only:
        pending = select(AdverseDeadline.adverse_event_id).where(AdverseDeadline.reported_at.is_(None))
        query = query.where(AdverseEvent.id.in_(pending))
    views = _views(session, list(session.execute(query).scalars()), settings, now)
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(
        views,
        key=lambda v: min((d.due_at for d in v.deadlines if d.reported_at is None), default=far),
    )


def deadline_view(row: AdverseDeadline, calendar: clock.Calendar, zone: ZoneInfo, now: datetime) -> DeadlineOut:
    unit: clock.Unit = "work" if row.unit == "work" else "calendar"
    shown = clock.countdown(now=now, due_at=row.due_at, unit=unit, calendar=calendar, zone=zone)
    if row.reported_on is not None:
        on_time = row.reported_on <= row.due_date
        status = "reported" if on_time else "reported_late"
        text = f"reported {row.reported_on:%a %d %b %Y}, reference {row.reference}" + ("" if on_time else " (late)")
        days_left = 0
    else:
        status = "overdue" if shown.overdue else "open"
        text, days_left = shown.text, shown.days_left
    return DeadlineOut(
        jurisdiction=row.jurisdiction,
        name=row.name,
        regulation=row.regulation,
        days=row.days,
        unit=row.unit,
        due_date=row.due_date,
        due_at=row.due_at,
        due_local=clock.due_label(row.due_at, zone),
        status=status,
        countdown=text,
        days_left=days_left,
        reported_at=row.reported_at,
        reported_on=row.reported_on,
        reference=row.reference,
        reported_by=row.reported_by,
    )


def calendar_for(settings: Settings, code: str) -> clock.Calendar:
    """The jurisdiction's work-day calendar; weekends only when it is no longer configured."""
    configured = jurisdictions.configured(settings).get(code)
    return configured.calendar if configured is not None else clock.Calendar()


def _views(session: Session, events: list[AdverseEvent], settings: Settings, now: datetime) -> list[AdverseEventOut]:
    if not events:
        return []
    ids = [e.id for e in events]
    rows: dict[int, list[AdverseDeadline]] = defaultdict(list)
    for row in session.execute(
        select(AdverseDeadline).where(AdverseDeadline.adverse_event_id.in_(ids)).order_by(AdverseDeadline.due_at)
    ).scalars():
        rows[row.adverse_event_id].append(row)
    signatures: dict[int, list[AdverseSignature]] = defaultdict(list)
    for signature in session.execute(
        select(AdverseSignature)
        .where(AdverseSignature.adverse_event_id.in_(ids))
        .order_by(AdverseSignature.signed_at, AdverseSignature.id)
    ).scalars():
        signatures[signature.adverse_event_id].append(signature)
    alerts = {
        a.id: a for a in session.execute(select(Alert).where(Alert.id.in_([e.alert_id for e in events]))).scalars()
    }
    models = {
        m.id: m for m in session.execute(select(Model).where(Model.id.in_([e.model_id for e in events]))).scalars()
    }
    views = []
    for event in events:
        zone = ZoneInfo(event.time_zone)
        codes = {row.id: row.jurisdiction for row in rows[event.id]}
        views.append(
            AdverseEventOut(
                id=event.id,
                alert_id=event.alert_id,
                model=models[event.model_id].name,
                headline=incident_headline(alerts[event.alert_id]),
                aware_at=event.aware_at,
                time_zone=event.time_zone,
                remedial_action=event.remedial_action,
                reason=event.reason,
                classified_by=event.classified_by,
                classified_at=event.classified_at,
                deadlines=[
                    deadline_view(row, calendar_for(settings, row.jurisdiction), zone, now) for row in rows[event.id]
                ],
                signatures=[
                    SignatureOut(
                        action=s.action,
                        jurisdiction=codes.get(s.deadline_id) if s.deadline_id is not None else None,
                        username=s.username,
                        printed_name=s.printed_name,
                        meaning=s.meaning,
                        signed_at=s.signed_at,
                        content_hash=s.content_hash,
                        manifestation=manifestation(s),
                    )
                    for s in signatures[event.id]
                ],
                link=emails.alert_link(settings.dashboard_url, event.alert_id),
            )
        )
    return views


def incident_headline(alert: Alert) -> str:
    evidence = alert.evidence or {}
    threshold = evidence.get("threshold")
    return emails.headline(
        kind=alert.kind,
        metric=alert.metric,
        feature=alert.feature,
        segment=alert.segment,
        value=evidence.get("value"),
        threshold=None if threshold is None else float(threshold),
        estimated=bool(evidence.get("estimated")),
    )
