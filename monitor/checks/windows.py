"""Column-projected reads of inferences and reference rows, and the incremental daily profiles.

Raw rows are only ever read as the columns a profile needs: on PostgreSQL one
`COPY (SELECT score, prediction, features->>'kvp' ...) TO STDOUT` per day parsed by pyarrow,
on SQLite a Core select of json_extract() columns. A window's profile is the sum of the
stored daily profiles of its whole UTC days (rebuilt only when a day's row count or newest id
changed: late records for past days are picked up) plus ad hoc profiles of any partial day.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import String, and_, case, cast, delete, func, literal, select, text, union_all
from sqlalchemy.orm import Session

from monitor.checks.models import DailyProfile
from monitor.checks.profiles import (
    NumericColumn,
    NumericHist,
    Profile,
    ReferenceProfile,
    sample_profile,
    segment_specs,
)
from monitor.checks.schemas import FeatureSpec
from monitor.db import utcnow
from monitor.ingest.models import Inference
from monitor.reference.models import ReferenceRow

BASE_COLUMNS = ("pk", "score", "prediction")


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def days(self) -> Iterator[tuple[date, datetime, datetime]]:
        """Each UTC day touching the window, clipped to it: (day, start, end)."""
        day = self.start.astimezone(UTC).date()
        while True:
            day_start = datetime.combine(day, time(), UTC)
            if day_start >= self.end:
                return
            yield day, max(day_start, self.start), min(day_start + timedelta(days=1), self.end)
            day += timedelta(days=1)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


# ---------------------------------------------------------------------------------------------
# Column-projected reads


@dataclass(frozen=True)
class Source:
    """Which rows to read: a version's inferences in a time range, or a reference set."""

    model_id: int
    version_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    reference_set_id: int | None = None
    with_label: bool = False


def read_columns(
    session: Session, source: Source, features: list[FeatureSpec], *, limit: int | None = None
) -> pa.Table:
    """pk, score, prediction, [label,] and one column per feature (float64 or string)."""
    if session.get_bind().dialect.name == "postgresql":
        return _read_postgresql(session, source, features, limit)
    return _read_sqlite(session, source, features, limit)


def _column_types(source: Source, features: list[FeatureSpec]) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {"pk": pa.int64(), "score": pa.float64(), "prediction": pa.float64()}
    if source.with_label:
        types["label"] = pa.float64()
    for spec in features:
        types[spec.name] = pa.float64() if spec.type == "numeric" else pa.string()
    return types


def _read_postgresql(session: Session, source: Source, features: list[FeatureSpec], limit: int | None) -> pa.Table:
    return _read_postgresql_raw(session.connection().connection.dbapi_connection, source, features, limit)


def _read_postgresql_raw(raw: Any, source: Source, features: list[FeatureSpec], limit: int | None) -> pa.Table:
    # Plain ->> for every feature: a type test per value (jsonb_typeof) doubles the server's work,
    # and pyarrow parses numbers faster than a server-side cast. Values that are not numbers in a
    # numeric feature become missing in _parse_csv, as on SQLite.
    table = "reference_rows" if source.reference_set_id is not None else "inferences"
    params: dict[str, Any] = {}
    columns = ["id", "score", "prediction"] + (["label"] if source.with_label else [])
    for i, spec in enumerate(features):
        params[f"k{i}"] = spec.name
        columns.append(f"features ->> %(k{i})s")
    if source.reference_set_id is not None:
        where = "reference_set_id = %(set)s"
        params["set"] = source.reference_set_id
        order = " ORDER BY row_number"
    else:
        where = (
            "model_id = %(model)s AND version_id = %(version)s AND occurred_at >= %(start)s AND occurred_at < %(end)s"
        )
        params |= {"model": source.model_id, "version": source.version_id, "start": source.start, "end": source.end}
        order = " ORDER BY (id * 2654435761) %% 4294967296" if limit else ""
    query = f"SELECT {', '.join(columns)} FROM {table} WHERE {where}{order}"
    if limit:
        query += f" LIMIT {int(limit)}"
    buffer = io.BytesIO()
    with raw.cursor() as cursor:
        select_sql = cursor.mogrify(query, params).decode()
        with _range_read_costs(cursor, enabled=source.reference_set_id is None):
            cursor.copy_expert(f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv)", buffer)
    types = _column_types(source, features)
    if buffer.tell() == 0:
        return pa.table({name: pa.array([], type=kind) for name, kind in types.items()})
    return _parse_csv(buffer, types)


