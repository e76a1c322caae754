"""Widgets every page shares: navbar, page header, empty and error states, formatting."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, get_relative_path, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from dashboard import auth
from monitor.audit.verification import ChainCheck
from monitor.auth.actors import Actor
from monitor.checks.catalog import TARGET_METRICS, metric_label
from monitor.errors import MonitorError

log = logging.getLogger("radmon.dashboard")

NAV_ITEMS = (
    ("Overview", "/"),
    ("Drift", "/drift"),
    ("Performance", "/performance"),
    ("Subgroups", "/subgroups"),
    ("Alerts", "/alerts"),
    ("Versions", "/versions"),
    ("Reports", "/reports"),
    ("Policy", "/policy"),
    ("Audit trail", "/audit"),
)
ROLE_COLORS = {"admin": "danger", "approver": "warning", "qa": "info", "viewer": "secondary"}


def navbar(actor: Actor | None, *, csrf_token: str) -> Component:
    """Brand, page links, and who is signed in with a sign-out button (a CSRF-checked POST)."""
    links = [
        dbc.NavItem(
            dbc.NavLink(label, href=get_relative_path(path), active="exact", id=f"nav-{path.strip('/') or 'overview'}")
        )
        for label, path in NAV_ITEMS
    ]
    user: list[Component] = []
    if actor is not None:
        user = [
            html.Span(actor.printed_name or actor.username, className="text-light me-2", id="nav-user-name"),
            dbc.Badge(actor.role, color=ROLE_COLORS.get(actor.role, "secondary"), className="me-3", id="nav-user-role"),
            html.Form(
                html.Button(
                    "Sign out",
                    type="submit",
                    name="csrf_token",
                    value=csrf_token,
                    className="btn btn-outline-light btn-sm",
                    id="nav-logout-button",
                ),
                method="POST",
                action=get_relative_path("/logout"),
                className="d-inline m-0",
            ),
        ]
    return dbc.Navbar(
        dbc.Container(
            [
                html.A(
                    [html.Span("rad", className="radmon-brand-mark"), "mon"],
                    href=get_relative_path("/"),
                    className="navbar-brand radmon-brand",
                ),
                dbc.Nav(links, navbar=True, className="me-auto"),
                html.Div(user, className="d-flex align-items-center"),
            ],
            fluid="xxl",
        ),
        color="dark",
        dark=True,
        className="radmon-navbar mb-0",
    )


def page_header(
    title: str, subtitle: str | Component | Sequence[str | Component] | None = None, *, actions: Component | None = None
) -> Component:
    return html.Div(
        [
            html.Div(
                [html.H1(title, className="h3 mb-1"), html.Div(subtitle, className="text-body-secondary")]
                if subtitle
                else [html.H1(title, className="h3 mb-1")]
            ),
            html.Div(actions) if actions is not None else None,
        ],
        className="d-flex justify-content-between align-items-end flex-wrap gap-2 mb-4",
    )


def empty_state(title: str, body: str | list[Any], *, id: str) -> Component:
    """An honest "nothing here yet" panel: says what is missing and how it will appear."""
    return html.Div(
        [html.Div(title, className="fw-semibold mb-1"), html.Div(body, className="text-body-secondary small")],
        className="radmon-empty text-center p-4",
        id=id,
    )


def error_alert(exc: MonitorError, *, id: str) -> Component:
    heading = {403: "Not allowed", 404: "Not found"}.get(exc.status_code, "Could not complete the request")
    return dbc.Alert([html.Div(heading, className="fw-semibold"), html.Div(exc.message)], color="danger", id=id)


def guarded(page: str) -> Callable[[Callable[..., Component]], Callable[..., Component]]:
    """Render a page's domain errors (unknown model, not allowed...) as an alert, not a blank page."""

    def decorate(layout: Callable[..., Component]) -> Callable[..., Component]:
        @functools.wraps(layout)
        def render(**query: Any) -> Component:
            try:
                return layout(**query)
            except MonitorError as exc:
                log.info("page refused", extra={"page": page, "reason": exc.message})
                return html.Div(error_alert(exc, id=f"{page}-error"), className="pt-2")

        return render

    return decorate


def card(title: str, body: Any, *, id: str | None = None, subtitle: str | None = None) -> Component:
    header = [html.Span(title, className="fw-semibold")]
    if subtitle:
        header.append(html.Span(subtitle, className="text-body-secondary small ms-2"))
    return dbc.Card(
        [dbc.CardHeader(header), dbc.CardBody(body)], className="mb-4 shadow-sm", **({"id": id} if id else {})
    )


def form_modal(
    prefix: str,
    title: str,
    body: list[Component],
    *,
    submit: str,
    submit_color: str = "primary",
    is_open: bool = False,
    retitled: bool = False,
) -> Component:
    """A form in a modal: its body, Cancel and the submit button. Ids: `<prefix>-modal`, `<prefix>-cancel`,
    `<prefix>-submit`, and `<prefix>-title` when a callback retitles it (`retitled`)."""
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle(title, **({"id": f"{prefix}-title"} if retitled else {}))),
            dbc.ModalBody(body),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id=f"{prefix}-cancel", color="secondary", outline=True),
                    dbc.Button(submit, id=f"{prefix}-submit", color=submit_color),
                ]
            ),
        ],
        id=f"{prefix}-modal",
        is_open=is_open,
        size="lg",
        backdrop="static",
    )


