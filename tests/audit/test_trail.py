"""The audit trail: one event per state change, filters, pagination, CSV export, tamper evidence."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.audit.models import AuditEvent
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.db import Database
from monitor.registry import changes
from monitor.registry.models import ChangeRequest
from tests.factories import PASSWORD, SHA, auth, make_model, make_user, make_version
from tests.registry.conftest import live_client  # noqa: F401  (fixture)

APPROVE = {"decision": "approve", "meaning": "approved", "password": PASSWORD}


def new_actions(session: Session, after_seq: int) -> Counter[str]:
    actions = session.execute(select(AuditEvent.action).where(AuditEvent.seq > after_seq)).scalars()
    return Counter(actions)


def head(session: Session) -> int:
    return session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)).scalar() or 0


def last(session: Session, action: str) -> AuditEvent:
    return session.execute(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc()).limit(1)
    ).scalar_one()


def test_every_state_change_appends_exactly_one_event(client: TestClient, session: Session) -> None:
    """DESIGN section 9, for every action that exists today; before/after where they apply."""
    admin_key = make_user(session, role="admin", username="admin")[1]
    qa_key = make_user(session, role="qa", username="qa")[1]
    signers = {name: make_user(session, role="approver", username=name)[1] for name in ("approver-a", "approver-b")}
    admin, qa = auth(admin_key), auth(qa_key)

    def step(expected: dict[str, int], act: Callable[[], object]) -> None:
        start = head(session)
        act()
        assert new_actions(session, start) == Counter(expected)

    def ok(answer):  # type: ignore[no-untyped-def]
        assert answer.status_code < 300, answer.text
        return answer

    version = {"version": "1.0.0", "artifact_uri": "s3://m/1", "artifact_sha256": SHA}
    step(
        {"model.create": 1},
        lambda: ok(client.post("/api/v1/models", json={"name": "ich-ct", "display_name": "ICH"}, headers=admin)),
    )
    assert last(session, "model.create").after["name"] == "ich-ct"
    step({"version.create": 1}, lambda: ok(client.post("/api/v1/models/ich-ct/versions", json=version, headers=admin)))
    assert last(session, "version.create").after["artifact_sha256"] == SHA
    step(
        {"version.create": 1},
        lambda: ok(client.post("/api/v1/models/ich-ct/versions", json=dict(version, version="2.0.0"), headers=admin)),
    )
    step(
        {"deployment.activate": 1},
        lambda: ok(client.post("/api/v1/models/ich-ct/versions/2.0.0/activate", headers=admin)),
    )
    event = last(session, "deployment.activate")
    assert event.before == {"active_version": None} and event.after["active_version"] == "2.0.0"

    step(
        {"policy.update": 1},
        lambda: ok(client.put("/api/v1/models/ich-ct/policy", json={"window_days": 14}, headers=qa)),
    )
    step(
        {"policy.update": 1},
        lambda: ok(client.put("/api/v1/models/ich-ct/policy", json={"window_days": 7}, headers=qa)),
    )
    event = last(session, "policy.update")
    assert event.before["window_days"] == 14 and event.after["window_days"] == 7

    create = lambda: auth_service.create_user(
        session=session, actor=SYSTEM, username="temp", role="viewer", password=PASSWORD
    )
    step({"user.create": 1}, create)
    assert last(session, "user.create").after["role"] == "viewer"
    keys: list[str] = []
    step(
        {"api_key.create": 1},
        lambda: keys.append(auth_service.create_api_key(session=session, actor=SYSTEM, username="temp")[0].prefix),
    )
    step({"api_key.revoke": 1}, lambda: auth_service.revoke_api_key(session=session, actor=SYSTEM, prefix=keys[0]))
    event = last(session, "api_key.revoke")
    assert (event.before, event.after) == ({"revoked": False}, {"revoked": True})
    step({"user.disable": 1}, lambda: auth_service.disable_user(session=session, actor=SYSTEM, username="temp"))
    event = last(session, "user.disable")
    assert (event.before["is_active"], event.after["is_active"]) == (True, False)
    step(
        {"auth.login_failed": 1},
        lambda: auth_service.authenticate_password(session=session, username="qa", password="guess"),
    )
    assert last(session, "auth.login_failed").reason == "wrong password"

    rollback = {"model": "ich-ct", "kind": "rollback", "target_version": "1.0.0", "reason": "breach"}
    created: list[int] = []
    step(
        {"change_request.create": 1},
        lambda: created.append(ok(client.post("/api/v1/change-requests", json=rollback, headers=qa)).json()["id"]),
    )
    assert last(session, "change_request.create").after["status"] == "pending"
    decision = f"/api/v1/change-requests/{created[0]}/decision"
    step(
        {"signature.failed": 1},
        lambda: client.post(decision, json=dict(APPROVE, password="guess"), headers=auth(signers["approver-a"])),
    )
    step(
        {"change_request.approve": 1},
        lambda: ok(client.post(decision, json=APPROVE, headers=auth(signers["approver-a"]))),
    )
    event = last(session, "change_request.approve")
    assert event.before == {"status": "pending", "approvals": 0} and event.after["approvals"] == 1
    step(
        {"change_request.approve": 1, "deployment.activate": 1, "change_request.execute": 1},
        lambda: ok(client.post(decision, json=APPROVE, headers=auth(signers["approver-b"]))),
    )
    assert last(session, "deployment.activate").after == {"active_version": "1.0.0", "change_request_id": created[0]}

    promotion = dict(rollback, kind="promotion", target_version="2.0.0")
    second = ok(client.post("/api/v1/change-requests", json=promotion, headers=qa)).json()["id"]
    reject = dict(APPROVE, decision="reject", meaning="rejected")
    step(
        {"change_request.reject": 1},
        lambda: ok(
            client.post(f"/api/v1/change-requests/{second}/decision", json=reject, headers=auth(signers["approver-b"]))
        ),
    )
    third = ok(client.post("/api/v1/change-requests", json=promotion, headers=qa)).json()["id"]
    step(
        {"change_request.expire": 1},
        lambda: changes.expire_due(session=session, now=datetime.now(UTC) + timedelta(days=4)),
    )
    assert session.get(ChangeRequest, third).status == "expired"  # type: ignore[union-attr]

    fourth = ok(client.post("/api/v1/change-requests", json=promotion, headers=qa)).json()["id"]
    for _ in range(5):
        client.post(
            f"/api/v1/change-requests/{fourth}/decision",
            json=dict(reject, password="guess"),
            headers=auth(signers["approver-a"]),
        )
    step(
        {"user.unlock_signing": 1},
        lambda: auth_service.unlock_signing(session=session, actor=SYSTEM, username="approver-a"),
    )

    verification = client.get("/api/v1/audit/verify", headers=admin).json()
    assert verification["ok"] and verification["events"] == head(session), verification


@pytest.fixture
def trail(session: Session) -> dict[str, str]:
    """A few events from two actors on two entities; a viewer's key."""
    make_model(session)
    make_version(session, version="1.0.0")
    make_version(session, version="2.0.0")
    return {"viewer": make_user(session, role="viewer")[1], "ingest": make_user(session, role="ingest")[1]}


