"""The Reports page in Chromium against a real server (issue 16): qa generates last month's draft and
signs it in the signature dialog (a wrong password first), the PDF downloads with the hash the page
shows; a viewer sees download and preview only, and the API refuses the viewer's generate and sign
with 403; the page neither clips nor scrolls sideways at 1024 and 1440 px.

A server of its own: these tests change state other browser tests must not see. SQLite only."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from dashboard.app import mount_dashboard
from monitor import migrate
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.config import load_settings
from monitor.db import Database, set_database
from monitor.main import create_app
from monitor.reports import service as reports_service
from monitor.reports.models import SurveillanceReport
from monitor.reports.schemas import ReportCreate
from tests.dashboard.test_browser import PASSWORD, Tab, browser  # noqa: F401 (the browser fixture)
from tests.dashboard.test_layout_browser import CLIPPED
from tests.factories import make_model, make_version
from tests.live_server import served_in_thread

USERS = {"vera": ("viewer", "Vera Viewer"), "quinn": ("qa", "Quinn Quality"), "ada": ("admin", "Ada Admin")}
PAGE = "/dashboard/reports?model=ich-ct"
# A callback posted from the page with the real CSRF token, as a forged request would be.
FORGED_CALLBACK = """async ([trigger, values]) => {
  const token = document.cookie.split('; ').find(c => c.startsWith('radmon_csrf=')).split('=')[1];
  const deps = await (await fetch('/dashboard/_dash-dependencies')).json();
  const dep = deps.find(d => d.inputs.some(i => i.id === trigger));
  const parts = dep.output.slice(2, -2).split('...');
  const entry = i => ({id: i.id, property: i.property, value: values[i.id + '.' + i.property] ?? null});
  const response = await fetch('/dashboard/_dash-update-component', {
    method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
    body: JSON.stringify({
      output: dep.output,
      outputs: parts.map(p => { const at = p.lastIndexOf('.'); return {id: p.slice(0, at), property: p.slice(at + 1)}; }),
      inputs: dep.inputs.map(entry),
      state: dep.state.map(entry),
      changedPropIds: [trigger + '.n_clicks'],
    }),
  });
  return {status: response.status, body: await response.text()};
}"""


@dataclass(frozen=True)
class Live:
    url: str
    database: Database
    viewer_key: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-reports') / 'radmon.db'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    with database.transaction() as session:
        for username, (role, name) in USERS.items():
            auth_service.create_user(
                session=session, actor=SYSTEM, username=username, role=role, password=PASSWORD, full_name=name
            )
        _, viewer_key = auth_service.create_api_key(session=session, actor=SYSTEM, username="vera", name="browser")
        make_model(session, display_name="ICH triage <head CT>")
        make_version(session, activate=True)
    settings = load_settings(
        database_url=url,
        secret_key="browser-test-secret-0123456789",
        log_format="text",
        log_level="WARNING",
        outbox_dir=str(tmp_path_factory.mktemp("browser-reports-outbox")),
    )
    previous = set_database(database)
    app = create_app(settings)
    mount_dashboard(app, settings=settings)
    try:
        with served_in_thread(app, name="dashboard-reports-server") as served:
            yield Live(served, database, viewer_key)
    finally:
        set_database(previous)
        database.dispose()


@pytest.fixture
def tab(browser: object, live: Live) -> Iterator[Tab]:  # noqa: F811
    opened = Tab(browser, live.url)
    yield opened
    opened.close()


def _reports(live: Live) -> list[SurveillanceReport]:
    with live.database.transaction() as session:
        listed = reports_service.list_reports(session=session, actor=SYSTEM, model_name="ich-ct")
        return [session.get(SurveillanceReport, r.id) for r in listed]  # type: ignore[misc]


def _download(tab: Tab, report_id: int) -> bytes:
    with tab.page.expect_download() as started:
        tab.page.click(f"#reports-download-{report_id}")
    path = started.value.path()
    assert path is not None
    with open(path, "rb") as handle:
        return handle.read()


def test_qa_generates_last_month_and_signs_it(tab: Tab, live: Live) -> None:
    tab.sign_in("quinn")
    tab.page.wait_for_selector("#nav-user-role")
    tab.open(PAGE, "#reports-generate")
    tab.page.wait_for_selector("#reports-none")
    tab.page.click("#reports-generate-button")
    tab.page.wait_for_selector("#reports-generated")
    (draft,) = _reports(live)
    assert draft.status == "draft" and draft.sha256 in tab.page.inner_text("#reports-generated")
    assert tab.page.inner_text(f"#reports-{draft.id}-status") == "draft · awaits review"
    tab.screenshot("reports-qa-draft")

    tab.page.click(f"#reports-row-{draft.id} button:has-text('Sign')")
    tab.page.wait_for_selector(".modal.show #reports-sign-content-table")
    meaning = tab.page.inner_text("#reports-sign-meaning")
    assert meaning.startswith("I have reviewed the surveillance report of ich-ct for ") and draft.sha256 in meaning
    assert draft.sha256 in tab.page.inner_text("#reports-sign-content-table")
    tab.page.fill("#reports-sign-password", "not my password")
    tab.page.click("#reports-sign-submit")
    tab.page.wait_for_selector("#reports-sign-error")
    assert "the password does not match" in tab.page.inner_text("#reports-sign-error")
    tab.page.fill("#reports-sign-password", PASSWORD)
    tab.screenshot("reports-qa-signature-dialog")
    tab.page.click("#reports-sign-submit")
    tab.page.wait_for_selector("#reports-signed-notice")
    tab.page.wait_for_selector("#reports-sign-modal", state="hidden")

    (signed,) = _reports(live)
    assert signed.status == "signed" and signed.sha256 != draft.sha256 and signed.draft_sha256 == draft.sha256
    assert tab.page.inner_text(f"#reports-{signed.id}-status") == "signed"
    signatures = tab.page.inner_text(f"#reports-{signed.id}-signatures")
    assert "Quinn Quality" in signatures and "reviewed" in signatures and "UTC" in signatures
    # A signed report offers a correction, never a second signature.
    assert tab.page.locator(f"#reports-row-{signed.id} button:has-text('Sign')").count() == 0
    assert tab.page.locator(f"#reports-row-{signed.id} button:has-text('Correct')").count() == 1
    tab.screenshot("reports-qa-signed")

    pdf = _download(tab, signed.id)
    assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == signed.sha256

    # Generating the signed period again is refused in words, and the page still shows the signed report.
    tab.page.click("#reports-generate-button")
    tab.page.wait_for_selector("#reports-generate-error")
    assert "signed and immutable" in tab.page.inner_text("#reports-generate-error")
    assert [r.sha256 for r in _reports(live)] == [signed.sha256]
    # The one 409 is the refusal the user was shown.
    assert [p for p in tab.problems if "409" not in p] == []


def test_a_viewer_downloads_only_and_the_api_refuses_the_rest(tab: Tab, live: Live) -> None:
    with live.database.transaction() as session:  # a draft of another period beside the signed one
        reports_service.generate(session=session, actor=SYSTEM, data=ReportCreate(model="ich-ct", period="2026-10"))
    tab.sign_in("vera")
    tab.page.wait_for_selector("#nav-user-role")
    tab.open(PAGE, "#reports-list")
    assert tab.page.locator("#reports-generate").count() == 0
    assert tab.page.locator("#reports-generate-button").count() == 0
    assert tab.page.locator("#reports-table button").count() == 0  # no Sign, no Correct
    for report in _reports(live):
        assert tab.page.locator(f"#reports-download-{report.id}").count() == 1
        assert hashlib.sha256(_download(tab, report.id)).hexdigest() == report.sha256
        preview = tab.page.request.get(f"{live.url}/dashboard/reports/{report.id}/preview")
        assert preview.status == 200 and "sandbox" in preview.headers["content-security-policy"]
    tab.screenshot("reports-viewer")
    draft = next(r for r in _reports(live) if r.status == "draft")
    forged_sign = tab.page.evaluate(
        FORGED_CALLBACK,
        [
            "reports-sign-submit",
            {
                "reports-sign-submit.n_clicks": 1,
                "reports-sign-store.data": {"report_id": draft.id, "meaning": "reviewed"},
                "reports-sign-password.value": PASSWORD,
                "reports-model-store.data": "ich-ct",
            },
        ],
    )
    forged_generate = tab.page.evaluate(
        FORGED_CALLBACK,
        [
            "reports-generate-button",
            {
                "reports-generate-button.n_clicks": 1,
                "reports-model-store.data": "ich-ct",
                "reports-from.value": "2026-09-01",
                "reports-to.value": "2026-09-30",
            },
        ],
    )
    for forged in (forged_sign, forged_generate):
        assert forged["status"] == 403 and '"forbidden"' in forged["body"], forged
    tab.problems = [p for p in tab.problems if "403" not in p]  # the forged calls' own answers
    assert [r.status for r in _reports(live) if r.id == draft.id] == ["draft"] and len(_reports(live)) == 2
    viewer = {"Authorization": f"Bearer {live.viewer_key}"}
    with httpx.Client(base_url=live.url, headers=viewer) as api:
        assert api.post("/api/v1/reports", json={"model": "ich-ct", "period": "2026-10"}).status_code == 403
        signing = api.post(f"/api/v1/reports/{draft.id}/signatures", json={"meaning": "reviewed", "password": PASSWORD})
        assert signing.status_code == 403
        assert api.get("/api/v1/reports", params={"model": "ich-ct"}).status_code == 200
    assert tab.problems == []


@pytest.mark.parametrize("width", (1024, 1440))
def test_the_reports_page_neither_clips_nor_scrolls_sideways(tab: Tab, live: Live, width: int) -> None:
    tab.page.set_viewport_size({"width": width, "height": 900})
    tab.sign_in("quinn")
    tab.page.wait_for_selector("#nav-user-role")
    tab.open(PAGE, "#reports-list")
    tab.screenshot(f"layout-{width}-reports")
    assert tab.page.evaluate(CLIPPED) == []
    navbar = tab.page.locator("nav.navbar").first.bounding_box()
    assert navbar is not None and navbar["height"] < 80, f"the navbar wraps ({navbar})"
    assert tab.problems == []
