"""The performance, subgroups and estimated_performance kinds: reading a window, running, reconciling.

Data access is set-based and column-projected: the window's inferences (score, prediction and
the segment attributes only) come through checks.windows.read_columns one UTC day at a time
(COPY on PostgreSQL), and their labels through ingest's effective_outcomes_query (the latest,
non-superseded outcome per inference), joined in numpy on the inference's primary key. The rows
of the lookback (LOOKBACK_DAYS before window_end) are read once and shared by the
kinds run for the same version and window.

Metric names written (metric_points.metric):
- performance (segment None) and subgroups (segment "a=v" / "a=v&b=w"): label_coverage,
  sensitivity, specificity, ppv, npv, f1, accuracy, auc, brier, ece (statuses: checks.performance);
  sensitivity_cusum, specificity_cusum (daily lower CUSUM over the lookback; value: today's
  statistic; warn when the chart crossed h on any day of the lookback: an alarm stands until
  the days that raised it leave the lookback, as AIM-CU stops at the first signal);
  sensitivity_sequential, specificity_sequential (checks.sequential: the GLR over the version's last
  LOOKBACK_DAYS against the target; breach with details.onset, the estimated change point);
  <metric>_estimate_error for sensitivity, specificity, ppv, npv, auc once the window has both an
  estimate and enough labels (checks.estimation.reconcile).
- estimated_performance: sensitivity, specificity, ppv, npv, auc with estimated=True, overall and
  per segment; estimate_support (share of rows whose inputs lie inside the reference's range).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv as pacsv
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from monitor.checks import cusum, estimation, performance, sequential
from monitor.checks.catalog import LABELLED_KINDS, PERFORMANCE_METRICS
from monitor.checks.kinds import Finding, KindContext, KindResult, register
from monitor.checks.models import CheckRun, MetricPoint
from monitor.checks.performance import Figure, Limits
from monitor.checks.policy import policy_for
from monitor.checks.schemas import FeatureSpec, MonitoringPolicy
from monitor.checks.windows import Source, Window, read_columns
from monitor.ingest import service as ingest_service
from monitor.ingest.models import Inference, Outcome
from monitor.reference.service import MissingReference
from monitor.registry.models import ModelVersion

CUSUM_LOOKBACK_DAYS = 28
LOOKBACK_DAYS = max(CUSUM_LOOKBACK_DAYS, sequential.WINDOW)  # rows read: the sequential detector's change points
CUSUM_METRICS = {"sensitivity": ("tp", "positives"), "specificity": ("tn", "negatives")}
SUPPORT_BREACH = 0.2  # share of a segment's rows outside the reference's inputs
SUPPORT_MIN_ROWS = 30


# ---------------------------------------------------------------------------------------------
# Reading rows


@dataclass
class Rows:
    """Inferences as columns: label -1 while no outcome is known; day as a date ordinal."""

    pk: np.ndarray
    score: np.ndarray
    prediction: np.ndarray
    label: np.ndarray
    day: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.pk)

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(
            self.pk[mask], self.score[mask], self.prediction[mask], self.label[mask], self.day[mask],
            {name: values[mask] for name, values in self.columns.items()},  # ndarray or Categorical
        )  # fmt: skip


def _specs(attributes: list[str], features: list[FeatureSpec]) -> list[FeatureSpec]:
    specs = {name: FeatureSpec(name=name, type="categorical") for name in attributes}
    for spec in features:
        specs.setdefault(spec.name, FeatureSpec(name=spec.name, type=spec.type))
    return list(specs.values())


def _column(table: pa.Table, name: str, kind: str) -> Any:
    """numeric: float64 (NaN missing); categorical: a pandas Categorical (fast to group by)."""
    values = table[name]
    if kind == "numeric":
        return values.to_numpy(zero_copy_only=False).astype(np.float64)
    if not pa.types.is_dictionary(values.type):
        values = values.dictionary_encode()
    return pd.Categorical(values.to_pandas())


def read_rows(session: Session, *, model_id: int, version_id: int, window: Window, specs: list[FeatureSpec]) -> Rows:
    """The version's inferences in the window with their effective labels (label -1 if none)."""
    if session.get_bind().dialect.name == "postgresql":
        return _read_postgresql(session, model_id=model_id, version_id=version_id, window=window, specs=specs)
    parts = []
    for day, start, end in window.days():
        table = read_columns(session, Source(model_id=model_id, version_id=version_id, start=start, end=end), specs)
        parts.append(table.append_column("day", pa.array(np.full(table.num_rows, day.toordinal()), type=pa.int64())))
    table = pa.concat_tables(parts) if parts else None
    rows = _rows_from_table(table, specs)
    _attach_labels(session, rows, model_id=model_id, version_id=version_id, window=window)
    return rows


