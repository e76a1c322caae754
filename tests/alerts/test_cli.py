"""`radmon alerts test-email --to ADDRESS` as an operator runs it: a clear line on success, one error line and exit 1 on failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from tests.alerts.conftest import SmtpServer, free_port

runner = CliRunner()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("RADMON_") and not name.startswith("RADMON_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RADMON_SECRET_KEY", "cli-test-secret-0123456789")
    monkeypatch.setenv("RADMON_AUDIT_KEY", "cli-test-audit-key-0123456789")
    monkeypatch.setenv("RADMON_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("RADMON_SMTP_FROM", "radmon@hospital.example")


def test_test_email_through_smtp(environment: None, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RADMON_SMTP_PORT", str(smtp_server.port))
    result = runner.invoke(app, ["alerts", "test-email", "--to", "qa@hospital.example"], prog_name="radmon")
    assert result.exit_code == 0, result.output
    assert "test email accepted for qa@hospital.example" in result.stdout
    [message] = smtp_server.mailbox.messages
    assert message["To"] == "qa@hospital.example" and message["From"] == "radmon@hospital.example"


def test_test_email_failure_is_one_line_and_exit_1(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RADMON_SMTP_PORT", str(free_port()))
    result = runner.invoke(app, ["alerts", "test-email", "--to", "qa@hospital.example"], prog_name="radmon")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: test email to qa@hospital.example failed: cannot reach SMTP server"
    )
    bad = runner.invoke(app, ["alerts", "test-email", "--to", "not-an-address"], prog_name="radmon")
    assert bad.exit_code == 1 and "is not an email address" in bad.stderr


def test_test_email_without_smtp_host_writes_the_outbox(environment: None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["alerts", "test-email", "--to", "qa@hospital.example"], prog_name="radmon")
    assert result.exit_code == 0, result.output
    assert "RADMON_SMTP_HOST is not set: test email written to" in result.stdout
    assert len(list((tmp_path / "outbox").glob("test-*.eml"))) == 1
