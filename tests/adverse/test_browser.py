"""The clock in Chromium against a real server: qa classifies the incident and signs, sees the countdown,
records a report and downloads the dossier; a viewer sees the clock and no forms; the overview tile.

SQLite only, like the other browser tests; the callback tests cover both backends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dashboard.app import mount_dashboard
from monitor import migrate
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.db import Database, set_database
from monitor.main import create_app
from tests.adverse.conftest import FACILITY_ZONE, open_incident
from tests.alerts.conftest import alert_settings
from tests.dashboard.test_browser import PASSWORD, Tab, browser  # noqa: F401 (the browser fixture)
from tests.live_server import served_in_thread


@dataclass(frozen=True)
class Live:
    url: str
    incident: int


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("adverse-browser")
    url = f"sqlite:///{folder / 'radmon.db'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    settings = alert_settings(
        folder, url, dashboard_url="http://127.0.0.1/dashboard/", facility_timezone=FACILITY_ZONE, log_level="WARNING"
    )
    with database.transaction() as session:
        for username, role, name in [("vera", "viewer", "Vera Viewer"), ("quinn", "qa", "Quinn Quality")]:
            auth_service.create_user(
                session=session, actor=SYSTEM, username=username, role=role, password=PASSWORD, full_name=name
            )
        incident = open_incident(session, settings)
    previous = set_database(database)
    app = create_app(settings)
    mount_dashboard(app, settings=settings)
    try:
        with served_in_thread(app, name="adverse-browser-server") as base:
            yield Live(base, incident.primary)
    finally:
        set_database(previous)
        database.dispose()


@pytest.fixture
def tab(browser: object, live: Live) -> Iterator[Tab]:  # noqa: F811
    opened = Tab(browser, live.url)
    yield opened
    opened.close()


def test_qa_classifies_signs_records_the_report_and_downloads_the_dossier(tab: Tab, live: Live, tmp_path: Path) -> None:
    tab.sign_in("quinn")
    tab.open(f"/dashboard/alerts?id={live.incident}", "#alerts-adverse-classify")
    page = tab.page
    page.get_by_label("FDA MedWatch 3500A, user facility", exact=False).check()
    page.get_by_label("EU MDR serious incident", exact=False).check()
    page.fill("#alerts-adverse-reason", "Missed bleeds at site east: delayed neurosurgical referral possible")
    page.fill("#alerts-adverse-password", "not my password")
    page.click("#alerts-adverse-classify-button")
    page.wait_for_selector("#alerts-adverse-error")
    assert "nothing was signed" in page.inner_text("#alerts-adverse-error")
    page.fill("#alerts-adverse-password", PASSWORD)
    tab.screenshot("adverse-classify-form")
    page.click("#alerts-adverse-classify-button")
    page.wait_for_selector("#alerts-adverse-done")
    assert page.inner_text("#alerts-adverse-countdown-fda-user-facility").startswith("10 work days left, due ")
    assert page.inner_text("#alerts-adverse-countdown-eu-mdr-serious-incident").startswith("15 days left, due ")
    assert "Signed by Quinn Quality (quinn)" in page.inner_text("#alerts-adverse-signatures")
    tab.screenshot("adverse-classified")

    page.select_option("#alerts-adverse-report-jurisdiction", "fda-user-facility")
    page.fill("#alerts-adverse-reference", "MW5012345")
    page.fill("#alerts-adverse-report-password", PASSWORD)
    page.click("#alerts-adverse-report-button")
    page.wait_for_selector("#alerts-adverse-done:has-text('Report recorded')")
    assert "reference MW5012345" in page.inner_text("#alerts-adverse-countdown-fda-user-facility")
    tab.screenshot("adverse-reported")

    with page.expect_download() as download_info:
        page.click("#alerts-adverse-dossier-button")
    saved = tmp_path / "dossier.pdf"
    download_info.value.save_as(saved)
    assert download_info.value.suggested_filename.endswith("-dossier.pdf")
    assert saved.read_bytes().startswith(b"%PDF-")
    assert [p for p in tab.problems if "favicon" not in p] == []


def test_a_viewer_sees_the_clock_without_forms_and_the_overview_tile(tab: Tab, live: Live) -> None:
    tab.sign_in("vera")
    tab.open("/dashboard/", "#overview-adverse-tile")
    assert tab.page.inner_text("#overview-adverse-tile-value") == "1"
    tab.screenshot("adverse-overview-tile")
    tab.open(f"/dashboard/alerts?id={live.incident}", "#alerts-adverse-deadlines")
    assert tab.page.query_selector("#alerts-adverse-classify") is None
    assert tab.page.query_selector("#alerts-adverse-report") is None
    assert tab.page.query_selector("#alerts-adverse-dossier-button") is not None
    assert [p for p in tab.problems if "favicon" not in p] == []
