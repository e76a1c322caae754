"""Check runs as a flow: run_checks() evaluates registered kinds on a window, records each run
and its metric points, supersedes the previous run, hands the run to alerts and audits it;
backfills and the late-label recompute re-enter the same flow. Lower layers never import this."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.alerts.models import Alert, AlertTransition
from monitor.audit import service as audit_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.checks import drift_checks, performance_checks  # noqa: F401  (drift_checks registers its kinds)
from monitor.checks.catalog import KINDS, LABELLED_KINDS
from monitor.checks.kinds import RUNNERS, Finding, KindContext, KindResult, implemented_kinds, window_end_default
from monitor.checks.models import CheckRun, MetricPoint
from monitor.checks.policy import policy_for
from monitor.checks.schemas import MonitoringPolicy
from monitor.checks.windows import Window
from monitor.db import utcnow
from monitor.errors import Invalid, MonitorError
from monitor.ingest.models import Inference
from monitor.registry import service as registry_service
from monitor.registry.models import Model, ModelVersion

log = logging.getLogger("radmon.checks")


def _window(policy: MonitoringPolicy, window_end: datetime) -> Window:
    if window_end.tzinfo is None:
        raise Invalid("window_end must include a timezone")
    try:
        return Window(window_end - timedelta(days=policy.window_days), window_end)
    except OverflowError:
        raise Invalid(
            f"window_end {window_end.isoformat()} leaves no room for a {policy.window_days}-day window"
        ) from None


def _in_run_order(kinds: list[str]) -> list[str]:
    """Kinds judged without outcomes first: the label-free estimate then exists when the labelled kinds
    of the same window reconcile against it (<metric>_estimate_error, decision 0421) on the first run."""
    return sorted(kinds, key=lambda kind: kind in LABELLED_KINDS)


def _kinds(kinds: list[str] | None) -> list[str]:
    implemented = implemented_kinds()
    if kinds is None:
        return _in_run_order(implemented)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise Invalid(f"unknown check kind(s) {unknown}; kinds are {list(KINDS)}")
    pending = [k for k in kinds if k not in implemented]
    if pending:
        raise Invalid(f"check kind(s) {pending} are not implemented yet; implemented: {implemented}")
    return _in_run_order(list(dict.fromkeys(kinds)))


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
        context = KindContext(
            session=session, actor=actor, model=model, version=version, policy=policy, window=window,
            resets=sequential_resets(session=session, version=version),
        )  # fmt: skip
        for kind in selected:
            runs.append(_run_kind(context, kind))
    return runs


def sequential_resets(
    *, session: Session, version: ModelVersion
) -> dict[tuple[str, str, str | None, str | None], datetime]:
    """(kind, metric, feature, segment) -> the last time a person acknowledged or resolved the version's
    sequential alert of that series: the series' evidence restarts there (docs/decisions/0503, reset)."""
    rows = session.execute(
        select(Alert.kind, Alert.metric, Alert.feature, Alert.segment, func.max(AlertTransition.at))
        .join(AlertTransition, AlertTransition.alert_id == Alert.id)
        .where(
            Alert.model_id == version.model_id,
            Alert.version_id == version.id,
            Alert.metric.like("%\\_sequential", escape="\\"),
            AlertTransition.action.in_(("acknowledged", "resolved")),
        )
        .group_by(Alert.kind, Alert.metric, Alert.feature, Alert.segment)
    )
    return {(kind, metric, feature, segment): at for kind, metric, feature, segment, at in rows}


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
    reference_set_id = context.__dict__["reference_set"].id if "reference_set" in context.__dict__ else None
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
        points = [_point_row(run, finding) for finding in result.findings]
        session.execute(insert(MetricPoint.__table__), points)  # type: ignore[arg-type]  # a Table, typed as FromClause
    session.flush()
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


def recompute_labelled_windows(*, session: Session, actor: Actor, model_name: str, now: datetime) -> list[CheckRun]:
    """Re-run performance and subgroups for every window windows_to_recompute names (for the scheduler)."""
    authorize(actor, Permission.CHECKS_RUN)
    model = registry_service.find_model(session=session, name=model_name)
    runs: list[CheckRun] = []
    for window_end in performance_checks.windows_to_recompute(session=session, model_id=model.id, now=now):
        runs += run_checks(
            session=session,
            actor=actor,
            model_name=model_name,
            kinds=list(LABELLED_KINDS),
            window_end=window_end,
        )
    return runs
