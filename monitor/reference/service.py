"""Reference sets: upload (JSON records, CSV, Parquet) or baseline build, validation, profile."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from sqlalchemy import Integer, func, insert, literal, select
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.checks.policy import policy_for
from monitor.checks.profiles import ReferenceProfile, reference_profile, segment_specs, spec_hash
from monitor.checks.schemas import FeatureSpec, MonitoringPolicy
from monitor.checks.windows import Source, read_columns
from monitor.db import utcnow
from monitor.errors import Invalid, MonitorError
from monitor.ingest import phi
from monitor.ingest import service as ingest_service
from monitor.ingest.models import Inference
from monitor.reference.models import ReferenceRow, ReferenceSet
from monitor.registry import service as registry_service
from monitor.registry.models import Model, ModelVersion

MIN_ROWS = 30  # fewer rows cannot describe a distribution worth comparing against
MAX_PROBLEMS = 50
BASE_COLUMNS = ("score", "prediction", "label")
OPTIONAL_COLUMNS = ("occurred_at",)
# Inference keys a reference record may carry (the simulator and clients send them) and that a
# reference does not need.
IGNORED_RECORD_KEYS = ("model", "version", "inference_id", "study_key", "latency_ms")
FORMATS = ("csv", "parquet")


class MissingReference(MonitorError):
    """The version has no reference to compare against: the run fails with this message."""

    status_code = 409
    code = "no_reference"


@dataclass
class Problem:
    row: int | None
    column: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "reason": self.reason}


class Problems:
    """Collects validation problems (capped) and raises them together."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.total = 0

    def add(self, row: int | None, column: str | None, reason: str) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(row, column, reason))

    def add_rows(self, mask: np.ndarray, column: str, reason: Any, values: pd.Series | None = None) -> None:
        """One problem per flagged row; reason(value) or a fixed text."""
        for index in np.flatnonzero(mask):
            value = None if values is None else values.iloc[index]
            self.add(int(index) + 1, column, reason(value) if callable(reason) else reason)
            if len(self.items) >= MAX_PROBLEMS:
                self.total += int(mask.sum()) - int(np.flatnonzero(mask).tolist().index(int(index))) - 1
                return

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        first = self.items[0]
        where = ", ".join(
            p
            for p in (f"row {first.row}" if first.row else "", f"column '{first.column}'" if first.column else "")
            if p
        )
        more = f" (and {self.total - 1} more; see details)" if self.total > 1 else ""
        raise Invalid(
            f"{what} rejected: {where + ': ' if where else ''}{first.reason}{more}",
            details={"problems": [p.as_dict() for p in self.items], "total": self.total},
        )


# ---------------------------------------------------------------------------------------------
# Parsing into one column per field


def frame_from_records(records: list[dict[str, Any]], *, model: str, version: str, problems: Problems) -> pd.DataFrame:
    """Inference-shaped records -> a frame (features flattened), with shape problems noted."""
    columns: dict[str, list[Any]] = {}
    for i, record in enumerate(records):
        row = i + 1
        if not isinstance(record, dict):
            problems.add(row, None, "a record must be a JSON object")
            continue
        unknown = sorted(set(record) - {"features", *BASE_COLUMNS, *OPTIONAL_COLUMNS, *IGNORED_RECORD_KEYS})
        for key in unknown:
            problems.add(row, key, f"unknown field '{key}' (features go inside \"features\")")
        for key, expected in (("model", model), ("version", version)):
            if key in record and record[key] != expected:
                problems.add(row, key, f"record is for {key} '{record[key]}' but the upload is for '{expected}'")
        features = record.get("features", {})
        if not isinstance(features, dict):
            problems.add(row, "features", '"features" must be a JSON object')
            features = {}
        for name, value in ((k, record.get(k)) for k in (*BASE_COLUMNS, *OPTIONAL_COLUMNS)):
            columns.setdefault(name, [None] * i).append(value)
        for name, value in features.items():
            columns.setdefault(name, [None] * i).append(value)
        for values in columns.values():
            if len(values) < row:
                values.append(None)
    if not columns:
        return pd.DataFrame()
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})


