"""POST /api/v1/users/{username}/unlock: an administrator lifts a sign-in lockout."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth import service as auth_service
from monitor.db import utcnow
from tests.factories import auth, make_keys, make_user


def lock_out(session: Session, username: str) -> None:
    """Ten wrong passwords, each tried as soon as allowed, ending just now: the account is locked."""
    make_user(session, role="viewer", username=username)
    now = utcnow() - timedelta(minutes=2)
    for guess in range(10):
        attempt = auth_service.authenticate_password(
            session=session, username=username, password=f"guess-{guess}", now=now
        )
        now += timedelta(seconds=attempt.retry_after) if guess < 9 else timedelta(0)
    assert attempt.locked_until is not None


def test_unlock_needs_credentials(client: TestClient) -> None:
    response = client.post("/api/v1/users/vera/unlock")
    assert response.status_code == 401


def test_unlock_is_refused_to_every_role_but_admin(client: TestClient, session: Session) -> None:
    keys = make_keys(session)
    lock_out(session, "vera")
    for role in ("ingest", "viewer", "qa", "approver"):
        response = client.post("/api/v1/users/vera/unlock", headers=auth(keys[role]))
        assert response.status_code == 403, role
    assert session.execute(select(AuditEvent).where(AuditEvent.action == "user.unlock_login")).first() is None


def test_admin_unlock_lets_the_user_sign_in_again(client: TestClient, session: Session) -> None:
    keys = make_keys(session)
    lock_out(session, "vera")
    assert (
        auth_service.authenticate_password(session=session, username="vera", password="correct horse battery").actor
        is None
    )

    response = client.post("/api/v1/users/vera/unlock", headers=auth(keys["admin"]))

    assert response.status_code == 200 and response.json() == {"username": "vera", "unlocked": True}
    assert auth_service.authenticate_password(session=session, username="vera", password="correct horse battery").actor
    [event] = session.execute(select(AuditEvent).where(AuditEvent.action == "user.unlock_login")).scalars()
    assert event.actor == "admin-user" and event.entity_id == "vera"


def test_unlock_answers_clearly_for_bad_targets(client: TestClient, session: Session) -> None:
    admin = auth(make_keys(session)["admin"])
    make_user(session, role="viewer", username="vera")

    assert client.post("/api/v1/users/ghost/unlock", headers=admin).status_code == 404
    not_locked = client.post("/api/v1/users/vera/unlock", headers=admin)
    assert not_locked.status_code == 409 and "no failed sign-ins" in not_locked.json()["error"]["message"]
    too_long = client.post(f"/api/v1/users/{'v' * 65}/unlock", headers=admin)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["message"] == "username must be at most 64 characters (got 65)"
