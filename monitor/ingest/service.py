"""Inference and outcome ingestion: per-record checks, pseudonyms, idempotent bulk storage, supersession."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import (
    Integer,
    Select,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    func,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.checks.models import PolicyRecord
from monitor.db import utcnow
from monitor.errors import ConfigurationError, NotFound, TooLarge
from monitor.ingest import phi
from monitor.ingest.group_commit import audit_later, shared_by_group
from monitor.ingest.models import Inference, Outcome
from monitor.ingest.pseudonym import pseudonymize
from monitor.ingest.schemas import (
    DEFAULT_PLAUSIBILITY,
    ParsedInference,
    ParsedOutcome,
    Plausibility,
    Problem,
    check_for_task,
    inference_id_of,
    is_name,
    parse_inference,
    parse_outcome,
)
from monitor.observability import RECORDS
from monitor.registry import service as registry_service

MAX_BATCH_RECORDS = 10_000
# From this many new records on, PostgreSQL gets them through COPY; fewer go through one
# multi-row INSERT (COPY's set-up costs more than it saves on a handful of rows).
COPY_THRESHOLD = 200
# Bound parameters per IN list: well under SQLite's 32766 variables per statement.
_IN_CHUNK = 5000
# Namespace of the per-model advisory locks that serialize outcome batches on PostgreSQL
# (pg_advisory_xact_lock(namespace, model_id)); any constant other than the audit chain's.
_OUTCOME_LOCK_NAMESPACE = 0x6F7574  # "out"

_SORTED = orjson.OPT_SORT_KEYS


# ---------------------------------------------------------------------------- the answer


@dataclass
class BatchResult:
    """What happened to each record of a batch; indexes refer to the request's `records`."""

    accepted: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    by_model: dict[str, Counter[str]] = field(default_factory=dict)

    def accept(self, model: str) -> None:
        self.accepted += 1
        self._count(model, "accepted")

    def duplicate(self, index: int, inference_id: str | None, model: str) -> None:
        self.duplicates.append({"index": index, "inference_id": inference_id})
        self._count(model, "duplicates")

    def reject(self, index: int, inference_id: str | None, problem: Problem, model: str | None = None) -> None:
        self.rejected.append(
            {"index": index, "inference_id": inference_id, "field": problem.field, "reason": problem.reason}
        )
        if model is not None:
            self._count(model, "rejected")

    def drop(self, index: int, inference_id: str | None, features: list[str]) -> None:
        """Undeclared features left out of a record that is otherwise stored (or a duplicate)."""
        self.dropped.append({"index": index, "inference_id": inference_id, "features": features})

    def _count(self, model: str, result: str) -> None:
        self.by_model.setdefault(model, Counter())[result] += 1

    @property
    def total(self) -> int:
        return self.accepted + len(self.duplicates) + len(self.rejected)

    def as_dict(self) -> dict[str, Any]:
        """The API answer: {"accepted", "duplicates", "rejected"} and, when features were left out,
        "dropped"; lists in request order."""
        return {
            "accepted": self.accepted,
            "duplicates": sorted(self.duplicates, key=_by_index),
            "rejected": sorted(self.rejected, key=_by_index),
        } | self._dropped()

    def _dropped(self) -> dict[str, Any]:
        # Only when something was dropped, so the answer of a client that sends what its model's
        # policy declares reads as before. A record rejected later (a conflicting id) stored
        # nothing: its drops are moot.
        if not self.dropped:
            return {}
        rejected = {item["index"] for item in self.rejected}
        return {"dropped": sorted((d for d in self.dropped if d["index"] not in rejected), key=_by_index)}

    def summary(self) -> dict[str, Any]:
        """Counts only, overall and per registered model (the audit event's `after`)."""
        return {
            "accepted": self.accepted,
            "duplicates": len(self.duplicates),
            "rejected": len(self.rejected),
            **({"dropped_features": sum(len(d["features"]) for d in self.dropped)} if self.dropped else {}),
            "models": {
                name: {result: counts[result] for result in ("accepted", "duplicates", "rejected")}
                for name, counts in sorted(self.by_model.items())
            },
        }


def _by_index(item: dict[str, Any]) -> int:
    return int(item["index"])


@dataclass(frozen=True)
class _ModelRef:
    id: int
    name: str
    task: str
    versions: dict[str, int]


