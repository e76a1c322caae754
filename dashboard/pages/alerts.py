"""Alerts: filter the breaches the checks raised, read one alert's evidence and history, and
acknowledge or resolve it with a note (qa, admin). /dashboard/alerts?id=N is the link in alert emails."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from dashboard import auth, data
from dashboard.components import adverse
from dashboard.components.figures import alert_occurrences
from dashboard.components.widgets import (
    card,
    empty_state,
    error_alert,
    fmt_time,
    guarded,
    page_header,
    stat_tile,
)
from monitor.alerts.schemas import AlertOut, LinkedAlertOut
from monitor.auth.actors import Actor, Permission
from monitor.checks.catalog import PERFORMANCE_KINDS, kind_label, metric_label
from monitor.errors import Forbidden, MonitorError, NotFound

dash.register_page(__name__, path="/alerts", name="Alerts", title="Alerts · radmon", order=1)

GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}
SEVERITY_COLORS = {"critical": "danger", "warning": "warning", "info": "info"}
STATUS_COLORS = {"open": "danger", "acknowledged": "primary", "resolved": "success"}
STATUS_CHOICES = [
    ("active", "Open and acknowledged"),
    ("open", "Open"),
    ("acknowledged", "Acknowledged"),
    ("resolved", "Resolved"),
    ("all", "All"),
]
ANY = "any"  # a Select shows an option whose value is "" as blank, so "no filter" needs a word
# Any severity lists incidents (warning, critical); info alerts standing alone are near-misses, history on
# their segment rather than incidents (decision 0303): listed only under their own filter.
SEVERITY_CHOICES = [
    (ANY, "Any severity"),
    ("critical", "Critical"),
    ("warning", "Warning"),
    ("info", "Info: near-misses, not incidents"),
]


def alerts_href(filters: data.AlertFilters, alert_id: int | None = None) -> str:
    query = filters.query()
    if alert_id is not None:
        query["id"] = str(alert_id)
    return dash.get_relative_path("/alerts") + (f"?{urlencode(query)}" if query else "")


def _filters(status: str | None, severity: str | None, model: str | None) -> data.AlertFilters:
    known_status = status if status in dict(STATUS_CHOICES) else "active"
    known_severity = severity if severity in SEVERITY_COLORS else None
    chosen_model = (model or "").strip()
    return data.AlertFilters(
        status=known_status, severity=known_severity, model=chosen_model if chosen_model not in ("", ANY) else None
    )


def _alert_id(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 2**31 - 1 else None


@guarded("alerts")
def layout(
    id: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    model: str | None = None,
    **_query: Any,
) -> Component:
    actor = auth.current_actor()
    settings = auth.settings()
    filters = _filters(status, severity, model)
    selected = _alert_id(id)
    every_active = data.alerts(actor=actor, filters=data.AlertFilters(), settings=settings)
    listed = data.alerts(actor=actor, filters=filters, settings=settings)
    header = page_header(
        "Alerts",
        "Breaches found by the scheduled checks. Critical: a significant performance drop, a potential adverse event.",
    )
    return html.Div(
        [
            dcc.Location(id="alerts-location", refresh="callback-nav"),
            dcc.Store(
                id="alerts-filters-store",
                data={"status": filters.status, "severity": filters.severity, "model": filters.model},
            ),
            dcc.Store(id="alerts-selected-store", data=selected),
            header,
            html.Div(_tiles(every_active), id="alerts-tiles"),
            card("Filter", _filter_form(actor, filters), id="alerts-filters"),
            dbc.Row(
                [
                    dbc.Col(
                        card(
                            "Alerts",
                            html.Div(alerts_table(listed, filters, selected), id="alerts-table-container"),
                            id="alerts-list",
                            subtitle="most severe first, then most recently seen; times in UTC",
                        ),
                        xl=6,
                    ),
                    dbc.Col(html.Div(_detail_or_hint(actor, selected), id="alerts-detail"), xl=6),
                ],
                className="g-4",
            ),
        ]
    )


def _tiles(active: list[AlertOut]) -> Component:
    def count(**match: str) -> int:
        return sum(all(getattr(a, k) == v for k, v in match.items()) for a in active)

    tiles = [
        (
            "Open critical",
            count(status="open", severity="critical"),
            "potential adverse events, not yet acknowledged",
            "alerts-tile-critical",
        ),
        ("Open", count(status="open"), "waiting for someone to look", "alerts-tile-open"),
        ("Acknowledged", count(status="acknowledged"), "someone is on it", "alerts-tile-acknowledged"),
    ]
    return dbc.Row(
        [dbc.Col(stat_tile(label, value, hint=hint, id=tile_id), md=4) for label, value, hint, tile_id in tiles],
        className="g-3 mb-4",
    )


def _filter_form(actor: Actor, filters: data.AlertFilters) -> Component:
    models = data.model_choices(actor=actor)

    def select(field_id: str, label: str, options: list[tuple[str, str]], value: str | None) -> Component:
        return dbc.Col(
            [
                dbc.Label(label, html_for=field_id, className="small"),
                dbc.Select(
                    id=field_id,
                    options=[{"label": text, "value": key} for key, text in options],
                    value=value or ANY,
                    size="sm",
                ),
            ],
            md=4,
        )

    return dbc.Row(
        [
            select("alerts-filter-status", "Status", STATUS_CHOICES, filters.status),
            select("alerts-filter-severity", "Severity", SEVERITY_CHOICES, filters.severity),
            select(
                "alerts-filter-model",
                "Model",
                [(ANY, "All models"), *[(name, f"{display} ({name})") for name, display in models]],
                filters.model,
            ),
        ],
        className="g-2",
    )


# -- the list ---------------------------------------------------------------------------------------


def what(alert: AlertOut) -> str:
    """'Sensitivity · site=north' or 'Drift score · kvp': the measured thing, where."""
    metric = metric_label(alert.metric)
    return " · ".join(part for part in (metric, alert.feature, alert.segment) if part)


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def alerts_table(alerts: list[AlertOut], filters: data.AlertFilters, selected: int | None) -> Component:
    if not alerts:
        return empty_state(
            "No alerts match these filters",
            "Alerts appear when a scheduled check finds a breach; change the filters to see resolved ones.",
            id="alerts-empty",
        )
    head = html.Thead(html.Tr([html.Th(c) for c in ("Severity", "Alert", "Status", "Value / threshold", "Breaching")]))
    rows = []
    for alert in alerts:
        evidence = alert.evidence
        rows.append(
            html.Tr(
                [
                    html.Td(dbc.Badge(alert.severity, color=SEVERITY_COLORS.get(alert.severity, "secondary"))),
                    html.Td(
                        [
                            dcc.Link(
                                what(alert),
                                href=alerts_href(filters, alert.id),
                                className="fw-semibold text-decoration-none",
                                id=f"alerts-link-{alert.id}",
                            ),
                            html.Div(
                                f"#{alert.id} · {alert.model} {alert.version} · {kind_label(alert.kind)}",
                                className="small text-body-secondary",
                            ),
                            _members_line(alert),
                        ]
                    ),
                    html.Td(
                        dbc.Badge(
                            alert.status,
                            color=STATUS_COLORS.get(alert.status, "secondary"),
                            className="text-uppercase radmon-status-badge",
                        )
                    ),
                    html.Td(
                        f"{_number(evidence.get('value'))} / {_number(evidence.get('threshold'))}",
                        className="font-monospace small text-nowrap",
                    ),
                    html.Td(
                        [
                            html.Div(f"since {alert.breaching_since:%Y-%m-%d}", id=f"alerts-since-{alert.id}"),
                            html.Div(f"last {alert.last_seen:%Y-%m-%d}", className="text-body-secondary"),
                        ],
                        className="text-nowrap small",
                    ),
                ],
                id=f"alerts-row-{alert.id}",
                className="radmon-alert-row table-active" if alert.id == selected else "radmon-alert-row",
            )
        )
    return dbc.Table(
        [head, html.Tbody(rows)],
        hover=True,
        size="sm",
        responsive=True,
        className="radmon-table mb-0",
        id="alerts-table",
    )


def _members_line(alert: AlertOut) -> Component | None:
    """'also site=north&manufacturer=GE, manufacturer=GE · 3 linked findings' under an incident's name."""
    parts = []
    if alert.aliases:
        parts.append("also " + ", ".join(m.segment or "whole population" for m in alert.aliases))
    if alert.linked_evidence:
        count = len(alert.linked_evidence)
        parts.append(f"{count} linked finding{'s' if count != 1 else ''}")
    if not parts:
        return None
    return html.Div(
        " · ".join(parts), className="small text-body-secondary text-break", id=f"alerts-members-{alert.id}"
    )


