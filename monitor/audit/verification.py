"""Checkpointed verification of the audit hash chain (decision 0233): every verification is kept
with the head it covered, so a later one rehashes only the events appended since.

The chain is append-only (triggers refuse UPDATE, DELETE and TRUNCATE), so an event verified once
stays verified unless someone bypasses the triggers; a full verification (the dashboard's button,
GET /api/v1/audit/verify, `radmon audit verify`) still rehashes from the first event. Each check
also compares the chain with the anchors kept outside the database. A checkpoint carries a MAC
under RADMON_AUDIT_KEY (decision 0205): one forged or edited in the database is ignored, so the
next check rehashes from the newest genuine one (or from the first event).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit import anchors
from monitor.audit.models import AuditEvent, AuditVerification
from monitor.audit.service import (
    GENESIS_HASH,
    HASHED_COLUMNS,
    ChainWalk,
    chain_hash,
    chain_key,
    chain_keys,
    mac,
    walk_chain,
)
from monitor.auth.actors import Actor, Permission, authorize
from monitor.config import get_settings
from monitor.db import utcnow


@dataclass(frozen=True)
class ChainCheck:
    """What the audit page shows: the chain's state through an event, how it was established,
    and when the whole chain was last rehashed."""

    ok: bool
    through_seq: int  # last event verified (0: empty chain)
    head_hash: str
    first_broken_seq: int | None
    problem: str | None
    scope: str  # "full" or "incremental"
    from_seq: int  # first event this check rehashed
    checked: int  # events this check rehashed
    verified_at: datetime
    verified_by: str
    last_full_at: datetime | None
    last_full_by: str | None
    last_full_ok: bool | None


def _events_after(session: Session, seq: int) -> Iterable[Any]:
    return session.execute(
        select(*HASHED_COLUMNS).where(AuditEvent.seq > seq).order_by(AuditEvent.seq).execution_options(yield_per=2000)
    )


def _content(row: AuditVerification) -> str:
    """What a checkpoint's MAC covers."""
    body = {
        "verified_at": row.verified_at.isoformat(),
        "verified_by": row.verified_by,
        "scope": row.scope,
        "from_seq": row.from_seq,
        "through_seq": row.through_seq,
        "head_hash": row.head_hash,
        "events_checked": row.events_checked,
        "ok": row.ok,
        "first_broken_seq": row.first_broken_seq,
        "problem": row.problem,
    }
    return "radmon-audit-checkpoint:" + json.dumps(body, sort_keys=True, separators=(",", ":"))


def genuine(row: AuditVerification, keys: list[bytes]) -> bool:
    """The checkpoint was written by radmon under one of the keys (not forged or edited in the database)."""
    return row.mac is not None and any(row.mac == mac(key, _content(row)) for key in keys)


def _genuine_newest(session: Session, *conditions: Any) -> AuditVerification | None:
    """The newest checkpoint matching the conditions whose MAC holds; forged rows are skipped."""
    keys = chain_keys()
    rows: Iterator[AuditVerification] = iter(
        session.execute(
            select(AuditVerification)
            .where(*conditions)
            .order_by(AuditVerification.id.desc())
            .execution_options(yield_per=50)
        ).scalars()
    )
    return next((row for row in rows if genuine(row, keys)), None)


def _against_anchors(session: Session, walk: ChainWalk) -> ChainWalk:
    """The walk, failed if the chain no longer matches an anchor kept outside the database."""
    if not walk.ok:
        return walk
    found = anchors.check(session=session, path=get_settings().audit_anchor_file, keys=chain_keys())
    if found.ok:
        return walk
    return ChainWalk(False, walk.through_seq, walk.head_hash, walk.checked, found.first_broken_seq, found.problem)


def _record(session: Session, actor: Actor, scope: str, from_seq: int, walk: ChainWalk) -> AuditVerification:
    walk = _against_anchors(session, walk)
    row = AuditVerification(
        verified_at=utcnow(),
        verified_by=actor.username,
        scope=scope,
        from_seq=from_seq,
        through_seq=walk.through_seq,
        head_hash=walk.head_hash,
        events_checked=walk.checked,
        ok=walk.ok,
        first_broken_seq=walk.first_broken_seq,
        problem=walk.problem,
    )
    row.mac = mac(chain_key(), _content(row))
    session.add(row)
    session.flush()
    return row


def _check(
    session: Session, row: AuditVerification, *, checked: int | None = None, from_seq: int | None = None
) -> ChainCheck:
    full = _genuine_newest(session, AuditVerification.scope == "full")
    return ChainCheck(
        ok=row.ok,
        through_seq=row.through_seq,
        head_hash=row.head_hash,
        first_broken_seq=row.first_broken_seq,
        problem=row.problem,
        scope=row.scope,
        from_seq=row.from_seq if from_seq is None else from_seq,
        checked=row.events_checked if checked is None else checked,
        verified_at=row.verified_at,
        verified_by=row.verified_by,
        last_full_at=full.verified_at if full else None,
        last_full_by=full.verified_by if full else None,
        last_full_ok=full.ok if full else None,
    )


def verify_full(*, session: Session, actor: Actor) -> ChainCheck:
    """Rehash the whole chain from the first event and keep the result as the new checkpoint."""
    authorize(actor, Permission.AUDIT_READ)
    walk = walk_chain(_events_after(session, 0), GENESIS_HASH, 1)
    return _check(session, _record(session, actor, "full", 1, walk))


def verify_since_checkpoint(*, session: Session, actor: Actor) -> ChainCheck:
    """Rehash only the events after the last successful verification, starting from the head it
    covered (that head event is rehashed too, so a changed checkpoint head shows). With no
    checkpoint yet, a full verification. A failed verification stands until a full one passes:
    this never hides a break found earlier."""
    authorize(actor, Permission.AUDIT_READ)
    last = _genuine_newest(session)
    if last is None:
        return verify_full(session=session, actor=actor)
    if not last.ok:
        return _check(session, last, checked=0)
    start = last.through_seq + 1
    head = None
    if last.through_seq > 0:
        head = session.execute(select(*HASHED_COLUMNS).where(AuditEvent.seq == last.through_seq)).one_or_none()
        if head is None or head.hash != last.head_hash or head.hash != chain_hash(head.prev_hash, head):
            problem = (
                f"event {last.through_seq} no longer matches the hash verified on {last.verified_at:%Y-%m-%d %H:%M} UTC"
            )
            walk = ChainWalk(False, last.through_seq - 1, last.head_hash, 1, last.through_seq, problem)
            return _check(session, _record(session, actor, "incremental", last.through_seq, walk))
    after_key_id = head.key_id if head is not None else None
    walk = walk_chain(_events_after(session, last.through_seq), last.head_hash, start, after_key_id=after_key_id)
    if walk.checked == 0 and _against_anchors(session, walk).ok:
        return _check(session, last, checked=0, from_seq=start)  # nothing new: the checkpoint stands, nothing written
    return _check(session, _record(session, actor, "incremental", start, walk))


def full_verified_since(*, session: Session, actor: Actor, started_at: datetime) -> ChainCheck | None:
    """The newest full verification recorded at or after started_at (None while one still runs)."""
    authorize(actor, Permission.AUDIT_READ)
    row = _genuine_newest(session, AuditVerification.scope == "full", AuditVerification.verified_at >= started_at)
    return None if row is None else _check(session, row)