def _rows_from_table(table: pa.Table | None, specs: list[FeatureSpec]) -> Rows:
    if table is None or table.num_rows == 0:
        return Rows(
            np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
            {s.name: (np.zeros(0) if s.type == "numeric" else pd.Categorical([])) for s in specs},
        )  # fmt: skip
    label = table["label"].to_numpy(zero_copy_only=False).astype(np.float64) if "label" in table.column_names else None
    return Rows(
        pk=table["pk"].to_numpy(zero_copy_only=False).astype(np.int64),
        score=table["score"].to_numpy(zero_copy_only=False).astype(np.float64),
        prediction=table["prediction"].to_numpy(zero_copy_only=False).astype(np.int64),
        label=np.full(table.num_rows, -1, dtype=np.int64)
        if label is None
        else np.where(np.isnan(label), -1, label).astype(np.int64),
        day=table["day"].to_numpy(zero_copy_only=False).astype(np.int64),
        columns={s.name: _column(table, s.name, s.type) for s in specs},
    )


def _read_postgresql(
    session: Session, *, model_id: int, version_id: int, window: Window, specs: list[FeatureSpec]
) -> Rows:
    """One COPY of the window: each inference with its effective label and the segment columns
    extracted server-side, parsed by pyarrow with dictionary-encoded strings.

    The label joins the current (non-superseded) outcome addressed to the inference, else the
    current one of its study: ingest keeps exactly one current outcome per target, which makes
    this the same answer as ingest's ranked effective_outcomes_query without its 1M-row sort.
    The invariant is checked on every read (an inference twice in the answer); if it ever fails,
    the labels come from the canonical query instead."""
    columns = [
        "i.id", "floor(extract(epoch from i.occurred_at) / 86400)::bigint", "i.score", "i.prediction",
        "COALESCE(own.label, study.label)",
    ]  # fmt: skip
    params: dict[str, Any] = {}
    for k, spec in enumerate(specs):
        params[f"k{k}"] = spec.name
        if spec.type == "numeric":
            key = f"i.features -> %(k{k})s"
            columns.append(f"CASE WHEN jsonb_typeof({key}) = 'number' THEN (i.features ->> %(k{k})s)::float8 END")
        else:  # segment values are scalars; ->> alone halves the extraction cost
            columns.append(f"i.features ->> %(k{k})s")
    params |= {"model": model_id, "version": version_id, "start": window.start, "end": window.end}
    query = (
        f"SELECT {', '.join(columns)} FROM inferences i "
        "LEFT JOIN outcomes own ON own.model_id = i.model_id AND own.inference_id = i.inference_id AND own.superseded_at IS NULL "
        "LEFT JOIN outcomes study ON study.model_id = i.model_id AND study.study_key = i.study_key "
        "AND study.study_key IS NOT NULL AND study.superseded_at IS NULL "
        "WHERE i.model_id = %(model)s AND i.version_id = %(version)s AND i.occurred_at >= %(start)s AND i.occurred_at < %(end)s"
    )
    raw = session.connection().connection.dbapi_connection
    buffer = io.BytesIO()
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        cursor.copy_expert(f"COPY ({cursor.mogrify(query, params).decode()}) TO STDOUT WITH (FORMAT csv)", buffer)
    if buffer.tell() == 0:
        return _rows_from_table(None, specs)
    names = ["pk", "day", "score", "prediction", "label"] + [s.name for s in specs]
    types = [pa.int64(), pa.int64(), pa.float64(), pa.float64(), pa.float64()] + [
        pa.float64() if s.type == "numeric" else pa.dictionary(pa.int32(), pa.string()) for s in specs
    ]
    buffer.seek(0)
    table = pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(len(names))], block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types={f"c{i}": kind for i, kind in enumerate(types)},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    ).rename_columns(names)
    del buffer
    table = table.set_column(1, "day", pa.compute.add(table["day"], date(1970, 1, 1).toordinal()))
    rows = _rows_from_table(table, specs)
    ordered = np.sort(rows.pk)
    if len(ordered) > 1 and bool((ordered[1:] == ordered[:-1]).any()):  # more than one current outcome for a target
        keep = np.unique(rows.pk, return_index=True)[1]
        rows = rows.take(np.sort(keep))
        rows.label[:] = -1
        _attach_labels(session, rows, model_id=model_id, version_id=version_id, window=window)
    return rows


def _attach_labels(session: Session, rows: Rows, *, model_id: int, version_id: int, window: Window) -> None:
    if not len(rows):
        return
    query = ingest_service.effective_outcomes_query(
        model_id=model_id, version_id=version_id, start=window.start, end=window.end
    )
    labelled = query.subquery("effective")
    found = session.execute(select(labelled.c.inference_pk, labelled.c.label)).all()
    if not found:
        return
    keys = np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))
    labels = np.fromiter((r[1] for r in found), dtype=np.int64, count=len(found))
    order = np.argsort(rows.pk)
    position = np.clip(np.searchsorted(rows.pk, keys, sorter=order), 0, len(rows.pk) - 1)
    hit = rows.pk[order[position]] == keys
    rows.label[order[position[hit]]] = labels[hit]


