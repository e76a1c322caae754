"""Issue 14 finding 6: the requester's role must not set the quorum of their own request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.checks.models import PolicyRecord
from monitor.checks.schemas import MonitoringPolicy
from monitor.db import utcnow
from monitor.registry.models import ChangeRequest, Model
from tests.factories import auth
from tests.registry.test_changes import ROLLBACK, active, approve, decide, file_request


def put_policy(client: TestClient, key: str, **fields: object):  # type: ignore[no-untyped-def]
    return client.put("/api/v1/models/ich-ct/policy", json=fields, headers=auth(key))


def test_the_one_signature_rollback_exploit_is_closed(client: TestClient, keys: dict[str, str]) -> None:
    """qa lowers approvals_required to 1, files a rollback, one approver signs: nothing is deployed."""
    lowered = put_policy(client, keys["qa"], approvals_required=1)
    assert lowered.status_code == 422
    assert "approvals_required must be at least 2" in lowered.json()["error"]["message"]
    assert client.get("/api/v1/models/ich-ct/policy", headers=auth(keys["qa"])).json()["approvals_required"] == 2

    request_id = file_request(client, keys)
    signed = decide(client, keys, request_id, "approver-a", approve())

    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "pending" and signed.json()["approvals"] == 1
    assert active(client, keys) == "2.0.0"


def test_only_an_admin_changes_the_quorum_and_the_change_is_audited(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    raised_by_qa = put_policy(client, keys["qa"], approvals_required=3)
    assert raised_by_qa.status_code == 403
    assert "may not change how many approvals" in raised_by_qa.json()["error"]["message"]
    assert put_policy(client, keys["qa"], window_days=14).status_code == 200  # the rest stays qa's to edit

    assert put_policy(client, keys["admin"], approvals_required=3, window_days=14).status_code == 200
    assert put_policy(client, keys["admin"], approvals_required=1).status_code == 422  # not even an admin

    events = session.execute(select(AuditEvent).where(AuditEvent.action == "policy.quorum_change")).scalars().all()
    assert [(e.actor, e.before, e.after) for e in events] == [
        ("admin", {"approvals_required": 2}, {"approvals_required": 3})
    ]
    assert (
        client.post("/api/v1/change-requests", json=ROLLBACK, headers=auth(keys["qa"])).json()["approvals_required"]
        == 3
    )


def test_a_stored_quorum_below_two_still_needs_two_signatures(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    """A policy saved before the rule (or written behind the API's back) cannot loosen a request."""
    model_id = session.execute(select(Model.id).where(Model.name == "ich-ct")).scalar_one()
    body = MonitoringPolicy(approvals_required=1).model_dump(mode="json")
    session.add(PolicyRecord(model_id=model_id, body=body, updated_at=utcnow(), updated_by="legacy"))
    session.flush()

    request_id = file_request(client, keys)
    decide(client, keys, request_id, "approver-a", approve())

    assert session.get(ChangeRequest, request_id).approvals_required == 2  # type: ignore[union-attr]
    assert active(client, keys) == "2.0.0"
    assert decide(client, keys, request_id, "approver-b", approve()).json()["status"] == "executed"
    assert active(client, keys) == "1.0.0"
