"""Issue 14 finding 1 replayed in Chromium against a live server: an ingest key posts hostile
feature values, qa runs input_drift and opens the run's Evidently report, from the dashboard and
from the API. No injected script runs, the page cannot read the dashboard's cookies, and a
same-origin request from it cannot act (the alert stays open), while the same request from a
dashboard page does act (so the attack itself is real). SQLite: this exercises the browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from dashboard.app import mount_dashboard
from monitor import migrate
from monitor.alerts.models import Alert
from monitor.config import load_settings
from monitor.db import Database, set_database
from monitor.main import create_app
from tests.dashboard.test_browser import CHROMIUM, LAUNCH_ARGS, TIMEOUT_MS, playwright_api
from tests.factories import PASSWORD, auth, make_model, make_user, make_version
from tests.live_server import served_in_thread
from tests.security.chain import END, insert_hostile, post_hostile, prepare

ATTACK = """async ([url, body]) => {
  let token = "";
  let cookies = "readable";
  try { token = (document.cookie.match(/radmon_csrf=([^;]+)/) || [])[1] || ""; }
  catch (error) { cookies = "blocked: " + error.name; }
  try {
    const answer = await fetch(url, {method: "POST", credentials: "include", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", "X-CSRFToken": token}});
    return {cookies, status: answer.status};
  } catch (error) { return {cookies, status: 0, error: String(error)}; }
}"""


class Chain:
    def __init__(self, url: str, database: Database, keys: dict[str, str]) -> None:
        self.url, self.database, self.keys = url, database, keys

    def alert_statuses(self) -> dict[int, str]:
        with self.database.transaction() as session:
            return {a.id: a.status for a in session.execute(select(Alert)).scalars()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    url = f"sqlite:///{tmp_path_factory.mktemp('xss') / 'radmon.db'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    with database.transaction() as session:
        make_model(session)
        version = make_version(session, activate=True)
        keys = {role: make_user(session, role=role, username=role)[1] for role in ("ingest", "qa")}
        prepare(session, version)
    previous = set_database(database)
    settings = load_settings(
        database_url=url, secret_key="xss-browser-secret-0123456789", log_format="text", log_level="WARNING"
    )
    app = create_app(settings)
    mount_dashboard(app, settings=settings)
    try:
        with served_in_thread(app, name="xss-live-server") as base:
            posted = post_hostile(httpx.Client(base_url=base).post, keys["ingest"])
            if posted.status_code != 200 or posted.json()["accepted"] != 80:
                # A stricter ingest gate refused them: the report must still hold rows stored before it.
                with database.transaction() as session:
                    insert_hostile(session, session.merge(version))
            runs = httpx.post(
                f"{base}/api/v1/checks/run",
                json={"model": "ich-ct", "kinds": ["input_drift"], "window_end": END.isoformat()},
                headers=auth(keys["qa"]),
                timeout=120,
            )
            assert runs.status_code == 200, runs.text
            yield Chain(base, database, {**keys, "run": str(runs.json()[0]["id"])})
    finally:
        set_database(previous)
        database.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium is required in CI and missing at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def _signed_in(browser: Any, base: str) -> Any:
    context = browser.new_context(base_url=base, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/dashboard/")
    page.fill("#login-username", "qa")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#overview-table")
    return context, page


def _ack_body(context: Any, alert_id: int) -> dict[str, Any]:
    """The callback body the alerts page's Acknowledge button posts (read from _dash-dependencies)."""
    dependencies = context.request.get("/dashboard/_dash-dependencies").json()
    [dependency] = [d for d in dependencies if any(i["id"] == "alerts-ack-button" for i in d["inputs"])]
    values = {
        "alerts-ack-button.n_clicks": 1,
        "alerts-selected-store.data": alert_id,
        "alerts-note.value": "acknowledged by a script in the report",
        "alerts-filters-store.data": {"status": "active", "severity": None, "model": None},
    }

    def entry(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "value": values.get(f"{item['id']}.{item['property']}")}

    outputs = [
        {"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
        for part in dependency["output"].strip(".").split("...")
    ]
    return {
        "output": dependency["output"],
        "outputs": outputs if dependency["output"].startswith("..") else outputs[0],
        "inputs": [entry(i) for i in dependency["inputs"]],
        "state": [entry(s) for s in dependency["state"]],
        "changedPropIds": ["alerts-ack-button.n_clicks"],
    }


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    return problems


def _drawn(page: Any) -> None:
    # Evidently has drawn its widgets (under the CSP and the sandbox) once the value table shows.
    page.wait_for_function("() => document.body.innerText.includes('manufacturer')", timeout=120_000)


def test_the_report_runs_no_injected_script_and_cannot_act_for_the_reader(chain: Chain, browser: Any) -> None:
    context, page = _signed_in(browser, chain.url)
    statuses = chain.alert_statuses()
    open_alert = next((i for i, s in statuses.items() if s == "open"), None)
    assert open_alert is not None, f"the hostile categories raised no alert: {statuses}"
    body = _ack_body(context, open_alert)
    callback = f"{chain.url}/dashboard/_dash-update-component"

    report = context.new_page()
    problems = _watch(report)
    report.goto(f"/dashboard/checks/{chain.keys['run']}/report")
    report.wait_for_timeout(1000)  # let image errors and timers fire

    assert report.evaluate("() => window.__radmonXss") is None
    _drawn(report)
    assert report.evaluate("() => self.origin") == "null"  # an opaque origin: the sandbox holds
    result = report.evaluate(ATTACK, [callback, body])
    assert result["cookies"].startswith("blocked") and result["status"] == 0, result
    assert chain.alert_statuses()[open_alert] == "open"
    assert not [p for p in problems if "Content Security Policy" not in p and "Failed to fetch" not in p], problems

    # The same request from a dashboard page acts: the attack was real, the report page is what stops it.
    page.goto("/dashboard/alerts")
    page.wait_for_selector("#alerts-list")
    control = page.evaluate(ATTACK, [callback, body])
    assert control["cookies"] == "readable" and control["status"] == 200, control
    assert chain.alert_statuses()[open_alert] == "acknowledged"
    context.close()


def test_the_api_report_runs_no_injected_script(chain: Chain, browser: Any) -> None:
    context = browser.new_context(base_url=chain.url, extra_http_headers=auth(chain.keys["qa"]))
    page = context.new_page()
    problems = _watch(page)
    answer = page.goto(f"/api/v1/checks/{chain.keys['run']}/report")
    page.wait_for_timeout(1000)

    assert page.evaluate("() => window.__radmonXss") is None
    _drawn(page)
    assert answer is not None and "sandbox allow-scripts" in answer.headers.get("content-security-policy", "")
    assert page.evaluate("() => self.origin") == "null"
    assert not [p for p in problems if "Content Security Policy" not in p], problems
    context.close()
