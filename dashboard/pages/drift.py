"""Model drift: per-feature drift by window (click a cell for the reference-vs-window distributions
and the Evidently report), the unified drift score, and the score distribution against the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Response

from dashboard import auth, data
from dashboard.components import analysis
from dashboard.components.analysis import GRAPH_CONFIG, as_dicts, status_badge
from dashboard.components.figures import (
    distribution_comparison,
    drift_heatmap,
    drift_ratio,
    mark_version_switches,
    metric_timeline,
    status_timeline,
)
from dashboard.components.widgets import card, empty_state, error_alert, guarded, stat_tile
from monitor.checks import report
from monitor.checks.catalog import metric_label
from monitor.checks.reads import SeriesRow
from monitor.checks.schemas import CheckRunOut, MetricPointOut
from monitor.errors import MonitorError, NotFound

dash.register_page(__name__, path="/drift", name="Drift", title="Model drift · radmon", order=2)

PATH = "/drift"
# The per-feature figures listed beside the distribution (their labels come from the catalog).
FINDING_METRICS = ("drift_score", "missing_share", "unseen_categories", "unified_drift_contribution")


def report_href(run_id: int) -> str:
    return dash.get_relative_path(f"/checks/{run_id}/report")


@guarded("drift")
def layout(model: str | None = None, version: str | None = None, days: str | None = None, **_query: Any) -> Component:
    actor = auth.current_actor()
    scope = data.analysis_scope(actor=actor, model_name=model, version=version)
    if scope is None:
        return analysis.no_models("drift", "Model drift")
    lookback = analysis.lookback_days(days)
    view = data.drift_view(actor=actor, scope=scope, since=datetime.now(UTC) - timedelta(days=lookback))
    top = analysis.header(
        "drift",
        "Model drift",
        scope,
        "inputs and outputs compared with the reference",
        extra=analysis.lookback_select("drift", lookback),
    )
    if not view.drift_scores and not view.output_scores:
        return html.Div([top, _failures(view), _no_runs(scope, lookback)])
    size = analysis.window_days(view.latest_input or view.latest_output)
    return html.Div(
        [
            top,
            _failures(view),
            _tiles(view),
            _heatmap_card(view, size, analysis.switch_marks(scope)),
            dcc.Loading(html.Div(_detail(actor, _worst_cell(view.drift_scores)), id="drift-detail"), type="dot"),
            dbc.Row(
                [
                    dbc.Col(
                        card(
                            "Unified drift score",
                            _unified(view, size, analysis.switch_marks(scope)),
                            id="drift-unified-card",
                        ),
                        xl=6,
                    ),
                    dbc.Col(
                        card(
                            "Model output: score distribution", _score_distribution(actor, view), id="drift-score-card"
                        ),
                        xl=6,
                    ),
                ],
                className="g-4",
            ),
            card(
                "Model output: positive-prediction rate",
                _positive_rate(view, size, analysis.switch_marks(scope)),
                id="drift-rate-card",
            ),
        ]
    )


def _heatmap_card(view: data.DriftView, size: int | None, switches: list[dict[str, Any]]) -> Component:
    if not view.drift_scores:
        return card("Drift by feature and window", empty_state("No input-drift results in this period", "Output drift is shown below.",
                                                             id="drift-heatmap-empty"), id="drift-heatmap-card")  # fmt: skip
    figure = drift_heatmap(
        as_dicts(view.drift_scores),
        title="Input drift per feature and window (drift score ÷ threshold)",
        subtitle=analysis.window_span({p.window_end for p in view.drift_scores}, size) + "; rows: most drifted first",
    )
    mark_version_switches(figure, switches, days=list(figure.data[0].x))
    # The input-drift run behind each column, for the click-through (a run id is no secret: the
    # services authorize every read of it again).
    runs = {f"{p.window_end:%Y-%m-%d}": p.run_id for p in view.drift_scores}
    return card(
        "Drift by feature and window",
        [
            dcc.Store(id="drift-runs-store", data=runs),
            dcc.Graph(id="drift-heatmap", figure=figure, config=GRAPH_CONFIG),
            html.Div(
                "Each cell is one window's drift score divided by its threshold (for p-value tests: log p ÷ log α), so 1.0 is "
                "the threshold. The colour is the check's verdict: a breach is drift beyond sampling noise, a warning drift "
                "within it. Click a cell to compare that feature's distribution in the window with the reference.",
                className="small text-body-secondary",
            ),
        ],
        id="drift-heatmap-card",
    )


def _no_runs(scope: data.AnalysisScope, lookback: int) -> Component:
    return empty_state(
        f"No drift results for version {scope.version or '-'} in the last {lookback} days",
        "Input and output drift appear once the daily check has run on a window with inferences of this version "
        "(qa can run it now: POST /api/v1/checks/run). A longer period may show older windows.",
        id="drift-no-runs",
    )


def _failures(view: data.DriftView) -> Component | None:
    failed = [run for run in (view.latest_input, view.latest_output) if run is not None and run.status == "failed"]
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
        id="drift-failed",
    )


def _tiles(view: data.DriftView) -> Component:
    inputs, outputs = view.latest_input, view.latest_output
    # The whole population's figures: a run also holds one point per segment for the same metric and feature.
    points = {
        (p.metric, p.feature): p
        for run in (inputs, outputs)
        if run is not None
        for p in run.metrics or []
        if p.segment is None
    }
    tiles = [
        _window_tile(inputs or outputs),
        _drifted_tile(inputs),
        _figure_tile(
            "Unified drift",
            points.get(("unified_drift", None)),
            "{:.1f}",
            "breach at {p.threshold:g}",
            "drift-tile-unified",
        ),
        _figure_tile(
            "Score distribution",
            points.get(("drift_score", "score")),
            "{:.3f}",
            "{p.method} vs threshold {p.threshold:g}",
            "drift-tile-score",
        ),
        _figure_tile(
            "Positive predictions",
            points.get(("positive_rate", "prediction")),
            "{:.1%}",
            "reference {p.threshold:.1%}",
            "drift-tile-rate",
        ),
    ]
    return dbc.Row([dbc.Col(tile, md=4, xl=True) for tile in tiles], className="g-3 mb-4")


def _window_tile(run: CheckRunOut | None) -> Component:
    if run is None:
        return stat_tile("Latest window", "-", id="drift-tile-window")
    rows = run.summary.get("rows")
    hint = (
        analysis.window_text(run) + (f", {rows:,} inferences" if rows is not None else "") + f", version {run.version}"
    )
    return stat_tile("Latest window", f"{run.window_end:%b %d}", hint=hint, id="drift-tile-window")


def _drifted_tile(run: CheckRunOut | None) -> Component:
    if run is None:
        return stat_tile("Drifted features", "-", id="drift-tile-features")
    drifted = run.summary.get("drifted_features") or []
    names = ", ".join(drifted[:4]) + (" …" if len(drifted) > 4 else "") if drifted else "no feature drifted"
    return stat_tile(
        "Drifted features",
        f"{len(drifted)} of {run.summary.get('features_evaluated', '-')}",
        hint=names,
        id="drift-tile-features",
    )


def _figure_tile(
    label: str, point: MetricPointOut | None, value_format: str, hint_format: str, tile_id: str
) -> Component:
    """A figure of the latest run with its verdict; the hint says what it is compared with."""
    if point is None or point.value is None:
        return stat_tile(
            label, "-", hint="not computed in the latest window" if point is None else "not enough data", id=tile_id
        )
    hint = hint_format.format(p=point) if point.threshold is not None else ""
    return stat_tile(label, [value_format.format(point.value), " ", status_badge(point.status)], hint=hint, id=tile_id)


def _worst_cell(points: list[SeriesRow]) -> tuple[int, str] | None:
    """The latest window's most drifted feature: what the detail panel opens on."""
    if not points:
        return None
    latest = max(p.window_end for p in points)
    candidates = [p for p in points if p.window_end == latest]
    worst = max(candidates, key=lambda p: drift_ratio(p.value, p.threshold, p.method) or -1.0)
    return worst.run_id, worst.feature or ""


