"""Reminder emails before a report deadline and when it passed, caught by a real SMTP server (aiosmtpd).

These tests commit (the jobs open their own transactions), so each gets a fresh database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.adverse import deadlines as clock
from monitor.adverse import jobs as adverse_jobs
from monitor.adverse import reminders as adverse_reminders
from monitor.adverse import service
from monitor.adverse.models import AdverseReminder
from monitor.adverse.schemas import ClassifyCreate, ReportedCreate
from monitor.alerts import jobs as alert_jobs
from monitor.alerts.models import Notification
from monitor.audit.models import AuditEvent
from monitor.config import Settings
from monitor.db import Database
from tests.adverse.conftest import FACILITY_ZONE, open_incident
from tests.alerts.conftest import RECIPIENTS, Received, SmtpServer, alert_settings
from tests.factories import PASSWORD, make_user

AWARE = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
# fda-user-facility: 10 work days -> due Monday 21 Dec 23:59:59 EST; reminders at 08:00 EST on
# Wednesday 16 Dec (3 work days before) and Friday 18 Dec (1 work day before).


def classified(database: Database, settings: Settings) -> int:
    with database.transaction() as session:
        incident = open_incident(session, settings)
        qa, _ = make_user(session, role="qa", username="qa-lead", full_name="Dr. Ada Lovelace")
    with database.transaction() as session:
        outcome = service.classify(
            session=session,
            actor=qa,
            alert_id=incident.primary,
            data=ClassifyCreate(
                jurisdictions=["fda-user-facility", "fda-manufacturer"],
                aware_at=AWARE,
                reason="missed bleeds at site east",
                password=SecretStr(PASSWORD),
            ),
            settings=settings,
            now=AWARE,
        )
        assert outcome.event is not None
        return outcome.event.id


def reminders(server: SmtpServer) -> list[Received]:
    """The reminder emails the server received (the incident's own critical email went out first)."""
    return [r for r in server.mailbox.received if r.message["X-Radmon-Category"] == "adverse_deadline"]


def reminders_sent(database: Database, settings: Settings, now: datetime) -> int:
    queued = adverse_jobs.queue_reminders(database=database, settings=settings, now=now)
    alert_jobs.deliver_due(database=database, settings=settings, now=now)
    return queued


def test_reminders_arrive_before_the_deadline_and_when_overdue_each_once(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = alert_settings(
        tmp_path,
        fresh_database.url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        facility_timezone=FACILITY_ZONE,
    )
    event_id = classified(fresh_database, settings)

    assert reminders_sent(fresh_database, settings, datetime(2026, 12, 16, 12, 59, tzinfo=UTC)) == 0
    assert reminders(smtp_server) == []

    # Wednesday 16 Dec 09:00 EST: 3 work days left (17, 18 and 21 Dec).
    assert reminders_sent(fresh_database, settings, datetime(2026, 12, 16, 14, 0, tzinfo=UTC)) == 1
    [reminder] = reminders(smtp_server)
    assert reminder.recipients == RECIPIENTS
    subject = reminder.message["Subject"]
    assert subject == (
        f"[radmon due soon] adverse event #{event_id}: report to FDA MedWatch 3500A, user facility "
        "(3 work days left, due Mon 21 Dec 2026 23:59 EST)"
    )
    assert reminder.message["X-Radmon-Category"] == "adverse_deadline"
    text = reminder.message.get_body(("plain",)).get_content()
    assert "21 CFR 803.30" in text and "sensitivity below target at site east" in text
    assert f"/api/v1/adverse-events/{event_id}/deadlines/fda-user-facility/reported" in text
    assert "https://radmon.hospital.example/dashboard/alerts?id=" in text

    # The job runs every 15 minutes: the same stage is never sent twice.
    assert reminders_sent(fresh_database, settings, datetime(2026, 12, 16, 14, 15, tzinfo=UTC)) == 0
    assert len(reminders(smtp_server)) == 1

    # The scheduler was down over the weekend: Tuesday 01:00 EST only the overdue reminder goes out,
    # the 1-work-day one it supersedes is recorded as such.
    assert reminders_sent(fresh_database, settings, datetime(2026, 12, 22, 6, 0, tzinfo=UTC)) == 1
    overdue = reminders(smtp_server)[-1].message
    assert overdue["Subject"].startswith(f"[radmon OVERDUE] adverse event #{event_id}: report to FDA MedWatch")
    assert "overdue by 1 day, was due Mon 21 Dec 2026 23:59 EST" in overdue["Subject"]
    assert len(reminders(smtp_server)) == 2
    with fresh_database.transaction() as session:
        stages = {(r.stage, r.status) for r in session.execute(select(AdverseReminder)).scalars()}
        assert stages == {("3wd", "queued"), ("1wd", "superseded"), ("overdue", "queued")}
        audited = session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "adverse_event.reminder_queued")
        ).scalar_one()
        assert audited == 2
        sent = session.execute(
            select(func.count()).select_from(Notification).where(Notification.category == "adverse_deadline")
        ).scalar_one()
        assert sent == 2


