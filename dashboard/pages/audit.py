"""Audit trail: filter and page through the hash-chained events, verify the chain, export CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Response, request

from dashboard import auth, data
from dashboard.components.widgets import (
    card,
    chain_status,
    display_json,
    error_alert,
    fmt_time,
    guarded,
    page_header,
    short_hash,
)
from monitor.audit.schemas import AuditEventOut
from monitor.auth.actors import Permission
from monitor.errors import Invalid

dash.register_page(__name__, path="/audit", name="Audit trail", title="Audit trail · radmon", order=9)

FULL_POLL_MS = 1000
FULL_POLL_GIVE_UP = timedelta(minutes=10)

FILTER_FIELDS = (
    # (query/field name, label, placeholder)
    ("actor", "Actor", "username, e.g. admin"),
    ("action", "Action", "e.g. deployment.activate"),
    ("entity", "Entity", "e.g. model"),
    ("entity_id", "Entity id", "e.g. ich-ct"),
)


def export_href(filters: data.AuditFilters) -> str:
    query = filters.query()
    return dash.get_relative_path("/audit/export.csv") + (f"?{urlencode(query)}" if query else "")


@guarded("audit")
def layout(
    actor: str | None = None,
    action: str | None = None,
    entity: str | None = None,
    entity_id: str | None = None,
    since: str | None = None,
    **_query: Any,
) -> Component:
    auth.require(Permission.AUDIT_READ)
    initial = {"actor": actor, "action": action, "entity": entity, "entity_id": entity_id}
    return html.Div(
        [
            page_header(
                "Audit trail",
                "Append-only record of every state change; each event's SHA-256 hash covers the one before it.",
            ),
            card(
                "Chain integrity",
                [
                    dcc.Loading(html.Div(id="audit-chain-status"), type="dot"),
                    dbc.Button(
                        "Verify full chain now", id="audit-verify-button", color="secondary", outline=True, size="sm"
                    ),
                    html.Div(
                        "On opening, only the events appended since the last verification are rehashed, from the head it "
                        "verified; the button rehashes every event from the first, in the background, and shows the result "
                        "here when it finishes.",
                        className="small text-body-secondary mt-1",
                    ),
                    dcc.Store(id="audit-full-store"),
                    dcc.Interval(id="audit-full-poll", interval=FULL_POLL_MS, disabled=True),
                ],
                id="audit-chain",
            ),
            card("Filter", _filter_form(initial, since), id="audit-filters"),
            card(
                "Events",
                [
                    html.Div(id="audit-filter-error"),
                    dcc.Loading(html.Div(id="audit-table-container"), type="dot"),
                    _pager(),
                ],
                id="audit-events",
                subtitle="newest first, times in UTC",
            ),
            dcc.Store(id="audit-cursor-store", data={"before": None, "history": [], "next": None}),
        ]
    )


def _filter_form(initial: dict[str, str | None], since: str | None) -> Component:
    fields = [
        dbc.Col(
            [
                dbc.Label(label, html_for=f"audit-filter-{name}", className="small"),
                dbc.Input(
                    id=f"audit-filter-{name}",
                    value=initial[name] or "",
                    placeholder=placeholder,
                    size="sm",
                    debounce=True,
                ),
            ],
            md=2,
        )
        for name, label, placeholder in FILTER_FIELDS
    ]
    fields.append(
        dbc.Col(
            [
                dbc.Label("Since (UTC date)", html_for="audit-filter-since", className="small"),
                dbc.Input(id="audit-filter-since", type="date", value=(since or "")[:10], size="sm"),
            ],
            md=2,
        )
    )
    buttons = dbc.Col(
        html.Div(
            [
                dbc.Button("Apply", id="audit-apply-button", color="primary", size="sm"),
                dbc.Button(
                    "Export CSV",
                    id="audit-export-link",
                    href=export_href(data.AuditFilters()),
                    external_link=True,
                    color="secondary",
                    outline=True,
                    size="sm",
                ),
            ],
            className="d-flex gap-2",
        ),
        md=2,
        className="d-flex align-items-end",
    )
    hint = html.Div(
        "Filters match exactly; leave a field empty to ignore it.", className="small text-body-secondary mt-2"
    )
    return [dbc.Row([*fields, buttons], className="g-2"), hint]


def _pager() -> Component:
    return html.Div(
        [
            html.Span(id="audit-page-label", className="small text-body-secondary"),
            html.Div(
                [
                    dbc.Button(
                        "← Newer", id="audit-newer-button", size="sm", color="secondary", outline=True, disabled=True
                    ),
                    dbc.Button(
                        "Older →", id="audit-older-button", size="sm", color="secondary", outline=True, disabled=True
                    ),
                ],
                className="d-flex gap-2",
            ),
        ],
        className="d-flex justify-content-between align-items-center mt-3",
    )


def _change(event: AuditEventOut) -> Component:
    if event.before is None and event.after is None:
        return html.Span("-", className="text-body-secondary")
    parts = []
    if event.before is not None:
        parts += [
            html.Div("before", className="small fw-semibold mt-1"),
            html.Pre(display_json(event.before), className="radmon-json"),
        ]
    if event.after is not None:
        parts += [
            html.Div("after", className="small fw-semibold mt-1"),
            html.Pre(display_json(event.after), className="radmon-json"),
        ]
    summary = (
        "before → after"
        if event.before is not None and event.after is not None
        else ("after" if event.after is not None else "before")
    )
    return html.Details([html.Summary(summary, className="small")] + parts)


def events_table(events: list[AuditEventOut]) -> Component:
    if not events:
        return html.Div("No events match these filters.", className="text-body-secondary py-3", id="audit-no-events")
    head = html.Thead(
        html.Tr([html.Th(c) for c in ("#", "Time", "Actor", "Action", "Entity", "Reason", "Change", "Hash")])
    )
    rows = [
        html.Tr(
            [
                html.Td(e.seq, className="font-monospace"),
                html.Td(fmt_time(e.at, seconds=True), className="text-nowrap"),
                html.Td(e.actor),
                html.Td(html.Code(e.action)),
                html.Td(
                    [e.entity, html.Div(e.entity_id, className="small text-body-secondary text-break")]
                    if e.entity_id
                    else e.entity
                ),
                html.Td(e.reason or "-", className="small"),
                html.Td(_change(e)),
                html.Td(short_hash(e.hash, 10)),
            ]
        )
        for e in events
    ]
    return dbc.Table(
        [head, html.Tbody(rows)],
        hover=True,
        size="sm",
        responsive=True,
        className="radmon-table mb-0",
        id="audit-table",
    )


def export_csv() -> Response:
    """GET /dashboard/audit/export.csv?actor=&action=&entity=&entity_id=&since= : the matching events, streamed."""
    actor = auth.require(Permission.AUDIT_READ)
    args = request.args
    filters = data.AuditFilters.parse(
        actor_name=args.get("actor"),
        action=args.get("action"),
        entity=args.get("entity"),
        entity_id=args.get("entity_id"),
        since=args.get("since"),
    )
    lines = data.audit_csv(actor=actor, filters=filters)
    return Response(
        lines, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="radmon-audit.csv"'}
    )


def register_callbacks(app: Dash) -> None:
    app.server.add_url_rule("/audit/export.csv", "radmon_audit_export", export_csv)

    @app.callback(
        Output("audit-chain-status", "children"),
        Output("audit-full-store", "data"),
        Output("audit-full-poll", "disabled"),
        Input("audit-verify-button", "n_clicks"),
        Input("audit-full-poll", "n_intervals"),
        State("audit-full-store", "data"),
    )
    def verify(_clicks: int | None, _polls: int | None, running: dict[str, str] | None) -> tuple[Any, ...]:
        """Opening: the events since the last verification. The button: a full verification in the
        background, then a poll every FULL_POLL_MS until its result is recorded."""
        actor = auth.require(Permission.AUDIT_READ)
        if ctx.triggered_id == "audit-verify-button":
            started = data.start_full_verification(actor=actor)
            return _full_running(started), {"started": started.isoformat()}, False
        if ctx.triggered_id == "audit-full-poll" and running:
            started = datetime.fromisoformat(running["started"])
            result = data.full_verification_result(actor=actor, started_at=started)
            if result is not None:
                return chain_status(result), None, True
            if datetime.now(UTC) - started > FULL_POLL_GIVE_UP:
                message = (
                    "The full verification has not finished; the server log says why if it failed. Try again later."
                )
                return dbc.Alert(message, color="warning", id="audit-chain-unfinished"), None, True
            raise PreventUpdate  # still running: the next poll looks again
        return chain_status(data.audit_chain(actor=actor)), None, True

    filter_states = [State(f"audit-filter-{name}", "value") for name, _, _ in FILTER_FIELDS]

    @app.callback(
        Output("audit-table-container", "children"),
        Output("audit-cursor-store", "data"),
        Output("audit-page-label", "children"),
        Output("audit-newer-button", "disabled"),
        Output("audit-older-button", "disabled"),
        Output("audit-export-link", "href"),
        Output("audit-filter-error", "children"),
        Input("audit-apply-button", "n_clicks"),
        Input("audit-older-button", "n_clicks"),
        Input("audit-newer-button", "n_clicks"),
        *[Input(f"audit-filter-{name}", "n_submit") for name, _, _ in FILTER_FIELDS],
        *filter_states,
        State("audit-filter-since", "value"),
        State("audit-cursor-store", "data"),
    )
    def show_events(*args: Any) -> tuple[Any, ...]:
        actor = auth.require(Permission.AUDIT_READ)
        values = args[3 + len(FILTER_FIELDS) :]
        actor_name, action, entity, entity_id, since, cursor = values
        try:
            filters = data.AuditFilters.parse(
                actor_name=actor_name, action=action, entity=entity, entity_id=entity_id, since=since
            )
        except Invalid as exc:
            no = dash.no_update
            return no, no, no, no, no, no, error_alert(exc, id="audit-filter-invalid")
        cursor = _move(cursor or {}, ctx.triggered_id)
        page = data.audit_events(actor=actor, filters=filters, before_seq=cursor["before"])
        cursor["next"] = page.next_before_seq
        label = _page_label(page, len(cursor["history"]) + 1)
        return (
            events_table(page.events),
            cursor,
            label,
            not cursor["history"],
            page.next_before_seq is None,
            export_href(filters),
            None,
        )


def _full_running(started: datetime) -> Component:
    return dbc.Alert(
        [
            html.Span("Rehashing the whole chain", className="fw-semibold"),
            f" from the first event (started {started:%H:%M:%S} UTC); the result appears here when it finishes.",
        ],
        color="info",
        className="mb-2",
        id="audit-chain-running",
    )


def _move(cursor: dict[str, Any], trigger: Any) -> dict[str, Any]:
    """Keyset paging: remember the cursors of the pages behind us so Newer can go back."""
    history = list(cursor.get("history") or [])
    if trigger == "audit-older-button" and cursor.get("next") is not None:
        return {"before": cursor["next"], "history": [*history, cursor.get("before")], "next": None}
    if trigger == "audit-newer-button" and history:
        return {"before": history[-1], "history": history[:-1], "next": None}
    return {"before": None, "history": [], "next": None}  # apply / first load: newest page


def _page_label(page: data.AuditPage, number: int) -> str:
    if not page.events:
        return ""
    return f"Page {number}: events #{page.events[0].seq} to #{page.events[-1].seq}"
