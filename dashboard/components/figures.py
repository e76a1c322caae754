"""Plotly figures built from plain data (lists of dicts, datetimes), so tests need no browser."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import plotly.graph_objects as go

from monitor.checks.catalog import METRICS, metric_label

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
                [
                    _stamp(start),
                    "now" if i == len(ordered) - 1 else _stamp(end),
                    d["activated_by"],
                    d.get("reason") or "-",
                ]
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
    layout["xaxis"].update(
        type="date", range=[plotly_time(window_start), plotly_time(now + (now - window_start) * 0.02)]
    )
    layout["yaxis"].update(categoryorder="array", categoryarray=category_order, autorange="reversed", type="category")
    figure.update_layout(**layout)
    return figure


def plotly_time(moment: datetime) -> str:
    """A UTC wall-clock string: plotly.js drops zone offsets, so convert first and omit it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


P_VALUE_METHODS = ("ks", "chisquare")


def metric_axis_title(metric: str, method: str | None = None) -> str:
    """'Sensitivity (proportion, 0–1)'; drift scores say their method, p-value methods say so."""
    spec = METRICS.get(metric)  # what each metric is measured in: every chart says its units
    if spec is not None and spec.unit is not None:
        return spec.unit
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
                "array": [
                    float(o["ci_high"]) - v if ok else 0 for o, v, ok in zip(points, values, has_interval, strict=True)
                ],
                "arrayminus": [
                    v - float(o["ci_low"]) if ok else 0 for o, v, ok in zip(points, values, has_interval, strict=True)
                ],
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


# -- analytic pages: drift, performance, subgroups ----------------------------------------------
# Each function takes plain values (mappings, lists, datetimes) as dashboard.data returns them.

STATUS_COLORS = {  # fills for cells and markers; readable with dark text
    "ok": "#75b798",
    "warn": "#ffcd39",
    "breach": "#e35d6a",
    "insufficient_data": "#dee2e6",
}
STATUS_TEXT = {"ok": "ok", "warn": "warning", "breach": "breach", "insufficient_data": "insufficient data"}
STATUS_ORDER = ("ok", "warn", "breach", "insufficient_data")
REFERENCE_COLOR = "#6c757d"
WINDOW_COLOR = "#0d6efd"
ESTIMATE_COLOR = "#6f42c1"
TARGET_COLOR = "#212529"
DRIFT_P_VALUE_METHODS = ("ks", "chisquare", "z")


def _day(moment: datetime | date) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d") if isinstance(moment, datetime) else moment.isoformat()


def _layout(title: str, subtitle: str | None, *, x_title: str, y_title: str, height: int) -> dict[str, Any]:
    """base_layout with a second title line (the window, the population) under the title."""
    layout = base_layout(title, x_title=x_title, y_title=y_title, height=height)
    if subtitle:
        layout["title"]["subtitle"] = {"text": subtitle, "font": {"size": 12, "color": "#6c757d"}}
        layout["margin"]["t"] = 76
    return layout


def _legend_below(layout: dict[str, Any], *, bottom: int = 96) -> dict[str, Any]:
    """A horizontal legend under the x-axis title (positioned in pixels, so any height works)."""
    layout["showlegend"] = True
    layout["legend"] = {"orientation": "h", "x": 0, "xanchor": "left", "y": 0, "yanchor": "bottom", "yref": "container"}
    layout["margin"] = {**layout["margin"], "b": bottom}
    return layout


def _status_legend(figure: go.Figure, statuses: Collection[str]) -> None:
    """One square marker per status shown, so colour-coded cells explain themselves."""
    for status in STATUS_ORDER:
        if status in statuses:
            figure.add_trace(
                go.Scatter(
                    x=[None], y=[None], mode="markers", name=STATUS_TEXT[status], hoverinfo="skip",
                    marker={"symbol": "square", "size": 12, "color": STATUS_COLORS[status], "line": {"width": 1, "color": "#adb5bd"}},
                )
            )  # fmt: skip


def volume_sparkline(days: Sequence[tuple[date, int]]) -> go.Figure:
    """Inferences per UTC day as small bars; the table header carries the title and units."""
    figure = go.Figure(
        go.Bar(
            x=[_day(d) for d, _ in days],
            y=[count for _, count in days],
            marker={"color": LIVE_COLOR},
            hovertemplate="%{x}: %{y:,} inferences<extra></extra>",
            name="inferences per day",
        )
    )
    figure.update_layout(
        template="plotly_white", height=44, width=150, margin={"l": 0, "r": 0, "t": 2, "b": 2}, showlegend=False,
        xaxis={"visible": False, "type": "category"}, yaxis={"visible": False, "rangemode": "tozero"}, bargap=0.15,
        font={"family": FONT, "size": 11}, hoverlabel={"font": {"family": FONT}},
    )  # fmt: skip
    return figure


