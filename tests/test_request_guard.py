"""Requests refused before any route runs: NUL characters in filters, oversized bodies."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import auth, make_keys


def test_a_nul_character_in_a_filter_is_a_clear_422_not_a_server_error(client: TestClient, session: Session) -> None:
    key = make_keys(session)["admin"]
    for path in ("/api/v1/audit?actor=a%00b", "/api/v1/audit/export.csv?action=%00", "/api/v1/models/ich%00ct"):
        answer = client.get(path, headers=auth(key))
        assert answer.status_code == 422, (path, answer.text)
        assert "NUL" in answer.json()["error"]["message"]


def test_a_body_over_the_limit_is_413_with_the_limit(client: TestClient, session: Session) -> None:
    key = make_keys(session)["ingest"]
    answer = client.post(
        "/api/v1/inferences", content=b'{"records": [' + b" " * (17 * 1024 * 1024) + b"]}", headers=auth(key)
    )
    assert answer.status_code == 413
    assert "exceeds" in answer.json()["error"]["message"]
