"""Reports: a model's periodic surveillance reports (decision 0604). Everyone previews and downloads
them; qa and admin generate a period's draft and correct a signed report by a new revision; the QA
lead signs "reviewed" and, when the policy asks, an approver signs "approved", each in an
electronic-signature dialog (password, printed name, UTC time, meaning)."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Response

from dashboard import auth, data
from dashboard.components.widgets import (
    card,
    empty_state,
    error_alert,
    fmt_time,
    form_modal,
    guarded,
    model_picker,
    page_header,
    register_model_picker,
    short_hash,
    signature_fields,
)
from dashboard.data import reports as reports_data
from monitor.auth.actors import Actor
from monitor.db import utcnow
from monitor.errors import Forbidden, MonitorError, NotFound
from monitor.reports.jobs import last_month
from monitor.reports.router import PREVIEW_HEADERS, pdf_headers
from monitor.reports.schemas import ReportOut
from monitor.reports.service import GENERATE_ROLES, SIGN_ROLES

dash.register_page(__name__, path="/reports", name="Reports", title="Reports · radmon", order=7)

STATUS_LABELS = {
    "draft": ("draft · awaits review", "warning"),
    "reviewed": ("reviewed · awaits approval", "info"),
    "signed": ("signed", "success"),
}
MAX_ID = 2**31 - 1


def reports_href(model_name: str) -> str:
    return dash.get_relative_path("/reports") + "?" + urlencode({"model": model_name})


def file_href(report_id: int, kind: str) -> str:
    return dash.get_relative_path(f"/reports/{report_id}/{kind}")


@guarded("reports")
def layout(model: str | None = None, **_query: Any) -> Component:
    actor = auth.current_actor()
    choices = data.model_choices(actor=actor)
    if not choices:
        return html.Div(
            [
                page_header("Surveillance reports"),
                empty_state(
                    "No models registered yet",
                    "Reports appear here once a model is registered and monitored.",
                    id="reports-empty",
                ),
            ]
        )
    selected = model or choices[0][0]
    picker, nav = model_picker("reports", choices, selected)
    settings = auth.settings()
    header = page_header(
        "Surveillance reports",
        "the committee's signed monthly record of each model, as PDF",
        actions=picker,
    )
    sections: list[Any] = [
        nav,
        dcc.Store(id="reports-model-store", data=selected),
        header,
        _who_does_what(settings.report_approval_required),
        html.Div(id="reports-flash"),
    ]
    if actor.role in GENERATE_ROLES:
        sections.append(_generate_card(settings.facility_timezone))
    sections.append(html.Div(_body(actor, selected), id="reports-body"))
    if actor.role in SIGN_ROLES["reviewed"] | SIGN_ROLES["approved"]:
        sections += [_sign_modal(), dcc.Store(id="reports-sign-store")]
    if actor.role in GENERATE_ROLES:
        sections += [_revise_modal(), dcc.Store(id="reports-revise-store")]
    return html.Div(sections)


def _who_does_what(approval_required: bool) -> Component:
    second = (
        " Then an approver signs it (meaning “approved”): the policy requires a second signature."
        if approval_required
        else ""
    )
    return html.P(
        "Last month's report of each model is drafted on the 1st. qa and admin generate a period's draft "
        "(generating it again replaces the draft); the QA lead reviews it and signs (meaning “reviewed”)."
        + second
        + " A signed report is immutable: a correction is a new revision, signed again. Everyone may preview "
        "and download.",
        className="small text-body-secondary",
        id="reports-who",
    )


def _generate_card(timezone: str) -> Component:
    start, end = default_period(timezone)
    form = dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("First day", html_for="reports-from"),
                    dbc.Input(id="reports-from", type="date", value=start.isoformat()),
                ],
                md=3,
            ),
            dbc.Col(
                [
                    dbc.Label("Last day (inclusive)", html_for="reports-to"),
                    dbc.Input(id="reports-to", type="date", value=end.isoformat()),
                ],
                md=3,
            ),
            dbc.Col(
                dbc.Button("Generate draft", id="reports-generate-button", color="primary", className="w-100"),
                md=3,
                className="d-flex align-items-end",
            ),
        ],
        className="g-3",
    )
    body = [
        html.P(
            "From the stored data only; the same data always gives the same PDF (its SHA-256 shows it). "
            "Days are UTC days; the default is last month.",
            className="small text-body-secondary",
        ),
        form,
        html.Div(id="reports-generate-feedback", className="mt-3"),
    ]
    return card("Generate a report", body, id="reports-generate")


def _body(actor: Actor, model_name: str) -> list[Component]:
    listed = reports_data.reports(actor=actor, model_name=model_name, settings=auth.settings())
    if not listed:
        body: Component = empty_state(
            "No reports yet",
            "The scheduler drafts last month's report on the 1st; qa can generate any period above.",
            id="reports-none",
        )
    else:
        body = _table(actor, listed)
    return [card("Reports", body, id="reports-list", subtitle="newest period first; every revision kept")]


def _status(report: ReportOut) -> Component:
    label, color = STATUS_LABELS.get(report.status, (report.status, "secondary"))
    return dbc.Badge(label, color=color, className="radmon-status-badge", id=f"reports-{report.id}-status")


def _signatures(report: ReportOut) -> Component:
    if not report.signatures:
        return html.Span("none yet", className="small text-body-secondary")
    return html.Ul(
        [
            html.Li(
                [
                    html.Span(s.printed_name, className="fw-semibold"),
                    html.Span(f" ({s.username})", className="text-body-secondary"),
                    html.Div(f"{s.meaning} · {fmt_time(s.signed_at, seconds=True)}", className="text-body-secondary"),
                ],
                className="radmon-signature",
                title=s.manifestation,
            )
            for s in report.signatures
        ],
        className="list-unstyled small mb-0",
        id=f"reports-{report.id}-signatures",
    )


def _revision(report: ReportOut) -> Component:
    notes: list[Any] = [html.Span(str(report.revision), className="fw-semibold")]
    if report.supersedes_revision:
        notes.append(html.Div(f"corrects rev. {report.supersedes_revision}", className="small text-body-secondary"))
    if report.superseded_by_id:
        notes.append(html.Div("corrected later", className="small text-body-secondary"))
    return html.Div(notes)


def _actions(actor: Actor, report: ReportOut) -> Component:
    buttons: list[Component] = [
        html.A(
            "Preview",
            href=file_href(report.id, "preview"),
            target="_blank",
            rel="noopener noreferrer",
            className="btn btn-sm btn-outline-secondary",
            id=f"reports-preview-{report.id}",
        ),
        html.A(
            "Download PDF",
            href=file_href(report.id, "pdf"),
            className="btn btn-sm btn-outline-primary",
            id=f"reports-download-{report.id}",
        ),
    ]
    signed_already = any(s.username == actor.username for s in report.signatures)
    if report.awaiting and actor.role in SIGN_ROLES[report.awaiting] and not signed_already:
        buttons.append(
            dbc.Button(
                "Sign…",
                id={"type": "reports-sign-open", "report": report.id},
                color="success",
                size="sm",
            )
        )
    if report.status == "signed" and not report.superseded_by_id and actor.role in GENERATE_ROLES:
        buttons.append(
            dbc.Button(
                "Correct…",
                id={"type": "reports-revise-open", "report": report.id},
                color="secondary",
                outline=True,
                size="sm",
            )
        )
    return html.Div(buttons, className="d-flex flex-wrap gap-1")


def _table(actor: Actor, listed: list[ReportOut]) -> Component:
    head = html.Thead(
        html.Tr([html.Th(c) for c in ("Period", "Rev.", "Status", "Pages", "PDF SHA-256", "Signatures", "")])
    )
    rows = [
        html.Tr(
            [
                html.Td(
                    [
                        html.Div(
                            [
                                html.Span(r.period_start.isoformat(), className="text-nowrap"),
                                " to ",
                                html.Span(r.period_end.isoformat(), className="text-nowrap"),
                            ],
                            className="fw-medium",
                        ),
                        html.Div(
                            f"generated {fmt_time(r.generated_at)} by {r.generated_by}",
                            className="small text-body-secondary",
                        ),
                    ]
                ),
                html.Td(_revision(r)),
                html.Td(_status(r)),
                html.Td(f"{r.pages:,}"),
                html.Td(short_hash(r.sha256, 12)),
                html.Td(_signatures(r)),
                html.Td(_actions(actor, r)),
            ],
            id=f"reports-row-{r.id}",
        )
        for r in listed
    ]
    return dbc.Table([head, html.Tbody(rows)], hover=True, size="sm", className="radmon-table mb-0", id="reports-table")


def _sign_modal() -> Component:
    body = [
        *signature_fields("reports-sign"),
        dbc.Input(id="reports-sign-password", type="password", autocomplete="current-password"),
        html.Div(id="reports-sign-feedback", className="mt-3"),
    ]
    return form_modal(
        "reports-sign", "Electronic signature", body, submit="Sign", submit_color="success", retitled=True
    )


def _revise_modal() -> Component:
    body = [
        html.P(
            "The signed report stays as it is. The correction is a new revision of the same period, drafted from "
            "the stored data now, that names the revision it corrects; it must be signed again.",
            className="text-body-secondary",
            id="reports-revise-intro",
        ),
        dbc.Label("What the correction corrects (printed in the audit trail)", html_for="reports-revise-reason"),
        dbc.Textarea(id="reports-revise-reason", rows=3, maxLength=4000),
        html.Div(id="reports-revise-feedback", className="mt-3"),
    ]
    return form_modal("reports-revise", "Correct a signed report", body, submit="Draft the correction", retitled=True)


def meaning_statement(report: ReportOut, meaning: str) -> str:
    """What the signer states: the meaning and exactly which report (by its PDF hash)."""
    verb = "reviewed" if meaning == "reviewed" else "approve"
    what = (
        f"the surveillance report of {report.model} for {report.period_start.isoformat()} to "
        f"{report.period_end.isoformat()}, revision {report.revision} (PDF SHA-256 {report.sha256})"
    )
    return f"I have reviewed {what}" if verb == "reviewed" else f"I approve {what}"


def signing_content(report: ReportOut) -> Component:
    rows = [
        ("Report", f"#{report.id} · {report.model_display_name} ({report.model})"),
        ("Period", f"{report.period_start.isoformat()} to {report.period_end.isoformat()}"),
        (
            "Revision",
            str(report.revision)
            + (f", corrects revision {report.supersedes_revision}" if report.supersedes_revision else ""),
        ),
        ("Pages", f"{report.pages:,}"),
        ("PDF SHA-256", html.Code(report.sha256, className="radmon-hash text-break")),
        ("Generated", f"{fmt_time(report.generated_at)} by {report.generated_by}"),
    ]
    rows += [("Signed", s.manifestation) for s in report.signatures]
    return dbc.Table(
        html.Tbody([html.Tr([html.Th(label, className="text-nowrap"), html.Td(value)]) for label, value in rows]),
        size="sm",
        className="radmon-sign-content mb-0",
        id="reports-sign-content-table",
    )


def _refusal(exc: MonitorError, id: str) -> Component:
    return dbc.Alert(
        [html.Div("Not done", className="fw-semibold"), html.Div(exc.message)],
        color="warning" if exc.code == "locked" else "danger",
        id=id,
        className="mb-0",
    )


def _report_id(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"no surveillance report {value!r}") from None
    if not 1 <= number <= MAX_ID:
        raise NotFound(f"no surveillance report #{number}")
    return number


def pdf_file(report_id: int) -> Response:
    """GET /dashboard/reports/<id>/pdf: the PDF as stored, for every reader role."""
    found = reports_data.report_pdf(actor=auth.current_actor(), report_id=_report_id(report_id))
    return Response(found.content, mimetype="application/pdf", headers=pdf_headers(found.name, found.sha256))


def preview_file(report_id: int) -> Response:
    """GET /dashboard/reports/<id>/preview: the HTML, sandboxed like the API's preview."""
    page = reports_data.report_html(actor=auth.current_actor(), report_id=_report_id(report_id))
    return Response(page, mimetype="text/html", headers=PREVIEW_HEADERS)


