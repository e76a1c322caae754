"""The incident dossier: an adverse event's evidence, timeline and signatures as a deterministic PDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.adverse import deadlines as clock
from monitor.adverse import service
from monitor.adverse.models import AdverseDeadline, AdverseEvent, AdverseReminder, AdverseSignature
from monitor.alerts import emails, incidents
from monitor.alerts.models import Alert, AlertOccurrence, AlertTransition, Notification
from monitor.auth.actors import Actor
from monitor.config import Settings
from monitor.documents import charts, templates
from monitor.documents.pdf import RenderedPdf, render_pdf
from monitor.registry.models import Model, ModelVersion

# The chart shows the incident's own figure over its last windows; more would not be read.
CHART_WINDOWS = 60


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    what: str
    who: str
    detail: str


def render(*, session: Session, actor: Actor, event_id: int, settings: Settings) -> RenderedPdf:
    """The dossier of an adverse event as PDF (any reader of alerts); from recorded times only."""
    event = service.get_event(session=session, actor=actor, event_id=event_id)
    html, recorded_at = render_html(session=session, event=event, settings=settings)
    return render_pdf(html, recorded_at=recorded_at)


def render_html(*, session: Session, event: AdverseEvent, settings: Settings) -> tuple[str, datetime]:
    """The dossier's HTML and the latest time it records (the only time the PDF may carry)."""
    context = _context(session, event, settings)
    return templates.environment("monitor.adverse").get_template("dossier.html.j2").render(**context), context[
        "recorded_at"
    ]


def _context(session: Session, event: AdverseEvent, settings: Settings) -> dict[str, Any]:
    alert = session.get(Alert, event.alert_id)
    assert alert is not None
    model = session.get(Model, alert.model_id)
    version = session.get(ModelVersion, alert.version_id)
    assert model is not None and version is not None
    zone = ZoneInfo(event.time_zone)
    deadline_rows = list(
        session.execute(
            select(AdverseDeadline).where(AdverseDeadline.adverse_event_id == event.id).order_by(AdverseDeadline.due_at)
        ).scalars()
    )
    signatures = list(
        session.execute(
            select(AdverseSignature)
            .where(AdverseSignature.adverse_event_id == event.id)
            .order_by(AdverseSignature.signed_at, AdverseSignature.id)
        ).scalars()
    )
    members = incidents.members_of(session, [alert.id])[alert.id]
    occurrences = list(
        session.execute(
            select(AlertOccurrence)
            .where(AlertOccurrence.alert_id == alert.id)
            .order_by(AlertOccurrence.window_end.desc())
            .limit(CHART_WINDOWS)
        ).scalars()
    )[::-1]
    timeline = _timeline(session, event, alert, deadline_rows, signatures)
    recorded_at = max([event.classified_at, *(entry.at for entry in timeline)])
    return {
        "event": event,
        "alert": alert,
        "model": model,
        "version": version,
        "headline": service.incident_headline(alert),
        "figure": emails.figure_with_interval(alert.evidence or {}),
        "members": [
            {
                "id": m.id,
                "role": m.incident_role or "",
                "reason": m.incident_reason or "",
                "kind": m.kind,
                "metric": m.metric,
                "feature": m.feature or "",
                "segment": m.segment or "whole population",
                "severity": m.severity,
                "figure": emails.figure_with_interval(m.evidence or {}),
                "first_seen": m.first_seen,
                "last_seen": m.last_seen,
            }
            for m in members
        ],
        "occurrences": occurrences,
        "chart": _chart(occurrences, alert),
        "deadlines": [
            {
                "row": row,
                "due_local": clock.due_label(row.due_at, zone),
                "state": _deadline_state(row),
            }
            for row in deadline_rows
        ],
        "timeline": timeline,
        "signatures": [{"row": s, "manifestation": service.manifestation(s), "action": s.action} for s in signatures],
        "aware_local": f"{event.aware_at.astimezone(zone):%a %d %b %Y %H:%M} {event.aware_at.astimezone(zone).tzname()}",
        "recorded_at": recorded_at,
        "link": emails.alert_link(settings.dashboard_url, alert.id),
    }


