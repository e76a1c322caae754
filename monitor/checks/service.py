"""Monitoring policy per model (read with defaults, replace validated and audited), and check
runs: run_checks() evaluates registered kinds on a window, supersedes, audits; runs and metric
series are read back for the API, the dashboard and the scheduler."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import case, func, insert, literal, select, text
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.checks import (
    drift_checks,  # noqa: F401  (registers input_drift and output_drift)
    performance_checks,  # noqa: F401  (registers performance, subgroups, estimated_performance)
    report,
)
from monitor.checks.kinds import RUNNERS, Finding, KindContext, KindResult, implemented_kinds, window_end_default
from monitor.checks.models import CheckReport, CheckRun, DailyProfile, MetricPoint, PolicyRecord
from monitor.checks.profiles import CategoricalHist, Column, Hist, NumericColumn, NumericHist, ReferenceProfile
from monitor.checks.schemas import CHECK_KINDS, CheckRunOut, MetricPointOut, MonitoringPolicy, PolicyOut, SeriesPointOut
from monitor.checks.windows import Window, day_row_counts, day_start
from monitor.db import utcnow
from monitor.errors import Invalid, MonitorError, NotFound
from monitor.ingest.models import Inference
from monitor.registry import service as registry_service
from monitor.registry.models import Model, ModelVersion

log = logging.getLogger("radmon.checks")


def policy_for(*, session: Session, model_id: int) -> MonitoringPolicy:
    """The model's policy, or the defaults when none was saved (no authorization: for services)."""
    record = session.execute(select(PolicyRecord).where(PolicyRecord.model_id == model_id)).scalar_one_or_none()
    return MonitoringPolicy() if record is None else MonitoringPolicy.model_validate(record.body)


def get_policy(*, session: Session, actor: Actor, model_name: str) -> PolicyOut:
    authorize(actor, Permission.MODELS_READ)
    model = registry_service.find_model(session=session, name=model_name)
    record = session.execute(select(PolicyRecord).where(PolicyRecord.model_id == model.id)).scalar_one_or_none()
    policy = MonitoringPolicy() if record is None else MonitoringPolicy.model_validate(record.body)
    return PolicyOut(
        **policy.model_dump(),
        model=model.name,
        updated_at=record.updated_at if record else None,
        updated_by=record.updated_by if record else None,
    )


def put_policy(*, session: Session, actor: Actor, model_name: str, policy: MonitoringPolicy) -> PolicyOut:
    """Replace the model's policy (qa, admin); the change is audited with before and after."""
    authorize(actor, Permission.POLICY_WRITE)
    model = registry_service.find_model(session=session, name=model_name)
    record = session.execute(select(PolicyRecord).where(PolicyRecord.model_id == model.id)).scalar_one_or_none()
    before = None if record is None else record.body
    body = policy.model_dump(mode="json")
    if record is None:
        record = PolicyRecord(model_id=model.id, body=body, updated_at=utcnow(), updated_by=actor.username)
        session.add(record)
    else:
        record.body, record.updated_at, record.updated_by = body, utcnow(), actor.username
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="policy.update",
        entity="model",
        entity_id=model.name,
        before=before,
        after=body,
    )
    return PolicyOut(**policy.model_dump(), model=model.name, updated_at=record.updated_at, updated_by=actor.username)


# ---------------------------------------------------------------------------------------------
# Check runs


def _window(policy: MonitoringPolicy, window_end: datetime) -> Window:
    if window_end.tzinfo is None:
        raise Invalid("window_end must include a timezone")
    try:
        return Window(window_end - timedelta(days=policy.window_days), window_end)
    except OverflowError:
        raise Invalid(
            f"window_end {window_end.isoformat()} leaves no room for a {policy.window_days}-day window"
        ) from None


# The label-free estimate runs before the labelled kinds of the same window, so their reconciliation
# (<metric>_estimate_error, decision 0421) finds it on the first run too, not only on a recompute.
RUN_ORDER = ("input_drift", "output_drift", "estimated_performance", "performance", "subgroups")


