"""The dashboard's only door to radmon: every read and write goes through monitor services.

Each function opens its own transaction and acts as the signed-in Actor, so the services
authorize and audit exactly as they do for the API. Results are plain pydantic or dataclass
values, never ORM objects, because the session is closed when the page renders them.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.alerts.schemas import AlertNote, AlertOut, OccurrenceOut
from monitor.audit import service as audit_service
from monitor.audit import verification as audit_verification
from monitor.audit.schemas import AuditEventOut
from monitor.audit.verification import ChainCheck
from monitor.auth.actors import Actor, Permission, authorize
from monitor.checks import drift as drift_stats
from monitor.checks import policy as checks_policy
from monitor.checks import reads as checks_reads
from monitor.checks.profiles import NumericColumn, NumericHist
from monitor.checks.reads import SeriesRow
from monitor.checks.schemas import CheckRunOut, MetricPointOut, MonitoringPolicy, PolicyOut
from monitor.config import Settings
from monitor.db import get_database
from monitor.errors import Conflict, Invalid, NotFound
from monitor.registry import changes as changes_service
from monitor.registry import service as registry_service
from monitor.registry import webhooks
from monitor.registry.schemas import (
    ChangeRequestCreate,
    ChangeRequestOut,
    DecisionCreate,
    DeploymentOut,
    ModelOut,
    VersionOut,
)

AUDIT_PAGE_SIZE = 50
log = logging.getLogger("radmon.dashboard")


def transaction() -> AbstractContextManager[Session]:
    """One unit of work: commits on success, rolls back on error (tests point it at their session)."""
    return get_database().transaction()


# -- models, versions, deployments -------------------------------------------------------------


@dataclass(frozen=True)
class ModelSummary:
    model: ModelOut
    version_count: int
    last_deployment: DeploymentOut | None


@dataclass(frozen=True)
class ModelDetail:
    model: ModelOut
    versions: list[VersionOut]
    deployments: list[DeploymentOut]


def _model_out(model: object, active_version: str | None) -> ModelOut:
    return ModelOut.model_validate(model).model_copy(update={"active_version": active_version})


def overview(*, actor: Actor) -> list[ModelSummary]:
    """Every model with its active version and its latest deployment."""
    with transaction() as session:
        summaries = []
        for model, active in registry_service.list_models(session=session, actor=actor):
            versions = registry_service.list_versions(session=session, actor=actor, model_name=model.name)
            history = registry_service.deployment_history(session=session, actor=actor, model_name=model.name)
            summaries.append(ModelSummary(_model_out(model, active), len(versions), history[-1] if history else None))
        return summaries


def model_choices(*, actor: Actor) -> list[tuple[str, str]]:
    """(name, display name) of every model, for pickers."""
    with transaction() as session:
        return [(m.name, m.display_name) for m, _ in registry_service.list_models(session=session, actor=actor)]


def model_detail(*, actor: Actor, model_name: str) -> ModelDetail:
    """One model with its versions and its deployment history (oldest first)."""
    with transaction() as session:
        model, active = registry_service.get_model(session=session, actor=actor, name=model_name)
        versions = registry_service.list_versions(session=session, actor=actor, model_name=model_name)
        history = registry_service.deployment_history(session=session, actor=actor, model_name=model_name)
        return ModelDetail(
            model=_model_out(model, active),
            versions=[VersionOut.model_validate(v) for v in versions],
            deployments=history,
        )


def activate_first_version(*, actor: Actor, model_name: str, version: str, reason: str) -> DeploymentOut:
    """Make a model's first version live (admin; the service refuses anyone else and any later change)."""
    with transaction() as session:
        deployment = registry_service.activate_first(
            session=session, actor=actor, model_name=model_name, version=version, reason=reason
        )
        return DeploymentOut(
            model=model_name,
            version=version,
            activated_at=deployment.activated_at,
            activated_by=deployment.activated_by,
            reason=deployment.reason,
            change_request_id=deployment.change_request_id,
        )


# -- change requests (rollback, promotion) and their signatures ----------------------------------