def frame_from_file(content: bytes, *, filename: str | None, format: str | None) -> tuple[pd.DataFrame, str]:
    """CSV or Parquet bytes -> (frame, format); the format comes from the argument or the name."""
    kind = (format or "").lower() or _format_from_name(filename)
    if kind not in FORMATS:
        raise Invalid(
            f"cannot tell the file's format from '{filename or ''}'; send a .csv or .parquet file (or format=csv|parquet)"
        )
    if not content:
        raise Invalid("the uploaded file is empty")
    try:
        if kind == "csv":
            return pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, na_values=[""]), kind
        return pd.read_parquet(io.BytesIO(content)), kind
    except (ValueError, UnicodeDecodeError, pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Invalid(f"cannot read the {kind.upper()} file: {reason}") from None


def _format_from_name(filename: str | None) -> str:
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return ""


# ---------------------------------------------------------------------------------------------
# Validation against the policy


def category_text(value: Any) -> str | None:
    """The text a categorical value compares as (what PostgreSQL's ->> and SQLite's reader give)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return orjson.dumps(float(value)).decode()
    return str(value)


def _numeric(series: pd.Series, *, strict_json: bool, column: str, problems: Problems) -> np.ndarray:
    """float64 with NaN for missing; non-numbers are problems."""
    if strict_json or series.dtype == object:
        kinds = series.map(type)
        if strict_json:
            bad = ~kinds.isin([int, float, type(None)])
            problems.add_rows(bad.to_numpy(), column, lambda v: f"{v!r} is not a number", series)
            series = series.where(~bad, None)
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    present = series.notna().to_numpy()
    unparsed = present & np.isnan(values)
    if unparsed.any():
        problems.add_rows(unparsed, column, lambda v: f"'{v}' is not a number", series)
    infinite = np.isinf(values)
    if infinite.any():
        problems.add_rows(infinite, column, "not a finite number")
        values = np.where(infinite, np.nan, values)
    return values


def _categorical(series: pd.Series, *, column: str, problems: Problems) -> list[str | None]:
    if series.dtype == object:
        bad = series.map(lambda v: isinstance(v, dict | list)).to_numpy(dtype=bool)
        problems.add_rows(bad, column, "a category must be a single value, not an object or a list")
    return [None if isinstance(v, dict | list) else category_text(v) for v in series.tolist()]


def _binary(values: np.ndarray, column: str, problems: Problems) -> None:
    missing = np.isnan(values)
    problems.add_rows(missing, column, f"{column} is required")
    bad = ~missing & ~np.isin(values, (0.0, 1.0))
    problems.add_rows(bad, column, lambda v: f"{column} must be 0 or 1, not {v!r}", pd.Series(values))


def _timestamps(series: pd.Series, problems: Problems) -> list[datetime | None]:
    out: list[datetime | None] = []
    for i, value in enumerate(series.tolist()):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(None)
            continue
        try:
            moment = value.to_pydatetime() if isinstance(value, pd.Timestamp) else datetime.fromisoformat(str(value))
        except ValueError:
            problems.add(i + 1, "occurred_at", f"'{value}' is not an ISO 8601 timestamp")
            out.append(None)
            continue
        if moment.tzinfo is None:
            problems.add(i + 1, "occurred_at", f"'{value}' has no timezone (send UTC, e.g. 2026-11-02T08:14:05Z)")
            out.append(None)
            continue
        out.append(moment)
    return out


def _identifiers(frame: pd.DataFrame, policy: MonitoringPolicy, problems: Problems) -> None:
    """The PHI gate over every text cell of the upload, whatever its column: a cell that looks like
    an identifier is named by row and column, never quoted. Numbers written as text in a numeric
    column (CSV) are left to the range check, ISO 8601 instants in occurred_at to its parser."""
    numeric = {f.name for f in policy.features if f.type == "numeric"} | set(BASE_COLUMNS)
    for name in frame.columns:
        series = frame[name]
        if series.dtype != object:
            continue
        verdicts: dict[str, str | None] = {}
        for row, value in enumerate(series.tolist(), start=1):
            if value.__class__ is not str:
                continue
            if value not in verdicts:
                verdicts[value] = (
                    None
                    if (name in numeric and _is_number(value)) or (name == "occurred_at" and _is_instant(value))
                    else phi.value_problem(value)
                )
            looks_like = verdicts[value]
            if looks_like is not None:
                problems.add(row, str(name), f"the value looks like {looks_like}; {phi.ADVICE}")


def _is_instant(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _gate_column(name: str, values: Any, gate: phi.FeatureGate, problems: Problems) -> None:
    """The policy's allow-list over one typed column: plausible ranges, short tokens, declared
    vocabularies, ages over 89 (each distinct value judged once)."""
    verdicts: dict[Any, str | None] = {}
    for row, value in enumerate(values.tolist() if isinstance(values, np.ndarray) else values, start=1):
        if value is None or (value.__class__ is float and math.isnan(value)):
            continue
        if value not in verdicts:
            verdicts[value] = gate.value_reason(name, value)
        reason = verdicts[value]
        if reason is not None:
            problems.add(row, name, reason)


@dataclass
class ValidatedReference:
    table: pa.Table  # score, prediction, label, one column per feature/segment (typed)
    occurred_at: list[datetime | None]
    attributes: list[str]  # feature and segment columns, in order


def validate_frame(frame: pd.DataFrame, policy: MonitoringPolicy, *, origin: str) -> ValidatedReference:
    """Check columns and values against the policy; every problem names its row and column."""
    problems = Problems()
    what = "reference upload"
    if not policy.features:
        raise Invalid(
            "the monitoring policy lists no features, so a reference cannot be checked against it; "
            "PUT /api/v1/models/{model}/policy with its features first"
        )
    if frame.empty or len(frame) == 0:
        raise Invalid(f"{what} rejected: no rows")
    frame = frame.reset_index(drop=True)
    allowed = {f.name for f in policy.features} | set(policy.segments) | set(BASE_COLUMNS) | set(OPTIONAL_COLUMNS)
    for name in frame.columns:
        if name not in allowed:
            shown = str(name) if phi.name_problem(str(name)) is None else "(name withheld)"
            problems.add(
                None, shown, f"unknown column '{shown}': not a feature or segment of the policy; only those are stored"
            )
    for name in (*BASE_COLUMNS, *(f.name for f in policy.features)):
        if name not in frame.columns:
            problems.add(None, name, f"missing column '{name}'")
    problems.raise_if_any(what)
    if len(frame) < MIN_ROWS:
        raise Invalid(f"{what} rejected: {len(frame)} rows; a reference needs at least {MIN_ROWS}")

    gate = phi.gate_for(policy)
    _identifiers(frame, policy, problems)
    problems.raise_if_any(what)  # before any message could quote a value
    strict = origin == "json"
    columns: dict[str, Any] = {}
    for name in BASE_COLUMNS:
        columns[name] = _numeric(frame[name], strict_json=strict, column=name, problems=problems)
    score = columns["score"]
    problems.add_rows(np.isnan(score), "score", "score is required")
    problems.add_rows(
        ~np.isnan(score) & ((score < 0) | (score > 1)),
        "score",
        lambda v: f"score {v!r} is outside 0..1",
        pd.Series(score),
    )
    _binary(columns["prediction"], "prediction", problems)
    _binary(columns["label"], "label", problems)
    attributes: list[str] = []
    types = {f.name: f.type for f in policy.features}
    for name in frame.columns:
        if name in BASE_COLUMNS or name in OPTIONAL_COLUMNS:
            continue
        attributes.append(str(name))
        if types.get(name) == "numeric":
            columns[name] = _numeric(frame[name], strict_json=strict, column=name, problems=problems)
        else:
            columns[name] = _categorical(frame[name], column=name, problems=problems)
    for name in attributes:
        _gate_column(name, columns[name], gate, problems)
    occurred: list[datetime | None] = (
        _timestamps(frame["occurred_at"], problems) if "occurred_at" in frame.columns else [None] * len(frame)
    )
    problems.raise_if_any(what)
    table = pa.table(
        {
            name: pa.array(values, type=pa.float64() if isinstance(values, np.ndarray) else pa.string())
            for name, values in columns.items()
        }
    )
    return ValidatedReference(table, occurred, attributes)


# ---------------------------------------------------------------------------------------------
# Storing


STORE_CHUNK = 50_000


def _store_rows(session: Session, reference_set: ReferenceSet, validated: ValidatedReference) -> None:
    """Bulk insert in chunks: COPY on PostgreSQL, executemany elsewhere; never one ORM object per row."""
    table = validated.table
    for offset in range(0, table.num_rows, STORE_CHUNK):
        chunk = table.slice(offset, STORE_CHUNK)
        rows = _row_values(chunk, validated.attributes, validated.occurred_at[offset : offset + STORE_CHUNK], offset)
        if session.get_bind().dialect.name == "postgresql":
            _copy_rows(session, reference_set, rows)
        else:
            session.execute(
                insert(ReferenceRow),
                [
                    {
                        "reference_set_id": reference_set.id,
                        "model_id": reference_set.model_id,
                        **dict(zip(_ROW_FIELDS, row, strict=True)),
                    }
                    for row in rows
                ],
            )


_ROW_FIELDS = ("row_number", "occurred_at", "score", "prediction", "label", "features")


def _row_values(
    chunk: pa.Table, names: list[str], occurred: list[datetime | None], offset: int
) -> list[tuple[Any, ...]]:
    columns = []
    for name in names:
        column = chunk[name]
        if pa.types.is_floating(column.type):
            columns.append([None if math.isnan(v) else v for v in column.to_numpy(zero_copy_only=False).tolist()])
        else:
            columns.append(column.to_pylist())
    features = (
        [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
        if names
        else [{}] * chunk.num_rows
    )
    score = chunk["score"].to_pylist()
    prediction = [int(v) for v in chunk["prediction"].to_pylist()]
    label = [int(v) for v in chunk["label"].to_pylist()]
    return [
        (offset + i + 1, occurred[i], score[i], prediction[i], label[i], features[i]) for i in range(chunk.num_rows)
    ]


def _copy_rows(session: Session, reference_set: ReferenceSet, rows: list[tuple[Any, ...]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for number, moment, score, prediction, label, features in rows:
        writer.writerow(
            (
                reference_set.id,
                reference_set.model_id,
                number,
                "" if moment is None else moment.isoformat(),
                repr(score),
                prediction,
                label,
                orjson.dumps(features).decode(),
            )
        )
    buffer.seek(0)
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        cursor.copy_expert(
            "COPY reference_rows (reference_set_id, model_id, row_number, occurred_at, score, prediction, label, features) "
            "FROM STDIN WITH (FORMAT csv)",
            buffer,
        )


def _new_set(
    session: Session, *, actor: Actor, model: Model, version: ModelVersion, source: str, format: str, **fields: Any
) -> ReferenceSet:
    reference_set = ReferenceSet(
        model_id=model.id,
        version_id=version.id,
        source=source,
        format=format,
        status="active",
        row_count=0,
        labelled_rows=0,
        columns=[],
        created_at=utcnow(),
        created_by=actor.username,
        **fields,
    )
    previous = active_set(session=session, version_id=version.id)
    if previous is not None:
        # Retire the old one first: the partial unique index allows one active set per version.
        previous.status, previous.superseded_at = "superseded", utcnow()
        session.flush()
    session.add(reference_set)
    session.flush()
    if previous is not None:
        previous.superseded_by = reference_set.id
    return reference_set


def _finish(
    session: Session,
    *,
    actor: Actor,
    model: Model,
    version: ModelVersion,
    reference_set: ReferenceSet,
    policy: MonitoringPolicy,
    profile: ReferenceProfile,
    superseded: int | None,
) -> ReferenceSet:
    reference_set.profile, reference_set.profile_spec = profile.to_json(), profile.spec
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="reference.upload" if reference_set.source == "upload" else "reference.baseline",
        entity="model_version",
        entity_id=f"{model.name}:{version.version}",
        after={
            "reference_set_id": reference_set.id,
            "source": reference_set.source,
            "format": reference_set.format,
            "filename": reference_set.filename,
            "rows": reference_set.row_count,
            "labelled_rows": reference_set.labelled_rows,
            "sha256": reference_set.content_sha256,
            "baseline_start": reference_set.baseline_start,
            "baseline_end": reference_set.baseline_end,
            "features": [f.name for f in policy.features],
            "superseded_reference_set_id": superseded,
        },
    )
    return reference_set


def _store_validated(
    session: Session,
    *,
    actor: Actor,
    model: Model,
    version: ModelVersion,
    validated: ValidatedReference,
    policy: MonitoringPolicy,
    format: str,
    filename: str | None,
    sha256: str,
) -> ReferenceSet:
    previous = active_set(session=session, version_id=version.id)
    reference_set = _new_set(
        session,
        actor=actor,
        model=model,
        version=version,
        source="upload",
        format=format,
        filename=filename,
        content_sha256=sha256,
    )
    reference_set.row_count = validated.table.num_rows
    reference_set.labelled_rows = validated.table.num_rows
    reference_set.columns = validated.attributes
    _store_rows(session, reference_set, validated)
    profile = reference_profile(validated.table, policy.features, policy.segments)
    return _finish(
        session,
        actor=actor,
        model=model,
        version=version,
        reference_set=reference_set,
        policy=policy,
        profile=profile,
        superseded=None if previous is None else previous.id,
    )


def _target(session: Session, model_name: str, version: str) -> tuple[Model, ModelVersion, MonitoringPolicy]:
    model = registry_service.find_model(session=session, name=model_name)
    target = registry_service.find_version(session=session, model=model, version=version)
    return model, target, policy_for(session=session, model_id=model.id)


def upload_records(
    *, session: Session, actor: Actor, model_name: str, version: str, records: list[dict[str, Any]]
) -> ReferenceSet:
    """Replace the version's active reference with JSON records (qa, admin); audited."""
    authorize(actor, Permission.REFERENCE_WRITE)
    model, target, policy = _target(session, model_name, version)
    problems = Problems()
    frame = frame_from_records(records, model=model_name, version=version, problems=problems)
    problems.raise_if_any("reference upload")
    validated = validate_frame(frame, policy, origin="json")
    sha256 = hashlib.sha256(orjson.dumps(records, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return _store_validated(
        session,
        actor=actor,
        model=model,
        version=target,
        validated=validated,
        policy=policy,
        format="json",
        filename=None,
        sha256=sha256,
    )


def upload_file(
    *,
    session: Session,
    actor: Actor,
    model_name: str,
    version: str,
    content: bytes,
    filename: str | None,
    format: str | None = None,
) -> ReferenceSet:
    """Replace the version's active reference with a CSV or Parquet file (qa, admin); audited."""
    authorize(actor, Permission.REFERENCE_WRITE)
    model, target, policy = _target(session, model_name, version)
    frame, kind = frame_from_file(content, filename=filename, format=format)
    validated = validate_frame(frame, policy, origin=kind)
    return _store_validated(
        session,
        actor=actor,
        model=model,
        version=target,
        validated=validated,
        policy=policy,
        format=kind,
        filename=filename,
        sha256=hashlib.sha256(content).hexdigest(),
    )


def build_baseline(*, session: Session, actor: Actor, model_name: str, version: str) -> ReferenceSet:
    """Make the version's inferences in the policy's baseline period its reference (qa, admin)."""
    authorize(actor, Permission.REFERENCE_WRITE)
    model, target, policy = _target(session, model_name, version)
    return baseline_reference(session=session, actor=actor, model=model, version=target, policy=policy)


def baseline_reference(
    *, session: Session, actor: Actor, model: Model, version: ModelVersion, policy: MonitoringPolicy
) -> ReferenceSet:
    """Copy the baseline period's inferences (with their effective labels) into a new reference set.

    No authorization: checks call it for the run's actor when the policy names a baseline."""
    if policy.baseline is None:
        raise Invalid(f"the monitoring policy of '{model.name}' names no baseline period")
    if not policy.features:
        raise Invalid("the monitoring policy lists no features; a baseline reference needs them")
    start, end = policy.baseline.start, policy.baseline.end
    in_period = (
        Inference.model_id == model.id,
        Inference.version_id == version.id,
        Inference.occurred_at >= start,
        Inference.occurred_at < end,
    )
    count = session.execute(select(func.count()).select_from(Inference).where(*in_period)).scalar_one()
    if count < MIN_ROWS:
        raise Invalid(
            f"the baseline period {start.isoformat()} .. {end.isoformat()} holds {count} inferences of "
            f"version '{version.version}'; a reference needs at least {MIN_ROWS}"
        )
    previous = active_set(session=session, version_id=version.id)
    reference_set = _new_set(
        session,
        actor=actor,
        model=model,
        version=version,
        source="baseline",
        format="baseline",
        baseline_start=start,
        baseline_end=end,
    )
    labels = ingest_service.effective_outcomes_query(
        model_id=model.id, version_id=version.id, start=start, end=end
    ).subquery("labels")
    rows = (
        select(
            literal(reference_set.id, Integer),
            Inference.model_id,
            func.row_number().over(order_by=Inference.id),
            Inference.occurred_at,
            Inference.score,
            Inference.prediction,
            labels.c.label,
            Inference.features,
        )
        .select_from(Inference)
        .outerjoin(labels, labels.c.inference_pk == Inference.id)
        .where(*in_period)
    )
    session.execute(
        insert(ReferenceRow).from_select(
            ["reference_set_id", "model_id", "row_number", "occurred_at", "score", "prediction", "label", "features"],
            rows,
        )
    )
    stats = session.execute(
        select(func.count(), func.count(ReferenceRow.label)).where(ReferenceRow.reference_set_id == reference_set.id)
    ).one()
    reference_set.row_count, reference_set.labelled_rows = int(stats[0]), int(stats[1])
    reference_set.columns = [f.name for f in policy.features]
    profile = _profile_from_rows(session, reference_set, policy.features, policy.segments)
    return _finish(
        session,
        actor=actor,
        model=model,
        version=version,
        reference_set=reference_set,
        policy=policy,
        profile=profile,
        superseded=None if previous is None else previous.id,
    )


def _profile_from_rows(
    session: Session,
    reference_set: ReferenceSet,
    features: list[FeatureSpec],
    segments: list[str] | tuple[str, ...] = (),
) -> ReferenceProfile:
    specs = segment_specs(features, segments)
    table = read_columns(
        session, Source(model_id=reference_set.model_id, reference_set_id=reference_set.id, with_label=True), specs
    )
    return reference_profile(table, features, segments)


# ---------------------------------------------------------------------------------------------
# Reading


def active_set(*, session: Session, version_id: int) -> ReferenceSet | None:
    return session.execute(
        select(ReferenceSet).where(ReferenceSet.version_id == version_id, ReferenceSet.status == "active")
    ).scalar_one_or_none()


def profile_for(
    *,
    session: Session,
    reference_set: ReferenceSet,
    features: list[FeatureSpec],
    segments: list[str] | tuple[str, ...] = (),
) -> ReferenceProfile:
    """The set's profile for these features and segment attributes; recomputed from its rows when
    the policy's features or segments changed."""
    spec = spec_hash(features, segments)
    if reference_set.profile is not None and reference_set.profile_spec == spec:
        return ReferenceProfile.from_json(reference_set.profile)
    profile = _profile_from_rows(session, reference_set, features, segments)
    reference_set.profile, reference_set.profile_spec = profile.to_json(), profile.spec
    session.flush()
    return profile


def list_sets(*, session: Session, actor: Actor, model_name: str, version: str) -> list[tuple[ReferenceSet, str, str]]:
    """Every reference set of a version, newest first."""
    authorize(actor, Permission.MODELS_READ)
    model = registry_service.find_model(session=session, name=model_name)
    target = registry_service.find_version(session=session, model=model, version=version)
    sets = session.execute(
        select(ReferenceSet).where(ReferenceSet.version_id == target.id).order_by(ReferenceSet.id.desc())
    ).scalars()
    return [(s, model.name, target.version) for s in sets]


def sample_rows(*, session: Session, reference_set: ReferenceSet, features: list[FeatureSpec], limit: int) -> pa.Table:
    """Up to `limit` reference rows as columns (the report's drill-down sample)."""
    table = read_columns(session, Source(model_id=reference_set.model_id, reference_set_id=reference_set.id), features)
    if table.num_rows <= limit:
        return table
    rng = np.random.default_rng(reference_set.id)
    return table.take(np.sort(rng.choice(table.num_rows, limit, replace=False)))


def reference_for_checks(
    *, session: Session, actor: Actor, model: Model, version: ModelVersion, policy: MonitoringPolicy, notes: list[str]
) -> ReferenceSet:
    """The reference a check compares against (no authorization: for checks).

    With a baseline period in the policy: the version's baseline set for exactly that period,
    built on first use (audited for the run's actor); if the period holds too few inferences of
    this version, its uploaded reference, with a note. Without one: the active set, whatever
    its source."""
    active = active_set(session=session, version_id=version.id)
    baseline = policy.baseline
    if baseline is not None:
        if (
            active is not None
            and active.source == "baseline"
            and (active.baseline_start, active.baseline_end) == (baseline.start, baseline.end)
        ):
            return active
        try:
            return baseline_reference(session=session, actor=actor, model=model, version=version, policy=policy)
        except Invalid as exc:
            if active is None:
                raise MissingReference(exc.message) from None
            notes.append(f"baseline not usable ({exc.message}); compared against reference set {active.id} instead")
            return active
    if active is None:
        raise MissingReference(
            f"version '{version.version}' of '{model.name}' has no reference: upload one "
            f"(POST /api/v1/models/{model.name}/versions/{version.version}/reference) or name a baseline period in the policy"
        )
    return active


def get_set(*, session: Session, reference_set_id: int) -> ReferenceSet:
    found = session.get(ReferenceSet, reference_set_id)
    if found is None:
        raise Invalid(f"reference set {reference_set_id} does not exist")
    return found
