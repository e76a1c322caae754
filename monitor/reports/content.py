"""What a periodic surveillance report says, gathered from stored data only (issue 16, decision 0602).

``gather(session, model_id=..., period_start=..., period_end=...)`` returns a typed ``ReportContent``: plain
values, every list in a stated order, no clock read. The template prints it and ``figures`` draws it.

The period is ``[period_start, period_end]`` in whole UTC days. A check window belongs to the period when its
end falls in ``(start of the first day, end of the last day]``: its last day is a day of the period (a 7-day
window ending on 1 November 00:00 judges 25 to 31 October). Incidents belong to it when the windows in which
their condition held overlap the period; their timeline shows every recorded transition, with its recorded
time (an acknowledgement made after the period is still part of the record).

Reads reuse the functions the API and the dashboard use (checks.reads, registry, alerts.service); the few
grouped reads that exist nowhere else (breaches per segment, drift episodes, data-quality counts) are here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.alerts.models import Alert, DigestItem, Notification
from monitor.auth.actors import SYSTEM
from monitor.checks import reads
from monitor.checks.catalog import (
    DRIFT_KINDS,
    METRICS,
    PERFORMANCE_METRICS,
    kind_label,
    lower_is_better,
    metric_label,
)
from monitor.checks.models import CheckRun, MetricPoint
from monitor.checks.performance_checks import read_rows
from monitor.checks.policy import policy_for
from monitor.checks.schemas import FeatureSpec
from monitor.checks.windows import Window, day_start
from monitor.ingest.models import Inference
from monitor.registry import changes as changes_service
from monitor.registry import service as registry_service
from monitor.registry.models import Model, ModelVersion

# A window whose labelled share is below this is flagged in the data-quality notes (decision 0602).
LOW_COVERAGE = 0.5
# The charts' headline metrics, when the runs report them.
CHART_METRICS = ("sensitivity", "specificity", "auc", "ppv")
SITE_ATTRIBUTE = "site"
MEMBERS_SHOWN = 8  # an incident's grouped alerts printed in full; the rest by number
NOT_RECORDED = "(not recorded)"
_TICK = timedelta(microseconds=1)  # window_end in (start, end]: the reads take [since, until)


# ---------------------------------------------------------------------------------------------
# Display formatting: the dashboard's rounding (values and intervals to 3 decimals, dates in UTC)


def num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def pct(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.1f}%"


def day(moment: datetime | date | None) -> str:
    if moment is None:
        return "–"
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%d")
    return moment.isoformat()


def stamp(moment: datetime | None) -> str:
    """A recorded time as the report prints it: date, time and zone."""
    return "–" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def segment_label(segment: str | None) -> str:
    return "all studies" if not segment else segment.replace("&", " & ")


# ---------------------------------------------------------------------------------------------
# The content


@dataclass(frozen=True)
class Estimate:
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    status: str
    window_end: datetime
    version: str = ""

    @property
    def interval(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            return "–"
        return f"{num(self.ci_low)} to {num(self.ci_high)}"


@dataclass(frozen=True)
class SeriesPoint:
    window_end: datetime
    value: float | None
    ci_low: float | None
    ci_high: float | None
    threshold: float | None
    status: str
    version: str


@dataclass(frozen=True)
class MetricRow:
    """One performance metric over the period's windows, against its target."""

    metric: str
    label: str
    unit: str
    target: float | None
    lower_is_better: bool
    latest: Estimate
    worst: Estimate
    windows: int
    judged: int
    warned: int  # the estimate missed the target
    breached: int  # the whole 95% interval missed it
    first_miss: datetime | None
    last_miss: datetime | None

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "no target"
        return f"{'≤' if self.lower_is_better else '≥'} {num(self.target)}"


@dataclass(frozen=True)
class VersionInfo:
    version: str
    created_at: datetime
    created_by: str
    training_data: str
    validated_populations: list[str]
    targets: list[tuple[str, str]]  # (metric label, "≥ 0.900")
    decision_threshold: float
    inferences: int  # served in the period
    first_inference: datetime | None
    last_inference: datetime | None


@dataclass(frozen=True)
class DeploymentRow:
    version: str
    activated_at: datetime
    activated_by: str
    reason: str
    change_request_id: int | None
    until: datetime | None  # the next deployment's time; None: still live


@dataclass(frozen=True)
class SignatureLine:
    """A signature printed as a 21 CFR 11.50 manifestation."""

    printed_name: str
    username: str
    meaning: str
    decision: str
    comment: str
    signed_at: datetime
    bound: bool