def _since(alert: AlertOut) -> str:
    how = (
        "change onset estimated by the sequential detector"
        if alert.breaching_since_source == "onset"
        else "first window of the current continuous episode"
    )
    return f"{fmt_time(alert.breaching_since)} ({how})"


# -- one alert --------------------------------------------------------------------------------------


def _detail_or_hint(actor: Actor, selected: int | None, notice: Component | None = None) -> Component:
    if selected is None:
        return empty_state(
            "Select an alert",
            "Its evidence, the windows in which it held, and its history appear here.",
            id="alerts-no-selection",
        )
    try:
        detail = data.alert_detail(actor=actor, alert_id=selected, settings=auth.settings())
    except NotFound as exc:
        return error_alert(exc, id="alerts-detail-error")
    return alert_panel(actor, detail, notice=notice)


def summary_sentence(alert: AlertOut) -> str:
    evidence = alert.evidence
    parts = [f"{what(alert)} = {_number(evidence.get('value'))}"]
    if evidence.get("ci_low") is not None and evidence.get("ci_high") is not None:
        parts.append(f"(95% interval {_number(evidence['ci_low'])} to {_number(evidence['ci_high'])})")
    if evidence.get("n") is not None:
        parts.append(f"n = {evidence['n']}")
    if evidence.get("threshold") is not None:
        parts.append(
            f"against {'target' if alert.kind in PERFORMANCE_KINDS else 'threshold'} {_number(evidence['threshold'])}"
        )
    return ", ".join(parts)


