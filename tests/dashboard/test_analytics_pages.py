"""The analytic pages (overview status, drift, performance, subgroups) on real check runs: two weekly
windows of synthetic head-CT traffic, the second with shifted inputs and a sensitivity drop at one
site, checked by checks_flows.run_checks and turned into alerts as the scheduler does."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import policy as checks_policy
from monitor.checks import reads as checks_reads
from monitor.checks.kinds import window_end_default
from monitor.checks.models import DailyProfile
from monitor.checks.schemas import CheckRunOut, MonitoringPolicy
from monitor.config import Settings
from monitor.reference import service as reference_service
from tests.checks.data import POLICY, frame, insert_inferences, insert_outcomes, records
from tests.dashboard.callbacks import call, find, response_of, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.factories import make_model, make_user, make_version

ROLES = {"viewer": "vera", "qa": "quinn", "approver": "avery", "admin": "ada"}
WEEK = 2100


@dataclass(frozen=True)
class Monitored:
    """The seeded model's two weekly windows and their runs by kind."""

    first_end: datetime
    last_end: datetime
    runs: dict[tuple[str, datetime], CheckRunOut]

    def run(self, kind: str, window_end: datetime | None = None) -> CheckRunOut:
        return self.runs[(kind, window_end or self.last_end)]


def _degrade_north(data: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Half of site north's hemorrhages scored low: its sensitivity falls far below the 0.9 target."""
    rng = np.random.default_rng(seed)
    missed = (data["site"] == "north") & (data["label"] == 1) & (rng.random(len(data)) < 0.5)
    data.loc[missed, "score"] = 0.2
    data.loc[missed, "prediction"] = 0
    return data


@pytest.fixture
def monitored(session: Session, settings: Settings) -> Monitored:
    """ich-ct 2.1.0 live with a reference, two weeks of labelled inferences ending today 00:00 UTC,
    every check kind run on both weekly windows, and the alerts they raise."""
    for role, username in ROLES.items():
        make_user(session, role=role, username=username)
    make_model(session)
    version = make_version(session, activate=True)
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )
    reference_service.upload_records(
        session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(2000, seed=1))
    )
    last_end = window_end_default(datetime.now(UTC))
    first_end = last_end - timedelta(days=7)
    weeks = [
        (first_end - timedelta(days=7), frame(WEEK, seed=2)),
        (first_end, _degrade_north(frame(WEEK, seed=3, shift=1.0, new_manufacturer=0.05), seed=4)),
    ]
    for start, data in weeks:
        ids = insert_inferences(session, version, data, start=start, days=7)
        insert_outcomes(session, version.model_id, dict(zip(ids, data["label"].astype(int).tolist(), strict=True)))
    runs: dict[tuple[str, datetime], CheckRunOut] = {}
    for window_end in (first_end, last_end):
        for run in checks_flows.run_checks(session=session, actor=SYSTEM, model_name="ich-ct", window_end=window_end):
            alerts_service.process_run(
                session=session, run_id=run.id, settings=settings, now=window_end + timedelta(hours=2)
            )
            runs[(run.kind, window_end)] = checks_reads.get_run(session=session, actor=SYSTEM, run_id=run.id)
    return Monitored(first_end, last_end, runs)


def point(run: CheckRunOut, metric: str, *, feature: str | None = None, segment: str | None = None):  # type: ignore[no-untyped-def]
    [found] = [p for p in run.metrics or [] if p.metric == metric and p.feature == feature and p.segment == segment]
    return found


def click_on(window_end: datetime, feature: str) -> dict:
    """The clickData dcc.Graph sends for a heatmap cell: its x and y (no customdata for heatmaps)."""
    return {"points": [{"curveNumber": 0, "x": f"{window_end:%Y-%m-%d}", "y": feature, "z": 0, "text": "0.3"}]}


def figure_of(page: str, graph_id: str) -> dict:
    return find(page, graph_id)["figure"]


# -- overview --------------------------------------------------------------------------------------