def change_requests(
    *, actor: Actor, model_name: str | None = None, status: str | None = None
) -> list[ChangeRequestOut]:
    """Change requests with their signatures, newest first (status as the service reads it: expiry applied)."""
    with transaction() as session:
        return changes_service.list_change_requests(session=session, actor=actor, model_name=model_name, status=status)


def change_request(*, actor: Actor, change_request_id: int) -> ChangeRequestOut:
    with transaction() as session:
        return changes_service.get_change_request(session=session, actor=actor, change_request_id=change_request_id)


def request_change(
    *, actor: Actor, model_name: str, kind: str, target_version: str, reason: str, alert_id: int | None = None
) -> ChangeRequestOut:
    """File a rollback or promotion (qa, admin); the form's values are validated as the API validates them."""
    create = _validated(
        ChangeRequestCreate,
        {"model": model_name, "kind": kind, "target_version": target_version, "reason": reason, "alert_id": alert_id},
    )
    with transaction() as session:
        return changes_service.request_change(session=session, actor=actor, data=create)


def decide_change_request(
    *,
    actor: Actor,
    change_request_id: int,
    decision: str,
    meaning: str,
    password: str,
    comment: str,
    settings: Settings,
) -> ChangeRequestOut:
    """Sign a decision; the service re-authenticates the signer and switches the deployment at quorum.

    A refused signature (wrong password, lockout, expiry) is recorded and committed before the
    refusal is raised, as the API does (decision 0200); the deployment webhook goes out after commit."""
    body = _validated(
        DecisionCreate, {"decision": decision, "meaning": meaning, "password": password, "comment": comment}
    )
    with transaction() as session:
        result = changes_service.decide(
            session=session,
            actor=actor,
            change_request_id=change_request_id,
            data=body,
            webhook_url=settings.webhook_url,
        )
    if result.refusal is not None:
        raise result.refusal
    if result.notification_id is not None:
        # Delivery retries with pauses: never hold the signer's request open for it.
        threading.Thread(
            target=webhooks.deliver_after_commit,
            kwargs={"notification_id": result.notification_id, "secret": settings.webhook_secret},
            name=f"deployment-webhook-{result.notification_id}",
            daemon=True,
        ).start()
    return result.change_request


# -- monitoring policy -------------------------------------------------------------------------


def policy(*, actor: Actor, model_name: str) -> PolicyOut:
    """The model's monitoring policy (the defaults until one is saved)."""
    with transaction() as session:
        return checks_policy.get_policy(session=session, actor=actor, model_name=model_name)


def policy_json(policy_out: PolicyOut) -> str:
    """The editable part of a policy as pretty JSON (what PUT /models/{model}/policy takes)."""
    editable = MonitoringPolicy.model_validate(policy_out.model_dump(include=set(MonitoringPolicy.model_fields)))
    return json.dumps(editable.model_dump(mode="json"), indent=2)


def parse_policy(text: str | None) -> MonitoringPolicy:
    """A policy from the editor's JSON; Invalid with a {field, reason} per problem, as the API answers."""
    try:
        body = json.loads(text or "")
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise Invalid(reason, details=[{"field": "JSON", "reason": reason}]) from None
    if not isinstance(body, dict):
        reason = "the policy must be a JSON object ({...})"
        raise Invalid(reason, details=[{"field": "JSON", "reason": reason}])
    return _validated(MonitoringPolicy, body)


def save_policy(*, actor: Actor, model_name: str, text: str | None, loaded_at: str | None) -> PolicyOut:
    """Replace the policy from the editor's JSON (qa, admin; audited by the service).

    `loaded_at` is the updated_at the editor was opened with: a policy saved by someone else in
    the meantime is not silently overwritten."""
    new_policy = parse_policy(text)
    with transaction() as session:
        current = checks_policy.get_policy(session=session, actor=actor, model_name=model_name)
        current_at = current.updated_at.isoformat() if current.updated_at else None
        if current_at != (loaded_at or None):
            raise Conflict(
                f"{current.updated_by} saved this policy at {current.updated_at:%Y-%m-%d %H:%M:%S} UTC after you "
                "opened it; reload the page to see their version before saving yours"
            )
        return checks_policy.put_policy(session=session, actor=actor, model_name=model_name, policy=new_policy)