def _detail(actor: Any, selected: tuple[int, str] | None) -> Component:
    if selected is None:
        return html.Div()
    run_id, feature = selected
    try:
        distribution = data.drift_distribution(actor=actor, run_id=run_id, feature=feature)
    except MonitorError as exc:
        return error_alert(exc, id="drift-detail-error")
    return distribution_card(distribution)


def distribution_card(distribution: data.Distribution) -> Component:
    """One feature in one window against the reference, the run's findings about it, and the report link."""
    run, feature = distribution.run, distribution.feature
    window = analysis.window_text(run)
    title = f"{feature}: reference vs window (share of non-missing values)"
    if distribution.window_n == 0:
        figure_or_note: Component = empty_state(
            "No stored profile for this window",
            f"{distribution.days_profiled} of {distribution.days} days of the window are profiled; the next run of the check stores them.",
            id="drift-distribution-empty",
        )
    else:
        figure_or_note = dcc.Graph(
            id="drift-distribution-graph",
            figure=distribution_comparison(
                _plain(distribution), title=title, subtitle=f"window {window}", x_title=_x_title(distribution)
            ),
            config=GRAPH_CONFIG,
        )
    findings = [
        html.Li(
            [
                html.Span(metric_label(p.metric), className="fw-medium"),
                f": {_finding_text(p)} ",
                status_badge(p.status) if p.metric != "unified_drift_contribution" else None,
            ],
            className="mb-1",
        )
        for p in distribution.points()
        if p.metric in FINDING_METRICS
    ]
    notes = []
    if distribution.unseen:
        notes.append(f"New in the window (never in the reference): {', '.join(distribution.unseen[:8])}.")
    if distribution.window_missing or distribution.reference_missing:
        notes.append(
            f"Missing values: {distribution.window_missing:,} in the window, {distribution.reference_missing:,} in the reference (not drawn)."
        )
    if distribution.kind == "numeric":
        notes.append("Bins are equal-width over the central 99% of both samples; the outer bins also hold the tails.")
    side = [
        html.Div(
            "Findings of this run",
            className="small text-uppercase fw-semibold text-body-secondary radmon-tile-label mb-2",
        ),
        html.Ul(findings, className="list-unstyled small mb-3", id="drift-detail-findings"),
        html.Div([html.Div(note) for note in notes], className="small text-body-secondary mb-3"),
        dbc.Button(
            "Open the Evidently report ↗",
            href=report_href(run.id),
            target="_blank",
            external_link=True,
            color="secondary",
            outline=True,
            size="sm",
            id="drift-report-link",
        ),
        html.Div(
            "Opens in a new tab; the first opening of a run's report takes a few seconds.",
            className="small text-body-secondary mt-1",
        ),
    ]
    return card(
        f"Reference vs window: {feature}",
        dbc.Row([dbc.Col(figure_or_note, xl=8), dbc.Col(side, xl=4)], className="g-3"),
        id="drift-detail-card",
        subtitle=f"{run.kind.replace('_', ' ')} run #{run.id}, window {window}",
    )