@dataclass
class WindowData:
    """What the three kinds share for one version and window."""

    lookback: Rows  # CUSUM_LOOKBACK_DAYS (or the window, if longer) up to window_end
    window: Rows
    first_day: int  # ordinal of the lookback's first day
    cusum_first_day: int = 0  # ordinal of the CUSUM chart's first day (CUSUM_LOOKBACK_DAYS, or the window)
    partitions: list[performance.Partition] | None = None  # of the lookback, once computed


def window_data(context: KindContext, *, with_features: bool = False) -> WindowData:
    """Read once per KindContext (cached on it), whatever kinds run. The policy's input features
    are read only for the estimate's support check (with_features); segments always."""
    cache = context.__dict__.setdefault("_performance_window", {})
    for flag in (True, with_features):
        if flag in cache:
            return cache[flag]
    policy, window = context.policy, context.window
    start = min(window.start, window.end - timedelta(days=LOOKBACK_DAYS))
    specs = _specs(policy.segments, policy.features if with_features else [])
    lookback = read_rows(
        context.session,
        model_id=context.model.id,
        version_id=context.version.id,
        window=Window(start, window.end),
        specs=specs,
    )
    inside = _inside_window(context, lookback)
    chart_start = min(window.start, window.end - timedelta(days=CUSUM_LOOKBACK_DAYS))
    data = WindowData(
        lookback=lookback, window=lookback.take(inside), first_day=start.astimezone(UTC).date().toordinal(),
        cusum_first_day=chart_start.astimezone(UTC).date().toordinal(),
    )  # fmt: skip
    cache[with_features] = data
    return data


def _inside_window(context: KindContext, rows: Rows) -> np.ndarray:
    """Rows of the lookback whose occurred_at falls in the window (whole days by ordinal; a
    partial first day is resolved by primary key through one indexed query)."""
    window = context.window
    first = window.start.astimezone(UTC)
    inside = rows.day > first.date().toordinal()
    if first.time() == datetime.min.time():
        return inside | (rows.day == first.date().toordinal())
    partial = rows.day == first.date().toordinal()
    if partial.any():
        keys = set(
            context.session.execute(
                select(Inference.id).where(
                    Inference.model_id == context.model.id,
                    Inference.version_id == context.version.id,
                    Inference.occurred_at >= window.start,
                    Inference.occurred_at
                    < datetime.combine(first.date() + timedelta(days=1), datetime.min.time(), UTC),
                )
            ).scalars()
        )
        inside |= partial & np.isin(rows.pk, np.fromiter(keys, dtype=np.int64, count=len(keys)))
    return inside


# ---------------------------------------------------------------------------------------------
# Shared pieces


def targets_of(version: ModelVersion) -> dict[str, float]:
    """The version's numeric targets for the metrics computed here."""
    return {
        name: float(value)
        for name, value in (version.targets or {}).items()
        if name in PERFORMANCE_METRICS and isinstance(value, int | float) and not isinstance(value, bool)
    }


def limits_for(context: KindContext, kind: str) -> Limits:
    """Policy minimums and FDR level; bootstrap seeded by what the run is about (re-runs reproduce)."""
    key = f"{context.model.id}:{context.version.id}:{context.window.end.isoformat()}:{kind}"
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
    policy = context.policy
    return Limits(min_positives=policy.min_positives, min_negatives=policy.min_negatives, fdr_q=policy.fdr_q, seed=seed)


def finding(figure: Figure) -> Finding:
    return Finding(
        metric=figure.metric, status=figure.status, value=figure.value, segment=figure.segment, ci_low=figure.ci_low,
        ci_high=figure.ci_high, n=figure.n, threshold=figure.threshold, method=figure.method, estimated=figure.estimated,
        details=figure.details,
    )  # fmt: skip


def figure_of(point: MetricPoint) -> Figure:
    return Figure(
        point.metric, point.segment, point.value, point.ci_low, point.ci_high, point.n or 0, point.threshold,
        point.method or "", point.status, estimated=point.estimated, details=dict(point.details or {}),
    )  # fmt: skip


def _counts_summary(rows: Rows) -> dict[str, Any]:
    labelled = int((rows.label >= 0).sum())
    return {
        "inferences": len(rows),
        "labelled": labelled,
        "positives": int((rows.label == 1).sum()),
        "negatives": int((rows.label == 0).sum()),
        "label_coverage": labelled / len(rows) if len(rows) else None,
    }