def test_overview_shows_the_worst_alert_last_check_volume_and_label_coverage(
    dashboard_client: TestClient, session: Session, monitored: Monitored
) -> None:
    make_model(session, name="ptx-cxr", display_name="Pneumothorax (chest X-ray)")
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/")

    assert (
        find(page, "overview-status-ich-ct")["children"] == "critical"
    )  # north's sensitivity: a potential adverse event
    assert "open" in text_of(find(page, "overview-row-ich-ct"))
    last = text_of(find(page, "overview-last-check-ich-ct"))
    assert f"window to {monitored.last_end:%Y-%m-%d}" in last
    bars = figure_of(page, "overview-sparkline-ich-ct")["data"][0]
    counts = dict(zip(bars["x"], bars["y"], strict=True))
    assert len(counts) == 28 and sum(counts.values()) == 2 * WEEK  # every inference, in whole UTC days
    assert counts[f"{monitored.last_end - timedelta(days=1):%Y-%m-%d}"] == WEEK // 7
    coverage = monitored.run("performance").summary["label_coverage"]
    assert f"{coverage:.0%}" in text_of(find(page, "overview-row-ich-ct"))
    assert find(page, "overview-tile-critical-value")["children"] == 1
    assert find(page, "overview-status-ptx-cxr")["children"] == "No checks yet"
    assert "no labels yet" in text_of(find(page, "overview-row-ptx-cxr"))


def test_overview_volume_reads_daily_profiles_and_counts_the_days_none_covers(
    dashboard_client: TestClient, session: Session
) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    version = make_version(session, activate=True)
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )
    reference_service.upload_records(
        session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(1000, seed=1))
    )
    end = window_end_default(datetime.now(UTC))
    insert_inferences(session, version, frame(1200, seed=2), start=end - timedelta(days=12), days=12)  # 100 a day
    checks_flows.run_checks(session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=end)
    profiled = session.execute(select(DailyProfile.day, DailyProfile.row_count)).all()
    sign_in(dashboard_client, "vera")

    bars = figure_of(render_page(dashboard_client, "/"), "overview-sparkline-ich-ct")["data"][0]

    counts = dict(zip(bars["x"], bars["y"], strict=True))
    assert len(profiled) == 7 and {n for _, n in profiled} == {
        100
    }  # the check's window; the 5 days before it have none
    assert sum(counts.values()) == 1200 and counts[f"{end - timedelta(days=12):%Y-%m-%d}"] == 100


def test_overview_says_no_labels_yet_before_outcomes_arrive(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    version = make_version(session, activate=True)
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )
    reference_service.upload_records(
        session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(1000, seed=1))
    )
    end = window_end_default(datetime.now(UTC))
    insert_inferences(session, version, frame(700, seed=2), start=end - timedelta(days=7), days=7)
    checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift", "performance"], window_end=end
    )
    sign_in(dashboard_client, "vera")

    row = text_of(find(render_page(dashboard_client, "/"), "overview-row-ich-ct"))

    assert "no labels yet" in row and "No open alerts" in row


# -- each page for each read role ------------------------------------------------------------------


@pytest.mark.parametrize("role", list(ROLES))
def test_every_analytic_page_renders_its_figures_for_each_read_role(
    dashboard_client: TestClient, monitored: Monitored, role: str
) -> None:
    sign_in(dashboard_client, ROLES[role])

    drift = render_page(dashboard_client, "/drift", "?model=ich-ct")
    performance = render_page(dashboard_client, "/performance", "?model=ich-ct")
    subgroups = render_page(dashboard_client, "/subgroups", "?model=ich-ct")

    for graph in (
        "drift-heatmap",
        "drift-distribution-graph",
        "drift-unified-graph",
        "drift-score-graph",
        "drift-rate-graph",
    ):
        assert figure_of(drift, graph)["data"], graph
    for graph in (
        "performance-sensitivity-graph",
        "performance-auc-graph",
        "performance-reliability-graph",
        "performance-cusum-graph",
    ):
        assert figure_of(performance, graph)["data"], graph
    for graph in ("subgroups-heatmap", "subgroups-forest-graph"):
        assert figure_of(subgroups, graph)["data"], graph
    assert "-error" not in drift + performance + subgroups


