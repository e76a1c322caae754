"""The API on a fresh database with production's request boundary (real commits), seeded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.config import load_settings
from monitor.db import Database, set_database
from monitor.main import create_app
from tests.factories import make_model, make_user, make_version


@pytest.fixture
def live_client(fresh_database: Database, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """live_client(**settings) -> a client whose requests commit like production's."""
    previous = set_database(fresh_database)

    def build(**overrides: object) -> TestClient:
        settings = load_settings(
            database_url=fresh_database.url,
            secret_key="test-secret-key-0123456789",
            outbox_dir=str(tmp_path / "outbox"),
            log_format="text",
            **overrides,
        )
        # Not entered as a context manager: each call then runs on its own event loop
        # thread, so requests from several threads really run at the same time.
        return TestClient(create_app(settings))

    try:
        yield build
    finally:
        set_database(previous)


@pytest.fixture
def live_keys(fresh_database: Database) -> dict[str, str]:
    """Committed: ich-ct with 1.0.0 then 2.0.0 registered, 2.0.0 live; a key per person."""
    with fresh_database.transaction() as session:
        make_model(session)
        make_version(session, version="1.0.0")
        make_version(session, version="2.0.0", activate=True)
        people = {
            "qa": "qa",
            "approver-a": "approver",
            "approver-b": "approver",
            "approver-c": "approver",
            "viewer": "viewer",
        }
        return {name: make_user(session, role=role, username=name)[1] for name, role in people.items()}


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    """ich-ct with 1.0.0 then 2.0.0 registered, 2.0.0 live; a key per person."""
    make_model(session)
    make_version(session, version="1.0.0")
    make_version(session, version="2.0.0", activate=True)
    people = {
        "qa": ("qa", "Quinn Analyst"),
        "approver-a": ("approver", "Dr. Ada Approver"),
        "approver-b": ("approver", "Dr. Ben Approver"),
        "approver-c": ("approver", "Dr. Cy Approver"),
        "admin": ("admin", "Ann Admin"),
        "viewer": ("viewer", "Vic Viewer"),
        "ingest": ("ingest", "Inference Service"),
    }
    return {
        name: make_user(session, role=role, username=name, full_name=full)[1] for name, (role, full) in people.items()
    }