def _tally(figures: list[Figure]) -> dict[str, int]:
    judged = [f for f in figures if f.metric != "label_coverage"]
    return {status: sum(f.status == status for f in judged) for status in ("breach", "warn", "ok", "insufficient_data")}


def _run_status(rows: Rows, figures: list[Figure]) -> str:
    judged = [f for f in figures if f.metric != "label_coverage" and not f.metric.endswith(("_cusum", "_sequential"))]
    if not len(rows) or all(f.status == "insufficient_data" for f in judged):
        return "insufficient_data"
    return "completed"


# ---------------------------------------------------------------------------------------------
# CUSUM


def _reference_rows(context: KindContext) -> Rows | None:
    """The labelled reference with the segment attributes and policy features (cached), or None."""
    if "_performance_reference" in context.__dict__:
        return context.__dict__["_performance_reference"]
    try:
        reference_set = context.reference_set
    except MissingReference:
        context.__dict__["_performance_reference"] = None
        return None
    specs = _specs(context.policy.segments, context.policy.features)
    table = read_columns(
        context.session, Source(model_id=context.model.id, reference_set_id=reference_set.id, with_label=True), specs
    )
    rows = _rows_from_table(table.append_column("day", pa.array(np.zeros(table.num_rows, dtype=np.int64))), specs)
    context.__dict__["_performance_reference"] = rows
    return rows


def _in_control(
    metric: str,
    group_reference: tuple[int, int] | None,
    overall_reference: tuple[int, int] | None,
    target: float | None,
    limits: Limits,
) -> tuple[float | None, str]:
    """mu0: the reference's own figure (segment, else overall) with enough cases, else the target."""
    minimum = limits.min_positives if metric == "sensitivity" else limits.min_negatives
    for counts, source in ((group_reference, "reference_segment"), (overall_reference, "reference")):
        if counts is not None and counts[1] >= minimum:
            return counts[0] / counts[1], source
    return (target, "target") if target is not None else (None, "none")


def _daily_counts(rows: Rows, codes: np.ndarray, n_groups: int, first_day: int, days: int) -> dict[str, np.ndarray]:
    """Per (group, day): tp, positives, tn, negatives of the labelled rows."""
    known = rows.label >= 0
    g, d = codes[known], np.clip(rows.day[known] - first_day, 0, days - 1)
    y, p = rows.label[known] == 1, rows.prediction[known] == 1
    cell = g * days + d
    size = n_groups * days

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(cell[mask], minlength=size).reshape(n_groups, days)

    return {"tp": count(y & p), "positives": count(y), "tn": count(~y & ~p), "negatives": count(~y)}


def _lookback_days(data: WindowData) -> int:
    days = int(data.lookback.day.max() - data.first_day + 1) if len(data.lookback) else 1
    return max(days, LOOKBACK_DAYS)


def critical_hypotheses(context: KindContext, data: WindowData, targets: dict[str, float]) -> int:
    """The model's critical sequential series for the budget: sensitivity and specificity (those with a
    target) overall and per segment of the lookback, segments whose labelled rows give exactly the same
    daily counts as another's (a site with one manufacturer, its intersection) counted once: the same
    data is one hypothesis (docs/decisions/0503). The same count in the performance and subgroups runs."""
    cache = context.__dict__.setdefault("_critical_hypotheses", {})
    if id(data) in cache:
        return cache[id(data)]
    days = _lookback_days(data)
    rows = data.lookback
    keys = set()
    groups = [(np.zeros(len(rows), dtype=np.int64), 1)]
    groups += [(part.codes, len(part.names)) for part in _lookback_partitions(context.policy, data)]
    for codes, n_groups in groups:
        counts = _daily_counts(rows, codes, n_groups, data.first_day, days)
        for i in range(n_groups):
            keys.add(b"".join(counts[name][i].tobytes() for name in ("tp", "positives", "tn", "negatives")))
    found = sequential.critical_series(targets, len(keys) - 1)
    cache[id(data)] = found
    return found


def reset_days(context: KindContext, kind: str, first_day: int) -> dict[tuple[str, str | None], int]:
    """(metric, segment) -> the day index (from first_day) where the kind's sequential series restarts:
    the UTC day of the last acknowledgement or resolution of its alert (context.resets), if that
    day lies after first_day and before the window's end (a recomputed older window is judged as it
    was, without acknowledgements made after it)."""
    end = context.window.end
    out = {}
    for (reset_kind, metric, _feature, segment), at in context.resets.items():
        if reset_kind != kind or at >= end:
            continue
        out[(metric.removesuffix("_sequential"), segment)] = at.astimezone(UTC).date().toordinal() - first_day
    return {key: day for key, day in out.items() if day > 0}