def test_listing_filters_and_pages_newest_first(client: TestClient, session: Session, trail: dict[str, str]) -> None:
    viewer = auth(trail["viewer"])
    everything = client.get("/api/v1/audit", params={"limit": 1000}, headers=viewer).json()
    seqs = [e["seq"] for e in everything["events"]]
    assert seqs == sorted(seqs, reverse=True) and everything["next_before_seq"] is None

    pages, before = [], None
    while True:
        params = {"limit": 3, **({"before_seq": before} if before else {})}
        page = client.get("/api/v1/audit", params=params, headers=viewer).json()
        pages.extend(e["seq"] for e in page["events"])
        before = page["next_before_seq"]
        if before is None:
            break
    assert pages == seqs

    versions = client.get("/api/v1/audit", params={"entity": "model_version"}, headers=viewer).json()["events"]
    assert [e["entity_id"] for e in versions] == ["ich-ct:2.0.0", "ich-ct:1.0.0"]
    one = client.get("/api/v1/audit", params={"entity_id": "ich-ct:1.0.0"}, headers=viewer).json()["events"]
    assert [e["action"] for e in one] == ["version.create"]
    by_action = client.get("/api/v1/audit", params={"action": "user.create"}, headers=viewer).json()["events"]
    assert {e["entity_id"] for e in by_action} == {"viewer-user", "ingest-user"}
    by_actor = client.get("/api/v1/audit", params={"actor": "nobody"}, headers=viewer).json()["events"]
    assert by_actor == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get("/api/v1/audit", params={"since": future}, headers=viewer).json()["events"] == []
    assert len(client.get("/api/v1/audit", params={"until": future}, headers=viewer).json()["events"]) == len(seqs)
    naive = client.get("/api/v1/audit", params={"since": "2026-11-01T00:00:00"}, headers=viewer)
    assert naive.status_code == 422 and "timezone" in naive.json()["error"]["message"]