def _resolve_models(session: Session, wanted: dict[str, set[str]], *, with_versions: bool) -> dict[str, _ModelRef]:
    """Registered models among those `wanted` (model -> versions named; unknown models are simply
    absent): a few queries per batch.

    In a group commit, requests share what earlier ones found (a model and its versions never
    change once registered): a lone request then reads no registry row. A model not found, or a
    version not among those found, is looked up again, so a version registered since is seen."""
    shared = shared_by_group(session) if with_versions else None
    if shared is None:
        return _look_up_models(session, set(wanted), with_versions=with_versions)
    found: dict[str, _ModelRef] = shared.setdefault("model_refs", {})
    stale = {
        name for name, versions in wanted.items() if name not in found or not versions <= found[name].versions.keys()
    }
    if stale:
        found.update(_look_up_models(session, stale, with_versions=True))
    return {name: found[name] for name in wanted if name in found}


def _look_up_models(session: Session, names: set[str], *, with_versions: bool) -> dict[str, _ModelRef]:
    if len(names) == 1:
        # The usual batch names one model: look it up directly (one query fewer per request).
        known = list(names)
    else:
        known = list(registry_service.model_ids(session=session, names=names)) if names else []
    refs = {}
    for name in known:
        try:
            model = registry_service.find_model(session=session, name=name)
        except NotFound:
            continue
        versions = registry_service.version_ids(session=session, model_id=model.id) if with_versions else {}
        refs[name] = _ModelRef(model.id, name, model.task, versions)
    return refs


def _feature_gates(session: Session, models: dict[str, _ModelRef]) -> dict[int, phi.FeatureGate]:
    """Model id -> the allow-list of its monitoring policy, read afresh for each batch (a policy
    may change at any time): one query, the stored bodies as they are; the gate is built once
    per policy content (phi caches it), so a batch pays no policy validation."""
    ids = [ref.id for ref in models.values()]
    if not ids:
        return {}
    bodies: dict[int, dict[str, Any]] = dict(
        session.execute(select(PolicyRecord.model_id, PolicyRecord.body).where(PolicyRecord.model_id.in_(ids))).all()
    )
    return {model_id: phi.gate_for_body(bodies.get(model_id)) for model_id in ids}


def _check_batch(records: Sequence[Any], max_records: int, pseudonym_key: str) -> None:
    if len(records) > max_records:
        raise TooLarge(
            f"a batch may hold at most {max_records} records; got {len(records)}: split it into smaller batches",
            details={"max_records": max_records, "records": len(records)},
        )
    if not pseudonym_key:
        raise ConfigurationError(
            "no pseudonym key configured (RADMON_PSEUDONYM_KEY): study keys cannot be pseudonymized"
        )


def _finish(session: Session, actor: Actor, batch: BatchResult, kind: str) -> None:
    """Metrics and the batch's audit event. Last in the transaction: the audit chain's lock is
    held from here to the commit, so taking it late keeps concurrent batches from queueing.
    In a group commit the group appends the event, with those of the other requests."""
    if batch.total == 0:
        return
    RECORDS.labels(kind, "accepted").inc(batch.accepted)
    RECORDS.labels(kind, "duplicate").inc(len(batch.duplicates))
    RECORDS.labels(kind, "rejected").inc(len(batch.rejected))
    event = audit_service.PendingEvent(
        actor=actor.username,
        action=f"ingest.{kind}",
        entity="model",
        entity_id=",".join(sorted(batch.by_model)) or None,
        after=batch.summary(),
    )
    if not audit_later(session, event):
        audit_service.record_many(session=session, events=[event])


def _in(session: Session, column: Any, values: Sequence[str]) -> Iterator[Any]:
    """`column IN values` as few conditions as the backend allows: one `= ANY(array)` on
    PostgreSQL (one parameter, however many values), IN lists of bounded size on SQLite."""
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
        return
    for start in range(0, len(values), _IN_CHUNK):
        yield column.in_(values[start : start + _IN_CHUNK])


# ---------------------------------------------------------------------------- inferences