def _reference_counts(reference: Rows | None, codes: np.ndarray | None, n_groups: int) -> dict[str, np.ndarray] | None:
    if reference is None or codes is None:
        return None
    known = reference.label >= 0
    g, y, p = codes[known], reference.label[known] == 1, reference.prediction[known] == 1
    return {
        name: np.bincount(g[mask], minlength=n_groups + 1)[:n_groups]
        for name, mask in (("tp", y & p), ("positives", y), ("tn", ~y & ~p), ("negatives", ~y))
    }


def cusum_figures(
    data: WindowData,
    names: list[str | None],
    codes: np.ndarray,
    *,
    reference: dict[str, np.ndarray] | None,
    overall_reference: dict[str, np.ndarray] | None,
    targets: dict[str, float],
    limits: Limits,
    budget: sequential.Budget,
    series: int,
    resets: dict[tuple[str, str | None], int] | None = None,
) -> list[Figure]:
    """The sequential verdict (checks.sequential) over the lookback (each series from its reset, if
    any) and the daily lower CUSUM of sensitivity and specificity over its last CUSUM_LOOKBACK_DAYS,
    for each group."""
    days = _lookback_days(data)
    counts = _daily_counts(data.lookback, codes, len(names), data.first_day, days)
    figures = sequential.performance_figures(
        counts, names, first_day=data.first_day, targets=targets, budget=budget, series=series, resets=resets
    )
    skipped = max(data.cusum_first_day - data.first_day, 0)
    days, first_day, counts = days - skipped, data.first_day + skipped, {k: v[:, skipped:] for k, v in counts.items()}
    design = cusum.design()
    for metric, (success, total) in CUSUM_METRICS.items():
        for i, name in enumerate(names):
            group_reference = None if reference is None else (int(reference[success][i]), int(reference[total][i]))
            overall = (
                None
                if overall_reference is None
                else (int(overall_reference[success][0]), int(overall_reference[total][0]))
            )
            mu0, source = _in_control(metric, group_reference, overall, targets.get(metric), limits)
            cases = int(counts[total][i].sum())
            if mu0 is None or cases == 0:
                figures.append(
                    Figure(
                        f"{metric}_cusum",
                        name,
                        None,
                        None,
                        None,
                        cases,
                        None,
                        "cusum",
                        "insufficient_data",
                        details={"reason": "no cases or no in-control value"},
                    )
                )
                continue
            chart = cusum.daily_chart(counts[success][i], counts[total][i], mu0=mu0, chart_design=design)
            signals = chart.signal_days
            figures.append(
                Figure(
                    f"{metric}_cusum", name, chart.last, None, None, cases, design.h, "cusum", "warn" if len(signals) else "ok",
                    details={
                        "signalling_now": chart.signalling,
                        "max": float(chart.statistic.max()) if len(chart.statistic) else 0.0,
                        "k": design.k, "h": design.h, "arl0_days": design.arl0, "shift_sd": design.shift, "arl1_days": design.arl1,
                        "mu0": mu0, "mu0_source": source, "lookback_days": days,
                        "first_signal": None if not len(signals) else date.fromordinal(int(signals[0]) + first_day).isoformat(),
                        # The chart, as parallel arrays (days with cases only): day, daily score z, statistic s.
                        "days": [date.fromordinal(int(d) + first_day).isoformat() for d in chart.days],
                        "z": np.round(chart.z, 4).tolist(),
                        "s": np.round(chart.statistic, 4).tolist(),
                    },
                )
            )  # fmt: skip
    return figures


# ---------------------------------------------------------------------------------------------
# Reconciliation with the window's estimate


def current_points(session: Session, *, version_id: int, kind: str, window_end: datetime) -> list[MetricPoint]:
    """Metric points of the current run of a kind for a version and window_end."""
    return list(
        session.execute(
            select(MetricPoint)
            .join(CheckRun, CheckRun.id == MetricPoint.run_id)
            .where(
                CheckRun.version_id == version_id,
                CheckRun.kind == kind,
                CheckRun.window_end == window_end,
                CheckRun.superseded_at.is_(None),
            )
            .order_by(MetricPoint.id)
        ).scalars()
    )


def _reconciliation(context: KindContext, realized: list[Figure], *, overall: bool) -> list[Figure]:
    points = current_points(
        context.session, version_id=context.version.id, kind="estimated_performance", window_end=context.window.end
    )
    estimated = [
        figure_of(p) for p in points if p.metric in estimation.ESTIMATED_METRICS and (p.segment is None) == overall
    ]
    return estimation.reconcile(estimated, realized)


# ---------------------------------------------------------------------------------------------
# Kinds


