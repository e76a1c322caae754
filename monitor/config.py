"""Settings from RADMON_ environment variables, validated once at start."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.errors import ConfigurationError

DEMO_SECRET = "radmon-demo-secret-not-for-production"


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
        return self


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
