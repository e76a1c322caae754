"""The incident dossier: evidence, timeline and Part 11 signatures, escaped, from recorded times only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.orm import Session

from monitor.adverse import dossier, reminders, service
from monitor.adverse.models import AdverseEvent
from monitor.adverse.schemas import ClassifyCreate, ReportedCreate
from monitor.alerts import service as alerts_service
from monitor.auth.actors import SYSTEM
from monitor.config import Settings
from tests.adverse.conftest import CANON, EAST, open_incident
from tests.alerts.conftest import DAY0
from tests.factories import PASSWORD, make_user

CLASSIFIED_AT = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)


def classified_incident(session: Session, settings: Settings, reason: str = "missed bleeds at site east") -> int:
    incident = open_incident(session, settings)
    # Two more windows of the same breach, so the chart has a line to draw.
    for n in (1, 2):
        window = DAY0 + timedelta(days=n)
        alerts_service.process_findings(
            session=session,
            findings=[replace(EAST, window_end=window, value=0.76 - n / 100), replace(CANON, window_end=window)],
            now=window,
            settings=settings,
        )
    alerts_service.acknowledge(
        session=session, actor=SYSTEM, alert_id=incident.primary, note="radiology QA reviewing", settings=settings
    )
    qa, _ = make_user(session, role="qa", username="qa-lead", full_name="Dr. Ada Lovelace")
    outcome = service.classify(
        session=session,
        actor=qa,
        alert_id=incident.primary,
        data=ClassifyCreate(
            jurisdictions=["fda-user-facility", "eu-mdr-serious-incident"],
            aware_at=CLASSIFIED_AT - timedelta(hours=2),
            reason=reason,
            password=SecretStr(PASSWORD),
        ),
        settings=settings,
        now=CLASSIFIED_AT,
    )
    assert outcome.event is not None
    return outcome.event.id


def html_of(session: Session, settings: Settings, event_id: int) -> str:
    event = session.get(AdverseEvent, event_id)
    assert event is not None
    return dossier.render_html(session=session, event=event, settings=settings)[0]


def test_the_dossier_holds_evidence_timeline_and_signature_manifestations(session: Session, settings: Settings) -> None:
    event_id = classified_incident(session, settings)
    reminders.queue_due_reminders(session=session, now=datetime(2026, 11, 13, 14, 0, tzinfo=UTC), settings=settings)
    qa = make_user(session, role="qa", username="qa-two", full_name="Grace Hopper")[0]
    service.mark_reported(
        session=session,
        actor=qa,
        event_id=event_id,
        jurisdiction="fda-user-facility",
        data=ReportedCreate(reference="MW5012345", password=SecretStr(PASSWORD)),
        settings=settings,
        now=datetime(2026, 11, 13, 16, 0, tzinfo=UTC),
    )
    html = html_of(session, settings, event_id)
    # Evidence: the figure with its interval, the windows, the alias, the chart.
    assert "0.765 (95% CI 0.713-0.811, n=307)" in html
    assert "manufacturer=Canon" in html and "the same studies as site=east" in html
    assert "<svg" in html and "threshold 0.900" in html
    # Deadlines in the facility's time zone (New York), and their state.
    assert "FDA MedWatch 3500A, user facility" in html and "21 CFR 803.30" in html
    assert "reported 2026-11-13, reference MW5012345, recorded by qa-two" in html
    assert "EU MDR serious incident" in html and "not reported as of this dossier" in html
    # Timeline: opened, acknowledged with its note, classified, reminder, reported.
    for words in (
        "incident opened",
        "acknowledged",
        "radiology QA reviewing",
        "classified",
        "reminder queued",
        "reported",
    ):
        assert words in html, words
    # Signatures as 21 CFR 11.50 manifestations: printed name, date and time, meaning.
    assert (
        "Signed by Dr. Ada Lovelace (qa-lead) on 2026-11-03 15:00:00 UTC; meaning: classified as a reportable" in html
    )
    assert "Signed by Grace Hopper (qa-two) on 2026-11-13 16:00:00 UTC; meaning: report filed" in html


def test_free_text_is_escaped(session: Session, settings: Settings) -> None:
    event_id = classified_incident(session, settings, reason="<script>alert(1)</script> missed bleeds")
    html = html_of(session, settings, event_id)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; missed bleeds" in html


def test_the_same_records_give_the_same_pdf_and_a_new_record_changes_it(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    event_id = classified_incident(session, settings)
    first = dossier.render(session=session, actor=SYSTEM, event_id=event_id, settings=settings)
    second = dossier.render(session=session, actor=SYSTEM, event_id=event_id, settings=settings)
    assert first.pdf.startswith(b"%PDF-") and first.sha256 == second.sha256 and first.pages >= 1
    (tmp_path / "dossier.pdf").write_bytes(first.pdf)
    qa = make_user(session, role="qa", username="qa-two", full_name="Grace Hopper")[0]
    service.mark_reported(
        session=session,
        actor=qa,
        event_id=event_id,
        jurisdiction="eu-mdr-serious-incident",
        data=ReportedCreate(reference="EUDAMED-2026-17", password=SecretStr(PASSWORD)),
        settings=settings,
        now=datetime(2026, 11, 5, 9, 0, tzinfo=UTC),
    )
    assert dossier.render(session=session, actor=SYSTEM, event_id=event_id, settings=settings).sha256 != first.sha256
