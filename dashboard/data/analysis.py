"""Analytics: monitoring status, the analysis scope, drift, performance and subgroup views, and the report,
from stored aggregates only."""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from dashboard.data.alerting import SEVERITY_ORDER
from dashboard.data.base import transaction
from dashboard.data.registry import _model_out
from monitor.auth.actors import Actor
from monitor.checks import reads as checks_reads
from monitor.checks.reads import Distribution, SeriesRow
from monitor.checks.schemas import CheckRunOut
from monitor.errors import NotFound
from monitor.registry import service as registry_service
from monitor.registry.schemas import (
    DeploymentOut,
    ModelOut,
)

# -- analytics: monitoring status, drift, performance and subgroups from stored aggregates --------
# Everything below reads check runs, metric points, stored profiles and grouped alert counts;
# inference rows only through index-only counts of days no stored profile covers.

VOLUME_DAYS = 28
PERFORMANCE_METRICS = ("sensitivity", "specificity", "auc", "ppv")


@dataclass(frozen=True)
class MonitoringStatus:
    """What the overview shows of one model's monitoring."""

    severity: str | None  # worst open or acknowledged alert; None when there is none
    open_alerts: int
    acknowledged_alerts: int
    last_run: CheckRunOut | None
    volume: list[tuple[date, int]]  # inferences per whole UTC day before today, oldest first, empty days as 0
    label_coverage: float | None  # share of the latest performance window with an outcome
    labelled: int | None
    coverage_window_end: datetime | None


def monitoring_status(*, actor: Actor, today: date) -> dict[str, MonitoringStatus]:
    """Per model name: worst unresolved alert, latest check run, daily volume, label coverage,
    all from aggregates (grouped alert counts, stored daily profiles' row counts, run summaries)."""
    first = today - timedelta(days=VOLUME_DAYS)  # whole days only: today's partial count would read as a drop
    with transaction() as session:
        found = checks_reads.monitoring_overview(session=session, actor=actor, since=first, until=today)
    return {name: _monitoring_status(state, first) for name, state in found.items()}


def _monitoring_status(state: checks_reads.ModelMonitoring, first: date) -> MonitoringStatus:
    severities = [severity for by_severity in state.alerts.values() for severity in by_severity]
    performance = state.last_performance
    summary = performance.summary if performance else {}
    return MonitoringStatus(
        severity=min(severities, key=lambda s: SEVERITY_ORDER.get(s, 9)) if severities else None,
        open_alerts=sum(state.alerts.get("open", {}).values()),
        acknowledged_alerts=sum(state.alerts.get("acknowledged", {}).values()),
        last_run=state.last_run,
        volume=[
            (first + timedelta(days=i), state.volume.get(first + timedelta(days=i), 0)) for i in range(VOLUME_DAYS)
        ],
        label_coverage=summary.get("label_coverage") if summary.get("labelled") else None,
        labelled=summary.get("labelled"),
        coverage_window_end=performance.window_end if performance else None,
    )


@dataclass(frozen=True)
class VersionSwitch:
    """A deployment that changed the live version: where the analytic charts draw a switch line."""

    at: datetime
    version: str
    previous: str
    reason: str
    change_request_id: int | None


@dataclass(frozen=True)
class AnalysisScope:
    """The model and version an analytic page shows, and what its pickers offer.

    Unless a version is asked for (`pinned`), the pages show the live version's windows and, on the
    same time axis, the windows of the versions live before it: each window is the version that was
    live when it ended (decision 0235), so a rollback never leaves an empty page."""

    model: ModelOut
    choices: list[tuple[str, str]]  # (name, display name) of every model
    versions: list[str]  # registration order
    version: str | None  # the one asked for, else the active one, else the newest
    pinned: bool = False  # the version was asked for: that version's windows only
    deployments: list[DeploymentOut] = field(default_factory=list)  # oldest first

    @property
    def query(self) -> dict[str, str]:
        return {"model": self.model.name, **({"version": self.version} if self.pinned and self.version else {})}

    @property
    def switches(self) -> list[VersionSwitch]:
        """Deployments that changed the live version, oldest first."""
        found = []
        for before, after in itertools.pairwise(self.deployments):
            if after.version != before.version:
                found.append(VersionSwitch(after.activated_at, after.version, before.version, after.reason,
                                           after.change_request_id))  # fmt: skip
        return found

    @property
    def history_versions(self) -> list[str]:
        """The versions whose windows the page shows, most recently live first."""
        if self.pinned or self.version is None:
            return [self.version] if self.version else []
        order = [self.version] + [d.version for d in reversed(self.deployments)]
        return list(dict.fromkeys(order))

    def pinned_to(self, version: str) -> AnalysisScope:
        """The same scope showing one version's windows only."""
        return replace(self, version=version, pinned=True)

    def shown_version(self, window_end: datetime, available: Collection[str]) -> str:
        """Of the versions with figures for a window, the one shown: the version live when the window
        ended, else the most recently live one (a window spanning a switch has a run per version)."""
        live = self.live_at(window_end)
        if live is not None and live in available:
            return live
        return next(v for v in self.history_versions if v in available)

    def live_at(self, moment: datetime) -> str | None:
        """The version live at `moment` (before the first deployment: the first deployed one)."""
        live = self.deployments[0].version if self.deployments else self.version
        for deployment in self.deployments:
            if deployment.activated_at <= moment:
                live = deployment.version
        return live