def alert_panel(actor: Actor, detail: data.AlertDetail, *, notice: Component | None = None) -> Component:
    alert = detail.alert
    evidence = alert.evidence
    title = html.Div(
        [
            dbc.Badge(alert.severity, color=SEVERITY_COLORS.get(alert.severity, "secondary"), className="me-2"),
            dbc.Badge(
                alert.status,
                color=STATUS_COLORS.get(alert.status, "secondary"),
                className="me-2 text-uppercase radmon-status-badge",
                id="alerts-detail-status",
            ),
            html.Span(f"Alert #{alert.id}", className="fw-semibold"),
        ],
        className="d-flex align-items-center",
    )
    facts = [
        (
            "Model",
            dcc.Link(
                f"{alert.model} {alert.version}",
                href=dash.get_relative_path("/versions") + "?" + urlencode({"model": alert.model}),
            ),
        ),
        (
            "Check",
            kind_label(alert.kind) + (" (label-free estimate)" if evidence.get("estimated") else ""),
        ),
        ("Metric", metric_label(alert.metric)),
        ("Feature", alert.feature or "-"),
        ("Segment", alert.segment or "whole population"),
        ("Value", html.Span(_number(evidence.get("value")), className="font-monospace")),
        (
            "95% interval",
            html.Span(
                f"{_number(evidence.get('ci_low'))} to {_number(evidence.get('ci_high'))}"
                if evidence.get("ci_low") is not None
                else "-",
                className="font-monospace",
            ),
        ),
        ("n", evidence.get("n") if evidence.get("n") is not None else "-"),
        ("Target / threshold", html.Span(_number(evidence.get("threshold")), className="font-monospace")),
        ("Method", evidence.get("method") or "-"),
        ("Breaching since", html.Span(_since(alert), id="alerts-detail-since")),
        ("Last seen", f"window ending {fmt_time(alert.last_seen)}"),
        (
            "Occurrences",
            (
                f"{alert.occurrences} window{'s' if alert.occurrences != 1 else ''} in all; first seen in the "
                f"window ending {fmt_time(alert.first_seen)} (earlier episodes: see the chart and history)"
            ),
        ),
    ]
    chart_title = f"{what(alert)}: value per window (95% interval) vs threshold"
    figure = alert_occurrences(
        [o.model_dump() for o in detail.occurrences],
        metric=alert.metric,
        method=evidence.get("method"),
        title=chart_title,
    )
    body = [
        notice,
        _incident_notice(alert),
        html.Div(summary_sentence(alert), className="radmon-alert-summary mb-3", id="alerts-detail-summary"),
        _members(alert),
        html.Dl(
            [item for label, value in facts for item in (html.Dt(label), html.Dd(value))],
            className="radmon-facts small mb-3",
            id="alerts-evidence",
        ),
        dcc.Graph(id="alerts-occurrences-graph", figure=figure, config=GRAPH_CONFIG),
        html.Div(
            "History", className="small text-uppercase fw-semibold text-body-secondary radmon-tile-label mt-3 mb-1"
        ),
        _history(alert),
        _actions(actor, alert),
        adverse.adverse_section(actor, alert),  # the reporting clock of a reportable incident (0601)
    ]
    return dbc.Card(
        [dbc.CardHeader(title), dbc.CardBody(body)],
        className=f"shadow-sm mb-4 radmon-severity-{alert.severity}",
        id="alerts-detail-card",
    )