def _require_role(roles: frozenset[str], what: str) -> Actor:
    """Action callbacks check first: hiding a button is no protection against a forged request."""
    actor = auth.current_actor()
    if actor.role not in roles:
        raise Forbidden(f"role '{actor.role}' may not {what}", details={"user": actor.username})
    return actor


def register_callbacks(app: Dash) -> None:
    app.server.add_url_rule("/reports/<int:report_id>/pdf", "radmon_report_pdf", pdf_file)
    app.server.add_url_rule("/reports/<int:report_id>/preview", "radmon_report_preview", preview_file)
    register_model_picker(app, "reports", reports_href)

    @app.callback(
        Output("reports-generate-feedback", "children"),
        Output("reports-body", "children", allow_duplicate=True),
        Input("reports-generate-button", "n_clicks"),
        State("reports-model-store", "data"),
        State("reports-from", "value"),
        State("reports-to", "value"),
        prevent_initial_call=True,
    )
    def generate(_clicks: int | None, model_name: str, first: str | None, last: str | None) -> tuple[Any, Any]:
        actor = _require_role(GENERATE_ROLES, "generate surveillance reports")
        if not first or not last:
            return dbc.Alert("Give the first and the last day.", color="warning", className="mb-0"), dash.no_update
        try:
            made = reports_data.generate_report(
                actor=actor, model_name=model_name, period_start=first, period_end=last, settings=auth.settings()
            )
        except Forbidden:
            raise
        except MonitorError as exc:
            return error_alert(exc, id="reports-generate-error"), _body(actor, model_name)
        notice = dbc.Alert(
            [
                (
                    f"Draft #{made.id} of {made.period_start.isoformat()} to {made.period_end.isoformat()} "
                    f"(revision {made.revision}, {made.pages} pages) is ready for review; SHA-256 "
                ),
                html.Code(made.sha256, className="text-break"),
            ],
            color="info",
            dismissable=True,
            id="reports-generated",
        )
        return notice, _body(actor, model_name)

    _register_signature_callbacks(app)
    _register_revision_callbacks(app)