def inference_content_hash(
    *,
    model: str,
    version: str,
    inference_id: str,
    study_key: str | None,
    occurred_at: str,
    score: float,
    prediction: int,
    latency_ms: float | None,
    features_json: bytes,
) -> str:
    """SHA-256 of the record's canonical JSON: tells a retry from a conflicting reuse of an id.

    The canonical form is the JSON array [model, version, inference_id, study_key, occurred_at
    (ISO 8601, UTC), score (float), prediction, latency_ms (float or null), features (keys
    sorted)]: a fixed order needs no key sorting, which matters at 10000 records a batch.

    `study_key` is the pseudonym, not the raw key: a plain hash over a record whose other fields
    are all stored beside it would let anyone reading the table recover a raw accession number
    by trying candidates. The pseudonym is a deterministic function of the raw key, so retries
    and conflicts are told apart exactly as with the raw key."""
    features = orjson.Fragment(features_json)
    content = (model, version, inference_id, study_key, occurred_at, score, prediction, latency_ms, features)
    return hashlib.sha256(orjson.dumps(content)).hexdigest()


@dataclass(slots=True)
class _InferenceRow:
    index: int
    model: str
    model_id: int
    version_id: int
    inference_id: str
    study_key: str | None  # pseudonym
    occurred_at: datetime
    occurred_iso: str
    score: float
    prediction: int
    latency_ms: float | None
    features_json: bytes  # keys sorted
    content_hash: str


def ingest_inferences(
    *,
    session: Session,
    actor: Actor,
    records: Sequence[Any],
    pseudonym_key: str,
    max_records: int = MAX_BATCH_RECORDS,
    plausibility: Plausibility = DEFAULT_PLAUSIBILITY,
) -> BatchResult:
    """Store a batch of inference records; each is accepted, a duplicate, or rejected with a reason.

    Idempotent per (model, inference_id): the same id with the same content is a duplicate and
    is not stored again; the same id with different content is rejected. Bad records never keep
    good ones out. Only the features the model's policy declares are stored (phi.FeatureGate);
    the others are named in the answer's `dropped`. Flushes only: the caller's commit makes the
    accepted records durable."""
    authorize(actor, Permission.INFERENCES_WRITE)
    _check_batch(records, max_records, pseudonym_key)
    received_at = utcnow()
    batch = BatchResult()
    models = _resolve_models(session, _versions_named(records), with_versions=True)
    preparation = _Preparation(
        models, batch, pseudonym_key, received_at, gates=_feature_gates(session, models), plausibility=plausibility
    )
    stored = _store_inferences(session, preparation, records, received_at)
    _classify(preparation, stored, batch)
    _finish(session, actor, batch, "inferences")
    return batch


def _classify(preparation: _Preparation, stored: dict[tuple[int, str], str], batch: BatchResult) -> None:
    """Accepted, duplicate or conflicting, from the hashes stored before this batch came in."""
    for row in preparation.rows:
        previous = stored.get((row.model_id, row.inference_id))
        if previous is None:
            batch.accept(row.model)
        elif previous == row.content_hash:
            batch.duplicate(row.index, row.inference_id, row.model)
        else:
            batch.reject(row.index, row.inference_id, _stored_conflict(row), row.model)
    # A later record repeating an id of this batch is judged against what is stored for the
    # id, or, when the id is new, against its first record in the batch.
    for follower, first in preparation.followers:
        previous = stored.get((first.model_id, first.inference_id))
        if follower.content_hash == (previous or first.content_hash):
            batch.duplicate(follower.index, follower.inference_id, follower.model)
        elif previous is not None:
            batch.reject(follower.index, follower.inference_id, _stored_conflict(follower), follower.model)
        else:
            problem = Problem(
                "inference_id",
                f"inference_id '{follower.inference_id}' appears earlier in this batch (record {first.index}) "
                "with different content; inference ids must be unique per model",
            )
            batch.reject(follower.index, follower.inference_id, problem, follower.model)


def _versions_named(records: Sequence[Any]) -> dict[str, set[str]]:
    """Model -> the versions the records name. Only well-formed model names reach the database
    (a NUL, for one, is not even a valid literal there)."""
    wanted: dict[str, set[str]] = {}
    for raw in records:
        if isinstance(raw, dict) and is_name(raw.get("model")):
            versions = wanted.setdefault(raw["model"], set())
            if isinstance(raw.get("version"), str):
                versions.add(raw["version"])
    return wanted


def _stored_conflict(row: _InferenceRow) -> Problem:
    return Problem(
        "inference_id",
        f"inference_id '{row.inference_id}' conflicts with the stored record for model '{row.model}' "
        "(same id, different content); inference ids must be unique per model and records are immutable",
    )