def _validated(schema: Any, values: dict[str, Any]) -> Any:
    """Validate form values with the API's own schema; problems read like the API's 422 details."""
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(part) for part in error["loc"]) or "policy",
                "reason": error["msg"].removeprefix("Value error, "),
            }
            for error in exc.errors()
        ]
        raise Invalid("; ".join(f"{d['field']}: {d['reason']}" for d in details[:5]), details=details) from None


# -- alerts ------------------------------------------------------------------------------------

ALERT_LIST_LIMIT = 200
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class AlertFilters:
    """What the alerts page filters on; `active` (the default) is open and acknowledged together."""

    status: str = "active"
    severity: str | None = None
    model: str | None = None

    def query(self) -> dict[str, str]:
        pairs = {
            "status": self.status if self.status != "active" else None,
            "severity": self.severity,
            "model": self.model,
        }
        return {key: value for key, value in pairs.items() if value}


def alerts(*, actor: Actor, filters: AlertFilters, settings: Settings) -> list[AlertOut]:
    """Matching alerts, most severe first, then most recently seen."""
    statuses: list[str | None] = (
        ["open", "acknowledged"]
        if filters.status == "active"
        else [None if filters.status == "all" else filters.status]
    )
    with transaction() as session:
        found = [
            alert
            for status in statuses
            for alert in alerts_service.list_alerts(
                session=session,
                actor=actor,
                status=status,
                severity=filters.severity,
                model=filters.model,
                limit=ALERT_LIST_LIMIT,
                settings=settings,
            )
        ]
    found.sort(key=lambda a: a.last_seen, reverse=True)
    found.sort(key=lambda a: SEVERITY_ORDER.get(a.severity, 9))
    return found


@dataclass(frozen=True)
class AlertDetail:
    alert: AlertOut
    occurrences: list[OccurrenceOut]


def alert_detail(*, actor: Actor, alert_id: int, settings: Settings) -> AlertDetail:
    """One alert with its evidence, history and every window in which it held."""
    with transaction() as session:
        alert = alerts_service.get_alert(session=session, actor=actor, alert_id=alert_id, settings=settings)
        occurrences = alerts_service.list_occurrences(session=session, actor=actor, alert_id=alert_id)
        return AlertDetail(alert, occurrences)


def act_on_alert(*, actor: Actor, alert_id: int, action: str, note: str | None, settings: Settings) -> AlertOut:
    """Acknowledge or resolve with a note (qa, admin); the service audits and notifies."""
    body = _validated(AlertNote, {"note": note or ""})
    act = {"acknowledge": alerts_service.acknowledge, "resolve": alerts_service.resolve}[action]
    with transaction() as session:
        return act(session=session, actor=actor, alert_id=alert_id, note=body.note, settings=settings)


