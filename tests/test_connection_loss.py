"""Issue 14 finding 7: PostgreSQL backends terminated mid-ingest answer 503 with Retry-After
(never 500 PendingRollbackError), and the pool recovers so that the retry succeeds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from monitor.auth import service as auth_service
from monitor.db import Database
from monitor.ingest.models import Inference
from tests.dashboard.conftest import dashboard_client, sign_in  # noqa: F401  (dashboard_client is a fixture)
from tests.factories import auth, make_user
from tests.live_server import LiveServer, needs_ingest, seed_ingest


def _batch(prefix: str, n: int = 50) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "records": [
            {
                "model": "ich-ct",
                "version": "2.1.0",
                "inference_id": f"{prefix}-{i}",
                "occurred_at": (now - timedelta(minutes=i)).isoformat(),
                "score": 0.3,
                "prediction": 0,
                "features": {"kvp": 120},
            }
            for i in range(n)
        ]
    }


@pytest.fixture
def server(fresh_database: Database, tmp_path: Path) -> Iterator[LiveServer]:
    if fresh_database.dialect != "postgresql":
        pytest.skip("terminates PostgreSQL backends")
    live = LiveServer(fresh_database.url, tmp_path)
    live.start(timeout=120)
    try:
        yield live
    finally:
        live.stop()


def _app_backends(database: Database, admin: Any) -> list[int]:
    return list(
        admin.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        ).scalars()
    )


@needs_ingest
def test_terminated_backends_answer_503_with_retry_after_and_the_retry_succeeds(
    server: LiveServer, fresh_database: Database
) -> None:
    key = seed_ingest(fresh_database)
    headers = auth(key)
    assert httpx.post(f"{server.url}/api/v1/inferences", json=_batch("warm"), headers=headers).status_code == 200
    answers: list[httpx.Response] = []

    with fresh_database.engine.connect() as admin:
        # Hold the API's insert at a lock, so its transaction is in flight when its backend dies.
        locking = admin.begin()
        admin.execute(text("LOCK TABLE inferences IN SHARE MODE"))
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{server.url}/api/v1/inferences", json=_batch("cut"), headers=headers, timeout=60)
            )
        )
        request.start()
        deadline = time.monotonic() + 20
        while not admin.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one():
            assert time.monotonic() < deadline, "the ingest request never reached the locked table"
            time.sleep(0.05)
        for pid in _app_backends(fresh_database, admin):
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        locking.rollback()
        request.join(60)

    [cut] = answers
    assert cut.status_code == 503, cut.text
    assert cut.headers["Retry-After"].isdigit() and cut.json()["error"]["code"] in ("unavailable", "not_committed")

    # The pool has replaced the dead connections: the retry, and everything after it, succeeds.
    time.sleep(int(cut.headers["Retry-After"]))
    retry = httpx.post(f"{server.url}/api/v1/inferences", json=_batch("cut"), headers=headers, timeout=60)
    assert retry.status_code == 200 and retry.json()["accepted"] == 50, retry.text
    for attempt in range(5):
        answer = httpx.post(f"{server.url}/api/v1/inferences", json=_batch(f"after-{attempt}"), headers=headers)
        assert answer.status_code == 200, answer.text
    with fresh_database.transaction() as session:
        stored = session.scalar(select(func.count()).select_from(Inference).where(Inference.inference_id.like("cut-%")))
    assert stored == 50


def test_the_dashboard_answers_a_lost_connection_with_503_and_retry_after(
    dashboard_client: TestClient,  # noqa: F811
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_user(session, role="qa", username="quinn")
    assert sign_in(dashboard_client, "quinn").status_code in (302, 303)

    def lost(**_: object) -> None:
        raise sa_exc.OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(auth_service, "session_actor", lost)  # the guard looks the session up first
    answer = dashboard_client.get("/dashboard/")

    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.json()["error"]["code"] == "unavailable"