SWITCH_COLOR = "#0b7285"  # version switches: dark cyan, a colour no verdict or series uses


def mark_version_switches(
    figure: go.Figure, switches: Sequence[Mapping[str, Any]], *, days: Sequence[str] | None = None
) -> go.Figure:
    """A dashed vertical line at each change of the live version, labelled ("2.0.0 live"). `switches`
    are mappings with `at` (datetime) and `label`. On a category axis of window-end days (`days`),
    the line sits before the first window that ended after the switch, or after the last one."""
    for switch in switches:
        at = switch["at"]
        if days is not None:
            if not days:
                continue
            # A window ending on day d ended at d 00:00 UTC: it is after the switch from the next midnight on.
            first_after = (
                _day(at)
                if at == at.replace(hour=0, minute=0, second=0, microsecond=0)
                else _day(at + timedelta(days=1))
            )
            later = [i for i, day in enumerate(days) if day >= first_after]
            x: Any = (later[0] - 0.5) if later else len(days) - 0.5
        else:
            x = plotly_time(at)
        figure.add_shape(
            type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
            line={"color": SWITCH_COLOR, "dash": "dash", "width": 2}, name="version switch",
        )  # fmt: skip
        figure.add_annotation(
            x=x, xref="x", y=1, yref="paper", yanchor="bottom", xanchor="right", showarrow=False,
            text=switch["label"], font={"size": 11, "color": SWITCH_COLOR}, name="version switch",
        )  # fmt: skip
    return figure


def drift_ratio(value: float | None, threshold: float | None, method: str | None) -> float | None:
    """How far a drift score is past its threshold, >= 1 when drifted: score ÷ threshold for
    distances; for p-value tests (drift when p < α), log p ÷ log α."""
    if value is None or threshold is None or threshold <= 0:
        return None
    if method in DRIFT_P_VALUE_METHODS:
        if threshold >= 1:
            return None
        return math.log(max(value, 1e-300)) / math.log(threshold)
    return value / threshold


def drift_heatmap(cells: Sequence[Mapping[str, Any]], *, title: str, subtitle: str | None = None) -> go.Figure:
    """Features (rows, most drifted first) by window end (columns), coloured by status, labelled
    with the drift ratio. Each cell is a mapping with `feature`, `window_end`, `value`,
    `threshold`, `method`, `status`, `n` and `run_id`; customdata carries run_id and feature for
    the click-through."""
    days = sorted({_day(c["window_end"]) for c in cells})
    ratios: dict[str, float] = {}
    for cell in cells:
        ratio = drift_ratio(cell.get("value"), cell.get("threshold"), cell.get("method")) or 0.0
        ratios[cell["feature"]] = max(ratios.get(cell["feature"], 0.0), ratio)
    features = sorted(ratios, key=lambda f: (-ratios[f], f))
    row, column = {f: i for i, f in enumerate(features)}, {d: j for j, d in enumerate(days)}
    z: list[list[float | None]] = [[None] * len(days) for _ in features]
    text = [[""] * len(days) for _ in features]
    custom: list[list[list[Any]]] = [[[None] * 8 for _ in days] for _ in features]
    for cell in cells:
        i, j = row[cell["feature"]], column[_day(cell["window_end"])]
        status = cell.get("status", "insufficient_data")
        cell_ratio = drift_ratio(cell.get("value"), cell.get("threshold"), cell.get("method"))
        z[i][j] = float(STATUS_ORDER.index(status)) if status in STATUS_ORDER else 3.0
        text[i][j] = "n/a" if cell_ratio is None else f"{cell_ratio:.1f}"
        custom[i][j] = [
            cell.get("run_id"), cell["feature"], _day(cell["window_end"]), STATUS_TEXT.get(status, status),
            "-" if cell.get("value") is None else f"{cell['value']:.4g}", "-" if cell.get("threshold") is None else f"{cell['threshold']:.4g}",
            cell.get("method") or "-", cell.get("n") if cell.get("n") is not None else "-",
        ]  # fmt: skip
    figure = go.Figure(
        go.Heatmap(
            x=days, y=features, z=z, zmin=-0.5, zmax=3.5, colorscale=_steps([STATUS_COLORS[s] for s in STATUS_ORDER]), showscale=False,
            text=text, texttemplate="%{text}" if len(days) <= 31 else None, textfont={"size": 10, "color": "#212529"},
            customdata=custom, xgap=2, ygap=2, hoverongaps=False,
            hovertemplate=(
                "<b>%{customdata[1]}</b>, window ending %{customdata[2]}<br>%{customdata[3]}: drift score %{customdata[4]}"
                " vs threshold %{customdata[5]} (%{customdata[6]})<br>ratio %{text} · n %{customdata[7]}"
                "<br><i>click for the distributions</i><extra></extra>"
            ),
            name="drift",
        )
    )  # fmt: skip
    _status_legend(figure, {c.get("status", "insufficient_data") for c in cells})
    layout = _layout(
        title, subtitle, x_title="Window end (UTC)", y_title="Feature", height=170 + 26 * max(len(features), 3)
    )
    layout["xaxis"].update(type="category", showgrid=False, tickangle=-45 if len(days) > 10 else 0)
    layout["yaxis"].update(type="category", autorange="reversed", showgrid=False)
    layout["margin"].update(l=150, b=110)
    layout["showlegend"] = True
    layout["legend"] = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"}
    figure.update_layout(**layout)
    return figure


