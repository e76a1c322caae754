"""Alert lifecycle: findings become deduplicated alerts; open -> acknowledged -> resolved, reopen, auto-resolve.

Every transition is written to the alert's history and to the audit trail in the caller's
transaction, together with the notifications it causes (the outbox), so a committed alert
always has its emails queued and a rolled-back one never sends any.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.alerts import emails, incidents, outbox
from monitor.alerts.models import ACTIVE, Alert, AlertOccurrence, AlertTransition, Notification, NotificationAttempt
from monitor.alerts.schemas import (
    AlertOut,
    AttemptOut,
    Finding,
    LinkedAlertOut,
    NotificationOut,
    OccurrenceOut,
    TransitionOut,
)
from monitor.audit import service as audit_service
from monitor.auth.actors import SYSTEM, Actor, Permission, authorize
from monitor.checks.catalog import KINDS
from monitor.checks.models import CheckRun, MetricPoint
from monitor.checks.policy import policy_for
from monitor.checks.schemas import MonitoringPolicy
from monitor.config import Settings, get_settings
from monitor.db import utcnow
from monitor.errors import Conflict, Invalid, NotFound
from monitor.ingest import phi
from monitor.registry import service as registry_service
from monitor.registry.models import Model, ModelVersion

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_NEVER = datetime.min.replace(tzinfo=UTC)
_STATUS_RANK = {"breach": 3, "warn": 2, "ok": 1, "insufficient_data": 0}


# ---------------------------------------------------------------------------- rules


def fingerprint(*, model: str, version: str, kind: str, metric: str, feature: str | None, segment: str | None) -> str:
    """sha256 of (model, version, kind, metric, feature, segment): the identity of a condition."""
    body = json.dumps([model, version, kind, metric, feature or "", segment or ""], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def severity_for(finding: Finding, policy: MonitoringPolicy) -> str | None:
    """The severity a finding raises, or None when it raises nothing (ok, insufficient data)."""
    if finding.status == "warn":
        return "info"  # point estimate past the target, not significant: watch, do not page
    if finding.status != "breach":
        return None
    if finding.kind in policy.alert_severities:
        return policy.alert_severities[finding.kind]  # type: ignore[index]
    spec = KINDS.get(finding.kind)
    # DESIGN 7: the kind's default (catalog); a kind this release does not know raises info.
    severity = "info" if spec is None else spec.default_severity
    # An estimate is an early warning even when it is reported under a realized-performance kind.
    return "warning" if finding.estimated and severity == "critical" else severity


def evidence_of(finding: Finding) -> dict[str, Any]:
    return {
        "run_id": finding.run_id,
        "window_end": finding.window_end.isoformat(),
        "status": finding.status,
        "value": finding.value,
        "ci_low": finding.ci_low,
        "ci_high": finding.ci_high,
        "n": finding.n,
        "threshold": finding.threshold,
        "method": finding.method,
        "estimated": finding.estimated,
    }


@dataclass
class _Context:
    """What every finding of one model version needs, looked up once per call."""

    model: Model
    version: ModelVersion
    policy: MonitoringPolicy
    now: datetime
    settings: Settings
    # Alert events waiting for their notifications until the run's incidents are settled (None: at once).
    events: list[tuple[Alert, str]] | None = None


# ---------------------------------------------------------------------------- check results in


def process_run(
    *, session: Session, run_id: int, now: datetime | None = None, settings: Settings | None = None
) -> list[Alert]:
    """Turn a run's metric points into alerts (the check runner calls this after writing them)."""
    return process_findings(session=session, findings=_findings_of_run(session, run_id), now=now, settings=settings)


def _findings_of_run(session: Session, run_id: int) -> list[Finding]:
    run = session.get(CheckRun, run_id)
    if run is None:
        raise NotFound(f"check run {run_id} does not exist")
    rows = session.execute(
        select(MetricPoint, Model.name, ModelVersion.version)
        .join(Model, Model.id == MetricPoint.model_id)
        .join(ModelVersion, ModelVersion.id == MetricPoint.version_id)
        .where(MetricPoint.run_id == run_id)
        .order_by(MetricPoint.id)
    ).all()
    return [_finding_of_point(point, model_name, version, run_id) for point, model_name, version in rows]


