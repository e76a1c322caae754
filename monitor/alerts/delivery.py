"""Delivering the outbox: claim a row under a lease, send it with no transaction open, record the attempt.

At-least-once with a bound: a row is claimed (status 'sending', claimed_by/claimed_at) in one
short transaction, sent, and its outcome recorded in another. A worker that dies after sending
and before recording leaves the row 'sending'; once the lease runs out another worker sends it
again, with the same Message-ID (fixed when the row was written), so receivers can dedupe.
Two workers never hold the same row: PostgreSQL claims with FOR UPDATE SKIP LOCKED, SQLite
serializes writers (BEGIN IMMEDIATE) and the lease does the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

import httpx
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from monitor.alerts import emails
from monitor.alerts.models import Notification, NotificationAttempt
from monitor.audit import service as audit_service
from monitor.auth.actors import SYSTEM
from monitor.config import Settings

log = logging.getLogger("radmon.alerts")

# Longer than any single send can take (SMTP_TIMEOUT per command), so a live worker keeps its claim.
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 16  # with the backoff below: about 11 hours of retries before the dead letter
SMTP_TIMEOUT_SECONDS = 30.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Radmon-Signature"
UNSIGNED = "RADMON_WEBHOOK_SECRET is not set; radmon does not send unsigned webhooks"


def retry_delay(attempts: int) -> timedelta:
    """Backoff after a failed attempt: 1, 2, 4 ... minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The signature header: HMAC-SHA256 over '<timestamp>.<body>' (the timestamp lets receivers refuse replays)."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    *, secret: str, header: str, body: bytes, now: float | None = None, tolerance_seconds: int = 300
) -> bool:
    """What a receiver does with the header: recompute, compare in constant time, refuse stale timestamps."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret=secret, timestamp=timestamp, body=body), header)


@dataclass(frozen=True)
class Claimed:
    """A claimed row as plain data: it is sent after the claiming transaction has committed."""

    id: int
    number: int
    worker: str
    channel: str
    category: str
    recipient: str
    message_id: str
    payload: dict[str, Any]
    alert_id: int | None


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None
    permanent: bool = False  # retrying cannot help (a 5xx answer, a refused recipient)
    transport_down: bool = False  # nothing on this channel can go now: stop this round
    location: str | None = None  # where the file outbox wrote the email


# ---------------------------------------------------------------------------- database side


def claim_next(*, session: Session, worker: str, now: datetime, channels: list[str]) -> Claimed | None:
    """Take the next due row (or one whose worker's lease ran out) and open an attempt for it."""
    row = session.execute(
        select(Notification)
        .where(
            Notification.channel.in_(channels),
            or_(
                and_(Notification.status == "pending", Notification.next_attempt_at <= now),
                and_(Notification.status == "sending", Notification.claimed_at <= now - LEASE),
            ),
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.status == "sending":
        for attempt in session.execute(
            select(NotificationAttempt).where(
                NotificationAttempt.notification_id == row.id, NotificationAttempt.finished_at.is_(None)
            )
        ).scalars():
            attempt.finished_at, attempt.outcome = now, "interrupted"
            attempt.error = (
                f"worker {attempt.worker} stopped before recording the result; the message may have gone out"
            )
    number = (
        session.execute(
            select(func.max(NotificationAttempt.number)).where(NotificationAttempt.notification_id == row.id)
        ).scalar_one()
        or 0
    ) + 1
    row.status, row.claimed_at, row.claimed_by = "sending", now, worker
    row.attempts += 1
    session.add(NotificationAttempt(notification_id=row.id, number=number, worker=worker, started_at=now))
    session.flush()
    return Claimed(
        id=row.id,
        number=number,
        worker=worker,
        channel=row.channel,
        category=row.category,
        recipient=row.recipient,
        message_id=row.message_id,
        payload=dict(row.payload),
        alert_id=row.alert_id,
    )


def record(*, session: Session, claimed: Claimed, result: SendResult, now: datetime) -> str:
    """Write the attempt's outcome; sent and dead rows are audited. Returns the row's status."""
    row = session.execute(select(Notification).where(Notification.id == claimed.id).with_for_update()).scalar_one()
    attempt = session.execute(
        select(NotificationAttempt).where(
            NotificationAttempt.notification_id == claimed.id, NotificationAttempt.number == claimed.number
        )
    ).scalar_one()
    attempt.finished_at, attempt.outcome, attempt.error = now, "sent" if result.ok else "failed", result.error
    taken_over = row.status != "sending" or row.claimed_by != claimed.worker
    if row.status == "sent" or (taken_over and not result.ok):
        session.flush()  # another worker took the row over after our lease ran out; its attempt decides
        return row.status
    if result.ok:
        row.status, row.sent_at, row.last_error = "sent", now, None
    elif result.permanent or row.attempts >= MAX_ATTEMPTS:
        row.status, row.last_error = "dead", result.error
    else:
        row.status, row.last_error, row.next_attempt_at = "pending", result.error, now + retry_delay(row.attempts)
    row.claimed_at, row.claimed_by = None, None
    session.flush()
    if row.status in ("sent", "dead"):
        audit_service.record(
            session=session,
            actor=SYSTEM,
            action="notification.sent" if row.status == "sent" else "notification.failed",
            entity="notification",
            entity_id=row.id,
            after={
                "channel": row.channel,
                "category": row.category,
                "recipient": row.recipient,
                "alert_id": row.alert_id,
                "message_id": row.message_id,
                "attempts": row.attempts,
            },
            reason=result.error,
        )
    return row.status


# ---------------------------------------------------------------------------- the wire


class Transports:
    """SMTP (or the file outbox without RADMON_SMTP_HOST) and the webhook; one SMTP connection per round."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._http: httpx.Client | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._close_smtp()
        if self._http is not None:
            self._http.close()

    def send(self, claimed: Claimed) -> SendResult:
        if claimed.channel == "webhook":
            return self.post_webhook(claimed)
        extra = {"X-Radmon-Category": claimed.category}
        if claimed.alert_id is not None:
            extra["X-Radmon-Alert"] = str(claimed.alert_id)
        message = emails.build_message(
            payload=claimed.payload,
            sender=self.settings.smtp_from,
            recipient=claimed.recipient,
            message_id=claimed.message_id,
            headers=extra,
        )
        return self.send_email(message, recipient=claimed.recipient, file_name=f"notification-{claimed.id:08d}.eml")

    # ---- email

    @property
    def smtp_address(self) -> str:
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

    def send_email(self, message: EmailMessage, *, recipient: str, file_name: str) -> SendResult:
        """Send one message; without an SMTP host, write it to the outbox directory instead."""
        if not self.settings.smtp_host:
            return self._write_file(message, file_name)
        try:
            smtp = self._connection()
        except (OSError, smtplib.SMTPException) as exc:
            self._close_smtp()
            return SendResult(
                False, f"cannot reach SMTP server {self.smtp_address}: {_reason(exc)}", transport_down=True
            )
        try:
            smtp.send_message(message, from_addr=self.settings.smtp_from, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return SendResult(False, f"recipient refused: {_reason(exc)}", permanent=all(c >= 500 for c in codes))
        except smtplib.SMTPSenderRefused as exc:
            # The server refuses RADMON_SMTP_FROM: a configuration problem, not this message's.
            return SendResult(False, f"sender {self.settings.smtp_from} refused: {_reason(exc)}", transport_down=True)
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            if not permanent:
                self._close_smtp()
            return SendResult(False, f"SMTP {exc.smtp_code}: {_reason(exc)}", permanent=permanent)
        except (OSError, smtplib.SMTPException) as exc:
            self._close_smtp()
            return SendResult(False, f"SMTP server {self.smtp_address} failed: {_reason(exc)}", transport_down=True)
        return SendResult(True)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                self._smtp.noop()
                return self._smtp
            except (OSError, smtplib.SMTPException):
                self._close_smtp()  # the server closed an idle connection: open a new one
        smtp = smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
        try:
            smtp.ehlo()
            if self.settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.settings.smtp_user:
                smtp.login(self.settings.smtp_user, self.settings.smtp_password)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _close_smtp(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (OSError, smtplib.SMTPException):
            self._smtp.close()
        self._smtp = None

    def _write_file(self, message: EmailMessage, file_name: str) -> SendResult:
        directory = Path(self.settings.outbox_dir)
        path = directory / file_name
        try:
            directory.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(message.as_bytes())
            os.replace(partial, path)  # a resend overwrites: one file per notification, never two
        except OSError as exc:
            return SendResult(False, f"cannot write {path}: {exc.strerror or exc}", transport_down=True)
        log.info("RADMON_SMTP_HOST is not set: email written to %s", path, extra={"path": str(path)})
        return SendResult(True, location=str(path))

    # ---- webhook

    def post_webhook(self, claimed: Claimed) -> SendResult:
        secret = self.settings.webhook_secret
        if not secret:
            return SendResult(False, UNSIGNED, transport_down=True)
        body = json.dumps(claimed.payload, sort_keys=True, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Radmon-Event": str(claimed.payload.get("event", "alert")),
            "X-Radmon-Delivery": claimed.message_id,  # the same on a resend: receivers dedupe on it
            SIGNATURE_HEADER: sign(secret=secret, timestamp=int(time.time()), body=body),
        }
        if self._http is None:
            self._http = httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS)
        try:
            answer = self._http.post(claimed.recipient, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(
                False, f"webhook {claimed.recipient} unreachable: {type(exc).__name__}: {exc}", transport_down=True
            )
        if answer.is_success:
            return SendResult(True)
        transient = answer.status_code in (408, 429) or answer.status_code >= 500
        return SendResult(
            False, f"webhook answered HTTP {answer.status_code}: {answer.text[:200]}", permanent=not transient
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{addr}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for addr, (code, msg) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}"
    return str(exc) or type(exc).__name__