def analysis_scope(*, actor: Actor, model_name: str | None, version: str | None) -> AnalysisScope | None:
    """None when no model is registered; NotFound for an unknown model or version ("live": none asked for)."""
    version = None if version == "live" else version
    with transaction() as session:
        models = registry_service.list_models(session=session, actor=actor)
        if not models:
            return None
        choices = [(m.name, m.display_name) for m, _ in models]
        model, active = registry_service.get_model(session=session, actor=actor, name=model_name or choices[0][0])
        versions = [
            v.version for v in registry_service.list_versions(session=session, actor=actor, model_name=model.name)
        ]
        if version and version not in versions:
            raise NotFound(f"model '{model.name}' has no version '{version}'")
        selected = version or active or (versions[-1] if versions else None)
        history = registry_service.deployment_history(session=session, actor=actor, model_name=model.name)
        return AnalysisScope(_model_out(model, active), choices, versions, selected, bool(version), history)


def _latest_run(session: Session, actor: Actor, scope: AnalysisScope, kind: str) -> CheckRunOut | None:
    """The newest current run of a kind for the scope's version, with its metric points; unpinned,
    the newest of the version live before it when the live one has none yet (after a switch)."""
    for version in scope.history_versions:
        run = checks_reads.newest_run(
            session=session, actor=actor, model_name=scope.model.name, version=version, kind=kind
        )
        if run is not None:
            return run
    return None


def _history(
    session: Session,
    actor: Actor,
    scope: AnalysisScope,
    kind: str,
    metrics: tuple[str, ...],
    since: datetime,
    *,
    segment: str | None = None,
    details_of: tuple[str, ...] = (),
) -> list[SeriesRow]:
    """One kind's series across the versions the scope shows: per window end, the points of the
    version live when the window ended, else those of the most recently live version that has the
    window (a window spanning a switch is checked for each version it saw). One indexed read per version."""
    versions = scope.history_versions
    if len(versions) <= 1:
        return _series(session, actor, scope, kind, metrics, since, segment=segment, details_of=details_of)
    windows: dict[datetime, dict[str, list[SeriesRow]]] = {}
    for version in versions:
        pinned = scope.pinned_to(version)
        for row in _series(session, actor, pinned, kind, metrics, since, segment=segment, details_of=details_of):
            windows.setdefault(row.window_end, {}).setdefault(version, []).append(row)
    merged: list[SeriesRow] = []
    for window_end in sorted(windows):
        found = windows[window_end]
        merged += found[scope.shown_version(window_end, found)]
    return merged


def _series(
    session: Session,
    actor: Actor,
    scope: AnalysisScope,
    kind: str,
    metrics: tuple[str, ...],
    since: datetime,
    *,
    segment: str | None = None,
    details_of: tuple[str, ...] = (),
) -> list[SeriesRow]:
    if scope.version is None:
        return []
    return checks_reads.series_rows(
        session=session, actor=actor, model_name=scope.model.name, version=scope.version, kind=kind, metrics=metrics,
        segment=segment, since=since, details_of=details_of,
    )  # fmt: skip


@dataclass(frozen=True)
class DriftView:
    """The drift page's figures: per-feature drift scores, the unified score, the output's drift."""

    drift_scores: list[SeriesRow]  # input_drift, one per feature and window, oldest first (no details)
    unified: list[SeriesRow]  # with details (warn_at)
    output_scores: list[SeriesRow]  # output_drift of the score distribution
    positive_rates: list[SeriesRow]
    latest_input: CheckRunOut | None  # with metric points
    latest_output: CheckRunOut | None


def drift_view(*, actor: Actor, scope: AnalysisScope, since: datetime) -> DriftView:
    """The scope's drift series for windows ending from `since`, and its latest drift runs."""
    with transaction() as session:
        inputs = _history(
            session, actor, scope, "input_drift", ("drift_score", "unified_drift"), since, details_of=("unified_drift",)
        )
        outputs = _history(session, actor, scope, "output_drift", ("drift_score", "positive_rate"), since)
        return DriftView(
            drift_scores=[p for p in inputs if p.metric == "drift_score"],
            unified=[p for p in inputs if p.metric == "unified_drift"],
            output_scores=[p for p in outputs if p.metric == "drift_score"],
            positive_rates=[p for p in outputs if p.metric == "positive_rate"],
            latest_input=_latest_run(session, actor, scope, "input_drift"),
            latest_output=_latest_run(session, actor, scope, "output_drift"),
        )


def drift_distribution(*, actor: Actor, run_id: int, feature: str) -> Distribution:
    """The reference-vs-window distribution of one feature of a drift run (stored profiles only)."""
    with transaction() as session:
        return checks_reads.display_distribution(session=session, actor=actor, run_id=run_id, feature=feature)