def _steps(colors: Sequence[str]) -> list[list[Any]]:
    """A colorscale that maps z = 0, 1, 2, ... to one flat colour each (for zmin -0.5, zmax n - 0.5)."""
    count = len(colors)
    scale: list[list[Any]] = []
    for k, color in enumerate(colors):
        scale += [[k / count, color], [(k + 1) / count, color]]
    return scale


def distribution_comparison(
    distribution: Mapping[str, Any], *, title: str, x_title: str, subtitle: str | None = None, log_y: bool = False
) -> go.Figure:
    """Reference vs window shares of one feature: side-by-side bars per category or value, or
    overlaid bars on shared bins for a continuous feature. `distribution` has `kind`
    (numeric, discrete, categorical), `labels`, `edges` (numeric), `reference`, `window`,
    `reference_n`, `window_n` and `unseen` (values the reference never had)."""
    kind, labels = distribution["kind"], list(distribution["labels"])
    reference, window = list(distribution["reference"]), list(distribution["window"])
    figure = go.Figure()
    names = (f"reference (n = {distribution['reference_n']:,})", f"window (n = {distribution['window_n']:,})")
    if kind == "numeric":
        edges = list(distribution["edges"])
        centers = [(a + b) / 2 for a, b in pairwise(edges)]
        widths = [b - a for a, b in pairwise(edges)]
        figure.add_trace(
            go.Bar(
                x=centers, y=reference, width=widths, name=names[0], marker={"color": REFERENCE_COLOR, "opacity": 0.4, "line": {"width": 0}},
                customdata=labels, hovertemplate="%{customdata}: %{y:.1%}<extra>reference</extra>",
            )
        )  # fmt: skip
        # The window as a step outline over the reference's bars: both stay visible where they overlap.
        figure.add_trace(
            go.Scatter(
                x=[edges[0], *[x for edge in edges[1:-1] for x in (edge, edge)], edges[-1]],
                y=[y for share in window for y in (share, share)], mode="lines", name=names[1],
                line={"color": WINDOW_COLOR, "width": 2.5}, hoverinfo="skip",
            )
        )  # fmt: skip
        figure.add_trace(
            go.Scatter(
                x=centers, y=window, mode="markers", marker={"size": 14, "opacity": 0}, customdata=labels, showlegend=False,
                hovertemplate="%{customdata}: %{y:.1%}<extra>window</extra>",
            )
        )  # fmt: skip
        barmode = "overlay"
    else:
        unseen = set(distribution.get("unseen") or ())
        shown = [f"{label} (new)" if label in unseen else label for label in labels]
        figure.add_trace(go.Bar(x=shown, y=reference, name=names[0], marker={"color": REFERENCE_COLOR},
                                hovertemplate="%{x}: %{y:.1%}<extra>reference</extra>"))  # fmt: skip
        figure.add_trace(go.Bar(x=shown, y=window, name=names[1], marker={"color": WINDOW_COLOR},
                                hovertemplate="%{x}: %{y:.1%}<extra>window</extra>"))  # fmt: skip
        barmode = "group"
    y_title = "Share of values (log scale)" if log_y else "Share of non-missing values"
    layout = _legend_below(_layout(title, subtitle, x_title=x_title, y_title=y_title, height=360))
    layout["yaxis"].update(
        tickformat=".1%" if log_y else ".0%", **({"type": "log"} if log_y else {"rangemode": "tozero"})
    )
    if kind != "numeric":
        layout["xaxis"].update(type="category")
    figure.update_layout(**layout, barmode=barmode, bargap=0.05 if kind == "numeric" else 0.2)
    return figure