def _plain(distribution: data.Distribution) -> dict[str, Any]:
    fields = ("kind", "labels", "edges", "reference", "window", "reference_n", "window_n", "unseen")
    return {name: getattr(distribution, name) for name in fields}


def _x_title(distribution: data.Distribution) -> str:
    if distribution.feature == "score":
        return "Model score (0–1)"
    return f"{distribution.feature} ({'category' if distribution.kind == 'categorical' else 'value'})"


def _finding_text(point: MetricPointOut) -> str:
    if point.value is None:
        return str((point.details or {}).get("reason", "not enough data"))
    if point.metric == "drift_score":
        if point.threshold is None or not point.n:
            return f"{point.value:.4g}"
        # A distance breaches only when it reaches the threshold net of what sampling alone adds (decision 0502).
        effect = (point.details or {}).get("effect")
        net = f"; net of sampling noise {effect:.4g}" if effect is not None else ""
        return f"{point.value:.4g} ({point.method}; threshold {point.threshold:.4g}{net}; n {point.n:,})"
    if point.metric == "unified_drift_contribution":
        return f"{point.value:+.2f} σ"
    if point.metric in ("missing_share", "unseen_categories"):
        limit = f"; limit {point.threshold:.1%}" if point.threshold is not None else ""
        return f"{point.value:.1%} of {point.n:,} records{limit}" if point.n else f"{point.value:.1%}"
    return f"{point.value:.4g}"