def _incident_notice(alert: AlertOut) -> Component | None:
    """A member alert says which incident speaks for it."""
    if alert.incident_id is None:
        return None
    role = "the same evidence as" if alert.incident_role == "alias" else "linked evidence of"
    return dbc.Alert(
        [
            f"Part of incident #{alert.incident_id}: {role} it ({alert.incident_reason or 'linked'}). ",
            dcc.Link(f"Open incident #{alert.incident_id}", href=alerts_href(data.AlertFilters(), alert.incident_id)),
            " to acknowledge or resolve them together; this alert sends no email of its own.",
        ],
        color="info",
        className="small",
        id="alerts-detail-incident",
    )


def _members(alert: AlertOut) -> Component | None:
    """The incident's aliases and linked evidence, each with why it belongs here."""
    sections = []
    for title, members, section_id in (
        ("Also raised as (the same evidence)", alert.aliases, "alerts-detail-aliases"),
        ("Linked evidence (related findings, no separate email)", alert.linked_evidence, "alerts-detail-linked"),
    ):
        if not members:
            continue
        sections.append(
            html.Div(
                [
                    html.Div(
                        title,
                        className="small text-uppercase fw-semibold text-body-secondary radmon-tile-label mb-1",
                    ),
                    html.Ul([_member_item(m) for m in members], className="small mb-3"),
                ],
                id=section_id,
            )
        )
    return html.Div(sections) if sections else None


def _member_item(member: LinkedAlertOut) -> Component:
    metric = metric_label(member.metric)
    name = " · ".join(part for part in (metric, member.feature, member.segment or "whole population") if part)
    return html.Li(
        [
            dcc.Link(name, href=alerts_href(data.AlertFilters(), member.id), id=f"alerts-member-{member.id}"),
            f" = {_number(member.evidence.get('value'))} ({member.severity}, {member.status}): {member.reason}",
        ],
        className="text-break",
    )


def _history(alert: AlertOut) -> Component:
    head = html.Thead(html.Tr([html.Th(c) for c in ("Time", "By", "Event", "Note")]))
    rows = [
        html.Tr(
            [
                html.Td(fmt_time(t.at), className="text-nowrap small"),
                html.Td(t.actor, className="small"),
                html.Td(
                    [
                        html.Span(t.action.replace("_", " "), className="fw-medium"),
                        html.Div(
                            f"{t.from_status or '-'} → {t.to_status} · {t.severity}",
                            className="small text-body-secondary",
                        ),
                    ],
                    className="small",
                ),
                html.Td(t.note, className="small text-break"),
            ]
        )
        for t in reversed(alert.history)
    ]
    return dbc.Table(
        [head, html.Tbody(rows)], size="sm", responsive=True, className="radmon-table mb-0", id="alerts-history"
    )


