"""Figures and widgets from plain data: no database, no browser."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from dash import html

from dashboard.components.figures import deployment_timeline, plotly_time
from dashboard.components.widgets import chain_status, fmt_time, target_text
from monitor.audit.service import Verification

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


def test_chain_status_names_the_first_broken_link() -> None:
    broken = chain_status(Verification(False, 7, "ab" * 32, 5, "event 5 was altered after it was written (hash mismatch)"))
    intact = chain_status(Verification(True, 7, "cd" * 32))

    assert broken.id == "audit-chain-broken" and intact.id == "audit-chain-ok"
    text = json.dumps(html.Div(broken).to_plotly_json(), default=lambda c: c.to_plotly_json())
    assert "Chain broken at event #5" in text and "hash mismatch" in text and "verified: 4" in text
