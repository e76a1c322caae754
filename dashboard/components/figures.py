"""Plotly figures built from plain data (lists of dicts, datetimes), so tests need no browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go

LIVE_COLOR = "#0d6efd"  # Bootstrap primary: the version live now
PAST_COLOR = "#9aa5b1"  # earlier deployments
MIN_WINDOW = timedelta(days=7)  # the timeline always shows at least the last week
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def base_layout(title: str, *, x_title: str, y_title: str, height: int = 320) -> dict[str, Any]:
    """The look every dashboard chart shares: white template, titled axes with units."""
    return {
        "title": {"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 15}},
        "xaxis": {"title": {"text": x_title}, "showgrid": True, "gridcolor": "#eef0f3"},
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#eef0f3"},
        "template": "plotly_white",
        "font": {"family": FONT, "size": 12, "color": "#212529"},
        "height": height,
        "margin": {"l": 80, "r": 24, "t": 56, "b": 56},
        "showlegend": False,
        "hoverlabel": {"font": {"family": FONT}},
    }


def deployment_timeline(deployments: Sequence[Mapping[str, Any]], *, now: datetime) -> go.Figure:
    """Which version was live when: one bar per deployment, from its activation to the next one (or now).

    Each deployment is a mapping with `version`, `activated_at` (aware datetime), `activated_by`
    and `reason`; the order given does not matter."""
    ordered = sorted(deployments, key=lambda d: d["activated_at"])
    starts = [d["activated_at"] for d in ordered]
    ends = starts[1:] + [now] if ordered else []
    versions = [str(d["version"]) for d in ordered]
    category_order = list(dict.fromkeys(versions))  # first activation first
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            orientation="h",
            y=versions,
            base=[plotly_time(start) for start in starts],
            x=[max((end - start).total_seconds(), 0.0) * 1000 for start, end in zip(starts, ends, strict=True)],
            marker={"color": [PAST_COLOR] * (len(ordered) - 1) + [LIVE_COLOR] if ordered else []},
            customdata=[
                [_stamp(start), "now" if i == len(ordered) - 1 else _stamp(end), d["activated_by"], d.get("reason") or "-"]
                for i, (d, start, end) in enumerate(zip(ordered, starts, ends, strict=True))
            ],
            hovertemplate=(
                "<b>version %{y}</b><br>live %{customdata[0]} → %{customdata[1]}"
                "<br>activated by %{customdata[2]}<br>reason: %{customdata[3]}<extra></extra>"
            ),
            width=0.5,
            name="live period",
        )
    )
    # A diamond marks each activation, so a deployment made minutes ago is still visible.
    figure.add_trace(
        go.Scatter(
            x=[plotly_time(start) for start in starts],
            y=versions,
            mode="markers",
            marker={"symbol": "diamond", "size": 11, "color": "#212529"},
            hovertemplate="<b>version %{y}</b> activated %{x|%Y-%m-%d %H:%M} UTC<extra></extra>",
            name="activation",
        )
    )
    layout = base_layout(
        "Deployment timeline: live version over time (UTC)",
        x_title="Date (UTC)",
        y_title="Model version",
        height=140 + 44 * max(len(category_order), 1),
    )
    window_start = min([now - MIN_WINDOW, *starts])
    layout["xaxis"].update(type="date", range=[plotly_time(window_start), plotly_time(now + (now - window_start) * 0.02)])
    layout["yaxis"].update(categoryorder="array", categoryarray=category_order, autorange="reversed", type="category")
    figure.update_layout(**layout)
    return figure


def plotly_time(moment: datetime) -> str:
    """A UTC wall-clock string: plotly.js drops zone offsets, so convert first and omit it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# What each metric is measured in, for axis titles (every chart says its units).
METRIC_UNITS = {
    "sensitivity": "Sensitivity (proportion, 0–1)",
    "specificity": "Specificity (proportion, 0–1)",
    "ppv": "PPV (proportion, 0–1)",
    "npv": "NPV (proportion, 0–1)",
    "accuracy": "Accuracy (proportion, 0–1)",
    "f1": "F1 score (0–1)",
    "auc": "AUC (0–1)",
    "brier": "Brier score (0–1, lower is better)",
    "ece": "Expected calibration error (0–1)",
    "positive_rate": "Positive-prediction rate (share, 0–1)",
    "missing_share": "Missing values (share of records, 0–1)",
    "unseen_categories": "Unseen categories (share of records, 0–1)",
    "dataset_drift_share": "Drifted features (share, 0–1)",
}
P_VALUE_METHODS = ("ks", "chisquare")


def metric_axis_title(metric: str, method: str | None = None) -> str:
    """'Sensitivity (proportion, 0–1)'; drift scores say their method, p-value methods say so."""
    if metric in METRIC_UNITS:
        return METRIC_UNITS[metric]
    if method in P_VALUE_METHODS:
        return f"p-value ({method} test)"
    if method:
        return f"{metric.replace('_', ' ').capitalize()} ({method} distance)"
    return metric.replace("_", " ").capitalize()


def alert_occurrences(
    occurrences: Sequence[Mapping[str, Any]], *, metric: str, method: str | None, title: str
) -> go.Figure:
    """An alert's value in each window where it held, with its 95% interval, against the threshold.

    Each occurrence is a mapping with `window_end` (aware datetime), `value`, `ci_low`, `ci_high`,
    `n`, `threshold` and `status`; windows without a value are skipped."""
    points = sorted((o for o in occurrences if o.get("value") is not None), key=lambda o: o["window_end"])
    x = [plotly_time(o["window_end"]) for o in points]
    values = [float(o["value"]) for o in points]
    has_interval = [o.get("ci_low") is not None and o.get("ci_high") is not None for o in points]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=x,
            y=values,
            mode="lines+markers",
            line={"color": "#dc3545", "width": 2},
            marker={"size": 8, "color": ["#dc3545" if o.get("status") == "breach" else "#fd7e14" for o in points]},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [float(o["ci_high"]) - v if ok else 0 for o, v, ok in zip(points, values, has_interval, strict=True)],
                "arrayminus": [v - float(o["ci_low"]) if ok else 0 for o, v, ok in zip(points, values, has_interval, strict=True)],
                "color": "#adb5bd",
                "thickness": 1.5,
                "width": 4,
            },
            customdata=[[o.get("n") if o.get("n") is not None else "-", o.get("status", "")] for o in points],
            hovertemplate="window ending %{x|%Y-%m-%d} UTC<br>value %{y:.3f}<br>n %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
            name="value (95% interval)",
        )
    )
    thresholds = [o.get("threshold") for o in points]
    if points and all(t is not None for t in thresholds):
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[float(t) for t in thresholds],  # type: ignore[arg-type]
                mode="lines",
                line={"color": "#212529", "dash": "dash", "width": 1.5, "shape": "hv"},
                hovertemplate="threshold %{y:.3f}<extra></extra>",
                name="target / threshold",
            )
        )
    layout = base_layout(title, x_title="Window end (UTC)", y_title=metric_axis_title(metric, method), height=300)
    layout["showlegend"] = True
    layout["legend"] = {"orientation": "h", "y": -0.42, "x": 0, "yanchor": "top"}
    layout["margin"] = {"l": 80, "r": 24, "t": 56, "b": 96}
    layout["height"] = 330
    layout["xaxis"].update(type="date")
    figure.update_layout(**layout)
    return figure