@dataclass(frozen=True)
class PerformanceView:
    """Realized (labelled) and label-free estimated figures per window for the whole population
    or one segment, and the latest run's reliability bins and CUSUM charts."""

    realized: list[SeriesRow]  # PERFORMANCE_METRICS and label_coverage: performance (overall) or subgroups (segment)
    estimated: list[SeriesRow]  # estimated_performance, same segment
    latest: CheckRunOut | None  # newest performance run with its points (reliability, CUSUM)
    latest_estimate: CheckRunOut | None
    targets: dict[str, float]
    segment: str | None = None  # None: overall
    segments: list[str] = field(default_factory=list)  # what the segment picker offers
    # <metric>_estimate_error per window (estimate - realized, same segment), with details (reason)
    reconciliation: list[SeriesRow] = field(default_factory=list)
    support: SeriesRow | None = None  # the latest estimate's estimate_support for the same segment


def performance_view(
    *, actor: Actor, scope: AnalysisScope, since: datetime, segment: str | None = None
) -> PerformanceView:
    """The scope's performance series for windows ending from `since` (overall, or one segment's
    realized subgroup figures and estimate), and its latest runs. Each series is one indexed read
    of that segment's points only."""
    with transaction() as session:
        segments = sorted(
            {
                found
                for version in scope.history_versions
                for found in checks_reads.series_segments(
                    session=session,
                    actor=actor,
                    model_name=scope.model.name,
                    version=version,
                    kinds=("subgroups", "estimated_performance"),
                )
            }
        )
        if segment is not None and segment not in segments:
            raise NotFound(f"version {scope.version} of '{scope.model.name}' has no figures for segment '{segment}'")
        realized_kind = "performance" if segment is None else "subgroups"
        realized = _history(
            session, actor, scope, realized_kind, (*PERFORMANCE_METRICS, "label_coverage"), since, segment=segment
        )
        estimated = _history(
            session, actor, scope, "estimated_performance", PERFORMANCE_METRICS, since, segment=segment
        )
        errors = tuple(f"{metric}_estimate_error" for metric in PERFORMANCE_METRICS)
        reconciliation = _history(
            session, actor, scope, realized_kind, errors, since, segment=segment, details_of=errors
        )
        support = _history(
            session, actor, scope, "estimated_performance", ("estimate_support",), since, segment=segment,
            details_of=("estimate_support",),
        )  # fmt: skip
        latest = _latest_run(session, actor, scope, "performance")
        latest_estimate = _latest_run(session, actor, scope, "estimated_performance")
        versions = registry_service.list_versions(session=session, actor=actor, model_name=scope.model.name)
        targets = next((dict(v.targets or {}) for v in versions if v.version == scope.version), {})
        return PerformanceView(
            realized, estimated, latest, latest_estimate, targets, segment, segments, reconciliation,
            support[-1] if support else None,
        )  # fmt: skip


@dataclass(frozen=True)
class SubgroupView:
    table: dict[str, Any] | None  # GET /models/{model}/subgroups's body; None before the first run
    windows: list[tuple[datetime, int, str]]  # (window end, segments breached, version) of the runs shown, newest first
    population: dict[str, SeriesRow] = field(default_factory=dict)  # the whole population's figures, same window


def subgroup_view(*, actor: Actor, scope: AnalysisScope, window_end: datetime | None) -> SubgroupView:
    """The segment table of a subgroups run for window_end (default: the latest). Unpinned, the
    windows of the versions live before the live one are offered too, each as the version live
    when it ended (so after a rollback the previous version's windows stay one click away)."""
    with transaction() as session:
        runs = checks_reads.list_runs(
            session=session, actor=actor, model_name=scope.model.name, kind="subgroups", limit=400
        )
        shown = scope.history_versions
        by_end: dict[datetime, list[CheckRunOut]] = {}
        for run in runs:
            if run.version in shown:
                by_end.setdefault(run.window_end, []).append(run)
        chosen = {
            end: next(run for run in found if run.version == scope.shown_version(end, {r.version for r in found}))
            for end, found in by_end.items()
        }
        windows = sorted(
            ((end, len(run.summary.get("breached_segments") or []), run.version) for end, run in chosen.items()),
            reverse=True,
        )
        if not windows:
            return SubgroupView(None, [])
        end = window_end or windows[0][0]
        version = chosen[end].version if end in chosen else scope.version
        table = checks_reads.subgroup_report(
            session=session, actor=actor, model_name=scope.model.name, window_end=end, version=version
        )
        overall = _series(
            session,
            actor,
            scope.pinned_to(version) if version else scope,
            "performance",
            PERFORMANCE_METRICS,
            table["window_end"],
        )
        population = {p.metric: p for p in overall if p.window_end == table["window_end"]}
        return SubgroupView(table, windows, population)


def check_report(*, actor: Actor, run_id: int) -> str:
    """The Evidently drill-down of a drift run (rendered and stored by the service on first request)."""
    with transaction() as session:
        return checks_reads.report_html(session=session, actor=actor, run_id=run_id)
