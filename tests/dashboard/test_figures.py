"""Figures and widgets from plain data: no database, no browser."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from dash import html

from dashboard.components.figures import (
    STATUS_COLORS,
    cusum_chart,
    deployment_timeline,
    distribution_comparison,
    drift_heatmap,
    drift_ratio,
    forest_plot,
    metric_timeline,
    plotly_time,
    reliability_diagram,
    status_timeline,
    subgroup_heatmap,
    volume_sparkline,
)
from dashboard.components.widgets import chain_status, fmt_time, target_text
from monitor.audit.verification import ChainCheck

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def deployment(version: str, days_ago: float, reason: str = "go-live") -> dict:
    return {"version": version, "activated_at": NOW - timedelta(days=days_ago), "activated_by": "ada", "reason": reason}


def test_timeline_draws_one_live_period_per_deployment_until_the_next() -> None:
    deployments = [deployment("2.1.0", 10, "promotion"), deployment("2.0.0", 30), deployment("2.0.0", 3, "rollback")]

    bars = deployment_timeline(deployments, now=NOW).data[0]

    assert list(bars.y) == ["2.0.0", "2.1.0", "2.0.0"]  # sorted by activation, whatever the input order
    assert list(bars.base) == [plotly_time(NOW - timedelta(days=d)) for d in (30, 10, 3)]
    day_ms = 24 * 3600 * 1000
    assert [round(x / day_ms, 6) for x in bars.x] == [20, 7, 3]  # the last period runs until now
    assert bars.customdata[-1][1] == "now" and bars.customdata[1][3] == "promotion"


def test_timeline_highlights_the_live_version_and_keeps_first_activation_order() -> None:
    figure = deployment_timeline([deployment("1.0", 9), deployment("1.1", 5), deployment("1.0", 1)], now=NOW)

    colors = list(figure.data[0].marker.color)
    assert colors[-1] != colors[0] and colors[0] == colors[1]
    assert list(figure.layout.yaxis.categoryarray) == ["1.0", "1.1"]


def test_timeline_marks_each_activation_and_shows_at_least_a_week() -> None:
    figure = deployment_timeline([deployment("1.0", 0.001)], now=NOW)  # activated 90 s ago

    assert list(figure.data[1].x) == [plotly_time(NOW - timedelta(days=0.001))]
    start, end = figure.layout.xaxis.range
    assert start == plotly_time(NOW - timedelta(days=7)) and end > plotly_time(NOW)


def test_timeline_is_titled_with_units() -> None:
    layout = deployment_timeline([deployment("1.0", 2)], now=NOW).layout

    assert "UTC" in layout.title.text
    assert layout.xaxis.title.text == "Date (UTC)" and layout.xaxis.type == "date"
    assert layout.yaxis.title.text == "Model version"


def test_timeline_of_no_deployments_is_an_empty_figure() -> None:
    figure = deployment_timeline([], now=NOW)

    assert list(figure.data[0].y) == []
    json.dumps(figure.to_plotly_json(), default=str)  # still serializable for dcc.Graph


def test_plotly_times_are_utc_wall_clock() -> None:
    paris = timezone(timedelta(hours=1))

    assert plotly_time(datetime(2026, 1, 1, 9, 30, tzinfo=paris)) == "2026-01-01 08:30:00"
    assert fmt_time(datetime(2026, 1, 1, 9, 30, tzinfo=paris)) == "2026-01-01 08:30 UTC"


def test_targets_read_in_the_direction_that_is_better() -> None:
    assert target_text("sensitivity", 0.9) == "Sensitivity ≥ 0.90"
    assert target_text("ece", 0.05) == "ECE ≤ 0.05"


def _chain_check(**values: object) -> ChainCheck:
    at = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    base: dict[str, object] = {
        "ok": True, "through_seq": 7, "head_hash": "cd" * 32, "first_broken_seq": None, "problem": None, "scope": "incremental",
        "from_seq": 6, "checked": 2, "verified_at": at, "verified_by": "vera", "last_full_at": at - timedelta(days=1),
        "last_full_by": "quinn", "last_full_ok": True,
    }  # fmt: skip
    return ChainCheck(**(base | values))  # type: ignore[arg-type]


def _text(component: object) -> str:
    return json.dumps(html.Div(component).to_plotly_json(), default=lambda c: c.to_plotly_json())


def test_chain_status_names_the_first_broken_link() -> None:
    broken = chain_status(_chain_check(ok=False, through_seq=4, head_hash="ab" * 32, first_broken_seq=5,
                                       problem="event 5 was altered after it was written (hash mismatch)"))  # fmt: skip
    intact = chain_status(_chain_check())

    assert broken.id == "audit-chain-broken" and intact.id == "audit-chain-ok"
    assert (
        "Chain broken at event #5" in _text(broken)
        and "hash mismatch" in _text(broken)
        and "verified: 4" in _text(broken)
    )


def test_chain_status_says_what_was_rehashed_and_when_the_whole_chain_was() -> None:
    incremental = _text(chain_status(_chain_check()))
    nothing_new = _text(chain_status(_chain_check(checked=0)))
    never_full = _text(chain_status(_chain_check(last_full_at=None, last_full_by=None, last_full_ok=None)))

    assert "events #1 to #7 verified" in incremental and "2 new events from #6" in incremental
    assert "Whole chain last rehashed 2026-11-26 08:30:00 UTC by quinn (intact)" in incremental
    assert "No events appended since the last verification (2026-11-27 08:30:00 UTC by vera)" in nothing_new
    assert "The whole chain has not been rehashed yet" in never_full


# -- analytic pages ------------------------------------------------------------------------------


def drift_cell(
    feature: str,
    days_ago: int,
    value: float | None,
    status: str,
    *,
    threshold: float = 0.1,
    method: str = "wasserstein",
) -> dict:
    return {"feature": feature, "window_end": NOW - timedelta(days=days_ago), "value": value, "threshold": threshold,
            "method": method, "status": status, "n": 2100, "run_id": 100 - days_ago}  # fmt: skip


def window_point(
    days_ago: int, value: float | None, *, low: float | None = None, high: float | None = None, status: str = "ok"
) -> dict:
    return {
        "window_end": NOW - timedelta(days=days_ago),
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "n": 400,
        "status": status,
    }


def test_drift_ratio_is_past_the_threshold_above_one_for_distances_and_p_values() -> None:
    assert drift_ratio(0.25, 0.1, "wasserstein") == pytest.approx(2.5)
    assert drift_ratio(0.05, 0.05, "ks") == pytest.approx(1.0)  # p exactly at alpha
    assert drift_ratio(0.0025, 0.05, "chisquare") == pytest.approx(2.0)  # log p / log alpha
    assert drift_ratio(0.9, 0.05, "z") < 1  # no drift
    assert drift_ratio(0.0, 0.05, "ks") > 100  # p underflowed to 0: far past, not a crash
    assert drift_ratio(None, 0.1, "psi") is None and drift_ratio(0.2, None, "psi") is None


def test_drift_heatmap_puts_the_most_drifted_feature_first_and_colours_by_verdict() -> None:
    cells = [
        drift_cell("kvp", 1, 0.02, "ok"), drift_cell("kvp", 0, 0.03, "ok"),
        drift_cell("mean_hu", 1, 0.05, "ok"), drift_cell("mean_hu", 0, 0.42, "breach"),
        drift_cell("noise_sd", 1, None, "insufficient_data"), drift_cell("noise_sd", 0, 0.12, "warn"),
    ]  # fmt: skip

    figure = drift_heatmap(cells, title="Input drift", subtitle="7-day windows")
    heatmap = figure.data[0]

    assert list(heatmap.y) == ["mean_hu", "noise_sd", "kvp"]
    assert list(heatmap.x) == [(NOW - timedelta(days=1)).strftime("%Y-%m-%d"), NOW.strftime("%Y-%m-%d")]
    assert [list(row) for row in heatmap.z] == [[0.0, 2.0], [3.0, 1.0], [0.0, 0.0]]
    assert heatmap.text[0][1] == "4.2" and heatmap.text[1][0] == "n/a"
    assert list(heatmap.customdata[0][1][:2]) == [100, "mean_hu"]  # what the click-through needs
    legend = {trace.name for trace in figure.data[1:]}
    assert legend == {"ok", "warning", "breach", "insufficient data"}
    assert figure.layout.title.subtitle.text == "7-day windows" and figure.layout.xaxis.title.text == "Window end (UTC)"


def test_heatmap_colours_map_each_verdict_to_one_flat_colour() -> None:
    heatmap = drift_heatmap([drift_cell("kvp", 0, 0.01, "ok")], title="t").data[0]

    def color_at(z: float) -> str:  # the colour plotly picks for a cell with this z
        where = (z - heatmap.zmin) / (heatmap.zmax - heatmap.zmin)
        below = [color for stop, color in heatmap.colorscale if stop <= where]
        above = [color for stop, color in heatmap.colorscale if stop >= where]
        assert below[-1] == above[0], "a verdict's z must fall inside one flat band"
        return below[-1]

    verdicts = ["ok", "warn", "breach", "insufficient_data"]
    assert [color_at(float(z)) for z in range(4)] == [STATUS_COLORS[v] for v in verdicts]


def test_distribution_of_categories_marks_the_new_ones() -> None:
    distribution = {"kind": "categorical", "labels": ["GE", "Siemens", "United Imaging"], "edges": None,
                    "reference": [0.6, 0.4, 0.0], "window": [0.5, 0.3, 0.2], "reference_n": 1000, "window_n": 700,
                    "unseen": ["United Imaging"]}  # fmt: skip

    figure = distribution_comparison(distribution, title="manufacturer", x_title="manufacturer (category)")

    reference, window = figure.data
    assert list(reference.x) == ["GE", "Siemens", "United Imaging (new)"] and list(window.y) == [0.5, 0.3, 0.2]
    assert reference.name == "reference (n = 1,000)" and window.name == "window (n = 700)"
    assert figure.layout.barmode == "group" and figure.layout.yaxis.tickformat == ".0%"


def test_distribution_of_a_continuous_feature_draws_the_window_as_a_step_over_the_reference_bars() -> None:
    distribution = {"kind": "numeric", "labels": ["0 to 1", "1 to 2", "2 to 3"], "edges": [0.0, 1.0, 2.0, 3.0],
                    "reference": [0.2, 0.5, 0.3], "window": [0.1, 0.3, 0.6], "reference_n": 10, "window_n": 20, "unseen": []}  # fmt: skip

    figure = distribution_comparison(distribution, title="kvp", x_title="kVp", log_y=True)

    bars, step, hover = figure.data
    assert list(bars.x) == [0.5, 1.5, 2.5] and list(bars.width) == [1.0, 1.0, 1.0]
    assert list(step.x) == [0.0, 1.0, 1.0, 2.0, 2.0, 3.0] and list(step.y) == [0.1, 0.1, 0.3, 0.3, 0.6, 0.6]
    assert list(hover.customdata) == distribution["labels"]
    assert figure.layout.yaxis.type == "log" and "log scale" in figure.layout.yaxis.title.text


def test_metric_timeline_draws_realized_and_estimated_with_bands_and_the_target() -> None:
    realized = [window_point(7, 0.93, low=0.88, high=0.96), window_point(0, 0.81, low=0.74, high=0.87, status="breach"),
                window_point(14, None)]  # fmt: skip
    estimated = [window_point(0, 0.84, low=0.80, high=0.88)]

    figure = metric_timeline(
        realized, estimated, metric="sensitivity", target=0.9, title="Sensitivity", subtitle="7-day windows"
    )

    lines = {t.name: t for t in figure.data if t.mode == "lines+markers"}
    assert list(lines["realized (labelled outcomes)"].y) == [
        0.93,
        0.81,
    ]  # oldest first, the window without a value left out
    assert lines["estimated (label-free)"].line.dash == "dash"
    [missed] = [t for t in figure.data if t.name == "realized (labelled outcomes): below target"]
    assert list(missed.y) == [0.81] and list(missed.marker.color) == [STATUS_COLORS["breach"]]
    bands = [t for t in figure.data if t.fill == "tonexty"]
    assert [list(b.y) for b in bands] == [[0.88, 0.74], [0.80]]
    assert figure.layout.shapes[0].y0 == 0.9 and figure.layout.annotations[0].text == "target 0.9"
    assert figure.layout.yaxis.title.text == "Sensitivity (proportion, 0–1)"


def test_metric_timeline_without_target_or_points_still_renders() -> None:
    figure = metric_timeline([], metric="ppv", target=None, title="PPV")

    assert list(figure.data) == [] and not figure.layout.shapes
    json.dumps(figure.to_plotly_json(), default=str)


def test_status_timeline_marks_each_window_and_the_warn_and_breach_levels() -> None:
    points = [window_point(1, 0.4), window_point(0, 3.6, status="breach")]

    figure = status_timeline(points, title="Unified drift", y_title="σ", warn_at=2.0, breach_at=3.0)

    assert list(figure.data[0].marker.color) == [STATUS_COLORS["ok"], STATUS_COLORS["breach"]]
    assert sorted(shape.y0 for shape in figure.layout.shapes) == [2.0, 3.0]


def test_reliability_diagram_has_the_diagonal_and_the_observed_rates_with_intervals() -> None:
    bins = [{"mean_score": 0.05, "observed": 0.04, "ci_low": 0.02, "ci_high": 0.07, "n": 300},
            {"mean_score": 0.85, "observed": 0.7, "ci_low": 0.5, "ci_high": 0.85, "n": 20}]  # fmt: skip

    figure = reliability_diagram(bins, title="Reliability")

    diagonal, observed = figure.data
    assert list(diagonal.x) == [0, 1] and list(observed.y) == [0.04, 0.7]
    assert list(observed.error_y.arrayminus) == pytest.approx([0.02, 0.2])
    assert observed.marker.size[0] > observed.marker.size[1]  # bigger bins, bigger markers


def test_cusum_chart_draws_the_limit_and_crosses_the_days_that_signalled() -> None:
    days = [{"day": "2026-11-0" + str(d), "s": s} for d, s in zip(range(1, 6), [0.0, 1.5, 3.9, 4.5, 6.0], strict=True)]
    charts = {"sensitivity": {"days": days, "h": 4.08}, "specificity": {"days": days[:2], "h": 4.08}}

    figure = cusum_chart(charts, title="CUSUM")

    names = [t.name for t in figure.data]
    assert names[0] == "Sensitivity" and "Specificity" in names
    crosses = [t for t in figure.data if t.marker.symbol == "x"]
    assert len(crosses) == 1 and list(crosses[0].x) == ["2026-11-04", "2026-11-05"]
    assert figure.layout.shapes[0].y0 == 4.08 and "h = 4.08" in figure.layout.annotations[0].text


def segment(name: str, sensitivity: dict | None) -> dict:
    return {"segment": name, "metrics": {} if sensitivity is None else {"sensitivity": sensitivity}}


def test_subgroup_heatmap_shows_values_and_counts_where_too_small_to_judge() -> None:
    rows = [
        segment(
            "site=north", {"value": 0.71, "ci_low": 0.6, "ci_high": 0.8, "n": 84, "threshold": 0.9, "status": "breach"}
        ),
        segment(
            "site=east",
            {"value": 1.0, "ci_low": 0.7, "ci_high": 1.0, "n": 12, "threshold": 0.9, "status": "insufficient_data"},
        ),
    ]

    heatmap = subgroup_heatmap(rows, metrics=["sensitivity", "auc"], title="Segments").data[0]

    assert list(heatmap.y) == ["site=north", "site=east"] and list(heatmap.x) == ["Sensitivity", "AUC"]
    assert [list(r) for r in heatmap.z] == [[2.0, None], [3.0, None]]
    assert [list(r) for r in heatmap.text] == [["0.71", ""], ["n = 12", ""]]


def test_forest_plot_keeps_the_ranking_order_and_lists_small_segments_with_their_n() -> None:
    rows = [
        segment("site=north", {"value": 0.71, "ci_low": 0.6, "ci_high": 0.8, "n": 84, "status": "breach"}),
        segment("site=south", {"value": 0.93, "ci_low": 0.86, "ci_high": 0.97, "n": 90, "status": "ok"}),
        segment("site=east", {"value": 1.0, "ci_low": 0.7, "ci_high": 1.0, "n": 12, "status": "insufficient_data"}),
        segment("sex=(missing)", {"value": None, "n": 0, "status": "insufficient_data"}),
        segment("age=90+", None),
    ]

    figure = forest_plot(rows, metric="sensitivity", target=0.9, title="Sensitivity per segment")

    points, small = figure.data[0], figure.data[1]
    assert list(points.y) == ["site=north", "site=south"] and list(points.x) == [0.71, 0.93]
    assert list(points.error_x.array) == pytest.approx([0.09, 0.04]) and list(
        points.error_x.arrayminus
    ) == pytest.approx([0.11, 0.07])
    assert list(small.y) == ["site=east (n = 12)"] and small.text[0].startswith("insufficient data")
    assert list(figure.layout.yaxis.categoryarray) == ["site=north", "site=south", "site=east (n = 12)"]
    assert figure.layout.shapes[0].x0 == 0.9


def test_volume_sparkline_has_one_bar_per_day() -> None:
    days = [(NOW.date() - timedelta(days=i), 100 + i) for i in range(3, 0, -1)]

    bars = volume_sparkline(days).data[0]

    assert list(bars.x) == [d.isoformat() for d, _ in days] and list(bars.y) == [103, 102, 101]


def test_a_version_switch_sits_between_the_windows_that_ended_before_and_after_it() -> None:
    import plotly.graph_objects as go

    from dashboard.components.figures import mark_version_switches

    days = ["2026-12-05", "2026-12-06", "2026-12-07"]
    figure = go.Figure()
    switch = {"at": datetime(2026, 12, 6, 14, 7, tzinfo=UTC), "label": "2.0.0 live"}

    mark_version_switches(figure, [switch], days=days)
    mark_version_switches(figure, [{**switch, "at": datetime(2026, 12, 7, tzinfo=UTC)}], days=days)
    mark_version_switches(figure, [{**switch, "at": datetime(2026, 12, 7, 9, tzinfo=UTC)}], days=days)

    # Mid-day on Dec 6: the Dec 6 window (ended 00:00) was before it; at midnight Dec 7 the Dec 7 one is after.
    assert [shape.x0 for shape in figure.layout.shapes] == [1.5, 1.5, 2.5]
    assert [a.text for a in figure.layout.annotations] == ["2.0.0 live"] * 3
