"""The HMAC-signed webhook to the deployment system, delivered after commit, retried until sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from monitor.audit.models import AuditEvent
from monitor.db import Database, utcnow
from monitor.registry import webhooks
from monitor.registry.models import DeploymentNotification
from tests.factories import PASSWORD, auth

SECRET = "whsec-test-0123456789"
ROLLBACK = {"model": "ich-ct", "kind": "rollback", "target_version": "1.0.0", "reason": "sensitivity breach"}
APPROVE = {"decision": "approve", "meaning": "approved", "password": PASSWORD}


class Receiver:
    """A deployment system stand-in: records each POST, answers `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status < 300 else b"deploy system unavailable")

            def log_message(self, *_args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/radmon-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "RETRY_PAUSE_SECONDS", 0.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def execute_rollback(client: TestClient, keys: dict[str, str]) -> int:
    request_id = int(client.post("/api/v1/change-requests", json=ROLLBACK, headers=auth(keys["qa"])).json()["id"])
    for who in ("approver-a", "approver-b"):
        answer = client.post(f"/api/v1/change-requests/{request_id}/decision", json=APPROVE, headers=auth(keys[who]))
        assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "executed"
    return request_id


def notifications(database: Database) -> list[DeploymentNotification]:
    with database.transaction() as session:
        return list(session.execute(select(DeploymentNotification).order_by(DeploymentNotification.id)).scalars())


def audited(database: Database, action: str) -> list[AuditEvent]:
    with database.transaction() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def test_execution_posts_a_signed_webhook_after_commit(
    live_client: Callable[..., TestClient], live_keys: dict[str, str], fresh_database: Database, receiver: Receiver
) -> None:
    client = live_client(webhook_url=receiver.url, webhook_secret=SECRET)
    request_id = execute_rollback(client, live_keys)

    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    timestamp, signature = (part.split("=", 1)[1] for part in headers["X-Radmon-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    payload = json.loads(body)
    assert (payload["event"], payload["model"], payload["version"], payload["previous_version"]) == (
        "deployment.changed",
        "ich-ct",
        "1.0.0",
        "2.0.0",
    )
    assert payload["change_request"]["id"] == request_id and payload["artifact_sha256"]
    (notification,) = notifications(fresh_database)
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert headers["X-Radmon-Delivery"] == str(notification.id)
    assert len(audited(fresh_database, "webhook.sent")) == 1


def test_no_webhook_is_recorded_when_none_is_configured(
    live_client: Callable[..., TestClient], live_keys: dict[str, str], fresh_database: Database
) -> None:
    execute_rollback(live_client(), live_keys)
    assert notifications(fresh_database) == []


def test_a_failed_delivery_stays_pending_and_a_later_run_sends_it(
    live_client: Callable[..., TestClient], live_keys: dict[str, str], fresh_database: Database, receiver: Receiver
) -> None:
    receiver.status = 503
    execute_rollback(live_client(webhook_url=receiver.url, webhook_secret=SECRET), live_keys)
    (notification,) = notifications(fresh_database)
    assert (notification.status, notification.attempts) == ("pending", 3)
    assert notification.last_error is not None and "HTTP 503" in notification.last_error
    assert len(receiver.received) == 3

    # Not due yet: nothing is sent.
    assert webhooks.deliver_due(secret=SECRET, database=fresh_database) == {}
    receiver.status = 200
    later = utcnow() + timedelta(hours=2)
    assert webhooks.deliver_due(secret=SECRET, database=fresh_database, now=later) == {"sent": 1}
    (notification,) = notifications(fresh_database)
    assert (notification.status, notification.attempts, notification.last_error) == ("sent", 4, None)
    # The receiver de-duplicates on the delivery id: every attempt carried the same one.
    assert {headers["X-Radmon-Delivery"] for headers, _ in receiver.received} == {str(notification.id)}


def test_delivery_gives_up_after_the_last_attempt_and_says_so(
    live_client: Callable[..., TestClient], live_keys: dict[str, str], fresh_database: Database, receiver: Receiver
) -> None:
    receiver.status = 500
    execute_rollback(live_client(webhook_url=receiver.url, webhook_secret=SECRET), live_keys)
    (notification,) = notifications(fresh_database)
    with fresh_database.transaction() as session:
        session.get(DeploymentNotification, notification.id).attempts = webhooks.MAX_ATTEMPTS - 1  # type: ignore[union-attr]
    assert (
        webhooks.deliver(notification_id=notification.id, secret=SECRET, database=fresh_database, tries=1) == "failed"
    )
    (event,) = audited(fresh_database, "webhook.failed")
    assert "HTTP 500" in (event.reason or "")


def test_without_a_secret_nothing_unsigned_is_sent(
    live_client: Callable[..., TestClient], live_keys: dict[str, str], fresh_database: Database, receiver: Receiver
) -> None:
    execute_rollback(live_client(webhook_url=receiver.url, webhook_secret=""), live_keys)
    assert receiver.received == []
    (notification,) = notifications(fresh_database)
    assert notification.status == "pending" and "WEBHOOK_SECRET" in (notification.last_error or "")


def test_the_housekeeping_jobs_expire_requests_and_retry_webhooks(
    live_client: Callable[..., TestClient], live_keys: dict[str, str], fresh_database: Database, receiver: Receiver
) -> None:
    from monitor.config import load_settings
    from monitor.registry import jobs

    client = live_client(webhook_url=receiver.url, webhook_secret=SECRET)
    request_id = int(client.post("/api/v1/change-requests", json=ROLLBACK, headers=auth(live_keys["qa"])).json()["id"])
    assert jobs.expire_change_requests(database=fresh_database) == []
    assert jobs.expire_change_requests(database=fresh_database, now=utcnow() + timedelta(hours=73)) == [request_id]
    assert len(audited(fresh_database, "change_request.expire")) == 1

    receiver.status = 502
    execute_rollback(client, live_keys)
    receiver.status = 200
    settings = load_settings(
        database_url=fresh_database.url, secret_key="test-secret-key-0123456789", webhook_secret=SECRET
    )
    report = jobs.deliver_deployment_webhooks(
        database=fresh_database, settings=settings, now=utcnow() + timedelta(hours=2)
    )
    assert report == {"sent": 1}
