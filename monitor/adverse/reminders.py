"""Reminder emails before each report deadline and once it has passed, through the notification outbox."""

from __future__ import annotations

import html
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.adverse import deadlines as clock
from monitor.adverse import jurisdictions, service
from monitor.adverse.models import AdverseDeadline, AdverseEvent, AdverseReminder
from monitor.alerts import emails, outbox
from monitor.alerts.models import Alert
from monitor.audit import service as audit_service
from monitor.auth.actors import SYSTEM
from monitor.checks.policy import policy_for
from monitor.config import Settings
from monitor.registry.models import Model

CATEGORY = "adverse_deadline"


def render_reminder(
    *, event: AdverseEvent, deadline: AdverseDeadline, model: Model, alert: Alert, stage: str, countdown: str, link: str
) -> dict[str, str]:
    """Subject, plain text and escaped HTML of one reminder."""
    urgent = "OVERDUE" if stage == "overdue" else "due soon"
    subject = f"[radmon {urgent}] adverse event #{event.id}: report to {deadline.name} ({countdown})"
    lines = [
        (
            f"Adverse event #{event.id} of {model.display_name} ({model.name}) must be reported to {deadline.name} "
            f"({deadline.regulation})."
        ),
        f"Deadline: {countdown}.",
        f"Incident #{alert.id}: {service.incident_headline(alert)}.",
        (
            f"Classified by {event.classified_by} on {event.classified_at:%Y-%m-%d %H:%M} UTC; "
            f"the facility became aware {event.aware_at:%Y-%m-%d %H:%M} UTC."
        ),
        (
            "When the report is filed, record it with its reference number (qa): "
            f"the alerts page, or POST /api/v1/adverse-events/{event.id}/deadlines/{deadline.jurisdiction}/reported."
        ),
        f"Incident and dossier: {link}",
    ]
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines[:-1])
    body += f'<p><a href="{html.escape(link)}">Open the incident and its dossier</a></p>'
    return {"subject": subject, "text": text, "html": f"<html><body>{body}</body></html>"}


def queue_due_reminders(*, session: Session, now: datetime, settings: Settings) -> int:
    """Queue the reminder each open deadline is due for (one per stage, ever); returns how many."""
    work_days = jurisdictions.reminder_work_days(settings)
    open_rows = session.execute(
        select(AdverseDeadline, AdverseEvent)
        .join(AdverseEvent, AdverseEvent.id == AdverseDeadline.adverse_event_id)
        .where(AdverseDeadline.reported_at.is_(None))
        .order_by(AdverseDeadline.due_at, AdverseDeadline.id)
    ).all()
    queued = 0
    for deadline, event in open_rows:
        zone = ZoneInfo(event.time_zone)
        calendar = service.calendar_for(settings, deadline.jurisdiction)
        stages = clock.reminder_schedule(
            due_at=deadline.due_at, calendar=calendar, zone=zone, work_days_before=work_days
        )
        already = session.execute(
            select(AdverseReminder.stage).where(AdverseReminder.deadline_id == deadline.id)
        ).scalars()
        send, superseded = clock.due_reminder(now=now, stages=stages, already=already)
        if send is None:
            continue
        unit: clock.Unit = "work" if deadline.unit == "work" else "calendar"
        countdown = clock.countdown(now=now, due_at=deadline.due_at, unit=unit, calendar=calendar, zone=zone).text
        try:
            # A savepoint per deadline: a racing scheduler that recorded the stage first wins, and this
            # one's outbox rows for it roll back with the stage row (never two reminders).
            with session.begin_nested():
                _queue(session, event, deadline, send, superseded, countdown, now, settings)
        except IntegrityError:
            continue
        queued += 1
    return queued


def _queue(
    session: Session,
    event: AdverseEvent,
    deadline: AdverseDeadline,
    send: clock.ReminderStage,
    superseded: list[clock.ReminderStage],
    countdown: str,
    now: datetime,
    settings: Settings,
) -> None:
    alert = session.get(Alert, event.alert_id)
    model = session.get(Model, event.model_id)
    assert alert is not None and model is not None
    key = f"adverse-{event.id}-{deadline.jurisdiction}-{send.stage}-{uuid.uuid4().hex[:8]}"
    for stage in superseded:
        session.add(
            AdverseReminder(
                deadline_id=deadline.id, stage=stage.stage, status="superseded", due_at=stage.at, created_at=now
            )
        )
    session.add(
        AdverseReminder(
            deadline_id=deadline.id, stage=send.stage, status="queued", due_at=send.at, group_key=key, created_at=now
        )
    )
    session.flush()
    content = render_reminder(
        event=event,
        deadline=deadline,
        model=model,
        alert=alert,
        stage=send.stage,
        countdown=countdown,
        link=emails.alert_link(settings.dashboard_url, alert.id),
    )
    recipients = outbox.recipients_for(model=model, policy=policy_for(session=session, model_id=model.id))
    outbox.enqueue_email(
        session,
        content=content,
        category=CATEGORY,
        group_key=key,
        recipients=recipients,
        now=now,
        settings=settings,
        alert_id=alert.id,
        model_id=model.id,
    )
    audit_service.record(
        session=session,
        actor=SYSTEM,
        action="adverse_event.reminder_queued",
        entity="adverse_event",
        entity_id=event.id,
        after={
            "jurisdiction": deadline.jurisdiction,
            "stage": send.stage,
            "superseded": [s.stage for s in superseded],
            "recipients": len(recipients),
            "group_key": key,
        },
    )
