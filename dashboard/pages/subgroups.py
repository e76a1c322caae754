"""Subgroups: per-segment performance of one window (segment x metric by status, a forest plot
against the target), ranked by how far below target; segments with too few cases say so, with counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html
from dash.development.base_component import Component

from dashboard import auth, data
from dashboard.components import analysis
from dashboard.components.analysis import GRAPH_CONFIG, status_badge
from dashboard.components.figures import forest_plot, subgroup_heatmap
from dashboard.components.widgets import card, empty_state, guarded, stat_tile
from monitor.checks.catalog import metric_label
from monitor.errors import Invalid

dash.register_page(__name__, path="/subgroups", name="Subgroups", title="Subgroups · radmon", order=4)

PATH = "/subgroups"
HEATMAP_METRICS = ("sensitivity", "specificity", "ppv", "npv", "auc")
FOREST_METRICS = ("sensitivity", "specificity", "ppv", "npv", "auc")


def _window_end(value: str | None) -> datetime | None:
    """A window end from the URL: a date (00:00 UTC) or an ISO timestamp (UTC if no zone)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"'window' must be a date like 2026-11-20; got '{value}'") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@guarded("subgroups")
def layout(
    model: str | None = None,
    version: str | None = None,
    window: str | None = None,
    metric: str | None = None,
    **_query: Any,
) -> Component:
    actor = auth.current_actor()
    scope = data.analysis_scope(actor=actor, model_name=model, version=version)
    if scope is None:
        return analysis.no_models("subgroups", "Subgroups")
    view = data.subgroup_view(actor=actor, scope=scope, window_end=_window_end(window))
    chosen = metric if metric in FOREST_METRICS else "sensitivity"
    top = analysis.header("subgroups", "Subgroups", scope, "performance per segment (site, scanner, sex, age band...)",
                          extra=_controls(view, chosen))  # fmt: skip
    table = view.table
    if table is None:
        return html.Div([top, _no_runs(scope)])
    rows = _ranked(table["segments"])
    window_label = f"window {table['window_start']:%Y-%m-%d} to {table['window_end']:%Y-%m-%d} (UTC)"
    return html.Div(
        [
            top,
            _tiles(table, rows, view.population),
            card(
                "Segment by metric",
                [
                    dcc.Graph(
                        id="subgroups-heatmap",
                        figure=subgroup_heatmap(
                            rows,
                            metrics=HEATMAP_METRICS,
                            title="Realized performance per segment (value; colour: verdict against target)",
                            subtitle=f"{window_label}; rows ranked by how far below target; 'n = k': too few cases to judge",
                        ),
                        config=GRAPH_CONFIG,
                    ),
                    _method_note(table),
                ],
                id="subgroups-heatmap-card",
            ),
            card(
                f"{metric_label(chosen)} per segment",
                _forest(rows, chosen, table, window_label),
                id="subgroups-forest-card",
                subtitle="pick another metric at the top of the page",
            ),
            card(
                "Ranking",
                _ranking_table(rows),
                id="subgroups-ranking-card",
                subtitle="furthest below target first; labelled cases of the window",
            ),
        ]
    )


def _controls(view: data.SubgroupView, metric: str) -> Component:
    current = view.table["window_end"] if view.table else None
    several = len({version for _, _, version in view.windows}) > 1
    options = [
        {
            "label": f"window to {end:%Y-%m-%d}"
            + (f" · version {version}" if several else "")
            + (f" · {breached} below target" if breached else ""),
            "value": end.isoformat(),
        }
        for end, breached, version in view.windows
    ]
    return html.Div(
        [
            html.Label("Window", htmlFor="subgroups-window-select", className="visually-hidden"),
            dbc.Select(
                id="subgroups-window-select",
                options=options,
                value=current.isoformat() if current else "",
                size="sm",
                style={"minWidth": "14rem"},
            ),
            html.Label("Metric of the forest plot", htmlFor="subgroups-metric-select", className="visually-hidden"),
            dbc.Select(
                id="subgroups-metric-select",
                options=[{"label": metric_label(m), "value": m} for m in FOREST_METRICS],
                value=metric,
                size="sm",
                style={"minWidth": "9rem"},
            ),
        ],
        className="d-flex gap-2 radmon-analysis-pickers",
    )


def _no_runs(scope: data.AnalysisScope) -> Component:
    return empty_state(
        f"No subgroup results for version {scope.version or '-'} yet",
        "Per-segment figures appear after the daily subgroups check has run on a window with outcomes; the policy names "
        "the segment attributes (site, manufacturer, sex, age band...).",
        id="subgroups-no-runs",
    )