# A window's day is a narrow range of a table written in time order, which the window index
# (model, version, occurred_at) reads in a few pages. With PostgreSQL's default random_page_cost
# (4: spinning disks) the planner scans the whole table instead as soon as a day is more than
# about a tenth of it (a young table, a backfill of the first weeks), once per day read: on the
# drift bench's 15-day table that was 0.2 s per day against 0.08 s by the index. The read sets
# the usual SSD figure for itself and puts the previous value back (the serial path reads in
# the check's own transaction).
RANGE_READ_PAGE_COST = 1.1


@contextmanager
def _range_read_costs(cursor: Any, *, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    cursor.execute("SELECT current_setting('random_page_cost')")
    (previous,) = cursor.fetchone()
    cursor.execute("SELECT set_config('random_page_cost', %s, true)", (str(RANGE_READ_PAGE_COST),))
    yield  # a failed read aborts the transaction, and its rollback undoes the setting
    cursor.execute("SELECT set_config('random_page_cost', %s, true)", (previous,))


def _parse_csv(buffer: io.BytesIO, types: dict[str, pa.DataType]) -> pa.Table:
    names = list(types)

    def parse(column_types: dict[str, pa.DataType]) -> pa.Table:
        buffer.seek(0)
        return pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(len(names))], block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types={f"c{i}": column_types[name] for i, name in enumerate(names)},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        ).rename_columns(names)

    try:
        return parse(types)
    except pa.ArrowInvalid:  # text in a numeric feature somewhere: parse leniently
        lenient = {
            name: pa.string() if kind == pa.float64() and name not in BASE_COLUMNS + ("label",) else kind
            for name, kind in types.items()
        }
        table = parse(lenient)
        for name, kind in types.items():
            if lenient[name] != kind:
                table = table.set_column(table.column_names.index(name), name, _to_numbers(table[name]))
        return table


def _to_numbers(column: pa.ChunkedArray) -> pa.Array:
    """Numbers stay, anything else (text, true/false) becomes missing."""
    import pandas as pd

    values = pd.to_numeric(column.to_pandas(), errors="coerce")
    return pa.array(values.to_numpy(dtype="float64", na_value=float("nan")), type=pa.float64(), from_pandas=True)


def _sqlite_feature(column: Any, spec: FeatureSpec) -> Any:
    # Text, like PostgreSQL's ->>: booleans read 'true'/'false', numbers their digits; numeric
    # features are parsed in Python, so both backends agree on what counts as a number.
    path = '$."' + spec.name.replace('"', '\\"') + '"'
    kind = func.json_type(column, path)
    value = func.json_extract(column, path)
    return case(
        (kind == "text", cast(value, String)),
        (kind.in_(["integer", "real"]), cast(value, String)),
        (kind == "true", "true"),
        (kind == "false", "false"),
        else_=None,
    )


