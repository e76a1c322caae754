"""Scheduled audit anchoring: verify the whole chain daily and publish its head outside the database
(the anchor file, the alert recipients and the webhook). It lives with the alerts because it sends
through their outbox; the audit domain below it knows nothing of alerts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from monitor.alerts import outbox
from monitor.audit import anchors, service
from monitor.auth.actors import SYSTEM
from monitor.config import Settings, get_settings
from monitor.db import Database, get_database, utcnow

log = logging.getLogger("radmon.audit")


@dataclass(frozen=True)
class AnchorResult:
    ok: bool
    seq: int  # the anchored event (0: empty chain, nothing anchored)
    hash: str
    anchor_file: str
    sent_to: str
    first_broken_seq: int | None = None
    problem: str | None = None


def anchor_head(
    *, database: Database | None = None, settings: Settings | None = None, now: datetime | None = None
) -> AnchorResult:
    """Verify the chain against the key and the earlier anchors; if it holds, append its head to
    the anchor file and queue it to the alert recipients and the webhook. A broken chain is not
    anchored: the recipients are told instead, and the failure is itself audited."""
    database = database or get_database()
    settings = settings or get_settings()
    now = now or utcnow()
    path = settings.audit_anchor_file
    with database.transaction() as session:
        found = service.verify(session=session, actor=SYSTEM, anchor_file=path)
        if not found.ok:
            log.error("audit chain broken: nothing anchored", extra={"problem": found.problem})
            failed = {"seq": found.first_broken_seq, "checked_at": now.isoformat()}
            sent_to = outbox.enqueue_audit_anchor(
                session, anchor=failed, problem=found.problem, now=now, settings=settings
            )
            service.record(
                session=session,
                actor=SYSTEM,
                action="audit.verify_failed",
                entity="audit_chain",
                entity_id=found.first_broken_seq,
                reason=found.problem,
            )
            return AnchorResult(False, 0, "", path, sent_to, found.first_broken_seq, found.problem)
        if found.events == 0:
            return AnchorResult(True, 0, found.head_hash, path, "the chain is empty: nothing to anchor")
        key = settings.audit_key.encode()
        key_id = service.key_id_of(key)
        anchor: dict[str, object] = {
            "anchored_at": now.isoformat(),
            "seq": found.events,  # a verified chain has no gaps: its head is event number `events`
            "hash": found.head_hash,
            "key_id": key_id,
            "keyed_from_seq": found.keyed_from_seq,
        }
        anchors.append(
            path,
            anchors.line_for(
                key=key,
                anchored_at=now,
                seq=found.events,
                hash=found.head_hash,
                key_id=key_id,
                keyed_from_seq=found.keyed_from_seq,
            ),
        )
        # Not an audit event itself: the anchored head must stay the newest event, so deleting it shows.
        sent_to = outbox.enqueue_audit_anchor(session, anchor=anchor, problem=None, now=now, settings=settings)
    log.info("audit chain anchored", extra={"seq": found.events, "file": path})
    return AnchorResult(True, found.events, found.head_hash, path, sent_to)
