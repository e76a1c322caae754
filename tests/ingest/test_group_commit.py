"""Group commit of ingest requests, with real commits on both backends: shared transactions, own answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM, Actor
from monitor.config import load_settings
from monitor.db import Database, set_database
from monitor.errors import Forbidden
from monitor.ingest import service
from monitor.ingest.group_commit import GroupCommit, NotCommitted
from monitor.ingest.models import Inference
from monitor.main import create_app
from tests.factories import auth, make_model, make_user, make_version
from tests.ingest.conftest import PSEUDONYM_KEY, inference
from tests.live_server import served_in_thread


@pytest.fixture
def database(fresh_database: Database) -> Iterator[Database]:
    """A database of its own with ich-ct 2.1.0 committed, set as the process database."""
    with fresh_database.transaction() as session:
        make_model(session)
        make_version(session, activate=True)
    previous = set_database(fresh_database)
    yield fresh_database
    set_database(previous)


def ingesting(records: list[dict[str, Any]], actor: Actor) -> Callable[[Session], dict[str, Any]]:
    """A request's work, as the route hands it over."""
    return lambda session: service.ingest_inferences(
        session=session, actor=actor, records=records, pseudonym_key=PSEUDONYM_KEY
    ).as_dict()


class Request(threading.Thread):
    """One caller of GroupCommit.run in its own thread; keeps the answer or the exception."""

    def __init__(self, committer: GroupCommit, work: Callable[[Session], Any], records: int = 1) -> None:
        super().__init__(daemon=True)
        self.committer, self.work, self.records = committer, work, records
        self.answer: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.answer = self.committer.run(self.work, records=self.records)
        except BaseException as exc:
            self.error = exc


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@contextmanager
def leader_held(committer: GroupCommit, *, commits: bool = True) -> Iterator[None]:
    """A first request leads a group and waits inside it: requests made meanwhile queue up, and
    when it returns they form the next group together (the situation under load, made certain)."""
    inside, release = threading.Event(), threading.Event()

    def hold(_session: Session) -> str:
        inside.set()
        assert release.wait(30)
        return "held"

    holder = Request(committer, hold)
    holder.start()
    assert inside.wait(20)
    try:
        yield
    finally:
        release.set()
        holder.join(30)
    if commits:
        assert holder.answer == "held", holder.error
    else:
        assert isinstance(holder.error, NotCommitted)


def start_in_order(committer: GroupCommit, requests: list[Request]) -> None:
    """Start the requests one after the other, each queued before the next: the group's order."""
    for number, request in enumerate(requests, start=1):
        request.start()
        wait_for(lambda number=number: committer.queued == number, f"request {number} to queue")


def ingest_events(database: Database) -> list[AuditEvent]:
    with database.sessions() as session:
        return list(
            session.execute(
                select(AuditEvent).where(AuditEvent.action == "ingest.inferences").order_by(AuditEvent.seq)
            ).scalars()
        )


def stored_scores(database: Database) -> dict[str, float]:
    with database.sessions() as session:
        return {
            inference_id: score
            for inference_id, score in session.execute(select(Inference.inference_id, Inference.score))
        }


def chain_verifies(database: Database) -> bool:
    with database.sessions() as session:
        return audit_service.verify(session=session, actor=SYSTEM).ok


def accepted_ids(records: list[dict[str, Any]], answer: dict[str, Any]) -> set[str]:
    skipped = {item["index"] for item in answer["duplicates"] + answer["rejected"]}
    return {record["inference_id"] for index, record in enumerate(records) if index not in skipped}


