"""Settings from RADMON_ environment variables, validated once at start."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.errors import ConfigurationError

DEMO_SECRET = "radmon-demo-secret-not-for-production"
DEMO_AUDIT_KEY = "radmon-demo-audit-key-not-for-production"
ANCHOR_FILE_NAME = "radmon-audit-anchors.jsonl"


class Settings(BaseSettings):
    """Every RADMON_ variable the service reads."""

    model_config = SettingsConfigDict(env_prefix="RADMON_", extra="ignore")

    database_url: str = "sqlite:///./radmon.db"
    secret_key: str = ""
    pseudonym_key: str = ""
    demo: bool = False

    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_from: str = "radmon@localhost"
    outbox_dir: str = "./radmon-outbox"

    # Keys the audit chain (HMAC-SHA256); held by the application, never by the database.
    audit_key: str = ""
    # Retired audit keys, oldest first, comma-separated: events keyed with them still verify, and
    # only before the first event under a newer key (a leaked retired key cannot append).
    audit_previous_keys: str = ""
    # Append-only file of chain heads (one JSON line per anchor); empty: beside the outbox directory.
    audit_anchor_file: str = ""

    dashboard_url: str = "http://127.0.0.1:8000/dashboard/"
    webhook_url: str = ""
    webhook_secret: str = ""

    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    max_batch_records: int = Field(default=10_000, ge=1)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Plausibility of ingested records (decision 0403): instants within this window around now.
    occurred_at_max_age_days: int = Field(default=3650, ge=1, le=36500)
    occurred_at_max_ahead_hours: int = Field(default=24, ge=0, le=24 * 30)
    max_latency_ms: float = Field(default=86_400_000.0, gt=0)

    session_idle_minutes: int = Field(default=30, ge=1, le=8 * 60)
    login_lockout_failures: int = Field(default=10, ge=4, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)

    # /metrics on the API answers only with this bearer token; metrics_address (host:port) serves
    # them on a listener of their own instead (bind it to a loopback or monitoring interface).
    metrics_token: str = ""
    metrics_address: str = ""

    # The facility's IANA time zone: surveillance reports (decision 0604) are drafted on the 1st there and
    # adverse-event deadlines (0601) are local days there. It decides which month "last month"
    # is when the scheduler drafts reports on the 1st; with approval required, a report is complete
    # only when an approver signs it ("approved") after the QA lead's review ("reviewed").
    facility_timezone: str = "UTC"
    report_approval_required: bool = False

    # The adverse-event clock (decision 0601): jurisdictions as a JSON list (empty: FDA user facility,
    # FDA manufacturer, EU MDR serious incident), the facility's time zone above (deadlines end at local
    # midnight), reminders this many work days before each deadline (and once when overdue).
    adverse_jurisdictions: str = ""
    adverse_reminder_work_days: str = "3,1"

    @field_validator("adverse_jurisdictions")
    @classmethod
    def _json_list(cls, value: str) -> str:
        if value.strip():
            try:
                parsed = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"must be a JSON list of jurisdictions: {exc}") from None
            if not isinstance(parsed, list) or not parsed:
                raise ValueError("must be a non-empty JSON list of jurisdictions")
        return value

    @field_validator("adverse_reminder_work_days")
    @classmethod
    def _work_days(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not all(part.isdigit() and 1 <= int(part) <= 30 for part in parts):
            raise ValueError("must be comma-separated work-day counts between 1 and 30, e.g. 3,1")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("must be at least 16 characters (or empty: /metrics then needs RADMON_METRICS_ADDRESS)")
        return value

    @field_validator("metrics_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if value and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"must be host:port, e.g. 127.0.0.1:9464; got {value!r}")
        return value

    @field_validator("facility_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"must be an IANA time zone such as Europe/Berlin or UTC; got {value!r}") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg2://")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg2:// URL")
        return value

    @model_validator(mode="after")
    def _secrets_outside_demo(self) -> Settings:
        if not self.secret_key:
            if not self.demo:
                raise ValueError("RADMON_SECRET_KEY is required outside the demo (set it to a long random string)")
            self.secret_key = DEMO_SECRET
        if len(self.secret_key) < 16:
            raise ValueError("RADMON_SECRET_KEY must be at least 16 characters")
        if not self.pseudonym_key:
            # One secret is enough for a small site; a separate key lets pseudonyms survive
            # a rotation of the session secret.
            self.pseudonym_key = self.secret_key
        if not self.audit_key:
            if not self.demo:
                raise ValueError(
                    "RADMON_AUDIT_KEY is required outside the demo (a long random string kept outside the database)"
                )
            self.audit_key = DEMO_AUDIT_KEY
        if len(self.audit_key) < 16:
            raise ValueError("RADMON_AUDIT_KEY must be at least 16 characters")
        if any(len(key) < 16 for key in self.audit_keys[:-1]):
            raise ValueError("RADMON_AUDIT_PREVIOUS_KEYS: each key must be at least 16 characters")
        if not self.audit_anchor_file:
            self.audit_anchor_file = str(Path(self.outbox_dir).parent / ANCHOR_FILE_NAME)
        return self

    @property
    def audit_keys(self) -> list[str]:
        """Every audit key in the order it was used: the retired ones, then RADMON_AUDIT_KEY."""
        previous = [key.strip() for key in self.audit_previous_keys.split(",") if key.strip()]
        return [*previous, self.audit_key]


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; a bad value fails with the variable's name."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "RADMON_" + "_".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(message if not error["loc"] else f"{name}: {message}")
        raise ConfigurationError("; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return load_settings()