def _finding_of_point(point: Any, model: str, version: str, run_id: int) -> Finding:
    """A stored metric point (monitor.checks.models.MetricPoint) as alerting sees it."""
    return Finding(
        model=model,
        version=version,
        kind=point.kind,
        metric=point.metric,
        status=point.status,
        window_end=point.window_end,
        feature=point.feature,
        segment=point.segment,
        value=point.value,
        ci_low=point.ci_low,
        ci_high=point.ci_high,
        n=point.n,
        threshold=point.threshold,
        method=point.method,
        estimated=bool(point.estimated),
        run_id=run_id,
        details=point.details,
    )


def process_findings(
    *, session: Session, findings: Iterable[Finding], now: datetime | None = None, settings: Settings | None = None
) -> list[Alert]:
    """Open, update, reopen, escalate or count towards auto-resolve, then group the firing alerts into
    incidents (decision 0303) and queue what the incidents' events send; returns the alerts touched."""
    now = now or utcnow()
    settings = settings or get_settings()
    contexts: dict[tuple[str, str], _Context] = {}
    touched: dict[int, Alert] = {}
    events: list[tuple[Alert, str]] = []
    firing: list[incidents.Firing] = []
    worst = _worst_per_fingerprint(findings)
    existing = _lock_existing(session, [_fingerprint_of(finding) for finding in worst])
    clean: list[tuple[_Context, Finding, Alert | None]] = []
    for finding in worst:
        key = (finding.model, finding.version)
        if key not in contexts:
            contexts[key] = _context(session, finding, now, settings)
            contexts[key].events = events
        context = contexts[key]
        severity = severity_for(finding, context.policy)
        current = existing.get(_fingerprint_of(finding))
        if severity is not None:
            alert = _observe_firing(session, context, finding, severity, current)
            firing.append(incidents.Firing(finding, alert, severity, new=current is None))
            touched[alert.id] = alert
        elif finding.status == "ok":
            clean.append((context, finding, current))
        # insufficient data is neither a breach nor evidence of recovery
    quiet: set[int] = set()
    for (model, version), context in contexts.items():
        mine = [f for f in firing if (f.finding.model, f.finding.version) == (model, version)]
        others, stored = _window_state(session, context, mine)
        linked = incidents.link(
            session,
            firing=mine + others,
            observed=[f for f in worst if (f.model, f.version) == (model, version)] + stored,
            segment_order=context.policy.segments,
        )
        quiet |= linked.quiet
        for alert, left, why in linked.unlinked:
            _unlinked(session, context, alert, left, why)
    # An incident whose aliases or linked findings still fire in the window is not over: no clean count.
    held: dict[int, datetime] = {}
    for item in firing:
        if item.alert.incident_id is not None:
            held[item.alert.incident_id] = max(item.finding.window_end, held.get(item.alert.incident_id, _NEVER))
    for context, finding, current in clean:
        if current is not None and current.id in held and held[current.id] >= finding.window_end:
            continue
        cleared = _observe_clean(session, context, finding, current)
        if cleared is not None:
            touched[cleared.id] = cleared
    for alert, action in events:  # members of an incident send nothing: its primary speaks for them
        if alert.incident_id is None and alert.id not in quiet:
            context = next(c for c in contexts.values() if c.version.id == alert.version_id)
            _notify(session, context, alert, action)
    return list(touched.values())


def _unlinked(session: Session, context: _Context, alert: Alert, left: int, why: str) -> None:
    """A member left its open incident (its own finding no longer supports the link): written to its
    history and the audit trail. Standing alone now as a warning or critical alert, it is an incident
    the committee has not been told about: it notifies as a new one (an info near-miss notifies nobody)."""
    _transition(
        session,
        context,
        alert,
        actor=SYSTEM,
        action="unlinked",
        to_status=alert.status,
        severity=alert.severity,
        note=f"left incident #{left}: {why}",
    )
    if alert.incident_id is None and alert.severity != "info" and context.events is not None:
        context.events.append((alert, "opened"))


