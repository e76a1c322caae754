"""Overview: every model, its live version, its monitoring status (worst unresolved alert), last
check, daily volume and label coverage, with links into its drift, performance and subgroup pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from dashboard import auth, data
from dashboard.components.adverse import overview_tile as adverse_tile
from dashboard.components.analysis import page_href, status_badge
from dashboard.components.figures import volume_sparkline
from dashboard.components.widgets import card, empty_state, fmt_time, guarded, no_checks_badge, page_header, stat_tile
from monitor.alerts.schemas import AlertOut
from monitor.checks.catalog import KINDS

dash.register_page(__name__, path="/", name="Overview", title="Overview · radmon", order=0)

SEVERITY_COLORS = {"critical": "danger", "warning": "warning", "info": "info"}
SPARKLINE_CONFIG = {"displayModeBar": False, "responsive": False}


@guarded("overview")
def layout(**_query: Any) -> Component:
    actor = auth.current_actor()
    summaries = data.overview(actor=actor)
    header = page_header("Overview", "Every registered model, the version live now, and its monitoring status.")
    if not summaries:
        return html.Div(
            [
                header,
                empty_state(
                    "No models registered yet",
                    "An administrator registers a model and its versions (POST /api/v1/models); it appears here at once.",
                    id="overview-empty",
                ),
            ]
        )
    statuses = data.monitoring_status(actor=actor, today=datetime.now(UTC).date())
    worst: dict[str, AlertOut] = {}
    for alert in data.alerts(actor=actor, filters=data.AlertFilters(), settings=auth.settings()):
        worst.setdefault(alert.model, alert)  # most severe first, then most recently seen
    return html.Div(
        [
            header,
            _tiles(summaries, statuses),
            _adverse_row(actor),
            card("Models", _models_table(summaries, statuses, worst), id="overview-models",
                 subtitle=f"status: the most severe open or acknowledged alert; volume: inferences per UTC day, the last {data.VOLUME_DAYS} whole days"),
        ]
    )  # fmt: skip


def _adverse_row(actor: Any) -> Component | None:
    """Open reportable adverse events and the nearest report deadline (decision 0601)."""
    tile = adverse_tile(actor)
    return dbc.Row([dbc.Col(tile, md=6, xl=6)], className="g-3 mb-4") if tile is not None else None


def _tiles(summaries: list[data.ModelSummary], statuses: dict[str, data.MonitoringStatus]) -> Component:
    live = sum(1 for s in summaries if s.model.active_version)
    versions = sum(s.version_count for s in summaries)
    critical = sum(1 for s in statuses.values() if s.severity == "critical")
    tiles = [
        ("Models", len(summaries), "registered", "overview-tile-models"),
        ("Live", live, "with an active version", "overview-tile-live"),
        ("Versions", versions, "registered, immutable", "overview-tile-versions"),
        ("Critical", critical, "models with a critical alert not yet resolved", "overview-tile-critical"),
    ]
    return dbc.Row(
        [dbc.Col(stat_tile(label, value, hint=hint, id=tile_id), md=6, xl=3) for label, value, hint, tile_id in tiles],
        className="g-3 mb-4",
    )


def _models_table(
    summaries: list[data.ModelSummary], statuses: dict[str, data.MonitoringStatus], worst: dict[str, AlertOut]
) -> Component:
    columns = (
        "Model",
        "Active version",
        "Status",
        "Last check",
        f"Inferences per day ({data.VOLUME_DAYS} d)",
        "Label coverage",
        "Deployed",
    )
    head = html.Thead(html.Tr([html.Th(c) for c in columns]))
    rows = [
        _model_row(summary, statuses.get(summary.model.name), worst.get(summary.model.name)) for summary in summaries
    ]
    return dbc.Table(
        [head, html.Tbody(rows)], hover=True, responsive=True, className="radmon-table mb-0", id="overview-table"
    )


def _model_row(summary: data.ModelSummary, status: data.MonitoringStatus | None, worst: AlertOut | None) -> Component:
    model, last = summary.model, summary.last_deployment
    scope = {"model": model.name}
    versions_href = dash.get_relative_path("/versions") + "?" + urlencode(scope)
    name = html.Td(
        [
            dcc.Link(model.display_name, href=versions_href, className="fw-semibold text-decoration-none"),
            html.Div(
                " · ".join(part for part in (model.name, model.modality, model.body_part) if part),
                className="small text-body-secondary font-monospace",
            ),
            html.Div(
                [dcc.Link(label, href=page_href(path, scope), className="me-3 small text-decoration-none", id=f"overview-{key}-{model.name}")
                 for key, path, label in (("drift", "/drift", "Drift"), ("performance", "/performance", "Performance"),
                                          ("subgroups", "/subgroups", "Subgroups"))],
            ),
        ]
    )  # fmt: skip
    active = html.Td(
        dbc.Badge(model.active_version, color="primary", className="font-monospace")
        if model.active_version
        else html.Span(f"not deployed ({summary.version_count} versions)", className="text-body-secondary small")
    )
    deployed = html.Td(
        [
            html.Div(fmt_time(last.activated_at), className="small text-nowrap"),
            html.Div(f"by {last.activated_by}: {last.reason}", className="small text-body-secondary"),
        ]
        if last
        else html.Span("never", className="text-body-secondary small")
    )
    cells = [
        _status_cell(model.name, status, worst),
        _last_check_cell(model.name, status),
        _volume_cell(model.name, status),
        _coverage_cell(status),
    ]
    return html.Tr([name, active, *cells, deployed], id=f"overview-row-{model.name}")


def _status_cell(model_name: str, status: data.MonitoringStatus | None, worst: AlertOut | None = None) -> Component:
    cell_id = f"overview-status-{model_name}"
    if status is None or (status.last_run is None and status.severity is None):
        return html.Td(no_checks_badge(id=cell_id))
    if status.severity is None:
        return html.Td(
            dbc.Badge("No open alerts", color="success", className="radmon-status-badge text-uppercase", id=cell_id)
        )
    counts = [f"{status.open_alerts} open" if status.open_alerts else None,
              f"{status.acknowledged_alerts} acknowledged" if status.acknowledged_alerts else None]  # fmt: skip
    alerts_href = dash.get_relative_path("/alerts") + "?" + urlencode({"model": model_name})
    return html.Td(
        [
            dbc.Badge(
                status.severity,
                color=SEVERITY_COLORS.get(status.severity, "secondary"),
                text_color="dark" if status.severity == "warning" else None,
                className="text-uppercase radmon-status-badge",
                id=cell_id,
            ),
            html.Div(
                dcc.Link(" · ".join(c for c in counts if c), href=alerts_href, className="small"), className="mt-1"
            ),
            _worst_line(model_name, worst),
        ],
        className="radmon-status-cell",
    )


def _worst_line(model_name: str, worst: AlertOut | None) -> Component | None:
    """The most severe incident: what, and since when its current episode breaches."""
    if worst is None:
        return None
    where = worst.segment or worst.feature or "whole population"
    link = dash.get_relative_path("/alerts") + "?" + urlencode({"model": model_name, "id": worst.id})
    return html.Div(
        dcc.Link(f"{worst.metric} · {where}, since {worst.breaching_since:%Y-%m-%d}", href=link),
        className="small text-body-secondary text-break",
        id=f"overview-worst-{model_name}",
    )


def _last_check_cell(model_name: str, status: data.MonitoringStatus | None) -> Component:
    run = status.last_run if status else None
    if run is None:
        return html.Td(
            html.Span("none yet", className="text-body-secondary small"), id=f"overview-last-check-{model_name}"
        )
    spec = KINDS.get(run.kind)  # where a run of its kind is read
    label, path = (run.kind, "/drift") if spec is None else (spec.label, spec.page)
    outcome = None if run.status == "completed" else status_badge(run.status)
    return html.Td(
        [
            dcc.Link(
                label,
                href=page_href(path, {"model": model_name, "version": run.version}),
                className="small fw-medium text-decoration-none",
            ),
            " ",
            outcome,
            html.Div(fmt_time(run.finished_at or run.started_at), className="small text-nowrap"),
            html.Div(
                f"window to {run.window_end:%Y-%m-%d}, {run.version}", className="small text-body-secondary text-nowrap"
            ),
        ],
        id=f"overview-last-check-{model_name}",
    )


def _volume_cell(model_name: str, status: data.MonitoringStatus | None) -> Component:
    if status is None or not any(count for _, count in status.volume):
        return html.Td(html.Span(f"no inferences in {data.VOLUME_DAYS} days", className="text-body-secondary small"),
                       id=f"overview-volume-{model_name}")  # fmt: skip
    recent = [count for _, count in status.volume[-7:]]
    return html.Td(
        [
            dcc.Graph(
                figure=volume_sparkline(status.volume),
                config=SPARKLINE_CONFIG,
                className="radmon-sparkline",
                id=f"overview-sparkline-{model_name}",
            ),
            html.Div(f"{sum(recent) / len(recent):,.0f} a day, last 7 days", className="small text-body-secondary"),
        ],
        id=f"overview-volume-{model_name}",
    )


def _coverage_cell(status: data.MonitoringStatus | None) -> Component:
    if status is None or status.label_coverage is None or status.coverage_window_end is None:
        return html.Td(html.Span("no labels yet", className="text-body-secondary small"))
    return html.Td(
        [
            html.Div(f"{status.label_coverage:.0%}", className="fw-semibold"),
            html.Div(f"{status.labelled:,} labelled", className="small text-body-secondary"),
            html.Div(
                f"window to {status.coverage_window_end:%Y-%m-%d}", className="small text-body-secondary text-nowrap"
            ),
        ]
    )