def _read_sqlite(session: Session, source: Source, features: list[FeatureSpec], limit: int | None) -> pa.Table:
    if source.reference_set_id is not None:
        table: Any = ReferenceRow
        condition = ReferenceRow.reference_set_id == source.reference_set_id
        order: Any = ReferenceRow.row_number
    else:
        table = Inference
        condition = and_(
            Inference.model_id == source.model_id,
            Inference.version_id == source.version_id,
            Inference.occurred_at >= source.start,
            Inference.occurred_at < source.end,
        )
        order = (Inference.id * 2654435761) % 4294967296 if limit else None
    columns = [table.id, table.score, table.prediction] + ([table.label] if source.with_label else [])
    columns += [_sqlite_feature(table.features, spec) for spec in features]
    query = select(*columns).where(condition)
    if order is not None:
        query = query.order_by(order)
    if limit:
        query = query.limit(limit)
    rows = session.execute(query).all()
    types = _column_types(source, features)
    values = list(zip(*rows, strict=True)) if rows else [() for _ in types]
    arrays = {}
    for (name, kind), column in zip(types.items(), values, strict=True):
        if kind == pa.float64() and name not in BASE_COLUMNS + ("label",):
            arrays[name] = _to_numbers(pa.chunked_array([pa.array(list(column), type=pa.string())]))
        else:
            arrays[name] = pa.array(list(column), type=kind)
    return pa.table(arrays)


# ---------------------------------------------------------------------------------------------
# Daily profiles