def status_timeline(
    points: Sequence[Mapping[str, Any]],
    *,
    title: str,
    y_title: str,
    subtitle: str | None = None,
    warn_at: float | None = None,
    breach_at: float | None = None,
) -> go.Figure:
    """One value per window end, markers in status colours, with the warn and breach levels.
    Each point has `window_end`, `value`, `status` and optionally `n`."""
    shown = sorted((p for p in points if p.get("value") is not None), key=lambda p: p["window_end"])
    x = [plotly_time(p["window_end"]) for p in shown]
    figure = go.Figure(
        go.Scatter(
            x=x, y=[p["value"] for p in shown], mode="lines+markers", name="value",
            line={"color": "#495057", "width": 1.5},
            marker={"size": 9, "color": [STATUS_COLORS.get(p.get("status", ""), "#adb5bd") for p in shown], "line": {"width": 1, "color": "#495057"}},
            customdata=[[STATUS_TEXT.get(p.get("status", ""), p.get("status")), p.get("n") if p.get("n") is not None else "-"] for p in shown],
            hovertemplate="window ending %{x|%Y-%m-%d} UTC<br>%{y:.2f} · %{customdata[0]} · n %{customdata[1]}<extra></extra>",
        )
    )  # fmt: skip
    levels = ((warn_at, "warning at", "#e0a800", "bottom right"), (breach_at, "breach at", "#dc3545", "top right"))
    for level, label, color, position in levels:
        if level is not None:
            figure.add_hline(y=level, line={"color": color, "dash": "dash", "width": 1.5},
                             annotation={"text": f"{label} {level:g}", "font": {"size": 11, "color": color}}, annotation_position=position)  # fmt: skip
    layout = _layout(title, subtitle, x_title="Window end (UTC)", y_title=y_title, height=340)
    layout["xaxis"].update(type="date")
    figure.update_layout(**layout)
    return figure


def _band(figure: go.Figure, points: Sequence[Mapping[str, Any]], *, color: str, name: str) -> None:
    """A shaded 95% interval under a series (windows without an interval break the band)."""
    with_interval = [p for p in points if p.get("ci_low") is not None and p.get("ci_high") is not None]
    if not with_interval:
        return
    x = [plotly_time(p["window_end"]) for p in with_interval]
    figure.add_trace(go.Scatter(x=x, y=[p["ci_high"] for p in with_interval], mode="lines", line={"width": 0},
                                hoverinfo="skip", showlegend=False, legendgroup=name))  # fmt: skip
    figure.add_trace(
        go.Scatter(x=x, y=[p["ci_low"] for p in with_interval], mode="lines", line={"width": 0}, fill="tonexty",
                   fillcolor=_tint(color, 0.16), hoverinfo="skip", name=f"{name}: 95% interval", legendgroup=name, showlegend=False)
    )  # fmt: skip