def _window_state(
    session: Session, context: _Context, firing: list[incidents.Firing]
) -> tuple[list[incidents.Firing], list[Finding]]:
    """What the other check runs of the same windows found: the alerts firing there (last seen in the
    window) and every current metric point, so a drift run links to the breach its subgroup run raised."""
    windows = sorted({item.finding.window_end for item in firing})
    if not windows:
        return [], []
    rows = session.execute(
        select(MetricPoint)
        .join(CheckRun, CheckRun.id == MetricPoint.run_id)
        .where(
            MetricPoint.model_id == context.model.id,
            MetricPoint.version_id == context.version.id,
            MetricPoint.window_end.in_(windows),
            CheckRun.superseded_at.is_(None),
        )
        .order_by(MetricPoint.id)
    ).scalars()
    stored = {
        _fingerprint_of(finding) + finding.window_end.isoformat(): finding
        for finding in (
            _finding_of_point(point, context.model.name, context.version.version, point.run_id) for point in rows
        )
    }
    known = {item.alert.id for item in firing}
    alerts = session.execute(
        select(Alert)
        .where(
            Alert.model_id == context.model.id,
            Alert.version_id == context.version.id,
            Alert.status.in_(ACTIVE),
            Alert.last_seen.in_(windows),
        )
        .order_by(Alert.fingerprint)
    ).scalars()
    others = []
    for alert in alerts:
        finding = stored.get(alert.fingerprint + alert.last_seen.isoformat())
        if alert.id not in known and finding is not None:
            others.append(incidents.Firing(finding, alert, alert.severity, new=False))
    return others, list(stored.values())


def _context(session: Session, finding: Finding, now: datetime, settings: Settings) -> _Context:
    model = registry_service.find_model(session=session, name=finding.model)
    version = registry_service.find_version(session=session, model=model, version=finding.version)
    policy = policy_for(session=session, model_id=model.id)
    return _Context(model=model, version=version, policy=policy, now=now, settings=settings)


def _fingerprint_of(finding: Finding) -> str:
    return fingerprint(
        model=finding.model,
        version=finding.version,
        kind=finding.kind,
        metric=finding.metric,
        feature=finding.feature,
        segment=finding.segment,
    )


def _worst_per_fingerprint(findings: Iterable[Finding]) -> list[Finding]:
    worst: dict[str, Finding] = {}
    for finding in findings:
        if finding.window_end.tzinfo is None:
            raise Invalid("a finding's window_end must be timezone-aware (UTC)")
        key = _fingerprint_of(finding)
        current = worst.get(key)
        if current is None or _STATUS_RANK.get(finding.status, 0) > _STATUS_RANK.get(current.status, 0):
            worst[key] = finding
    return [worst[key] for key in sorted(worst)]


_LOCK_CHUNK = 500


def _lock_existing(session: Session, fingerprints: list[str]) -> dict[str, Alert]:
    """The run's existing alerts, row-locked in one query per chunk rather than one per finding.

    Fingerprint order (the list comes sorted): concurrent runners take the row locks in the same order.
    """
    found: dict[str, Alert] = {}
    for start in range(0, len(fingerprints), _LOCK_CHUNK):
        chunk = fingerprints[start : start + _LOCK_CHUNK]
        query = select(Alert).where(Alert.fingerprint.in_(chunk)).order_by(Alert.fingerprint).with_for_update()
        found.update((alert.fingerprint, alert) for alert in session.scalars(query))
    return found


def _locked(session: Session, fingerprint_: str) -> Alert | None:
    return session.execute(
        select(Alert).where(Alert.fingerprint == fingerprint_).with_for_update()
    ).scalar_one_or_none()


def _observe_firing(session: Session, context: _Context, finding: Finding, severity: str, alert: Alert | None) -> Alert:
    key = _fingerprint_of(finding)
    if alert is None:
        created = _open_new(session, context, finding, severity, key)
        if created is not None:
            return created
        alert = _locked(session, key)  # another runner opened it a moment ago
        assert alert is not None
    _track_episode(alert, finding, severity)
    _record_occurrence(session, context, alert, finding, severity)
    if alert.status == "resolved":
        if alert.resolved_through is None or finding.window_end > alert.resolved_through:
            alert.resolved_at, alert.clean_runs = None, 0
            _transition(
                session,
                context,
                alert,
                actor=SYSTEM,
                action="reopened",
                to_status="open",
                severity=severity,
                note=f"condition returned: {_summary(alert)}",
            )
    elif SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]:
        _transition(
            session,
            context,
            alert,
            actor=SYSTEM,
            action="escalated",
            to_status="open",
            severity=severity,
            note=f"severity raised from {alert.severity} to {severity}: {_summary(alert)}",
        )
    session.flush()
    return alert


