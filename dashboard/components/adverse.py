"""The adverse-event clock on the dashboard: countdowns, the classify and reported forms, the dossier."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from dashboard import auth
from dashboard.components.widgets import error_alert, fmt_time, stat_tile
from dashboard.data import adverse as adverse_data
from monitor.adverse.schemas import AdverseEventOut, DeadlineOut
from monitor.alerts.schemas import AlertOut
from monitor.auth.actors import Actor, Permission
from monitor.errors import Forbidden, MonitorError

LABEL = "small text-uppercase fw-semibold text-body-secondary radmon-tile-label mb-1"
# Overdue in red; the last work day in amber; reported in green.
STATUS_COLORS = {"overdue": "danger", "open": "primary", "reported": "success", "reported_late": "warning"}


def countdown_badge(deadline: DeadlineOut, *, id: str | None = None) -> Component:
    color = STATUS_COLORS.get(deadline.status, "secondary")
    if deadline.status == "open" and deadline.days_left <= 1:
        color = "warning"
    return dbc.Badge(deadline.countdown, color=color, className="text-wrap text-start", **({"id": id} if id else {}))


def deadline_rows(event: AdverseEventOut, *, prefix: str) -> Component:
    rows = [
        html.Tr(
            [
                html.Td([html.Div(d.name, className="fw-medium"), html.Div(d.regulation, className="small")]),
                html.Td(countdown_badge(d, id=f"{prefix}-countdown-{d.jurisdiction}")),
            ],
            className="table-danger" if d.status == "overdue" else None,
        )
        for d in event.deadlines
    ]
    head = html.Thead(html.Tr([html.Th("Report to"), html.Th("Deadline (facility time)")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", className="radmon-table mb-2", id=f"{prefix}-deadlines")


def _field(label: str, control: Component, field_id: str) -> Component:
    return html.Div([dbc.Label(label, html_for=field_id, className="small mb-0"), control], className="mb-2")


def classify_form(actor: Actor, alert: AlertOut) -> Component | None:
    """qa and admin classify an incident (never a member alert) as a reportable adverse event."""
    if not actor.can(Permission.ALERTS_ACT) or alert.incident_id is not None:
        return None
    choices = adverse_data.jurisdictions(actor=actor, settings=auth.settings())
    zone = auth.settings().facility_timezone
    return html.Div(
        [
            dbc.Checklist(
                id="alerts-adverse-jurisdictions",
                options=[
                    {"label": f"{j.name} ({j.regulation}: {j.days} {j.unit} days)", "value": j.code} for j in choices
                ],
                value=[],
                className="small mb-2",
            ),
            _field(
                f"Facility became aware (local time, {zone}; empty: now)",
                dbc.Input(id="alerts-adverse-aware", type="datetime-local", size="sm"),
                "alerts-adverse-aware",
            ),
            dbc.Switch(
                id="alerts-adverse-remedial",
                label="Remedial action needed to prevent an unreasonable risk (21 CFR 803.53: 5 work days)",
                value=False,
                className="small mb-2",
            ),
            _field(
                "Why it is reportable",
                dbc.Textarea(id="alerts-adverse-reason", rows=2, maxLength=4000),
                "alerts-adverse-reason",
            ),
            _field(
                "Meaning of your signature",
                dbc.Input(id="alerts-adverse-meaning", value="classified as a reportable adverse event", size="sm"),
                "alerts-adverse-meaning",
            ),
            _field(
                f"Your password ({actor.username}): it confirms that you sign",
                dbc.Input(id="alerts-adverse-password", type="password", autocomplete="current-password", size="sm"),
                "alerts-adverse-password",
            ),
            html.Div(id="alerts-adverse-feedback"),
            dbc.Button("Classify and sign", id="alerts-adverse-classify-button", color="danger", size="sm"),
        ],
        id="alerts-adverse-classify",
    )


def reported_form(actor: Actor, event: AdverseEventOut) -> Component | None:
    open_deadlines = [d for d in event.deadlines if d.reported_at is None]
    if not actor.can(Permission.ALERTS_ACT) or not open_deadlines:
        return None
    return html.Div(
        [
            html.Div("Record a filed report", className=LABEL),
            _field(
                "Jurisdiction",
                dbc.Select(
                    id="alerts-adverse-report-jurisdiction",
                    options=[{"label": d.name, "value": d.jurisdiction} for d in open_deadlines],
                    value=open_deadlines[0].jurisdiction,
                    size="sm",
                ),
                "alerts-adverse-report-jurisdiction",
            ),
            _field(
                "Reference number",
                dbc.Input(id="alerts-adverse-reference", size="sm", maxLength=200),
                "alerts-adverse-reference",
            ),
            _field(
                "Filed on (empty: today)",
                dbc.Input(id="alerts-adverse-reported-on", type="date", size="sm"),
                "alerts-adverse-reported-on",
            ),
            _field(
                f"Your password ({actor.username})",
                dbc.Input(
                    id="alerts-adverse-report-password", type="password", autocomplete="current-password", size="sm"
                ),
                "alerts-adverse-report-password",
            ),
            html.Div(id="alerts-adverse-report-feedback"),
            dbc.Button("Record report and sign", id="alerts-adverse-report-button", color="primary", size="sm"),
        ],
        id="alerts-adverse-report",
    )


def adverse_section(actor: Actor, alert: AlertOut, *, notice: Component | None = None) -> Component | None:
    """The alert page's adverse-event block: the countdowns, signatures, forms and the dossier."""
    if alert.incident_id is not None:
        return None
    event = adverse_data.adverse_event(actor=actor, alert_id=alert.id, settings=auth.settings())
    if event is None:
        form = classify_form(actor, alert)
        if form is None:
            return None
        body: list[Any] = [
            notice,
            html.Div("Reportable adverse event?", className=LABEL),
            html.Div(
                "Classifying starts each jurisdiction's reporting clock (work days skip weekends and holidays).",
                className="small text-body-secondary mb-2",
            ),
            form,
        ]
    else:
        body = [
            notice,
            html.Div(f"Reportable adverse event #{event.id}", className=LABEL),
            html.Div(
                f"Aware {fmt_time(event.aware_at)}; classified by {event.classified_by}"
                + ("; remedial action needed" if event.remedial_action else ""),
                className="small mb-2",
            ),
            deadline_rows(event, prefix="alerts-adverse"),
            html.Ul(
                [html.Li(s.manifestation, className="small") for s in event.signatures],
                className="mb-2",
                id="alerts-adverse-signatures",
            ),
            dcc.Store(id="alerts-adverse-event-store", data=event.id),
            dbc.Button(
                "Download incident dossier (PDF)",
                id="alerts-adverse-dossier-button",
                color="secondary",
                outline=True,
                size="sm",
                className="mb-3",
            ),
            dcc.Download(id="alerts-adverse-dossier-download"),
            reported_form(actor, event),
        ]
    return html.Div([html.Hr(), *body], id="alerts-adverse")


