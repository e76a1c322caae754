"""Settings: RADMON_ variables are read, validated at start, and errors name the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.config import DEMO_SECRET, Settings, load_settings
from monitor.errors import ConfigurationError

SECRET = "a-long-enough-secret-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from no RADMON_ variables (the developer's shell may set some)."""
    for name in list(os.environ):
        if name.startswith("RADMON_") and not name.startswith("RADMON_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RADMON_AUDIT_KEY", SECRET)  # each test of another variable has the audit key


def test_defaults_are_the_embedded_sqlite_database_with_json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_SECRET_KEY", SECRET)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./radmon.db"
    assert settings.log_format == "json"
    assert settings.max_batch_records == 10_000
    assert settings.max_request_bytes == 16 * 1024 * 1024


def test_variables_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_SECRET_KEY", SECRET)
    monkeypatch.setenv("RADMON_DATABASE_URL", "postgresql+psycopg2://radmon:pw@db:5432/radmon")
    monkeypatch.setenv("RADMON_SMTP_HOST", "mailpit")
    monkeypatch.setenv("RADMON_SMTP_PORT", "1025")
    monkeypatch.setenv("RADMON_SMTP_STARTTLS", "true")
    settings = load_settings()
    assert settings.database_url.startswith("postgresql+psycopg2://")
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == ("mailpit", 1025, True)


def test_secret_key_is_required_outside_the_demo() -> None:
    with pytest.raises(ConfigurationError, match="RADMON_SECRET_KEY is required"):
        load_settings()


def test_demo_runs_without_a_secret_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_DEMO", "true")
    settings = load_settings()
    assert settings.demo is True
    assert settings.secret_key == DEMO_SECRET


def test_short_secret_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_SECRET_KEY", "short")
    with pytest.raises(ConfigurationError, match="RADMON_SECRET_KEY must be at least 16"):
        load_settings()


def test_pseudonym_key_defaults_to_the_secret_but_can_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_SECRET_KEY", SECRET)
    assert load_settings().pseudonym_key == SECRET
    monkeypatch.setenv("RADMON_PSEUDONYM_KEY", "another-key-for-pseudonyms")
    assert load_settings().pseudonym_key == "another-key-for-pseudonyms"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RADMON_DATABASE_URL", "mysql://root@localhost/radmon"),
        ("RADMON_SMTP_PORT", "70000"),
        ("RADMON_SMTP_PORT", "twenty-five"),
        ("RADMON_LOG_FORMAT", "xml"),
        ("RADMON_LOG_LEVEL", "CHATTY"),
        ("RADMON_MAX_BATCH_RECORDS", "0"),
        ("RADMON_SMTP_STARTTLS", "perhaps"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("RADMON_SECRET_KEY", SECRET)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert variable in caught.value.message
    assert "\n" not in caught.value.message


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_SECRET_KEY", SECRET)
    monkeypatch.setenv("RADMON_SMTP_PORT", "0")
    monkeypatch.setenv("RADMON_LOG_FORMAT", "xml")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "RADMON_SMTP_PORT" in caught.value.message and "RADMON_LOG_FORMAT" in caught.value.message


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_DATABASE_URL", "sqlite:///./elsewhere.db")
    settings = load_settings(database_url="sqlite:///./radmon-demo.db", demo=True)
    assert settings.database_url == "sqlite:///./radmon-demo.db"


def test_readme_documents_every_variable() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [f"RADMON_{name.upper()}" for name in Settings.model_fields if f"`RADMON_{name.upper()}`" not in readme]
    assert not missing, f"add these to README's configuration table: {missing}"