def _open_new(session: Session, context: _Context, finding: Finding, severity: str, key: str) -> Alert | None:
    """A new alert, or None when a concurrent transaction created the same fingerprint first."""
    alert = Alert(
        fingerprint=key,
        model_id=context.model.id,
        version_id=context.version.id,
        kind=finding.kind,
        metric=finding.metric,
        feature=finding.feature,
        segment=finding.segment,
        severity=severity,
        status="open",
        first_seen=finding.window_end,
        last_seen=finding.window_end,
        occurrences=0,
        clean_runs=0,
        evidence=evidence_of(finding),
        opened_at=context.now,
        updated_at=context.now,
        episode_start=finding.window_end,
        episode_onset=onset_of(finding),
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        return None
    _record_occurrence(session, context, alert, finding, severity, new=True)
    _transition(
        session,
        context,
        alert,
        actor=SYSTEM,
        action="opened",
        to_status="open",
        severity=severity,
        note=_summary(alert),
    )
    return alert


def _record_occurrence(
    session: Session, context: _Context, alert: Alert, finding: Finding, severity: str, *, new: bool = False
) -> None:
    """One occurrence per window: a recomputed window updates its row instead of counting twice."""
    occurrence = (
        None
        if new
        else session.execute(
            select(AlertOccurrence).where(
                AlertOccurrence.alert_id == alert.id, AlertOccurrence.window_end == finding.window_end
            )
        ).scalar_one_or_none()
    )
    if occurrence is None:
        occurrence = AlertOccurrence(alert_id=alert.id, window_end=finding.window_end)
        session.add(occurrence)
        alert.occurrences += 1
    occurrence.run_id, occurrence.status, occurrence.severity = finding.run_id, finding.status, severity
    occurrence.value, occurrence.ci_low, occurrence.ci_high = finding.value, finding.ci_low, finding.ci_high
    occurrence.n, occurrence.threshold, occurrence.method = finding.n, finding.threshold, finding.method
    occurrence.estimated, occurrence.recorded_at = finding.estimated, context.now
    if finding.window_end >= alert.last_seen:
        alert.evidence, alert.clean_runs = evidence_of(finding), 0
    alert.first_seen = min(alert.first_seen, finding.window_end)
    alert.last_seen = max(alert.last_seen, finding.window_end)
    alert.updated_at = context.now
    session.flush()


def onset_of(finding: Finding, *, after: datetime | None = None) -> datetime | None:
    """The change onset a sequential detector estimated for the finding (details["onset"], an ISO date
    or datetime, UTC when naive), if it lies in (after, window_end]; else None."""
    raw = (finding.details or {}).get("onset")
    if not isinstance(raw, str):
        return None
    try:
        onset = datetime.fromisoformat(raw)
    except ValueError:
        return None
    onset = onset if onset.tzinfo is not None else onset.replace(tzinfo=UTC)
    if onset > finding.window_end or (after is not None and onset <= after):
        return None
    return onset


def _track_episode(alert: Alert, finding: Finding, severity: str) -> None:
    """Before a firing window is recorded: does it start a new episode ("breaching since")?

    A new episode starts when the alert reopens, when a clean window came between the last firing
    window and this one, or when the severity rises (the breach starts there; the milder windows
    before it are history). A recomputed older window at the same severity with no clean window
    since extends the episode backwards."""
    window = finding.window_end
    reopening = alert.status == "resolved" and (alert.resolved_through is None or window > alert.resolved_through)
    cleared = alert.last_clean_window is not None and alert.last_clean_window > alert.last_seen
    escalating = alert.status != "resolved" and SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]
    if reopening or escalating or (cleared and window > alert.last_seen):
        floor = alert.resolved_through if reopening else alert.last_clean_window if cleared else None
        alert.episode_start, alert.episode_onset = window, onset_of(finding, after=floor)
        return
    if severity != alert.severity:
        return
    start = alert.episode_start or alert.first_seen
    if window < start and (alert.last_clean_window is None or alert.last_clean_window < window):
        alert.episode_start = window
    if alert.episode_onset is None:
        alert.episode_onset = onset_of(finding)


