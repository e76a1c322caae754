"""The analytic pages in Chromium on simulated traffic: a scanner and protocol change at site north
(the simulator's scanner_change scenario) half-way through four weeks of head-CT inferences with
delayed outcomes, checked every day as the scheduler does. Each page renders with no console error
for a viewer and for qa, the drift heatmap's cells open the distributions of that feature and
window, the report link opens the Evidently drill-down, and screenshots land in
test-artifacts/screenshots/.

A server of its own (not test_browser.py's): the overview here must show monitoring status. SQLite
only, like the other browser tests; the server tests cover both database backends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.app import mount_dashboard
from monitor import migrate
from monitor.alerts import service as alerts_service
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.config import Settings, load_settings
from monitor.db import Database, set_database
from monitor.ingest import service as ingest_service
from monitor.main import create_app
from monitor.registry import service as registry_service
from monitor.registry.schemas import ModelCreate
from monitor.simulate import Simulation, batches
from tests.checks.scenarios import PSEUDONYM_KEY, load
from tests.dashboard.test_browser import PASSWORD, SCREENSHOTS, Tab, browser  # noqa: F401 (the browser fixture)
from tests.live_server import served_in_thread

USERS = {"viewer": ("vera", "Vera Viewer"), "qa": ("quinn", "Quinn Quality")}
DAYS = 28
ONSET = 10  # the scanner change at site north, in days from the start
FIRST_CHECK = 8  # the first daily window that lies wholly inside the simulated traffic
# (screenshot name, path, selector meaning the page has drawn its data)
PAGES = [
    ("analytics-overview", "/dashboard/", "#overview-sparkline-ich-ct .main-svg"),
    ("drift", "/dashboard/drift?model=ich-ct", "#drift-heatmap .main-svg"),
    ("performance", "/dashboard/performance?model=ich-ct", "#performance-cusum-graph .main-svg"),
    ("subgroups", "/dashboard/subgroups?model=ich-ct", "#subgroups-forest-graph .main-svg"),
]


@dataclass(frozen=True)
class Live:
    url: str
    database: Database
    simulation: Simulation


def seed(database: Database, settings: Settings) -> Simulation:
    """Users, the simulated ich-ct (reference, inferences, outcomes known by today), a daily run of
    every check kind with the alerts it raises, and a second model that has not been checked yet."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    simulation = Simulation(
        days=DAYS,
        per_day=300,
        seed=7,
        scenarios=f"scanner_change:site=north,onset={ONSET}",
        start=today - timedelta(days=DAYS),
    )
    load(database, simulation, reference_rows=3000)
    with database.transaction() as session:
        for role, (username, name) in USERS.items():
            auth_service.create_user(
                session=session, actor=SYSTEM, username=username, role=role, password=PASSWORD, full_name=name
            )
        registry_service.create_model(
            session=session,
            actor=SYSTEM,
            data=ModelCreate(name="ptx-cxr", display_name="Pneumothorax detection", modality="CR", body_part="CHEST"),
        )
    for batch in batches(simulation.outcomes(as_of=today)):
        with database.transaction() as session:
            ingest_service.ingest_outcomes(session=session, actor=SYSTEM, records=batch, pseudonym_key=PSEUDONYM_KEY)
    for day in range(FIRST_CHECK, DAYS + 1):
        window_end = simulation.start + timedelta(days=day)
        with database.transaction() as session:
            for run in checks_flows.run_checks(
                session=session, actor=SYSTEM, model_name=simulation.model, window_end=window_end
            ):
                alerts_service.process_run(
                    session=session, run_id=run.id, settings=settings, now=window_end + timedelta(hours=2)
                )
    return simulation


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-analytics') / 'radmon.db'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    previous = set_database(database)
    settings = load_settings(
        database_url=url,
        secret_key="browser-test-secret-0123456789",
        log_format="text",
        log_level="WARNING",
        outbox_dir=str(tmp_path_factory.mktemp("browser-analytics-outbox")),
    )
    simulation = seed(database, settings)
    app = create_app(settings)
    mount_dashboard(app, settings=settings)
    try:
        with served_in_thread(app, name="dashboard-analytics-server") as url:
            yield Live(url, database, simulation)
    finally:
        set_database(previous)
        database.dispose()


@pytest.fixture
def tab(browser: object, live: Live) -> Iterator[Tab]:  # noqa: F811
    opened = Tab(browser, live.url)
    yield opened
    opened.close()


def sign_in_as(tab: Tab, username: str) -> None:
    tab.sign_in(username)
    tab.page.wait_for_selector("#nav-user-name")


def click_heatmap_cell(tab: Tab, graph: str, *, x: str, y: str) -> None:
    """Click the centre of one heatmap cell, located through plotly's own axes."""
    point = tab.page.evaluate(
        """([graph, x, y]) => {
            const plot = document.querySelector(`#${graph} .js-plotly-plot`);
            const layout = plot._fullLayout, trace = plot.data[0], box = plot.getBoundingClientRect();
            const column = trace.x.indexOf(x), row = trace.y.indexOf(y);
            if (column < 0 || row < 0) throw new Error(`no cell ${x} / ${y}`);
            return {x: box.left + layout.xaxis._offset + layout.xaxis.l2p(column),
                    y: box.top + layout.yaxis._offset + layout.yaxis.l2p(row)};
        }""",
        [graph, x, y],
    )
    tab.page.mouse.click(point["x"], point["y"])