@dataclass(frozen=True)
class ChangeRow:
    id: int
    kind: str
    from_version: str
    target_version: str
    reason: str
    status: str
    requested_by: str
    requested_at: datetime
    decided_at: datetime | None
    executed_at: datetime | None
    approvals: int
    approvals_required: int
    signatures: list[SignatureLine]


@dataclass(frozen=True)
class SiteVolume:
    site: str
    inferences: int
    labelled: int
    positives: int

    @property
    def coverage(self) -> float | None:
        return self.labelled / self.inferences if self.inferences else None


@dataclass(frozen=True)
class DayVolume:
    day: date
    inferences: int
    labelled: int


@dataclass(frozen=True)
class SegmentRow:
    segment: str
    status: str
    inferences: int | None
    label_coverage: float | None
    figures: dict[str, Estimate]


@dataclass(frozen=True)
class SegmentMiss:
    """A segment's metric missing its target in some windows of the period."""

    segment: str
    metric: str
    warned: int
    breached: int
    first: datetime
    last: datetime
    lowest: float | None


@dataclass(frozen=True)
class Reconciliation:
    """Label-free estimate against the realized figure once outcomes arrived."""

    metric: str
    label: str
    windows: int
    mean_error: float | None
    largest_error: float | None
    largest_at: datetime | None
    unreliable: int  # windows where the realized figure fell outside the estimate's interval


@dataclass(frozen=True)
class DriftEpisode:
    kind: str
    metric: str
    feature: str | None
    segment: str | None
    windows: int
    breached: int
    first: datetime
    last: datetime
    largest: float | None
    threshold: float | None
    onset: datetime | None  # the start of its alert's episode, when an alert was raised
    explained: list[str]  # the incidents this drift was linked to, and how
    incident_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    action: str
    to_status: str
    note: str


@dataclass(frozen=True)
class EmailRow:
    created_at: datetime
    sent_at: datetime | None
    recipient: str
    category: str
    subject: str
    status: str


@dataclass(frozen=True)
class IncidentRow:
    id: int
    title: str
    kind: str
    metric: str
    segment: str | None
    severity: str
    status: str
    breaching_since: datetime
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    members: list[str]
    timeline: list[TimelineEntry]
    emails: list[EmailRow]

    @property
    def acknowledged_at(self) -> datetime | None:
        return next((t.at for t in self.timeline if t.action == "acknowledged"), None)

    @property
    def resolved_at(self) -> datetime | None:
        resolved = [t.at for t in self.timeline if t.to_status == "resolved"]
        return resolved[-1] if resolved else None


@dataclass(frozen=True)
class Summary:
    within_target: bool
    performance: list[str]
    sites: list[str]
    incidents: list[str]
    drift: list[str]
    gaps: list[str]


@dataclass(frozen=True)
class ReportContent:
    model_name: str
    display_name: str
    task: str
    modality: str
    body_part: str
    intended_use: str
    period_start: date
    period_end: date
    windows: list[datetime]  # the ends of the period's performance windows, oldest first
    versions: list[VersionInfo]
    deployments: list[DeploymentRow]
    changes: list[ChangeRow]
    sites: list[SiteVolume]
    daily: list[DayVolume]
    performance: list[MetricRow]
    series: dict[str, list[SeriesPoint]]  # realized, overall, per chart metric
    estimated_series: dict[str, list[SeriesPoint]]
    reconciliation: list[Reconciliation]
    calibration: list[dict[str, Any]]  # the latest window's reliability bins
    calibration_window: datetime | None
    subgroups_window: datetime | None
    subgroups: list[SegmentRow]
    subgroup_metrics: list[str]
    segment_misses: list[SegmentMiss]
    drift: list[DriftEpisode]
    drift_series: list[SeriesPoint]  # unified input drift, overall
    incidents: list[IncidentRow]
    data_notes: list[str]
    summary: Summary = field(default_factory=lambda: Summary(True, [], [], [], [], []))

    @property
    def inferences(self) -> int:
        return sum(s.inferences for s in self.sites)

    @property
    def labelled(self) -> int:
        return sum(s.labelled for s in self.sites)


# ---------------------------------------------------------------------------------------------
# Gathering


def period_bounds(period_start: date, period_end: date) -> tuple[datetime, datetime]:
    """[start, end) of the period's UTC days."""
    return day_start(period_start), day_start(period_end + timedelta(days=1))