def _observe_clean(session: Session, context: _Context, finding: Finding, alert: Alert | None) -> Alert | None:
    """An ok window after the last breach counts towards auto-resolve (each window once)."""
    if alert is None or alert.status not in ACTIVE or finding.window_end <= alert.last_seen:
        return None
    if alert.last_clean_window is not None and finding.window_end <= alert.last_clean_window:
        return None
    alert.clean_runs += 1
    alert.last_clean_window, alert.updated_at = finding.window_end, context.now
    needed = context.policy.auto_resolve_after
    if needed and alert.clean_runs >= needed:
        alert.resolved_through, alert.resolved_at = finding.window_end, context.now
        leaves = ""
        if alert.incident_id is not None and alert.incident_role != "alias":
            # Evidence that cleared is no longer part of the problem: it leaves the incident (an alias,
            # the same studies under another name, stays: its gaps do not split the incident).
            leaves = f"; it leaves incident #{alert.incident_id}"
            alert.incident_id = alert.incident_role = alert.incident_reason = None
        _transition(
            session,
            context,
            alert,
            actor=SYSTEM,
            action="auto_resolved",
            to_status="resolved",
            severity=alert.severity,
            note=f"resolved automatically after {alert.clean_runs} consecutive clean runs "
            f"(last window ending {finding.window_end.isoformat()}){leaves}",
        )
    session.flush()
    return alert


def _shown(value: object) -> object:
    """A figure as a reader sees it in a history note: 0.8936585365853658 -> 0.8937 (the evidence keeps it whole)."""
    return f"{value:.4g}" if isinstance(value, float) else value


def _summary(alert: Alert) -> str:
    evidence = alert.evidence
    where = f" [{alert.segment}]" if alert.segment else ""
    feature = f" of {alert.feature}" if alert.feature else ""
    return (
        f"{alert.kind} {alert.metric}{feature}{where} = {_shown(evidence.get('value'))} "
        f"(threshold {_shown(evidence.get('threshold'))}, n={evidence.get('n')}, status {evidence.get('status')}, "
        f"window ending {evidence.get('window_end')})"
    )


_ACTION_VERBS = {
    "opened": "open",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
    "auto_resolved": "auto_resolve",
    "reopened": "reopen",
    "escalated": "escalate",
    "unlinked": "unlink",
}


def _transition(
    session: Session,
    context: _Context,
    alert: Alert,
    *,
    actor: Actor,
    action: str,
    to_status: str,
    severity: str,
    note: str,
) -> None:
    """Move the alert, write its history and audit event, and queue what the event sends."""
    before = None if action == "opened" else {"status": alert.status, "severity": alert.severity}
    alert.status, alert.severity, alert.updated_at = to_status, severity, context.now
    session.add(
        AlertTransition(
            alert_id=alert.id,
            at=context.now,
            actor=actor.username,
            action=action,
            from_status=None if before is None else before["status"],
            to_status=to_status,
            severity=severity,
            note=note,
        )
    )
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action=f"alert.{_ACTION_VERBS[action]}",
        entity="alert",
        entity_id=alert.id,
        before=before,
        after={
            "status": to_status,
            "severity": severity,
            "fingerprint": alert.fingerprint,
            "occurrences": alert.occurrences,
        },
        reason=note,
    )
    if context.events is not None:
        context.events.append((alert, action))
    elif alert.incident_id is None:
        _notify(session, context, alert, action)


def _notify(session: Session, context: _Context, alert: Alert, action: str) -> None:
    outbox.on_event(
        session,
        alert=alert,
        model=context.model,
        version=context.version,
        event=action,
        policy=context.policy,
        now=context.now,
        settings=context.settings,
    )


# ---------------------------------------------------------------------------- people act