class _Preparation:
    """Turns raw records into rows: parsing, model checks, PHI guard, pseudonym, content hash.

    `run(records)` yields the first valid record of each (model, inference_id) as it goes, so
    PostgreSQL can COPY the early rows while later ones are still being checked; rejections go
    to the batch, later records with an id already seen to `followers`."""

    def __init__(
        self,
        models: dict[str, _ModelRef],
        batch: BatchResult,
        pseudonym_key: str,
        received_at: datetime,
        *,
        gates: dict[int, phi.FeatureGate],
        plausibility: Plausibility,
    ) -> None:
        self.models = models
        self.gates = gates
        self.plausibility = plausibility
        self.batch = batch
        self.pseudonym_key = pseudonym_key
        self.received_at = received_at
        self.rows: list[_InferenceRow] = []
        self.followers: list[tuple[_InferenceRow, _InferenceRow]] = []
        self._first_of: dict[tuple[int, str], _InferenceRow] = {}

    def run(self, records: Sequence[Any]) -> Iterator[_InferenceRow]:
        for index, raw in enumerate(records):
            record = parse_inference(raw, index, now=self.received_at, plausibility=self.plausibility)
            if record.__class__ is Problem:
                self.batch.reject(index, inference_id_of(raw), record)  # type: ignore[arg-type]
                continue
            row = self._row(record)  # type: ignore[arg-type]
            if row is None:
                continue
            key = (row.model_id, row.inference_id)
            first = self._first_of.get(key)
            if first is None:
                self._first_of[key] = row
                self.rows.append(row)
                yield row
            else:
                self.followers.append((row, first))

    def _row(self, record: ParsedInference) -> _InferenceRow | None:
        ref = self.models.get(record.model)
        problem = _model_problem(record, ref) or check_for_task(record, ref.task)  # type: ignore[union-attr]
        if problem is not None:
            self.batch.reject(record.index, record.inference_id, problem, ref.name if ref else None)
            return None
        assert ref is not None
        allowed = self.gates[ref.id].apply(record.features)
        if allowed[1].__class__ is str:  # (field, reason): refused
            self.batch.reject(record.index, record.inference_id, Problem(*allowed), ref.name)  # type: ignore[arg-type]
            return None
        features, dropped = allowed
        if dropped:
            self.batch.drop(record.index, record.inference_id, dropped)  # type: ignore[arg-type]
        study_key = None if record.study_key is None else pseudonymize(record.study_key, key=self.pseudonym_key)
        features_json = orjson.dumps(features, option=_SORTED)
        occurred_iso = record.occurred_at.isoformat()
        content_hash = inference_content_hash(
            model=ref.name,
            version=record.version,
            inference_id=record.inference_id,
            study_key=study_key,
            occurred_at=occurred_iso,
            score=record.score,
            prediction=record.prediction,
            latency_ms=record.latency_ms,
            features_json=features_json,
        )
        return _InferenceRow(
            record.index,
            ref.name,
            ref.id,
            ref.versions[record.version],
            record.inference_id,
            study_key,
            record.occurred_at,
            occurred_iso,
            record.score,
            record.prediction,
            record.latency_ms,
            features_json,
            content_hash,
        )


def _unknown_model(name: str) -> Problem:
    return Problem("model", f"unknown model '{name}'; models are registered by an admin, never created by ingestion")


def _model_problem(record: ParsedInference, ref: _ModelRef | None) -> Problem | None:
    if ref is None:
        return _unknown_model(record.model)
    if record.version not in ref.versions:
        return Problem("version", f"model '{ref.name}' has no version '{record.version}'")
    return None


def _store_inferences(
    session: Session, preparation: _Preparation, records: Sequence[Any], received_at: datetime
) -> dict[tuple[int, str], str]:
    """Prepare and insert the rows whose (model, inference_id) is new; the stored content hash of the others."""
    if session.get_bind().dialect.name == "postgresql" and len(records) >= COPY_THRESHOLD:
        return _copy_new(session, preparation, records, received_at)
    rows = list(preparation.run(records))
    if not rows:
        return {}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return _insert_new(session, rows, received_at, insert)