def _day_expression(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", Inference.occurred_at))
    return func.substr(Inference.occurred_at, 1, 10)


def day_counts(
    session: Session, *, model_id: int, version_id: int, start: datetime, end: datetime
) -> dict[date, tuple[int, int]]:
    """(row count, newest id) per UTC day of a version's inferences in [start, end)."""
    day = _day_expression(session).label("day")
    rows = session.execute(
        select(day, func.count(), func.max(Inference.id))
        .where(
            Inference.model_id == model_id,
            Inference.version_id == version_id,
            Inference.occurred_at >= start,
            Inference.occurred_at < end,
        )
        .group_by(day)
    ).all()
    return {(d if isinstance(d, date) else date.fromisoformat(d)): (int(n), int(top)) for d, n, top in rows}


def day_row_counts(
    session: Session, *, model_id: int, version_id: int, days: list[tuple[date, datetime, datetime]]
) -> dict[date, int]:
    """Rows per day, one index-only count per day in one round trip (no heap access, no per-row
    expression): what decides whether a stored daily profile is stale."""
    if not days:
        return {}
    counts = [
        select(literal(i).label("i"), func.count().label("n")).where(
            Inference.model_id == model_id,
            Inference.version_id == version_id,
            Inference.occurred_at >= start,
            Inference.occurred_at < end,
        )
        for i, (_day, start, end) in enumerate(days)
    ]
    rows = session.execute(union_all(*counts)).all()
    return {days[int(i)][0]: int(n) for i, n in rows if n}


@dataclass
class WindowProfile:
    profile: Profile
    days_total: int
    days_rebuilt: int
    rows_read: int


def window_profile(
    session: Session,
    *,
    model_id: int,
    version_id: int,
    reference_set_id: int,
    reference: ReferenceProfile,
    features: list[FeatureSpec],
    window: Window,
) -> WindowProfile:
    """The window's histograms: stored daily profiles (refreshed where stale) plus partial days."""
    whole = [(d, s, e) for d, s, e in window.days() if e - s == timedelta(days=1)]
    partial = [(d, s, e) for d, s, e in window.days() if e - s != timedelta(days=1)]
    total = reference.empty_profile()
    rebuilt = rows_read = 0
    if whole:
        counts = day_row_counts(session, model_id=model_id, version_id=version_id, days=whole)
        stored = {
            p.day: p
            for p in session.execute(
                select(DailyProfile).where(
                    DailyProfile.model_id == model_id,
                    DailyProfile.version_id == version_id,
                    DailyProfile.reference_set_id == reference_set_id,
                    DailyProfile.day.in_([d for d, _, _ in whole]),
                )
            ).scalars()
        }
        stale: list[tuple[date, datetime, datetime, int]] = []
        for day, start, end in whole:
            current = counts.get(day)
            kept = stored.get(day)
            if current is None:
                if kept is not None:  # every row of that day is gone (retention)
                    session.execute(delete(DailyProfile).where(DailyProfile.id == kept.id))
                continue
            # Inferences are only ever added (or a whole old day removed), so a day whose row
            # count is unchanged is unchanged; the count also catches rows that committed late
            # with an id below the newest one profiled.
            if kept is not None and kept.spec == reference.spec and kept.row_count == current:
                total.add(Profile.from_json(kept.body, reference))
                continue
            stale.append((day, start, end, current))
        for (day, _start, _end, _count), (day_profile, count, newest) in zip(
            stale,
            _profile_days(session, model_id, version_id, reference, features, [(s, e) for _, s, e, _ in stale]),
            strict=True,
        ):
            rebuilt += 1
            rows_read += count
            _store_day(
                session,
                stored.get(day),
                model_id,
                version_id,
                reference_set_id,
                reference.spec,
                day,
                day_profile,
                count,
                newest,
                sequential_totals(day_profile, reference),
            )
            total.add(day_profile)
    for _day, start, end in partial:
        day_profile, count, _newest = _profile_range(session, model_id, version_id, reference, features, start, end)
        rows_read += count
        total.add(day_profile)
    session.flush()
    return WindowProfile(total, len(whole) + len(partial), rebuilt + len(partial), rows_read)


SEQUENTIAL_KEY = "sequential"  # a stored day's totals for the sequential drift series (docs/decisions/0503)


def reference_places(counts: np.ndarray) -> np.ndarray:
    """Each bin's place in the reference: the share of reference values below it plus half its own."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return np.full(len(counts), 0.5)
    return (np.cumsum(counts) - counts / 2.0) / total


def _place_sum(hist: NumericHist | None, places: np.ndarray) -> list[float]:
    if hist is None or len(hist.counts) != len(places):
        return [0, 0.0]
    return [int(hist.counts.sum()), float(hist.counts @ places)]


def sequential_totals(profile: Profile, reference: ReferenceProfile) -> dict[str, Any]:
    """What the sequential drift series need of a day, stored with its profile so that a run reads
    these few numbers instead of 56 whole bodies: the score's and each numeric input's rows and
    sum of places in the reference; per segment value its scored rows, sum of places (on the
    whole reference's segment bins), predictions and positive predictions."""
    segments: dict[str, dict[str, list[float]]] = {}
    for attribute, values in reference.segments.items():
        if not values:
            continue
        size = len(next(iter(values.values())).bins)
        places = reference_places(sum((v.bins for v in values.values()), np.zeros(size)))
        segments[attribute] = {
            value: [o.scored, float(o.bins @ places) if len(o.bins) == size else 0.0, o.predictions,
                    o.positive_predictions]
            for value, o in profile.segments.get(attribute, {}).items()
        }  # fmt: skip
    features = {
        name: _place_sum(hist, reference_places(column.hist.counts))
        for name, column in reference.features.items()
        if isinstance(column, NumericColumn) and isinstance((hist := profile.features.get(name)), NumericHist)
    }
    return {
        "score": _place_sum(profile.score, reference_places(reference.score.hist.counts)),
        "rate": [profile.predictions, profile.positive_predictions],
        "segments": segments,
        "features": features,
    }


def stored_sequential_totals(
    session: Session,
    *,
    model_id: int,
    version_id: int,
    reference_set_id: int,
    reference: ReferenceProfile,
    first: date,
    last: date,
) -> dict[date, dict[str, Any]]:
    """The sequential totals stored with the daily profiles of the days first..last (inclusive) built on
    this reference set and spec: no day is rebuilt and no inference read (docs/decisions/0503;
    window_profile has refreshed the window's own days before). Only a day profiled before the
    totals were stored has its whole body decoded."""
    where = (
        DailyProfile.model_id == model_id,
        DailyProfile.version_id == version_id,
        DailyProfile.reference_set_id == reference_set_id,
        DailyProfile.spec == reference.spec,
        DailyProfile.day >= first,
        DailyProfile.day <= last,
    )
    found: dict[date, Any] = dict(
        session.execute(select(DailyProfile.day, DailyProfile.body[SEQUENTIAL_KEY]).where(*where)).all()
    )
    older = [day for day, totals in found.items() if not totals]
    if older:
        for day, body in session.execute(
            select(DailyProfile.day, DailyProfile.body).where(*where, DailyProfile.day.in_(older))
        ):
            found[day] = sequential_totals(Profile.from_json(body, reference), reference)
    return found


# Days read at once on PostgreSQL, each over its own connection: the server's JSONB-to-text work
# for one day runs on one core, and psycopg2 releases the GIL during COPY (as does pyarrow's
# CSV parser), so a cold window is read on both cores of a small server.
PARALLEL_READS = 2


def _profile_days(
    session: Session,
    model_id: int,
    version_id: int,
    reference: ReferenceProfile,
    features: list[FeatureSpec],
    ranges: list[tuple[datetime, datetime]],
) -> Iterator[tuple[Profile, int, int]]:
    """Profiles of several days, in order. On PostgreSQL, when the session's transaction has
    written nothing yet (no transaction id: other connections then see exactly the committed
    rows it sees), the days are read over PARALLEL_READS pooled connections; else one by one
    in the session, which also sees its own uncommitted rows."""
    if len(ranges) > 1 and PARALLEL_READS > 1 and _unwritten_postgresql(session):
        from concurrent.futures import ThreadPoolExecutor

        present = _profiled_specs(reference, features)
        engine = session.get_bind().engine

        def read(bounds: tuple[datetime, datetime]) -> tuple[Profile, int, int]:
            connection = engine.raw_connection()
            try:
                table = _read_postgresql_raw(
                    connection.dbapi_connection,
                    Source(model_id=model_id, version_id=version_id, start=bounds[0], end=bounds[1]),
                    present,
                    None,
                )
                connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            finally:
                connection.close()
            return _profiled(table, reference)

        with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
            yield from pool.map(read, ranges)
        return
    for start, end in ranges:
        yield _profile_range(session, model_id, version_id, reference, features, start, end)


def _unwritten_postgresql(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    return session.execute(text("SELECT pg_current_xact_id_if_assigned() IS NULL")).scalar_one()


def _profile_range(
    session: Session,
    model_id: int,
    version_id: int,
    reference: ReferenceProfile,
    features: list[FeatureSpec],
    start: datetime,
    end: datetime,
) -> tuple[Profile, int, int]:
    table = read_columns(
        session,
        Source(model_id=model_id, version_id=version_id, start=start, end=end),
        _profiled_specs(reference, features),
    )
    return _profiled(table, reference)


def _profiled_specs(reference: ReferenceProfile, features: list[FeatureSpec]) -> list[FeatureSpec]:
    """The columns a day's profile reads: the reference's features and its segment attributes."""
    return segment_specs([spec for spec in features if spec.name in reference.features], reference.segment_attributes)


def _profiled(table: pa.Table, reference: ReferenceProfile) -> tuple[Profile, int, int]:
    """(the day's profile, its row count, its newest inference id)."""
    newest = int(pc.max(table["pk"]).as_py() or 0) if table.num_rows else 0
    return sample_profile(table, reference), table.num_rows, newest


def _store_day(
    session: Session,
    kept: DailyProfile | None,
    model_id: int,
    version_id: int,
    reference_set_id: int,
    spec: str,
    day: date,
    profile: Profile,
    count: int,
    newest: int,
    totals: dict[str, Any],
) -> None:
    if kept is None:
        kept = DailyProfile(model_id=model_id, version_id=version_id, reference_set_id=reference_set_id, day=day)
        session.add(kept)
    kept.spec, kept.row_count, kept.max_inference_pk = spec, count, newest
    kept.body, kept.built_at = profile.to_json() | {SEQUENTIAL_KEY: totals}, utcnow()