@pytest.mark.parametrize("role", list(USERS))
def test_each_analytic_page_renders_without_console_errors(tab: Tab, role: str) -> None:
    username, _ = USERS[role]
    sign_in_as(tab, username)

    for name, path, ready in PAGES:
        tab.open(path, ready)
        assert tab.screenshot(f"{role}-{name}").stat().st_size > 20_000, name

    assert tab.problems == []


def test_overview_shows_the_critical_status_and_leads_to_the_drift_page(tab: Tab, live: Live) -> None:
    sign_in_as(tab, "vera")
    tab.open("/dashboard/", "#overview-sparkline-ich-ct .main-svg")

    assert tab.page.inner_text("#overview-status-ich-ct") in ("CRITICAL", "critical")
    assert tab.page.inner_text("#overview-status-ptx-cxr") == "No checks yet"
    tab.page.click("#overview-drift-ich-ct")
    tab.page.wait_for_selector("#drift-heatmap .main-svg")

    assert "/dashboard/drift?model=ich-ct" in tab.page.url
    assert tab.problems == []


def test_a_heatmap_cell_opens_that_feature_and_window_against_the_reference(tab: Tab, live: Live) -> None:
    sign_in_as(tab, "vera")
    tab.open("/dashboard/drift?model=ich-ct", "#drift-heatmap .main-svg")
    before_onset = f"{live.simulation.start + timedelta(days=ONSET - 1):%Y-%m-%d}"
    after_onset = f"{live.simulation.start + timedelta(days=DAYS):%Y-%m-%d}"

    click_heatmap_cell(tab, "drift-heatmap", x=after_onset, y="kvp")
    tab.page.wait_for_function(
        "() => document.querySelector('#drift-detail-card')?.innerText.includes('Reference vs window: kvp')"
    )
    detail = tab.page.inner_text("#drift-detail-card")
    assert f"to {after_onset}" in detail and "BREACH" in detail.upper()
    assert tab.page.locator("#drift-distribution-graph .main-svg").first.is_visible()
    tab.screenshot("viewer-drift-click-through")

    click_heatmap_cell(tab, "drift-heatmap", x=before_onset, y="kernel")
    tab.page.wait_for_function(
        "() => document.querySelector('#drift-detail-card')?.innerText.includes('Reference vs window: kernel')"
    )
    assert f"to {before_onset}" in tab.page.inner_text("#drift-detail-card")
    assert tab.problems == []


def test_the_report_link_opens_the_evidently_drill_down(tab: Tab) -> None:
    sign_in_as(tab, "quinn")
    tab.open("/dashboard/drift?model=ich-ct", "#drift-report-link")

    with tab.context.expect_page(timeout=120_000) as opened:
        tab.page.click("#drift-report-link")
    report = opened.value
    report.wait_for_load_state("domcontentloaded", timeout=120_000)

    assert "radmon check run" in report.content()
    report.screenshot(path=str(SCREENSHOTS / "qa-drift-evidently-report.png"))
    assert tab.problems == []


def test_subgroups_window_and_metric_pickers(tab: Tab, live: Live) -> None:
    sign_in_as(tab, "quinn")
    tab.open("/dashboard/subgroups?model=ich-ct", "#subgroups-forest-graph .main-svg")
    options = tab.page.eval_on_selector_all(
        "#subgroups-window-select option", "options => options.filter(o => o.value).map(o => [o.value, o.textContent])"
    )
    assert len(options) == DAYS - FIRST_CHECK + 1
    first_week_after = (
        live.simulation.start + timedelta(days=ONSET + 7)
    ).isoformat()  # the first window wholly after the change
    assert "below target" in dict(options)[first_week_after]

    tab.page.select_option("#subgroups-metric-select", "specificity")
    tab.page.wait_for_function(
        "() => document.querySelector('#subgroups-forest-graph')?.innerText.includes('Specificity per segment')"
    )
    tab.page.select_option("#subgroups-metric-select", "sensitivity")
    tab.page.wait_for_function(
        "() => document.querySelector('#subgroups-forest-graph')?.innerText.includes('Sensitivity per segment')"
    )
    tab.page.select_option("#subgroups-window-select", first_week_after)
    tab.page.wait_for_function(
        "() => location.search.includes('window=') && location.search.includes('metric=sensitivity')"
    )
    tab.page.wait_for_selector("#subgroups-ranking .table-danger")

    assert tab.page.input_value("#subgroups-window-select") == first_week_after
    breached = tab.page.locator("#subgroups-ranking .table-danger").all_inner_texts()
    assert any("site=north" in row for row in breached), breached
    tab.screenshot("qa-subgroups-window-below-target")
    assert tab.problems == []