def gather(session: Session, *, model_id: int, period_start: date, period_end: date) -> ReportContent:
    """The report's content for one model and period, from stored data only (reads, never writes)."""
    if period_end < period_start:
        raise ValueError(f"the period ends ({period_end}) before it starts ({period_start})")
    model = session.get(Model, model_id)
    if model is None:
        raise LookupError(f"model {model_id} does not exist")
    start, end = period_bounds(period_start, period_end)
    policy = policy_for(session=session, model_id=model.id)
    site = SITE_ATTRIBUTE if SITE_ATTRIBUTE in {*policy.segments, *(f.name for f in policy.features)} else None

    served, sites, daily = _volume(session, model, start, end, site)
    versions = _versions(session, model, served)
    deployments = _deployments(session, model)
    changes = _changes(session, model, start, end)

    points = [
        p
        for p in reads.metric_series(
            session=session,
            actor=SYSTEM,
            model_name=model.name,
            kind="performance",
            since=start + _TICK,
            until=end + _TICK,
        )
        if p.segment is None
    ]
    windows = sorted({p.window_end for p in points if p.metric == "label_coverage"})
    performance = _metric_rows(points)
    series = {
        m: [_series_point(p) for p in points if p.metric == m]
        for m in CHART_METRICS
        if any(p.metric == m for p in points)
    }
    estimated_points = [
        p
        for p in reads.metric_series(
            session=session, actor=SYSTEM, model_name=model.name, kind="estimated_performance", since=start + _TICK,
            until=end + _TICK,
        )
        if p.segment is None
    ]  # fmt: skip
    estimated_series = {
        m: [_series_point(p) for p in estimated_points if p.metric == m]
        for m in series
        if any(p.metric == m for p in estimated_points)
    }
    reconciliation = _reconciliation(points)
    calibration, calibration_window = _calibration(points)

    subgroups_window, subgroups, subgroup_metrics = _subgroups(session, model, start, end)
    misses = _segment_misses(session, model, start, end)
    incidents = _incidents(session, model, start, end)
    drift = _drift(session, model, start, end, incidents)
    drift_series = [
        _series_point(p)
        for p in reads.metric_series(
            session=session, actor=SYSTEM, model_name=model.name, kind="input_drift", metric="unified_drift",
            since=start + _TICK, until=end + _TICK,
        )
        if p.segment is None
    ]  # fmt: skip
    notes = _data_notes(session, model, start, end, points, daily, policy.label_horizon_days, period_end)

    content = ReportContent(
        model_name=model.name,
        display_name=model.display_name,
        task=model.task,
        modality=model.modality or "",
        body_part=model.body_part or "",
        intended_use=model.intended_use,
        period_start=period_start,
        period_end=period_end,
        windows=windows,
        versions=versions,
        deployments=deployments,
        changes=changes,
        sites=sites,
        daily=daily,
        performance=performance,
        series=series,
        estimated_series=estimated_series,
        reconciliation=reconciliation,
        calibration=calibration,
        calibration_window=calibration_window,
        subgroups_window=subgroups_window,
        subgroups=subgroups,
        subgroup_metrics=subgroup_metrics,
        segment_misses=misses,
        drift=drift,
        drift_series=drift_series,
        incidents=incidents,
        data_notes=notes,
    )
    return replace(content, summary=_summary(content, site))


# --------------------------------------------------------------------------------- the model


def _versions(session: Session, model: Model, served: dict[int, tuple[int, datetime, datetime]]) -> list[VersionInfo]:
    rows = session.execute(
        select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.created_at, ModelVersion.id)
    ).scalars()
    found = []
    for v in rows:
        targets = [
            (metric_label(m), f"{'≤' if lower_is_better(m) else '≥'} {num(float(t))}")
            for m, t in sorted(v.targets.items(), key=lambda item: _metric_order(item[0]))
            if isinstance(t, int | float)
        ]
        count, first, last = served.get(v.id, (0, None, None))
        found.append(
            VersionInfo(
                version=v.version, created_at=v.created_at, created_by=v.created_by, training_data=v.training_data,
                validated_populations=list(v.validated_populations), targets=targets,
                decision_threshold=v.decision_threshold, inferences=count, first_inference=first, last_inference=last,
            )
        )  # fmt: skip
    return found


def _metric_order(metric: str) -> tuple[int, str]:
    names = list(METRICS)
    return (names.index(metric) if metric in names else len(names), metric)