@register("performance")
def performance_kind(context: KindContext) -> KindResult:
    data = window_data(context)
    rows, targets, limits = data.window, targets_of(context.version), limits_for(context, "performance")
    figures = performance.overall_figures(rows.label, rows.score, rows.prediction, targets=targets, limits=limits)
    reference = _reference_rows(context)
    overall_reference = _reference_counts(
        reference, None if reference is None else np.zeros(len(reference), dtype=np.int64), 1
    )
    figures += cusum_figures(
        data, [None], np.zeros(len(data.lookback), dtype=np.int64), reference=overall_reference,
        overall_reference=overall_reference, targets=targets, limits=limits,
        budget=sequential.budget_for(context.policy), series=critical_hypotheses(context, data, targets),
        resets=reset_days(context, "performance", data.first_day),
    )  # fmt: skip
    errors = _reconciliation(context, figures, overall=True)
    figures += errors
    summary = {
        **_counts_summary(rows),
        **_tally(figures),
        "breaches": sum(f.status == "breach" for f in figures),
        "targets": targets,
        "min_positives": limits.min_positives,
        "min_negatives": limits.min_negatives,
        "estimate_unreliable": sorted({f.metric.removesuffix("_estimate_error") for f in errors if f.status == "warn"}),
    }
    return KindResult(status=_run_status(rows, figures), summary=summary, findings=[finding(f) for f in figures])


def _lookback_partitions(policy: MonitoringPolicy, data: WindowData) -> list[performance.Partition]:
    """The lookback's partitions, computed once for the budget's count and the segments' series."""
    if data.partitions is None:
        data.partitions = _partitions(policy, data.lookback)
    return data.partitions


def _partitions(policy: MonitoringPolicy, rows: Rows) -> list[performance.Partition]:
    return performance.partitions(rows.columns, policy.segments, policy.intersections) if len(rows) else []


@register("subgroups")
def subgroups_kind(context: KindContext) -> KindResult:
    policy = context.policy
    if not policy.segments:
        return KindResult(status="insufficient_data", summary={"reason": "the policy names no segment attributes"})
    data = window_data(context)
    rows, targets, limits = data.window, targets_of(context.version), limits_for(context, "subgroups")
    parts = _partitions(policy, rows)
    table = performance.subgroup_table(rows.label, rows.score, rows.prediction, parts, targets=targets, limits=limits)
    figures = list(table.figures)
    figures += _segment_cusums(context, data, targets, limits)
    errors = _reconciliation(context, table.figures, overall=False)
    figures += errors
    summary = {
        **_counts_summary(rows),
        **_tally(figures),
        "breaches": sum(f.status == "breach" for f in figures),
        "segments": len(table.ranking),
        "tests": table.tests,
        "fdr_q": limits.fdr_q,
        "targets": targets,
        "ranking": table.ranking,
        "breached_segments": sorted({f.segment for f in table.figures if f.status == "breach" and f.segment}),
        "estimate_unreliable": sorted(
            {f"{f.segment}:{f.metric.removesuffix('_estimate_error')}" for f in errors if f.status == "warn"}
        ),
    }
    return KindResult(status=_run_status(rows, table.figures), summary=summary, findings=[finding(f) for f in figures])


def _segment_cusums(context: KindContext, data: WindowData, targets: dict[str, float], limits: Limits) -> list[Figure]:
    """Per segment CUSUM on the lookback: partitions of the lookback rows, reference counts by the same names."""
    policy = context.policy
    reference = _reference_rows(context)
    window_names = {name for part in _partitions(policy, data.window) for name in part.names}
    overall_reference = _reference_counts(
        reference, None if reference is None else np.zeros(len(reference), dtype=np.int64), 1
    )
    figures = []
    parts = _lookback_partitions(policy, data)
    series = critical_hypotheses(context, data, targets)
    resets = reset_days(context, "subgroups", data.first_day)
    for part in parts:
        keep = [i for i, name in enumerate(part.names) if name in window_names]
        reference_codes = _codes_by_name(reference, part) if reference is not None else None
        by_reference = (
            _reference_counts(reference, reference_codes, len(part.names)) if reference_codes is not None else None
        )
        part_figures = cusum_figures(
            data,
            list(part.names),
            part.codes,
            reference=by_reference,
            overall_reference=overall_reference,
            targets=targets,
            limits=limits,
            budget=sequential.budget_for(policy),
            series=series,
            resets=resets,
        )
        wanted = {part.names[i] for i in keep}
        figures += [f for f in part_figures if f.segment in wanted]
    return figures


def _codes_by_name(reference: Rows, part: performance.Partition) -> np.ndarray:
    """The reference's rows coded with the partition's names (len(names): a segment it lacks)."""
    attributes = list(part.attributes)
    own = performance.partitions(reference.columns, attributes, [attributes] if len(attributes) > 1 else [])[-1]
    index = {name: i for i, name in enumerate(part.names)}
    mapping = np.array([index.get(name, len(part.names)) for name in own.names], dtype=np.int64)
    return mapping[own.codes] if len(own.codes) else np.zeros(0, dtype=np.int64)


