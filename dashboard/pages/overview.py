"""Overview: every model, its live version and latest deployment, and its monitoring status."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from dashboard import auth, data
from dashboard.components.widgets import card, empty_state, fmt_time, guarded, no_checks_badge, page_header, stat_tile

dash.register_page(__name__, path="/", name="Overview", title="Overview · radmon", order=0)


@guarded("overview")
def layout(**_query: Any) -> Component:
    summaries = data.overview(actor=auth.current_actor())
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
    return html.Div([header, _tiles(summaries), card("Models", _models_table(summaries), id="overview-models")])


def _tiles(summaries: list[data.ModelSummary]) -> Component:
    live = sum(1 for s in summaries if s.model.active_version)
    versions = sum(s.version_count for s in summaries)
    return dbc.Row(
        [
            dbc.Col(stat_tile("Models", len(summaries), hint="registered", id="overview-tile-models"), md=4),
            dbc.Col(stat_tile("Live", live, hint="with an active version", id="overview-tile-live"), md=4),
            dbc.Col(stat_tile("Versions", versions, hint="registered, immutable", id="overview-tile-versions"), md=4),
        ],
        className="g-3 mb-4",
    )


def _models_table(summaries: list[data.ModelSummary]) -> Component:
    head = html.Thead(
        html.Tr([html.Th(c) for c in ("Model", "Modality", "Active version", "Last deployment", "Monitoring")])
    )
    rows = [_model_row(summary) for summary in summaries]
    return dbc.Table([head, html.Tbody(rows)], hover=True, responsive=True, className="radmon-table mb-0", id="overview-table")


def _model_row(summary: data.ModelSummary) -> Component:
    model, last = summary.model, summary.last_deployment
    versions_href = dash.get_relative_path("/versions") + "?" + urlencode({"model": model.name})
    name = html.Td(
        [
            dcc.Link(model.display_name, href=versions_href, className="fw-semibold text-decoration-none"),
            html.Div(model.name, className="small text-body-secondary font-monospace"),
        ]
    )
    modality = html.Td(" · ".join(part for part in (model.modality, model.body_part) if part) or "-")
    active = html.Td(
        dbc.Badge(model.active_version, color="primary", className="font-monospace")
        if model.active_version
        else html.Span(f"not deployed ({summary.version_count} versions)", className="text-body-secondary small")
    )
    deployed = html.Td(
        [html.Div(fmt_time(last.activated_at)), html.Div(f"by {last.activated_by}: {last.reason}", className="small text-body-secondary")]
        if last
        else html.Span("never", className="text-body-secondary small")
    )
    status = html.Td(no_checks_badge(id=f"overview-status-{model.name}"))
    return html.Tr([name, modality, active, deployed, status], id=f"overview-row-{model.name}")