def _copy_new(
    session: Session, preparation: _Preparation, records: Sequence[Any], received_at: datetime
) -> dict[tuple[int, str], str]:
    """PostgreSQL bulk path: COPY the rows while preparing them, betting that they are new.

    The COPY reads rows as they are prepared, so the server parses and indexes early rows while
    Python checks the later ones (two cores at work instead of one after the other). The usual
    batch is all new, so it costs one COPY and no lookup. When some ids are stored already (a
    retried batch, or a concurrent request), the unique index stops the COPY, the savepoint
    undoes it, and the batch is sorted out by its stored hashes."""
    prepared = preparation.run(records)
    if _copied(session, prepared, received_at):
        return {}
    for _ in prepared:  # finish preparing, whatever the COPY had read
        pass
    stored = _stored_hashes(session, [_row_key(row) for row in preparation.rows])
    fresh = [row for row in preparation.rows if _row_key(row) not in stored]
    if fresh and not _copied(session, iter(fresh), received_at):
        # Another request stored some of them since the lookup: ON CONFLICT decides row by row.
        stored.update(_insert_new(session, fresh, received_at, postgresql.insert))
    return stored


def _copied(session: Session, rows: Iterator[_InferenceRow], received_at: datetime) -> bool:
    """COPY the rows inside a savepoint; False (and nothing stored) when an id is taken.

    A deadlock counts as taken: two batches holding shared ids in different orders; the
    savepoint releases this one's locks and the other proceeds."""
    import psycopg2.errors

    try:
        with session.begin_nested():
            _copy_inferences(session, rows, received_at)
    except (psycopg2.errors.UniqueViolation, psycopg2.errors.DeadlockDetected):
        return False
    return True


_COPY_COLUMNS = (
    "model_id, version_id, inference_id, study_key, occurred_at, received_at, "
    "score, prediction, latency_ms, features, content_hash"
)
_COPY_ROWS_PER_READ = 256


def _copy_text(value: str) -> str:
    # COPY's text format: backslash is the escape character; the parser refused control characters.
    return value.replace("\\", "\\\\") if "\\" in value else value


class _CopySource:
    """A file-like object psycopg2's copy_expert reads: COPY text lines, made on demand."""

    def __init__(self, rows: Iterator[_InferenceRow], received_at: datetime) -> None:
        self.rows = rows
        self.received = received_at.isoformat()

    def read(self, _size: int = -1) -> str:
        lines = [self._line(row) for row in islice(self.rows, _COPY_ROWS_PER_READ)]
        return "".join(lines)

    readline = read

    def _line(self, row: _InferenceRow) -> str:
        null = "\\N"
        return (
            f"{row.model_id}\t{row.version_id}\t{_copy_text(row.inference_id)}\t{row.study_key or null}\t"
            f"{row.occurred_iso}\t{self.received}\t{row.score!r}\t{row.prediction}\t"
            f"{null if row.latency_ms is None else repr(row.latency_ms)}\t"
            f"{_copy_text(row.features_json.decode())}\t{row.content_hash}\n"
        )


def _copy_inferences(session: Session, rows: Iterator[_InferenceRow], received_at: datetime) -> None:
    """COPY rows into inferences through the session's own connection (same transaction)."""
    dbapi_connection = session.connection().connection.dbapi_connection
    with dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.copy_expert(f"COPY inferences ({_COPY_COLUMNS}) FROM STDIN", _CopySource(rows, received_at))


def _insert_new(
    session: Session, rows: list[_InferenceRow], received_at: datetime, insert: Any
) -> dict[tuple[int, str], str]:
    """Multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING; the stored hashes of the ids that conflicted."""
    if not rows:
        return {}
    table = Inference.__table__
    statement = (
        insert(table)
        .values(features=bindparam("features_json", type_=Text))  # already JSON: no second encoding
        .on_conflict_do_nothing(index_elements=["model_id", "inference_id"])
        .returning(table.c.model_id, table.c.inference_id)
    )
    parameters = [
        {
            "model_id": row.model_id,
            "version_id": row.version_id,
            "inference_id": row.inference_id,
            "study_key": row.study_key,
            "occurred_at": row.occurred_at,
            "received_at": received_at,
            "score": row.score,
            "prediction": row.prediction,
            "latency_ms": row.latency_ms,
            "features_json": row.features_json.decode(),
            "content_hash": row.content_hash,
        }
        # Key order: concurrent batches sharing ids then wait for each other instead of deadlocking.
        for row in sorted(rows, key=_row_key)
    ]
    # A single row goes as a plain execute; several as one executemany (multi-row VALUES).
    result = session.execute(statement, parameters[0] if len(parameters) == 1 else parameters)
    inserted = {(model_id, inference_id) for model_id, inference_id in result}
    conflicted = [(row.model_id, row.inference_id) for row in rows if (row.model_id, row.inference_id) not in inserted]
    return _stored_hashes(session, conflicted) if conflicted else {}


