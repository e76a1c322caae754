"""Reads of check results, shared by the API and the dashboard: runs, metric series (the API's
points and the charts' plain rows), the subgroup table, the overview's aggregates, a drift run's
distributions and the stored drill-down report. Aggregates and stored profiles only, never a scan
of inference rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from monitor.alerts.models import Alert
from monitor.auth.actors import Actor, Permission, authorize
from monitor.checks import drift as drift_stats
from monitor.checks import report
from monitor.checks.catalog import DRIFT_KINDS
from monitor.checks.models import CheckReport, CheckRun, DailyProfile, MetricPoint
from monitor.checks.performance_checks import current_points
from monitor.checks.policy import policy_for
from monitor.checks.profiles import CategoricalHist, Column, Hist, NumericColumn, NumericHist, ReferenceProfile
from monitor.checks.schemas import CheckRunOut, MetricPointOut, SeriesPointOut
from monitor.checks.windows import Window, day_row_counts, day_start
from monitor.errors import Invalid, NotFound
from monitor.ingest.models import Inference
from monitor.reference import service as reference_service
from monitor.registry import service as registry_service
from monitor.registry.models import Model, ModelVersion

# Reading runs and series


def _run_out(run: CheckRun, model: str, version: str, points: list[MetricPoint] | None) -> CheckRunOut:
    return CheckRunOut(
        id=run.id,
        model=model,
        version=version,
        kind=run.kind,
        status=run.status,
        window_start=run.window_start,
        window_end=run.window_end,
        started_at=run.started_at,
        finished_at=run.finished_at,
        triggered_by=run.triggered_by,
        reference_set_id=run.reference_set_id,
        superseded_at=run.superseded_at,
        superseded_by=run.superseded_by,
        error=run.error,
        summary=run.summary,
        metrics=None if points is None else [MetricPointOut.model_validate(p) for p in points],
    )


def run_out(*, session: Session, run: CheckRun) -> CheckRunOut:
    """A run with its metric points, in the API's shape (no authorization: for routes and jobs)."""
    names = session.execute(
        select(Model.name, ModelVersion.version)
        .join(ModelVersion, ModelVersion.model_id == Model.id)
        .where(ModelVersion.id == run.version_id)
    ).one()
    points = (
        session.execute(select(MetricPoint).where(MetricPoint.run_id == run.id).order_by(MetricPoint.id))
        .scalars()
        .all()
    )
    return _run_out(run, names[0], names[1], list(points))


def get_run(*, session: Session, actor: Actor, run_id: int) -> CheckRunOut:
    """One run with its summary and metric points."""
    authorize(actor, Permission.MODELS_READ)
    run = session.get(CheckRun, run_id)
    if run is None:
        raise NotFound(f"no check run {run_id}")
    return run_out(session=session, run=run)


def list_runs(
    *,
    session: Session,
    actor: Actor,
    model_name: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_superseded: bool = False,
    limit: int = 100,
) -> list[CheckRunOut]:
    """Runs newest window first (current ones unless include_superseded); since/until bound window_end."""
    authorize(actor, Permission.MODELS_READ)
    query = (
        select(CheckRun, Model.name, ModelVersion.version)
        .join(Model, Model.id == CheckRun.model_id)
        .join(ModelVersion, ModelVersion.id == CheckRun.version_id)
    )
    if model_name:
        query = query.where(CheckRun.model_id == registry_service.find_model(session=session, name=model_name).id)
    if kind:
        query = query.where(CheckRun.kind == kind)
    if since:
        query = query.where(CheckRun.window_end >= since)
    if until:
        query = query.where(CheckRun.window_end < until)
    if not include_superseded:
        query = query.where(CheckRun.superseded_at.is_(None))
    rows = session.execute(query.order_by(CheckRun.window_end.desc(), CheckRun.id.desc()).limit(limit)).all()
    return [_run_out(run, model, version, None) for run, model, version in rows]