def _kinds(kinds: list[str] | None) -> list[str]:
    implemented = implemented_kinds()
    if kinds is None:
        return sorted(implemented, key=RUN_ORDER.index)
    unknown = [k for k in kinds if k not in CHECK_KINDS]
    if unknown:
        raise Invalid(f"unknown check kind(s) {unknown}; kinds are {list(CHECK_KINDS)}")
    pending = [k for k in kinds if k not in implemented]
    if pending:
        raise Invalid(f"check kind(s) {pending} are not implemented yet; implemented: {implemented}")
    return sorted(dict.fromkeys(kinds), key=RUN_ORDER.index)


def versions_in_window(*, session: Session, model: Model, window: Window) -> list[ModelVersion]:
    """The model's versions with at least one inference in the window (one indexed probe each)."""
    found = []
    for version in session.execute(
        select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.id)
    ).scalars():
        probe = select(Inference.id).where(
            Inference.model_id == model.id,
            Inference.version_id == version.id,
            Inference.occurred_at >= window.start,
            Inference.occurred_at < window.end,
        )
        if session.execute(probe.limit(1)).first():
            found.append(version)
    return found


def run_checks(
    *,
    session: Session,
    actor: Actor,
    model_name: str,
    kinds: list[str] | None = None,
    window_end: datetime | None = None,
) -> list[CheckRun]:
    """Run the kinds (None: every implemented one) for the window ending at window_end (default:
    today 00:00 UTC) on every version of the model with inferences in the window; when none has
    any, on the version active at window_end (so a silent feed shows as insufficient_data).

    Each (version, kind) records a new run, supersedes the current one for the same window, and
    is audited; a kind that fails records a failed run and the others still run. Flushes only."""
    authorize(actor, Permission.CHECKS_RUN)
    model = registry_service.find_model(session=session, name=model_name)
    policy = policy_for(session=session, model_id=model.id)
    selected = _kinds(kinds)
    window = _window(policy, window_end or window_end_default(utcnow()))
    if session.get_bind().dialect.name == "postgresql":
        # Runs of one model queue: profiles and supersession assume one writer per model.
        session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _RUN_LOCK, "b": model.id})
    versions = versions_in_window(session=session, model=model, window=window)
    if not versions:
        live = registry_service.version_active_at(session=session, model=model, at=window.end)
        versions = [] if live is None else [live[0]]
    runs = []
    for version in versions:
        context = KindContext(session=session, actor=actor, model=model, version=version, policy=policy, window=window)
        for kind in selected:
            runs.append(_run_kind(context, kind))
    return runs


_RUN_LOCK = 0x636B  # "ck": the advisory-lock namespace of check runs


def _run_kind(context: KindContext, kind: str) -> CheckRun:
    session = context.session
    started = utcnow()
    try:
        with session.begin_nested():
            result = RUNNERS[kind](context)
    except MonitorError as exc:
        context.reset()
        result = KindResult.failed(exc.message)
    except Exception as exc:  # a bug or a database error in one kind must not stop the others
        log.exception("check kind failed", extra={"kind": kind, "model": context.model.name})
        context.reset()
        result = KindResult.failed(f"{type(exc).__name__}: {exc}")
    reference_set_id = context.__dict__.get("reference_set").id if "reference_set" in context.__dict__ else None
    return _record_run(context, kind, result, started, reference_set_id)