def _row_key(row: _InferenceRow) -> tuple[int, str]:
    return row.model_id, row.inference_id


def _stored_hashes(session: Session, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """(model_id, inference_id) -> stored content hash, for the keys that are stored."""
    by_model: dict[int, list[str]] = {}
    for model_id, inference_id in keys:
        by_model.setdefault(model_id, []).append(inference_id)
    stored: dict[tuple[int, str], str] = {}
    for model_id, inference_ids in by_model.items():
        for matching in _in(session, Inference.inference_id, inference_ids):
            found = session.execute(
                select(Inference.inference_id, Inference.content_hash).where(Inference.model_id == model_id, matching)
            )
            stored.update(((model_id, inference_id), content_hash) for inference_id, content_hash in found)
    return stored


# ---------------------------------------------------------------------------- outcomes


def outcome_content_hash(
    *, model: str, inference_id: str | None, study_key: str | None, label: int, source: str, confirmed_at: datetime
) -> str:
    """SHA-256 of an outcome's canonical JSON (study_key is the pseudonym, as for inferences)."""
    content = {
        "model": model,
        "inference_id": inference_id,
        "study_key": study_key,
        "label": label,
        "source": source,
        "confirmed_at": confirmed_at.isoformat(),
    }
    return hashlib.sha256(orjson.dumps(content, option=_SORTED)).hexdigest()


@dataclass(slots=True)
class _OutcomeRow:
    index: int
    model: str
    model_id: int
    inference_id: str | None
    study_key: str | None  # pseudonym
    label: int
    source: str
    confirmed_at: datetime
    content_hash: str


def ingest_outcomes(
    *,
    session: Session,
    actor: Actor,
    records: Sequence[Any],
    pseudonym_key: str,
    max_records: int = MAX_BATCH_RECORDS,
    plausibility: Plausibility = DEFAULT_PLAUSIBILITY,
) -> BatchResult:
    """Store a batch of outcome records; each is accepted, a duplicate, or rejected with a reason.

    The target (an inference of the model, or a study with at least one) must exist. An exact
    repeat (same target, label, source and confirmed_at) is a duplicate. A later outcome for the
    same target supersedes the current one; an older one is stored already superseded; both are
    kept. Flushes only: the caller commits."""
    authorize(actor, Permission.OUTCOMES_WRITE)
    _check_batch(records, max_records, pseudonym_key)
    received_at = utcnow()
    batch = BatchResult()
    parsed: list[ParsedOutcome] = []
    for index, raw in enumerate(records):
        item = parse_outcome(raw, index, now=received_at, plausibility=plausibility)
        if isinstance(item, Problem):
            batch.reject(index, inference_id_of(raw), item)
        else:
            parsed.append(item)
    models = _resolve_models(session, {record.model: set() for record in parsed}, with_versions=False)
    rows: list[_OutcomeRow] = []
    for record in parsed:
        ref = models.get(record.model)
        if ref is None:
            problem = _unknown_model(record.model)
            batch.reject(record.index, record.inference_id, problem)
            continue
        study_key = None if record.study_key is None else pseudonymize(record.study_key, key=pseudonym_key)
        content_hash = outcome_content_hash(
            model=ref.name,
            inference_id=record.inference_id,
            study_key=study_key,
            label=record.label,
            source=record.source,
            confirmed_at=record.confirmed_at,
        )
        rows.append(
            _OutcomeRow(
                record.index,
                ref.name,
                ref.id,
                record.inference_id,
                study_key,
                record.label,
                record.source,
                record.confirmed_at,
                content_hash,
            )
        )
    for model_id in sorted({row.model_id for row in rows}):
        _lock_outcomes(session, model_id)
    rows = _drop_missing_targets(session, rows, batch)
    _store_outcomes(session, rows, batch, received_at)
    _finish(session, actor, batch, "outcomes")
    return batch


def _lock_outcomes(session: Session, model_id: int) -> None:
    # Two concurrent batches for one target would each miss the other's uncommitted row and
    # leave two "current" outcomes; one batch per model at a time keeps supersession exact.
    # (SQLite transactions already take the write lock at BEGIN.)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :model_id)"),
            {"namespace": _OUTCOME_LOCK_NAMESPACE, "model_id": model_id},
        )