def _actions(actor: Actor, alert: AlertOut) -> Component | None:
    if not actor.can(Permission.ALERTS_ACT):
        return None
    buttons = [
        dbc.Button("Acknowledge", id="alerts-ack-button", color="primary", disabled=alert.status != "open"),
        dbc.Button(
            "Resolve", id="alerts-resolve-button", color="success", outline=True, disabled=alert.status == "resolved"
        ),
    ]
    if actor.can(Permission.CHANGES_REQUEST) and alert.kind in PERFORMANCE_KINDS:
        rollback = (
            dash.get_relative_path("/versions")
            + "?"
            + urlencode({"model": alert.model, "request": "rollback", "alert": alert.id})
        )
        buttons.append(
            dbc.Button(
                "Request rollback…",
                id="alerts-rollback-link",
                href=rollback,
                color="danger",
                outline=True,
                className="ms-auto",
            )
        )
    return html.Div(
        [
            html.Hr(),
            dbc.Label("Note (required; recorded in the alert's history and the audit trail)", html_for="alerts-note"),
            dbc.Textarea(
                id="alerts-note",
                rows=2,
                maxLength=2000,
                placeholder="what was checked or done, e.g. PACS team confirmed the protocol change at north",
            ),
            html.Div(id="alerts-action-feedback", className="mt-2"),
            html.Div(buttons, className="d-flex gap-2 mt-2"),
        ],
        id="alerts-actions",
    )


def register_callbacks(app: Dash) -> None:
    adverse.register_callbacks(app)

    @app.callback(
        Output("alerts-location", "href"),
        Input("alerts-filter-status", "value"),
        Input("alerts-filter-severity", "value"),
        Input("alerts-filter-model", "value"),
        State("alerts-selected-store", "data"),
        prevent_initial_call=True,
    )
    def filter_alerts(status: str | None, severity: str | None, model: str | None, selected: int | None) -> str:
        auth.current_actor()
        return alerts_href(_filters(status, severity, model), selected)

    @app.callback(
        Output("alerts-action-feedback", "children"),
        Output("alerts-detail", "children"),
        Output("alerts-table-container", "children"),
        Output("alerts-tiles", "children"),
        Input("alerts-ack-button", "n_clicks"),
        Input("alerts-resolve-button", "n_clicks"),
        State("alerts-selected-store", "data"),
        State("alerts-note", "value"),
        State("alerts-filters-store", "data"),
        prevent_initial_call=True,
    )
    def act(
        _ack: int | None, _resolve: int | None, alert_id: Any, note: str | None, filters: dict[str, Any] | None
    ) -> tuple[Any, ...]:
        actor = auth.require(Permission.ALERTS_ACT)  # a forged callback from a viewer or approver stops here
        action = {"alerts-ack-button": "acknowledge", "alerts-resolve-button": "resolve"}.get(str(ctx.triggered_id))
        selected = _alert_id(alert_id)
        if action is None or selected is None:
            raise PreventUpdate
        no = dash.no_update
        if not (note or "").strip():
            return (
                dbc.Alert(
                    "Write a note first: what was checked or done.",
                    color="warning",
                    className="mb-0",
                    id="alerts-action-error",
                ),
                no,
                no,
                no,
            )
        try:
            done = data.act_on_alert(actor=actor, alert_id=selected, action=action, note=note, settings=auth.settings())
        except Forbidden:
            raise
        except MonitorError as exc:
            # Only the feedback changes, so the note the user typed stays in the box.
            return error_alert(exc, id="alerts-action-error"), no, no, no
        verb = "acknowledged" if action == "acknowledge" else "resolved"
        notice = dbc.Alert(
            f"Alert #{done.id} {verb}; the note is in its history and the audit trail.",
            color="success",
            dismissable=True,
            id="alerts-action-done",
        )
        current = _filters(**(filters or {}))
        listed = data.alerts(actor=actor, filters=current, settings=auth.settings())
        every_active = data.alerts(actor=actor, filters=data.AlertFilters(), settings=auth.settings())
        return (
            no,
            _detail_or_hint(actor, selected, notice=notice),
            alerts_table(listed, current, selected),
            _tiles(every_active),
        )