def _tint(color: str, alpha: float) -> str:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def metric_timeline(
    realized: Sequence[Mapping[str, Any]],
    estimated: Sequence[Mapping[str, Any]] = (),
    *,
    metric: str,
    target: float | None,
    title: str,
    subtitle: str | None = None,
    target_label: str = "target",
    realized_name: str = "realized (labelled outcomes)",
    y_title: str | None = None,
    height: int = 340,
) -> go.Figure:
    """A metric per window end: realized (labelled) with its 95% interval band, the label-free
    estimate dashed with its band, and the target as a line. Points have `window_end`, `value`,
    `ci_low`, `ci_high`, `n` and `status`; windows without a value are left out."""
    figure = go.Figure()
    series = (
        (realized_name, realized, WINDOW_COLOR, "solid"),
        ("estimated (label-free)", estimated, ESTIMATE_COLOR, "dash"),
    )
    for name, points, color, dash in series:
        shown = sorted((p for p in points if p.get("value") is not None), key=lambda p: p["window_end"])
        if not shown:
            continue
        _band(figure, shown, color=color, name=name)
        figure.add_trace(
            go.Scatter(
                x=[plotly_time(p["window_end"]) for p in shown], y=[p["value"] for p in shown], mode="lines+markers", name=name,
                legendgroup=name, line={"color": color, "width": 2, "dash": dash}, marker={"size": 7, "color": color},
                customdata=[[
                    "-" if p.get("ci_low") is None else f"{p['ci_low']:.3f}", "-" if p.get("ci_high") is None else f"{p['ci_high']:.3f}",
                    p.get("n") if p.get("n") is not None else "-", STATUS_TEXT.get(p.get("status", ""), p.get("status") or ""),
                ] for p in shown],
                hovertemplate=(
                    "window ending %{x|%Y-%m-%d} UTC<br><b>%{y:.3f}</b> (95% interval %{customdata[0]} to %{customdata[1]})"
                    "<br>n %{customdata[2]} · %{customdata[3]}<extra>" + name + "</extra>"
                ),
            )
        )  # fmt: skip
        # Windows that missed or breached the target, ringed in their status colour over the line.
        missed = [p for p in shown if p.get("status") in ("warn", "breach")]
        if missed:
            figure.add_trace(
                go.Scatter(
                    x=[plotly_time(p["window_end"]) for p in missed], y=[p["value"] for p in missed], mode="markers", showlegend=False,
                    legendgroup=name, hoverinfo="skip", name=f"{name}: below target",
                    marker={"size": 10, "color": [STATUS_COLORS[p["status"]] for p in missed], "line": {"width": 1.5, "color": color}},
                )
            )  # fmt: skip
    if target is not None:
        figure.add_hline(y=target, line={"color": TARGET_COLOR, "dash": "dot", "width": 1.5},
                         annotation={"text": f"{target_label} {target:.3g}", "font": {"size": 11}}, annotation_position="top right")  # fmt: skip
    layout = _legend_below(
        _layout(
            title, subtitle, x_title="Window end (UTC)", y_title=y_title or metric_axis_title(metric), height=height
        )
    )
    layout["xaxis"].update(type="date")
    figure.update_layout(**layout)
    return figure


def reliability_diagram(bins: Sequence[Mapping[str, Any]], *, title: str, subtitle: str | None = None) -> go.Figure:
    """Observed outcome rate against the mean score per score bin, with 95% intervals and the
    diagonal of perfect calibration. Each bin has `mean_score`, `observed`, `ci_low`, `ci_high`, `n`."""
    shown = [b for b in bins if b.get("mean_score") is not None and b.get("observed") is not None]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "#adb5bd", "dash": "dash", "width": 1},
                                name="perfect calibration", hoverinfo="skip"))  # fmt: skip
    figure.add_trace(
        go.Scatter(
            x=[b["mean_score"] for b in shown], y=[b["observed"] for b in shown], mode="lines+markers", name="observed rate (95% interval)",
            line={"color": WINDOW_COLOR, "width": 2},
            marker={"size": [max(6.0, min(22.0, 4 + 2.2 * math.sqrt(b.get("n") or 0))) for b in shown], "color": WINDOW_COLOR, "opacity": 0.8},
            error_y={
                "type": "data", "symmetric": False, "color": "#9ec5fe", "thickness": 1.5, "width": 3,
                "array": [(b["ci_high"] - b["observed"]) if b.get("ci_high") is not None else 0 for b in shown],
                "arrayminus": [(b["observed"] - b["ci_low"]) if b.get("ci_low") is not None else 0 for b in shown],
            },
            customdata=[b.get("n") for b in shown],
            hovertemplate="mean score %{x:.2f}<br>observed rate %{y:.2f}<br>n %{customdata}<extra></extra>",
        )
    )  # fmt: skip
    layout = _legend_below(
        _layout(
            title,
            subtitle,
            x_title="Mean predicted score in bin (0–1)",
            y_title="Observed positive rate (0–1)",
            height=360,
        )
    )
    layout["xaxis"].update(range=[0, 1])
    layout["yaxis"].update(range=[0, 1.02])
    figure.update_layout(**layout)
    return figure