def _drop_missing_targets(session: Session, rows: list[_OutcomeRow], batch: BatchResult) -> list[_OutcomeRow]:
    """Reject outcomes whose inference (or study) is not stored for that model."""
    known_ids: set[tuple[int, str]] = set()
    known_keys: set[tuple[int, str]] = set()
    for model_id in {row.model_id for row in rows}:
        ids = sorted({row.inference_id for row in rows if row.model_id == model_id and row.inference_id is not None})
        keys = sorted({row.study_key for row in rows if row.model_id == model_id and row.study_key is not None})
        for matching in _in(session, Inference.inference_id, ids):
            found = session.execute(
                select(Inference.inference_id).where(Inference.model_id == model_id, matching)
            ).scalars()
            known_ids.update((model_id, inference_id) for inference_id in found)
        for matching in _in(session, Inference.study_key, keys):
            found_keys = session.execute(
                select(Inference.study_key).where(Inference.model_id == model_id, matching).distinct()
            ).scalars()
            known_keys.update((model_id, study_key) for study_key in found_keys if study_key is not None)
    kept = []
    for row in rows:
        if row.inference_id is not None and (row.model_id, row.inference_id) not in known_ids:
            problem = Problem(
                "inference_id",
                f"model '{row.model}' has no inference '{row.inference_id}'; post the inference before its outcome",
            )
        elif row.study_key is not None and (row.model_id, row.study_key) not in known_keys:
            # The raw key is not quoted back: it is an identifier.
            problem = Problem(
                "study_key", f"model '{row.model}' has no inference on this study_key; post the inference first"
            )
        else:
            kept.append(row)
            continue
        batch.reject(row.index, row.inference_id, problem, row.model)
    return kept


def _store_outcomes(session: Session, rows: list[_OutcomeRow], batch: BatchResult, received_at: datetime) -> None:
    """Insert the new outcomes, answer the repeats as duplicates, then settle supersession."""
    if not rows:
        return
    already = _stored_outcome_hashes(session, rows)
    new: list[_OutcomeRow] = []
    seen: set[tuple[int, str]] = set()
    for row in rows:
        key = (row.model_id, row.content_hash)
        if key in already or key in seen:
            batch.duplicate(row.index, row.inference_id, row.model)
        else:
            seen.add(key)
            new.append(row)
    if not new:
        return
    table: Table = Outcome.__table__  # type: ignore[assignment]  # a Table, typed as its base FromClause
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["model_id", "content_hash"])
        .returning(table.c.model_id, table.c.content_hash)
    )
    parameters = [
        {
            "model_id": row.model_id,
            "inference_id": row.inference_id,
            "study_key": row.study_key,
            "label": row.label,
            "source": row.source,
            "confirmed_at": row.confirmed_at,
            "received_at": received_at,
            "content_hash": row.content_hash,
        }
        for row in new
    ]
    inserted = {(model_id, content_hash) for model_id, content_hash in session.execute(statement, parameters)}
    for row in new:
        if (row.model_id, row.content_hash) in inserted:
            batch.accept(row.model)
        else:  # stored by a concurrent request since the query above
            batch.duplicate(row.index, row.inference_id, row.model)
    for model_id in {row.model_id for row in new}:
        _settle_supersession(
            session,
            model_id=model_id,
            inference_ids={row.inference_id for row in new if row.model_id == model_id and row.inference_id},
            study_keys={row.study_key for row in new if row.model_id == model_id and row.study_key},
            at=received_at,
        )


def _stored_outcome_hashes(session: Session, rows: list[_OutcomeRow]) -> set[tuple[int, str]]:
    stored: set[tuple[int, str]] = set()
    for model_id in {row.model_id for row in rows}:
        hashes = sorted({row.content_hash for row in rows if row.model_id == model_id})
        for matching in _in(session, Outcome.content_hash, hashes):
            found = session.execute(
                select(Outcome.content_hash).where(Outcome.model_id == model_id, matching)
            ).scalars()
            stored.update((model_id, content_hash) for content_hash in found)
    return stored


