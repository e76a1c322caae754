from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from tests.factories import auth, make_keys, make_model

POLICY = {
    "features": [{"name": "kvp", "type": "numeric"}, {"name": "manufacturer", "type": "categorical"}],
    "segments": ["site", "manufacturer"],
    "intersections": [["site", "manufacturer"]],
    "window_days": 14,
    "approvals_required": 2,  # the quorum is an admin's to change (tests/registry/test_quorum.py)
}


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    make_model(session)
    return make_keys(session)


def test_defaults_until_saved_then_saved_policy_is_served(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    first = client.get("/api/v1/models/ich-ct/policy", headers=auth(keys["viewer"]))
    assert first.status_code == 200
    assert first.json()["window_days"] == 7 and first.json()["approvals_required"] == 2
    assert first.json()["updated_by"] is None

    saved = client.put("/api/v1/models/ich-ct/policy", json=POLICY, headers=auth(keys["qa"]))
    assert saved.status_code == 200, saved.text
    again = client.get("/api/v1/models/ich-ct/policy", headers=auth(keys["viewer"])).json()
    assert again["window_days"] == 14 and again["approvals_required"] == 2 and again["updated_by"] == "qa-user"
    event = session.query(AuditEvent).filter_by(action="policy.update").one()
    assert event.after["window_days"] == 14 and event.before is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"schedule": "every day"}, "schedule"),
        ({"intersections": [["site", "scanner"]]}, "not in segments"),
        ({"features": [{"name": "kvp", "type": "numeric"}, {"name": "kvp", "type": "numeric"}]}, "listed twice"),
        ({"features": [{"name": "kvp", "type": "numbers"}]}, "features.0.type"),
        ({"fdr_q": 1.5}, "fdr_q"),
        ({"alert_recipients": ["not an address"]}, "not an email address"),
    ],
)
def test_invalid_policy_names_the_problem_and_keeps_the_old_one(
    client: TestClient, keys: dict[str, str], change: dict[str, object], expected: str
) -> None:
    assert client.put("/api/v1/models/ich-ct/policy", json=POLICY, headers=auth(keys["qa"])).status_code == 200
    answer = client.put("/api/v1/models/ich-ct/policy", json={**POLICY, **change}, headers=auth(keys["qa"]))
    assert answer.status_code == 422
    assert expected in answer.json()["error"]["message"]
    assert client.get("/api/v1/models/ich-ct/policy", headers=auth(keys["qa"])).json()["window_days"] == 14


def test_unknown_model_is_404(client: TestClient, keys: dict[str, str]) -> None:
    assert client.get("/api/v1/models/nope/policy", headers=auth(keys["viewer"])).status_code == 404


@pytest.mark.parametrize(
    ("method", "allowed"), [("get", {"viewer", "qa", "approver", "admin"}), ("put", {"qa", "admin"})]
)
def test_policy_routes_authenticate_and_authorize(
    client: TestClient, keys: dict[str, str], method: str, allowed: set[str]
) -> None:
    call = getattr(client, method)
    kwargs = {"json": POLICY} if method == "put" else {}
    assert call("/api/v1/models/ich-ct/policy", **kwargs).status_code == 401
    for role, key in keys.items():
        status = call("/api/v1/models/ich-ct/policy", headers=auth(key), **kwargs).status_code
        assert (status == 200) if role in allowed else (status == 403), (role, status)
