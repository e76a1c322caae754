"""Monitoring policy: what is checked for a model and against which thresholds; qa and admins
edit it as JSON, validated by the API's own schema, saved and audited by the checks service."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html
from dash.development.base_component import Component

from dashboard import auth, data
from dashboard.components.widgets import (
    card,
    empty_state,
    error_alert,
    fmt_time,
    guarded,
    model_picker,
    page_header,
    register_model_picker,
)
from monitor.auth.actors import Permission
from monitor.checks.catalog import KIND_SPECS
from monitor.checks.schemas import PolicyOut
from monitor.errors import MonitorError, NotFound

dash.register_page(__name__, path="/policy", name="Policy", title="Monitoring policy · radmon", order=3)

SEVERITY_COLORS = {"critical": "danger", "warning": "warning", "info": "info"}


def policy_href(model_name: str) -> str:
    return dash.get_relative_path("/policy") + "?" + urlencode({"model": model_name})


@guarded("policy")
def layout(model: str | None = None, **_query: Any) -> Component:
    actor = auth.current_actor()
    choices = data.model_choices(actor=actor)
    if not choices:
        return html.Div(
            [
                page_header("Monitoring policy"),
                empty_state(
                    "No models registered yet",
                    "A model's monitoring policy can be set once it is registered.",
                    id="policy-empty",
                ),
            ]
        )
    selected = model or choices[0][0]
    picker, nav = model_picker("policy", choices, selected)
    try:
        current = data.policy(actor=actor, model_name=selected)
    except NotFound as exc:
        return html.Div([nav, page_header("Monitoring policy", actions=picker), error_alert(exc, id="policy-error")])
    display = dict(choices).get(selected, selected)
    header = page_header(
        "Monitoring policy",
        [
            html.Span(display, className="fw-semibold"),
            f" · {selected} · what is checked, how often, and when it alerts",
        ],
        actions=picker,
    )
    sections: list[Any] = [
        nav,
        dcc.Store(id="policy-model-store", data=selected),
        header,
        html.Div(policy_view(current), id="policy-view"),
    ]
    sections.append(_editor(current) if actor.can(Permission.POLICY_WRITE) else _read_only_json(current))
    return html.Div(sections)


# -- the policy, read ------------------------------------------------------------------------------


def policy_view(policy: PolicyOut) -> list[Component]:
    """The policy as a governance committee reads it (every page reader sees this)."""
    return [
        _provenance(policy),
        dbc.Row(
            [
                dbc.Col(
                    card("Features", _features_table(policy), id="policy-features", subtitle="input drift per feature"),
                    lg=7,
                ),
                dbc.Col(
                    [
                        card("Segments", _segments(policy), id="policy-segments", subtitle="subgroup analysis"),
                        card("Window & schedule", _facts(_window_facts(policy)), id="policy-window"),
                    ],
                    lg=5,
                ),
            ],
            className="g-4",
        ),
        dbc.Row(
            [
                dbc.Col(card("Thresholds", _facts(_threshold_facts(policy)), id="policy-thresholds"), lg=3),
                dbc.Col(card("Alerting", _alerting(policy), id="policy-alerting"), lg=5),
                dbc.Col(card("Change control", _facts(_change_facts(policy)), id="policy-change-control"), lg=4),
            ],
            className="g-4",
        ),
    ]


def _provenance(policy: PolicyOut) -> Component:
    if policy.updated_at is None:
        return dbc.Alert(
            "No policy saved for this model yet: these are the defaults. Checks use them until qa or an administrator saves one.",
            color="light",
            className="border small py-2",
            id="policy-provenance",
        )
    return html.Div(
        [
            "Last saved ",
            html.Span(fmt_time(policy.updated_at, seconds=True), className="fw-medium"),
            " by ",
            html.Span(policy.updated_by, className="fw-medium"),
            " · every change is in the ",
            dcc.Link(
                "audit trail",
                href=dash.get_relative_path("/audit")
                + "?"
                + urlencode({"action": "policy.update", "entity_id": policy.model}),
            ),
        ],
        className="small text-body-secondary mb-3",
        id="policy-provenance",
    )


def _features_table(policy: PolicyOut) -> Component:
    if not policy.features:
        return empty_state(
            "No features listed",
            "Input drift runs on the features listed here (name, numeric or categorical, optional method and threshold).",
            id="policy-no-features",
        )
    head = html.Thead(html.Tr([html.Th(c) for c in ("Feature", "Type", "Drift method", "Threshold")]))
    rows = [
        html.Tr(
            [
                html.Td(html.Span(f.name, className="font-monospace fw-semibold")),
                html.Td(f.type),
                html.Td(f.drift_method or html.Span("chosen per column", className="text-body-secondary")),
                html.Td(
                    html.Span(f"{f.drift_threshold:g}", className="font-monospace")
                    if f.drift_threshold is not None
                    else html.Span(
                        f"{policy.drift_threshold:g} (policy default)", className="text-body-secondary font-monospace"
                    )
                ),
            ],
            id=f"policy-feature-{f.name}",
        )
        for f in policy.features
    ]
    return dbc.Table(
        [head, html.Tbody(rows)],
        size="sm",
        hover=True,
        responsive=True,
        className="radmon-table mb-0",
        id="policy-features-table",
    )


def _badges(values: list[str], *, empty: str) -> Component:
    if not values:
        return html.Span(empty, className="text-body-secondary small")
    return html.Div(
        [
            dbc.Badge(v, color="light", text_color="dark", className="border me-1 mb-1 fw-normal font-monospace")
            for v in values
        ]
    )


def _segments(policy: PolicyOut) -> list[Component]:
    return [
        html.Div("Attributes", className="small text-body-secondary"),
        _badges(policy.segments, empty="none: subgroups are not analysed"),
        html.Div("Intersections", className="small text-body-secondary mt-2"),
        _badges([" × ".join(combo) for combo in policy.intersections], empty="none"),
        html.Div(
            f"A segment needs ≥ {policy.min_positives} positives for sensitivity and ≥ {policy.min_negatives} negatives "
            "for specificity; smaller ones are reported as insufficient data, never as ok.",
            className="small text-body-secondary mt-2",
        ),
    ]


def _facts(pairs: list[tuple[str, Any]]) -> Component:
    return html.Dl(
        [item for label, value in pairs for item in (html.Dt(label), html.Dd(value))],
        className="radmon-facts small mb-0",
    )


def describe_schedule(cron: str) -> str:
    """A plain reading of the common cron shapes ('daily at 02:00 UTC'); the expression otherwise."""
    fields = cron.split()
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit() and fields[2:] == ["*", "*", "*"]:
        return f"daily at {int(fields[1]):02d}:{int(fields[0]):02d} UTC"
    if len(fields) == 5 and fields[0].isdigit() and fields[1:] == ["*", "*", "*", "*"]:
        return f"hourly at minute {int(fields[0])}"
    return "cron, UTC"


def _window_facts(policy: PolicyOut) -> list[tuple[str, Any]]:
    baseline = (
        f"production {fmt_time(policy.baseline.start)} to {fmt_time(policy.baseline.end)}"
        if policy.baseline
        else "the version's uploaded reference set"
    )
    return [
        ("Window", f"{policy.window_days} days (trailing)"),
        (
            "Schedule",
            [
                html.Code(policy.schedule),
                html.Span(f" · {describe_schedule(policy.schedule)}", className="text-body-secondary"),
            ],
        ),
        ("Minimum window", f"{policy.min_window_count} inferences"),
        ("Label horizon", f"{policy.label_horizon_days} days recomputed as outcomes arrive"),
        ("Reference", baseline),
    ]


def _threshold_facts(policy: PolicyOut) -> list[tuple[str, Any]]:
    return [
        ("Drift threshold", html.Span(f"{policy.drift_threshold:g}", className="font-monospace")),
        ("FDR q (subgroups)", html.Span(f"{policy.fdr_q:g}", className="font-monospace")),
        ("Min positives", policy.min_positives),
        ("Min negatives", policy.min_negatives),
        (
            "False-alarm budget",
            f"{policy.false_criticals_per_year:g} critical / year, {policy.false_warnings_per_month:g} warning / month",
        ),
    ]


def _alerting(policy: PolicyOut) -> list[Component]:
    rows = []
    for spec in KIND_SPECS:
        # DESIGN 7 and decision 0300: what a breach of each kind raises unless the policy overrides it.
        severity = policy.alert_severities.get(spec.name) or spec.default_severity
        overridden = spec.name in policy.alert_severities
        rows.append(
            html.Tr(
                [
                    html.Td(spec.label),
                    html.Td(
                        [
                            dbc.Badge(severity, color=SEVERITY_COLORS.get(severity, "secondary")),
                            html.Span(" policy" if overridden else " default", className="small text-body-secondary"),
                        ]
                    ),
                ]
            )
        )
    severities = dbc.Table(
        [html.Thead(html.Tr([html.Th("Breach of"), html.Th("Raises")])), html.Tbody(rows)],
        size="sm",
        className="radmon-table mb-3",
        id="policy-severities",
    )
    auto_resolve = (
        f"after {policy.auto_resolve_after} consecutive clean runs"
        if policy.auto_resolve_after
        else "never (people resolve)"
    )
    return [
        severities,
        _facts(
            [
                ("Recipients", _badges(policy.alert_recipients, empty="the model's recipients")),
                ("Auto-resolve", auto_resolve),
                ("Warning digest", f"every {policy.digest_hours} h"),
                ("Critical emails", f"at most {policy.critical_emails_per_hour} per hour, the rest in the digest"),
            ]
        ),
    ]


def _change_facts(policy: PolicyOut) -> list[tuple[str, Any]]:
    return [
        (
            "Approvals required",
            html.Span(str(policy.approvals_required), className="fw-semibold", id="policy-approvals-required"),
        ),
        ("Requests expire", f"after {policy.change_request_ttl_hours} h"),
        ("Requester", "never approves their own request"),
    ]


# -- the policy, edited ------------------------------------------------------------------------------


def _editor(policy: PolicyOut) -> Component:
    loaded_at = policy.updated_at.isoformat() if policy.updated_at else None
    body = [
        html.P(
            [
                "The policy as JSON, in the shape ",
                html.Code("PUT /api/v1/models/{model}/policy"),
                (
                    " takes. Every field has a default; the server validates the whole policy and names each problem. "
                    "Saving replaces the policy for the next check run and is recorded in the audit trail with before "
                    "and after."
                ),
            ],
            className="small text-body-secondary",
        ),
        dcc.Textarea(
            id="policy-editor",
            value=data.policy_json(policy),
            className="form-control radmon-policy-editor",
            # Bootstrap's textarea.form-control min-height outranks a class rule: set it here.
            style={"minHeight": "30rem"},
            spellCheck=False,
            persistence=False,
        ),
        dcc.Store(id="policy-loaded-store", data=loaded_at),
        html.Div(id="policy-feedback", className="mt-3"),
        html.Div(
            [
                dbc.Button("Reset to saved", id="policy-reset-button", color="secondary", outline=True),
                dbc.Button("Validate", id="policy-validate-button", color="secondary"),
                dbc.Button("Save policy", id="policy-save-button", color="primary"),
            ],
            className="d-flex gap-2 justify-content-end mt-3",
        ),
    ]
    return card("Edit policy", body, id="policy-edit", subtitle="qa and administrators")


def _read_only_json(policy: PolicyOut) -> Component:
    return card(
        "Policy as JSON",
        html.Details(
            [
                html.Summary("Show the policy as the API returns it", className="small"),
                html.Pre(
                    data.policy_json(policy), className="radmon-json mt-2", style={"maxWidth": "none"}, id="policy-json"
                ),
            ]
        ),
        id="policy-read-only",
        subtitle="read-only for your role",
    )


def validation_feedback(exc: MonitorError) -> Component:
    """The service's verdict, one line per field, so the editor can be fixed in place."""
    details = exc.details if isinstance(exc.details, list) else []
    problems = [d for d in details if isinstance(d, dict) and "field" in d and "reason" in d]
    if not problems:
        return error_alert(exc, id="policy-invalid")
    return dbc.Alert(
        [
            html.Div(
                f"Not saved: {len(problems)} problem{'s' if len(problems) != 1 else ''} in the policy",
                className="fw-semibold mb-1",
            ),
            html.Ul(
                [
                    html.Li([html.Code(d["field"], className="me-2"), d["reason"]], className="radmon-field-error")
                    for d in problems
                ],
                className="mb-0 ps-3",
                id="policy-problems",
            ),
        ],
        color="danger",
        id="policy-invalid",
    )


