"""The clock on the dashboard: the countdown on the incident's page and the overview, the classify and
reported forms for qa (signed), nothing to forge for a viewer, the dossier download."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.config import Settings, load_settings
from monitor.db import Database
from tests.adverse.conftest import FACILITY_ZONE, Incident, open_incident
from tests.dashboard.callbacks import call, find, response_of, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.factories import PASSWORD, make_user


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """The dashboard's own test settings (plain http), with the facility in New York."""
    return load_settings(
        database_url=database.url,
        secret_key="test-secret-key-0123456789",
        outbox_dir=str(tmp_path / "outbox"),
        log_format="text",
        facility_timezone=FACILITY_ZONE,
    )


@pytest.fixture
def incident(session: Session, settings: Settings) -> Incident:
    for role, username, name in [("viewer", "vera", ""), ("qa", "quinn", "Quinn Adams"), ("admin", "ada", "")]:
        make_user(session, role=role, username=username, full_name=name)
    return open_incident(session, settings)


def classify(client: TestClient, alert_id: int, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "alerts-adverse-classify-button.n_clicks": 1,
        "alerts-selected-store.data": alert_id,
        "alerts-adverse-jurisdictions.value": ["fda-user-facility", "eu-mdr-serious-incident"],
        "alerts-adverse-aware.value": None,
        "alerts-adverse-remedial.value": False,
        "alerts-adverse-reason.value": "missed bleeds at site east",
        "alerts-adverse-meaning.value": "classified as a reportable adverse event",
        "alerts-adverse-password.value": PASSWORD,
    }
    values.update(changes)
    return call(client, "alerts-adverse-classify-button.n_clicks", values)


def test_qa_classifies_on_the_incident_page_and_sees_the_countdown(
    dashboard_client: TestClient, session: Session, incident: Incident
) -> None:
    sign_in(dashboard_client, "quinn")
    page = render_page(dashboard_client, "/alerts", f"?id={incident.primary}")
    assert "alerts-adverse-classify" in page and "21 CFR 803.30" in page
    # A member alert is not classified on its own: its incident is.
    assert "alerts-adverse-classify" not in render_page(dashboard_client, "/alerts", f"?id={incident.member}")

    result = response_of(classify(dashboard_client, incident.primary))

    shown = text_of(result["alerts-adverse"]["children"])
    assert "10 work days left, due " in shown and "15 days left, due " in shown
    assert "Signed by Quinn Adams (quinn) on " in shown and "meaning: classified as a reportable adverse event" in shown
    assert "alerts-adverse-report" in shown and "alerts-adverse-dossier-button" in shown
    assert session.execute(select(AuditEvent).where(AuditEvent.action == "adverse_event.classified")).scalar_one()
    # The page now shows the clock to anyone who reads alerts.
    sign_in(dashboard_client, "vera")
    page = render_page(dashboard_client, "/alerts", f"?id={incident.primary}")
    assert "10 work days left" in page and "alerts-adverse-report" not in page


def test_a_wrong_password_keeps_the_form_and_says_nothing_was_signed(
    dashboard_client: TestClient, session: Session, incident: Incident
) -> None:
    sign_in(dashboard_client, "quinn")
    result = response_of(classify(dashboard_client, incident.primary, **{"alerts-adverse-password.value": "nope"}))
    assert "alerts-adverse" not in result  # the form keeps what was typed
    assert "nothing was signed" in text_of(result["alerts-adverse-feedback"]["children"])
    unknown = response_of(classify(dashboard_client, incident.primary, **{"alerts-adverse-jurisdictions.value": []}))
    assert "jurisdictions" in text_of(unknown["alerts-adverse-feedback"]["children"])


def test_a_viewer_cannot_forge_a_classification(
    dashboard_client: TestClient, session: Session, incident: Incident
) -> None:
    sign_in(dashboard_client, "vera")
    assert "alerts-adverse-classify" not in render_page(dashboard_client, "/alerts", f"?id={incident.primary}")
    result = classify(dashboard_client, incident.primary)
    assert result.status_code == 403
    assert session.execute(select(AuditEvent).where(AuditEvent.action == "adverse_event.classified")).first() is None


def test_recording_the_report_and_downloading_the_dossier(
    dashboard_client: TestClient, session: Session, incident: Incident
) -> None:
    sign_in(dashboard_client, "quinn")
    response_of(classify(dashboard_client, incident.primary))
    page = render_page(dashboard_client, "/alerts", f"?id={incident.primary}")
    event_id = find(page, "alerts-adverse-event-store")["data"]
    result = response_of(
        call(
            dashboard_client,
            "alerts-adverse-report-button.n_clicks",
            {
                "alerts-adverse-report-button.n_clicks": 1,
                "alerts-selected-store.data": incident.primary,
                "alerts-adverse-event-store.data": event_id,
                "alerts-adverse-report-jurisdiction.value": "fda-user-facility",
                "alerts-adverse-reference.value": "MW5012345",
                "alerts-adverse-reported-on.value": None,
                "alerts-adverse-report-password.value": PASSWORD,
            },
        )
    )
    shown = text_of(result["alerts-adverse"]["children"])
    assert "reference MW5012345" in shown and "meaning: report filed" in shown
    sign_in(dashboard_client, "vera")  # a viewer downloads the dossier
    download = response_of(
        call(
            dashboard_client,
            "alerts-adverse-dossier-button.n_clicks",
            {"alerts-adverse-dossier-button.n_clicks": 1, "alerts-adverse-event-store.data": event_id},
        )
    )["alerts-adverse-dossier-download"]["data"]
    assert download["filename"] == f"adverse-event-{event_id}-dossier.pdf" and download["base64"]
    assert base64.b64decode(download["content"]).startswith(b"%PDF-")


def test_the_overview_tile_counts_open_events_and_shows_an_overdue_deadline_in_red(
    dashboard_client: TestClient, session: Session, incident: Incident
) -> None:
    sign_in(dashboard_client, "quinn")
    assert "overview-adverse-tile" not in render_page(dashboard_client, "/")
    long_ago = (datetime.now(UTC) - timedelta(days=40)).astimezone().strftime("%Y-%m-%dT%H:%M")
    response_of(classify(dashboard_client, incident.primary, **{"alerts-adverse-aware.value": long_ago}))
    page = render_page(dashboard_client, "/")
    assert find(page, "overview-adverse-tile-value")["children"] == 1
    badge = find(page, "overview-adverse-countdown")
    assert badge["color"] == "danger" and badge["children"].startswith("overdue by ")
    assert "(2 overdue)" in page
