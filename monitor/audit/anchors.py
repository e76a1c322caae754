"""Anchors: the chain head written outside the database, so deleting the newest events, truncating
the trail or rehashing it shows against a copy the database owner cannot reach (decision 0205).

An anchor is one JSON line appended to RADMON_AUDIT_ANCHOR_FILE (opened for append only, synced
before the job commits), MACed with RADMON_AUDIT_KEY so a line edited or forged in the file is
refused (a line from before a key rotation verifies under the retired key); the same head goes to the alert recipients or the webhook (monitor.alerts.outbox).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.errors import ConfigurationError

FORMAT = 1
_FIELDS = ("v", "anchored_at", "seq", "hash", "key_id", "keyed_from_seq")


@dataclass(frozen=True)
class Anchor:
    """One line of the anchor file: the chain's head at a moment."""

    line: int
    anchored_at: datetime
    seq: int
    hash: str
    key_id: str | None
    keyed_from_seq: int | None


@dataclass(frozen=True)
class AnchorCheck:
    anchors: int  # anchors compared
    anchored_seq: int | None  # the newest anchored event
    first_broken_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _mac(key: bytes, body: dict[str, Any]) -> str:
    text = json.dumps({name: body[name] for name in _FIELDS}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, b"radmon-audit-anchor:" + text.encode(), hashlib.sha256).hexdigest()


def line_for(
    *, key: bytes, anchored_at: datetime, seq: int, hash: str, key_id: str | None, keyed_from_seq: int | None
) -> str:
    """The anchor as one signed JSON line (newline included)."""
    body: dict[str, Any] = {
        "v": FORMAT,
        "anchored_at": anchored_at.isoformat(),
        "seq": seq,
        "hash": hash,
        "key_id": key_id,
        "keyed_from_seq": keyed_from_seq,
    }
    body["mac"] = _mac(key, body)
    return json.dumps(body, sort_keys=True) + "\n"


def append(path: str | Path, line: str) -> None:
    """Append the line and sync it: the file is only ever opened for appending."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(descriptor, line.encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot append to the anchor file {target} (RADMON_AUDIT_ANCHOR_FILE): {exc.strerror or exc}"
        ) from None


class AnchorFileError(ValueError):
    """A line of the anchor file is malformed or not signed by the configured key."""


def read(path: str | Path, *, keys: list[bytes]) -> list[Anchor]:
    """Every anchor in the file, oldest first ([] when there is no file yet); a bad line raises."""
    target = Path(path)
    if not target.exists():
        return []
    anchors = []
    with target.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                body = json.loads(text)
                valid = any(hmac.compare_digest(str(body["mac"]), _mac(key, body)) for key in keys)
                anchor = Anchor(
                    number,
                    datetime.fromisoformat(body["anchored_at"]),
                    int(body["seq"]),
                    str(body["hash"]),
                    body["key_id"],
                    body["keyed_from_seq"],
                )
            except (ValueError, KeyError, TypeError):
                raise AnchorFileError(f"line {number} of the anchor file {target} is malformed") from None
            if not valid:
                raise AnchorFileError(
                    f"line {number} of the anchor file {target} is not signed by RADMON_AUDIT_KEY: "
                    "it was edited or forged, or another key is configured"
                )
            anchors.append(anchor)
    return anchors


def check(*, session: Session, path: str | Path, keys: list[bytes]) -> AnchorCheck:
    """Compare the stored chain with every anchor: an anchored event must still exist with the
    anchored hash (a missing one means the newest events were deleted or the trail truncated)."""
    try:
        anchors = read(path, keys=keys)
    except AnchorFileError as exc:
        return AnchorCheck(0, None, None, str(exc))
    if not anchors:
        return AnchorCheck(0, None)
    head_seq = session.execute(select(func.max(AuditEvent.seq))).scalar_one() or 0
    seqs = sorted({anchor.seq for anchor in anchors if anchor.seq <= head_seq})
    stored: dict[int, str] = {}
    for start in range(0, len(seqs), 1000):
        chunk = seqs[start : start + 1000]
        stored.update(session.execute(select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq.in_(chunk))).all())
    newest = max(anchors, key=lambda anchor: anchor.seq)
    result = AnchorCheck(len(anchors), newest.seq)
    for anchor in sorted(anchors, key=lambda anchor: anchor.seq):
        when = f"{anchor.anchored_at:%Y-%m-%d %H:%M} UTC"
        if anchor.seq > head_seq:
            problem = (
                f"event {anchor.seq} was anchored on {when} but the chain now ends at event {head_seq}: "
                f"events {head_seq + 1} to {anchor.seq} were deleted"
            )
            return AnchorCheck(len(anchors), newest.seq, head_seq + 1, problem)
        if stored.get(anchor.seq) != anchor.hash:
            problem = f"event {anchor.seq} does not match its anchor of {when}: the chain was rewritten"
            return AnchorCheck(len(anchors), newest.seq, anchor.seq, problem)
    return result