def _unified(view: data.DriftView, size: int | None, switches: list[dict[str, Any]]) -> Component:
    if not view.unified:
        return empty_state(
            "No unified drift score yet",
            "Input-drift runs with enough inferences compute it.",
            id="drift-unified-empty",
        )
    latest = view.unified[-1]
    figure = status_timeline(
        as_dicts(view.unified),
        title="Unified drift score per window (σ above reference noise)",
        subtitle=analysis.window_span({p.window_end for p in view.unified}, size),
        y_title="Unified drift (σ)",
        warn_at=(latest.details or {}).get("warn_at"),
        breach_at=latest.threshold,
    )
    mark_version_switches(figure, switches)
    note = html.Div(
        "All inputs and outputs in one number: each one's distance from the reference, standardized against "
        "reference-period windows of the same size, then weighted (inputs one half, the score distribution and the "
        "positive rate one quarter each).",
        className="small text-body-secondary",
    )
    return [dcc.Graph(id="drift-unified-graph", figure=figure, config=GRAPH_CONFIG), note]


def _score_distribution(actor: Any, view: data.DriftView) -> Component:
    run = view.latest_output
    if run is None or run.status != "completed":
        return empty_state("No completed output-drift run", "The score distribution is compared once an output-drift run completes.",
                           id="drift-score-empty")  # fmt: skip
    try:
        distribution = data.drift_distribution(actor=actor, run_id=run.id, feature="score")
    except MonitorError as exc:
        return error_alert(exc, id="drift-score-error")
    if distribution.window_n == 0:
        return empty_state(
            "No stored profile for this window", "The next run of the check stores it.", id="drift-score-empty"
        )
    figure = distribution_comparison(
        _plain(distribution),
        title="Model score: reference vs latest window (share per 0.05 bin)",
        subtitle=f"window {analysis.window_text(run)}",
        x_title="Model score (0–1)",
        log_y=True,
    )
    score = next((p for p in run.metrics or [] if p.metric == "drift_score" and p.segment is None), None)
    verdict = html.Div(
        [f"Score drift {_finding_text(score)} ", status_badge(score.status)] if score else [],
        className="small text-body-secondary",
    )
    return [dcc.Graph(id="drift-score-graph", figure=figure, config=GRAPH_CONFIG), verdict]


def _positive_rate(view: data.DriftView, size: int | None, switches: list[dict[str, Any]]) -> Component:
    if not view.positive_rates:
        return empty_state(
            "No positive-rate figures yet",
            "Output-drift runs with enough inferences compute it.",
            id="drift-rate-empty",
        )
    figure = metric_timeline(
        as_dicts(view.positive_rates),
        metric="positive_rate",
        target=view.positive_rates[-1].threshold,
        target_label="reference rate",
        realized_name="share predicted positive",
        title="Share of inferences predicted positive per window, with 95% interval",
        subtitle=analysis.window_span({p.window_end for p in view.positive_rates}, size),
        y_title="Predicted positive (share)",
    )
    mark_version_switches(figure, switches)
    return dcc.Graph(id="drift-rate-graph", figure=figure, config=GRAPH_CONFIG)


def check_report(run_id: int) -> Response:
    """GET /dashboard/checks/<run_id>/report: the run's Evidently drill-down, as the API serves it."""
    if run_id > 2**31 - 1:
        raise NotFound(f"no check run {run_id}")
    html_text = data.check_report(actor=auth.current_actor(), run_id=run_id)
    return Response(html_text, mimetype="text/html", headers=report.headers(html_text))


def _clicked_cell(click: dict[str, Any] | None, runs: dict[str, int] | None) -> tuple[int, str]:
    """(run id, feature) of a clicked cell. dcc.Graph passes a heatmap cell's x and y but not its
    customdata (its point number is a pair), so the window's run comes from the page's store."""
    try:
        point = click["points"][0]  # type: ignore[index]
        day, feature = str(point["x"]), str(point["y"])
        run_id = int((runs or {})[day])
    except (TypeError, KeyError, IndexError, ValueError):
        raise PreventUpdate from None
    if not feature or len(feature) > 64:
        raise PreventUpdate
    return run_id, feature


def register_callbacks(app: Dash) -> None:
    app.server.add_url_rule("/checks/<int:run_id>/report", "radmon_check_report", check_report)
    analysis.register_navigation(app, "drift", PATH, extras=("drift-days-select",))

    @app.callback(
        Output("drift-detail", "children"),
        Input("drift-heatmap", "clickData"),
        State("drift-runs-store", "data"),
        prevent_initial_call=True,
    )
    def show_cell(click: dict[str, Any] | None, runs: dict[str, int] | None) -> Component:
        actor = auth.current_actor()
        return _detail(actor, _clicked_cell(click, runs))