def _settle_supersession(
    session: Session, *, model_id: int, inference_ids: set[str], study_keys: set[str], at: datetime
) -> None:
    """Leave one current outcome per touched target: the latest confirmed (the latest received on a tie).

    Every other current outcome of the target is marked superseded by it, at `at`; an outcome
    superseded earlier keeps pointing at the one that superseded it then (history is kept)."""
    current: dict[tuple[str, str | None], list[tuple[datetime, int]]] = {}
    for column, values, kind in (
        (Outcome.inference_id, sorted(inference_ids), "inference_id"),
        (Outcome.study_key, sorted(study_keys), "study_key"),
    ):
        for matching in _in(session, column, values):
            found = session.execute(
                select(column, Outcome.confirmed_at, Outcome.id).where(
                    Outcome.model_id == model_id, Outcome.superseded_at.is_(None), matching
                )
            )
            for target, confirmed_at, outcome_id in found:
                current.setdefault((kind, target), []).append((confirmed_at, outcome_id))
    changes: list[dict[str, Any]] = []
    for candidates in current.values():
        if len(candidates) < 2:
            continue
        winner = max(candidates)[1]
        changes.extend(
            {"b_id": outcome_id, "b_by": winner, "b_at": at} for _, outcome_id in candidates if outcome_id != winner
        )
    if not changes:
        return
    if session.get_bind().dialect.name == "postgresql":
        # One statement whatever the count (executemany would be a round trip per row).
        session.execute(
            text(
                "UPDATE outcomes SET superseded_at = :at, superseded_by = change.winner "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:winners AS bigint[])) AS change(id, winner) "
                "WHERE outcomes.id = change.id"
            ),
            {"at": at, "ids": [c["b_id"] for c in changes], "winners": [c["b_by"] for c in changes]},
        )
        return
    table: Table = Outcome.__table__  # type: ignore[assignment]  # a Table, typed as its base FromClause
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(superseded_at=bindparam("b_at"), superseded_by=bindparam("b_by")),
        changes,
    )


def effective_outcomes_query(*, model_id: int, version_id: int, start: datetime, end: datetime) -> Select[Any]:
    """The effective label of each labelled inference of a model version with occurred_at in [start, end).

    Columns: inference_pk (inferences.id), inference_id, label, source, confirmed_at. One row per
    labelled inference; unlabelled inferences are absent. The effective outcome is the current
    (non-superseded) one. When an inference has both an outcome of its own (by inference_id) and
    one for its study (by study_key), its own wins whatever their dates: it was addressed to this
    very inference, while a study outcome is the fallback for every inference on the study (e.g.
    pathology that does not say which of several reads it confirms). Set-based: join it, or run
    it through effective_outcomes(); no authorization (for other services such as checks)."""
    window = (
        select(Inference.id, Inference.inference_id, Inference.study_key)
        .where(
            Inference.model_id == model_id,
            Inference.version_id == version_id,
            Inference.occurred_at >= start,
            Inference.occurred_at < end,
        )
        .subquery("window")
    )
    current = select(Outcome).where(Outcome.model_id == model_id, Outcome.superseded_at.is_(None)).subquery("current")
    own = select(
        window.c.id.label("inference_pk"),
        window.c.inference_id,
        current.c.label,
        current.c.source,
        current.c.confirmed_at,
        current.c.id.label("outcome_id"),
        literal(0, Integer).label("precedence"),
    ).join(current, current.c.inference_id == window.c.inference_id)
    by_study = select(
        window.c.id.label("inference_pk"),
        window.c.inference_id,
        current.c.label,
        current.c.source,
        current.c.confirmed_at,
        current.c.id.label("outcome_id"),
        literal(1, Integer).label("precedence"),
    ).join(current, and_(current.c.study_key == window.c.study_key, current.c.study_key.is_not(None)))
    candidates = union_all(own, by_study).subquery("candidates")
    ranked = select(
        candidates,
        func.row_number()
        .over(
            partition_by=candidates.c.inference_pk,
            order_by=(candidates.c.precedence, candidates.c.confirmed_at.desc(), candidates.c.outcome_id.desc()),
        )
        .label("rank"),
    ).subquery("ranked")
    return select(
        ranked.c.inference_pk, ranked.c.inference_id, ranked.c.label, ranked.c.source, ranked.c.confirmed_at
    ).where(ranked.c.rank == 1)


def effective_outcomes(
    *, session: Session, model_id: int, version_id: int, start: datetime, end: datetime
) -> list[Any]:
    """Rows of effective_outcomes_query() (inference_pk, inference_id, label, source, confirmed_at)."""
    query = effective_outcomes_query(model_id=model_id, version_id=version_id, start=start, end=end)
    return list(session.execute(query.order_by("inference_pk")).all())
