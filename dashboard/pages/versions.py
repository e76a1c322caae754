"""Versions: a model's immutable versions (targets, threshold, artifact hash), its deployment
timeline, and its change requests (rollback, promotion) signed in an electronic-signature dialog."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from dashboard import auth, data
from dashboard.components.figures import deployment_timeline
from dashboard.components.signatures import (
    RequestOpening,
    change_request_card,
    meaning_statement,
    signing_content,
)
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
    target_badges,
)
from monitor.auth.actors import Actor, Permission
from monitor.errors import Forbidden, MonitorError, NotFound
from monitor.registry.schemas import ChangeRequestOut, DeploymentOut, VersionOut

dash.register_page(__name__, path="/versions", name="Versions", title="Versions · radmon", order=1)

GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}


def versions_href(model_name: str) -> str:
    return dash.get_relative_path("/versions") + "?" + urlencode({"model": model_name})


@guarded("versions")
def layout(model: str | None = None, request: str | None = None, alert: str | None = None, **_query: Any) -> Component:
    """`request=rollback|promotion` (and `alert=N`) opens the change-request form, as the alert page links it."""
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
    picker, nav = model_picker("versions", choices, selected)
    try:
        detail = data.model_detail(actor=actor, model_name=selected)
    except NotFound as exc:
        return html.Div(
            [nav, page_header("Versions & deployments", actions=picker), error_alert(exc, id="versions-error")]
        )
    header = page_header(
        "Versions & deployments",
        [html.Span(detail.model.display_name, className="fw-semibold"), f" · {detail.model.name}"],
        actions=picker,
    )
    opening = RequestOpening(kind=request if request in KINDS else None, alert_id=_positive_int(alert))
    sections = [
        nav,
        dcc.Store(id="versions-model-store", data=detail.model.name),
        dcc.Location(id="versions-reload", refresh=True),
        header,
        _pending_elsewhere(actor, detail.model.name),
        html.Div(id="versions-flash"),
        html.Div(_body(actor, detail, opening=opening), id="versions-body"),
    ]
    if actor.can(Permission.CHANGES_DECIDE):
        sections += [_sign_modal(), dcc.Store(id="versions-sign-store")]
    return html.Div(sections)


KINDS = ("rollback", "promotion")


def _positive_int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number >= 1 else None


def _body(actor: Actor, detail: data.ModelDetail, *, opening: RequestOpening | None = None) -> list[Component]:
    """Everything that changes when a version goes live; re-rendered after a request or a signature."""
    sections = [
        _model_card(detail),
        card("Versions", _versions_table(detail), id="versions-versions", subtitle="immutable once registered"),
    ]
    if not detail.deployments and detail.versions and actor.can(Permission.DEPLOY_FIRST):
        sections.append(_first_activation_card(detail))
    sections.append(_deployments_card(detail))
    # Below the timeline they change.
    sections.append(_change_requests_card(actor, detail, opening or RequestOpening()))
    return sections


def _refreshed_body(actor: Actor, model_name: str) -> list[Component]:
    return _body(actor, data.model_detail(actor=actor, model_name=model_name))


def _pending_elsewhere(actor: Actor, model_name: str) -> Component | None:
    """Approvers work from here: say which other models have requests waiting for signatures."""
    waiting = [r for r in data.change_requests(actor=actor, status="pending") if r.model != model_name]
    if not waiting:
        return None
    links: list[Any] = []
    for number, change_request in enumerate(waiting):
        links += [
            ", " if number else "",
            dcc.Link(
                f"{change_request.model} #{change_request.id} ({change_request.kind} to {change_request.target_version})",
                href=versions_href(change_request.model),
            ),
        ]
    return dbc.Alert(
        [html.Span("Awaiting signatures on other models: ", className="fw-semibold"), *links],
        color="warning",
        className="py-2 small",
        id="versions-pending-elsewhere",
    )


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
            dbc.Col(
                [html.Div(label, className="small text-body-secondary"), html.Div(value, className="fw-medium")],
                md=4,
                className="mb-3",
            )
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
        return empty_state(
            "No versions yet",
            "An administrator registers versions with their artifact hash and targets.",
            id="versions-none",
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th(c)
                for c in ("Version", "Status", "Performance targets", "Decision threshold", "Artifact", "Registered")
            ]
        )
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
                html.Td(
                    [
                        html.Div(fmt_time(v.created_at)),
                        html.Div(f"by {v.created_by}", className="small text-body-secondary"),
                    ]
                ),
            ],
            id=f"versions-row-{v.version}",
        )
        for v in reversed(detail.versions)
    ]
    return dbc.Table(
        [head, html.Tbody(rows)], hover=True, responsive=True, className="radmon-table mb-0", id="versions-table"
    )


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
    return dbc.Table(
        [head, html.Tbody(rows)],
        size="sm",
        responsive=True,
        className="radmon-table mt-3 mb-0",
        id="versions-deployments-table",
    )


def _first_activation_card(detail: data.ModelDetail) -> Component:
    versions = [v.version for v in reversed(detail.versions)]
    form = dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("Version", html_for="versions-activate-version"),
                    dbc.Select(id="versions-activate-version", options=versions, value=versions[0]),
                ],
                md=3,
            ),
            dbc.Col(
                [
                    dbc.Label("Reason (recorded in the audit trail)", html_for="versions-activate-reason"),
                    dbc.Input(
                        id="versions-activate-reason", placeholder="e.g. go-live after local validation", maxLength=2000
                    ),
                ],
                md=6,
            ),
            dbc.Col(
                dbc.Button("Activate", id="versions-activate-button", color="primary", className="w-100"),
                md=3,
                className="d-flex align-items-end",
            ),
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


def _change_requests_card(actor: Actor, detail: data.ModelDetail, opening: RequestOpening) -> Component:
    model = detail.model
    if not model.active_version:
        body: Any = empty_state(
            "No change requests",
            "Rollbacks and promotions are requested once a version is live.",
            id="versions-no-change-requests",
        )
        return card("Change requests", body, id="versions-change-requests")
    requests = data.change_requests(actor=actor, model_name=model.name)
    required = data.policy(actor=actor, model_name=model.name).approvals_required
    pending = [r for r in requests if r.status == "pending"]
    intro = html.Div(
        [
            html.Div(
                f"Every later change of the live version needs {required} signed "
                f"approval{'s' if required != 1 else ''} from approvers other than the requester; "
                "one rejection rejects. Each decision is an electronic signature: password, printed name, UTC time, meaning. "
                "Who does what: qa and admin file a rollback or promotion; approvers (and admin) sign it.",
                className="small text-body-secondary",
                id="versions-cr-who",
            ),
            _request_button(actor, pending, _version_choices(detail)),
        ],
        className="d-flex justify-content-between align-items-start gap-3 mb-3",
    )
    can_decide = actor.can(Permission.CHANGES_DECIDE)
    ordered = pending + [r for r in requests if r.status != "pending"]
    listing: Any = (
        html.Div([change_request_card(r, actor=actor, can_decide=can_decide) for r in ordered], id="versions-cr-list")
        if ordered
        else empty_state(
            "No change requests yet",
            "Rollbacks and promotions of this model appear here with their signatures.",
            id="versions-cr-none",
        )
    )
    body = [intro, listing]
    if actor.can(Permission.CHANGES_REQUEST):
        body.append(_request_modal(detail, opening if not pending else RequestOpening()))
    return card(
        "Change requests", body, id="versions-change-requests", subtitle="rollback and promotion, two-person signed"
    )


def _request_button(actor: Actor, pending: list[ChangeRequestOut], choices: dict[str, list[str]]) -> Component | None:
    if not actor.can(Permission.CHANGES_REQUEST):
        return None
    blocked = (
        f"#{pending[0].id} is pending"
        if pending
        else (None if any(choices.values()) else "no other version registered")
    )
    button = dbc.Button(
        "Request a change", id="versions-request-open", color="primary", disabled=bool(blocked), className="text-nowrap"
    )
    if not blocked:
        return button
    return html.Div(
        [button, html.Div(blocked, className="small text-body-secondary text-end mt-1", id="versions-request-blocked")]
    )


def _version_choices(detail: data.ModelDetail) -> dict[str, list[str]]:
    """Rollback targets are older than the live version, promotion targets newer (registration order)."""
    names = [v.version for v in detail.versions]
    live = names.index(detail.model.active_version) if detail.model.active_version in names else len(names)
    return {"rollback": list(reversed(names[:live])), "promotion": names[live + 1 :]}


def _request_modal(detail: data.ModelDetail, opening: RequestOpening) -> Component:
    choices = _version_choices(detail)
    kind = opening.kind or ("rollback" if choices["rollback"] else "promotion")
    form = [
        html.P(
            [
                f"{detail.model.display_name} runs version ",
                html.Span(detail.model.active_version, className="font-monospace fw-semibold"),
                " now. The request takes effect only when it has its signed approvals.",
            ],
            className="text-body-secondary",
        ),
        dbc.Label("Kind", html_for="versions-request-kind"),
        dbc.RadioItems(
            id="versions-request-kind",
            options=[
                {"label": "Rollback (to an older version)", "value": "rollback"},
                {"label": "Promotion (to a newer version)", "value": "promotion"},
            ],
            value=kind,
            inline=True,
            className="mb-3",
        ),
        dbc.Label("Target version", html_for="versions-request-target"),
        dbc.Select(
            id="versions-request-target", options=choices[kind], value=(choices[kind] or [None])[0], className="mb-3"
        ),
        dbc.Label(
            "Reason (shown to the approvers and recorded in the audit trail)", html_for="versions-request-reason"
        ),
        dbc.Textarea(
            id="versions-request-reason",
            rows=3,
            maxLength=4000,
            placeholder="e.g. sensitivity at site north below target since the scanner upgrade",
            className="mb-3",
        ),
        dbc.Label("Alert that prompted it (optional)", html_for="versions-request-alert"),
        dbc.Input(
            id="versions-request-alert",
            type="number",
            min=1,
            step=1,
            value=opening.alert_id,
            placeholder="alert id",
            style={"maxWidth": "12rem"},
        ),
        dcc.Store(id="versions-request-choices", data=choices),
        html.Div(id="versions-request-feedback", className="mt-3"),
    ]
    return form_modal(
        "versions-request",
        "Request a change of the live version",
        form,
        submit="Submit request",
        is_open=opening.kind is not None,
    )


def _sign_modal() -> Component:
    body = [
        *signature_fields("versions-sign"),
        dbc.Input(id="versions-sign-password", type="password", autocomplete="current-password", className="mb-3"),
        dbc.Label("Comment (optional, recorded with the signature)", html_for="versions-sign-comment"),
        dbc.Textarea(id="versions-sign-comment", rows=2, maxLength=4000),
        html.Div(id="versions-sign-feedback", className="mt-3"),
    ]
    return form_modal(
        "versions-sign", "Electronic signature", body, submit="Sign", submit_color="success", retitled=True
    )


SIGN_ERROR_HEADINGS = {
    "locked": "Signing locked",
    "forbidden": "Not signed",
    "conflict": "Not signed",
    "invalid": "Not signed: check the form",
}


def sign_error(exc: MonitorError) -> Component:
    """Why nothing was signed, in the service's words (wrong password, lockout and until when, own request...)."""
    return dbc.Alert(
        [html.Div(SIGN_ERROR_HEADINGS.get(exc.code, "Not signed"), className="fw-semibold"), html.Div(exc.message)],
        color="warning" if exc.code == "locked" else "danger",
        id="versions-sign-error",
        className="mb-0",
    )