def metric_series(
    *,
    session: Session,
    actor: Actor,
    model_name: str,
    metric: str | None = None,
    feature: str | None = None,
    segment: str | None = None,
    kind: str | None = None,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10_000,
) -> list[SeriesPointOut]:
    """Metric points of current (non-superseded) runs, oldest window first, for plots."""
    authorize(actor, Permission.MODELS_READ)
    model = registry_service.find_model(session=session, name=model_name)
    query = (
        select(MetricPoint, ModelVersion.version)
        .join(CheckRun, CheckRun.id == MetricPoint.run_id)
        .join(ModelVersion, ModelVersion.id == MetricPoint.version_id)
        .where(MetricPoint.model_id == model.id, CheckRun.superseded_at.is_(None))
    )
    for column, value in (
        (MetricPoint.metric, metric),
        (MetricPoint.feature, feature),
        (MetricPoint.segment, segment),
        (MetricPoint.kind, kind),
    ):
        if value:
            query = query.where(column == value)
    if version:
        query = query.where(ModelVersion.version == version)
    if since:
        query = query.where(MetricPoint.window_end >= since)
    if until:
        query = query.where(MetricPoint.window_end < until)
    rows = session.execute(query.order_by(MetricPoint.window_end, MetricPoint.id).limit(limit)).all()
    return [
        SeriesPointOut(
            **MetricPointOut.model_validate(point).model_dump(),
            run_id=point.run_id,
            version=name,
            kind=point.kind,
            window_end=point.window_end,
        )
        for point, name in rows
    ]


def report_html(*, session: Session, actor: Actor, run_id: int) -> str:
    """The run's Evidently drill-down (rendered and stored on first request)."""
    authorize(actor, Permission.MODELS_READ)
    run = session.get(CheckRun, run_id)
    if run is None:
        raise NotFound(f"no check run {run_id}")
    stored = session.get(CheckReport, run_id)
    if stored is None or not report.is_current(stored):
        stored = report.render(
            session=session, run=run, features=policy_for(session=session, model_id=run.model_id).features
        )
    return report.stored_html(stored)


# Dashboard reads: aggregates and stored profiles only, never a scan of inference rows

VOLUME_MAX_DAYS = 92


def daily_inference_counts(
    *, session: Session, actor: Actor, model_name: str, since: date, until: date
) -> dict[date, int]:
    """Inferences per UTC day in [since, until) over every version of the model, at most
    VOLUME_MAX_DAYS days: a stored daily profile's row count where the drift check profiled the
    day (every whole day of its window), else one index-only count of that day (days no profile
    covers yet: a model without a reference, a day before its first check)."""
    authorize(actor, Permission.MODELS_READ)
    if not 0 < (until - since).days <= VOLUME_MAX_DAYS:
        raise Invalid(f"daily counts cover 1 to {VOLUME_MAX_DAYS} days; got {since} to {until}")
    model = registry_service.find_model(session=session, name=model_name)
    return _daily_counts(session, model.id, since, until)


def _daily_counts(session: Session, model_id: int, since: date, until: date) -> dict[date, int]:
    # Several reference sets may have profiled the same day; the largest count is the freshest.
    profiled = session.execute(
        select(DailyProfile.version_id, DailyProfile.day, func.max(DailyProfile.row_count))
        .where(DailyProfile.model_id == model_id, DailyProfile.day >= since, DailyProfile.day < until)
        .group_by(DailyProfile.version_id, DailyProfile.day)
    ).all()
    covered: dict[int, dict[date, int]] = {}
    for version_id, day, count in profiled:
        covered.setdefault(version_id, {})[day if isinstance(day, date) else date.fromisoformat(day)] = int(count)
    days = [since + timedelta(days=i) for i in range((until - since).days)]
    totals: dict[date, int] = {}
    for version_id in session.execute(select(ModelVersion.id).where(ModelVersion.model_id == model_id)).scalars():
        known = covered.get(version_id, {})
        missing = [(day, day_start(day), day_start(day + timedelta(days=1))) for day in days if day not in known]
        if missing and _any_inference(session, model_id, version_id, missing[0][1], missing[-1][2]):
            known = known | day_row_counts(session, model_id=model_id, version_id=version_id, days=missing)
        for day, count in known.items():
            totals[day] = totals.get(day, 0) + count
    return totals


