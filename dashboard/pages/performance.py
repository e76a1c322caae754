"""Performance: realized (labelled) and label-free estimated sensitivity, specificity, AUC and PPV
per window against the version's targets, the latest window's reliability, and the CUSUM charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html
from dash.development.base_component import Component

from dashboard import auth, data
from dashboard.components import analysis
from dashboard.components.analysis import GRAPH_CONFIG, as_dicts, status_badge
from dashboard.components.figures import cusum_chart, mark_version_switches, metric_timeline, reliability_diagram
from dashboard.components.widgets import card, empty_state, guarded, stat_tile
from monitor.checks.catalog import metric_label
from monitor.checks.schemas import MetricPointOut

dash.register_page(__name__, path="/performance", name="Performance", title="Performance · radmon", order=3)

PATH = "/performance"


@guarded("performance")
def layout(
    model: str | None = None,
    version: str | None = None,
    days: str | None = None,
    segment: str | None = None,
    **_query: Any,
) -> Component:
    actor = auth.current_actor()
    scope = data.analysis_scope(actor=actor, model_name=model, version=version)
    if scope is None:
        return analysis.no_models("performance", "Performance")
    lookback = analysis.lookback_days(days)
    view = data.performance_view(
        actor=actor,
        scope=scope,
        since=datetime.now(UTC) - timedelta(days=lookback),
        segment=None if segment in (None, "", analysis.WHOLE_POPULATION) else segment,
    )
    top = analysis.header(
        "performance", "Performance", scope, "realized against outcomes, and estimated before they arrive",
        extra=html.Div([_segment_select(view), analysis.lookback_select("performance", lookback)], className="d-flex gap-2"),
    )  # fmt: skip
    if not view.realized and not view.estimated:
        return html.Div([top, _failure(view), _no_runs(scope, lookback)])
    size = analysis.window_days(view.latest or view.latest_estimate)
    overall = {p.metric: p for p in (view.latest.metrics or []) if p.segment is None} if view.latest else {}
    # A segment's tiles: its newest realized figure per metric (from its subgroups runs).
    latest = overall if view.segment is None else {p.metric: p for p in view.realized}
    return html.Div(
        [
            top,
            _failure(view),
            _tiles(view, latest),
            _estimate_caveat(view),
            card(
                "Realized and estimated performance per window"
                + (f", segment {view.segment}" if view.segment else ", whole population"),
                [
                    dbc.Row(
                        [
                            dbc.Col(_timeline(view, metric, size, analysis.switch_marks(scope)), xl=6)
                            for metric in data.PERFORMANCE_METRICS
                        ],
                        className="g-3",
                    ),
                    _legend_note(view),
                ],
                id="performance-timelines",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        card(
                            "Calibration" + _population_note(view),
                            _reliability(view, overall),
                            id="performance-reliability-card",
                        ),
                        xl=6,
                    ),
                    dbc.Col(
                        card(
                            "Early warning: CUSUM" + _population_note(view),
                            _cusum(overall),
                            id="performance-cusum-card",
                        ),
                        xl=6,
                    ),
                ],
                className="g-4",
            ),
        ]
    )


def _population_note(view: data.PerformanceView) -> str:
    return "" if view.segment is None else " (whole population)"


def _segment_select(view: data.PerformanceView) -> Component:
    """Whole population by default, or one segment of the subgroup and estimate runs."""
    options = [{"label": "whole population", "value": analysis.WHOLE_POPULATION}] + [
        {"label": f"segment {s}", "value": s} for s in view.segments
    ]
    return html.Div(
        [
            html.Label("Population shown", htmlFor="performance-segment-select", className="visually-hidden"),
            dbc.Select(
                id="performance-segment-select",
                options=options,
                value=view.segment or analysis.WHOLE_POPULATION,
                size="sm",
                style={"minWidth": "12rem"},
            ),
        ]
    )


def _no_runs(scope: data.AnalysisScope, lookback: int) -> Component:
    return empty_state(
        f"No performance results for version {scope.version or '-'} in the last {lookback} days",
        "Realized figures need outcomes (pathology, follow-up, final reads) joined to the window's inferences; the label-free "
        "estimate needs a labelled reference. Both appear after the daily check has run.",
        id="performance-no-runs",
    )


def _failure(view: data.PerformanceView) -> Component | None:
    failed = [run for run in (view.latest, view.latest_estimate) if run is not None and run.status == "failed"]
    if not failed:
        return None
    return dbc.Alert(
        [
            html.Div(
                f"The latest {run.kind.replace('_', ' ')} run (window ending {run.window_end:%Y-%m-%d}) failed: {run.error}"
            )
            for run in failed
        ],
        color="danger",
        id="performance-failed",
    )


def _figure_text(point: MetricPointOut | None, *, percent: bool) -> Any:
    if point is None or point.value is None:
        return "-"
    value = f"{point.value:.1%}" if percent else f"{point.value:.3f}"
    return [value, " ", status_badge(point.status)]


def _interval_hint(point: MetricPointOut | None, target: float | None) -> str:
    if point is None:
        return "no labelled window yet"
    if point.status == "insufficient_data":
        minimum = (point.details or {}).get("minimum") or {}
        needed = " and ".join(f"{count} {kind}" for kind, count in minimum.items())
        return f"too few labelled cases (n = {point.n or 0}{'; needs ' + needed if needed else ''})"
    parts = []
    if point.ci_low is not None and point.ci_high is not None:
        parts.append(f"95% CI {point.ci_low:.3f}–{point.ci_high:.3f}")
    parts.append(f"n {point.n:,}" if point.n is not None else "")
    if target is not None:
        parts.append(f"target {target:g}")
    return ", ".join(p for p in parts if p)


def _tiles(view: data.PerformanceView, latest: dict[str, MetricPointOut]) -> Component:
    run = view.latest or view.latest_estimate
    summary = run.summary if run else {}
    coverage = summary.get("label_coverage")
    coverage_hint = f"{summary.get('positives', 0):,} positives, {summary.get('negatives', 0):,} negatives confirmed"
    if view.segment is not None:
        point = latest.get("label_coverage")
        coverage = point.value if point else None
        coverage_hint = f"segment {view.segment}" + (f", n {point.n:,}" if point and point.n is not None else "")
    tiles: list[tuple[str, Any, str, str]] = [
        ("Latest window", run.window_end.strftime("%b %d") if run else "-",
         f"{analysis.window_text(run)}, {summary.get('inferences', 0):,} inferences, version {run.version}" if run else "", "performance-tile-window"),
        ("Label coverage", f"{coverage:.0%}" if coverage is not None else "no labels yet", coverage_hint if coverage is not None else "",
         "performance-tile-coverage"),
    ]  # fmt: skip
    for metric in data.PERFORMANCE_METRICS:
        point = latest.get(metric)
        target = view.targets.get(metric)
        tiles.append((metric_label(metric), _figure_text(point, percent=metric != "auc"), _interval_hint(point, target),
                      f"performance-tile-{metric}"))  # fmt: skip
    population = "whole population" if view.segment is None else f"segment {view.segment}"
    return html.Div(
        [
            html.Div(
                f"Latest figures, {population}" + ("" if view.segment is None else " (pick another population above)"),
                className="small text-uppercase fw-semibold text-body-secondary mb-2",
                id="performance-tiles-population",
            ),
            dbc.Row(
                [
                    dbc.Col(stat_tile(label, value, hint=hint, id=tile_id), md=4, xl=2)
                    for label, value, hint, tile_id in tiles
                ],
                className="g-3",
            ),
        ],
        className="mb-4",
        id="performance-tiles",
    )


def _timeline(view: data.PerformanceView, metric: str, size: int | None, switches: list[dict[str, Any]]) -> Component:
    realized = [p for p in view.realized if p.metric == metric]
    estimated = [p for p in view.estimated if p.metric == metric]
    label = metric_label(metric)
    target = view.targets.get(metric)
    figure = metric_timeline(
        as_dicts(realized),
        as_dicts(estimated),
        metric=metric,
        target=target,
        title=f"{label} per window" + (f" vs target {target:g}" if target is not None else " (no target declared)"),
        subtitle=analysis.window_span({p.window_end for p in realized + estimated}, size) + "; shaded: 95% interval",
        y_title=f"{label} (0–1)",
        height=360,
    )
    mark_version_switches(figure, switches)
    return dcc.Graph(id=f"performance-{metric}-graph", figure=figure, config=GRAPH_CONFIG)


def _legend_note(view: data.PerformanceView) -> Component:
    support = view.support
    covered = (
        f" In the latest window {support.value:.0%} of the studies"
        + (f" of segment {view.segment}" if view.segment else "")
        + " had inputs the reference covered ('estimate support')."
        if support is not None and support.value is not None
        else ""
    )
    return html.Div(
        [
            html.Div(
                "Realized: computed from the outcomes received so far (a window's figure firms up as late outcomes "
                "arrive). Red or amber markers: the window breached or missed its target."
            ),
            html.Div(
                "Estimated: label-free, from the scores calibrated on the labelled reference, available before any "
                "outcome. It follows changes in who is scanned, but it reads each score as the reference did: a change "
                "in what a score means (a new scanner or reconstruction) is invisible to it. It is informative only "
                "for studies whose inputs look like the reference's ('estimate support': the share of studies whose "
                "scanner, protocol and patient values the reference covered; below 80% the estimate is extrapolating)."
                + covered,
                id="performance-estimate-note",
            ),
        ],
        className="small text-body-secondary mt-2",
    )


def _estimate_caveat(view: data.PerformanceView) -> Component | None:
    """Where outcomes contradicted the estimate beyond both uncertainties in a reconciled window of
    the period shown, say that the estimate has stopped being informative for this population, and
    why. A concept shift does not heal by itself, so one contradicted window is enough; a later
    window that agrees again (often on few outcomes) is said, not taken as a recovery."""
    judged: dict[str, list[Any]] = {}
    for row in view.reconciliation:  # oldest window first
        if row.status != "insufficient_data":
            judged.setdefault(row.metric.removesuffix("_estimate_error"), []).append(row)
    contradicted = {
        metric: ([r for r in rows if r.status == "warn"], rows)
        for metric, rows in judged.items()
        if any(r.status == "warn" for r in rows)
    }
    if not contradicted:
        return None
    population = f"segment {view.segment}" if view.segment else "the whole population"
    lines = []
    for metric, (missed, rows) in contradicted.items():
        row = missed[-1]
        details = row.details or {}
        estimated, realized = details.get("estimated"), details.get("realized")
        figures = (
            f"estimated {estimated:.3f}, realized {realized:.3f} in the window to {row.window_end:%Y-%m-%d}"
            if isinstance(estimated, float) and isinstance(realized, float)
            else f"window to {row.window_end:%Y-%m-%d}"
        )
        figures += f"; outside both intervals in {len(missed)} of {len(rows)} windows with outcomes"
        if rows[-1].status != "warn":
            figures += f" (the latest, to {rows[-1].window_end:%Y-%m-%d}, agrees again)"
        lines.append(html.Li([html.Span(metric_label(metric), className="fw-medium"), f": {figures}"]))
    return dbc.Alert(
        [
            html.Div(
                f"The label-free estimate has stopped being informative for {population}.", className="fw-semibold"
            ),
            html.Ul(lines, className="mb-1"),
            html.Div(
                "The confirmed outcomes disagree with the estimate by more than both 95% intervals allow. The estimate "
                "reads each score as the labelled reference did, so a change in what a score means (a new scanner or "
                "reconstruction that makes bleeds look like negatives) is invisible to it. Judge this population by "
                "its realized figures until the estimate agrees with them again."
            ),
        ],
        color="warning",
        className="small",
        id="performance-estimate-caveat",
    )


def _reliability(view: data.PerformanceView, latest: dict[str, MetricPointOut]) -> Component:
    ece = latest.get("ece")
    bins = (ece.details or {}).get("reliability") if ece else None
    if not bins or view.latest is None:
        return empty_state(
            "No calibration figures yet",
            "They need labelled outcomes in the window.",
            id="performance-reliability-empty",
        )
    figure = reliability_diagram(
        bins,
        title="Reliability: observed positive rate per score bin",
        subtitle=f"labelled inferences of the window {analysis.window_text(view.latest)}; marker size grows with n",
    )
    note = html.Div(
        [f"Expected calibration error {ece.value:.3f}" if ece and ece.value is not None else "Expected calibration error -",
         f" (95% CI {ece.ci_low:.3f}–{ece.ci_high:.3f}), n {ece.n:,}. " if ece and ece.ci_low is not None and ece.n else ". ",
         "Points below the diagonal: the model's scores overstate the risk; above: understate it."],
        className="small text-body-secondary",
    )  # fmt: skip
    return [dcc.Graph(id="performance-reliability-graph", figure=figure, config=GRAPH_CONFIG), note]


def _cusum_chart(point: MetricPointOut | None) -> dict[str, Any]:
    """A CUSUM point's details with the chart's parallel arrays (days, s) as one {day, s} per day."""
    details = dict(point.details or {}) if point is not None else {}
    days, statistic = details.get("days") or [], details.get("s") or []
    details["days"] = [{"day": day, "s": s} for day, s in zip(days, statistic, strict=False)]
    return details


def _cusum(latest: dict[str, MetricPointOut]) -> Component:
    charts = {metric: _cusum_chart(latest.get(f"{metric}_cusum")) for metric in ("sensitivity", "specificity")}
    charts = {metric: chart for metric, chart in charts.items() if chart["days"]}
    if not charts:
        return empty_state(
            "No CUSUM chart yet",
            "It needs labelled positives and negatives over the look-back days.",
            id="performance-cusum-empty",
        )
    days = [d["day"] for chart in charts.values() for d in chart["days"]]
    figure = cusum_chart(
        charts,
        title="Lower CUSUM of daily sensitivity and specificity",
        subtitle=f"days {min(days)} to {max(days)} (UTC); a signal when S crosses h",
    )
    lines = []
    for metric, chart in charts.items():
        signal = chart.get("first_signal")
        baseline = (
            f"in-control value {chart['mu0']:.3f} from the {str(chart.get('mu0_source', '')).replace('_', ' ')}"
            if chart.get("mu0") is not None
            else ""
        )
        state = f"signalled first on {signal}" if signal else "no signal in the look-back"
        lines.append(html.Div([html.Span(metric_label(metric), className="fw-medium"), f": {state}; {baseline}."]))
    note = html.Div(
        [*lines, html.Div("CUSUM accumulates small daily shortfalls, so a sustained drop shows days before a weekly window's interval "
                          "clears the target.")],
        className="small text-body-secondary",
        id="performance-cusum-notes",
    )  # fmt: skip
    return [dcc.Graph(id="performance-cusum-graph", figure=figure, config=GRAPH_CONFIG), note]


def register_callbacks(app: Dash) -> None:
    analysis.register_navigation(
        app, "performance", PATH, extras=("performance-segment-select", "performance-days-select")
    )
