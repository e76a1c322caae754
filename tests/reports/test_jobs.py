"""The monthly job: last month's drafts on the 1st (facility time), an email to the signers through the
outbox (delivered, escaped, with the dashboard link), and nothing more on a second run."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor import scheduler as scheduler_module
from monitor.alerts import jobs as alerts_jobs
from monitor.alerts.models import Notification
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.config import Settings, load_settings
from monitor.db import Database
from monitor.reports import jobs
from monitor.reports.models import SurveillanceReport
from tests.factories import PASSWORD, make_model, make_version

FIRST_OF_DECEMBER = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "timezone", "month"),
    [
        (datetime(2026, 12, 1, 5, 0, tzinfo=UTC), "UTC", (date(2026, 11, 1), date(2026, 11, 30))),
        # 03:00 UTC on the 1st is still the 30th of November in New York: October is last month there.
        (datetime(2026, 12, 1, 3, 0, tzinfo=UTC), "America/New_York", (date(2026, 10, 1), date(2026, 10, 31))),
        # 23:30 UTC on the 31st of January is already the 1st of February in Berlin.
        (datetime(2027, 1, 31, 23, 30, tzinfo=UTC), "Europe/Berlin", (date(2027, 1, 1), date(2027, 1, 31))),
        (datetime(2024, 3, 1, 6, 0, tzinfo=UTC), "Asia/Tokyo", (date(2024, 2, 1), date(2024, 2, 29))),
        (datetime(2027, 1, 1, 6, 0, tzinfo=UTC), "UTC", (date(2026, 12, 1), date(2026, 12, 31))),
    ],
)
def test_last_month_is_the_facility_s_last_month(now: datetime, timezone: str, month: tuple[date, date]) -> None:
    assert jobs.last_month(now, timezone) == month


@pytest.fixture
def job_settings(fresh_database: Database, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=fresh_database.url,
        secret_key="test-secret-key-0123456789",
        outbox_dir=str(tmp_path / "outbox"),
        log_format="text",
        dashboard_url="https://radmon.hospital.example/dashboard/",
    )


def _seed(database: Database, *, qa_email: str | None = "qa.lead@hospital.example") -> None:
    """ich-ct registered in September, a qa lead and an approver (with the given emails)."""
    with database.transaction() as session:
        model = make_model(session, display_name="ICH <triage> & co")
        model.created_at = datetime(2026, 9, 1, tzinfo=UTC)
        model.alert_recipients = ["ai-committee@hospital.example"]
        make_version(session, activate=True)
        auth_service.create_user(
            session=session, actor=SYSTEM, username="qa-lead", role="qa", password=PASSWORD, email=qa_email
        )
        auth_service.create_user(
            session=session, actor=SYSTEM, username="appr", role="approver", password=PASSWORD, email="appr@h.example"
        )


def _count(database: Database, table: type) -> int:
    with database.transaction() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def _delivered(outbox_dir: Path) -> list[EmailMessage]:
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted(outbox_dir.glob("*.eml"))
    ]


def test_the_first_drafts_last_month_and_emails_the_qa_lead_once(
    fresh_database: Database, job_settings: Settings
) -> None:
    _seed(fresh_database)
    run = jobs.draft_last_month(database=fresh_database, settings=job_settings, now=FIRST_OF_DECEMBER)
    assert (run.period_start, run.period_end) == (date(2026, 11, 1), date(2026, 11, 30))
    assert list(run.drafted) == ["ich-ct"] and run.skipped == {}
    with fresh_database.transaction() as session:
        report = session.execute(select(SurveillanceReport)).scalar_one()
        assert (report.status, report.revision, report.generated_by) == ("draft", 1, "system")
        rows = session.execute(select(Notification)).scalars().all()
        assert [(n.recipient, n.category, n.status) for n in rows] == [
            ("qa.lead@hospital.example", "report", "pending")
        ]

    again = jobs.draft_last_month(database=fresh_database, settings=job_settings, now=FIRST_OF_DECEMBER)
    assert again.drafted == {} and again.skipped == {"ich-ct": "a report of the period exists"}
    assert _count(fresh_database, SurveillanceReport) == 1 and _count(fresh_database, Notification) == 1

    delivered = alerts_jobs.deliver_due(database=fresh_database, settings=job_settings, now=FIRST_OF_DECEMBER)
    assert delivered.sent == 1
    (message,) = _delivered(Path(job_settings.outbox_dir))
    assert (
        message["Subject"] == "[radmon] Surveillance report for ich-ct (2026-11-01 to 2026-11-30) awaits your signature"
    )
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    link = f"https://radmon.hospital.example/dashboard/reports?model=ich-ct&report={report.id}"
    assert link in text and report.sha256 in text
    assert f'href="{link.replace("&", "&amp;")}"' in html
    assert "ICH &lt;triage&gt; &amp; co" in html and "<triage>" not in html


def test_without_a_qa_email_the_model_s_recipients_hear_of_it(fresh_database: Database, job_settings: Settings) -> None:
    _seed(fresh_database, qa_email=None)
    jobs.draft_last_month(database=fresh_database, settings=job_settings, now=FIRST_OF_DECEMBER)
    with fresh_database.transaction() as session:
        assert session.execute(select(Notification.recipient)).scalars().all() == ["ai-committee@hospital.example"]


def test_with_approval_required_the_approvers_are_told_too(fresh_database: Database, job_settings: Settings) -> None:
    _seed(fresh_database)
    settings = job_settings.model_copy(update={"report_approval_required": True})
    jobs.draft_last_month(database=fresh_database, settings=settings, now=FIRST_OF_DECEMBER)
    with fresh_database.transaction() as session:
        assert sorted(session.execute(select(Notification.recipient)).scalars()) == [
            "appr@h.example",
            "qa.lead@hospital.example",
        ]


def test_a_model_registered_after_the_period_gets_no_report(fresh_database: Database, job_settings: Settings) -> None:
    with fresh_database.transaction() as session:
        make_model(session)
    run = jobs.draft_last_month(database=fresh_database, settings=job_settings, now=datetime(2020, 2, 1, tzinfo=UTC))
    assert run.drafted == {} and run.skipped == {"ich-ct": "registered after the period"}
    assert _count(fresh_database, SurveillanceReport) == 0


def test_the_scheduler_runs_it_on_the_first_at_six_facility_time(
    fresh_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADMON_FACILITY_TIMEZONE", "Europe/Berlin")
    scheduler_module.get_settings.cache_clear()
    try:
        scheduler = scheduler_module.build_scheduler(database=fresh_database)
        scheduler.start(paused=True)
        try:
            job = scheduler.get_job(scheduler_module.REPORTS_MONTHLY_JOB[0])
            assert job is not None
            trigger = str(job.trigger)
            assert "day='1'" in trigger and "hour='6'" in trigger and "minute='0'" in trigger
            assert str(job.trigger.timezone) == "Europe/Berlin"
            assert job.func_ref == "monitor.reports.jobs:draft_last_month"
        finally:
            scheduler.shutdown(wait=False)
    finally:
        scheduler_module.get_settings.cache_clear()