def test_a_reported_deadline_sends_no_more_reminders(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = alert_settings(
        tmp_path, fresh_database.url, smtp_host="127.0.0.1", smtp_port=smtp_server.port, facility_timezone=FACILITY_ZONE
    )
    event_id = classified(fresh_database, settings)
    with fresh_database.transaction() as session:
        admin = make_user(session, role="admin", username="admin-lead")[0]
    with fresh_database.transaction() as session:
        outcome = service.mark_reported(
            session=session,
            actor=admin,
            event_id=event_id,
            jurisdiction="fda-user-facility",
            data=ReportedCreate(reference="MW5012345", password=SecretStr(PASSWORD)),
            settings=settings,
            now=datetime(2026, 12, 10, 15, 0, tzinfo=UTC),
        )
        assert outcome.refusal is None
    # The manufacturer's calendar deadline (6 Jan) is still open; nothing is due for either on 23 Dec.
    assert reminders_sent(fresh_database, settings, datetime(2026, 12, 23, 14, 0, tzinfo=UTC)) == 0
    assert reminders(smtp_server) == []
    # 31 Dec 09:00 EST is 3 work days before Wednesday 6 Jan (1 Jan is a holiday): the manufacturer's.
    assert reminders_sent(fresh_database, settings, datetime(2026, 12, 31, 14, 0, tzinfo=UTC)) == 1
    [message] = [r.message for r in reminders(smtp_server)]
    assert "FDA MDR, manufacturer" in message["Subject"] and "due Wed 06 Jan 2027 23:59 EST" in message["Subject"]


def test_a_racing_scheduler_that_misses_the_recorded_stage_still_sends_nothing_twice(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two schedulers reading before either wrote: the unique (deadline, stage) key refuses the second
    one's stage row, and its outbox rows roll back with it (a savepoint per deadline)."""
    incident = open_incident(session, settings)
    qa, _ = make_user(session, role="qa", username="qa-lead")
    service.classify(
        session=session,
        actor=qa,
        alert_id=incident.primary,
        data=ClassifyCreate(
            jurisdictions=["fda-user-facility"], aware_at=AWARE, reason="missed bleeds", password=SecretStr(PASSWORD)
        ),
        settings=settings,
        now=AWARE,
    )
    now = datetime(2026, 12, 16, 14, 0, tzinfo=UTC)
    assert adverse_reminders.queue_due_reminders(session=session, now=now, settings=settings) == 1
    # The second scheduler read the stages before the first one's commit: it sees none recorded.
    original = clock.due_reminder
    monkeypatch.setattr(clock, "due_reminder", lambda **kw: original(**{**kw, "already": ()}))
    assert adverse_reminders.queue_due_reminders(session=session, now=now, settings=settings) == 0
    emails = session.execute(
        select(func.count()).select_from(Notification).where(Notification.category == adverse_reminders.CATEGORY)
    ).scalar_one()
    assert emails == len(RECIPIENTS)
