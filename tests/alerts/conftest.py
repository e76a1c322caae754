"""Alert fixtures: findings, a seeded model with recipients, a real SMTP server (aiosmtpd) in the process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.alerts.schemas import Finding
from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy
from monitor.config import Settings, load_settings
from monitor.db import Database
from tests.factories import make_model, make_version

DAY0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
RECIPIENTS = ["ai-committee@hospital.example"]
DASHBOARD = "https://radmon.hospital.example/dashboard/"


def day(n: int) -> datetime:
    return DAY0 + timedelta(days=n)


SUBGROUP_BREACH = Finding(
    model="ich-ct",
    version="2.1.0",
    kind="subgroups",
    metric="sensitivity",
    status="breach",
    window_end=DAY0,
    segment="site=north",
    value=0.781,
    ci_low=0.702,
    ci_high=0.846,
    n=212,
    threshold=0.9,
    method="wilson",
)


def finding(**changes: Any) -> Finding:
    """The subgroup sensitivity breach at site north, with changes."""
    return replace(SUBGROUP_BREACH, **changes)


def drift(feature: str, **changes: Any) -> Finding:
    return replace(
        SUBGROUP_BREACH,
        kind="input_drift",
        metric="drift_score",
        feature=feature,
        segment=None,
        value=0.31,
        ci_low=None,
        ci_high=None,
        n=2100,
        threshold=0.1,
        method="wasserstein",
        **changes,
    )


def seed(session: Session, **policy: Any) -> None:
    """Model ich-ct, version 2.1.0 (active) and a policy with the committee's address."""
    make_model(session)
    make_version(session, activate=True)
    set_policy(session, **policy)


def set_policy(session: Session, **policy: Any) -> None:
    policy.setdefault("alert_recipients", RECIPIENTS)
    checks_policy.put_policy(session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy(**policy))


def alert_settings(tmp_path: Path, database_url: str = "sqlite:///unused.db", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": "test-secret-key-0123456789",
        "dashboard_url": DASHBOARD,
        "outbox_dir": str(tmp_path / "outbox"),
        "smtp_from": "radmon@hospital.example",
        "log_format": "text",
    }
    values.update(overrides)
    return load_settings(**values)


def fire(database: Database, settings: Settings, findings: list[Finding], now: datetime | None = None) -> list[int]:
    """Process findings in one committed transaction (as the check runner does); returns alert ids."""
    with database.transaction() as session:
        alerts = alerts_service.process_findings(session=session, findings=findings, now=now, settings=settings)
        return [a.id for a in alerts]


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """What the SMTP server accepted, parsed with the email package."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> SMTP answer

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """An aiosmtpd server on a fixed port that can be stopped and started (an outage)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.mailbox = Mailbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()
