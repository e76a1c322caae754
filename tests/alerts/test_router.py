"""Alerts over HTTP: the JSON contract, who may do what (401/403), and audited transitions."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.alerts import service
from monitor.config import Settings
from tests.alerts.conftest import drift, finding, seed
from tests.factories import auth, make_keys

ALERT_KEYS = {
    "id",
    "model",
    "version",
    "kind",
    "severity",
    "status",
    "fingerprint",
    "metric",
    "feature",
    "segment",
    "first_seen",
    "last_seen",
    "occurrences",
    "evidence",
    "history",
}


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    return make_keys(session)


@pytest.fixture
def alert_id(session: Session, settings: Settings) -> int:
    seed(session)
    [alert] = service.process_findings(session=session, findings=[finding()], settings=settings)
    service.process_findings(session=session, findings=[drift("kvp")], settings=settings)
    return alert.id


def routes(alert_id: int) -> list[tuple[str, str, dict | None]]:
    note = {"note": "checked"}
    return [
        ("GET", "/api/v1/alerts", None),
        ("GET", f"/api/v1/alerts/{alert_id}", None),
        ("GET", f"/api/v1/alerts/{alert_id}/occurrences", None),
        ("POST", f"/api/v1/alerts/{alert_id}/acknowledge", note),
        ("POST", f"/api/v1/alerts/{alert_id}/resolve", note),
        ("GET", "/api/v1/notifications", None),
        ("POST", "/api/v1/notifications/1/requeue", None),
    ]


def test_every_alerts_route_answers_401_without_a_valid_key(client: TestClient, alert_id: int) -> None:
    for method, path, body in routes(alert_id):
        for headers in ({}, auth("rmk_not-a-key")):
            answer = client.request(method, path, json=body, headers=headers)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "unauthorized"


def test_roles_read_and_act_as_design_3_says(client: TestClient, keys: dict[str, str], alert_id: int) -> None:
    for method, path, body in routes(alert_id):
        answer = client.request(method, path, json=body, headers=auth(keys["ingest"]))
        assert answer.status_code == 403, (method, path, answer.text)
    for role in ("viewer", "approver"):
        for method, path, body in routes(alert_id):
            answer = client.request(method, path, json=body, headers=auth(keys[role]))
            expected = 403 if method == "POST" else 200
            assert answer.status_code == expected, (role, method, path, answer.text)
    acked = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "qa on it"}, headers=auth(keys["qa"]))
    assert acked.status_code == 200, acked.text
    resolved = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "fixed"}, headers=auth(keys["admin"]))
    assert resolved.status_code == 200, resolved.text


def test_alert_json_matches_design_5_and_filters_work(client: TestClient, keys: dict[str, str], alert_id: int) -> None:
    viewer = auth(keys["viewer"])
    one = client.get(f"/api/v1/alerts/{alert_id}", headers=viewer).json()
    assert ALERT_KEYS <= set(one)
    assert one["model"] == "ich-ct" and one["version"] == "2.1.0" and one["segment"] == "site=north"
    assert one["evidence"]["value"] == pytest.approx(0.781) and one["evidence"]["n"] == 212
    assert one["link"] == f"http://127.0.0.1:8000/dashboard/alerts?id={alert_id}"  # RADMON_DASHBOARD_URL default
    assert [h["action"] for h in one["history"]] == ["opened"]
    every = client.get("/api/v1/alerts", headers=viewer).json()
    assert {a["kind"] for a in every} == {"subgroups", "input_drift"}
    critical = client.get(
        "/api/v1/alerts", params={"severity": "critical", "model": "ich-ct", "status": "open"}, headers=viewer
    )
    assert [a["id"] for a in critical.json()] == [alert_id]
    assert client.get("/api/v1/alerts", params={"status": "acknowledged"}, headers=viewer).json() == []
    assert client.get("/api/v1/alerts", params={"status": "bogus"}, headers=viewer).status_code == 422
    assert client.get("/api/v1/alerts", params={"model": "nope"}, headers=viewer).status_code == 404
    assert client.get("/api/v1/alerts/999999", headers=viewer).status_code == 404


def test_acknowledge_then_resolve_over_http_is_audited_with_the_note(
    client: TestClient, keys: dict[str, str], alert_id: int
) -> None:
    qa = auth(keys["qa"])
    acked = client.post(
        f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "checking north's CT protocol"}, headers=qa
    )
    assert acked.json()["status"] == "acknowledged"
    again = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "again"}, headers=qa)
    assert again.status_code == 409
    blank = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "   "}, headers=qa)
    assert blank.status_code == 422
    resolved = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "protocol reverted"}, headers=qa).json()
    assert [(h["action"], h["actor"], h["note"]) for h in resolved["history"][1:]] == [
        ("acknowledged", "qa-user", "checking north's CT protocol"),
        ("resolved", "qa-user", "protocol reverted"),
    ]
    events = client.get(
        "/api/v1/audit", params={"entity": "alert", "entity_id": str(alert_id)}, headers=auth(keys["viewer"])
    )
    trail = [(e["action"], e["actor"], e["reason"]) for e in reversed(events.json()["events"])]
    assert trail[-2:] == [
        ("alert.acknowledge", "qa-user", "checking north's CT protocol"),
        ("alert.resolve", "qa-user", "protocol reverted"),
    ]
    assert client.get("/api/v1/audit/verify", headers=auth(keys["viewer"])).json()["ok"] is True


def test_notifications_list_shows_the_outbox(client: TestClient, keys: dict[str, str], alert_id: int) -> None:
    rows = client.get("/api/v1/notifications", params={"alert_id": alert_id}, headers=auth(keys["viewer"])).json()
    assert [(r["channel"], r["category"], r["status"]) for r in rows] == [("email", "adverse_event", "pending")]
    assert rows[0]["subject"].startswith("[radmon CRITICAL] ich-ct 2.1.0: sensitivity below target at site north")
    requeue = client.post(f"/api/v1/notifications/{rows[0]['id']}/requeue", headers=auth(keys["qa"]))
    assert requeue.status_code == 409  # only dead letters


def test_the_incident_list_leaves_near_misses_out_unless_asked_for(
    client: TestClient, keys: dict[str, str], session: Session, settings: Settings
) -> None:
    seed(session)
    near = finding(segment="site=south", status="warn", value=0.88)
    [alert] = service.process_findings(session=session, findings=[near], settings=settings)
    viewer = auth(keys["viewer"])
    assert client.get("/api/v1/alerts", headers=viewer).json() == []
    listed = client.get("/api/v1/alerts", params={"severity": "info"}, headers=viewer).json()
    assert [(a["id"], a["severity"], a["segment"]) for a in listed] == [(alert.id, "info", "site=south")]
    assert [a["id"] for a in client.get("/api/v1/alerts", params={"members": "true"}, headers=viewer).json()] == [
        alert.id
    ]
