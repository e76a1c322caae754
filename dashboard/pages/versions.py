"""Versions: a model's immutable versions (targets, threshold, artifact hash) and its deployment timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from dashboard import auth, data
from dashboard.components.figures import deployment_timeline
from dashboard.components.widgets import (
    card,
    empty_state,
    error_alert,
    fmt_time,
    guarded,
    page_header,
    short_hash,
    target_badges,
)
from monitor.auth.actors import Permission
from monitor.errors import Forbidden, MonitorError, NotFound
from monitor.registry.schemas import DeploymentOut, VersionOut

dash.register_page(__name__, path="/versions", name="Versions", title="Versions · radmon", order=1)

GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}


def versions_href(model_name: str) -> str:
    return dash.get_relative_path("/versions") + "?" + urlencode({"model": model_name})


@guarded("versions")
def layout(model: str | None = None, **_query: Any) -> Component:
    actor = auth.current_actor()
    choices = data.model_choices(actor=actor)
    if not choices:
        return html.Div(
            [
                page_header("Versions & deployments"),
                empty_state(
                    "No models registered yet",
                    "Versions appear here once an administrator registers a model and its versions.",
                    id="versions-empty",
                ),
            ]
        )
    selected = model or choices[0][0]
    picker = dbc.Select(
        id="versions-model-select",
        options=[{"label": f"{display} ({name})", "value": name} for name, display in choices],
        value=selected,
        style={"minWidth": "20rem"},
    )
    nav = dcc.Location(id="versions-location", refresh="callback-nav")
    try:
        detail = data.model_detail(actor=actor, model_name=selected)
    except NotFound as exc:
        return html.Div([nav, page_header("Versions & deployments", actions=picker), error_alert(exc, id="versions-error")])
    header = page_header(
        "Versions & deployments",
        [html.Span(detail.model.display_name, className="fw-semibold"), f" · {detail.model.name}"],
        actions=picker,
    )
    sections = [
        nav,
        dcc.Store(id="versions-model-store", data=detail.model.name),
        dcc.Location(id="versions-reload", refresh=True),
        header,
        _model_card(detail),
        card("Versions", _versions_table(detail), id="versions-versions", subtitle="immutable once registered"),
    ]
    if not detail.deployments and detail.versions and actor.can(Permission.DEPLOY_FIRST):
        sections.append(_first_activation_card(detail))
    sections.append(_deployments_card(detail))
    # Change requests (rollback / promotion) and their signed approvals plug in here, below the
    # timeline they change, once the change-request service exists.
    return html.Div(sections)


def _model_card(detail: data.ModelDetail) -> Component:
    model = detail.model
    facts = [
        ("Task", model.task),
        ("Modality", " · ".join(p for p in (model.modality, model.body_part) if p) or "-"),
        ("Active version", model.active_version or "not deployed"),
        ("Intended use", model.intended_use or "-"),
        ("Alert recipients", ", ".join(model.alert_recipients) or "-"),
        ("Registered", f"{fmt_time(model.created_at)} by {model.created_by}"),
    ]
    body = dbc.Row(
        [
            dbc.Col([html.Div(label, className="small text-body-secondary"), html.Div(value, className="fw-medium")], md=4, className="mb-3")
            for label, value in facts
        ],
        className="mb-n3",
    )
    return card("Model", body, id="versions-model")


def _status(version: VersionOut, detail: data.ModelDetail) -> Component:
    if version.version == detail.model.active_version:
        return dbc.Badge("live", color="success")
    if any(d.version == version.version for d in detail.deployments):
        return dbc.Badge("previously live", color="secondary")
    return dbc.Badge("never deployed", color="light", text_color="secondary", className="border")


def _versions_table(detail: data.ModelDetail) -> Component:
    if not detail.versions:
        return empty_state("No versions yet", "An administrator registers versions with their artifact hash and targets.", id="versions-none")
    head = html.Thead(
        html.Tr([html.Th(c) for c in ("Version", "Status", "Performance targets", "Decision threshold", "Artifact", "Registered")])
    )
    rows = [
        html.Tr(
            [
                html.Td(html.Span(v.version, className="font-monospace fw-semibold")),
                html.Td(_status(v, detail)),
                html.Td(target_badges(v.targets)),
                html.Td(f"{v.decision_threshold:.3f}", className="font-monospace"),
                html.Td(
                    [
                        html.Div(["sha256 ", short_hash(v.artifact_sha256, 16)]),
                        html.Div(v.artifact_uri, className="small text-body-secondary text-break"),
                    ]
                ),
                html.Td([html.Div(fmt_time(v.created_at)), html.Div(f"by {v.created_by}", className="small text-body-secondary")]),
            ],
            id=f"versions-row-{v.version}",
        )
        for v in reversed(detail.versions)
    ]
    return dbc.Table([head, html.Tbody(rows)], hover=True, responsive=True, className="radmon-table mb-0", id="versions-table")


def _deployments_card(detail: data.ModelDetail) -> Component:
    if not detail.deployments:
        body: Component = empty_state(
            "Not deployed yet",
            "The deployment timeline starts with the first activation of a version.",
            id="versions-no-deployments",
        )
    else:
        figure = deployment_timeline([d.model_dump() for d in detail.deployments], now=datetime.now(UTC))
        body = html.Div(
            [
                dcc.Graph(id="versions-timeline", figure=figure, config=GRAPH_CONFIG),
                _deployments_table(detail.deployments),
            ]
        )
    return card("Deployments", body, id="versions-deployments", subtitle="which version was live when")


def _deployments_table(deployments: list[DeploymentOut]) -> Component:
    head = html.Thead(html.Tr([html.Th(c) for c in ("Activated", "Version", "By", "Reason", "Change request")]))
    rows = [
        html.Tr(
            [
                html.Td(fmt_time(d.activated_at)),
                html.Td(html.Span(d.version, className="font-monospace")),
                html.Td(d.activated_by),
                html.Td(d.reason or "-"),
                html.Td(f"#{d.change_request_id}" if d.change_request_id else "-"),
            ]
        )
        for d in reversed(deployments)
    ]
    return dbc.Table([head, html.Tbody(rows)], size="sm", responsive=True, className="radmon-table mt-3 mb-0", id="versions-deployments-table")


def _first_activation_card(detail: data.ModelDetail) -> Component:
    versions = [v.version for v in reversed(detail.versions)]
    form = dbc.Row(
        [
            dbc.Col(
                [dbc.Label("Version", html_for="versions-activate-version"),
                 dbc.Select(id="versions-activate-version", options=versions, value=versions[0])],
                md=3,
            ),
            dbc.Col(
                [dbc.Label("Reason (recorded in the audit trail)", html_for="versions-activate-reason"),
                 dbc.Input(id="versions-activate-reason", placeholder="e.g. go-live after local validation", maxLength=2000)],
                md=6,
            ),
            dbc.Col(dbc.Button("Activate", id="versions-activate-button", color="primary", className="w-100"), md=3, className="d-flex align-items-end"),
        ],
        className="g-3",
    )
    body = [
        html.P(
            "This model has never been live. Its first activation is an administrator action; "
            "every later change of the active version needs a change request and its approvals.",
            className="text-body-secondary",
        ),
        form,
        html.Div(id="versions-activate-feedback", className="mt-3"),
    ]
    return card("First activation", body, id="versions-first-activation")


def register_callbacks(app: Dash) -> None:
    @app.callback(
        Output("versions-location", "href"),
        Input("versions-model-select", "value"),
        prevent_initial_call=True,
    )
    def choose_model(model_name: str | None) -> str:
        auth.current_actor()
        if not model_name:
            raise PreventUpdate
        return versions_href(model_name)

    @app.callback(
        Output("versions-activate-feedback", "children"),
        Output("versions-reload", "href"),
        Input("versions-activate-button", "n_clicks"),
        State("versions-model-store", "data"),
        State("versions-activate-version", "value"),
        State("versions-activate-reason", "value"),
        prevent_initial_call=True,
    )
    def activate_first(_clicks: int | None, model_name: str, version: str, reason: str | None) -> tuple[Any, Any]:
        actor = auth.require(Permission.DEPLOY_FIRST)  # refuse a forged request before anything else
        if not (reason or "").strip():
            return dbc.Alert("Give a reason: it is recorded with the deployment.", color="warning"), dash.no_update
        try:
            data.activate_first_version(actor=actor, model_name=model_name, version=version, reason=reason.strip())
        except Forbidden:
            raise
        except MonitorError as exc:
            return error_alert(exc, id="versions-activate-error"), dash.no_update
        return dbc.Alert(f"Version {version} is live.", color="success"), versions_href(model_name)