# -- audit trail -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page filters on (exact matches, as the service does)."""

    actor_name: str | None = None
    action: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    since: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        actor_name: str | None = None,
        action: str | None = None,
        entity: str | None = None,
        entity_id: str | None = None,
        since: str | None = None,
    ) -> AuditFilters:
        """Filters from form fields or URL parameters; `since` is a date or an ISO timestamp (UTC if no zone)."""
        since_at = None
        if since and since.strip():
            try:
                since_at = datetime.fromisoformat(since.strip())
            except ValueError:
                raise Invalid(f"'since' must be a date like 2026-01-31; got '{since}'") from None
            if since_at.tzinfo is None:
                since_at = since_at.replace(tzinfo=UTC)

        def clean(value: str | None) -> str | None:
            return value.strip() or None if value else None

        return cls(clean(actor_name), clean(action), clean(entity), clean(entity_id), since_at)

    def service_kwargs(self) -> dict[str, Any]:
        return {
            "actor_name": self.actor_name or None,
            "action": self.action or None,
            "entity": self.entity or None,
            "entity_id": self.entity_id or None,
            "since": self.since,
        }

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (export link, shareable page URL)."""
        pairs = {
            "actor": self.actor_name,
            "action": self.action,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "since": self.since.isoformat() if self.since else None,
        }
        return {key: value for key, value in pairs.items() if value}


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEventOut]
    next_before_seq: int | None  # None when this is the oldest page


def audit_events(
    *, actor: Actor, filters: AuditFilters, before_seq: int | None = None, limit: int = AUDIT_PAGE_SIZE
) -> AuditPage:
    """One page of events, newest first; pass next_before_seq back for the next (older) page."""
    with transaction() as session:
        # One extra row tells whether an older page exists without a count query.
        events = audit_service.list_events(
            session=session, actor=actor, before_seq=before_seq, limit=limit + 1, **filters.service_kwargs()
        )
        page = [AuditEventOut.model_validate(e) for e in events[:limit]]
        return AuditPage(events=page, next_before_seq=page[-1].seq if len(events) > limit else None)


def audit_chain(*, actor: Actor) -> ChainCheck:
    """The chain's state for the audit page: the events appended since the last verification
    rehashed from its head (the first ever check is a full one), the result kept (decision 0233)."""
    with transaction() as session:
        return audit_verification.verify_since_checkpoint(session=session, actor=actor)


def verify_audit_full(*, actor: Actor) -> ChainCheck:
    """Rehash the whole chain from the first event and keep the result."""
    with transaction() as session:
        return audit_verification.verify_full(session=session, actor=actor)


_full_verification_lock = threading.Lock()
_full_verification: tuple[datetime, threading.Thread] | None = None


def start_full_verification(*, actor: Actor) -> datetime:
    """The page's "verify full chain now": rehash the whole chain in a background thread (its
    time grows with the trail, seconds at a few hundred thousand events, so no callback waits for
    it) and return when it started; full_verification_result() finds its result. One runs at a
    time per process: a second request joins the running one."""
    authorize(actor, Permission.AUDIT_READ)
    global _full_verification
    with _full_verification_lock:
        if _full_verification is None or not _full_verification[1].is_alive():
            thread = threading.Thread(
                target=_verify_full_logged, kwargs={"actor": actor}, name="audit-full-verification", daemon=True
            )
            _full_verification = (datetime.now(UTC), thread)
            thread.start()
        return _full_verification[0]


def _verify_full_logged(*, actor: Actor) -> None:
    try:
        verify_audit_full(actor=actor)
    except Exception:  # a thread's exception would vanish: the log is where an operator looks
        log.exception("full audit chain verification failed")


def full_verification_result(*, actor: Actor, started_at: datetime) -> ChainCheck | None:
    """The full verification finished since started_at, or None while it runs."""
    with transaction() as session:
        return audit_verification.full_verified_since(session=session, actor=actor, started_at=started_at)


def audit_csv(*, actor: Actor, filters: AuditFilters) -> Iterator[str]:
    """The matching events as CSV lines, streamed from one read transaction.

    Authorization happens before this returns (the header line is produced eagerly), so a
    refused export fails as a whole instead of starting a 200 response."""
    scope = transaction()
    session = scope.__enter__()
    try:
        lines = audit_service.export_csv(session=session, actor=actor, **filters.service_kwargs())
        header = next(lines)
    except BaseException as exc:
        scope.__exit__(type(exc), exc, exc.__traceback__)
        raise

    def stream() -> Iterator[str]:
        try:
            yield header
            yield from lines
        except BaseException as exc:
            scope.__exit__(type(exc), exc, exc.__traceback__)
            raise
        scope.__exit__(None, None, None)

    return stream()


# -- analytics: monitoring status, drift, performance and subgroups from stored aggregates --------
# Everything below reads check runs, metric points, stored profiles and grouped alert counts;
# inference rows only through index-only counts of days no stored profile covers.

VOLUME_DAYS = 28
DISPLAY_BINS = 30
SCORE_BINS = 20
TAIL_SHARE = 0.005  # numeric distributions are drawn between these quantiles; outer bins hold the tails
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


def drift_distribution(*, actor: Actor, run_id: int, feature: str) -> Distribution:
    """The reference-vs-window distribution of one feature of a drift run (stored profiles only)."""
    with transaction() as session:
        found = checks_reads.run_distributions(session=session, actor=actor, run_id=run_id, feature=feature)
        run = checks_reads.get_run(session=session, actor=actor, run_id=run_id)
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
