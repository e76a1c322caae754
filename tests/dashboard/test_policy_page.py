"""The monitoring-policy page: everyone reads it, qa and admins edit its JSON; the service's
validation is shown per field, saves are audited, and a viewer's forged save changes nothing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import data
from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy
from tests.dashboard.callbacks import call, find, response_of, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.factories import make_model, make_user

POLICY = {
    "features": [
        {"name": "kvp", "type": "numeric"},
        {"name": "manufacturer", "type": "categorical"},
        {"name": "mean_hu", "type": "numeric", "drift_method": "psi", "drift_threshold": 0.2},
    ],
    "segments": ["site", "manufacturer"],
    "intersections": [["site", "manufacturer"]],
    "approvals_required": 3,
    "alert_recipients": ["ai-committee@hospital.example"],
    "alert_severities": {"input_drift": "info"},
}


@pytest.fixture
def model_with_policy(session: Session) -> None:
    for role, username in [("viewer", "vera"), ("qa", "quinn"), ("approver", "avery"), ("admin", "ada")]:
        make_user(session, role=role, username=username)
    make_model(session)
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )


def stored(session: Session) -> dict:
    session.expire_all()
    return checks_policy.get_policy(session=session, actor=SYSTEM, model_name="ich-ct").model_dump(mode="json")


def save(client: TestClient, body: str | dict, loaded_at: str | None):  # type: ignore[no-untyped-def]
    text = body if isinstance(body, str) else json.dumps(body)
    return call(
        client,
        "policy-save-button.n_clicks",
        {
            "policy-save-button.n_clicks": 1,
            "policy-model-store.data": "ich-ct",
            "policy-editor.value": text,
            "policy-loaded-store.data": loaded_at,
        },
    )


def loaded_at(client: TestClient) -> str:
    return find(render_page(client, "/policy", "?model=ich-ct"), "policy-loaded-store")["data"]


def test_the_page_shows_features_segments_thresholds_recipients_and_approvals(
    dashboard_client: TestClient, session: Session, model_with_policy: None
) -> None:
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/policy", "?model=ich-ct")

    for shown in (
        "policy-feature-kvp",
        "policy-feature-mean_hu",
        "psi",
        "site \\u00d7 manufacturer",
        "daily at 02:00 UTC",
        "7 days (trailing)",
        "ai-committee@hospital.example",
        "Last saved",
        "1 critical / year, 1 warning / month",  # the sequential detectors' budget (decision 0503)
    ):
        assert shown in page, shown
    assert find(page, "policy-approvals-required")["children"] == "3"
    assert "info" in json.dumps(find(page, "policy-severities"))  # the override of input drift


def test_viewers_and_approvers_read_it_without_an_editor(
    dashboard_client: TestClient, session: Session, model_with_policy: None
) -> None:
    for username in ("vera", "avery"):
        sign_in(dashboard_client, username)
        page = render_page(dashboard_client, "/policy", "?model=ich-ct")
        assert "policy-read-only" in page
        for control in ("policy-editor", "policy-save-button", "policy-validate-button"):
            assert control not in page


def test_qa_gets_the_editor_with_the_policy_json(
    dashboard_client: TestClient, session: Session, model_with_policy: None
) -> None:
    sign_in(dashboard_client, "quinn")

    editor = find(render_page(dashboard_client, "/policy", "?model=ich-ct"), "policy-editor")

    assert json.loads(editor["value"])["features"][2] == {
        "name": "mean_hu",
        "type": "numeric",
        "drift_method": "psi",
        "drift_threshold": 0.2,
        "min": None,
        "max": None,
        "values": None,
    }


def test_a_model_without_a_saved_policy_says_it_shows_the_defaults(
    dashboard_client: TestClient, session: Session
) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/policy", "?model=ich-ct")

    assert "these are the defaults" in page and "policy-no-features" in page


def test_qa_saves_a_policy_and_the_service_audits_it(
    dashboard_client: TestClient, session: Session, model_with_policy: None
) -> None:
    sign_in(dashboard_client, "quinn")
    edited = {**POLICY, "window_days": 14}  # the quorum stays: changing it is an admin's

    result = response_of(save(dashboard_client, edited, loaded_at(dashboard_client)))

    assert "Policy saved" in text_of(result["policy-feedback"])
    assert "14 days (trailing)" in text_of(result["policy-view"])
    assert stored(session)["window_days"] == 14 and stored(session)["updated_by"] == "quinn"
    [event] = session.execute(
        select(AuditEvent).where(AuditEvent.action == "policy.update", AuditEvent.actor == "quinn")
    ).scalars()
    assert event.before["window_days"] == 7 and event.after["window_days"] == 14  # type: ignore[index]


def test_validation_names_each_field_and_its_reason(
    dashboard_client: TestClient, session: Session, model_with_policy: None
) -> None:
    sign_in(dashboard_client, "quinn")
    broken = {
        **POLICY,
        "window_days": 0,
        "schedule": "every night",
        "features": [{"name": "kvp", "type": "numeric", "drift_method": "chisquare"}],
        "intersections": [["site", "scanner"]],
    }

    feedback = text_of(response_of(save(dashboard_client, broken, loaded_at(dashboard_client)))["policy-feedback"])

    assert "window_days" in feedback and "greater than or equal to 1" in feedback
    assert "schedule" in feedback and "is not a 5-field cron expression" in feedback
    assert "features.0" in feedback and "chisquare applies to categorical features" in feedback
    assert stored(session)["window_days"] == 7  # nothing saved


def test_malformed_json_says_where(dashboard_client: TestClient, session: Session, model_with_policy: None) -> None:
    sign_in(dashboard_client, "quinn")

    feedback = text_of(
        response_of(save(dashboard_client, '{"window_days": 14,}', loaded_at(dashboard_client)))["policy-feedback"]
    )

    assert "not valid JSON" in feedback and "line 1, column 20" in feedback


def test_the_validate_button_checks_without_saving(
    dashboard_client: TestClient, session: Session, model_with_policy: None
) -> None:
    sign_in(dashboard_client, "quinn")

    result = response_of(
        call(
            dashboard_client,
            "policy-validate-button.n_clicks",
            {"policy-validate-button.n_clicks": 1, "policy-editor.value": json.dumps({"fdr_q": 2})},
        )
    )

    assert "fdr_q" in text_of(result) and "less than 1" in text_of(result)
    assert "policy-view" not in result


def test_a_policy_saved_by_someone_else_meanwhile_is_not_overwritten(
    dashboard_client: TestClient, session: Session, model_with_policy: None
) -> None:
    sign_in(dashboard_client, "quinn")
    opened_at = loaded_at(dashboard_client)
    checks_policy.put_policy(
        session=session,
        actor=SYSTEM,
        model_name="ich-ct",
        policy=MonitoringPolicy.model_validate({**POLICY, "window_days": 30}),
    )

    feedback = text_of(response_of(save(dashboard_client, {**POLICY, "window_days": 14}, opened_at))["policy-feedback"])

    assert "reload the page" in feedback
    assert stored(session)["window_days"] == 30


@pytest.mark.parametrize("username", ["vera", "avery"])
def test_a_forged_save_is_refused_and_changes_nothing(
    dashboard_client: TestClient, session: Session, model_with_policy: None, username: str
) -> None:
    sign_in(dashboard_client, username)
    before = stored(session)

    result = save(dashboard_client, {**POLICY, "approvals_required": 1}, before["updated_at"])

    assert result.status_code == 403 and result.json()["error"]["code"] == "forbidden"
    assert stored(session) == before


def test_policy_json_round_trips_through_the_parser(session: Session, model_with_policy: None) -> None:
    current = checks_policy.get_policy(session=session, actor=SYSTEM, model_name="ich-ct")

    assert data.parse_policy(data.policy_json(current)) == MonitoringPolicy.model_validate(POLICY)
