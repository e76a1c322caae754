"""Scheduled registry work: expire overdue change requests, retry deployment webhooks."""

from __future__ import annotations

import logging
from datetime import datetime

from monitor.config import Settings, get_settings
from monitor.db import Database, get_database
from monitor.registry import changes, webhooks

log = logging.getLogger("radmon.registry")


def expire_change_requests(*, database: Database | None = None, now: datetime | None = None) -> list[int]:
    """Mark pending change requests past their expiry as expired (run it every few minutes)."""
    with (database or get_database()).transaction() as session:
        expired = [change_request.id for change_request in changes.expire_due(session=session, now=now)]
    if expired:
        log.info("change requests expired", extra={"change_requests": expired})
    return expired


def deliver_deployment_webhooks(
    *, database: Database | None = None, settings: Settings | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Retry the deployment webhooks whose next attempt is due (run it every minute)."""
    settings = settings or get_settings()
    return webhooks.deliver_due(secret=settings.webhook_secret, database=database, now=now)
