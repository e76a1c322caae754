"""Append audit events to a SHA-256 hash chain, verify the chain, query and export it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, insert, select, text
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth.actors import Actor, Permission, authorize
from monitor.db import utcnow
from monitor.errors import Invalid

GENESIS_HASH = "0" * 64
# Any constant works; it names the one lock every appender takes on PostgreSQL, so the
# chain head read and the insert cannot interleave with another transaction's.
_CHAIN_LOCK_ID = 0x7261646D6F6E  # "radmon"


def _jsonable(value: Any) -> Any:
    """The value as it will read back from the JSON column (so the hash is reproducible)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=_json_default, sort_keys=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def canonical_json(event: AuditEvent | Row[Any]) -> str:
    """The exact bytes an event's hash covers."""
    body = {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, event: AuditEvent | Row[Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(event)).encode()).hexdigest()


def record(
    *,
    session: Session,
    actor: Actor | str,
    action: str,
    entity: str,
    entity_id: Any = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (it commits or rolls back with the change)."""
    pending = PendingEvent(
        actor=actor if isinstance(actor, str) else actor.username,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
        reason=reason,
    )
    (event,) = _chained(session, [pending])
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class PendingEvent:
    """An event whose change is made and whose append is left to record_many (an ingest group's)."""

    actor: str
    action: str
    entity: str
    entity_id: str | None = None
    before: Any = None
    after: Any = None
    reason: str | None = None


def record_many(*, session: Session, events: list[PendingEvent]) -> None:
    """Append events in order in the caller's transaction, as record() would one by one, with one
    chain lock, one head read and one INSERT (the chain and the hashes are the same)."""
    if events:
        rows = [{column: getattr(event, column) for column in _COLUMNS} for event in _chained(session, events)]
        session.execute(insert(AuditEvent), rows)


def _chained(session: Session, events: list[PendingEvent]) -> list[AuditEvent]:
    """The events as rows of the chain after its current head, hashed; the chain's lock is held
    until the caller's transaction ends. Their time is the append's, taken under the lock, so
    `at` never goes back along the chain."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CHAIN_LOCK_ID})
    head = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    at = utcnow()
    chained = []
    for pending in events:
        seq += 1
        # seq is part of the hashed content, so it is set explicitly rather than after insert.
        event = AuditEvent(
            seq=seq,
            at=at,
            actor=pending.actor,
            action=pending.action,
            entity=pending.entity,
            entity_id=pending.entity_id,
            before=_jsonable(pending.before),
            after=_jsonable(pending.after),
            reason=pending.reason,
            prev_hash=prev_hash,
        )
        event.hash = prev_hash = chain_hash(prev_hash, event)
        chained.append(event)
    return chained


_COLUMNS = ("seq", "at", "actor", "action", "entity", "entity_id", "before", "after", "reason", "prev_hash", "hash")


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_hash": self.head_hash,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class ChainWalk:
    ok: bool
    through_seq: int  # the last event found intact (0: none)
    head_hash: str  # its hash
    checked: int  # events rehashed, the broken one included
    first_broken_seq: int | None = None
    problem: str | None = None


def walk_chain(events: Iterable[Any], prev_hash: str = GENESIS_HASH, expected_seq: int = 1) -> ChainWalk:
    """Rehash events in seq order from expected_seq, each against the one before; stops at the first broken link."""
    checked = 0
    for event in events:
        checked += 1
        problem = None
        if event.seq != expected_seq:
            problem = f"event {expected_seq} is missing (next stored event is {event.seq})"
        elif event.prev_hash != prev_hash:
            problem = f"event {event.seq} does not point at the hash of event {event.seq - 1}"
        elif event.hash != chain_hash(prev_hash, event):
            problem = f"event {event.seq} was altered after it was written (hash mismatch)"
        if problem:
            return ChainWalk(False, expected_seq - 1, prev_hash, checked, expected_seq, problem)
        prev_hash, expected_seq = event.hash, expected_seq + 1
    return ChainWalk(True, expected_seq - 1, prev_hash, checked)


def verify(*, session: Session, actor: Actor) -> Verification:
    """Recompute the chain from the start and name the first broken link."""
    authorize(actor, Permission.AUDIT_READ)
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000)).scalars()
    walk = walk_chain(rows)
    return Verification(walk.ok, walk.checked, walk.head_hash, walk.first_broken_seq, walk.problem)


def _utc(name: str, value: datetime | None) -> datetime | None:
    """The bound in UTC; a naive or out-of-range one is refused with the field's name."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise Invalid(f"{name} must include a timezone, e.g. 2026-11-02T08:00:00Z", details={"field": name})
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{name} is out of range", details={"field": name}) from None


def _filtered(
    *,
    entity: str | None,
    entity_id: str | None,
    actor_name: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[AuditEvent]:
    since, until = _utc("since", since), _utc("until", until)
    query = select(AuditEvent)
    for column, value in (
        (AuditEvent.entity, entity),
        (AuditEvent.entity_id, entity_id),
        (AuditEvent.actor, actor_name),
        (AuditEvent.action, action),
    ):
        if value:
            query = query.where(column == value)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    return query


def list_events(
    *,
    session: Session,
    actor: Actor,
    entity: str | None = None,
    entity_id: str | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[AuditEvent]:
    """Newest first; page with before_seq (the last seq of the previous page)."""
    authorize(actor, Permission.AUDIT_READ)
    query = _filtered(
        entity=entity, entity_id=entity_id, actor_name=actor_name, action=action, since=since, until=until
    )
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    return list(session.execute(query.order_by(AuditEvent.seq.desc()).limit(limit)).scalars())


EXPORT_COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "entity",
    "entity_id",
    "before",
    "after",
    "reason",
    "prev_hash",
    "hash",
)
# A cell starting with one of these is a formula to a spreadsheet: an auditor opening the
# export must not run what someone typed into a reason.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str | None) -> str:
    """Free text made safe for spreadsheets (a leading apostrophe, as OWASP recommends)."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_csv(*, session: Session, actor: Actor, **filters: Any) -> Iterator[str]:
    """CSV lines (header first), oldest first, streamed."""
    authorize(actor, Permission.AUDIT_READ)
    query = _filtered(
        entity=filters.get("entity"),
        entity_id=filters.get("entity_id"),
        actor_name=filters.get("actor_name"),
        action=filters.get("action"),
        since=filters.get("since"),
        until=filters.get("until"),
    ).order_by(AuditEvent.seq)
    return _csv_lines(session, query)


def _csv_lines(session: Session, query: Select[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow(EXPORT_COLUMNS)
    yield flush()
    for event in session.execute(query.execution_options(yield_per=2000)).scalars():
        writer.writerow(
            [
                event.seq,
                event.at.isoformat(),
                _cell(event.actor),
                event.action,
                event.entity,
                _cell(event.entity_id),
                "" if event.before is None else json.dumps(event.before, sort_keys=True),
                "" if event.after is None else json.dumps(event.after, sort_keys=True),
                _cell(event.reason),
                event.prev_hash,
                event.hash,
            ]
        )
        yield flush()
