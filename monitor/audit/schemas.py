"""Audit event and verification responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: Any
    after: Any
    reason: str | None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_before_seq: int | None


class VerificationOut(BaseModel):
    ok: bool
    events: int
    head_hash: str
    first_broken_seq: int | None
    problem: str | None
    keyed_from_seq: int | None = None
    anchors: int = 0
    anchored_seq: int | None = None
