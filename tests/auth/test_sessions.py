"""Issue 14 finding 5, dashboard side: server-side sessions (logout, password change, disable,
idle timeout), throttled sign-in answers, and over-long input answered 400."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import auth
from monitor.audit.models import AuditEvent
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.auth.models import UserSession
from tests.dashboard.conftest import SAME_ORIGIN, callback_headers, sign_in
from tests.factories import make_user

NEW_PASSWORD = "a different long passphrase"


def logout(client: TestClient) -> None:
    token = callback_headers(client)["X-CSRFToken"]
    client.post("/dashboard/logout", data={"csrf_token": token}, headers=SAME_ORIGIN, follow_redirects=False)


def signed_in(client: TestClient, session: Session, username: str = "vera") -> str:
    """Sign in and return the session cookie's value, as an attacker who copied it would hold it."""
    make_user(session, role="viewer", username=username)
    assert sign_in(client, username).status_code == 302
    cookie = client.cookies.get(auth.SESSION_COOKIE)
    assert cookie
    return cookie


def replay(client: TestClient, cookie: str) -> tuple[int, int]:
    """A page and a Dash request sent with the stolen cookie: (page status, Dash status)."""
    client.cookies.clear()
    client.cookies.set(auth.SESSION_COOKIE, cookie, path="/dashboard/")
    page = client.get("/dashboard/", follow_redirects=False).status_code
    dash = client.get("/dashboard/_dash-layout").status_code
    return page, dash


def test_a_cookie_replayed_after_logout_gets_the_login_page(dashboard_client: TestClient, session: Session) -> None:
    cookie = signed_in(dashboard_client, session)
    assert replay(dashboard_client, cookie) == (200, 200)

    logout(dashboard_client)

    assert replay(dashboard_client, cookie) == (302, 401)
    [row] = session.execute(select(UserSession)).scalars()
    assert row.revoked_reason == "logout"
    assert [
        e.actor for e in session.execute(select(AuditEvent).where(AuditEvent.action == "auth.logout")).scalars()
    ] == ["vera"]


def test_the_cookie_holds_no_username_only_a_token_stored_hashed(
    dashboard_client: TestClient, session: Session
) -> None:
    signed_in(dashboard_client, session)
    [row] = session.execute(select(UserSession)).scalars()
    assert len(row.token_hash) == 64 and row.revoked_at is None


def test_a_password_change_ends_every_open_session(dashboard_client: TestClient, session: Session) -> None:
    cookie = signed_in(dashboard_client, session)

    auth_service.change_password(session=session, actor=SYSTEM, username="vera", password=NEW_PASSWORD)

    assert replay(dashboard_client, cookie) == (302, 401)
    dashboard_client.cookies.clear()
    assert sign_in(dashboard_client, "vera", NEW_PASSWORD).status_code == 302


def test_disabling_a_user_revokes_their_sessions(dashboard_client: TestClient, session: Session) -> None:
    cookie = signed_in(dashboard_client, session)

    auth_service.disable_user(session=session, actor=SYSTEM, username="vera")

    assert replay(dashboard_client, cookie) == (302, 401)
    assert session.execute(select(UserSession.revoked_reason)).scalar_one() == "user disabled"


def test_an_idle_session_ends(dashboard_client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    signed_in(dashboard_client, session)
    start = auth.time.time()
    monkeypatch.setattr(auth.time, "time", lambda: start + 29 * 60)
    assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 200
    monkeypatch.setattr(auth.time, "time", lambda: start + 29 * 60 + 31 * 60)  # 31 minutes after the last use

    assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 302
    assert session.execute(select(UserSession.revoked_reason)).scalar_one() == "idle timeout"


def test_repeated_failures_answer_429_with_retry_after(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    answers = [sign_in(dashboard_client, "vera", f"guess-{n}") for n in range(5)]

    # Three free failures; the fourth is answered with the wait it causes, the fifth is not read.
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert "Invalid username or password." in answers[2].text
    assert answers[3].headers["Retry-After"] == "2"
    assert "Too many failed sign-ins: wait 2 seconds" in answers[3].text
    assert sign_in(dashboard_client, "vera").status_code == 429, "the right password waits too"


def test_a_locked_account_says_so_and_an_admin_unlock_lets_the_user_in(
    dashboard_client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(session, role="viewer", username="vera")
    start = auth.time.time()
    for n in range(10):  # each guess after the delay has passed
        monkeypatch.setattr(auth.time, "time", lambda n=n: start + n * 61)
        sign_in(dashboard_client, "vera", f"guess-{n}")

    locked = sign_in(dashboard_client, "vera")
    assert locked.status_code == 429 and "this account is locked until" in locked.text

    auth_service.unlock_login(session=session, actor=SYSTEM, username="vera")
    assert sign_in(dashboard_client, "vera").status_code == 302


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("v" * 65, "whatever password", "username must be at most 64 characters"),
        ("vera", "p" * 1025, "password must be at most 1024 characters"),
    ],
    ids=["65-char-username", "huge-password"],
)
def test_over_long_sign_in_fields_answer_400_not_500(
    dashboard_client: TestClient, session: Session, username: str, password: str, message: str
) -> None:
    response = sign_in(dashboard_client, username, password)

    assert response.status_code == 400
    assert message in response.text
    assert session.execute(select(AuditEvent).where(AuditEvent.action.like("auth.%"))).first() is None


def test_thirty_wrong_passwords_through_the_sign_in_page_take_over_a_minute(
    dashboard_client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The must-show end to end: a script posting the form, waiting exactly what Retry-After says."""
    make_user(session, role="viewer", username="vera")
    start = clock = auth.time.time()
    monkeypatch.setattr(auth.time, "time", lambda: clock)
    for guess in range(30):
        answer = sign_in(dashboard_client, "vera", f"guess-{guess}")
        assert answer.status_code in (200, 429) and auth.SESSION_COOKIE not in dashboard_client.cookies
        if guess < 29:
            clock += int(answer.headers.get("Retry-After", "0"))
    failures = session.execute(select(AuditEvent).where(AuditEvent.action == "auth.login_failed")).scalars().all()

    assert len(failures) == 30, "each guess was checked, none refused for coming early"
    assert clock - start >= 60
    clock += 61  # past the address's own delay (at most a minute); the account's lock runs 15 minutes
    locked = sign_in(dashboard_client, "vera")
    assert locked.status_code == 429 and "this account is locked" in locked.text, "the right password waits"
    auth_service.unlock_login(session=session, actor=SYSTEM, username="vera")
    assert sign_in(dashboard_client, "vera").status_code == 302
