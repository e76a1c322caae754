"""Change requests and their electronic signatures as the dashboard shows them: the request
card with its signature manifestations, and what a signer sees before signing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import get_relative_path, html
from dash.development.base_component import Component

from dashboard.components.widgets import fmt_time, short_hash
from monitor.auth.actors import Actor
from monitor.registry.schemas import ChangeRequestOut, SignatureOut, VersionOut

STATUS_COLORS = {
    "pending": "warning",
    "approved": "info",
    "executed": "success",
    "rejected": "danger",
    "expired": "secondary",
}
DECISION_VERBS = {"approve": "approve", "reject": "reject"}


@dataclass(frozen=True)
class RequestOpening:
    """The change-request form opened from a link (the alert page's "Request rollback")."""

    kind: str | None = None
    alert_id: int | None = None


def meaning_statement(change_request: ChangeRequestOut, decision: str) -> str:
    """What the signer states by signing: the decision and exactly which change it is about."""
    return (
        f"I {DECISION_VERBS[decision]} this {change_request.kind} of {change_request.model} "
        f"from version {change_request.from_version} to version {change_request.target_version}"
    )


def status_badge(change_request: ChangeRequestOut) -> Component:
    return dbc.Badge(
        change_request.status,
        color=STATUS_COLORS.get(change_request.status, "secondary"),
        className="text-uppercase radmon-status-badge",
        id=f"versions-cr-{change_request.id}-status",
    )


def _title(change_request: ChangeRequestOut) -> Component:
    return html.Div(
        [
            html.Span(f"#{change_request.id}", className="font-monospace text-body-secondary me-2"),
            html.Span(change_request.kind.capitalize(), className="fw-semibold me-2"),
            html.Span(change_request.from_version, className="font-monospace"),
            html.Span("→", className="text-body-secondary mx-1"),
            html.Span(change_request.target_version, className="font-monospace fw-semibold me-2"),
            status_badge(change_request),
        ],
        className="d-flex align-items-center flex-wrap",
    )


def _progress(change_request: ChangeRequestOut) -> Component:
    approvals, required = change_request.approvals, change_request.approvals_required
    return html.Div(
        [
            html.Div(
                f"{approvals} of {required} approvals",
                className="small fw-medium",
                id=f"versions-cr-{change_request.id}-approvals",
            ),
            dbc.Progress(
                value=100 * min(approvals, required) / required,
                color="success" if approvals >= required else "warning",
                style={"height": "0.4rem", "width": "9rem"},
                className="mt-1",
            ),
        ]
    )


def _facts(change_request: ChangeRequestOut) -> list[tuple[str, Component | str]]:
    facts: list[tuple[str, Component | str]] = [
        ("Requested", f"{fmt_time(change_request.requested_at)} by {change_request.requested_by}"),
    ]
    if change_request.status == "pending":
        facts.append(("Expires", fmt_time(change_request.expires_at)))
    elif change_request.decided_at:
        facts.append(("Decided", fmt_time(change_request.decided_at)))
    if change_request.executed_at:
        facts.append(("Executed", f"{fmt_time(change_request.executed_at)}: {change_request.target_version} went live"))
    if change_request.alert_id:
        facts.append(
            (
                "Prompted by",
                html.A(
                    f"alert #{change_request.alert_id}",
                    href=get_relative_path("/alerts") + f"?id={change_request.alert_id}",
                ),
            )
        )
    facts.append(("Request hash", short_hash(change_request.request_hash, 16)))
    return facts


def signature_line(signature: SignatureOut) -> Component:
    """A signature's manifestation: printed name, UTC time and meaning, as 21 CFR 11.50 asks."""
    approved = signature.decision == "approve"
    parts: list[Component | str] = [
        dbc.Badge("approved" if approved else "rejected", color="success" if approved else "danger", className="me-2"),
        html.Span(signature.printed_name, className="fw-semibold"),
        html.Span(f" ({signature.username})", className="text-body-secondary"),
        html.Span(f" · {fmt_time(signature.signed_at, seconds=True)}", className="text-body-secondary"),
        html.Div(["Meaning: ", html.Q(signature.meaning)], className="small mt-1"),
    ]
    if signature.comment:
        parts.append(html.Div(["Comment: ", signature.comment], className="small text-body-secondary"))
    if not signature.bound:
        parts.append(
            dbc.Alert(
                "The request's content no longer matches what was signed.",
                color="danger",
                className="py-1 px-2 small mt-1 mb-0",
            )
        )
    return html.Li(parts, className="radmon-signature", title=signature.manifestation)


def change_request_card(change_request: ChangeRequestOut, *, actor: Actor, can_decide: bool) -> Component:
    """One request: what changes and why, progress towards the quorum, the signatures so far and,
    for approvers while it is pending, the buttons that open the signature dialog."""
    facts = html.Dl(
        [item for label, value in _facts(change_request) for item in (html.Dt(label), html.Dd(value))],
        className="radmon-facts small mb-0",
    )
    signatures = (
        html.Ul(
            [signature_line(s) for s in change_request.signatures],
            className="list-unstyled mb-0",
            id=f"versions-cr-{change_request.id}-signatures",
        )
        if change_request.signatures
        else html.Div("No signatures yet.", className="small text-body-secondary")
    )
    actions: Component | None = None
    signed = next((s for s in change_request.signatures if s.username == actor.username), None)
    if signed is not None and change_request.status == "pending":
        # One signature per approver: the buttons would only lead to a refusal.
        missing = change_request.approvals_required - change_request.approvals
        actions = html.Div(
            f"You signed this request ({signed.decision}); it waits for {missing} more approval{'s' if missing != 1 else ''} "
            "from other approvers.",
            className="small text-body-secondary",
            id=f"versions-cr-{change_request.id}-signed",
        )
    elif can_decide and change_request.status == "pending":
        actions = html.Div(
            [
                dbc.Button(
                    "Approve…",
                    id={"type": "versions-sign-open", "cr": change_request.id, "decision": "approve"},
                    color="success",
                    size="sm",
                ),
                dbc.Button(
                    "Reject…",
                    id={"type": "versions-sign-open", "cr": change_request.id, "decision": "reject"},
                    color="danger",
                    outline=True,
                    size="sm",
                ),
            ],
            className="d-flex gap-2",
        )
    mine = (
        html.Div("You filed this request.", className="small text-body-secondary")
        if change_request.requested_by == actor.username
        else None
    )
    return html.Div(
        [
            html.Div(
                [_title(change_request), _progress(change_request)],
                className="d-flex justify-content-between align-items-start flex-wrap gap-2 mb-2",
            ),
            html.Blockquote(change_request.reason, className="radmon-reason mb-3"),
            dbc.Row(
                [
                    dbc.Col(facts, lg=5),
                    dbc.Col(
                        [
                            html.Div(
                                "Signatures",
                                className="small text-uppercase fw-semibold text-body-secondary radmon-tile-label mb-1",
                            ),
                            signatures,
                        ],
                        lg=7,
                    ),
                ],
                className="g-3",
            ),
            html.Div([mine, actions], className="d-flex justify-content-between align-items-center mt-3")
            if (actions or mine)
            else None,
        ],
        className=f"radmon-change-request radmon-cr-{change_request.status}",
        id=f"versions-cr-{change_request.id}",
    )


def signing_content(change_request: ChangeRequestOut, versions: Mapping[str, VersionOut]) -> Component:
    """The request exactly as it will be signed: model, versions with their artifact hashes, reason."""

    def version_cell(version: str) -> Component:
        known = versions.get(version)
        return html.Div(
            [
                html.Span(version, className="font-monospace fw-semibold"),
                html.Div(["sha256 ", short_hash(known.artifact_sha256, 16)]) if known else None,
            ]
        )

    rows = [
        ("Change request", f"#{change_request.id} · {change_request.kind} of {change_request.model}"),
        ("From (live now)", version_cell(change_request.from_version)),
        ("To", version_cell(change_request.target_version)),
        ("Reason", change_request.reason),
        ("Requested", f"{fmt_time(change_request.requested_at)} by {change_request.requested_by}"),
        (
            "Approvals",
            f"{change_request.approvals} of {change_request.approvals_required}; expires {fmt_time(change_request.expires_at)}",
        ),
    ]
    if change_request.alert_id:
        rows.append(("Prompted by", f"alert #{change_request.alert_id}"))
    rows.append(("Request hash", short_hash(change_request.request_hash, 24)))
    return dbc.Table(
        html.Tbody([html.Tr([html.Th(label, className="text-nowrap"), html.Td(value)]) for label, value in rows]),
        size="sm",
        className="radmon-sign-content mb-0",
        id="versions-sign-content-table",
    )