@register("estimated_performance")
def estimated_performance_kind(context: KindContext) -> KindResult:
    data = window_data(context, with_features=True)
    rows, targets, limits = data.window, targets_of(context.version), limits_for(context, "estimated_performance")
    reference = _reference_rows(context)
    labelled = None if reference is None else reference.take(reference.label >= 0)
    if (
        labelled is None
        or (labelled.label == 1).sum() < limits.min_positives
        or (labelled.label == 0).sum() < limits.min_negatives
    ):
        return KindResult(
            status="insufficient_data",
            summary={
                "reason": "the reference needs labelled positives and negatives (the policy's minimums) to calibrate scores"
            },
        )
    if not len(rows):
        return KindResult(
            status="insufficient_data", summary={"reason": "no inferences in the window", **_counts_summary(rows)}
        )
    fitted = estimation.Reference.fit(labelled.score, labelled.label, seed=limits.seed)
    parts = _partitions(context.policy, rows)
    figures = estimation.estimated_figures(
        fitted, rows.score, rows.prediction, targets=targets, limits=limits, parts=parts
    )
    support = support_figures(rows, labelled, context.policy.features, parts)
    _annotate_last_reconciliation(context, figures)
    figures += support
    summary = {
        **_counts_summary(rows),
        **_tally(figures),
        "breaches": sum(f.status == "breach" for f in figures),
        "targets": targets,
        "reference_rows": len(labelled),
        "method": "isotonic calibration on the labelled reference; expected confusion matrix; Monte Carlo prediction intervals",
        "outside_support": sorted({f.segment or "(all)" for f in support if f.status == "breach"}),
    }
    return KindResult(status="completed", summary=summary, findings=[finding(f) for f in figures])


# ---------------------------------------------------------------------------------------------
# Estimate support: does the window ask the estimator to extrapolate?