def signature_fields(prefix: str) -> list[Component]:
    """What a signer sees above the password (21 CFR 11.50): what is signed (`<prefix>-content`), the statement
    the signature makes (`<prefix>-meaning`), who signs (`<prefix>-signer`), then the password's label."""
    return [
        html.Div(id=f"{prefix}-content", className="mb-3"),
        html.Div(
            [
                html.Div(
                    "By signing you state",
                    className="small text-uppercase fw-semibold text-body-secondary radmon-tile-label",
                ),
                html.Blockquote(id=f"{prefix}-meaning", className="radmon-meaning mb-0"),
            ],
            className="mb-3",
        ),
        html.Div(id=f"{prefix}-signer", className="small text-body-secondary mb-2"),
        dbc.Label("Your password", html_for=f"{prefix}-password"),
    ]


def stat_tile(label: str, value: Any, *, hint: str = "", id: str) -> Component:
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(label, className="text-body-secondary small text-uppercase fw-semibold radmon-tile-label"),
                html.Div(value, className="fs-3 fw-semibold", id=f"{id}-value"),
                html.Div(hint, className="small text-body-secondary") if hint else None,
            ]
        ),
        className="h-100 shadow-sm",
        id=id,
    )


def fmt_time(moment: datetime | None, *, seconds: bool = False) -> str:
    """Every time on the dashboard is shown in UTC and says so."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


DISPLAY_DIGITS = 4  # significant digits of a number shown to a reader (stored values keep full precision)


def display_number(value: Any) -> str:
    """A number as a reader sees it: 0.7857142857142857 -> 0.7857, 1234567.0 -> 1,234,567; other values as text."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10**DISPLAY_DIGITS else f"{value:.{DISPLAY_DIGITS}g}"
    return str(value)


def rounded(value: Any) -> Any:
    """The same structure with every float rounded to DISPLAY_DIGITS significant digits (for JSON shown to a reader)."""
    if isinstance(value, float):
        return float(f"{value:.{DISPLAY_DIGITS}g}")
    if isinstance(value, Mapping):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


def display_json(value: Any) -> str:
    """Pretty JSON for a reader: floats rounded, keys sorted, one key per line."""
    return json.dumps(rounded(value), indent=1, sort_keys=True, ensure_ascii=False)


def short_hash(value: str, length: int = 12) -> Component:
    return html.Code(value[:length] + "…", title=value, className="radmon-hash")


def target_text(metric: str, value: float) -> str:
    """'Sensitivity ≥ 0.90' (or ≤ for metrics where lower is better)."""
    sign = "≤" if TARGET_METRICS.get(metric) == "max" else "≥"
    return f"{metric_label(metric)} {sign} {value:.2f}"


def target_badges(targets: Mapping[str, float]) -> Component:
    if not targets:
        return html.Span("none declared", className="text-body-secondary small")
    return html.Div(
        [
            dbc.Badge(target_text(m, v), color="light", text_color="dark", className="border me-1 mb-1 fw-normal")
            for m, v in targets.items()
        ]
    )


def no_checks_badge(*, id: str) -> Component:
    """Monitoring status before the first check run: explicitly unknown, never 'ok'."""
    return dbc.Badge(
        "No checks yet",
        color="light",
        text_color="secondary",
        className="border",
        id=id,
        title=("Drift, performance and subgroup status appear after the first scheduled check run."),
    )


def chain_status(check: ChainCheck) -> Component:
    """The audit chain's verification: intact through which event, or the first broken link and
    why; then how that was established and when the whole chain was last rehashed."""
    when = f"{check.verified_at:%Y-%m-%d %H:%M:%S} UTC by {check.verified_by}"
    if check.checked == 0:
        how = f"No events appended since the last verification ({when})."
    elif check.scope == "full":
        how = f"Whole chain rehashed {when}: {check.checked:,} events from the first one."
    else:
        events = f"{check.checked:,} new event" + ("s" if check.checked != 1 else "")
        how = f"Rehashed {when}: {events} from #{check.from_seq}, continuing from the verified head."
    full = (
        f"Whole chain last rehashed {check.last_full_at:%Y-%m-%d %H:%M:%S} UTC by {check.last_full_by}"
        f" ({'intact' if check.last_full_ok else 'broken'})."
        if check.last_full_at
        else "The whole chain has not been rehashed yet."
    )
    notes = html.Div([html.Div(how), html.Div(full)], className="small mt-1")
    if check.ok:
        return dbc.Alert(
            [
                html.Span("Chain intact", className="fw-semibold"),
                f": events #1 to #{check.through_seq:,} verified; head hash ",
                short_hash(check.head_hash, 16),
                notes,
            ],
            color="success",
            className="mb-2",
            id="audit-chain-ok",
        )
    return dbc.Alert(
        [
            html.Span(f"Chain broken at event #{check.first_broken_seq}", className="fw-semibold"),
            f": {check.problem}. Events before it verified: {(check.first_broken_seq or 1) - 1:,}.",
            notes,
        ],
        color="danger",
        className="mb-2",
        id="audit-chain-broken",
    )


def model_picker(page: str, choices: list[tuple[str, str]], selected: str) -> tuple[Component, Component]:
    """A page's model select (`<page>-model-select`) and the location it navigates with
    (`<page>-location`); register_model_picker wires the two."""
    picker = dbc.Select(
        id=f"{page}-model-select",
        options=[{"label": f"{display} ({name})", "value": name} for name, display in choices],
        value=selected,
        style={"minWidth": "20rem"},
    )
    return picker, dcc.Location(id=f"{page}-location", refresh="callback-nav")


def register_model_picker(app: Dash, page: str, href: Callable[[str], str]) -> None:
    """Choosing a model in model_picker opens the page for it (a signed-in user only)."""

    @app.callback(Output(f"{page}-location", "href"), Input(f"{page}-model-select", "value"), prevent_initial_call=True)
    def choose_model(model_name: str | None) -> str:
        auth.current_actor()
        if not model_name:
            raise PreventUpdate
        return href(model_name)