def register_callbacks(app: Dash) -> None:
    register_model_picker(app, "policy", policy_href)

    @app.callback(
        Output("policy-feedback", "children"),
        Input("policy-validate-button", "n_clicks"),
        State("policy-editor", "value"),
        prevent_initial_call=True,
    )
    def validate(_clicks: int | None, text: str | None) -> Component:
        auth.require(Permission.POLICY_WRITE)
        try:
            data.parse_policy(text)
        except MonitorError as exc:
            return validation_feedback(exc)
        return dbc.Alert(
            "The policy is valid. Save it to apply it from the next check run.", color="success", id="policy-valid"
        )

    @app.callback(
        Output("policy-feedback", "children", allow_duplicate=True),
        Output("policy-view", "children"),
        Output("policy-loaded-store", "data"),
        Output("policy-editor", "value"),
        Input("policy-save-button", "n_clicks"),
        State("policy-model-store", "data"),
        State("policy-editor", "value"),
        State("policy-loaded-store", "data"),
        prevent_initial_call=True,
    )
    def save(_clicks: int | None, model_name: str, text: str | None, loaded_at: str | None) -> tuple[Any, ...]:
        actor = auth.require(Permission.POLICY_WRITE)  # a forged save from a viewer stops here
        no = dash.no_update
        try:
            saved = data.save_policy(actor=actor, model_name=model_name, text=text, loaded_at=loaded_at)
        except MonitorError as exc:
            return validation_feedback(exc), no, no, no
        notice = dbc.Alert(
            f"Policy saved at {fmt_time(saved.updated_at, seconds=True)}; it applies from the next check run and the change is in the audit trail.",
            color="success",
            dismissable=True,
            id="policy-saved",
        )
        return (
            notice,
            policy_view(saved),
            saved.updated_at.isoformat() if saved.updated_at else None,
            data.policy_json(saved),
        )

    @app.callback(
        Output("policy-editor", "value", allow_duplicate=True),
        Output("policy-feedback", "children", allow_duplicate=True),
        Output("policy-view", "children", allow_duplicate=True),
        Output("policy-loaded-store", "data", allow_duplicate=True),
        Input("policy-reset-button", "n_clicks"),
        State("policy-model-store", "data"),
        prevent_initial_call=True,
    )
    def reset(_clicks: int | None, model_name: str) -> tuple[Any, ...]:
        """The policy as saved now (perhaps by someone else since the page opened)."""
        actor = auth.require(Permission.POLICY_WRITE)
        current = data.policy(actor=actor, model_name=model_name)
        return (
            data.policy_json(current),
            None,
            policy_view(current),
            current.updated_at.isoformat() if current.updated_at else None,
        )