def _outside(
    rows: Rows, reference: Rows, features: list[FeatureSpec]
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """Per row: any input outside the reference's range (numeric) or categories (categorical)."""
    outside = np.zeros(len(rows), dtype=bool)
    per_feature: dict[str, np.ndarray] = {}
    described: dict[str, Any] = {}
    for spec in features:
        window_values, reference_values = rows.columns.get(spec.name), reference.columns.get(spec.name)
        if window_values is None or reference_values is None:
            continue
        if spec.type == "numeric":
            known = reference_values[~np.isnan(reference_values)]
            if not len(known):
                continue
            low, high = float(known.min()), float(known.max())
            with np.errstate(invalid="ignore"):
                out = ~np.isnan(window_values) & ((window_values < low) | (window_values > high))
            described[spec.name] = {"reference_range": [low, high]}
        else:
            seen = set(pd.Series(np.asarray(reference_values, dtype=object)).dropna().tolist())
            if not seen:
                continue
            values = pd.Series(np.asarray(window_values, dtype=object))
            out = (values.notna() & ~values.isin(list(seen))).to_numpy()
            described[spec.name] = {"unseen": sorted({str(v) for v in values[out].tolist()})[:10]}
        per_feature[spec.name] = out
        outside |= out
    return outside, per_feature, described


def support_figures(
    rows: Rows, reference: Rows, features: list[FeatureSpec], parts: list[performance.Partition]
) -> list[Figure]:
    """estimate_support per segment: the share of rows whose inputs the reference covers.

    The estimator maps scores to probabilities learnt on the reference; rows with inputs the
    reference never had (a new scanner model, a kVp it never used) ask it to extrapolate, and
    a scanner or protocol change can change what a score means there without any label to say
    so. breach (an early warning: the segment's estimate is not to be trusted) from
    SUPPORT_BREACH of its rows outside, with at least SUPPORT_MIN_ROWS rows."""
    outside, per_feature, described = _outside(rows, reference, features)
    groups = [(None, np.zeros(len(rows), dtype=np.int64), [None], ())] + [
        (p, p.codes, p.names, p.attributes) for p in parts
    ]
    figures = []
    for _part, codes, names, attributes in groups:
        n_groups = len(names)
        total = np.bincount(codes, minlength=n_groups)
        out = np.bincount(codes, weights=outside, minlength=n_groups)
        by_feature = {name: np.bincount(codes, weights=mask, minlength=n_groups) for name, mask in per_feature.items()}
        for i, name in enumerate(names):
            share_outside = out[i] / total[i] if total[i] else 0.0
            status = (
                "insufficient_data"
                if total[i] < SUPPORT_MIN_ROWS
                else ("breach" if share_outside >= SUPPORT_BREACH else "ok")
            )
            features_out = {
                feature: {"share": float(counts[i] / total[i]), **described[feature]}
                for feature, counts in by_feature.items()
                if total[i] and counts[i] > 0
            }
            details: dict[str, Any] = {"outside": int(out[i]), "features": features_out}
            if attributes:
                details["attributes"] = list(attributes)
            if status == "breach":
                details["reason"] = estimation.support_reason(share_outside, sorted(features_out))
            figures.append(
                Figure("estimate_support", name, 1.0 - share_outside, None, None, int(total[i]), 1.0 - SUPPORT_BREACH,
                       "reference_range", status, estimated=True, details=details)
            )  # fmt: skip
    return figures


def _annotate_last_reconciliation(context: KindContext, figures: list[Figure]) -> None:
    """Attach the most recent reconciliation of each (metric, segment): how wrong the estimate was
    the last time labels could check it, so a reader of today's estimate sees its track record."""
    names = [f"{m}_estimate_error" for m in estimation.ESTIMATED_METRICS]
    latest = (
        select(MetricPoint.metric, MetricPoint.segment, func.max(MetricPoint.window_end).label("window_end"))
        .join(CheckRun, CheckRun.id == MetricPoint.run_id)
        .where(
            MetricPoint.model_id == context.model.id,
            MetricPoint.version_id == context.version.id,
            MetricPoint.metric.in_(names),
            MetricPoint.status != "insufficient_data",
            MetricPoint.window_end < context.window.end,
            CheckRun.superseded_at.is_(None),
        )
        .group_by(MetricPoint.metric, MetricPoint.segment)
        .subquery()
    )
    found = context.session.execute(
        select(MetricPoint)
        .join(CheckRun, CheckRun.id == MetricPoint.run_id)
        .join(
            latest,
            and_(
                latest.c.metric == MetricPoint.metric,
                func.coalesce(latest.c.segment, "") == func.coalesce(MetricPoint.segment, ""),
                latest.c.window_end == MetricPoint.window_end,
            ),
        )
        .where(
            MetricPoint.model_id == context.model.id,
            MetricPoint.version_id == context.version.id,
            CheckRun.superseded_at.is_(None),
        )
    ).scalars()
    last = {(p.metric.removesuffix("_estimate_error"), p.segment): p for p in found}
    for figure in figures:
        point = last.get((figure.metric, figure.segment))
        if point is not None:
            figure.details["last_reconciliation"] = {
                "window_end": point.window_end.isoformat(),
                "error": point.value,
                "status": point.status,
                "suspect": point.status == "warn",
            }


# ---------------------------------------------------------------------------------------------
# Delayed outcomes: which windows to recompute


def windows_to_recompute(
    *, session: Session, model_id: int, now: datetime, kinds: tuple[str, ...] = LABELLED_KINDS
) -> list[datetime]:
    """Window ends within the policy's label_horizon_days whose labels changed since their current
    run: an outcome for one of the window's inferences (by inference_id or study_key) was received
    after that run started. Re-running them supersedes the old runs (nothing is counted twice), and
    the effective label of each inference is its latest outcome."""
    policy = policy_for(session=session, model_id=model_id)
    horizon = now - timedelta(days=policy.label_horizon_days)
    runs = session.execute(
        select(CheckRun.window_start, CheckRun.window_end, func.min(CheckRun.started_at))
        .where(
            CheckRun.model_id == model_id,
            CheckRun.kind.in_(kinds),
            CheckRun.superseded_at.is_(None),
            CheckRun.window_end >= horizon,
            CheckRun.window_end <= now,
        )
        .group_by(CheckRun.window_start, CheckRun.window_end)
    ).all()
    stale = []
    for window_start, window_end, started in runs:
        if _labels_since(session, model_id=model_id, start=window_start, end=window_end, since=started):
            stale.append(window_end)
    return sorted(stale)


def _labels_since(session: Session, *, model_id: int, start: datetime, end: datetime, since: datetime) -> bool:
    """Whether any outcome received after `since` targets an inference of the model in [start, end)."""
    in_window = and_(Inference.model_id == model_id, Inference.occurred_at >= start, Inference.occurred_at < end)
    fresh = and_(Outcome.model_id == model_id, Outcome.received_at > since)
    by_id = (
        select(Outcome.id)
        .join(Inference, and_(Inference.model_id == Outcome.model_id, Inference.inference_id == Outcome.inference_id))
        .where(fresh, in_window)
    )
    by_study = (
        select(Outcome.id)
        .join(Inference, and_(Inference.model_id == Outcome.model_id, Inference.study_key == Outcome.study_key))
        .where(fresh, in_window, Outcome.study_key.is_not(None))
    )
    return session.execute(by_id.limit(1)).first() is not None or session.execute(by_study.limit(1)).first() is not None