def _any_inference(session: Session, model_id: int, version_id: int, start: datetime, end: datetime) -> bool:
    """One index probe: a version that served nothing in the range (retired, never live) needs no day counts."""
    probe = select(Inference.id).where(
        Inference.model_id == model_id,
        Inference.version_id == version_id,
        Inference.occurred_at >= start,
        Inference.occurred_at < end,
    )
    return session.execute(probe.limit(1)).first() is not None


@dataclass(frozen=True)
class ModelMonitoring:
    """One model's monitoring at a glance, from aggregates: the overview's row."""

    alerts: dict[str, dict[str, int]]  # status ("open", "acknowledged") -> severity -> count
    last_run: CheckRunOut | None
    last_performance: CheckRunOut | None
    volume: dict[date, int]  # inferences per UTC day in [since, until)


def monitoring_overview(*, session: Session, actor: Actor, since: date, until: date) -> dict[str, ModelMonitoring]:
    """Per model name: unresolved alert counts by status and severity (one grouped count), the
    newest check run and performance run, and the daily volume (see daily_inference_counts)."""
    authorize(actor, Permission.MODELS_READ)
    if not 0 < (until - since).days <= VOLUME_MAX_DAYS:
        raise Invalid(f"daily counts cover 1 to {VOLUME_MAX_DAYS} days; got {since} to {until}")
    counts = session.execute(
        select(Alert.model_id, Alert.status, Alert.severity, func.count())
        # Incidents: not their members, not near-misses (an info alert standing alone, decision 0303).
        .where(Alert.status.in_(("open", "acknowledged")), Alert.incident_id.is_(None), Alert.severity != "info")
        .group_by(Alert.model_id, Alert.status, Alert.severity)
    ).all()
    alerts: dict[int, dict[str, dict[str, int]]] = {}
    for model_id, status, severity, count in counts:
        alerts.setdefault(model_id, {}).setdefault(status, {})[severity] = int(count)
    versions = dict(session.execute(select(ModelVersion.id, ModelVersion.version)).all())
    found = {}
    for model in session.execute(select(Model).order_by(Model.name)).scalars():
        latest = _newest_run(session, model.id, None)
        performance = _newest_run(session, model.id, "performance")
        found[model.name] = ModelMonitoring(
            alerts=alerts.get(model.id, {}),
            last_run=None if latest is None else _run_out(latest, model.name, versions[latest.version_id], None),
            last_performance=None
            if performance is None
            else _run_out(performance, model.name, versions[performance.version_id], None),
            volume=_daily_counts(session, model.id, since, until),
        )
    return found


def _newest_run(session: Session, model_id: int, kind: str | None, version_id: int | None = None) -> CheckRun | None:
    """The current run with the latest window (of a kind, of a version), newest first on ties."""
    query = select(CheckRun).where(CheckRun.model_id == model_id, CheckRun.superseded_at.is_(None))
    if kind:
        query = query.where(CheckRun.kind == kind)
    if version_id is not None:
        query = query.where(CheckRun.version_id == version_id)
    return session.execute(query.order_by(CheckRun.window_end.desc(), CheckRun.id.desc()).limit(1)).scalar_one_or_none()


