"""Scheduled adverse-event work: queue the deadline reminders that fell due (the outbox job sends them)."""

from __future__ import annotations

import logging
from datetime import datetime

from monitor.adverse import reminders
from monitor.config import Settings, get_settings
from monitor.db import Database, get_database, utcnow

log = logging.getLogger("radmon.adverse")


def queue_reminders(
    *, database: Database | None = None, now: datetime | None = None, settings: Settings | None = None
) -> int:
    """Queue due reminders in one transaction; returns how many deadlines got one."""
    database = database or get_database()
    settings = settings or get_settings()
    with database.transaction() as session:
        queued = reminders.queue_due_reminders(session=session, now=now or utcnow(), settings=settings)
    if queued:
        log.info("adverse-event reminders queued", extra={"count": queued})
    return queued