def _deployments(session: Session, model: Model) -> list[DeploymentRow]:
    history = registry_service.deployment_history(session=session, actor=SYSTEM, model_name=model.name)
    return [
        DeploymentRow(
            version=d.version, activated_at=d.activated_at, activated_by=d.activated_by, reason=d.reason,
            change_request_id=d.change_request_id,
            until=history[i + 1].activated_at if i + 1 < len(history) else None,
        )
        for i, d in enumerate(history)
    ]  # fmt: skip


def _changes(session: Session, model: Model, start: datetime, end: datetime) -> list[ChangeRow]:
    """Change requests made, decided or executed in the period, oldest first (status as at the period's end)."""
    requests = changes_service.list_change_requests(session=session, actor=SYSTEM, model_name=model.name, now=end)

    def in_period(moment: datetime | None) -> bool:
        return moment is not None and start <= moment < end

    chosen = [r for r in requests if in_period(r.requested_at) or in_period(r.decided_at) or in_period(r.executed_at)]
    return [
        ChangeRow(
            id=r.id, kind=r.kind, from_version=r.from_version, target_version=r.target_version, reason=r.reason,
            status=r.status, requested_by=r.requested_by, requested_at=r.requested_at, decided_at=r.decided_at,
            executed_at=r.executed_at, approvals=r.approvals, approvals_required=r.approvals_required,
            signatures=[
                SignatureLine(
                    printed_name=s.printed_name, username=s.username, meaning=s.meaning, decision=s.decision,
                    comment=s.comment, signed_at=s.signed_at, bound=s.bound,
                )
                for s in r.signatures
            ],
        )
        for r in sorted(chosen, key=lambda r: r.id)
    ]  # fmt: skip


# --------------------------------------------------------------------------------- volume


def _volume(
    session: Session, model: Model, start: datetime, end: datetime, site: str | None
) -> tuple[dict[int, tuple[int, datetime, datetime]], list[SiteVolume], list[DayVolume]]:
    """Inferences and labelled inferences per site and per day, over every version that served in the
    period (the checks' own read of rows with their effective labels)."""
    specs = [FeatureSpec(name=site, type="categorical")] if site else []
    served: dict[int, tuple[int, datetime, datetime]] = {}
    per_site: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    first_day = start.date().toordinal()
    days = (end - start).days
    inferences = np.zeros(days, dtype=np.int64)
    labelled = np.zeros(days, dtype=np.int64)
    version_ids = session.execute(
        select(ModelVersion.id).where(ModelVersion.model_id == model.id).order_by(ModelVersion.id)
    ).scalars()
    for version_id in version_ids:
        span = session.execute(
            select(func.count(), func.min(Inference.occurred_at), func.max(Inference.occurred_at)).where(
                Inference.model_id == model.id,
                Inference.version_id == version_id,
                Inference.occurred_at >= start,
                Inference.occurred_at < end,
            )
        ).one()
        if not span[0]:
            continue
        served[version_id] = (int(span[0]), _aware(span[1]), _aware(span[2]))
        rows = read_rows(session, model_id=model.id, version_id=version_id, window=Window(start, end), specs=specs)
        has_label = rows.label >= 0
        offsets = rows.day - first_day
        inferences += np.bincount(offsets, minlength=days)[:days]
        labelled += np.bincount(offsets[has_label], minlength=days)[:days]
        names = (
            np.asarray(pd.Series(rows.columns[site]).astype(object).fillna(NOT_RECORDED).astype(str))
            if site
            else np.full(len(rows), "all sites", dtype=object)
        )
        for name in sorted(set(names)):
            mask = names == name
            tally = per_site[name]
            tally[0] += int(mask.sum())
            tally[1] += int((mask & has_label).sum())
            tally[2] += int((mask & (rows.label == 1)).sum())
    sites = [SiteVolume(name, *per_site[name]) for name in sorted(per_site)]
    daily = [DayVolume(date.fromordinal(first_day + i), int(inferences[i]), int(labelled[i])) for i in range(days)]
    return served, sites, daily


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------- performance


def _series_point(p: Any) -> SeriesPoint:
    return SeriesPoint(p.window_end, p.value, p.ci_low, p.ci_high, p.threshold, p.status, p.version)


def _estimate(p: Any) -> Estimate:
    return Estimate(p.value, p.ci_low, p.ci_high, p.n, p.status, p.window_end, p.version)