def approvers_needed(missing: int) -> str:
    """'1 more approver signs', '2 more approvers sign'."""
    return f"{missing} more approver signs" if missing == 1 else f"{missing} more approvers sign"


def signed_notice(change_request: ChangeRequestOut, decision: str) -> Component:
    if change_request.status == "executed":
        text = (
            f"Change request #{change_request.id} has its {change_request.approvals} approvals and is executed: "
            f"version {change_request.target_version} of {change_request.model} is live now."
        )
        color = "success"
    elif decision == "reject":
        text = f"You rejected change request #{change_request.id}; version {change_request.from_version} stays live."
        color = "secondary"
    else:
        missing = change_request.approvals_required - change_request.approvals
        text = (
            f"Your approval of change request #{change_request.id} is signed ({change_request.approvals} of "
            f"{change_request.approvals_required}); it executes when {approvers_needed(missing)}."
        )
        color = "info"
    return dbc.Alert(text, color=color, dismissable=True, id="versions-signed-notice")


def register_callbacks(app: Dash) -> None:
    register_model_picker(app, "versions", versions_href)

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

    _register_request_callbacks(app)
    _register_signature_callbacks(app)


def _register_request_callbacks(app: Dash) -> None:
    @app.callback(
        Output("versions-request-modal", "is_open"),
        Input("versions-request-open", "n_clicks"),
        Input("versions-request-cancel", "n_clicks"),
        prevent_initial_call=True,
    )
    def toggle_request(_open: int | None, _cancel: int | None) -> bool:
        auth.require(Permission.CHANGES_REQUEST)
        return ctx.triggered_id == "versions-request-open"

    @app.callback(
        Output("versions-request-target", "options"),
        Output("versions-request-target", "value"),
        Input("versions-request-kind", "value"),
        State("versions-request-choices", "data"),
        prevent_initial_call=True,
    )
    def targets_for_kind(kind: str, choices: dict[str, list[str]] | None) -> tuple[list[str], str | None]:
        auth.current_actor()
        options = (choices or {}).get(kind) or []
        return options, (options[0] if options else None)

    @app.callback(
        Output("versions-request-feedback", "children"),
        Output("versions-request-modal", "is_open", allow_duplicate=True),
        Output("versions-body", "children", allow_duplicate=True),
        Output("versions-flash", "children", allow_duplicate=True),
        Input("versions-request-submit", "n_clicks"),
        State("versions-model-store", "data"),
        State("versions-request-kind", "value"),
        State("versions-request-target", "value"),
        State("versions-request-reason", "value"),
        State("versions-request-alert", "value"),
        prevent_initial_call=True,
    )
    def submit_request(
        _clicks: int | None, model_name: str, kind: str, target: str | None, reason: str | None, alert_id: Any
    ) -> tuple[Any, ...]:
        actor = auth.require(Permission.CHANGES_REQUEST)  # refuse a forged request before anything else
        no = dash.no_update
        if not target:
            return dbc.Alert(f"There is no version to {kind} to.", color="warning", className="mb-0"), no, no, no
        try:
            filed = data.request_change(
                actor=actor,
                model_name=model_name,
                kind=kind,
                target_version=target,
                reason=reason or "",
                alert_id=_positive_int(alert_id) if alert_id not in (None, "") else None,
            )
        except MonitorError as exc:
            return error_alert(exc, id="versions-request-error"), no, no, no
        notice = dbc.Alert(
            f"Change request #{filed.id} ({filed.kind} to {filed.target_version}) is filed; it needs "
            f"{filed.approvals_required} signed approvals before it executes.",
            color="info",
            dismissable=True,
            id="versions-request-filed",
        )
        return None, False, _refreshed_body(actor, model_name), notice


