"""The audit trail: pages of events, the chain checks (the full one on a background thread) and CSV export."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dashboard.data.base import transaction
from monitor.audit import service as audit_service
from monitor.audit import verification as audit_verification
from monitor.audit.schemas import AuditEventOut
from monitor.audit.verification import ChainCheck
from monitor.auth.actors import Actor, Permission, authorize
from monitor.errors import Invalid

AUDIT_PAGE_SIZE = 50
log = logging.getLogger("radmon.dashboard")


# -- audit trail -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page filters on (exact matches, as the service does)."""

    actor_name: str | None = None
    action: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    since: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        actor_name: str | None = None,
        action: str | None = None,
        entity: str | None = None,
        entity_id: str | None = None,
        since: str | None = None,
    ) -> AuditFilters:
        """Filters from form fields or URL parameters; `since` is a date or an ISO timestamp (UTC if no zone)."""
        since_at = None
        if since and since.strip():
            try:
                since_at = datetime.fromisoformat(since.strip())
            except ValueError:
                raise Invalid(f"'since' must be a date like 2026-01-31; got '{since}'") from None
            if since_at.tzinfo is None:
                since_at = since_at.replace(tzinfo=UTC)

        def clean(value: str | None) -> str | None:
            return value.strip() or None if value else None

        return cls(clean(actor_name), clean(action), clean(entity), clean(entity_id), since_at)

    def service_kwargs(self) -> dict[str, Any]:
        return {
            "actor_name": self.actor_name or None,
            "action": self.action or None,
            "entity": self.entity or None,
            "entity_id": self.entity_id or None,
            "since": self.since,
        }

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (export link, shareable page URL)."""
        pairs = {
            "actor": self.actor_name,
            "action": self.action,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "since": self.since.isoformat() if self.since else None,
        }
        return {key: value for key, value in pairs.items() if value}


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEventOut]
    next_before_seq: int | None  # None when this is the oldest page


def audit_events(
    *, actor: Actor, filters: AuditFilters, before_seq: int | None = None, limit: int = AUDIT_PAGE_SIZE
) -> AuditPage:
    """One page of events, newest first; pass next_before_seq back for the next (older) page."""
    with transaction() as session:
        # One extra row tells whether an older page exists without a count query.
        events = audit_service.list_events(
            session=session, actor=actor, before_seq=before_seq, limit=limit + 1, **filters.service_kwargs()
        )
        page = [AuditEventOut.model_validate(e) for e in events[:limit]]
        return AuditPage(events=page, next_before_seq=page[-1].seq if len(events) > limit else None)


def audit_chain(*, actor: Actor) -> ChainCheck:
    """The chain's state for the audit page: the events appended since the last verification
    rehashed from its head (the first ever check is a full one), the result kept (decision 0233)."""
    with transaction() as session:
        return audit_verification.verify_since_checkpoint(session=session, actor=actor)


def verify_audit_full(*, actor: Actor) -> ChainCheck:
    """Rehash the whole chain from the first event and keep the result."""
    with transaction() as session:
        return audit_verification.verify_full(session=session, actor=actor)


_full_verification_lock = threading.Lock()
_full_verification: tuple[datetime, threading.Thread] | None = None


def start_full_verification(*, actor: Actor) -> datetime:
    """The page's "verify full chain now": rehash the whole chain in a background thread (its
    time grows with the trail, seconds at a few hundred thousand events, so no callback waits for
    it) and return when it started; full_verification_result() finds its result. One runs at a
    time per process: a second request joins the running one."""
    authorize(actor, Permission.AUDIT_READ)
    global _full_verification
    with _full_verification_lock:
        if _full_verification is None or not _full_verification[1].is_alive():
            thread = threading.Thread(
                target=_verify_full_logged, kwargs={"actor": actor}, name="audit-full-verification", daemon=True
            )
            _full_verification = (datetime.now(UTC), thread)
            thread.start()
        return _full_verification[0]


def _verify_full_logged(*, actor: Actor) -> None:
    try:
        verify_audit_full(actor=actor)
    except Exception:  # a thread's exception would vanish: the log is where an operator looks
        log.exception("full audit chain verification failed")


def full_verification_result(*, actor: Actor, started_at: datetime) -> ChainCheck | None:
    """The full verification finished since started_at, or None while it runs."""
    with transaction() as session:
        return audit_verification.full_verified_since(session=session, actor=actor, started_at=started_at)


def audit_csv(*, actor: Actor, filters: AuditFilters) -> Iterator[str]:
    """The matching events as CSV lines, streamed from one read transaction.

    Authorization happens before this returns (the header line is produced eagerly), so a
    refused export fails as a whole instead of starting a 200 response."""
    scope = transaction()
    session = scope.__enter__()
    try:
        lines = audit_service.export_csv(session=session, actor=actor, **filters.service_kwargs())
        header = next(lines)
    except BaseException as exc:
        scope.__exit__(type(exc), exc, exc.__traceback__)
        raise

    def stream() -> Iterator[str]:
        try:
            yield header
            yield from lines
        except BaseException as exc:
            scope.__exit__(type(exc), exc, exc.__traceback__)
            raise
        scope.__exit__(None, None, None)

    return stream()