def _deadline_state(row: AdverseDeadline) -> str:
    if row.reported_on is None:
        return "not reported as of this dossier"
    late = "" if row.reported_on <= row.due_date else " (after the deadline)"
    return f"reported {row.reported_on.isoformat()}, reference {row.reference}, recorded by {row.reported_by}{late}"


def _timeline(
    session: Session,
    event: AdverseEvent,
    alert: Alert,
    deadline_rows: list[AdverseDeadline],
    signatures: list[AdverseSignature],
) -> list[TimelineEntry]:
    entries = [TimelineEntry(alert.opened_at, "incident opened", "system", service.incident_headline(alert))]
    for transition in session.execute(
        select(AlertTransition).where(AlertTransition.alert_id == alert.id).order_by(AlertTransition.id)
    ).scalars():
        if transition.action == "opened" and transition.at == alert.opened_at:
            continue
        detail = f"{transition.from_status or '-'} -> {transition.to_status}, {transition.severity}"
        if transition.note:
            detail += f"; note: {transition.note}"
        entries.append(TimelineEntry(transition.at, transition.action, transition.actor, detail))
    for notification in session.execute(
        select(Notification)
        .where(Notification.alert_id == alert.id, Notification.channel == "email", Notification.sent_at.is_not(None))
        .order_by(Notification.id)
    ).scalars():
        assert notification.sent_at is not None
        subject = str((notification.payload or {}).get("subject", ""))
        entries.append(TimelineEntry(notification.sent_at, "email sent", notification.recipient, subject))
    names = {row.id: row for row in deadline_rows}
    for signature in signatures:
        if signature.action == "classified":
            detail = "reportable adverse event for " + ", ".join(f"{r.name} ({r.regulation})" for r in deadline_rows)
            entries.append(TimelineEntry(signature.signed_at, "classified", signature.username, detail))
    for reminder in session.execute(
        select(AdverseReminder)
        .where(AdverseReminder.deadline_id.in_(list(names)))
        .order_by(AdverseReminder.created_at, AdverseReminder.id)
    ).scalars():
        row = names[reminder.deadline_id]
        what = "reminder queued" if reminder.status == "queued" else "reminder superseded"
        entries.append(
            TimelineEntry(reminder.created_at, what, "system", f"{row.name}: {_stage_words(reminder.stage)}")
        )
    for row in deadline_rows:
        if row.reported_at is not None:
            entries.append(
                TimelineEntry(
                    row.reported_at, "reported", row.reported_by or "", f"{row.name}, reference {row.reference}"
                )
            )
    return sorted(entries, key=lambda e: e.at)


def _stage_words(stage: str) -> str:
    if stage == "overdue":
        return "the deadline has passed"
    count = int(stage.removesuffix("wd"))
    return f"{count} work day{'' if count == 1 else 's'} before the deadline"


def _chart(occurrences: list[AlertOccurrence], alert: Alert) -> str:
    points = [(o.window_end, o.value) for o in occurrences if o.value is not None]
    if len(points) < 2:
        return ""
    figure, axes = charts.new_figure(6.5, 2.2)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    axes.plot(xs, ys, marker="o", markersize=3, label=alert.metric)  # type: ignore[arg-type]  # dates plot
    lows = [o.ci_low for o in occurrences if o.value is not None]
    highs = [o.ci_high for o in occurrences if o.value is not None]
    if all(v is not None for v in lows + highs):
        axes.fill_between([p[0] for p in points], lows, highs, alpha=0.2, label="95% CI")  # type: ignore[arg-type]
    threshold = next((o.threshold for o in reversed(occurrences) if o.threshold is not None), None)
    if threshold is not None:
        axes.axhline(threshold, color="#b00020", linestyle="--", linewidth=1, label=f"threshold {threshold:.3f}")
    axes.set_title(f"{alert.metric}, {alert.segment or 'whole population'}: the incident's windows")
    axes.set_xlabel("window end (UTC)")
    axes.set_ylabel(alert.metric)
    axes.legend(loc="best", fontsize=7)
    figure.autofmt_xdate()
    return charts.figure_svg(figure)