def cusum_chart(charts: Mapping[str, Mapping[str, Any]], *, title: str, subtitle: str | None = None) -> go.Figure:
    """Daily lower CUSUM statistics (one line per metric) against the decision limit h.
    `charts` maps a metric to a mapping with `days` (list of {"day", "s"}), `h` and `first_signal`."""
    figure = go.Figure()
    colors = {"sensitivity": "#d63384", "specificity": "#20c997"}
    limit = None
    for metric, chart in charts.items():
        days = list(chart.get("days") or [])
        if not days:
            continue
        limit = chart.get("h", limit)
        color = colors.get(metric, WINDOW_COLOR)
        figure.add_trace(
            go.Scatter(
                x=[d["day"] for d in days], y=[d["s"] for d in days], mode="lines+markers", name=metric_label(metric),
                line={"color": color, "width": 2, "shape": "hv"}, marker={"size": 5, "color": color},
                hovertemplate="%{x|%Y-%m-%d}: S = %{y:.2f}<extra>" + metric_label(metric) + "</extra>",
            )
        )  # fmt: skip
        signals = [d for d in days if limit is not None and d["s"] >= limit]
        if signals:
            figure.add_trace(
                go.Scatter(x=[d["day"] for d in signals], y=[d["s"] for d in signals], mode="markers", showlegend=False,
                           marker={"symbol": "x", "size": 10, "color": "#dc3545"}, hoverinfo="skip")
            )  # fmt: skip
    if limit is not None:
        figure.add_hline(y=limit, line={"color": "#dc3545", "dash": "dash", "width": 1.5},
                         annotation={"text": f"decision limit h = {limit:.2f}", "font": {"size": 11, "color": "#dc3545"}},
                         annotation_position="top left")  # fmt: skip
    layout = _legend_below(_layout(title, subtitle, x_title="Day (UTC)", y_title="CUSUM statistic S (σ)", height=360))
    layout["xaxis"].update(type="date")
    layout["yaxis"].update(rangemode="tozero")
    figure.update_layout(**layout)
    return figure


def subgroup_heatmap(
    rows: Sequence[Mapping[str, Any]], *, metrics: Sequence[str], title: str, subtitle: str | None = None
) -> go.Figure:
    """Segments (rows, in the given order: worst first) by metric, coloured by status, labelled
    with the value, or "n = k" where the segment has too few cases to judge. Each row has
    `segment` and `metrics` ({metric: {value, ci_low, ci_high, n, threshold, status}})."""
    segments = [r["segment"] for r in rows]
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    custom: list[list[list[Any]]] = []
    seen: set[str] = set()
    for row in rows:
        z_row: list[float | None] = []
        text_row: list[str] = []
        custom_row: list[list[Any]] = []
        for metric in metrics:
            cell = (row.get("metrics") or {}).get(metric)
            if cell is None:
                z_row.append(None)
                text_row.append("")
                custom_row.append([row["segment"], metric, "-", "-", "-", "-", "not computed"])
                continue
            status = cell.get("status", "insufficient_data")
            seen.add(status)
            value = cell.get("value")
            label = (
                f"n = {cell.get('n') or 0}"
                if status == "insufficient_data"
                else ("-" if value is None else f"{value:.2f}")
            )
            z_row.append(float(STATUS_ORDER.index(status)) if status in STATUS_ORDER else 3.0)
            text_row.append(label)
            interval = "-" if cell.get("ci_low") is None else f"{cell['ci_low']:.2f} to {cell['ci_high']:.2f}"
            custom_row.append([
                row["segment"], metric_label(metric), "-" if value is None else f"{value:.3f}", interval,
                cell.get("n") if cell.get("n") is not None else "-",
                "none" if cell.get("threshold") is None else f"{cell['threshold']:g}", STATUS_TEXT.get(status, status),
            ])  # fmt: skip
        z.append(z_row)
        text.append(text_row)
        custom.append(custom_row)
    labels = [metric_label(m) for m in metrics]
    figure = go.Figure(
        go.Heatmap(
            x=labels, y=segments, z=z, zmin=-0.5, zmax=3.5, colorscale=_steps([STATUS_COLORS[s] for s in STATUS_ORDER]), showscale=False,
            text=text, texttemplate="%{text}", textfont={"size": 11, "color": "#212529"}, customdata=custom, xgap=2, ygap=2,
            hoverongaps=False,
            hovertemplate=(
                "<b>%{customdata[0]}</b> · %{customdata[1]}<br>%{customdata[2]} (95% interval %{customdata[3]}), n %{customdata[4]}"
                "<br>target %{customdata[5]} · %{customdata[6]}<extra></extra>"
            ),
        )
    )  # fmt: skip
    _status_legend(figure, seen)
    layout = _layout(title, subtitle, x_title="", y_title="Segment", height=190 + 26 * max(len(segments), 3))
    layout["xaxis"].update(type="category", side="top", showgrid=False, title={"text": ""})
    layout["yaxis"].update(type="category", autorange="reversed", showgrid=False, title={"text": ""})
    layout["margin"].update(l=230, t=110, b=44)
    layout["showlegend"] = True
    layout["legend"] = {"orientation": "h", "x": 0, "xanchor": "left", "y": 0, "yanchor": "bottom", "yref": "container"}
    figure.update_layout(**layout)
    return figure