def newest_run(*, session: Session, actor: Actor, model_name: str, version: str, kind: str) -> CheckRunOut | None:
    """The newest current run of a kind for one version, with its metric points."""
    authorize(actor, Permission.MODELS_READ)
    model_id, version_id = _version_ids(session, model_name, version)
    run = _newest_run(session, model_id, kind, version_id)
    if run is None:
        return None
    points = (
        session.execute(select(MetricPoint).where(MetricPoint.run_id == run.id).order_by(MetricPoint.id))
        .scalars()
        .all()
    )
    return _run_out(run, model_name, version, list(points))


def _version_ids(session: Session, model_name: str, version: str) -> tuple[int, int]:
    """(model id, version id) in one round trip; NotFound naming what is unknown."""
    found = session.execute(
        select(Model.id, ModelVersion.id).join(ModelVersion, ModelVersion.model_id == Model.id)
        .where(Model.name == model_name, ModelVersion.version == version)
    ).first()  # fmt: skip
    if found is None:
        registry_service.find_model(session=session, name=model_name)  # NotFound for an unknown model
        raise NotFound(f"model '{model_name}' has no version '{version}'")
    return int(found[0]), int(found[1])


class SeriesRow(NamedTuple):
    """One metric point of a plotted series: SeriesPointOut's fields as a plain row (a chart
    draws thousands; validating a pydantic model per point cost more than the query)."""

    run_id: int
    version: str
    kind: str
    window_end: datetime
    metric: str
    feature: str | None
    segment: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    threshold: float | None
    method: str | None
    status: str
    estimated: bool
    details: dict[str, Any] | None

    def model_dump(self) -> dict[str, Any]:
        """The row as the mapping figure functions take (the name matches the pydantic values')."""
        return self._asdict()


# The metric-point columns a series row reads (between the run's identity and `details`).
SERIES_FIELDS = SeriesRow._fields[4:-1]


def series_rows(
    *,
    session: Session,
    actor: Actor,
    model_name: str,
    version: str,
    kind: str,
    metrics: tuple[str, ...],
    segment: str | None = None,
    since: datetime | None = None,
    details_of: tuple[str, ...] = (),
    limit: int = 20_000,
) -> list[SeriesRow]:
    """Current points of one kind's metrics for one segment (None: the overall figure, not every
    segment) of one version, oldest window first: one read on the (model, kind, metric, segment,
    window_end) index. `details` is read only for the metrics in details_of (charts mostly do
    without, and decoding it per point costs more than the rest of the row)."""
    authorize(actor, Permission.MODELS_READ)
    model_id, version_id = _version_ids(session, model_name, version)
    details = (
        case((MetricPoint.metric.in_(details_of), MetricPoint.details), else_=None) if details_of else literal(None)
    )
    current_runs = select(CheckRun.id).where(
        CheckRun.model_id == model_id,
        CheckRun.version_id == version_id,
        CheckRun.kind == kind,
        CheckRun.superseded_at.is_(None),
    )
    query = select(
        MetricPoint.run_id, literal(version), literal(kind), MetricPoint.window_end, *(getattr(MetricPoint, name) for name in SERIES_FIELDS),
        details,
    ).where(
        MetricPoint.model_id == model_id,
        MetricPoint.kind == kind,
        MetricPoint.metric.in_(metrics),
        MetricPoint.segment.is_(None) if segment is None else MetricPoint.segment == segment,
        MetricPoint.version_id == version_id,
        MetricPoint.run_id.in_(current_runs),
    )  # fmt: skip
    if since:
        query = query.where(MetricPoint.window_end >= since)
    # Core rows straight into tuples: the ORM's per-row bookkeeping showed at a year of points.
    rows = session.connection().execute(query.order_by(MetricPoint.window_end, MetricPoint.id).limit(limit))
    return list(map(SeriesRow._make, rows))