def _metric_rows(points: list[Any]) -> list[MetricRow]:
    by_metric: dict[str, list[Any]] = defaultdict(list)
    for p in points:
        by_metric[p.metric].append(p)
    found = []
    for metric in PERFORMANCE_METRICS:
        series = by_metric.get(metric)
        if not series:
            continue
        lower = lower_is_better(metric)
        judged = [p for p in series if p.status != "insufficient_data" and p.value is not None]
        missed = [p for p in judged if p.status in ("warn", "breach")]
        worst = (max if lower else min)(judged, key=lambda p: (p.value, p.window_end)) if judged else series[-1]
        found.append(
            MetricRow(
                metric=metric, label=metric_label(metric), unit=METRICS[metric].unit or "", target=series[-1].threshold,
                lower_is_better=lower, latest=_estimate(series[-1]), worst=_estimate(worst), windows=len(series),
                judged=len(judged), warned=len(missed), breached=sum(p.status == "breach" for p in missed),
                first_miss=missed[0].window_end if missed else None, last_miss=missed[-1].window_end if missed else None,
            )
        )  # fmt: skip
    return found


def _reconciliation(points: list[Any]) -> list[Reconciliation]:
    found = []
    for metric in ("sensitivity", "specificity", "ppv", "npv", "auc"):
        errors = [p for p in points if p.metric == f"{metric}_estimate_error" and p.value is not None]
        if not errors:
            continue
        largest = max(errors, key=lambda p: (abs(p.value), p.window_end))
        found.append(
            Reconciliation(
                metric=metric, label=metric_label(metric), windows=len(errors),
                mean_error=float(np.mean([p.value for p in errors])), largest_error=largest.value,
                largest_at=largest.window_end, unreliable=sum(p.status == "warn" for p in errors),
            )
        )  # fmt: skip
    return found


def _calibration(points: list[Any]) -> tuple[list[dict[str, Any]], datetime | None]:
    ece = [p for p in points if p.metric == "ece" and (p.details or {}).get("reliability")]
    if not ece:
        return [], None
    latest = ece[-1]
    return list(latest.details["reliability"]), latest.window_end


def _current_points(model: Model, start: datetime, end: datetime) -> Any:
    """Metric points of the model's current runs whose window ends in the period."""
    return (
        select(MetricPoint)
        .join(CheckRun, CheckRun.id == MetricPoint.run_id)
        .where(
            MetricPoint.model_id == model.id,
            CheckRun.superseded_at.is_(None),
            MetricPoint.window_end > start,
            MetricPoint.window_end <= end,
        )
    )


def _subgroups(
    session: Session, model: Model, start: datetime, end: datetime
) -> tuple[datetime | None, list[SegmentRow], list[str]]:
    """The period's last subgroups window as the dashboard's table (reads.subgroup_report)."""
    last = session.execute(
        select(func.max(CheckRun.window_end)).where(
            CheckRun.model_id == model.id,
            CheckRun.kind == "subgroups",
            CheckRun.superseded_at.is_(None),
            CheckRun.window_end > start,
            CheckRun.window_end <= end,
        )
    ).scalar_one_or_none()
    if last is None:
        return None, [], []
    last = _aware(last)
    table = reads.subgroup_report(session=session, actor=SYSTEM, model_name=model.name, window_end=last)
    metrics = [m for m in PERFORMANCE_METRICS if m in table["targets"]] or ["sensitivity", "specificity"]
    rows = [
        SegmentRow(
            segment=entry["segment"],
            status=entry["status"],
            inferences=entry.get("inferences"),
            label_coverage=entry.get("label_coverage"),
            figures={
                m: Estimate(cell["value"], cell["ci_low"], cell["ci_high"], cell["n"], cell["status"], last)
                for m, cell in entry["metrics"].items()
                if m in metrics
            },
        )
        for entry in sorted(table["segments"], key=lambda e: e["segment"])
    ]
    return last, rows, metrics