def _ranked(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Judged segments by rank (1: furthest below target), then the ones too small to judge."""
    return sorted(
        segments,
        key=lambda s: (s.get("status") == "insufficient_data", s.get("rank") is None, s.get("rank") or 0, s["segment"]),
    )


def _population_tile(population: dict[str, Any], metric: str) -> tuple[str, Any, str, str]:
    """The whole population's realized figure of the same window: what each segment is set against."""
    label = metric_label(metric)
    point = population.get(metric)
    if point is None or point.value is None:
        return (f"{label}, whole population", "-", "no realized figure for this window", "subgroups-tile-population")
    interval = f"95% CI {point.ci_low:.3f}–{point.ci_high:.3f}, " if point.ci_low is not None else ""
    return (
        f"{label}, whole population",
        [f"{point.value:.1%} ", status_badge(point.status)],
        f"{interval}n {point.n:,}; the segments below are set against it" if point.n is not None else interval,
        "subgroups-tile-population",
    )


def _tiles(table: dict[str, Any], rows: list[dict[str, Any]], population: dict[str, Any]) -> Component:
    count = {
        status: sum(1 for r in rows if r.get("status") == status)
        for status in ("breach", "warn", "ok", "insufficient_data")
    }
    tiles = [
        _population_tile(population, "sensitivity"),
        ("Window", f"{table['window_end']:%b %d}", f"{table['window_start']:%Y-%m-%d} to {table['window_end']:%Y-%m-%d} (UTC)",
         "subgroups-tile-window"),
        ("Below target", count["breach"], "segments significantly below a target (FDR-controlled)", "subgroups-tile-breach"),
        ("Warnings", count["warn"], "below target on the point estimate, or worse than the rest", "subgroups-tile-warn"),
        ("Insufficient data", count["insufficient_data"], "segments with too few labelled cases to judge", "subgroups-tile-insufficient"),
        ("Tests", table.get("tests") if table.get("tests") is not None else "-",
         f"Benjamini-Hochberg at q = {table['fdr_q']:g}" if table.get("fdr_q") is not None else "", "subgroups-tile-tests"),
    ]  # fmt: skip
    return dbc.Row(
        [
            dbc.Col(stat_tile(label, value, hint=hint, id=tile_id), md=4, xl=True)
            for label, value, hint, tile_id in tiles
        ],
        className="g-3 mb-4",
    )


def _method_note(table: dict[str, Any]) -> Component:
    targets = ", ".join(f"{metric_label(m)} ≥ {v:g}" for m, v in (table.get("targets") or {}).items())
    return html.Div(
        f"Targets of version {table['version']}: {targets or 'none declared'}. A breach is a segment significantly below target "
        "(or significantly worse than the rest of the population) after false-discovery-rate control across every segment "
        "and metric tested in this run. Grey cells have fewer labelled positives (sensitivity) or negatives (specificity) "
        "than the policy's minimum: they are not judged, never shown as ok.",
        className="small text-body-secondary",
    )


def _forest(rows: list[dict[str, Any]], metric: str, table: dict[str, Any], window_label: str) -> Component:
    target = (table.get("targets") or {}).get(metric)
    label = metric_label(metric)
    figure = forest_plot(
        rows,
        metric=metric,
        target=target,
        title=f"{label} per segment" + (f" vs target {target:g}" if target is not None else " (no target declared)"),
        subtitle=f"{window_label}; whiskers: 95% interval; colour: verdict",
    )
    cells = [((r.get("metrics") or {}).get(metric) or {}) for r in rows]
    empty = [r["segment"] for r, cell in zip(rows, cells, strict=True) if not cell.get("n")]
    note = html.Div(
        f"No labelled case for {label if label.isupper() else label.lower()} in: {', '.join(empty)}." if empty else "",
        className="small text-body-secondary",
        id="subgroups-forest-empty",
    )
    unjudged = None
    if all(cell.get("status", "insufficient_data") == "insufficient_data" for cell in cells):
        unjudged = dbc.Alert(
            f"No segment has enough labelled cases to judge {label if label.isupper() else label.lower()} in this window. "
            "Outcomes arrive over weeks, so recent windows fill in as they do; earlier windows in the picker may have verdicts.",
            color="info",
            className="small py-2",
            id="subgroups-forest-unjudged",
        )
    return [unjudged, dcc.Graph(id="subgroups-forest-graph", figure=figure, config=GRAPH_CONFIG), note]


def _shortfall_text(row: dict[str, Any]) -> str:
    shortfall, metric = row.get("shortfall"), row.get("worst_metric")
    if shortfall is None or metric is None:
        return "-"
    label = metric_label(metric)
    return f"{label} {abs(shortfall):.2f} {'below' if shortfall > 0 else 'above'} target"


def _count(row: dict[str, Any], key: str) -> str:
    value = (row.get("counts") or {}).get(key)
    return "-" if value is None else f"{value:,}"


def _same_rows(row: dict[str, Any]) -> Component | None:
    """Segments with exactly the same rows (a site with one scanner) are tested once, under the other name."""
    same = next((m["same_rows_as"] for m in (row.get("metrics") or {}).values() if m.get("same_rows_as")), None)
    return html.Div(f"same inferences as {same}", className="small text-body-secondary") if same else None


def _ranking_table(rows: list[dict[str, Any]]) -> Component:
    columns = ("#", "Segment", "Status", "Worst gap to target", "Positives", "Negatives", "Inferences")
    head = html.Thead(html.Tr([html.Th(c) for c in columns]))
    body = []
    for position, row in enumerate(rows, start=1):
        judged = row.get("status") != "insufficient_data"
        body.append(
            html.Tr(
                [
                    html.Td(position if judged else "–", className="radmon-rank"),
                    html.Td([html.Div(row["segment"], className="fw-medium text-break"), _same_rows(row)]),
                    html.Td(status_badge(row.get("status"))),
                    html.Td(_shortfall_text(row) if judged else "too few cases to judge", className="small"),
                    *[
                        html.Td(_count(row, key), className="small text-end font-monospace")
                        for key in ("positives", "negatives", "inferences")
                    ],
                ],
                id=f"subgroups-row-{position}",
                className="table-danger" if row.get("status") == "breach" else None,
            )
        )
    return html.Div(
        dbc.Table(
            [head, html.Tbody(body)], size="sm", hover=True, className="radmon-table mb-0", id="subgroups-ranking"
        ),
        style={"maxHeight": "40rem", "overflowY": "auto"},
    )


def register_callbacks(app: Dash) -> None:
    analysis.register_navigation(app, "subgroups", PATH, extras=("subgroups-window-select", "subgroups-metric-select"))
