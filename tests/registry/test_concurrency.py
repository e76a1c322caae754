"""Simultaneous approvals, with real commits: the quorum is counted once and the change executes once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from monitor.audit.models import AuditEvent
from monitor.db import Database
from monitor.registry import changes
from monitor.registry.models import ChangeRequest, Deployment
from tests.factories import PASSWORD, auth

ROLLBACK = {"model": "ich-ct", "kind": "rollback", "target_version": "1.0.0", "reason": "sensitivity breach"}
APPROVE = {"decision": "approve", "meaning": "approved", "password": PASSWORD}


@pytest.fixture
def keys(live_keys: dict[str, str]) -> dict[str, str]:
    return live_keys


@pytest.fixture
def app_client(live_client: Callable[..., TestClient]) -> TestClient:
    return live_client()


@pytest.fixture(autouse=True)
def slow_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold each signer between counting the approvals and committing for a moment, so
    without the row lock both would count before either commits: the race is certain
    rather than lucky."""
    count = changes._approval_count

    def counted_slowly(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = count(*args, **kwargs)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(changes, "_approval_count", counted_slowly)


def approve_together(client: TestClient, keys: dict[str, str], request_id: int, signers: list[str]) -> dict[str, int]:
    """Each signer approves from their own thread, released at the same instant."""
    barrier = threading.Barrier(len(signers))
    statuses: dict[str, int] = {}

    def sign(who: str) -> None:
        barrier.wait()
        answer = client.post(f"/api/v1/change-requests/{request_id}/decision", json=APPROVE, headers=auth(keys[who]))
        statuses[who] = answer.status_code

    threads = [threading.Thread(target=sign, args=(who,)) for who in signers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(statuses) == len(signers), "a signer's request did not finish"
    return statuses


def outcome(database: Database, request_id: int) -> tuple[str, int, int]:
    """(status, deployments naming the request, execute events) as committed."""
    with database.transaction() as session:
        status = session.get(ChangeRequest, request_id).status  # type: ignore[union-attr]
        deployments = session.execute(
            select(func.count()).select_from(Deployment).where(Deployment.change_request_id == request_id)
        ).scalar_one()
        executions = session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "change_request.execute")
        ).scalar_one()
    return status, deployments, executions


def file_request(client: TestClient, keys: dict[str, str]) -> int:
    answer = client.post("/api/v1/change-requests", json=ROLLBACK, headers=auth(keys["qa"]))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def test_two_approvers_signing_at_once_both_count_and_the_change_executes_once(
    app_client: TestClient, keys: dict[str, str], fresh_database: Database
) -> None:
    request_id = file_request(app_client, keys)
    statuses = approve_together(app_client, keys, request_id, ["approver-a", "approver-b"])
    assert statuses == {"approver-a": 200, "approver-b": 200}
    assert outcome(fresh_database, request_id) == ("executed", 1, 1)
    assert app_client.get("/api/v1/models/ich-ct/active", headers=auth(keys["viewer"])).json()["version"] == "1.0.0"
    assert app_client.get("/api/v1/audit/verify", headers=auth(keys["viewer"])).json()["ok"]


def test_the_last_two_approvals_racing_execute_the_change_once(
    app_client: TestClient, keys: dict[str, str], fresh_database: Database
) -> None:
    request_id = file_request(app_client, keys)
    first = app_client.post(
        f"/api/v1/change-requests/{request_id}/decision", json=APPROVE, headers=auth(keys["approver-a"])
    )
    assert first.status_code == 200, first.text
    statuses = approve_together(app_client, keys, request_id, ["approver-b", "approver-c"])
    assert sorted(statuses.values()) == [200, 409], statuses
    assert outcome(fresh_database, request_id) == ("executed", 1, 1)
    history = app_client.get("/api/v1/models/ich-ct/deployments", headers=auth(keys["viewer"])).json()
    assert [d["version"] for d in history] == ["2.0.0", "1.0.0"]
    assert app_client.get("/api/v1/audit/verify", headers=auth(keys["viewer"])).json()["ok"]