def _record_run(
    context: KindContext, kind: str, result: KindResult, started: datetime, reference_set_id: int | None
) -> CheckRun:
    session, window = context.session, context.window
    previous = session.execute(
        select(CheckRun).where(
            CheckRun.model_id == context.model.id,
            CheckRun.version_id == context.version.id,
            CheckRun.kind == kind,
            CheckRun.window_start == window.start,
            CheckRun.window_end == window.end,
            CheckRun.superseded_at.is_(None),
        )
    ).scalar_one_or_none()
    if previous is not None:
        previous.superseded_at = utcnow()
        session.flush()
    run = CheckRun(
        model_id=context.model.id,
        version_id=context.version.id,
        kind=kind,
        window_start=window.start,
        window_end=window.end,
        started_at=started,
        finished_at=utcnow(),
        status=result.status,
        summary=_finite(result.summary),
        error=result.error,
        reference_set_id=reference_set_id,
        triggered_by=context.actor.username,
    )
    session.add(run)
    session.flush()
    if previous is not None:
        previous.superseded_by = run.id
    if result.findings:
        # Core insert: the ORM bulk path adds per-row bookkeeping that shows at a hundred points.
        session.execute(insert(MetricPoint.__table__), [_point_row(run, finding) for finding in result.findings])
    session.flush()
    # Imported here: alerts reads policies through this module, so a top-level import would cycle.
    from monitor.alerts import service as alerts_service

    # Same transaction: the run, its alerts and their queued emails commit or vanish together.
    alerts_service.process_run(session=session, run_id=run.id)
    audit_service.record(
        session=session,
        actor=context.actor,
        action="check.run",
        entity="check_run",
        entity_id=run.id,
        after={
            "model": context.model.name,
            "version": context.version.version,
            "kind": kind,
            "window_start": window.start,
            "window_end": window.end,
            "status": run.status,
            "breaches": result.summary.get("breaches", 0),
            "metric_points": len(result.findings),
            "supersedes": None if previous is None else previous.id,
            "error": run.error,
        },
    )
    return run


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None (PostgreSQL's JSONB refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _point_row(run: CheckRun, finding: Finding) -> dict[str, Any]:
    def number(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else float(value)

    return {
        "run_id": run.id,
        "model_id": run.model_id,
        "version_id": run.version_id,
        "kind": run.kind,
        "window_end": run.window_end,
        "metric": finding.metric,
        "feature": finding.feature,
        "segment": finding.segment,
        "value": number(finding.value),
        "ci_low": number(finding.ci_low),
        "ci_high": number(finding.ci_high),
        "n": finding.n,
        "threshold": number(finding.threshold),
        "method": finding.method,
        "status": finding.status,
        "estimated": finding.estimated,
        "details": _finite(finding.details),
    }


def backfill_windows(
    *,
    session: Session,
    model_name: str,
    first_end: datetime,
    last_end: datetime,
    kinds: list[str] | None = None,
    missing_only: bool = False,
) -> list[datetime]:
    """The daily window ends (00:00 UTC) from first_end to last_end inclusive that a backfill runs;
    with missing_only, only those lacking a current run of some kind (no authorization: for jobs)."""
    model = registry_service.find_model(session=session, name=model_name)
    selected = _kinds(kinds)
    first, last = window_end_default(first_end.astimezone(UTC)), window_end_default(last_end.astimezone(UTC))
    if first > last:
        raise Invalid(f"the backfill starts ({first.date()}) after it ends ({last.date()})")
    ends = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if not missing_only:
        return ends
    done = session.execute(
        select(CheckRun.window_end, func.count(func.distinct(CheckRun.kind)))
        .where(
            CheckRun.model_id == model.id,
            CheckRun.kind.in_(selected),
            CheckRun.superseded_at.is_(None),
            CheckRun.window_end >= first,
            CheckRun.window_end <= last,
        )
        .group_by(CheckRun.window_end)
    ).all()
    complete = {end for end, count in done if count >= len(selected)}
    return [end for end in ends if end not in complete]


# ---------------------------------------------------------------------------------------------
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
    if stored is None:
        stored = report.render(
            session=session, run=run, features=policy_for(session=session, model_id=run.model_id).features
        )
    return report.stored_html(stored)


# ---------------------------------------------------------------------------------------------
# Dashboard reads: aggregates and stored profiles only, never a scan of inference rows

VOLUME_MAX_DAYS = 92
DISTRIBUTION_KINDS = ("input_drift", "output_drift")


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
    from monitor.alerts.models import Alert  # alerts imports this module: a top-level import would cycle

    authorize(actor, Permission.MODELS_READ)
    if not 0 < (until - since).days <= VOLUME_MAX_DAYS:
        raise Invalid(f"daily counts cover 1 to {VOLUME_MAX_DAYS} days; got {since} to {until}")
    counts = session.execute(
        select(Alert.model_id, Alert.status, Alert.severity, func.count())
        .where(Alert.status.in_(("open", "acknowledged")))
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


SERIES_FIELDS = (
    "metric",
    "feature",
    "segment",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "threshold",
    "method",
    "status",
    "estimated",
)


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
    return sorted(session.execute(query).scalars())


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
    from monitor.reference import service as reference_service

    authorize(actor, Permission.MODELS_READ)
    run = session.get(CheckRun, run_id)
    if run is None:
        raise NotFound(f"no check run {run_id}")
    if run.kind not in DISTRIBUTION_KINDS or run.reference_set_id is None:
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