def test_concurrent_requests_with_overlapping_records_share_one_commit_and_get_their_own_answers(
    database: Database,
) -> None:
    committer = GroupCommit()
    # Request i sends ids 3i .. 3i+5: each shares three ids with the next. The last one also
    # sends id 0 with a different score (a conflicting reuse of an id the first one sends).
    batches = [[inference(n) for n in range(3 * i, 3 * i + 6)] for i in range(8)]
    batches[-1].append(inference(0, score=0.11))
    actors = [Actor(username=f"ich-service-{i}", role="ingest") for i in range(8)]
    requests = [Request(committer, ingesting(batch, actor), len(batch)) for batch, actor in zip(batches, actors)]

    with leader_held(committer):
        start_in_order(committer, requests)
    for request in requests:
        request.join(30)

    assert [r.error for r in requests] == [None] * 8
    assert committer.groups == 2, "the eight requests queued behind the held group were not committed together"
    answers = [r.answer for r in requests]
    accepted = [accepted_ids(batch, answer) for batch, answer in zip(batches, answers)]
    # In queue order: the first request stores all six; each later one its three new ids and
    # answers the three it shares with its predecessor as duplicates (indexes 0-2).
    assert accepted[0] == {f"inf-{n:05d}" for n in range(6)}
    for i in range(1, 8):
        assert accepted[i] == {f"inf-{n:05d}" for n in range(3 * i + 3, 3 * i + 6)}
        assert [d["index"] for d in answers[i]["duplicates"]] == [0, 1, 2]
    assert answers[7]["rejected"] == [
        {
            "index": 6,
            "inference_id": "inf-00000",
            "field": "inference_id",
            "reason": "inference_id 'inf-00000' conflicts with the stored record for model 'ich-ct' "
            "(same id, different content); inference ids must be unique per model and records are immutable",
        }
    ]
    scores = stored_scores(database)
    assert set(scores) == {f"inf-{n:05d}" for n in range(27)} == set().union(*accepted)
    assert sum(answer["accepted"] for answer in answers) == 27
    assert scores["inf-00000"] == 0.87  # the first record stored for the id, not the conflicting one
    events = ingest_events(database)
    assert [event.actor for event in events] == [actor.username for actor in actors]
    assert [event.after["accepted"] for event in events] == [answer["accepted"] for answer in answers]
    assert [event.after["rejected"] for event in events] == [0] * 7 + [1]
    assert chain_verifies(database)


def test_a_failing_request_does_not_poison_its_group(database: Database, backend: str) -> None:
    committer = GroupCommit()
    first, last = [inference(n) for n in range(3)], [inference(n) for n in range(7, 9)]
    failed_late = [inference(n) for n in range(3, 7)]

    def stores_then_fails(session: Session) -> None:
        service.ingest_inferences(
            session=session, actor=Actor("late-failure", "ingest"), records=failed_late, pseudonym_key=PSEUDONYM_KEY
        )
        raise RuntimeError("the work failed after storing its records")

    def breaks_the_transaction(session: Session) -> None:
        # On PostgreSQL a failed statement aborts the whole transaction, unless it is undone to a savepoint.
        session.execute(text("INSERT INTO inferences (no_such_column) VALUES (1)"))

    requests = [
        Request(committer, ingesting(first, Actor("first", "ingest")), 3),
        Request(committer, stores_then_fails, 4),
        Request(committer, breaks_the_transaction),
        Request(committer, ingesting([inference(9)], Actor("viewer-user", "viewer"))),
        Request(committer, ingesting(last, Actor("last", "ingest")), 2),
    ]
    with leader_held(committer):
        start_in_order(committer, requests)
    for request in requests:
        request.join(30)

    assert committer.groups == 2
    assert requests[0].answer == {"accepted": 3, "duplicates": [], "rejected": []}
    assert isinstance(requests[1].error, RuntimeError) and "after storing" in str(requests[1].error)
    assert isinstance(requests[2].error, DBAPIError)
    assert isinstance(requests[3].error, Forbidden)
    assert requests[4].answer == {"accepted": 2, "duplicates": [], "rejected": []}
    assert set(stored_scores(database)) == {"inf-00000", "inf-00001", "inf-00002", "inf-00007", "inf-00008"}
    assert [(event.actor, event.after["accepted"]) for event in ingest_events(database)] == [("first", 3), ("last", 2)]
    assert chain_verifies(database)


def test_a_failed_commit_fails_every_request_of_the_group_and_stores_nothing(database: Database) -> None:
    @contextmanager
    def sessions_whose_commit_fails() -> Iterator[Session]:
        with database.sessions() as session:

            def commit() -> None:
                raise OperationalError("COMMIT", {}, Exception("could not write to the WAL: no space left on device"))

            session.commit = commit  # type: ignore[method-assign]
            yield session

    committer = GroupCommit(sessions_whose_commit_fails)
    requests = [Request(committer, ingesting([inference(n)], Actor(f"svc-{n}", "ingest"))) for n in range(4)]
    requests.append(Request(committer, ingesting([inference(9)], Actor("viewer-user", "viewer"))))
    with leader_held(committer, commits=False):
        start_in_order(committer, requests)
    for request in requests:
        request.join(30)

    for request in requests[:4]:
        assert isinstance(request.error, NotCommitted), request.error
        assert request.error.status_code == 503
        assert "not stored" in request.error.message and "retry" in request.error.message
    assert isinstance(requests[4].error, Forbidden)  # its own error, not the group's
    assert stored_scores(database) == {}
    assert ingest_events(database) == []