def series_segments(
    *, session: Session, actor: Actor, model_name: str, version: str, kinds: tuple[str, ...]
) -> list[str]:
    """The segments the newest current run of each kind reported figures for, sorted (one query)."""
    authorize(actor, Permission.MODELS_READ)
    model_id, version_id = _version_ids(session, model_name, version)
    newest = [
        select(CheckRun.id)
        .where(
            CheckRun.model_id == model_id,
            CheckRun.kind == kind,
            CheckRun.version_id == version_id,
            CheckRun.superseded_at.is_(None),
        )
        .order_by(CheckRun.window_end.desc(), CheckRun.id.desc())
        .limit(1)
        .scalar_subquery()
        for kind in kinds
    ]
    query = (
        select(MetricPoint.segment).where(MetricPoint.run_id.in_(newest), MetricPoint.segment.is_not(None)).distinct()
    )
    return sorted(segment for segment in session.execute(query).scalars() if segment is not None)


@dataclass(frozen=True)
class RunDistributions:
    """One column of a drift run: the reference's histogram and the window's, on the same bins."""

    run_id: int
    feature: str
    reference: Column
    window: Hist | None  # None when no daily profile of the window is stored (yet)
    days_profiled: int
    days: int


def run_distributions(*, session: Session, actor: Actor, run_id: int, feature: str) -> RunDistributions:
    """The reference's and the window's histograms of one feature ("score" for the output) of a
    drift run, from the stored reference profile and daily profiles of the window's whole days.

    Days profiled under another feature list (the policy changed since the run) are left out and
    counted as missing, so the figure never mixes binnings."""
    authorize(actor, Permission.MODELS_READ)
    run = session.get(CheckRun, run_id)
    if run is None:
        raise NotFound(f"no check run {run_id}")
    if run.kind not in DRIFT_KINDS or run.reference_set_id is None:
        raise Invalid(f"run {run_id} ({run.kind}, {run.status}) has no reference distributions to show")
    reference_set = reference_service.get_set(session=session, reference_set_id=run.reference_set_id)
    if reference_set.profile is None:
        raise Invalid(f"reference set {reference_set.id} has no stored profile yet")
    profile = ReferenceProfile.from_json(reference_set.profile)
    column = profile.score if feature == "score" else profile.features.get(feature)
    if column is None:
        raise NotFound(f"run {run_id} has no profiled feature '{feature}'")
    days = [
        day for day, start, end in Window(run.window_start, run.window_end).days() if end - start == timedelta(days=1)
    ]
    stored = (
        session.execute(
            select(DailyProfile.body).where(
                DailyProfile.model_id == run.model_id,
                DailyProfile.version_id == run.version_id,
                DailyProfile.reference_set_id == reference_set.id,
                DailyProfile.spec == profile.spec,
                DailyProfile.day.in_(days),
            )
        )
        .scalars()
        .all()
    )
    window: Hist | None = None
    for body in stored:
        part = body["score"] if feature == "score" else body["features"].get(feature)
        if part is None:
            continue
        hist: Hist = (
            NumericHist.from_json(part, len(column.edges))
            if isinstance(column, NumericColumn)
            else CategoricalHist.from_json(part)
        )
        if window is None:
            window = hist
        else:
            window.add(hist)  # type: ignore[arg-type]
    return RunDistributions(
        run_id=run.id, feature=feature, reference=column, window=window, days_profiled=len(stored), days=len(days)
    )


# ---------------------------------------------------------------------------------------------
# A drift run's distributions on display bins (the drift page's figure)

DISPLAY_BINS = 30
SCORE_BINS = 20
TAIL_SHARE = 0.005  # numeric distributions are drawn between these quantiles; outer bins hold the tails


