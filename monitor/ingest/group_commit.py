"""Group commit for ingest requests: concurrent batches share one transaction, one chain lock and one commit.

Every ingest request appends a chained audit event, and the chain's lock is held from the
append to the commit (its fsync included), so one transaction per request makes concurrent
requests queue behind each other's fsync. Here a request hands its work to the committer
instead; whichever waiting thread finds no group in progress becomes the leader, takes the
queued work (up to `max_records` records), runs each piece in its own savepoint, commits once,
and wakes the others with their own result or error. See docs/decisions/0402-ingest-group-commit.md.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.db import get_database
from monitor.errors import MonitorError

T = TypeVar("T")
log = logging.getLogger("radmon.ingest")

# A group stops taking requests once it holds this many records (the first request always fits).
MAX_GROUP_RECORDS = 20_000


# session.info keys: where the work of a group leaves its audit events (see audit_later), and
# what the requests of a group share (see shared_by_group).
_PENDING_EVENTS = "radmon.ingest.pending_audit_events"
_SHARED = "radmon.ingest.shared_by_group"


def shared_by_group(session: Session) -> dict[str, Any] | None:
    """A dict the requests of a committer share, within a group and across its groups, for lookups
    of what never changes once committed (registered models and their versions: a caller that
    misses something looks it up again); None outside a group commit."""
    shared: dict[str, Any] | None = session.info.get(_SHARED)
    return shared


def audit_later(session: Session, event: audit_service.PendingEvent) -> bool:
    """Leave the event to the group this session belongs to, which appends the events of its
    successful requests together just before its commit (one chain lock, one head read, one
    INSERT). False outside a group commit: the caller records the event itself."""
    pending: list[audit_service.PendingEvent] | None = session.info.get(_PENDING_EVENTS)
    if pending is None:
        return False
    pending.append(event)
    return True


class NotCommitted(MonitorError):
    """The group's commit failed: nothing of the request is stored, and a retry is safe."""

    status_code = 503
    code = "not_committed"


class _Job(Generic[T]):
    __slots__ = ("done", "error", "lead", "records", "result", "wake", "work")

    def __init__(self, work: Callable[[Session], T], records: int) -> None:
        self.work = work
        self.records = records
        self.done = False
        self.lead = False  # this job's thread is to run the next group
        self.wake = threading.Event()  # set when the job is done or its thread is to lead
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


def _process_sessions() -> AbstractContextManager[Session]:
    # Looked up per group, not captured at start: tests and the CLI re-point the process database.
    return get_database().sessions()


class GroupCommit:
    """Runs `work(session)` callables from many threads in shared transactions (leader/follower).

    Each work item sees the effects of the items before it in its group (they share the
    transaction) and none of a failed item's: it runs in its own savepoint, which is rolled back
    when it raises, and only its caller gets the error. `run` returns after the commit, so a
    result always means committed; when the commit fails every caller of the group gets
    NotCommitted (503) and nothing of theirs is stored."""

    def __init__(
        self,
        sessions: Callable[[], AbstractContextManager[Session]] = _process_sessions,
        *,
        max_records: int = MAX_GROUP_RECORDS,
    ) -> None:
        self._sessions = sessions
        self._max_records = max_records
        self._queue: deque[_Job[Any]] = deque()
        self._lock = threading.Lock()
        self._leading = False
        # What shared_by_group returns: kept across groups while they run on the same database.
        self._shared: dict[str, Any] = {}
        self._shared_bind: object = None
        self.groups = 0  # groups run so far, committed or not (tests and benches read it)

    @property
    def queued(self) -> int:
        """Requests waiting for a group to take them."""
        with self._lock:
            return len(self._queue)

    def run(self, work: Callable[[Session], T], *, records: int = 1) -> T:
        """The work's result once it is committed; its own exception, or NotCommitted, otherwise.

        Each waiting thread sleeps on its own event: a finished group wakes its own requests and
        hands the lead to the oldest queued one, never every waiting thread (with a shared
        condition and notify_all, 100 queued requests meant 100 wake-ups per commit, which cost
        more CPU than the requests themselves at 200 requests/s)."""
        job: _Job[T] = _Job(work, records)
        with self._lock:
            self._queue.append(job)
            if not self._leading:  # the queue held nothing else: this job is its head
                self._leading = job.lead = True
        while not job.done:
            if job.lead:
                with self._lock:
                    group = self._take_group()
                self._lead(group)
            else:
                job.wake.wait()
                job.wake.clear()
        return job.outcome()

    def _take_group(self) -> list[_Job[Any]]:
        group = [self._queue.popleft()]
        records = group[0].records
        while self._queue and records + self._queue[0].records <= self._max_records:
            job = self._queue.popleft()
            records += job.records
            group.append(job)
        return group

    def _lead(self, group: list[_Job[Any]]) -> None:
        settled = False
        try:
            self._commit(group)
            settled = True
        finally:
            with self._lock:
                for job in group:
                    if not settled and job.error is None:
                        # Interrupted between the work and the commit's end: report nothing as stored.
                        job.result, job.error = None, NotCommitted("the batch was not committed; retry it")
                    job.done, job.lead = True, False
                self.groups += 1
                successor = self._queue[0] if self._queue else None
                if successor is not None:
                    successor.lead = True
                else:
                    self._leading = False
            for job in group:
                job.wake.set()
            if successor is not None:
                successor.wake.set()

    def _shared_for(self, session: Session) -> dict[str, Any]:
        bind = session.get_bind()
        if bind is not self._shared_bind:  # another database (tests and the CLI re-point the process)
            self._shared, self._shared_bind = {}, bind
        return self._shared

    def _commit(self, group: list[_Job[Any]]) -> None:
        """Run the group's work and commit it; every job ends with a result or an error."""
        try:
            with self._sessions() as session:
                events: list[audit_service.PendingEvent] = []
                session.info[_SHARED] = self._shared_for(session)
                try:
                    for job in group:
                        # A group of one needs no savepoint: its failure rolls the whole transaction back.
                        _run(session, job, events, savepoint=len(group) > 1)
                finally:
                    session.info.pop(_PENDING_EVENTS, None)
                    session.info.pop(_SHARED, None)
                if any(job.error is None for job in group):
                    audit_service.record_many(session=session, events=events)
                    session.commit()
        except Exception as exc:
            # The commit, the connection or a savepoint failed: no job of the group is stored.
            log.warning("ingest group of %d requests not committed: %r", len(group), exc)
            failure = NotCommitted(
                f"the batch was not stored: the database transaction failed ({exc.__class__.__name__}); "
                "retry it (ingestion is idempotent)"
            )
            for job in group:
                if job.error is None:
                    job.result, job.error = None, failure


def _run(session: Session, job: _Job[Any], events: list[audit_service.PendingEvent], *, savepoint: bool) -> None:
    """One job's work; on failure its changes and audit events are undone and it keeps the error.

    A failure of the savepoint itself (its rollback or release) is not caught: it fails the group."""
    own_events: list[audit_service.PendingEvent] = []
    session.info[_PENDING_EVENTS] = own_events
    nested = session.begin_nested() if savepoint else None
    try:
        result = job.work(session)
    except Exception as exc:
        if nested is not None:
            nested.rollback()
        else:
            session.rollback()
        job.error = exc
        return
    if nested is not None:
        nested.commit()
    job.result = result
    events.extend(own_events)


async def ingest_commit(request: Request) -> GroupCommit:
    """The application's group committer (a dependency, so tests can bind it to their session).

    Async only so that FastAPI resolves it on the event loop rather than in a worker thread."""
    committer: GroupCommit = request.app.state.ingest_commit
    return committer
