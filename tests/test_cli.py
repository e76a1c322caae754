"""The radmon command as an operator scripts it: exit codes, one-line errors, committed effects."""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from monitor.auth import service as auth_service
from monitor.cli import app
from monitor.db import Database
from monitor.errors import Unauthorized
from tests.conftest import BACKENDS, create_database_url, drop_database_url

SECRET = "cli-test-secret-0123456789"
runner = CliRunner()


def radmon(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), prog_name="radmon")


def one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    """The command failed with exactly one line on stderr and no traceback; returns it."""
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`radmon serve` configures process-wide logging; give the next tests theirs back."""
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler")]
    saved = [(logger.handlers[:], logger.level, logger.propagate, logger.disabled) for logger in loggers]
    yield
    for logger, (handlers, level, propagate, disabled) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RADMON_") and not name.startswith("RADMON_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RADMON_SECRET_KEY", SECRET)
    monkeypatch.setenv("RADMON_AUDIT_KEY", SECRET)


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: None) -> Iterator[str]:
    """RADMON_DATABASE_URL pointing at a new, empty database on the backend."""
    url = create_database_url(backend, tmp_path)
    monkeypatch.setenv("RADMON_DATABASE_URL", url)
    yield url
    drop_database_url(url)


@pytest.fixture
def database_url(empty_url: str) -> str:
    result = radmon("db", "upgrade")
    assert result.exit_code == 0, result.output
    return empty_url


def test_db_upgrade_brings_an_empty_database_to_head(empty_url: str) -> None:
    before = radmon("db", "current")
    assert before.exit_code == 0 and before.stdout.startswith("empty (behind head")
    upgraded = radmon("db", "upgrade")
    assert upgraded.exit_code == 0 and "schema upgraded: empty ->" in upgraded.stdout
    after = radmon("db", "current")
    assert after.exit_code == 0 and after.stdout.strip().endswith("(at head)")
    again = radmon("db", "upgrade")
    assert again.exit_code == 0 and "already at" in again.stdout


def test_db_downgrade_to_base_empties_the_schema(database_url: str) -> None:
    result = radmon("db", "downgrade", "base")
    assert result.exit_code == 0, result.output
    assert radmon("db", "current").stdout.startswith("empty")


def test_commands_on_an_unmigrated_database_say_to_run_db_upgrade(empty_url: str) -> None:
    assert "run `radmon db upgrade`" in one_line_error(radmon("users", "list"))


def test_users_create_list_disable(database_url: str) -> None:
    created = runner.invoke(
        app,
        ["users", "create", "--username", "qa-lead", "--role", "qa", "--password-stdin",
         "--full-name", "Quinn Lead", "--email", "quinn@hospital.example"],
        input="wide-margin-of-error\n",
        prog_name="radmon",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    service_account = radmon("users", "create", "--username", "ich-service", "--role", "ingest")
    assert service_account.exit_code == 0, service_account.output

    listing = radmon("users", "list")
    assert listing.exit_code == 0
    assert "qa-lead" in listing.stdout and "Quinn Lead" in listing.stdout and "quinn@hospital.example" in listing.stdout
    assert "none (API key only)" in listing.stdout

    assert radmon("users", "disable", "--username", "qa-lead").exit_code == 0
    row = next(line for line in radmon("users", "list").stdout.splitlines() if "qa-lead" in line)
    assert "disabled" in row


def test_users_create_refuses_bad_input_with_one_line(database_url: str) -> None:
    assert "needs a password" in one_line_error(radmon("users", "create", "--username", "v", "--role", "viewer"))
    assert "role must be one of" in one_line_error(radmon("users", "create", "--username", "x", "--role", "root"))
    radmon("users", "create", "--username", "dup", "--role", "ingest")
    assert "already exists" in one_line_error(radmon("users", "create", "--username", "dup", "--role", "ingest"))
    assert "no user named 'ghost'" in one_line_error(radmon("users", "disable", "--username", "ghost"))


def test_keys_create_prints_a_working_key_on_the_last_line_and_revoke_stops_it(database_url: str) -> None:
    radmon("users", "create", "--username", "ich-service", "--role", "ingest")
    created = radmon("keys", "create", "--user", "ich-service", "--name", "pacs-bridge")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("rmk_") and " " not in key

    database = Database(database_url)
    try:
        with database.transaction() as session:
            actor = auth_service.authenticate_key(session=session, key=key)
        assert (actor.username, actor.role) == ("ich-service", "ingest")

        prefix = key[: auth_service.PREFIX_LENGTH]
        listing = radmon("keys", "list", "--user", "ich-service")
        assert prefix in listing.stdout and "pacs-bridge" in listing.stdout and key not in listing.stdout

        assert radmon("keys", "revoke", "--prefix", prefix).exit_code == 0
        with database.transaction() as session, pytest.raises(Unauthorized):
            auth_service.authenticate_key(session=session, key=key)
        assert "already revoked" in one_line_error(radmon("keys", "revoke", "--prefix", prefix))
    finally:
        database.dispose()


def test_keys_for_unknown_or_disabled_users_are_refused(database_url: str) -> None:
    assert "no user named" in one_line_error(radmon("keys", "create", "--user", "nobody"))
    radmon("users", "create", "--username", "old-service", "--role", "ingest")
    radmon("users", "disable", "--username", "old-service")
    assert "disabled" in one_line_error(radmon("keys", "create", "--user", "old-service"))


def test_audit_verify_passes_then_names_the_first_tampered_event(database_url: str) -> None:
    for name in ("svc-a", "svc-b", "svc-c"):
        radmon("users", "create", "--username", name, "--role", "ingest")
    verified = radmon("audit", "verify")
    assert verified.exit_code == 0 and "audit chain ok: 3 events" in verified.stdout

    _tamper_with_event(database_url, seq=2)
    message = one_line_error(radmon("audit", "verify"))
    assert "broken at event 2" in message and "altered" in message


def _tamper_with_event(url: str, *, seq: int) -> None:
    """What a database administrator could do by switching the append-only trigger off."""
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            if database.dialect == "sqlite":
                connection.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            else:
                connection.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update")
            connection.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = :seq"), {"seq": seq})
    finally:
        database.dispose()


def test_audit_export_writes_every_event_as_csv(database_url: str, tmp_path: Path) -> None:
    radmon("users", "create", "--username", "svc-a", "--role", "ingest")
    radmon("keys", "create", "--user", "svc-a")
    out = tmp_path / "exports" / "audit.csv"
    out.parent.mkdir()
    result = radmon("audit", "export", "--out", str(out))
    assert result.exit_code == 0 and "wrote 2 audit events" in result.stdout
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["action"] for row in rows] == ["user.create", "api_key.create"]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert not list(out.parent.glob("*.partial"))


def test_audit_export_to_an_unwritable_place_fails_with_one_line(database_url: str, tmp_path: Path) -> None:
    assert "cannot write" in one_line_error(radmon("audit", "export", "--out", str(tmp_path / "missing" / "a.csv")))


def test_unsupported_database_url_names_the_variable(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_DATABASE_URL", "mysql://x")
    assert "RADMON_DATABASE_URL" in one_line_error(radmon("users", "list"))


def test_missing_secret_key_outside_the_demo_names_it(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RADMON_SECRET_KEY")
    assert "RADMON_SECRET_KEY" in one_line_error(radmon("db", "current"))


def test_unreachable_database_is_one_line_not_a_traceback(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_DATABASE_URL", "postgresql+psycopg2://radmon@127.0.0.1:1/radmon")
    assert "database error" in one_line_error(radmon("db", "upgrade"))


@pytest.mark.usefixtures("restore_logging")
def test_scheduler_role_without_a_scheduler_in_the_build_exits_2_before_touching_the_database(
    environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "monitor.scheduler", None)  # import raises ImportError
    monkeypatch.setenv("RADMON_DATABASE_URL", f"sqlite:///{tmp_path / 'radmon.db'}")
    result = radmon("serve", "--role", "scheduler")
    assert result.exit_code == 2
    assert "scheduler is not available" in one_line_error(result)
    assert not (tmp_path / "radmon.db").exists()


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL is not among RADMON_TEST_BACKENDS")
@pytest.mark.usefixtures("restore_logging")
def test_serve_on_postgresql_refuses_a_schema_behind_head(
    environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = create_database_url("postgresql", tmp_path)  # SQLite would migrate itself instead
    monkeypatch.setenv("RADMON_DATABASE_URL", url)
    try:
        result = radmon("serve", "--role", "api")
    finally:
        drop_database_url(url)
    assert result.exit_code == 1 and "Traceback" not in result.output
    # serve logs as JSON from the start; the reason is the last line.
    assert "run `radmon db upgrade`" in result.stderr.strip().splitlines()[-1]