def test_the_audit_trail_is_not_for_service_accounts(client: TestClient, trail: dict[str, str]) -> None:
    for path in ("/api/v1/audit", "/api/v1/audit/verify", "/api/v1/audit/export.csv"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=auth(trail["ingest"])).status_code == 403


def test_csv_export_has_every_matching_event_oldest_first(
    client: TestClient, session: Session, trail: dict[str, str]
) -> None:
    # A reason typed by a user must not become a spreadsheet formula.
    audit_service.record(
        session=session,
        actor="qa-user",
        action="test.note",
        entity="model",
        entity_id="ich-ct",
        reason='=HYPERLINK("http://x")',
    )
    answer = client.get("/api/v1/audit/export.csv", headers=auth(trail["viewer"]))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["seq"]) for r in rows] == list(range(1, head(session) + 1))
    assert rows[-1]["reason"] == '\'=HYPERLINK("http://x")'
    stored = session.get(AuditEvent, int(rows[0]["seq"]))
    assert rows[0]["hash"] == stored.hash and rows[0]["action"] == stored.action  # type: ignore[union-attr]

    filtered = client.get(
        "/api/v1/audit/export.csv",
        params={"entity": "model_version", "entity_id": "ich-ct:2.0.0"},
        headers=auth(trail["viewer"]),
    )
    assert [r["entity_id"] for r in csv.DictReader(io.StringIO(filtered.text))] == ["ich-ct:2.0.0"]


def test_the_append_only_guard_refuses_update_and_delete(session: Session, trail: dict[str, str]) -> None:
    for statement in (
        "UPDATE audit_events SET reason = 'edited' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
    ):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(statement))


def _seed(database: Database) -> str:
    with database.transaction() as session:
        make_model(session)  # seq 1
        make_version(session, version="1.0.0")  # seq 2
        make_version(session, version="2.0.0")  # seq 3
        return make_user(session, role="viewer")[1]  # seq 4, 5


def _drop_guard(database: Database) -> None:
    """What someone with DDL rights could do; the chain must still tell."""
    with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(text("DROP TRIGGER audit_events_no_update ON audit_events"))
        else:
            connection.execute(text("DROP TRIGGER audit_events_no_update"))
            connection.execute(text("DROP TRIGGER audit_events_no_delete"))


def test_a_forced_edit_is_detected_and_named(
    fresh_database: Database,
    live_client: Callable[..., TestClient],  # noqa: F811
) -> None:
    key = _seed(fresh_database)
    client = live_client()
    assert client.get("/api/v1/audit/verify", headers=auth(key)).json()["ok"]
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET reason = 'nothing to see here' WHERE seq = 2"))
    verification = client.get("/api/v1/audit/verify", headers=auth(key)).json()
    assert verification["ok"] is False and verification["first_broken_seq"] == 2
    assert "event 2 was altered" in verification["problem"]


def test_an_edit_that_rehashes_its_event_breaks_the_next_link(
    fresh_database: Database,
    live_client: Callable[..., TestClient],  # noqa: F811
) -> None:
    key = _seed(fresh_database)
    _drop_guard(fresh_database)
    with fresh_database.transaction() as session:
        event = session.get(AuditEvent, 2)
        assert event is not None
        event.reason = "rewritten"
        forged = audit_service.chain_hash(event.prev_hash, event)
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(reason="rewritten", hash=forged))
    verification = live_client().get("/api/v1/audit/verify", headers=auth(key)).json()
    assert verification["ok"] is False and verification["first_broken_seq"] == 3
    assert "does not point at the hash of event 2" in verification["problem"]


def test_a_deleted_event_is_named_as_missing(
    fresh_database: Database,
    live_client: Callable[..., TestClient],  # noqa: F811
) -> None:
    key = _seed(fresh_database)
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    verification = live_client().get("/api/v1/audit/verify", headers=auth(key)).json()
    assert verification["ok"] is False and verification["first_broken_seq"] == 3
    assert "event 3 is missing" in verification["problem"]