# -- drift -------------------------------------------------------------------------------------


def test_drift_heatmap_puts_the_shifted_features_first_with_their_verdicts(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    inputs = monitored.run("input_drift")

    page = render_page(dashboard_client, "/drift", "?model=ich-ct&version=2.1.0")

    heatmap = figure_of(page, "drift-heatmap")["data"][0]
    assert heatmap["x"] == [f"{monitored.first_end:%Y-%m-%d}", f"{monitored.last_end:%Y-%m-%d}"]
    drifted = set(inputs.summary["drifted_features"])
    assert set(heatmap["y"][: len(drifted)]) == drifted  # most drifted rows on top
    verdicts = {feature: row[1] for feature, row in zip(heatmap["y"], heatmap["z"], strict=True)}
    breach, ok = 2.0, 0.0
    assert verdicts["age"] == breach and point(inputs, "drift_score", feature="age").status == "breach"
    assert verdicts["kvp"] == ok
    age_ratio = (
        point(inputs, "drift_score", feature="age").value / point(inputs, "drift_score", feature="age").threshold
    )
    assert heatmap["text"][heatmap["y"].index("age")][1] == f"{age_ratio:.1f}"
    assert (
        find(page, "drift-tile-features-value")["children"]
        == f"{len(drifted)} of {inputs.summary['features_evaluated']}"
    )
    assert f"ending {monitored.first_end:%Y-%m-%d} to {monitored.last_end:%Y-%m-%d}" in text_of(
        figure_of(page, "drift-heatmap")["layout"]["title"]
    )


def test_the_detail_opens_on_the_latest_windows_most_drifted_feature(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    inputs = monitored.run("input_drift")
    worst = max(
        (p for p in inputs.metrics or [] if p.metric == "drift_score" and p.value is not None),
        key=lambda p: p.value / p.threshold,
    )

    page = render_page(dashboard_client, "/drift", "?model=ich-ct")

    detail = find(page, "drift-detail-card")
    assert f"Reference vs window: {worst.feature}" in text_of(detail)
    bars = figure_of(page, "drift-distribution-graph")["data"]
    assert bars[0]["name"] == "reference (n = 2,000)" and bars[1]["name"] == f"window (n = {WEEK:,})"
    assert find(page, "drift-report-link")["href"] == f"/dashboard/checks/{inputs.id}/report"


def test_clicking_a_heatmap_cell_shows_that_feature_in_that_window(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    earlier = monitored.run("input_drift", monitored.first_end)
    page = render_page(dashboard_client, "/drift", "?model=ich-ct")
    runs = find(page, "drift-runs-store")["data"]
    assert runs == {
        f"{monitored.first_end:%Y-%m-%d}": earlier.id,
        f"{monitored.last_end:%Y-%m-%d}": monitored.run("input_drift").id,
    }

    result = response_of(call(dashboard_client, "drift-heatmap.clickData", {"drift-heatmap.clickData": click_on(monitored.first_end, "manufacturer"),
                                                                             "drift-runs-store.data": runs}))  # fmt: skip

    panel = result["drift-detail"]["children"]
    assert "Reference vs window: manufacturer" in text_of(panel)
    figure = find(panel, "drift-distribution-graph")["figure"]
    reference, window = figure["data"][0], figure["data"][1]
    assert reference["x"] == window["x"] and set(reference["x"]) >= {"GE", "Siemens", "Philips", "Canon"}
    assert sum(window["y"]) == pytest.approx(1.0) and window["name"] == f"window (n = {WEEK:,})"
    assert find(panel, "drift-report-link")["href"] == f"/dashboard/checks/{earlier.id}/report"
    findings = text_of(find(panel, "drift-detail-findings"))
    assert "Unseen categories" in findings
    assert re.search(r"jensenshannon; threshold 0\.1; net of sampling noise -?[0-9.e-]+; n ", findings), findings


def test_the_shifted_window_marks_new_categories_and_counts_few_valued_features_exactly(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    runs = {f"{monitored.last_end:%Y-%m-%d}": monitored.run("input_drift").id}

    def panel(feature: str) -> dict:
        clicked = {"drift-heatmap.clickData": click_on(monitored.last_end, feature), "drift-runs-store.data": runs}
        return response_of(call(dashboard_client, "drift-heatmap.clickData", clicked))["drift-detail"]["children"]

    manufacturer = find(panel("manufacturer"), "drift-distribution-graph")["figure"]["data"]
    kvp = find(panel("kvp"), "drift-distribution-graph")["figure"]["data"]

    assert (
        manufacturer[0]["x"][-1] == "United Imaging (new)"
        and manufacturer[0]["y"][-1] == 0
        and manufacturer[1]["y"][-1] > 0
    )
    assert kvp[0]["x"] == ["100", "120", "140"]  # one bar per value, not bins


@pytest.mark.parametrize(
    "click",
    [None, {"points": []}, {"points": [{"x": "2001-01-01", "y": "age"}]}, {"points": [{"x": "day", "y": "a" * 65}]}],
)
def test_a_malformed_click_changes_nothing(dashboard_client: TestClient, session: Session, click: object) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")

    result = call(
        dashboard_client,
        "drift-heatmap.clickData",
        {"drift-heatmap.clickData": click, "drift-runs-store.data": {"day": 1}},
    )

    assert result.status_code == 204


def test_the_evidently_report_is_served_to_a_signed_in_viewer_only(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    run = monitored.run("output_drift")
    anonymous = dashboard_client.get(f"/dashboard/checks/{run.id}/report", follow_redirects=False)
    assert anonymous.status_code in (302, 303) and "/dashboard/login" in anonymous.headers["location"]
    sign_in(dashboard_client, "vera")

    report = dashboard_client.get(f"/dashboard/checks/{run.id}/report")
    not_drift = dashboard_client.get(f"/dashboard/checks/{monitored.run('performance').id}/report")
    missing = dashboard_client.get("/dashboard/checks/99999999999/report")

    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert f"radmon check run {run.id}" in report.text
    assert not_drift.status_code == 409 and "no Evidently report" in not_drift.json()["error"]["message"]
    assert missing.status_code == 404


# -- performance -----------------------------------------------------------------------------------


def test_performance_shows_realized_and_estimated_series_against_targets(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    realized = point(monitored.run("performance"), "sensitivity")
    estimated = point(monitored.run("estimated_performance"), "sensitivity")

    page = render_page(dashboard_client, "/performance", "?model=ich-ct")

    tile = text_of(find(page, "performance-tile-sensitivity"))
    assert f"{realized.value:.1%}" in tile and f"{realized.ci_low:.3f}" in tile and "target 0.9" in tile
    traces = {t.get("name"): t for t in figure_of(page, "performance-sensitivity-graph")["data"]}
    line = traces["realized (labelled outcomes)"]
    assert line["y"][-1] == pytest.approx(realized.value) and len(line["y"]) == 2
    assert traces["estimated (label-free)"]["y"][-1] == pytest.approx(estimated.value)
    bands = [t for t in figure_of(page, "performance-sensitivity-graph")["data"] if t.get("fill") == "tonexty"]
    assert [b["y"][-1] for b in bands] == pytest.approx([realized.ci_low, estimated.ci_low])
    shapes = figure_of(page, "performance-sensitivity-graph")["layout"]["shapes"]
    assert [s["y0"] for s in shapes] == [0.9]  # the version's target
    assert "no target declared" in text_of(figure_of(page, "performance-ppv-graph")["layout"]["title"])


def test_performance_shows_the_latest_reliability_bins_and_cusum(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    latest = monitored.run("performance")
    bins = point(latest, "ece").details["reliability"]
    cusum = point(latest, "sensitivity_cusum").details

    page = render_page(dashboard_client, "/performance", "?model=ich-ct")

    observed = figure_of(page, "performance-reliability-graph")["data"][1]
    assert observed["y"] == pytest.approx([b["observed"] for b in bins])
    lines = {t.get("name"): t for t in figure_of(page, "performance-cusum-graph")["data"]}
    assert lines["Sensitivity"]["x"] == cusum["days"] and lines["Sensitivity"]["y"] == pytest.approx(cusum["s"])
    assert figure_of(page, "performance-cusum-graph")["layout"]["shapes"][0]["y0"] == pytest.approx(cusum["h"])


def test_performance_draws_one_segments_realized_and_estimated_series(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    realized = point(monitored.run("subgroups"), "sensitivity", segment="site=north")
    estimated = point(monitored.run("estimated_performance"), "sensitivity", segment="site=north")
    overall = point(monitored.run("performance"), "sensitivity")

    page = render_page(dashboard_client, "/performance", "?model=ich-ct&segment=site%3Dnorth")

    picker = find(page, "performance-segment-select")
    assert picker["value"] == "site=north" and picker["options"][0] == {"label": "whole population", "value": "all"}
    assert {"label": "segment site=south", "value": "site=south"} in picker["options"]
    traces = {t.get("name"): t for t in figure_of(page, "performance-sensitivity-graph")["data"]}
    assert traces["realized (labelled outcomes)"]["y"][-1] == pytest.approx(realized.value)
    assert traces["estimated (label-free)"]["y"][-1] == pytest.approx(estimated.value)
    assert realized.value < overall.value - 0.1  # north's drop, not the whole population's figure
    assert f"{realized.value:.1%}" in text_of(find(page, "performance-tile-sensitivity"))
    assert "segment site=north" in text_of(find(page, "performance-timelines"))
    assert figure_of(page, "performance-reliability-graph")["data"]  # calibration and CUSUM stay whole-population


def test_an_unknown_segment_is_explained(dashboard_client: TestClient, monitored: Monitored) -> None:
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/performance", "?model=ich-ct&segment=site%3Dmars")

    assert "performance-error" in page and "no figures for segment 'site=mars'" in page


# -- subgroups -------------------------------------------------------------------------------------


def test_subgroups_rank_the_degraded_site_first_and_show_small_segments_as_insufficient(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    north = point(monitored.run("subgroups"), "sensitivity", segment="site=north")
    assert north.status == "breach"

    page = render_page(dashboard_client, "/subgroups", "?model=ich-ct")

    first = text_of(find(page, "subgroups-row-1"))
    assert "site=north" in first and "breach" in first and "Sensitivity" in first and "below target" in first
    heatmap = figure_of(page, "subgroups-heatmap")["data"][0]
    row = heatmap["y"].index("site=north")
    assert heatmap["z"][row][0] == 2.0 and heatmap["text"][row][0] == f"{north.value:.2f}"
    forest = figure_of(page, "subgroups-forest-graph")["data"][0]
    at = forest["y"].index("site=north")
    assert forest["x"][at] == pytest.approx(north.value)
    assert forest["error_x"]["arrayminus"][at] == pytest.approx(north.value - north.ci_low)
    assert find(page, "subgroups-tile-breach-value")["children"] >= 1


def test_subgroups_window_picker_shows_the_earlier_clean_window(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")

    page = render_page(
        dashboard_client, "/subgroups", f"?model=ich-ct&window={monitored.first_end:%Y-%m-%d}&metric=specificity"
    )

    options = find(page, "subgroups-window-select")["options"]
    assert [o["value"] for o in options] == [monitored.last_end.isoformat(), monitored.first_end.isoformat()]
    assert "below target" in options[0]["label"] and "below target" not in options[1]["label"]
    assert find(page, "subgroups-tile-breach-value")["children"] == 0
    assert "Specificity per segment" in text_of(figure_of(page, "subgroups-forest-graph")["layout"]["title"])


def test_segments_too_small_to_judge_are_shown_with_their_counts(
    dashboard_client: TestClient, session: Session, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    policy = dict(POLICY, min_positives=60, min_negatives=30)  # site-level positives (~50 a week) now fall short
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(policy)
    )
    checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["subgroups"], window_end=monitored.last_end
    )

    page = render_page(dashboard_client, "/subgroups", "?model=ich-ct")

    heatmap = figure_of(page, "subgroups-heatmap")["data"][0]
    row = heatmap["y"].index("site=south")
    assert heatmap["z"][row][0] == 3.0 and heatmap["text"][row][0].startswith("n = ")
    forest = figure_of(page, "subgroups-forest-graph")["data"]
    assert any(label.startswith("site=south (n = ") for label in forest[1]["y"])
    assert "insufficient data" in json.dumps(forest[1]["text"])


# -- navigation, empty and error states -----------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "values", "expected"),
    [
        ("drift-days-select.value", {"drift-model-select.value": "ich-ct", "drift-version-select.value": "2.1.0", "drift-days-select.value": "90"},
         "/dashboard/drift?model=ich-ct&version=2.1.0&days=90"),
        ("performance-segment-select.value", {"performance-model-select.value": "ich-ct", "performance-version-select.value": "2.1.0",
                                              "performance-segment-select.value": "site=north", "performance-days-select.value": "30"},
         "/dashboard/performance?model=ich-ct&version=2.1.0&segment=site%3Dnorth&days=30"),
        ("drift-model-select.value", {"drift-model-select.value": "ptx-cxr", "drift-version-select.value": "2.1.0", "drift-days-select.value": "90"},
         "/dashboard/drift?model=ptx-cxr"),
        ("subgroups-metric-select.value", {"subgroups-model-select.value": "ich-ct", "subgroups-version-select.value": "2.1.0",
                                           "subgroups-window-select.value": "2026-11-20T00:00:00+00:00", "subgroups-metric-select.value": "auc"},
         "/dashboard/subgroups?model=ich-ct&version=2.1.0&window=2026-11-20T00%3A00%3A00%2B00%3A00&metric=auc"),
    ],
)  # fmt: skip
def test_pickers_navigate_to_the_chosen_model_version_and_period(
    dashboard_client: TestClient, session: Session, trigger: str, values: dict, expected: str
) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")

    result = response_of(call(dashboard_client, trigger, values))

    assert next(iter(result.values()))["href"] == expected


def test_a_model_without_runs_says_what_is_missing_on_each_page(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    make_version(session, activate=True)
    sign_in(dashboard_client, "vera")

    assert "drift-no-runs" in render_page(dashboard_client, "/drift")
    assert "performance-no-runs" in render_page(dashboard_client, "/performance")
    assert "subgroups-no-runs" in render_page(dashboard_client, "/subgroups")


def test_no_models_and_unknown_versions_are_explained(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")
    assert "drift-empty" in render_page(dashboard_client, "/drift")

    make_model(session)
    make_version(session)
    page = render_page(dashboard_client, "/performance", "?model=ich-ct&version=9.9.9")
    assert "performance-error" in page and "has no version '9.9.9'" in page
    page = render_page(dashboard_client, "/subgroups", "?model=ich-ct&window=yesterday")
    assert "subgroups-error" in page and "must be a date" in page


def test_a_failed_drift_run_is_explained_not_hidden(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    version = make_version(session, activate=True)
    end = window_end_default(datetime.now(UTC))
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )
    insert_inferences(session, version, frame(300, seed=2), start=end - timedelta(days=7), days=7)
    [run] = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=end
    )
    assert run.status == "failed" and "has no reference" in (run.error or "")
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/drift", "?model=ich-ct")

    assert "drift-failed" in page and "has no reference" in page and "drift-no-runs" in page
