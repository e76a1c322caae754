"""Shared records and fixtures for the ingest tests."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.ingest.group_commit import GroupCommit, ingest_commit
from monitor.registry.models import Model
from tests.factories import make_keys, make_model, make_user, make_version

# The `settings` fixture's key: the API pseudonymizes with it, so service-level tests use it too.
PSEUDONYM_KEY = "test-pseudonym-key-0123456789"


def inference(number: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid ich-ct 2.1.0 inference record; `number` makes its id and study key unique."""
    record = {
        "model": "ich-ct",
        "version": "2.1.0",
        "inference_id": f"inf-{number:05d}",
        "occurred_at": "2026-11-02T08:14:05Z",
        "study_key": f"ACC{number:08d}",
        "score": 0.87,
        "prediction": 1,
        "latency_ms": 412,
        "features": {
            "site": "north",
            "manufacturer": "GE MEDICAL SYSTEMS",
            "kvp": 120,
            "slice_thickness": 2.5,
            "patient_sex": "F",
            "age_band": "60-69",
            "mean_hu": 31.2,
        },
    }
    record.update(overrides)
    return record


def outcome(inference_id: str | None = "inf-00000", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "model": "ich-ct",
        "label": 1,
        "source": "consensus_read",
        "confirmed_at": "2026-11-09T10:00:00Z",
    }
    if inference_id is not None:
        record["inference_id"] = inference_id
    record.update(overrides)
    return record


@pytest.fixture
def ich(session: Session) -> Model:
    """Model ich-ct with versions 2.1.0 (active) and 2.2.0."""
    model = make_model(session)
    make_version(session, version="2.1.0", activate=True)
    make_version(session, version="2.2.0")
    return model


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    return make_keys(session)


@pytest.fixture
def ingest_key(session: Session) -> str:
    """An ingest service account's key (cheaper than `keys`: one password hash, not five)."""
    return make_user(session, role="ingest")[1]


@pytest.fixture
def client(client: TestClient, session: Session) -> TestClient:
    """The API client of tests/conftest.py, with the ingest group committing in the test's session.

    The group otherwise opens its own sessions, which would not see (or, on SQLite, would wait
    for) the test's transaction; tests/ingest/test_group_commit.py covers those with real commits."""

    def group_session() -> AbstractContextManager[Session]:
        session.commit()  # what the test set up before the request counts as committed
        return nullcontext(session)

    committer = GroupCommit(group_session)
    client.app.dependency_overrides[ingest_commit] = lambda: committer
    return client