def _register_signature_callbacks(app: Dash) -> None:
    signers = SIGN_ROLES["reviewed"] | SIGN_ROLES["approved"]

    @app.callback(
        Output("reports-sign-modal", "is_open"),
        Output("reports-sign-title", "children"),
        Output("reports-sign-content", "children"),
        Output("reports-sign-meaning", "children"),
        Output("reports-sign-signer", "children"),
        Output("reports-sign-store", "data"),
        Output("reports-sign-password", "value"),
        Output("reports-sign-feedback", "children"),
        Input({"type": "reports-sign-open", "report": ALL}, "n_clicks"),
        Input("reports-sign-cancel", "n_clicks"),
        prevent_initial_call=True,
    )
    def open_signature(_opens: list[int | None], _cancel: int | None) -> tuple[Any, ...]:
        actor = _require_role(signers, "sign surveillance reports")
        trigger = ctx.triggered_id
        if trigger == "reports-sign-cancel":
            no = dash.no_update
            return False, no, no, no, no, None, "", None
        # Buttons re-rendered with the page body fire this with n_clicks None: not a click.
        if not isinstance(trigger, dict) or not ctx.triggered or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        report = reports_data.report(actor=actor, report_id=_report_id(trigger.get("report")), settings=auth.settings())
        meaning = report.awaiting or "reviewed"
        return (
            True,
            f"Electronic signature: {meaning} · report #{report.id}",
            signing_content(report),
            meaning_statement(report, meaning),
            [
                "Signing as ",
                html.Span(actor.printed_name or actor.username, className="fw-semibold"),
                f" ({actor.username}, {actor.role}). Re-enter your password: it confirms that you, and no one else, sign.",
            ],
            {"report_id": report.id, "meaning": meaning},
            "",
            None,
        )

    @app.callback(
        Output("reports-sign-feedback", "children", allow_duplicate=True),
        Output("reports-sign-password", "value", allow_duplicate=True),
        Output("reports-sign-modal", "is_open", allow_duplicate=True),
        Output("reports-body", "children", allow_duplicate=True),
        Output("reports-flash", "children", allow_duplicate=True),
        Input("reports-sign-submit", "n_clicks"),
        Input("reports-sign-password", "n_submit"),
        State("reports-sign-store", "data"),
        State("reports-sign-password", "value"),
        State("reports-model-store", "data"),
        prevent_initial_call=True,
    )
    def sign(
        _clicks: int | None, _enter: int | None, target: dict[str, Any] | None, password: str | None, model_name: str
    ) -> tuple[Any, ...]:
        actor = _require_role(signers, "sign surveillance reports")
        no = dash.no_update
        if not target or "report_id" not in target:
            raise PreventUpdate
        if not password:
            # An empty field is a slip, not a failed signature: it must not count towards the lockout.
            alert = dbc.Alert(
                "Enter your password to sign.", color="warning", className="mb-0", id="reports-sign-error"
            )
            return alert, "", no, no, no
        meaning = "approved" if target.get("meaning") == "approved" else "reviewed"
        try:
            signed = reports_data.sign_report(
                actor=actor,
                report_id=_report_id(target["report_id"]),
                meaning=meaning,
                password=password,
                settings=auth.settings(),
            )
        except MonitorError as exc:
            return _refusal(exc, "reports-sign-error"), "", no, _body(actor, model_name), no
        done = (
            f"Report #{signed.id} is signed ({meaning}); the PDF now carries your signature, SHA-256 "
            if signed.status == "signed"
            else f"Your review of report #{signed.id} is signed; it awaits an approver's signature. SHA-256 "
        )
        notice = dbc.Alert(
            [done, html.Code(signed.sha256, className="text-break")],
            color="success",
            dismissable=True,
            id="reports-signed-notice",
        )
        return None, "", False, _body(actor, model_name), notice