def forest_plot(
    rows: Sequence[Mapping[str, Any]], *, metric: str, target: float | None, title: str, subtitle: str | None = None
) -> go.Figure:
    """One segment per row (in the given order) with its value and 95% interval against the target;
    segments without enough cases are listed with their n and no point, segments without any case
    are left out. Each row has `segment`
    and `metrics` as for subgroup_heatmap; an optional `overall` mapping draws the population's figure."""
    judged: list[tuple[str, dict[str, Any]]] = []
    lacking: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        cell = (row.get("metrics") or {}).get(metric)
        if cell is None or not cell.get("n"):
            continue  # no case at all: the page lists these segments instead of drawing empty rows
        (lacking if cell.get("status") == "insufficient_data" or cell.get("value") is None else judged).append(
            (row["segment"], cell)
        )
    labels = [segment for segment, _ in judged] + [f"{segment} (n = {cell.get('n') or 0})" for segment, cell in lacking]
    figure = go.Figure()
    if judged:
        figure.add_trace(
            go.Scatter(
                x=[c["value"] for _, c in judged], y=[s for s, _ in judged], mode="markers", name="segment", showlegend=False,
                marker={"size": 10, "symbol": "square", "color": [STATUS_COLORS.get(c.get("status", ""), "#adb5bd") for _, c in judged],
                        "line": {"width": 1, "color": "#495057"}},
                error_x={
                    "type": "data", "symmetric": False, "color": "#495057", "thickness": 1.5, "width": 4,
                    "array": [(c["ci_high"] - c["value"]) if c.get("ci_high") is not None else 0 for _, c in judged],
                    "arrayminus": [(c["value"] - c["ci_low"]) if c.get("ci_low") is not None else 0 for _, c in judged],
                },
                customdata=[[
                    "-" if c.get("ci_low") is None else f"{c['ci_low']:.3f}", "-" if c.get("ci_high") is None else f"{c['ci_high']:.3f}",
                    c.get("n") if c.get("n") is not None else "-", STATUS_TEXT.get(c.get("status", ""), c.get("status") or ""),
                ] for _, c in judged],
                hovertemplate="<b>%{y}</b><br>%{x:.3f} (95% interval %{customdata[0]} to %{customdata[1]})<br>n %{customdata[2]} · %{customdata[3]}<extra></extra>",
            )
        )  # fmt: skip
    low = max(
        0.0,
        min([c["ci_low"] if c.get("ci_low") is not None else c["value"] for _, c in judged] + [target or 1.0]) - 0.05,
    )
    if lacking:
        figure.add_trace(
            go.Scatter(
                x=[low + 0.01] * len(lacking), y=labels[len(judged):], mode="text", name="insufficient data", textposition="middle right",
                text=["insufficient data: too few cases to judge"] * len(lacking), textfont={"color": "#6c757d", "size": 11},
                hoverinfo="skip", showlegend=False,
            )
        )  # fmt: skip
    if target is not None:
        figure.add_vline(x=target, line={"color": TARGET_COLOR, "dash": "dot", "width": 1.5},
                         annotation={"text": f"target {target:g}", "font": {"size": 11}}, annotation_position="top")  # fmt: skip
    _status_legend(figure, {c.get("status", "") for _, c in judged})
    layout = _layout(
        title, subtitle, x_title=metric_axis_title(metric), y_title="", height=150 + 24 * max(len(labels), 3)
    )
    layout["yaxis"].update(
        type="category", categoryorder="array", categoryarray=labels, autorange="reversed", showgrid=False
    )
    layout["xaxis"].update(range=[low, 1.0])
    layout["margin"].update(l=230)
    figure.update_layout(**_legend_below(layout, bottom=90))
    return figure