def test_a_group_stops_at_its_record_limit(database: Database) -> None:
    committer = GroupCommit(max_records=10)
    batches = [[inference(n) for n in range(4 * i, 4 * i + 4)] for i in range(4)]
    requests = [Request(committer, ingesting(batch, Actor("svc", "ingest")), 4) for batch in batches]
    with leader_held(committer):
        start_in_order(committer, requests)
    for request in requests:
        request.join(30)

    assert [r.answer["accepted"] for r in requests] == [4, 4, 4, 4]
    assert committer.groups == 3  # the held one, then 4+4 (a third would pass 10), then 4+4
    assert len(stored_scores(database)) == 16


def test_concurrent_http_posts_through_a_real_server(database: Database, tmp_path: Any) -> None:
    """Many clients at once against uvicorn: every id stored once, one audit event per answered
    request with its key's user, and no request of another key held up by a forbidden one."""
    with database.transaction() as session:
        keys = {name: make_user(session, role="ingest", username=name)[1] for name in ("site-a", "site-b")}
        viewer_key = make_user(session, role="viewer", username="viewer")[1]
    settings = load_settings(
        database_url=database.url,
        secret_key="test-secret-key-0123456789",
        pseudonym_key=PSEUDONYM_KEY,
        outbox_dir=str(tmp_path / "outbox"),
        log_format="text",
    )
    app = create_app(settings)
    answers: list[tuple[str, list[dict[str, Any]], int, dict[str, Any]]] = []
    lock = threading.Lock()

    def post(base_url: str, user: str, key: str, batches: list[list[dict[str, Any]]]) -> None:
        with httpx.Client(base_url=base_url, headers=auth(key), timeout=60) as http:
            for batch in batches:
                response = http.post("/api/v1/inferences", json={"records": batch})
                with lock:
                    answers.append((user, batch, response.status_code, response.json()))

    # Twelve clients, ten requests each; client c posts ids 10c .. 10c+19 in twos, so every id
    # is sent by two clients (of both users) at about the same time.
    plans = []
    for c in range(12):
        user = ("site-a", "site-b")[c % 2]
        ids = list(range(10 * c, 10 * c + 20))
        plans.append((user, keys[user], [[inference(n) for n in ids[i : i + 2]] for i in range(0, 20, 2)]))
    plans.append(("viewer", viewer_key, [[inference(1000)]] * 5))
    with served_in_thread(app, name="ingest-api") as base_url:
        threads = [threading.Thread(target=post, args=(base_url, *plan)) for plan in plans]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

    assert len(answers) == 12 * 10 + 5
    assert sorted(status for user, _, status, _ in answers if user == "viewer") == [403] * 5
    ok = [(user, batch, answer) for user, batch, status, answer in answers if user != "viewer" and status == 200]
    assert len(ok) == 120, [a for a in answers if a[2] != 200 and a[0] != "viewer"][:3]
    accepted = [accepted_ids(batch, answer) for _, batch, answer in ok]
    assert sum(len(ids) for ids in accepted) == len(set().union(*accepted)) == 130  # each id accepted once
    assert all(answer["rejected"] == [] for _, _, answer in ok)
    assert set(stored_scores(database)) == {f"inf-{n:05d}" for n in range(130)}
    events = ingest_events(database)
    assert len(events) == 120
    assert sorted(event.actor for event in events) == sorted(user for user, _, _ in ok)
    assert sum(event.after["accepted"] for event in events) == 130
    assert chain_verifies(database)


def test_a_group_takes_the_chain_lock_and_reads_the_chain_head_once(database: Database, backend: str) -> None:
    """What makes a group cheaper than its requests one by one: one chain lock, one head read, one
    INSERT of the group's audit events, one model lookup, one commit."""
    committer = GroupCommit()
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    requests = [Request(committer, ingesting([inference(n)], Actor(f"svc-{n}", "ingest"))) for n in range(6)]
    event.listen(database.engine, "before_cursor_execute", note)
    try:
        with leader_held(committer):  # the held group itself writes nothing
            start_in_order(committer, requests)
        for request in requests:
            request.join(30)
    finally:
        event.remove(database.engine, "before_cursor_execute", note)

    assert [r.answer["accepted"] for r in requests] == [1] * 6
    assert committer.groups == 2
    locks = [s for s in statements if "pg_advisory_xact_lock" in s]
    head_reads = [s for s in statements if s.startswith("SELECT audit_events.seq, audit_events.hash")]
    event_inserts = [s for s in statements if s.startswith("INSERT INTO audit_events")]
    model_reads = [s for s in statements if s.startswith("SELECT models.")]
    assert len(locks) == (1 if backend == "postgresql" else 0)
    assert len(head_reads) == 1 and len(event_inserts) == 1 and len(model_reads) == 1
    assert [e.actor for e in ingest_events(database)] == [f"svc-{n}" for n in range(6)]
    assert chain_verifies(database)