def _register_signature_callbacks(app: Dash) -> None:
    @app.callback(
        Output("versions-sign-modal", "is_open"),
        Output("versions-sign-title", "children"),
        Output("versions-sign-content", "children"),
        Output("versions-sign-meaning", "children"),
        Output("versions-sign-signer", "children"),
        Output("versions-sign-submit", "children"),
        Output("versions-sign-submit", "color"),
        Output("versions-sign-store", "data"),
        Output("versions-sign-password", "value"),
        Output("versions-sign-comment", "value"),
        Output("versions-sign-feedback", "children"),
        Input({"type": "versions-sign-open", "cr": ALL, "decision": ALL}, "n_clicks"),
        Input("versions-sign-cancel", "n_clicks"),
        State("versions-model-store", "data"),
        prevent_initial_call=True,
    )
    def open_signature(_opens: list[int | None], _cancel: int | None, model_name: str) -> tuple[Any, ...]:
        actor = auth.require(Permission.CHANGES_DECIDE)
        trigger = ctx.triggered_id
        if trigger == "versions-sign-cancel":
            no = dash.no_update
            return False, no, no, no, no, no, no, None, "", "", None
        # Buttons re-rendered with the page body fire this with n_clicks None: not a click.
        if not isinstance(trigger, dict) or not ctx.triggered or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        decision = "reject" if trigger.get("decision") == "reject" else "approve"
        change_request = data.change_request(actor=actor, change_request_id=int(trigger["cr"]))
        versions = {v.version: v for v in data.model_detail(actor=actor, model_name=change_request.model).versions}
        verb = "Approve" if decision == "approve" else "Reject"
        return (
            True,
            f"Electronic signature: {verb.lower()} change request #{change_request.id}",
            signing_content(change_request, versions),
            meaning_statement(change_request, decision),
            [
                "Signing as ",
                html.Span(actor.printed_name or actor.username, className="fw-semibold"),
                f" ({actor.username}). Re-enter your password: it confirms that you, and no one else, sign.",
            ],
            f"Sign and {verb.lower()}",
            "success" if decision == "approve" else "danger",
            {"change_request_id": change_request.id, "decision": decision},
            "",
            "",
            None,
        )

    @app.callback(
        Output("versions-sign-feedback", "children", allow_duplicate=True),
        Output("versions-sign-password", "value", allow_duplicate=True),
        Output("versions-sign-modal", "is_open", allow_duplicate=True),
        Output("versions-body", "children", allow_duplicate=True),
        Output("versions-flash", "children", allow_duplicate=True),
        Input("versions-sign-submit", "n_clicks"),
        Input("versions-sign-password", "n_submit"),
        State("versions-sign-store", "data"),
        State("versions-sign-password", "value"),
        State("versions-sign-comment", "value"),
        State("versions-model-store", "data"),
        prevent_initial_call=True,
    )
    def sign(
        _clicks: int | None,
        _enter: int | None,
        target: dict[str, Any] | None,
        password: str | None,
        comment: str | None,
        model_name: str,
    ) -> tuple[Any, ...]:
        actor = auth.require(Permission.CHANGES_DECIDE)  # a forged callback from another role stops here
        no = dash.no_update
        if not target or "change_request_id" not in target:
            raise PreventUpdate
        if not password:
            # An empty field is a slip, not a failed signature: it must not count towards the lockout.
            return (
                dbc.Alert("Enter your password to sign.", color="warning", className="mb-0", id="versions-sign-error"),
                "",
                no,
                no,
                no,
            )
        decision = "reject" if target.get("decision") == "reject" else "approve"
        try:
            change_request = data.change_request(actor=actor, change_request_id=int(target["change_request_id"]))
            decided = data.decide_change_request(
                actor=actor,
                change_request_id=change_request.id,
                decision=decision,
                # The statement is rebuilt here from the stored request, so what is signed is what the dialog showed.
                meaning=meaning_statement(change_request, decision),
                password=password,
                comment=(comment or "").strip(),
                settings=auth.settings(),
            )
        except MonitorError as exc:
            return sign_error(exc), "", no, _refreshed_body(actor, model_name), no
        return None, "", False, _refreshed_body(actor, model_name), signed_notice(decided, decision)