def acknowledge(
    *,
    session: Session,
    actor: Actor,
    alert_id: int,
    note: str,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> AlertOut:
    """Someone is on it (qa, admin); audited with the note."""
    authorize(actor, Permission.ALERTS_ACT)
    phi.check_free_text(field="note", value=note, record=f"alert {alert_id}")
    alert, context = _for_action(session, alert_id, now, settings)
    if alert.status == "acknowledged":
        raise Conflict(f"alert {alert_id} is already acknowledged")
    if alert.status == "resolved":
        raise Conflict(f"alert {alert_id} is resolved; it reopens by itself if the condition returns")
    _transition(
        session,
        context,
        alert,
        actor=actor,
        action="acknowledged",
        to_status="acknowledged",
        severity=alert.severity,
        note=note,
    )
    for member in _members(session, alert, ("open",)):
        _transition(
            session,
            context,
            member,
            actor=actor,
            action="acknowledged",
            to_status="acknowledged",
            severity=member.severity,
            note=f"{note} (with incident {alert.id})",
        )
    return _out(session, [alert], context.settings)[0]


def resolve(
    *,
    session: Session,
    actor: Actor,
    alert_id: int,
    note: str,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> AlertOut:
    """Close the alert with a note (qa, admin); a later window with the same breach reopens it."""
    authorize(actor, Permission.ALERTS_ACT)
    phi.check_free_text(field="note", value=note, record=f"alert {alert_id}")
    alert, context = _for_action(session, alert_id, now, settings)
    if alert.status == "resolved":
        raise Conflict(f"alert {alert_id} is already resolved")
    for target in (alert, *_members(session, alert, ACTIVE)):
        target.resolved_through, target.resolved_at = target.last_seen, context.now
        _transition(
            session,
            context,
            target,
            actor=actor,
            action="resolved",
            to_status="resolved",
            severity=target.severity,
            note=note if target is alert else f"{note} (with incident {alert.id})",
        )
    return _out(session, [alert], context.settings)[0]


def _members(session: Session, alert: Alert, statuses: Sequence[str]) -> list[Alert]:
    """The incident's member alerts in these statuses, row-locked (acting on an incident acts on them all)."""
    query = (
        select(Alert)
        .where(Alert.incident_id == alert.id, Alert.status.in_(statuses))
        .order_by(Alert.fingerprint)
        .with_for_update()
    )
    return list(session.execute(query).scalars())


def _for_action(
    session: Session, alert_id: int, now: datetime | None, settings: Settings | None
) -> tuple[Alert, _Context]:
    alert = session.execute(select(Alert).where(Alert.id == alert_id).with_for_update()).scalar_one_or_none()
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    model = session.get(Model, alert.model_id)
    version = session.get(ModelVersion, alert.version_id)
    assert model is not None and version is not None
    policy = policy_for(session=session, model_id=model.id)
    return alert, _Context(
        model=model, version=version, policy=policy, now=now or utcnow(), settings=settings or get_settings()
    )


# ---------------------------------------------------------------------------- reading


def list_alerts(
    *,
    session: Session,
    actor: Actor,
    status: str | None = None,
    model: str | None = None,
    severity: str | None = None,
    limit: int = 100,
    settings: Settings | None = None,
    members: bool = False,
) -> list[AlertOut]:
    """Incidents newest first (by last_seen), filtered by status, model and severity; each names its
    aliases and linked evidence. members=True lists every alert, members of incidents included.

    An info alert standing alone is a near-miss, not an incident (decision 0303): it is listed only
    when severity="info" is asked for (or with members=True)."""
    authorize(actor, Permission.MODELS_READ)
    query = select(Alert) if members else select(Alert).where(Alert.incident_id.is_(None))
    if not members and severity != "info":
        query = query.where(Alert.severity != "info")
    if model:
        query = query.where(Alert.model_id == registry_service.find_model(session=session, name=model).id)
    if status:
        query = query.where(Alert.status == status)
    if severity:
        query = query.where(Alert.severity == severity)
    alerts = session.execute(query.order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)).scalars().all()
    return _out(session, list(alerts), settings or get_settings())


def get_alert(*, session: Session, actor: Actor, alert_id: int, settings: Settings | None = None) -> AlertOut:
    authorize(actor, Permission.MODELS_READ)
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return _out(session, [alert], settings or get_settings())[0]


def list_occurrences(*, session: Session, actor: Actor, alert_id: int) -> list[OccurrenceOut]:
    """Every window in which the alert's condition held, oldest first."""
    authorize(actor, Permission.MODELS_READ)
    if session.get(Alert, alert_id) is None:
        raise NotFound(f"alert {alert_id} does not exist")
    rows = session.execute(
        select(AlertOccurrence).where(AlertOccurrence.alert_id == alert_id).order_by(AlertOccurrence.window_end)
    ).scalars()
    return [OccurrenceOut.model_validate(row, from_attributes=True) for row in rows]


def _out(session: Session, alerts: Sequence[Alert], settings: Settings) -> list[AlertOut]:
    if not alerts:
        return []
    ids = [a.id for a in alerts]
    names = dict(
        session.execute(select(Model.id, Model.name).where(Model.id.in_({a.model_id for a in alerts}))).tuples().all()
    )
    versions = dict(
        session.execute(
            select(ModelVersion.id, ModelVersion.version).where(ModelVersion.id.in_({a.version_id for a in alerts}))
        )
        .tuples()
        .all()
    )
    history: dict[int, list[TransitionOut]] = {alert_id: [] for alert_id in ids}
    linked = incidents.members_of(session, ids)
    for row in session.execute(
        select(AlertTransition).where(AlertTransition.alert_id.in_(ids)).order_by(AlertTransition.id)
    ).scalars():
        history[row.alert_id].append(TransitionOut.model_validate(row, from_attributes=True))
    return [
        AlertOut(
            id=a.id,
            model=names[a.model_id],
            version=versions[a.version_id],
            kind=a.kind,
            severity=a.severity,  # type: ignore[arg-type]
            status=a.status,  # type: ignore[arg-type]
            fingerprint=a.fingerprint,
            metric=a.metric,
            feature=a.feature,  # type: ignore[arg-type]
            segment=a.segment,
            first_seen=a.first_seen,
            last_seen=a.last_seen,
            occurrences=a.occurrences,
            evidence=a.evidence,
            history=history[a.id],
            link=emails.alert_link(settings.dashboard_url, a.id),
            breaching_since=a.breaching_since,
            breaching_since_source="onset" if a.episode_onset is not None else "window",
            incident_id=a.incident_id,
            incident_role=a.incident_role,  # type: ignore[arg-type]
            incident_reason=a.incident_reason,
            aliases=[_linked(m) for m in linked[a.id] if m.incident_role == "alias"],
            linked_evidence=[_linked(m) for m in linked[a.id] if m.incident_role != "alias"],
        )
        for a in alerts
    ]


def _linked(alert: Alert) -> LinkedAlertOut:
    return LinkedAlertOut(
        id=alert.id,
        kind=alert.kind,
        metric=alert.metric,
        feature=alert.feature,
        segment=alert.segment,
        severity=alert.severity,  # type: ignore[arg-type]
        status=alert.status,  # type: ignore[arg-type]
        reason=alert.incident_reason or "",
        first_seen=alert.first_seen,
        last_seen=alert.last_seen,
        breaching_since=alert.breaching_since,
        evidence=alert.evidence,
    )


# ---------------------------------------------------------------------------- the outbox, for people


def list_notifications(
    *, session: Session, actor: Actor, status: str | None = None, alert_id: int | None = None, limit: int = 100
) -> list[NotificationOut]:
    """Outbox rows, newest first, with every delivery attempt (dead letters: status='dead')."""
    authorize(actor, Permission.MODELS_READ)
    query = select(Notification)
    if status:
        query = query.where(Notification.status == status)
    if alert_id is not None:
        query = query.where(Notification.alert_id == alert_id)
    rows = session.execute(query.order_by(Notification.id.desc()).limit(limit)).scalars().all()
    attempts: dict[int, list[AttemptOut]] = {row.id: [] for row in rows}
    if rows:
        for attempt in session.execute(
            select(NotificationAttempt)
            .where(NotificationAttempt.notification_id.in_(list(attempts)))
            .order_by(NotificationAttempt.number)
        ).scalars():
            attempts[attempt.notification_id].append(AttemptOut.model_validate(attempt, from_attributes=True))
    return [
        NotificationOut(
            id=row.id,
            alert_id=row.alert_id,
            channel=row.channel,
            category=row.category,
            recipient=row.recipient,
            subject=row.payload.get("subject"),
            message_id=row.message_id,
            status=row.status,  # type: ignore[arg-type]
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            created_at=row.created_at,
            sent_at=row.sent_at,
            attempt_log=attempts[row.id],
        )
        for row in rows
    ]


def requeue(*, session: Session, actor: Actor, notification_id: int, now: datetime | None = None) -> None:
    """Give a dead letter a new round of attempts (after fixing the mail server or recipients); audited."""
    authorize(actor, Permission.ALERTS_ACT)
    row = session.execute(
        select(Notification).where(Notification.id == notification_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"notification {notification_id} does not exist")
    if row.status != "dead":
        raise Conflict(f"notification {notification_id} is {row.status}; only dead letters can be requeued")
    if not row.recipient:
        raise Conflict("this notification has no recipient; set alert_recipients and wait for the next alert")
    row.status, row.next_attempt_at, row.attempts = "pending", now or utcnow(), 0
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="notification.requeue",
        entity="notification",
        entity_id=row.id,
        before={"status": "dead", "last_error": row.last_error},
        after={"status": "pending"},
    )