def _segment_misses(session: Session, model: Model, start: datetime, end: datetime) -> list[SegmentMiss]:
    """Per segment and target metric: windows of the period whose estimate (warn) or interval (breach) missed."""
    points = _current_points(model, start, end).subquery()
    rows = session.execute(
        select(
            points.c.segment, points.c.metric, points.c.status, func.count(), func.min(points.c.window_end),
            func.max(points.c.window_end), func.min(points.c.value), func.max(points.c.value),
        )
        .where(
            points.c.kind == "subgroups", points.c.segment.is_not(None), points.c.metric.in_(PERFORMANCE_METRICS),
            points.c.status.in_(("warn", "breach")),
        )
        .group_by(points.c.segment, points.c.metric, points.c.status)
    ).all()  # fmt: skip
    grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        grouped[(row[0], row[1])].append(row)
    found = []
    for (segment, metric), parts in grouped.items():
        worst = [r[7] if lower_is_better(metric) else r[6] for r in parts if r[6] is not None]
        found.append(
            SegmentMiss(
                segment=segment, metric=metric, warned=sum(int(r[3]) for r in parts),
                breached=sum(int(r[3]) for r in parts if r[2] == "breach"), first=_aware(min(r[4] for r in parts)),
                last=_aware(max(r[5] for r in parts)),
                lowest=(max if lower_is_better(metric) else min)(worst) if worst else None,
            )
        )  # fmt: skip
    found.sort(key=lambda m: (-m.breached, -m.warned, m.segment, _metric_order(m.metric)))
    return found


# --------------------------------------------------------------------------------- drift and incidents


def _drift(
    session: Session, model: Model, start: datetime, end: datetime, incidents: list[IncidentRow]
) -> list[DriftEpisode]:
    """What moved: drift findings of the period per (kind, metric, feature, segment), with the incidents
    their alerts were linked to."""
    points = _current_points(model, start, end).subquery()
    rows = session.execute(
        select(
            points.c.kind, points.c.metric, points.c.feature, points.c.segment, func.count(),
            func.sum(case((points.c.status == "breach", 1), else_=0)),
            func.min(points.c.window_end), func.max(points.c.window_end), func.max(points.c.value),
            func.max(points.c.threshold),
        )
        .where(
            points.c.kind.in_(DRIFT_KINDS), points.c.status.in_(("warn", "breach")),
            points.c.metric != "unified_drift_contribution",
        )
        .group_by(points.c.kind, points.c.metric, points.c.feature, points.c.segment)
    ).all()  # fmt: skip
    titles = {i.id: f"#{i.id} {i.title}" for i in incidents}
    links: dict[tuple[str, str, str | None, str | None], list[str]] = defaultdict(list)
    onsets: dict[tuple[str, str, str | None, str | None], datetime] = {}
    ids: dict[tuple[str, str, str | None, str | None], set[int]] = defaultdict(set)
    for alert in session.execute(
        select(Alert)
        .where(
            Alert.model_id == model.id, Alert.kind.in_(DRIFT_KINDS), Alert.first_seen <= end, Alert.last_seen > start
        )
        .order_by(Alert.id)
    ).scalars():
        key = (alert.kind, alert.metric, alert.feature, alert.segment)
        onsets[key] = min(alert.breaching_since, onsets.get(key, alert.breaching_since))
        incident = alert.incident_id or alert.id
        ids[key].add(incident)
        role = "evidence of" if alert.incident_id is not None else "raised"
        links[key].append(f"{role} {titles.get(incident, f'incident #{incident}')}")
    found = [
        DriftEpisode(
            kind=r[0], metric=r[1], feature=r[2], segment=r[3], windows=int(r[4]), breached=int(r[5] or 0),
            first=_aware(r[6]), last=_aware(r[7]), largest=r[8], threshold=r[9], onset=onsets.get((r[0], r[1], r[2], r[3])),
            explained=links.get((r[0], r[1], r[2], r[3]), []), incident_ids=sorted(ids.get((r[0], r[1], r[2], r[3]), ())),
        )
        for r in rows
    ]  # fmt: skip
    found.sort(key=lambda d: (-d.breached, -d.windows, d.kind, d.feature or "", d.metric, d.segment or ""))
    return found


def incident_title(kind: str, metric: str, feature: str | None, segment: str | None) -> str:
    what = metric_label(metric) + (f" of {feature}" if feature else "")
    return f"{kind_label(kind)}: {what}, {segment_label(segment)}"