@dataclass(frozen=True)
class Distribution:
    """Reference and window shares of one feature on shared display bins (plain lists for figures)."""

    run: CheckRunOut  # with its metric points
    feature: str
    kind: str  # "numeric" (binned on edges), "discrete" (one bar per value) or "categorical"
    labels: list[str]  # one per bin, value or category
    edges: list[float] | None  # numeric: len(labels) + 1 bin edges
    reference: list[float]  # shares of the non-missing values
    window: list[float]
    reference_n: int
    window_n: int
    reference_missing: int
    window_missing: int
    unseen: list[str]  # window values the reference never had
    days_profiled: int
    days: int

    def points(self) -> list[MetricPointOut]:
        """The run's findings about this feature for the whole population (drift score, missing share,
        unseen categories); per-segment findings of the output have their own rows on the alerts page."""
        return [p for p in self.run.metrics or [] if p.feature == self.feature and p.segment is None]


def display_distribution(*, session: Session, actor: Actor, run_id: int, feature: str) -> Distribution:
    """The reference-vs-window distribution of one feature of a drift run on shared display bins
    (stored profiles only): what the drift page draws."""
    found = run_distributions(session=session, actor=actor, run_id=run_id, feature=feature)
    run = get_run(session=session, actor=actor, run_id=run_id)
    reference, window = found.reference.hist, found.window
    base: dict[str, Any] = {"run": run, "feature": feature, "days_profiled": found.days_profiled, "days": found.days}
    if window is None or window.n == 0:
        empty: dict[str, Any] = {"labels": [], "edges": None, "reference": [], "window": [], "unseen": []}
        return Distribution(**base, **empty, kind=found.reference.kind, reference_n=reference.n, window_n=0,
                            reference_missing=reference.missing, window_missing=window.missing if window else 0)  # fmt: skip
    counted = None if feature == "score" else drift_stats.value_counts(found.reference, window)
    common: dict[str, Any] = {
        "reference_n": reference.n,
        "window_n": window.n,
        "reference_missing": reference.missing,
        "window_missing": window.missing,
    }
    if counted is not None:
        keys, ref, cur = counted
        known = len(keys) - int((ref == 0).sum())
        return Distribution(
            **base, **common, kind="categorical" if found.reference.kind == "categorical" else "discrete",
            labels=[_value_label(k) for k in keys], edges=None, reference=_shares(ref), window=_shares(cur),
            unseen=[_value_label(k) for k in keys[known:]],
        )  # fmt: skip
    assert isinstance(found.reference, NumericColumn) and isinstance(window, NumericHist)
    edges, ref_shares, cur_shares = _numeric_shares(found.reference, window, score=feature == "score")
    return Distribution(
        **base, **common, kind="numeric", labels=[f"{a:.4g} to {b:.4g}" for a, b in pairwise(edges)],
        edges=edges.tolist(), reference=ref_shares, window=cur_shares, unseen=[],
    )  # fmt: skip


def _value_label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * len(counts)


def _numeric_shares(
    column: NumericColumn, window: NumericHist, *, score: bool
) -> tuple[np.ndarray, list[float], list[float]]:
    """Equal-width display bins over both samples' central range (scores: 0 to 1)."""
    low, high = min(column.hist.vmin, window.vmin), max(column.hist.vmax, window.vmax)
    if score:
        edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    else:
        grid = np.linspace(low, high, 512)
        cdfs = [drift_stats.mass_below(hist, column.edges, low, high, grid) / hist.n for hist in (column.hist, window)]
        start = min(float(grid[max(int(np.searchsorted(cdf, TAIL_SHARE)) - 1, 0)]) for cdf in cdfs)
        stop = max(float(grid[min(int(np.searchsorted(cdf, 1 - TAIL_SHARE)), len(grid) - 1)]) for cdf in cdfs)
        if stop <= start:  # (nearly) one value: a bin around it
            start, stop = low - 0.5, high + 0.5
        edges = np.linspace(start, stop, DISPLAY_BINS + 1)

    def shares(hist: NumericHist) -> list[float]:
        inner = drift_stats.mass_below(hist, column.edges, low, high, edges[1:-1])
        cumulative = np.concatenate([[0.0], inner, [float(hist.n)]])
        return (np.diff(cumulative) / hist.n).tolist()

    return edges, shares(column.hist), shares(window)


