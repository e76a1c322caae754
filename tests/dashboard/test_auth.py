"""Sign-in, sessions, CSRF and server-side role checks of the mounted dashboard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import auth
from dashboard.app import mount_dashboard
from monitor.audit.models import AuditEvent
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.config import Settings
from monitor.db import Database, set_database
from monitor.main import create_app
from monitor.registry.models import Deployment
from tests.dashboard.conftest import (
    BASE_URL,
    SAME_ORIGIN,
    callback_body,
    callback_headers,
    point_transaction_at,
    post_callback,
    sign_in,
)
from tests.factories import make_model, make_user, make_version

ACTIVATE_OUTPUTS = [("versions-activate-feedback", "children"), ("versions-reload", "href")]


def activation_body(model: str = "ich-ct", version: str = "2.1.0", reason: str = "go-live") -> dict:
    return callback_body(
        ACTIVATE_OUTPUTS,
        [("versions-activate-button", "n_clicks", 1)],
        [
            ("versions-model-store", "data", model),
            ("versions-activate-version", "value", version),
            ("versions-activate-reason", "value", reason),
        ],
    )


def events(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()
    )


def test_pages_redirect_to_login_when_signed_out(dashboard_client: TestClient) -> None:
    response = dashboard_client.get("/dashboard/audit?actor=alice", follow_redirects=False)

    assert response.status_code == 302
    assert response.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Faudit%3Factor%3Dalice"
    login = dashboard_client.get(response.headers["location"])
    assert login.status_code == 200
    assert 'name="next" value="/dashboard/audit?actor=alice"' in login.text


def test_dash_endpoints_answer_401_when_signed_out(dashboard_client: TestClient) -> None:
    assert dashboard_client.get("/dashboard/_dash-layout").status_code == 401
    assert dashboard_client.get("/dashboard/_dash-dependencies").status_code == 401
    refused = post_callback(
        dashboard_client, activation_body(), headers={**SAME_ORIGIN, "Content-Type": "application/json"}
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_static_bundles_need_no_session_but_nothing_else_is_public(dashboard_client: TestClient) -> None:
    assert dashboard_client.get("/dashboard/assets/02-radmon.css").status_code == 200
    assert dashboard_client.get("/dashboard/login-anything", follow_redirects=False).status_code == 302


def test_login_sets_a_hardened_session_cookie_and_audits_the_sign_in(
    dashboard_client: TestClient, session: Session
) -> None:
    make_user(session, role="viewer", username="vera")

    response = sign_in(dashboard_client, "vera", next="/dashboard/versions")

    assert response.status_code == 302
    assert response.headers["location"] == "/dashboard/versions"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(auth.SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard/" in cookie
    assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 200
    assert [e.entity_id for e in events(session, "auth.login")] == ["vera"]


def test_wrong_password_is_refused_and_the_failure_is_committed(fresh_database: Database, settings: Settings) -> None:
    """With the production transaction (no test session): the failure event must survive the refusal."""
    with fresh_database.transaction() as setup:
        make_user(setup, role="viewer", username="vera")
    previous = set_database(fresh_database)
    try:
        app = create_app(settings)
        mount_dashboard(app, settings=settings)
        with TestClient(app, base_url=BASE_URL) as client:
            response = sign_in(client, "vera", "not the password")
            assert response.status_code == 200
            assert "Invalid username or password." in response.text
            assert auth.SESSION_COOKIE not in client.cookies
            assert client.get("/dashboard/", follow_redirects=False).status_code == 302
    finally:
        set_database(previous)
    with fresh_database.transaction() as check:
        failures = events(check, "auth.login_failed")
    assert [(e.actor, e.entity_id, e.reason) for e in failures] == [("vera", "vera", "wrong password")]


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(dashboard_client: TestClient, session: Session) -> None:
    response = sign_in(dashboard_client, "nobody", "whatever-password")

    assert "Invalid username or password." in response.text
    assert [e.reason for e in events(session, "auth.login_failed")] == ["unknown user"]


def test_ingest_service_accounts_cannot_use_the_dashboard(dashboard_client: TestClient, session: Session) -> None:
    auth_service.create_user(
        session=session, actor=SYSTEM, username="pacs-bridge", role="ingest", password="long enough pw"
    )

    response = sign_in(dashboard_client, "pacs-bridge", "long enough pw")

    assert "Invalid username or password." in response.text
    assert [e.reason for e in events(session, "auth.login_failed")] == ["role 'ingest' has no dashboard access"]


@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/", "/api/v1/models"])
def test_login_never_redirects_outside_the_dashboard(
    dashboard_client: TestClient, session: Session, target: str
) -> None:
    make_user(session, role="viewer", username="vera")

    response = sign_in(dashboard_client, "vera", next=target)

    assert response.headers["location"] == "/dashboard/"


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Referer": "https://evil.example/form"}, {"Origin": "null"}, {}],
    ids=["foreign-origin", "foreign-referer", "null-origin", "no-origin"],
)
def test_login_posted_from_another_site_is_refused(
    dashboard_client: TestClient, session: Session, headers: dict
) -> None:
    make_user(session, role="viewer", username="vera")

    response = dashboard_client.post(
        "/dashboard/login",
        data={"username": "vera", "password": "correct horse battery"},
        headers=headers,
        follow_redirects=False,
    )

    assert response.status_code == 403
    assert auth.SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert events(session, "auth.login") == []


def test_callbacks_need_same_origin_and_the_csrf_token(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="admin", username="ada")
    make_model(session)
    make_version(session)
    sign_in(dashboard_client, "ada")
    good = callback_headers(dashboard_client)
    assert good["X-CSRFToken"], "the CSRF cookie is set at sign-in"

    foreign = post_callback(dashboard_client, activation_body(), headers={**good, "Origin": "https://evil.example"})
    tokenless = post_callback(
        dashboard_client, activation_body(), headers={**SAME_ORIGIN, "Content-Type": "application/json"}
    )
    wrong = post_callback(dashboard_client, activation_body(), headers={**good, "X-CSRFToken": "guess"})
    odd = post_callback(dashboard_client, activation_body(), headers={**good, "X-CSRFToken": "caf\u00e9".encode()})

    assert (foreign.status_code, tokenless.status_code, wrong.status_code, odd.status_code) == (403, 403, 403, 403)
    assert session.execute(select(Deployment)).first() is None
    assert post_callback(dashboard_client, activation_body()).status_code == 200
    assert len(session.execute(select(Deployment)).all()) == 1


@pytest.mark.parametrize("role", ["viewer", "qa", "approver"])
def test_forged_activation_callback_is_refused_for_non_admins(
    dashboard_client: TestClient, session: Session, role: str
) -> None:
    make_user(session, role=role, username="mallory")
    make_model(session)
    make_version(session)
    sign_in(dashboard_client, "mallory")

    response = post_callback(dashboard_client, activation_body())

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert session.execute(select(Deployment)).first() is None
    assert events(session, "deployment.activate") == []


def test_admin_activation_callback_deploys_and_reloads(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="admin", username="ada")
    make_model(session)
    make_version(session)
    sign_in(dashboard_client, "ada")

    response = post_callback(dashboard_client, activation_body(reason="validated at all four sites"))

    assert response.status_code == 200
    assert response.json()["response"]["versions-reload"]["href"] == "/dashboard/versions?model=ich-ct"
    [event] = events(session, "deployment.activate")
    assert (event.actor, event.reason) == ("ada", "validated at all four sites")


def test_second_activation_is_explained_not_performed(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="admin", username="ada")
    make_model(session)
    make_version(session, version="2.0.0", activate=True)
    make_version(session, version="2.1.0")
    sign_in(dashboard_client, "ada")

    response = post_callback(dashboard_client, activation_body(version="2.1.0"))

    assert response.status_code == 200
    assert "needs a change request" in response.text
    assert len(session.execute(select(Deployment)).all()) == 1


def test_logout_needs_the_csrf_token_and_ends_the_session(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")
    token = callback_headers(dashboard_client)["X-CSRFToken"]

    forged = dashboard_client.post("/dashboard/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert forged.status_code == 403
    assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 200

    response = dashboard_client.post(
        "/dashboard/logout", data={"csrf_token": token}, headers=SAME_ORIGIN, follow_redirects=False
    )
    assert response.headers["location"] == "/dashboard/login?signed_out=1"
    assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 302


def test_session_expires_eight_hours_after_sign_in(
    dashboard_client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")
    signed_in_at = auth.time.time()

    for minutes in range(25, int(7.9 * 60), 25):  # in use all day: never idle for long
        monkeypatch.setattr(auth.time, "time", lambda m=minutes: signed_in_at + m * 60)
        assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 200
    monkeypatch.setattr(auth.time, "time", lambda: signed_in_at + 8 * 3600 + 5)
    assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 302
    assert dashboard_client.get("/dashboard/_dash-layout").status_code == 401


def test_disabling_a_user_ends_their_session_at_once(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")

    auth_service.disable_user(session=session, actor=SYSTEM, username="vera")

    assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 302


def test_a_tampered_session_cookie_is_ignored(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")
    value = dashboard_client.cookies.get(auth.SESSION_COOKIE)
    dashboard_client.cookies.clear()
    dashboard_client.cookies.set(auth.SESSION_COOKIE, value[:-3] + "AAA", path="/dashboard/")

    assert dashboard_client.get("/dashboard/", follow_redirects=False).status_code == 302


def test_responses_forbid_framing(dashboard_client: TestClient) -> None:
    response = dashboard_client.get("/dashboard/login")

    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def signed_in_viewer(dashboard_client: TestClient, session: Session) -> Iterator[TestClient]:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")
    yield dashboard_client


def test_audit_csv_export_streams_the_filtered_events(signed_in_viewer: TestClient, session: Session) -> None:
    make_model(session)

    response = signed_in_viewer.get("/dashboard/audit/export.csv?action=model.create")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="radmon-audit.csv"' in response.headers["content-disposition"]
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("seq,at,actor,action,entity,entity_id")
    assert len(lines) == 2 and ",model.create,model,ich-ct," in lines[1]


def test_audit_csv_export_needs_a_session(dashboard_client: TestClient) -> None:
    response = dashboard_client.get("/dashboard/audit/export.csv", follow_redirects=False)

    assert response.status_code == 302
    assert response.headers["location"].startswith("/dashboard/login")


def test_audit_csv_export_rejects_a_bad_date(signed_in_viewer: TestClient) -> None:
    response = signed_in_viewer.get("/dashboard/audit/export.csv?since=yesterday")

    assert response.status_code == 422
    assert "since" in response.json()["error"]["message"]


@pytest.mark.parametrize("role", ["all", "dashboard"])
def test_radmon_serve_mounts_the_real_dashboard(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    """`radmon serve --role all|dashboard` builds its app with mount_dashboard: sign-in works there too."""
    from contextlib import contextmanager

    from monitor import serve

    @contextmanager
    def transaction():  # type: ignore[no-untyped-def]
        session.commit()
        yield session
        session.commit()

    point_transaction_at(monkeypatch, transaction)
    make_user(session, role="viewer", username="vera")
    with TestClient(serve.build_app(settings, role), base_url=BASE_URL) as client:
        assert client.get("/dashboard/", follow_redirects=False).status_code == 302
        assert sign_in(client, "vera").headers["location"] == "/dashboard/"
        assert client.get("/dashboard/_dash-layout").status_code == 200