def _register_revision_callbacks(app: Dash) -> None:
    @app.callback(
        Output("reports-revise-modal", "is_open"),
        Output("reports-revise-store", "data"),
        Output("reports-revise-reason", "value"),
        Output("reports-revise-feedback", "children"),
        Input({"type": "reports-revise-open", "report": ALL}, "n_clicks"),
        Input("reports-revise-cancel", "n_clicks"),
        prevent_initial_call=True,
    )
    def open_revision(_opens: list[int | None], _cancel: int | None) -> tuple[Any, ...]:
        _require_role(GENERATE_ROLES, "correct surveillance reports")
        trigger = ctx.triggered_id
        if trigger == "reports-revise-cancel":
            return False, None, "", None
        if not isinstance(trigger, dict) or not ctx.triggered or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        return True, {"report_id": _report_id(trigger.get("report"))}, "", None

    @app.callback(
        Output("reports-revise-feedback", "children", allow_duplicate=True),
        Output("reports-revise-modal", "is_open", allow_duplicate=True),
        Output("reports-body", "children", allow_duplicate=True),
        Output("reports-flash", "children", allow_duplicate=True),
        Input("reports-revise-submit", "n_clicks"),
        State("reports-revise-store", "data"),
        State("reports-revise-reason", "value"),
        State("reports-model-store", "data"),
        prevent_initial_call=True,
    )
    def revise(
        _clicks: int | None, target: dict[str, Any] | None, reason: str | None, model_name: str
    ) -> tuple[Any, ...]:
        actor = _require_role(GENERATE_ROLES, "correct surveillance reports")
        no = dash.no_update
        if not target or "report_id" not in target:
            raise PreventUpdate
        if not (reason or "").strip():
            return dbc.Alert("Say what the correction corrects.", color="warning", className="mb-0"), no, no, no
        try:
            made = reports_data.revise_report(
                actor=actor,
                report_id=_report_id(target["report_id"]),
                reason=(reason or "").strip(),
                settings=auth.settings(),
            )
        except MonitorError as exc:
            return _refusal(exc, "reports-revise-error"), no, no, no
        notice = dbc.Alert(
            f"Revision {made.revision} (draft #{made.id}) corrects revision {made.supersedes_revision}; it awaits review.",
            color="info",
            dismissable=True,
            id="reports-revised-notice",
        )
        return None, False, _body(actor, model_name), notice


def default_period(timezone: str) -> tuple[date, date]:
    """Last month at the facility: what the generate form offers first."""
    return last_month(utcnow(), timezone)
