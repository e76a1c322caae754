"""The dashboard in Chromium against a real server: each role signs in, every page renders with
no console error, and screenshots land in test-artifacts/screenshots/ for a human to look at.

SQLite only: these tests exercise the UI; the server tests cover both database backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.app import mount_dashboard
from monitor import migrate
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.config import load_settings
from monitor.db import Database, set_database
from monitor.main import create_app
from monitor.registry import service as registry_service
from monitor.registry.schemas import ModelCreate, VersionCreate
from tests.live_server import served_in_thread

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path(os.environ.get("RADMON_TEST_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "browser-test-password"
USERS = {  # role -> (username, printed name)
    "viewer": ("vera", "Vera Viewer"),
    "qa": ("quinn", "Quinn Quality"),
    "approver": ("avery", "Avery Approver"),
    "admin": ("ada", "Ada Admin"),
}
# (screenshot name, path, selector that means the page has rendered its data)
PAGES = [
    ("overview", "/dashboard/", "#overview-table"),
    ("versions", "/dashboard/versions?model=ich-ct", "#versions-timeline .main-svg"),
    ("versions-not-deployed", "/dashboard/versions?model=ptx-cxr", "#versions-no-deployments"),
    ("policy", "/dashboard/policy?model=ich-ct", "#policy-window"),
    ("alerts", "/dashboard/alerts", "#alerts-list"),
    ("audit", "/dashboard/audit", "#audit-table"),  # last: the role test then waits for its chain check
]
TIMEOUT_MS = 30_000


def seed(database: Database) -> None:
    """Users of every role and three models in different states, through the services."""
    with database.transaction() as session:
        for role, (username, name) in USERS.items():
            auth_service.create_user(
                session=session, actor=SYSTEM, username=username, role=role, password=PASSWORD, full_name=name
            )
        models = [
            ("ich-ct", "Intracranial hemorrhage triage", "CT", "HEAD", ["2.0.0", "2.1.0"]),
            ("ptx-cxr", "Pneumothorax detection", "CR", "CHEST", ["1.0.0"]),
            ("nodule-ct", "Lung nodule malignancy", "CT", "CHEST", ["0.9.0"]),
        ]
        for name, display, modality, body_part, versions in models:
            registry_service.create_model(
                session=session,
                actor=SYSTEM,
                data=ModelCreate(
                    name=name,
                    display_name=display,
                    modality=modality,
                    body_part=body_part,
                    intended_use=f"{display}: worklist prioritization, not diagnosis",
                    alert_recipients=["ai-committee@hospital.example"],
                ),
            )
            for number, version in enumerate(versions):
                registry_service.create_version(
                    session=session,
                    actor=SYSTEM,
                    model_name=name,
                    data=VersionCreate(
                        version=version,
                        artifact_uri=f"s3://models/{name}/{version}.onnx",
                        artifact_sha256=f"{number + 1:x}" * 64,
                        targets={"sensitivity": 0.9, "specificity": 0.8, "auc": 0.85},
                        decision_threshold=0.35 + 0.05 * number,
                    ),
                )
        registry_service.activate_first(
            session=session, actor=SYSTEM, model_name="ich-ct", version="2.0.0", reason="go-live"
        )


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn serving API + dashboard in a thread, on a migrated and seeded SQLite database."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'radmon.db'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    seed(database)
    previous = set_database(database)
    settings = load_settings(
        database_url=url, secret_key="browser-test-secret-0123456789", log_format="text", log_level="WARNING"
    )
    app = create_app(settings)
    mount_dashboard(app, settings=settings)
    try:
        with served_in_thread(app, name="dashboard-live-server") as url:
            yield url
    finally:
        set_database(previous)
        database.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium is required in CI and missing at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class Tab:
    """A fresh browser context (its own cookies) that records every console error and failed request."""

    def __init__(self, browser: object, base_url: str) -> None:
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=base_url)  # type: ignore[attr-defined]
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on(
            "response", lambda r: self.problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None
        )

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.page.goto("/dashboard/")
        self.page.fill("#login-username", username)
        self.page.fill("#login-password", password)
        self.page.click("#login-submit")

    def open(self, path: str, ready: str) -> None:
        self.page.goto(path)
        self.page.wait_for_selector(ready)
        self.page.wait_for_load_state("networkidle")

    def screenshot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: object, live_url: str) -> Iterator[Tab]:
    opened = Tab(browser, live_url)
    yield opened
    opened.close()


@pytest.mark.parametrize("role", list(USERS))
def test_each_role_sees_every_page_without_console_errors(tab: Tab, role: str) -> None:
    username, printed_name = USERS[role]
    tab.sign_in(username)
    tab.page.wait_for_selector("#overview-table")

    assert tab.page.inner_text("#nav-user-name") == printed_name
    assert tab.page.inner_text("#nav-user-role") == role
    for name, path, ready in PAGES:
        tab.open(path, ready)
        assert tab.screenshot(f"{role}-{name}").stat().st_size > 10_000
    tab.page.wait_for_selector("#audit-chain-ok")
    assert (tab.page.locator("#versions-activate-button").count() == 0) or role == "admin"
    assert tab.problems == []


def test_login_page_and_a_failed_sign_in(tab: Tab) -> None:
    tab.page.goto("/dashboard/versions?model=ich-ct")
    assert "/dashboard/login" in tab.page.url
    tab.page.wait_for_selector("#login-form")
    tab.screenshot("login")

    tab.sign_in("vera", "wrong password!")

    assert tab.page.inner_text("#login-error") == "Invalid username or password."
    tab.screenshot("login-failed")
    assert tab.problems == []


def test_sign_in_returns_to_the_requested_page_and_sign_out_ends_the_session(tab: Tab) -> None:
    tab.page.goto("/dashboard/audit")
    tab.page.fill("#login-username", "vera")
    tab.page.fill("#login-password", PASSWORD)
    tab.page.click("#login-submit")
    tab.page.wait_for_selector("#audit-table")

    tab.page.click("#nav-logout-button")
    tab.page.wait_for_selector("#login-notice")
    tab.page.goto("/dashboard/")

    assert "/dashboard/login" in tab.page.url
    assert tab.problems == []


def test_model_picker_switches_the_versions_page(tab: Tab) -> None:
    tab.sign_in("vera")
    tab.open("/dashboard/versions?model=ich-ct", "#versions-timeline")

    tab.page.select_option("#versions-model-select", "ptx-cxr")
    tab.page.wait_for_selector("#versions-row-1\\.0\\.0")

    assert tab.page.url.endswith("/dashboard/versions?model=ptx-cxr")
    assert "Pneumothorax detection" in tab.page.inner_text("h1 + div")
    assert tab.problems == []


def test_audit_filter_narrows_the_table_and_the_export(tab: Tab) -> None:
    tab.sign_in("vera")
    tab.open("/dashboard/audit", "#audit-table")

    tab.page.fill("#audit-filter-action", "version.create")
    tab.page.click("#audit-apply-button")
    tab.page.wait_for_function(
        "() => [...document.querySelectorAll('#audit-table tbody tr td:nth-child(4)')]"
        ".every(td => td.innerText === 'version.create')"
    )

    rows = tab.page.locator("#audit-table tbody tr").count()
    href = tab.page.get_attribute("#audit-export-link", "href")
    assert rows == 4 and href == "/dashboard/audit/export.csv?action=version.create"
    export = tab.context.request.get(href)
    assert export.status == 200 and export.text().count("version.create") == 4
    tab.screenshot("audit-filtered")
    assert tab.problems == []


def test_verify_full_chain_runs_in_the_background_and_shows_its_result(tab: Tab) -> None:
    tab.sign_in("vera")
    tab.open("/dashboard/audit", "#audit-chain-ok")  # opening: the events since the last verification

    tab.page.click("#audit-verify-button")

    tab.page.wait_for_selector("text=Whole chain rehashed")  # the poll picked up the background result
    assert "Chain intact" in tab.page.inner_text("#audit-chain-status")
    assert tab.page.locator("#audit-chain-running").count() == 0
    tab.screenshot("audit-full-verification")
    assert tab.problems == []


def test_admin_activates_a_first_version_from_the_versions_page(tab: Tab) -> None:
    tab.sign_in("ada")
    tab.open("/dashboard/versions?model=nodule-ct", "#versions-first-activation")

    tab.page.click("#versions-activate-button")
    tab.page.wait_for_selector("#versions-activate-feedback .alert-warning")  # a reason is required
    tab.page.fill("#versions-activate-reason", "local validation passed")
    tab.page.click("#versions-activate-button")
    tab.page.wait_for_selector("#versions-timeline .main-svg")  # the page reloads with the deployment

    assert tab.page.inner_text("#versions-row-0\\.9\\.0").count("live") == 1
    assert tab.page.locator("#versions-first-activation").count() == 0
    tab.screenshot("admin-versions-after-activation")
    assert tab.problems == []


def test_an_expired_session_sends_the_user_to_sign_in_instead_of_freezing(tab: Tab) -> None:
    tab.sign_in("vera")
    tab.open("/dashboard/", "#overview-table")

    tab.context.clear_cookies()  # what the server sees once the session has expired
    tab.page.click("#nav-audit")  # client-side navigation: a Dash callback, answered 401

    tab.page.wait_for_selector("#login-form")
    assert tab.page.url.endswith("/dashboard/login?next=%2Fdashboard%2Faudit")
