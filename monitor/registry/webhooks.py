"""Tell the deployment system that the active version changed: an outbox row, an HMAC-signed POST.

The row is written in the transaction that switches the deployment, so a committed switch is
never without its notification; delivery happens after commit (a background task of the
request, and `deliver_due` for a scheduled retry), never inside a database transaction.
Delivery is at least once: receivers de-duplicate on the X-Radmon-Delivery header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth.actors import SYSTEM
from monitor.db import Database, get_database, utcnow
from monitor.registry.models import Deployment, DeploymentNotification

log = logging.getLogger("radmon.webhooks")

MAX_ATTEMPTS = 8
RETRY_PAUSE_SECONDS = 0.5  # between the immediate tries; doubles each time
TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Radmon-Signature"
UNSIGNED = "RADMON_WEBHOOK_SECRET is not set; radmon does not send unsigned webhooks"


def retry_delay(attempts: int) -> timedelta:
    """Backoff before the next scheduled attempt: 1, 2, 4 ... minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value: HMAC-SHA256 over "<timestamp>.<body>" (the timestamp
    lets receivers refuse replays of an old delivery)."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def enqueue(*, session: Session, url: str, deployment: Deployment, payload: dict[str, Any]) -> DeploymentNotification:
    """Record the notification in the caller's transaction (it commits with the switch)."""
    now = utcnow()
    notification = DeploymentNotification(
        deployment_id=deployment.id,
        url=url,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(notification)
    session.flush()
    return notification


def _post(notification: DeploymentNotification, secret: str, client: httpx.Client) -> str | None:
    """One POST; the error as text, or None when the receiver answered 2xx."""
    body = json.dumps(notification.payload, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Radmon-Event": str(notification.payload.get("event", "deployment.changed")),
        "X-Radmon-Delivery": str(notification.id),
        SIGNATURE_HEADER: sign(secret=secret, timestamp=int(time.time()), body=body),
    }
    try:
        answer = client.post(notification.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if answer.is_success:
        return None
    return f"HTTP {answer.status_code}: {answer.text[:200]}"


def _record_attempt(session: Session, notification: DeploymentNotification, error: str | None) -> None:
    now = utcnow()
    notification.attempts += 1
    notification.last_error = error
    if error is None:
        notification.status, notification.sent_at = "sent", now
    elif notification.attempts >= MAX_ATTEMPTS:
        notification.status = "failed"
    else:
        notification.next_attempt_at = now + retry_delay(notification.attempts)
    session.flush()
    if notification.status != "pending":
        audit_service.record(
            session=session,
            actor=SYSTEM,
            action=f"webhook.{notification.status}",
            entity="deployment_notification",
            entity_id=notification.id,
            after={
                "url": notification.url,
                "attempts": notification.attempts,
                "deployment_id": notification.deployment_id,
            },
            reason=error,
        )


def deliver(
    *,
    notification_id: int,
    secret: str,
    database: Database | None = None,
    tries: int = 3,
    client: httpx.Client | None = None,
) -> str:
    """Try a pending notification a few times now; leaves it for `deliver_due` if all fail.

    Returns its status afterwards. Each attempt is recorded in its own short transaction,
    and no transaction is open while the receiver is being called."""
    database = database or get_database()
    status = "pending"
    with httpx.Client() if client is None else nullcontext(client) as http:
        for attempt in range(tries):
            with database.transaction() as session:
                notification = session.get(DeploymentNotification, notification_id)
                if notification is None or notification.status != "pending":
                    return notification.status if notification else "missing"
            error = _post(notification, secret, http) if secret else UNSIGNED
            with database.transaction() as session:
                fresh = session.get(DeploymentNotification, notification_id)
                assert fresh is not None
                if fresh.status == "pending":
                    _record_attempt(session, fresh, error)
                status = fresh.status
            if status != "pending":
                return status
            if error is not None:
                log.warning("webhook delivery failed", extra={"notification": notification_id, "error": error})
            if attempt + 1 < tries:
                time.sleep(RETRY_PAUSE_SECONDS * 2**attempt)
    return status


def deliver_after_commit(*, notification_id: int, secret: str) -> None:
    """Background-task entry: a delivery problem is logged and left to `deliver_due`, never raised
    into a request that has already answered."""
    try:
        deliver(notification_id=notification_id, secret=secret)
    except Exception:  # the notification stays pending; the scheduled retry picks it up
        log.exception("webhook delivery crashed", extra={"notification": notification_id})


def deliver_due(*, secret: str, database: Database | None = None, now: datetime | None = None) -> dict[str, int]:
    """Deliver every pending notification whose retry time has come (for a scheduled job)."""
    database = database or get_database()
    now = now or utcnow()
    with database.transaction() as session:
        due = (
            session.execute(
                select(DeploymentNotification.id)
                .where(DeploymentNotification.status == "pending", DeploymentNotification.next_attempt_at <= now)
                .order_by(DeploymentNotification.id)
            )
            .scalars()
            .all()
        )
    counts: dict[str, int] = {}
    for notification_id in due:
        status = deliver(notification_id=notification_id, secret=secret, database=database, tries=1)
        counts[status] = counts.get(status, 0) + 1
    return counts
