"""A NUL character in a JSON body's text is bad input (422), never a 500: PostgreSQL text cannot
hold it and psycopg2 refuses it before sending (found by tests/test_schemathesis.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import auth, make_keys


def test_a_nul_in_a_body_is_refused_as_bad_input(client: TestClient, session: Session) -> None:
    keys = make_keys(session)

    answer = client.post(
        "/api/v1/checks/run",
        json={"model": "\u0000", "kinds": [], "window_end": "2000-01-01T00:00:00Z"},
        headers=auth(keys["qa"]),
    )

    assert 400 <= answer.status_code < 500, answer.text  # SQLite: no such model (404); PostgreSQL: 422
    if answer.status_code == 422:
        assert "NUL" in answer.json()["error"]["message"]
