"""Issue 14 finding 5, passwords: the policy on create and change, the CLI never taking a password
as an argument, and over-long user fields answered as client errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.db import Database, utcnow
from monitor.errors import Invalid
from tests.factories import make_user
from tests.test_cli import database_url, empty_url, environment, one_line_error, radmon, runner  # noqa: F401

from monitor.cli import app  # isort: skip


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("12345678", "at least 12 characters"),
        ("password", "at least 12 characters"),
        (" " * 8, "at least 12 characters"),
        (" " * 14, "different characters"),
        ("qwertyuiop123", "common passwords"),
        ("QwertyUiop123", "common passwords"),
        ("dr-ada-approver-2026", "must not contain the username"),
        ("Q1W2E3R4T5Y6", "common passwords"),
    ],
)
def test_weak_passwords_are_refused_on_create(session: Session, password: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        auth_service.create_user(
            session=session, actor=SYSTEM, username="Dr-Ada-Approver", role="approver", password=password
        )


def test_the_policy_applies_to_a_password_change_too(session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    with pytest.raises(Invalid, match="common passwords"):
        auth_service.change_password(session=session, actor=SYSTEM, username="vera", password="qwerty123456")
    with pytest.raises(Invalid, match="must not contain the username"):
        auth_service.change_password(session=session, actor=SYSTEM, username="vera", password="vera-vera-vera-1")


def test_the_shipped_list_holds_thousands_of_common_passwords() -> None:
    from monitor.auth import passwords

    listed = passwords.common_passwords()
    assert len(listed) > 10_000
    assert {"password", "123456", "iloveyou", "qwertyuiop", "password1234"} <= listed


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("username", "u" * 65, "username must be at most 64 characters"),
        ("full_name", "F" * 201, "full name must be at most 200 characters"),
        ("email", "e" * 310 + "@example.org", "email must be at most 320 characters"),
        ("password", "x" * 1025, "password must be at most 1024 characters"),
    ],
)
def test_over_long_user_fields_are_a_400(session: Session, field: str, value: str, message: str) -> None:
    fields = {"username": "vera", "full_name": "", "email": None, "password": "long enough words", field: value}
    with pytest.raises(auth_service.TooLong, match=message) as refused:
        auth_service.create_user(session=session, actor=SYSTEM, role="viewer", **fields)
    assert refused.value.status_code == 400


def test_cli_has_no_password_argument(database_url: str) -> None:  # noqa: F811
    refused = radmon("users", "create", "--username", "ada", "--role", "admin", "--password", "hunter2hunter2")
    assert refused.exit_code != 0 and "No such option: --password" in refused.output


def test_cli_reads_the_password_from_stdin_and_applies_the_policy(database_url: str) -> None:  # noqa: F811
    def create(username: str, password: str):  # type: ignore[no-untyped-def]
        return runner.invoke(
            app,
            ["users", "create", "--username", username, "--role", "admin", "--password-stdin"],
            input=password + "\n",
            prog_name="radmon",
        )

    assert "at least 12 characters" in one_line_error(create("ada", "12345678"))
    assert "common passwords" in one_line_error(create("ada", "password1234"))
    created = create("ada", "a long and unusual passphrase")
    assert created.exit_code == 0, created.output
    assert "passphrase" not in created.output


def test_cli_without_a_terminal_or_stdin_flag_refuses_instead_of_prompting(database_url: str) -> None:  # noqa: F811
    assert "--password-stdin" in one_line_error(radmon("users", "create", "--username", "ada", "--role", "admin"))


def test_cli_set_password_and_unlock(database_url: str) -> None:  # noqa: F811
    runner.invoke(
        app,
        ["users", "create", "--username", "vera", "--role", "viewer", "--password-stdin"],
        input="first long passphrase\n",
    )
    changed = runner.invoke(
        app, ["users", "set-password", "--username", "vera", "--password-stdin"], input="second long passphrase\n"
    )
    assert changed.exit_code == 0, changed.output
    assert "no failed sign-ins" in one_line_error(radmon("users", "unlock", "--username", "vera"))

    database = Database(database_url)
    try:
        now = utcnow() - timedelta(minutes=3)
        for guess in range(10):  # each wrong guess as soon as allowed; the tenth locks
            with database.transaction() as session:
                attempt = auth_service.authenticate_password(
                    session=session, username="vera", password=f"guess-{guess}", now=now
                )
            now += timedelta(seconds=attempt.retry_after) if guess < 9 else timedelta(0)
        with database.transaction() as session:
            assert auth_service.authenticate_password(
                session=session, username="vera", password="second long passphrase"
            ).locked_until
    finally:
        database.dispose()
    assert "locked until" in next(line for line in radmon("users", "list").stdout.splitlines() if "vera" in line)

    unlocked = radmon("users", "unlock", "--username", "vera")
    assert unlocked.exit_code == 0 and "sign-in unlocked for 'vera'" in unlocked.stdout
    assert " ok " in next(line for line in radmon("users", "list").stdout.splitlines() if "vera" in line)
