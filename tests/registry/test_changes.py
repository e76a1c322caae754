"""Change requests: signed approvals, quorum execution, refusals, expiry, deployment history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.ingest.models import Inference
from monitor.registry import changes
from monitor.registry.models import ChangeRequest, Deployment, ModelVersion, Signature
from monitor.registry.schemas import ChangeRequestCreate
from tests.factories import PASSWORD, auth, make_model, make_version

ROLLBACK = {"model": "ich-ct", "kind": "rollback", "target_version": "1.0.0", "reason": "sensitivity breach at north"}


def approve(meaning: str = "approved for clinical use", password: str = PASSWORD, **extra: str) -> dict[str, str]:
    return {"decision": "approve", "meaning": meaning, "password": password, "comment": "", **extra}


def file_request(client: TestClient, keys: dict[str, str], body: dict[str, object] = ROLLBACK, by: str = "qa") -> int:
    answer = client.post("/api/v1/change-requests", json=body, headers=auth(keys[by]))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def decide(client: TestClient, keys: dict[str, str], request_id: int, who: str, body: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/change-requests/{request_id}/decision", json=body, headers=auth(keys[who]))


def active(client: TestClient, keys: dict[str, str]) -> str:
    return str(client.get("/api/v1/models/ich-ct/active", headers=auth(keys["ingest"])).json()["version"])


def events(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()
    )


def test_rollback_executes_when_the_second_approver_signs(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    created = client.post("/api/v1/change-requests", json=dict(ROLLBACK, alert_id=17), headers=auth(keys["qa"]))
    assert created.status_code == 201, created.text
    request = created.json()
    assert (request["status"], request["from_version"], request["target_version"]) == ("pending", "2.0.0", "1.0.0")
    assert request["approvals_required"] == 2 and request["alert_id"] == 17 and request["requested_by"] == "qa"

    first = decide(client, keys, request["id"], "approver-a", approve())
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["approvals"]) == ("pending", 1)
    assert active(client, keys) == "2.0.0"

    second = decide(client, keys, request["id"], "approver-b", approve("approved: roll back until fixed"))
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "executed" and second.json()["executed_at"] is not None
    assert active(client, keys) == "1.0.0"

    history = client.get("/api/v1/models/ich-ct/deployments", headers=auth(keys["viewer"])).json()
    assert [(d["version"], d["change_request_id"]) for d in history] == [("2.0.0", None), ("1.0.0", request["id"])]
    assert f"change request #{request['id']}" in history[-1]["reason"] and history[-1]["activated_by"] == "approver-b"

    shown = client.get(f"/api/v1/change-requests/{request['id']}", headers=auth(keys["viewer"])).json()
    assert shown["deployment_id"] is not None
    signatures = shown["signatures"]
    assert [(s["printed_name"], s["meaning"], s["decision"]) for s in signatures] == [
        ("Dr. Ada Approver", "approved for clinical use", "approve"),
        ("Dr. Ben Approver", "approved: roll back until fixed", "approve"),
    ]
    for signature in signatures:
        assert signature["bound"] and signature["request_hash"] == shown["request_hash"]
        assert datetime.fromisoformat(signature["signed_at"]).utcoffset() == timedelta(0)
        assert signature["printed_name"] in signature["manifestation"] and "UTC" in signature["manifestation"]
    assert "password" not in str(shown)
    executed = events(session, "change_request.execute")
    assert len(executed) == 1 and executed[0].after["active_version"] == "1.0.0"
    assert executed[0].before == {"status": "approved", "active_version": "2.0.0"}


def test_promotion_to_a_newer_version(client: TestClient, keys: dict[str, str], session: Session) -> None:
    make_version(session, version="3.0.0")
    body = {"model": "ich-ct", "kind": "promotion", "target_version": "3.0.0", "reason": "validated at all sites"}
    request_id = file_request(client, keys, body, by="admin")
    for who in ("approver-a", "approver-b"):
        assert decide(client, keys, request_id, who, approve()).status_code == 200
    assert active(client, keys) == "3.0.0"


def test_the_requester_may_not_approve_their_own_request(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    request_id = file_request(client, keys, by="admin")
    answer = decide(client, keys, request_id, "admin", approve())
    assert answer.status_code == 403
    assert "you requested" in answer.json()["error"]["message"] and "two-person" in answer.json()["error"]["message"]
    assert session.execute(select(func.count()).select_from(Signature)).scalar_one() == 0


def test_a_second_signature_by_the_same_approver_is_refused(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    request_id = file_request(client, keys)
    assert decide(client, keys, request_id, "approver-a", approve()).status_code == 200
    again = decide(client, keys, request_id, "approver-a", approve())
    assert again.status_code == 409 and "already signed" in again.json()["error"]["message"]
    shown = client.get(f"/api/v1/change-requests/{request_id}", headers=auth(keys["viewer"])).json()
    assert (shown["status"], shown["approvals"]) == ("pending", 1)
    assert active(client, keys) == "2.0.0"


def test_one_rejection_rejects(client: TestClient, keys: dict[str, str], session: Session) -> None:
    request_id = file_request(client, keys)
    assert decide(client, keys, request_id, "approver-a", approve()).status_code == 200
    rejected = decide(
        client,
        keys,
        request_id,
        "approver-b",
        {"decision": "reject", "meaning": "rejected", "password": PASSWORD, "comment": "wait for the site audit"},
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    late = decide(client, keys, request_id, "approver-c", approve())
    assert late.status_code == 409 and "rejected" in late.json()["error"]["message"]
    assert active(client, keys) == "2.0.0"
    (event,) = events(session, "change_request.reject")
    assert event.actor == "approver-b" and event.reason == "wait for the site audit"
    assert event.before == {"status": "pending", "approvals": 1} and event.after["status"] == "rejected"
    # The model is free for a new request once this one is decided.
    assert client.post("/api/v1/change-requests", json=ROLLBACK, headers=auth(keys["qa"])).status_code == 201


def test_expired_requests_read_as_expired_and_refuse_decisions(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    policy = client.put(
        "/api/v1/models/ich-ct/policy",
        json={"change_request_ttl_hours": 1, "approvals_required": 3},
        headers=auth(keys["admin"]),  # the quorum is an admin's to change
    )
    assert policy.status_code == 200, policy.text
    request = client.post("/api/v1/change-requests", json=ROLLBACK, headers=auth(keys["qa"])).json()
    requested_at, expires_at = (datetime.fromisoformat(request[k]) for k in ("requested_at", "expires_at"))
    assert expires_at - requested_at == timedelta(hours=1) and request["approvals_required"] == 3

    session.execute(
        update(ChangeRequest)
        .where(ChangeRequest.id == request["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    )
    viewer = auth(keys["viewer"])
    assert client.get(f"/api/v1/change-requests/{request['id']}", headers=viewer).json()["status"] == "expired"
    assert client.get("/api/v1/change-requests", params={"status": "pending"}, headers=viewer).json() == []
    assert [
        r["id"] for r in client.get("/api/v1/change-requests", params={"status": "expired"}, headers=viewer).json()
    ] == [request["id"]]

    answer = decide(client, keys, request["id"], "approver-a", approve())
    assert answer.status_code == 409 and "expired" in answer.json()["error"]["message"]
    # The refusal rolled back the request, but the expiry it noticed was committed and audited.
    assert session.get(ChangeRequest, request["id"]).status == "expired"  # type: ignore[union-attr]
    (event,) = events(session, "change_request.expire")
    assert event.actor == "system" and "approver-a" in (event.reason or "")
    assert session.execute(select(func.count()).select_from(Signature)).scalar_one() == 0
    assert active(client, keys) == "2.0.0"
    assert client.post("/api/v1/change-requests", json=ROLLBACK, headers=auth(keys["qa"])).status_code == 201


def test_expire_due_marks_overdue_requests_once(client: TestClient, keys: dict[str, str], session: Session) -> None:
    request_id = file_request(client, keys)
    assert changes.expire_due(session=session, now=datetime.now(UTC) + timedelta(hours=71)) == []
    expired = changes.expire_due(session=session, now=datetime.now(UTC) + timedelta(hours=73))
    assert [r.id for r in expired] == [request_id] and expired[0].status == "expired"
    assert changes.expire_due(session=session, now=datetime.now(UTC) + timedelta(hours=74)) == []
    (event,) = events(session, "change_request.expire")
    assert event.before["status"] == "pending" and event.after["status"] == "expired"


def test_wrong_password_is_refused_and_the_failure_is_on_record(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    request_id = file_request(client, keys)
    answer = decide(client, keys, request_id, "approver-a", approve(password="not my password"))
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "signature_refused" and "does not match" in error["message"]
    assert "4 more wrong passwords lock signing" in error["message"]
    (failure,) = events(session, "signature.failed")
    assert (failure.actor, failure.entity_id, failure.reason) == ("approver-a", "approver-a", "wrong password")
    assert failure.after["purpose"] == f"change_request:{request_id}" and failure.after["failures_in_window"] == 1
    shown = client.get(f"/api/v1/change-requests/{request_id}", headers=auth(keys["viewer"])).json()
    assert (shown["approvals"], shown["signatures"]) == (0, [])
    verify = client.get("/api/v1/audit/verify", headers=auth(keys["viewer"])).json()
    assert verify["ok"], verify


def test_five_wrong_passwords_lock_signing(client: TestClient, keys: dict[str, str], session: Session) -> None:
    request_id = file_request(client, keys)
    statuses = [
        decide(client, keys, request_id, "approver-a", approve(password=f"guess-{i}")).status_code for i in range(5)
    ]
    assert statuses == [403, 403, 403, 403, 423]

    locked = decide(client, keys, request_id, "approver-a", approve())  # the right password, too late
    assert locked.status_code == 423
    message = locked.json()["error"]["message"]
    assert "signing is locked for 'approver-a' until" in message and "UTC" in message
    assert len(events(session, "signature.failed")) == 6
    # Another approver is not affected.
    assert decide(client, keys, request_id, "approver-b", approve()).status_code == 200

    # When the lockout has passed the approver can sign again.
    from monitor.auth.models import User

    session.execute(
        update(User)
        .where(User.username == "approver-a")
        .values(signing_locked_until=datetime.now(UTC) - timedelta(seconds=1))
    )
    assert decide(client, keys, request_id, "approver-a", approve()).json()["status"] == "executed"


def test_signatures_stay_bound_to_the_content_they_signed(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    request_id = file_request(client, keys)
    assert decide(client, keys, request_id, "approver-a", approve()).status_code == 200
    # Someone with database access rewrites the reason after the signature.
    session.execute(update(ChangeRequest).where(ChangeRequest.id == request_id).values(reason="routine update"))
    shown = client.get(f"/api/v1/change-requests/{request_id}", headers=auth(keys["viewer"])).json()
    assert shown["signatures"][0]["bound"] is False
    assert shown["signatures"][0]["request_hash"] != shown["request_hash"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (dict(ROLLBACK, target_version="2.0.0"), 422, "already the active version"),
        (dict(ROLLBACK, kind="promotion"), 422, "request a rollback instead"),
        (dict(ROLLBACK, target_version="3.0.0"), 422, "request a promotion instead"),
        (dict(ROLLBACK, target_version="9.9.9"), 404, "no version '9.9.9'"),
        (dict(ROLLBACK, model="nope"), 404, "unknown model"),
        (dict(ROLLBACK, reason="   "), 422, "reason"),
        (dict(ROLLBACK, kind="sideways"), 422, "kind"),
    ],
)
def test_requests_that_cannot_be_right_are_refused_with_a_reason(
    client: TestClient, keys: dict[str, str], session: Session, body: dict[str, object], status: int, words: str
) -> None:
    make_version(session, version="3.0.0")
    answer = client.post("/api/v1/change-requests", json=body, headers=auth(keys["qa"]))
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]["message"]


def test_one_pending_request_per_model(client: TestClient, keys: dict[str, str], session: Session) -> None:
    first = file_request(client, keys)
    second = client.post("/api/v1/change-requests", json=ROLLBACK, headers=auth(keys["admin"]))
    assert second.status_code == 409
    assert f"pending change request (#{first})" in second.json()["error"]["message"]


def test_a_model_without_an_active_version_has_nothing_to_change(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    make_model(session, name="ptx-cxr", display_name="Pneumothorax")
    make_version(session, model="ptx-cxr", version="1.0.0")
    body = dict(ROLLBACK, model="ptx-cxr", kind="promotion")
    answer = client.post("/api/v1/change-requests", json=body, headers=auth(keys["qa"]))
    assert answer.status_code == 409 and "no active version" in answer.json()["error"]["message"]


def test_listing_filters_by_status_and_model(client: TestClient, keys: dict[str, str], session: Session) -> None:
    make_model(session, name="ptx-cxr", display_name="Pneumothorax")
    make_version(session, model="ptx-cxr", version="1.0.0")
    make_version(session, model="ptx-cxr", version="1.1.0", activate=True)
    mine = file_request(client, keys)
    other = file_request(client, keys, dict(ROLLBACK, model="ptx-cxr"))
    decide(client, keys, other, "approver-a", {"decision": "reject", "meaning": "rejected", "password": PASSWORD})
    viewer = auth(keys["viewer"])
    listed = client.get("/api/v1/change-requests", headers=viewer).json()
    assert [r["id"] for r in listed] == [other, mine]
    pending = client.get("/api/v1/change-requests", params={"status": "pending"}, headers=viewer).json()
    assert [r["id"] for r in pending] == [mine]
    by_model = client.get("/api/v1/change-requests", params={"model": "ptx-cxr"}, headers=viewer).json()
    assert [(r["id"], r["status"]) for r in by_model] == [(other, "rejected")]
    assert client.get("/api/v1/change-requests", params={"status": "maybe"}, headers=viewer).status_code == 422
    assert client.get("/api/v1/change-requests/99999", headers=viewer).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/api/v1/change-requests", {"qa", "admin"}),
        ("get", "/api/v1/change-requests", {"viewer", "qa", "approver-a", "admin"}),
        ("get", "/api/v1/change-requests/{id}", {"viewer", "qa", "approver-a", "admin"}),
        ("post", "/api/v1/change-requests/{id}/decision", {"approver-a", "admin"}),
        ("get", "/api/v1/models/ich-ct/version-mismatches", {"viewer", "qa", "approver-a", "admin"}),
    ],
)
def test_change_request_routes_authenticate_and_authorize(
    client: TestClient, keys: dict[str, str], session: Session, method: str, path: str, allowed: set[str]
) -> None:
    request_id = changes.request_change(
        session=session,
        actor=SYSTEM,
        data=ChangeRequestCreate(model="ich-ct", kind="rollback", target_version="1.0.0", reason="test"),
    ).id
    path = path.format(id=request_id)
    body = {"/api/v1/change-requests": dict(ROLLBACK, model="nope")}.get(path, approve())
    call = getattr(client, method)
    kwargs = {"json": body} if method == "post" else {}
    assert call(path, **kwargs).status_code == 401
    for who in ("ingest", "viewer", "qa", "approver-a", "admin"):
        status = call(path, headers=auth(keys[who]), **kwargs).status_code
        if who in allowed:
            assert status not in (401, 403), (who, status)
        else:
            assert status == 403, (who, status)


def test_deployment_history_answers_which_version_was_live_at_an_instant(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    request_id = file_request(client, keys)
    for who in ("approver-a", "approver-b"):
        decide(client, keys, request_id, who, approve())
    history = client.get("/api/v1/models/ich-ct/deployments", headers=auth(keys["viewer"])).json()
    first, second = (datetime.fromisoformat(d["activated_at"]) for d in history)

    def live_at(instant: datetime):  # type: ignore[no-untyped-def]
        return client.get(
            "/api/v1/models/ich-ct/deployments", params={"at": instant.isoformat()}, headers=auth(keys["viewer"])
        )

    before = live_at(first - timedelta(seconds=1))
    assert before.status_code == 404 and "no active version" in before.json()["error"]["message"]
    assert live_at(first).json()["version"] == "2.0.0"
    assert live_at(second - timedelta(microseconds=1)).json()["version"] == "2.0.0"
    at_second = live_at(second).json()
    assert (at_second["version"], at_second["change_request_id"]) == ("1.0.0", request_id)
    assert live_at(second + timedelta(days=400)).json()["version"] == "1.0.0"
    naive = client.get(
        "/api/v1/models/ich-ct/deployments", params={"at": "2026-11-02T08:00:00"}, headers=auth(keys["viewer"])
    )
    assert naive.status_code == 422 and "timezone" in naive.json()["error"]["message"]


def test_version_mismatches_count_inferences_against_the_version_live_when_they_occurred(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    model_id = session.execute(select(Deployment.model_id)).scalar_one()
    ids = dict(session.execute(select(ModelVersion.version, ModelVersion.id)).tuples().all())
    v1, v2 = ids["1.0.0"], ids["2.0.0"]
    start = datetime(2026, 10, 1, tzinfo=UTC)
    # The live history: 2.0.0 from Oct 1, then 1.0.0 from Oct 11.
    session.execute(update(Deployment).values(activated_at=start))
    session.execute(
        insert(Deployment).values(
            model_id=model_id, version_id=v1, activated_at=start + timedelta(days=10), activated_by="t", reason=""
        )
    )
    rows = [
        (v2, start - timedelta(days=1)),  # before any deployment
        (v2, start + timedelta(days=1)),  # matches
        (v1, start + timedelta(days=2)),  # 1.0.0 reported while 2.0.0 was live
        (v1, start + timedelta(days=2, hours=1)),
        (v1, start + timedelta(days=10)),  # matches, from the switch's first instant
        (v2, start + timedelta(days=12)),  # a client still on 2.0.0
    ]
    session.execute(
        insert(Inference),
        [
            {
                "model_id": model_id,
                "version_id": version_id,
                "inference_id": f"i{n}",
                "occurred_at": at,
                "received_at": at,
                "score": 0.5,
                "prediction": 1,
                "features": {},
                "content_hash": "0" * 64,
            }
            for n, (version_id, at) in enumerate(rows)
        ],
    )
    report = client.get("/api/v1/models/ich-ct/version-mismatches", headers=auth(keys["viewer"])).json()
    assert (report["inferences"], report["mismatched"]) == (6, 4)
    assert [(m["reported_version"], m["active_version"], m["count"]) for m in report["mismatches"]] == [
        ("1.0.0", "2.0.0", 2),
        ("2.0.0", None, 1),
        ("2.0.0", "1.0.0", 1),
    ]
    window = {"since": start.isoformat(), "until": (start + timedelta(days=10)).isoformat()}
    windowed = client.get(
        "/api/v1/models/ich-ct/version-mismatches", params=window, headers=auth(keys["viewer"])
    ).json()
    assert (windowed["inferences"], windowed["mismatched"]) == (3, 2)
