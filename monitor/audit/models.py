"""Append-only, hash-chained audit events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, BigId, JSONType, UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity: Mapped[str] = mapped_column(String(64), index=True)
    entity_id: Mapped[str | None] = mapped_column(String(200))
    before: Mapped[Any] = mapped_column(JSONType, nullable=True)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Names the RADMON_AUDIT_KEY the hash is an HMAC under; NULL: a plain SHA-256 link from before
    # the chain was keyed (decision 0205).
    key_id: Mapped[str | None] = mapped_column(String(16))


class AuditVerification(Base):
    """One verification of the hash chain up to an event: full from the first event, or
    incremental from an earlier verified head. Lets the dashboard show the last result and
    rehash only the events appended since (the chain is append-only)."""

    __tablename__ = "audit_verifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_by: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))  # "full" or "incremental"
    from_seq: Mapped[int] = mapped_column(BigInteger)  # first event rehashed
    through_seq: Mapped[int] = mapped_column(BigInteger)  # last event covered (0: empty chain)
    head_hash: Mapped[str] = mapped_column(String(64))  # hash of event through_seq (GENESIS when empty)
    events_checked: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    first_broken_seq: Mapped[int | None] = mapped_column(BigInteger)
    problem: Mapped[str | None] = mapped_column(Text)
    # HMAC under RADMON_AUDIT_KEY over the row's content: a checkpoint forged or edited in the
    # database is ignored (NULL: written before 0205, never trusted).
    mac: Mapped[str | None] = mapped_column(String(64))