def _incidents(session: Session, model: Model, start: datetime, end: datetime) -> list[IncidentRow]:
    """Incidents (primary alerts) whose windows overlap the period, oldest first, with every member, the
    recorded transitions and the emails of the outbox (own and digests)."""
    primaries = session.execute(
        select(Alert.id)
        .where(
            Alert.model_id == model.id, Alert.incident_id.is_(None), Alert.first_seen <= end, Alert.last_seen > start
        )
        .order_by(Alert.first_seen, Alert.id)
    ).scalars().all()  # fmt: skip
    found = []
    for alert_id in primaries:
        a = alerts_service.get_alert(session=session, actor=SYSTEM, alert_id=alert_id)
        linked = sorted([*a.aliases, *a.linked_evidence], key=lambda m: m.id)
        members = [
            f"#{m.id} {incident_title(m.kind, m.metric, m.feature, m.segment)} ({m.severity}, {m.reason or 'linked'})"
            for m in linked[:MEMBERS_SHOWN]
        ]
        if len(linked) > MEMBERS_SHOWN:
            members.append(
                f"and {len(linked) - MEMBERS_SHOWN} more: " + ", ".join(f"#{m.id}" for m in linked[MEMBERS_SHOWN:])
            )
        found.append(
            IncidentRow(
                id=a.id, title=incident_title(a.kind, a.metric, a.feature, a.segment), kind=a.kind, metric=a.metric,
                segment=a.segment, severity=a.severity, status=a.status, breaching_since=a.breaching_since,
                first_seen=a.first_seen, last_seen=a.last_seen, occurrences=a.occurrences, members=members,
                timeline=[TimelineEntry(t.at, t.actor, t.action, t.to_status, t.note) for t in a.history],
                emails=_emails(session, [a.id, *(m.id for m in a.aliases), *(m.id for m in a.linked_evidence)]),
            )
        )  # fmt: skip
    return found


def _emails(session: Session, alert_ids: list[int]) -> list[EmailRow]:
    """Emails about the incident's alerts: their own and the digests that carried them, oldest first."""
    digests = select(DigestItem.digest_key).where(
        DigestItem.alert_id.in_(alert_ids), DigestItem.digest_key.is_not(None)
    )
    rows = session.execute(
        select(Notification)
        .where(
            Notification.channel == "email",
            (Notification.alert_id.in_(alert_ids)) | (Notification.group_key.in_(digests)),
        )
        .order_by(Notification.created_at, Notification.id)
    ).scalars()
    return [
        EmailRow(
            created_at=n.created_at, sent_at=n.sent_at, recipient=n.recipient, category=n.category,
            subject=str(n.payload.get("subject") or ""), status=n.status,
        )
        for n in rows
    ]  # fmt: skip


# --------------------------------------------------------------------------------- data quality


def _data_notes(
    session: Session,
    model: Model,
    start: datetime,
    end: datetime,
    points: list[Any],
    daily: list[DayVolume],
    horizon_days: int,
    period_end: date,
) -> list[str]:
    notes = []
    runs = session.execute(
        select(CheckRun.kind, CheckRun.status, func.count(), func.min(CheckRun.window_end), func.max(CheckRun.window_end))
        .where(
            CheckRun.model_id == model.id, CheckRun.superseded_at.is_(None), CheckRun.window_end > start,
            CheckRun.window_end <= end, CheckRun.status != "completed",
        )
        .group_by(CheckRun.kind, CheckRun.status)
        .order_by(CheckRun.kind, CheckRun.status)
    ).all()  # fmt: skip
    for kind, status, count, first, last in runs:
        what = "had too little data to judge" if status == "insufficient_data" else "failed"
        notes.append(
            f"{kind_label(kind)}: {count} window(s) {what} (windows ending {day(_aware(first))} to {day(_aware(last))})."
        )
    low = [p for p in points if p.metric == "label_coverage" and p.value is not None and p.value < LOW_COVERAGE]
    if low:
        notes.append(
            f"Label coverage below {pct(LOW_COVERAGE)} in {len(low)} performance window(s) (windows ending "
            f"{day(low[0].window_end)} to {day(low[-1].window_end)}; lowest {pct(min(p.value for p in low))}): "
            "their realized figures rest on fewer outcomes."
        )
    empty = [d.day for d in daily if d.inferences == 0]
    if empty:
        notes.append(f"No inferences were received on {len(empty)} day(s): {_day_ranges(empty)}.")
    insufficient = sorted(
        {metric_label(p.metric) for p in points if p.status == "insufficient_data" and p.metric in PERFORMANCE_METRICS}
    )
    if insufficient:
        notes.append(f"Too few positives or negatives to judge in some windows: {', '.join(insufficient)}.")
    late = [d for d in daily if d.day > period_end - timedelta(days=horizon_days)]
    if late and any(d.inferences for d in late):
        notes.append(
            f"Outcomes may arrive up to {horizon_days} days after a study: figures for {day(late[0].day)} onwards can "
            "still change as labels arrive; regenerating this period later can give different figures (a new revision)."
        )
    return notes


