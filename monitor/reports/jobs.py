"""Scheduled report work: on the 1st of each month (facility time), draft last month's report of every
model and tell the QA recipients it awaits their signature (decision 0604).

Each model is drafted in its own transaction together with its emails (the notification outbox):
a crash leaves either both or neither, and a second run finds the draft and does nothing."""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import outbox
from monitor.auth.actors import SYSTEM
from monitor.auth.models import User
from monitor.checks.policy import policy_for
from monitor.config import Settings, get_settings
from monitor.db import Database, get_database, utcnow
from monitor.errors import Conflict
from monitor.registry.models import Model
from monitor.reports import service
from monitor.reports.schemas import ReportCreate, ReportOut

log = logging.getLogger("radmon.reports")

EMAIL_CATEGORY = "report"


@dataclass
class MonthlyRun:
    """What a run did: the period, the drafts made (model -> report id), the models left alone and why."""

    period_start: date
    period_end: date
    drafted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def last_month(now: datetime, timezone: str) -> tuple[date, date]:
    """The calendar month before the one `now` falls in, at the facility."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def report_link(dashboard_url: str, report: ReportOut) -> str:
    """The report on the dashboard's Reports page."""
    return f"{dashboard_url.rstrip('/')}/reports?" + urlencode({"model": report.model, "report": report.id})


def signers_to_notify(session: Session, *, model: Model, approval_required: bool) -> list[str]:
    """Who signs: the active qa users with an email (and approvers when approval is required). When
    none has an email, the model's alert recipients, so the news reaches the committee all the same."""
    roles = ("qa", "approver") if approval_required else ("qa",)
    addresses = sorted(
        {
            user.email.strip()
            for user in session.execute(select(User).where(User.role.in_(roles), User.is_active.is_(True))).scalars()
            if user.email and user.email.strip()
        }
    )
    return addresses or outbox.recipients_for(model=model, policy=policy_for(session=session, model_id=model.id))


def awaiting_signature_email(report: ReportOut, link: str) -> dict[str, str]:
    """Plain text and escaped HTML: which report, its hash, and where to review and sign it."""
    period = f"{report.period_start.isoformat()} to {report.period_end.isoformat()}"
    subject = f"[radmon] Surveillance report for {report.model} ({period}) awaits your signature"
    lines = [
        f"The surveillance report of {report.model_display_name} ({report.model}) for {period} is drafted "
        "from the stored data and awaits the QA lead's review and electronic signature"
        + (" and then an approver's." if report.approval_required else "."),
        "",
        f"Report: #{report.id}, revision {report.revision}, {report.pages} pages",
        f"PDF SHA-256 (draft): {report.sha256}",
        f"Review, preview and sign it: {link}",
        "",
        "Until it is signed it may be generated again; once signed it is immutable, and a correction is a new revision.",
    ]
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "" for line in lines[:-1])
    body = body.replace(html.escape(link), f'<a href="{html.escape(link, quote=True)}">{html.escape(link)}</a>', 1)
    return {"subject": subject, "text": text, "html": body + f"<p>{html.escape(lines[-1])}</p>"}


def draft_last_month(
    *, database: Database | None = None, settings: Settings | None = None, now: datetime | None = None
) -> MonthlyRun:
    """Draft last month's report of every model that existed then, unless one exists already (any
    revision, any status); email the signers. Safe to run again: it does nothing the second time."""
    database = database or get_database()
    settings = settings or get_settings()
    now = now or utcnow()
    start, end = last_month(now, settings.facility_timezone)
    run = MonthlyRun(period_start=start, period_end=end)
    with database.transaction() as session:
        models = [(m.id, m.name) for m in session.execute(select(Model).order_by(Model.id)).scalars()]
    for model_id, name in models:
        try:
            with database.transaction() as session:
                outcome = _draft_one(session, model_id, start, end, settings, now)
        except Conflict as exc:  # another scheduler drafted it at the same moment
            outcome = f"not drafted: {exc.message}"
        except Exception:
            # One model's failure must not keep the others' reports from being drafted.
            log.exception("monthly report failed", extra={"model": name})
            outcome = "failed (see the log)"
        if isinstance(outcome, int):
            run.drafted[name] = outcome
        else:
            run.skipped[name] = outcome
    if run.drafted:
        log.info("monthly reports drafted", extra={"period_start": str(start), "reports": run.drafted})
    return run


def _draft_one(session: Session, model_id: int, start: date, end: date, settings: Settings, now: datetime) -> int | str:
    model = session.get(Model, model_id)
    assert model is not None
    if model.created_at.date() > end:
        return "registered after the period"
    if service.exists_for_period(session=session, model_id=model.id, period_start=start, period_end=end):
        return "a report of the period exists"
    result = service.generate(
        session=session,
        actor=SYSTEM,
        data=ReportCreate(model=model.name, period_start=start, period_end=end),
        approval_required=settings.report_approval_required,
        now=now,
    )
    report = result.report
    assert result.refusal is None and report is not None
    outbox.enqueue_email(
        session,
        content=awaiting_signature_email(report, report_link(settings.dashboard_url, report)),
        category=EMAIL_CATEGORY,
        group_key=f"report-{report.id}-awaits-signature",
        recipients=signers_to_notify(session, model=model, approval_required=settings.report_approval_required),
        now=now,
        settings=settings,
        alert_id=None,
        model_id=model.id,
    )
    return report.id