def overview_tile(actor: Actor) -> Component | None:
    """Open reportable events and the nearest deadline (overdue in red), for the overview page."""
    if not actor.can(Permission.MODELS_READ):
        return None
    events = adverse_data.open_adverse_events(actor=actor, settings=auth.settings())
    if not events:
        return None
    pending = [(d, e) for e in events for d in e.deadlines if d.reported_at is None]
    nearest, event = min(pending, key=lambda pair: pair[0].due_at)
    overdue = sum(d.status == "overdue" for d, _ in pending)
    link = dcc.Link(
        f"#{event.id} {nearest.name}: ",
        href=dash.get_relative_path("/alerts") + f"?id={event.alert_id}",
        id="overview-adverse-link",
    )
    hint = html.Span([link, countdown_badge(nearest, id="overview-adverse-countdown")])
    label = "Reportable adverse events" + (f" ({overdue} overdue)" if overdue else "")
    return stat_tile(label, len(events), hint=hint, id="overview-adverse-tile")  # type: ignore[arg-type]


def register_callbacks(app: Dash) -> None:
    @app.callback(
        Output("alerts-adverse", "children"),
        Output("alerts-adverse-feedback", "children"),
        Input("alerts-adverse-classify-button", "n_clicks"),
        State("alerts-selected-store", "data"),
        State("alerts-adverse-jurisdictions", "value"),
        State("alerts-adverse-aware", "value"),
        State("alerts-adverse-remedial", "value"),
        State("alerts-adverse-reason", "value"),
        State("alerts-adverse-meaning", "value"),
        State("alerts-adverse-password", "value"),
        prevent_initial_call=True,
    )
    def classify(
        clicks: int | None,
        alert_id: Any,
        codes: list[str] | None,
        aware: str | None,
        remedial: bool | None,
        reason: str | None,
        meaning: str | None,
        password: str | None,
    ) -> Any:
        actor = auth.require(Permission.ALERTS_ACT)
        if not clicks or not isinstance(alert_id, int):
            raise PreventUpdate
        try:
            adverse_data.classify(
                actor=actor,
                alert_id=alert_id,
                jurisdiction_codes=list(codes or []),
                aware_at=aware,
                remedial_action=bool(remedial),
                reason=reason or "",
                meaning=meaning or "",
                password=password or "",
                settings=auth.settings(),
            )
        except MonitorError as exc:
            if isinstance(exc, Forbidden) and exc.code != "signature_refused":
                raise
            # Only the feedback changes, so what the user typed stays in the form.
            return dash.no_update, error_alert(exc, id="alerts-adverse-error")
        return _refreshed(actor, alert_id, "Classified and signed; the reporting clock runs."), dash.no_update

    @app.callback(
        Output("alerts-adverse", "children", allow_duplicate=True),
        Output("alerts-adverse-report-feedback", "children"),
        Input("alerts-adverse-report-button", "n_clicks"),
        State("alerts-selected-store", "data"),
        State("alerts-adverse-event-store", "data"),
        State("alerts-adverse-report-jurisdiction", "value"),
        State("alerts-adverse-reference", "value"),
        State("alerts-adverse-reported-on", "value"),
        State("alerts-adverse-report-password", "value"),
        prevent_initial_call=True,
    )
    def report(
        clicks: int | None,
        alert_id: Any,
        event_id: Any,
        jurisdiction: str | None,
        reference: str | None,
        reported_on: str | None,
        password: str | None,
    ) -> Any:
        actor = auth.require(Permission.ALERTS_ACT)
        if not clicks or not isinstance(alert_id, int) or not isinstance(event_id, int):
            raise PreventUpdate
        try:
            adverse_data.mark_reported(
                actor=actor,
                event_id=event_id,
                jurisdiction=jurisdiction or "",
                reference=reference or "",
                reported_on=reported_on,
                password=password or "",
                settings=auth.settings(),
            )
        except MonitorError as exc:
            if isinstance(exc, Forbidden) and exc.code != "signature_refused":
                raise
            return dash.no_update, error_alert(exc, id="alerts-adverse-report-error")
        return _refreshed(actor, alert_id, "Report recorded and signed."), dash.no_update

    @app.callback(
        Output("alerts-adverse-dossier-download", "data"),
        Input("alerts-adverse-dossier-button", "n_clicks"),
        State("alerts-adverse-event-store", "data"),
        prevent_initial_call=True,
    )
    def download(clicks: int | None, event_id: Any) -> Any:
        actor = auth.require(Permission.MODELS_READ)
        if not clicks or not isinstance(event_id, int):
            raise PreventUpdate
        dossier = adverse_data.dossier_pdf(actor=actor, event_id=event_id, settings=auth.settings())
        return dcc.send_bytes(dossier.pdf, dossier.file_name, type="application/pdf")


def _refreshed(actor: Actor, alert_id: int, message: str) -> Any:
    notice = dbc.Alert(message, color="success", dismissable=True, id="alerts-adverse-done", className="small")
    try:
        alert = adverse_data.incident(actor=actor, alert_id=alert_id, settings=auth.settings())
    except MonitorError as exc:
        return error_alert(exc, id="alerts-adverse-error")
    section = adverse_section(actor, alert, notice=notice)
    return section.children if section is not None else notice  # type: ignore[attr-defined]