def _day_ranges(days: list[date]) -> str:
    ranges: list[list[date]] = []
    for d in days:
        if ranges and (d - ranges[-1][-1]).days == 1:
            ranges[-1].append(d)
        else:
            ranges.append([d])
    return ", ".join(r[0].isoformat() if len(r) == 1 else f"{r[0].isoformat()} to {r[-1].isoformat()}" for r in ranges)


# --------------------------------------------------------------------------------- the first page


def _summary(c: ReportContent, site: str | None) -> Summary:
    performance = []
    for row in c.performance:
        if row.target is None or not row.judged:
            continue
        if row.warned:
            clear = f", the whole 95% interval in {row.breached}" if row.breached else ""
            performance.append(
                f"{row.label} missed its target ({row.target_text}) in {row.warned} of {row.judged} windows{clear}, "
                f"windows ending {day(row.first_miss)} to {day(row.last_miss)}; worst {num(row.worst.value)} "
                f"(95% interval {row.worst.interval}) in the window ending {day(row.worst.window_end)}."
            )
    judged = max((r.judged for r in c.performance if r.target is not None), default=0)
    within = not performance
    if within and judged:
        performance.append(f"Every metric with a target was within target in all {judged} windows of the period.")
    elif not judged:
        performance.append("No performance window of the period could be judged (no or too few outcomes).")
    sites = []
    if site:
        prefix = f"{site}="
        missed_sites = defaultdict(list)
        for miss in c.segment_misses:
            if miss.segment.startswith(prefix) and "&" not in miss.segment:
                missed_sites[miss.segment[len(prefix) :]].append(miss)
        for name in sorted(missed_sites):
            parts = "; ".join(
                f"{metric_label(m.metric)} missed in {m.warned} window(s)"
                + (f" ({m.breached} clearly)" if m.breached else "")
                + f", ending {day(m.first)} to {day(m.last)}"
                for m in sorted(missed_sites[name], key=lambda m: _metric_order(m.metric))
            )
            sites.append(f"Site {name}: {parts}.")
        ok = [s.site for s in c.sites if s.site not in missed_sites and s.site != NOT_RECORDED]
        if ok:
            sites.append(f"Within target at every window: {', '.join(ok)}.")
    notifying = [i for i in c.incidents if i.severity in ("critical", "warning")]
    quiet = [i for i in c.incidents if i.severity not in ("critical", "warning")]
    incidents = [
        f"#{i.id} {i.title} ({i.severity}): since {day(i.breaching_since)}, "
        + (f"resolved {day(i.resolved_at)}" if i.status == "resolved" and i.resolved_at else i.status)
        + "."
        for i in notifying
    ]
    if quiet:
        ids = ", ".join(f"#{i.id}" for i in quiet)
        incidents.append(f"{len(quiet)} near-miss(es), informational history that notifies no one: {ids} (section 6).")
    drift = []
    for kind in DRIFT_KINDS:
        found = [d for d in c.drift if d.kind == kind]
        if not found:
            continue
        features = sorted({d.feature for d in found if d.feature and not d.segment and d.metric == "drift_score"})
        segments = sorted({segment_label(d.segment) for d in found if d.segment})
        since = min(d.onset or d.first for d in found)
        linked = sorted({i for d in found for i in d.incident_ids})
        moved: list[str] = []
        if features:
            shown = ", ".join(features[:8]) + (f" and {len(features) - 8} more" if len(features) > 8 else "")
            moved.append(f"{len(features)} feature(s) moved ({shown})")
        if segments:
            shown = ", ".join(segments[:4]) + (f" and {len(segments) - 4} more" if len(segments) > 4 else "")
            moved.append(f"shifts within {len(segments)} subgroup(s) ({shown})")
        if not moved:
            moved.append(", ".join(sorted({metric_label(d.metric) for d in found})))
        drift.append(
            f"{kind_label(kind)}: {'; '.join(moved)}; since {day(since)}"
            + (f"; linked to incident(s) {', '.join(f'#{i}' for i in linked)}" if linked else "")
            + "."
        )
    return Summary(within_target=within, performance=performance, sites=sites, incidents=incidents, drift=drift,
                   gaps=list(c.data_notes))  # fmt: skip
