"""Scheduled alert work: build due digests and deliver the outbox; the operator's test email."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime

from monitor.alerts import delivery, emails, outbox
from monitor.alerts.schemas import DeliveryReport, TestEmailResult
from monitor.config import Settings, get_settings
from monitor.db import Database, get_database, utcnow
from monitor.errors import Invalid

log = logging.getLogger("radmon.alerts")

CHANNELS = ("email", "webhook")


def worker_name() -> str:
    """Identifies this process in claims and attempts (host, pid, and a per-call suffix)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def deliver_due(
    *,
    database: Database | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
    limit: int = 500,
    worker: str | None = None,
) -> DeliveryReport:
    """Build the digests that are due, then send every due outbox row (run it every minute).

    Each row is claimed, sent and recorded in its own short transactions, so a crash loses
    nothing; a channel whose server is unreachable is skipped for the rest of the round."""
    database = database or get_database()
    settings = settings or get_settings()
    worker = worker or worker_name()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    with database.transaction() as session:
        report.digests = outbox.build_due_digests(session=session, now=clock(), settings=settings)
    channels = list(CHANNELS)
    with delivery.Transports(settings) as transports:
        for _ in range(limit):
            with database.transaction() as session:
                claimed = delivery.claim_next(session=session, worker=worker, now=clock(), channels=channels)
            if claimed is None:
                break
            result = transports.send(claimed)  # no transaction is open while the server is called
            with database.transaction() as session:
                status = delivery.record(session=session, claimed=claimed, result=result, now=clock())
            _tally(report, status, result)
            if result.transport_down:
                log.warning("%s delivery paused until the next round: %s", claimed.channel, result.error)
                channels.remove(claimed.channel)
                report.stopped.append(claimed.channel)
                if not channels:
                    break
    if report.sent or report.retrying or report.dead or report.digests:
        log.info("alert notifications delivered", extra=report.as_dict())
    return report


def _tally(report: DeliveryReport, status: str, result: delivery.SendResult) -> None:
    if status == "sent":
        report.sent += 1
        if result.location:
            report.files.append(result.location)
    elif status == "dead":
        report.dead += 1
    elif status == "pending":
        report.retrying += 1


def send_test_email(*, to: str, settings: Settings | None = None) -> TestEmailResult:
    """Send one test email now through the configured channel (SMTP, or the file outbox) and say how it went."""
    settings = settings or get_settings()
    address = to.strip()
    if "@" not in address or any(ch.isspace() for ch in address):
        raise Invalid(f"'{to}' is not an email address")
    now = utcnow()
    if settings.smtp_host:
        via = f"SMTP server {settings.smtp_host}:{settings.smtp_port}"
        via += " with STARTTLS" if settings.smtp_starttls else " without STARTTLS"
        via += f", login {settings.smtp_user}" if settings.smtp_user else ", no login"
    else:
        via = f"the file outbox {settings.outbox_dir} (RADMON_SMTP_HOST is not set)"
    message_id = emails.new_message_id(sender=settings.smtp_from, tag="radmon.test")
    content = {
        **emails.render_test(sender=settings.smtp_from, recipient=address, transport=via, sent_at=now),
        "date": now.isoformat(),
    }
    message = emails.build_message(payload=content, sender=settings.smtp_from, recipient=address, message_id=message_id)
    with delivery.Transports(settings) as transports:
        result = transports.send_email(
            message, recipient=address, file_name=f"test-{now.strftime('%Y%m%dT%H%M%S')}.eml"
        )
    if not result.ok:
        return TestEmailResult(
            False,
            "smtp" if settings.smtp_host else "file",
            f"test email to {address} failed: {result.error}",
            message_id,
        )
    if result.location:
        return TestEmailResult(
            True,
            "file",
            f"RADMON_SMTP_HOST is not set: test email written to {result.location} (no mail was sent)",
            message_id,
        )
    return TestEmailResult(
        True, "smtp", f"test email accepted for {address} by {via}; Message-ID {message_id}", message_id
    )
