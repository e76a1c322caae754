"""Append audit events to an HMAC-SHA256 chain keyed by RADMON_AUDIT_KEY, verify it, query and export it.

The key is the application's and never the database's (decision 0205): someone who can write the
table can still not compute a valid hash, so a rewrite shows however the triggers were bypassed.
Events appended before a key was configured keep their plain SHA-256 links; the first keyed event
covers the hash of the last plain one, so the plain prefix is protected from then on.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, insert, select, text
from sqlalchemy.orm import Session

from monitor.audit import anchors
from monitor.audit.models import AuditEvent
from monitor.auth.actors import Actor, Permission, authorize
from monitor.config import get_settings
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


def chain_key() -> bytes:
    """The process's RADMON_AUDIT_KEY (settings are validated at start, so it is always set)."""
    return get_settings().audit_key.encode()


def chain_keys() -> list[bytes]:
    """Every audit key in the order it was used (RADMON_AUDIT_PREVIOUS_KEYS, then RADMON_AUDIT_KEY)."""
    return [key.encode() for key in get_settings().audit_keys]


def key_id_of(key: bytes) -> str:
    """A public name for a key (shown, stored with each event): it reveals nothing of the key."""
    return hmac.new(key, b"radmon-audit-key-id", hashlib.sha256).hexdigest()[:16]


def mac(key: bytes, message: str) -> str:
    """HMAC-SHA256 of a text under the audit key, as hex."""
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def canonical_json(event: Any) -> str:
    """The exact bytes an event's hash covers (a keyed event's covers its key id too)."""
    body: dict[str, Any] = {
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
    if event.key_id is not None:
        body["key_id"] = event.key_id
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, event: Any, key: bytes | None = None) -> str:
    """The event's link: HMAC-SHA256 under the audit key its key id names (or `key`), or plain
    SHA-256 for an event from before the chain was keyed. An unknown key id gives no valid link."""
    if event.key_id is None:
        return hashlib.sha256((prev_hash + canonical_json(event)).encode()).hexdigest()
    if key is None:
        key = next((known for known in chain_keys() if key_id_of(known) == event.key_id), None)
        if key is None:
            return ""
    return mac(key, prev_hash + canonical_json(event))


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
    key = chain_key()
    key_id = key_id_of(key)
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
            key_id=key_id,
        )
        event.hash = prev_hash = chain_hash(prev_hash, event, key)
        chained.append(event)
    return chained


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None
    keyed_from_seq: int | None = None  # the first event keyed by RADMON_AUDIT_KEY (None: no keyed event)
    anchors: int = 0  # anchors outside the database the chain was compared with
    anchored_seq: int | None = None  # the newest anchored event
    anchor_file: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_hash": self.head_hash,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
            "keyed_from_seq": self.keyed_from_seq,
            "anchors": self.anchors,
            "anchored_seq": self.anchored_seq,
        }


@dataclass(frozen=True)
class ChainWalk:
    ok: bool
    through_seq: int  # the last event found intact (0: none)
    head_hash: str  # its hash
    checked: int  # events rehashed, the broken one included
    first_broken_seq: int | None = None
    problem: str | None = None
    keyed_from_seq: int | None = None  # the first keyed event this walk met


def _broken_link(event: Any, expected_seq: int, prev_hash: str, keys: dict[str, bytes], epoch: int) -> str | None:
    """Why the event does not continue the chain, or None. keys: by key id, oldest first; epoch:
    the index of the key the event before was keyed with (-1: a plain link or none)."""
    if event.seq != expected_seq:
        return f"event {expected_seq} is missing (next stored event is {event.seq})"
    if event.prev_hash != prev_hash:
        return f"event {event.seq} does not point at the hash of event {event.seq - 1}"
    if event.key_id is None and epoch >= 0:
        return (
            f"event {event.seq} has a plain SHA-256 link after keyed events: "
            "it was rewritten by someone without RADMON_AUDIT_KEY"
        )
    if event.key_id is not None:
        ids = list(keys)
        if event.key_id not in keys:
            return (
                f"event {event.seq} is keyed with another key (key id {event.key_id}; RADMON_AUDIT_KEY's is "
                f"{ids[-1]}): the wrong key is configured, a retired one is missing from RADMON_AUDIT_PREVIOUS_KEYS, "
                "or the event was forged"
            )
        if ids.index(event.key_id) < epoch:
            return (
                f"event {event.seq} is keyed with a retired key (key id {event.key_id}) after events under a newer "
                "one: it was forged with a retired key"
            )
    if event.hash != chain_hash(prev_hash, event, keys.get(event.key_id)):
        return f"event {event.seq} was altered after it was written (hash mismatch)"
    return None


def walk_chain(
    events: Iterable[Any],
    prev_hash: str = GENESIS_HASH,
    expected_seq: int = 1,
    *,
    after_key_id: str | None = None,
    keys: list[bytes] | None = None,
) -> ChainWalk:
    """Rehash events in seq order from expected_seq, each against the one before; stops at the first broken link.
    after_key_id: the key id of the event before expected_seq (once keyed, every later event must be,
    under the same key or a newer one)."""
    by_id = {key_id_of(key): key for key in (chain_keys() if keys is None else keys)}
    ids = list(by_id)
    epoch = ids.index(after_key_id) if after_key_id in ids else -1
    checked = 0
    keyed_from = None
    for event in events:
        checked += 1
        problem = _broken_link(event, expected_seq, prev_hash, by_id, epoch)
        if problem:
            return ChainWalk(False, expected_seq - 1, prev_hash, checked, expected_seq, problem, keyed_from)
        if event.key_id is not None:
            if epoch < 0:
                keyed_from = event.seq
            epoch = ids.index(event.key_id)
        prev_hash, expected_seq = event.hash, expected_seq + 1
    return ChainWalk(True, expected_seq - 1, prev_hash, checked, keyed_from_seq=keyed_from)


def verify(*, session: Session, actor: Actor, anchor_file: str | None = None) -> Verification:
    """Recompute the chain from the start, compare it with the anchors kept outside the database,
    and name the first broken link."""
    authorize(actor, Permission.AUDIT_READ)
    rows = session.execute(select(*HASHED_COLUMNS).order_by(AuditEvent.seq).execution_options(yield_per=2000))
    walk = walk_chain(rows)
    path = anchor_file or get_settings().audit_anchor_file
    against = anchors.check(session=session, path=path, keys=chain_keys())
    broken = walk if not walk.ok else against
    return Verification(
        walk.ok and against.ok,
        walk.checked,
        walk.head_hash,
        broken.first_broken_seq,
        broken.problem,
        walk.keyed_from_seq,
        against.anchors,
        against.anchored_seq,
        path,
    )


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
    "key_id",  # with the key, an exported trail can be re-verified away from radmon
)
# Every stored column, in the order record_many inserts them.
_COLUMNS = EXPORT_COLUMNS
# The same columns read as plain rows for verification (chain_hash reads them by attribute): no
# ORM identity map for thousands of events.
HASHED_COLUMNS: tuple[Any, ...] = tuple(getattr(AuditEvent, name) for name in EXPORT_COLUMNS)
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
                event.key_id or "",
            ]
        )
        yield flush()