# ---------------------------------------------------------------------------------------------
# The segment table (GET /api/v1/models/{model}/subgroups)


def subgroup_report(
    *, session: Session, actor: Actor, model_name: str, window_end: datetime | None = None, version: str | None = None
) -> dict[str, Any]:
    """The current subgroups run for window_end (default: the latest) as a table of segments, worst
    first, each with its realized metrics, tests and, when an estimate exists for the window, the
    estimated figures beside them."""
    authorize(actor, Permission.MODELS_READ)
    model = registry_service.find_model(session=session, name=model_name)
    query = (
        select(CheckRun, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == CheckRun.version_id)
        .where(CheckRun.model_id == model.id, CheckRun.kind == "subgroups", CheckRun.superseded_at.is_(None))
    )
    if window_end is not None:
        query = query.where(CheckRun.window_end == window_end)
    if version is not None:
        query = query.where(ModelVersion.version == version)
    found = session.execute(query.order_by(CheckRun.window_end.desc(), CheckRun.id.desc()).limit(1)).first()
    if found is None:
        when = f" for the window ending {window_end.isoformat()}" if window_end else ""
        raise NotFound(f"no subgroups run for '{model_name}'{when}; run the subgroups check first")
    run, version_name = found
    points = (
        session.execute(select(MetricPoint).where(MetricPoint.run_id == run.id).order_by(MetricPoint.id))
        .scalars()
        .all()
    )
    estimated = current_points(
        session, version_id=run.version_id, kind="estimated_performance", window_end=run.window_end
    )
    return _table(run, version_name, model.name, list(points), estimated)


def _table(
    run: CheckRun, version: str, model: str, points: list[MetricPoint], estimated: list[MetricPoint]
) -> dict[str, Any]:
    guesses = {(p.metric, p.segment): p for p in estimated if p.segment is not None}
    segments: dict[str, dict[str, Any]] = {}
    for point in points:
        if point.segment is None:
            continue
        entry = segments.setdefault(point.segment, {"segment": point.segment, "metrics": {}})
        details = point.details or {}
        if point.metric == "label_coverage":
            entry["inferences"] = point.n
            entry["label_coverage"] = point.value
            entry["counts"] = details.get("counts")
            continue
        entry.setdefault("attributes", details.get("attributes"))
        row: dict[str, Any] = {
            "value": point.value, "ci_low": point.ci_low, "ci_high": point.ci_high, "n": point.n, "threshold": point.threshold,
            "method": point.method, "status": point.status,
        }  # fmt: skip
        for key in ("p_target", "q_target", "p_rest", "q_rest", "rest", "same_rows_as", "first_signal"):
            if key in details:
                row[key] = details[key]
        guess = guesses.get((point.metric, point.segment))
        if guess is not None:
            row["estimated"] = {
                "value": guess.value,
                "ci_low": guess.ci_low,
                "ci_high": guess.ci_high,
                "status": guess.status,
            }
        entry["metrics"][point.metric] = row
    ranking = {e["segment"]: e for e in (run.summary or {}).get("ranking", [])}
    rows = []
    for name, entry in segments.items():
        rank = ranking.get(name, {})
        rows.append(
            entry
            | {
                "rank": rank.get("rank"),
                "status": rank.get("status", "insufficient_data"),
                "shortfall": rank.get("shortfall"),
                "worst_metric": rank.get("metric"),
            }
        )
    rows.sort(key=lambda e: (e["rank"] is None, e["rank"] or 0, e["segment"]))
    summary = run.summary or {}
    return {
        "model": model,
        "version": version,
        "run_id": run.id,
        "status": run.status,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "computed_at": run.finished_at,
        "fdr_q": summary.get("fdr_q"),
        "tests": summary.get("tests"),
        "targets": summary.get("targets", {}),
        "breached_segments": summary.get("breached_segments", []),
        "segments": rows,
    }
