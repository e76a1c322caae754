"""The notification outbox: rows written in the alert's own transaction, and digests built from waiting items.

Nothing here talks to a mail server. A committed alert event always has its notification rows
(or digest items) committed with it; `monitor.alerts.delivery` sends them later.
"""

from __future__ import annotations

import html
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.alerts import emails, incidents
from monitor.alerts.models import Alert, DigestItem, Notification
from monitor.audit import service as audit_service
from monitor.auth.actors import SYSTEM
from monitor.checks.catalog import kind_explanation, kind_label
from monitor.checks.policy import policy_for
from monitor.checks.schemas import MonitoringPolicy
from monitor.config import Settings
from monitor.registry.models import Model, ModelVersion

# Events that raise an alert (and so notify people); the others only reach the webhook.
RAISING_EVENTS = ("opened", "reopened", "escalated")
RATE_WINDOW = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def next_boundary(now: datetime, hours: int) -> datetime:
    """The next multiple of `hours` since the epoch (UTC): digests go out on a fixed clock."""
    period = hours * 3600
    elapsed = (now - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=(math.floor(elapsed / period) + 1) * period)


def recipients_for(*, model: Model, policy: MonitoringPolicy) -> list[str]:
    """The policy's recipients, else the model's (DESIGN 4)."""
    return list(policy.alert_recipients or model.alert_recipients or [])


def target_of(alert: Alert, version: ModelVersion) -> float | None:
    threshold = alert.evidence.get("threshold")
    if threshold is not None:
        return float(threshold)
    target = (version.targets or {}).get(alert.metric)
    return None if target is None else float(target)


def member_view(member: Alert, settings: Settings) -> dict[str, Any]:
    """An alias or linked evidence of an incident, as the incident's email names it."""
    return {
        "id": member.id,
        "role": member.incident_role,
        "reason": member.incident_reason or "",
        "kind": member.kind,
        "kind_label": kind_label(member.kind).lower(),
        "metric": member.metric,
        "feature": member.feature,
        "segment": member.segment,
        "segment_label": member.segment or "whole population",
        "severity": member.severity,
        "status": member.status,
        "figure": emails.figure_with_interval(member.evidence),
        "link": emails.alert_link(settings.dashboard_url, member.id),
    }


def alert_view(
    *,
    alert: Alert,
    model: Model,
    version: ModelVersion,
    settings: Settings,
    event: str = "",
    members: Sequence[Alert] = (),
    window_days: int = 7,
) -> dict[str, Any]:
    """Everything an email or webhook says about an alert (an incident: with its members), as plain values."""
    evidence = dict(alert.evidence)
    target = target_of(alert, version)
    window_end = evidence.get("window_end") or alert.last_seen.isoformat()
    views = [member_view(member, settings) for member in members]
    return {
        "id": alert.id,
        "event": event,
        "model": model.name,
        "model_display_name": model.display_name,
        "version": version.version,
        "kind": alert.kind,
        "kind_label": kind_label(alert.kind).lower(),
        "kind_explanation": kind_explanation(alert.kind),
        "severity": alert.severity,
        "status": alert.status,
        "fingerprint": alert.fingerprint,
        "metric": alert.metric,
        "feature": alert.feature,
        "segment": alert.segment,
        "segment_label": alert.segment or "whole population (all sites and subgroups)",
        "headline": emails.headline(
            kind=alert.kind,
            metric=alert.metric,
            feature=alert.feature,
            segment=alert.segment,
            value=evidence.get("value"),
            threshold=target,
            estimated=bool(evidence.get("estimated")),
        ),
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "breaching_since": alert.breaching_since,
        "breaching_since_source": "onset" if alert.episode_onset is not None else "window",
        "window_start": emails.window_start(window_end, window_days),
        "window_end": datetime.fromisoformat(window_end) if isinstance(window_end, str) else window_end,
        "window_days": window_days,
        "measured": emails.plain_measurement(
            kind=alert.kind,
            metric=alert.metric,
            feature=alert.feature,
            segment=alert.segment,
            evidence=evidence,
            target=target,
            window_days=window_days,
        ),
        "occurrences": alert.occurrences,
        "evidence": evidence,
        "target": target,
        "evidence_summary": emails.evidence_summary(evidence, alert.metric, target),
        "link": emails.alert_link(settings.dashboard_url, alert.id),
        "aliases": [v for v in views if v["role"] == "alias"],
        "linked_evidence": [v for v in views if v["role"] != "alias"],
    }


def _jsonable_view(view: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "model",
        "version",
        "kind",
        "severity",
        "status",
        "fingerprint",
        "metric",
        "feature",
        "segment",
        "occurrences",
        "evidence",
        "target",
        "headline",
        "link",
    )
    body = {key: view[key] for key in keys}
    for key in ("first_seen", "last_seen", "breaching_since"):
        body[key] = view[key].isoformat()
    body["aliases"] = [{k: v for k, v in m.items() if k != "kind_label"} for m in view["aliases"]]
    body["linked_evidence"] = [{k: v for k, v in m.items() if k != "kind_label"} for m in view["linked_evidence"]]
    return body


def _add(
    session: Session,
    *,
    channel: str,
    category: str,
    group_key: str,
    recipient: str,
    payload: dict[str, Any],
    now: datetime,
    settings: Settings,
    alert_id: int | None,
    model_id: int | None,
) -> Notification:
    notification = Notification(
        alert_id=alert_id,
        model_id=model_id,
        channel=channel,
        category=category,
        group_key=group_key,
        recipient=recipient,
        message_id=emails.new_message_id(sender=settings.smtp_from, tag=f"radmon.{category}"),
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(notification)
    return notification


def enqueue_email(
    session: Session,
    *,
    content: dict[str, str],
    category: str,
    group_key: str,
    recipients: list[str],
    now: datetime,
    settings: Settings,
    alert_id: int | None,
    model_id: int | None,
) -> list[Notification]:
    """One row per recipient; without recipients a dead-letter row says so (never a silent nothing)."""
    payload = {**content, "date": now.isoformat()}
    rows = [
        _add(
            session,
            channel="email",
            category=category,
            group_key=group_key,
            recipient=address,
            payload=payload,
            now=now,
            settings=settings,
            alert_id=alert_id,
            model_id=model_id,
        )
        for address in recipients
    ]
    if not rows:
        row = _add(
            session,
            channel="email",
            category=category,
            group_key=group_key,
            recipient="",
            payload=payload,
            now=now,
            settings=settings,
            alert_id=alert_id,
            model_id=model_id,
        )
        row.status = "dead"
        row.last_error = "no recipients: set alert_recipients in the model's monitoring policy or on the model"
        rows.append(row)
        session.flush()
        audit_service.record(
            session=session,
            actor=SYSTEM,
            action="notification.failed",
            entity="notification",
            entity_id=row.id,
            after={"category": category, "alert_id": alert_id, "group_key": group_key},
            reason=row.last_error,
        )
    session.flush()
    return rows


def _critical_emails_in_window(session: Session, model_id: int, now: datetime) -> int:
    """Adverse-event emails (counted per alert event, not per recipient) the model sent in the last hour."""
    return session.execute(
        select(func.count(func.distinct(Notification.group_key))).where(
            Notification.model_id == model_id,
            Notification.category == "adverse_event",
            Notification.created_at > now - RATE_WINDOW,
            Notification.created_at <= now,
        )
    ).scalar_one()


def _fold(session: Session, *, alert: Alert, event: str, reason: str, due_at: datetime, now: datetime) -> DigestItem:
    item = DigestItem(
        model_id=alert.model_id,
        alert_id=alert.id,
        event=event,
        severity=alert.severity,
        reason=reason,
        created_at=now,
        due_at=due_at,
    )
    session.add(item)
    session.flush()
    return item


def on_event(
    session: Session,
    *,
    alert: Alert,
    model: Model,
    version: ModelVersion,
    event: str,
    policy: MonitoringPolicy,
    now: datetime,
    settings: Settings,
) -> None:
    """Queue what an alert event sends: critical email (or a digest item past the rate limit),
    warning digest item, webhook event. Info alerts notify nobody (the dashboard lists them)."""
    view = alert_view(
        alert=alert,
        model=model,
        version=version,
        settings=settings,
        event=event,
        members=incidents.members_of(session, [alert.id])[alert.id],
        window_days=policy.window_days,
    )
    if settings.webhook_url and alert.severity in ("critical", "warning"):
        _add(
            session,
            channel="webhook",
            category="alert",
            group_key=f"alert-{alert.id}-{event}-{uuid.uuid4().hex[:8]}",
            recipient=settings.webhook_url,
            payload={"event": f"alert.{event}", "alert": _jsonable_view(view)},
            now=now,
            settings=settings,
            alert_id=alert.id,
            model_id=model.id,
        )
        session.flush()
    if event not in RAISING_EVENTS:
        return
    if alert.severity == "critical":
        if _critical_emails_in_window(session, model.id, now) < policy.critical_emails_per_hour:
            enqueue_email(
                session,
                content=emails.render_adverse_event(view),
                category="adverse_event",
                group_key=f"alert-{alert.id}-{event}-{uuid.uuid4().hex[:8]}",
                recipients=recipients_for(model=model, policy=policy),
                now=now,
                settings=settings,
                alert_id=alert.id,
                model_id=model.id,
            )
        else:
            # Folded, never dropped: the digest at the next full hour carries it.
            _fold(session, alert=alert, event=event, reason="rate_limited", due_at=next_boundary(now, 1), now=now)
    elif alert.severity == "warning":
        _fold(
            session, alert=alert, event=event, reason="warning", due_at=next_boundary(now, policy.digest_hours), now=now
        )


def build_due_digests(*, session: Session, now: datetime, settings: Settings) -> int:
    """Turn each model's waiting items into one digest email once any of them is due; returns how many."""
    model_ids = (
        session.execute(
            select(DigestItem.model_id).where(DigestItem.digest_key.is_(None), DigestItem.due_at <= now).distinct()
        )
        .scalars()
        .all()
    )
    built = 0
    for model_id in sorted(model_ids):
        # SKIP LOCKED: a second scheduler building the same digest at the same moment finds nothing.
        items = (
            session.execute(
                select(DigestItem)
                .where(DigestItem.model_id == model_id, DigestItem.digest_key.is_(None))
                .order_by(DigestItem.id)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        if items and any(item.due_at <= now for item in items):
            _build_digest(session, model_id=model_id, items=list(items), now=now, settings=settings)
            built += 1
    return built


def _build_digest(
    session: Session, *, model_id: int, items: list[DigestItem], now: datetime, settings: Settings
) -> None:
    model = session.get(Model, model_id)
    assert model is not None
    policy = policy_for(session=session, model_id=model_id)
    alerts = {
        a.id: a for a in session.execute(select(Alert).where(Alert.id.in_({i.alert_id for i in items}))).scalars()
    }
    versions = {
        v.id: v
        for v in session.execute(
            select(ModelVersion).where(ModelVersion.id.in_({a.version_id for a in alerts.values()}))
        ).scalars()
    }
    latest: dict[int, DigestItem] = {}
    folded: set[int] = set()
    for item in items:  # one line per alert: its latest event
        latest[item.alert_id] = item
        if item.reason == "rate_limited":
            folded.add(item.alert_id)
    entries = []
    members = incidents.members_of(session, latest)
    for alert_id in sorted(latest, key=lambda a: (a not in folded, a)):
        alert = alerts[alert_id]
        if alert.incident_id is not None:
            continue  # joined an incident after it was queued: the incident's own line speaks for it
        view = alert_view(
            alert=alert,
            model=model,
            version=versions[alert.version_id],
            settings=settings,
            event=latest[alert_id].event,
            members=members[alert_id],
            window_days=policy.window_days,
        )
        view["folded_critical"] = alert_id in folded
        entries.append(view)
    key = f"digest-{model.name}-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    if not entries:  # every item's alert joined an incident meanwhile: nothing to send on its own
        for item in items:
            item.digest_key = f"{key}-merged"
        session.flush()
        return
    content = emails.render_digest(
        model={"name": model.name, "display_name": model.display_name},
        entries=entries,
        period_hours=policy.digest_hours,
    )
    enqueue_email(
        session,
        content=content,
        category="digest",
        group_key=key,
        recipients=recipients_for(model=model, policy=policy),
        now=now,
        settings=settings,
        alert_id=None,
        model_id=model.id,
    )
    for item in items:
        item.digest_key = key
    session.flush()


def _audit_anchor_email(anchor: dict[str, Any], problem: str | None) -> dict[str, str]:
    """Plain text and escaped HTML: the head to keep, or the break that stopped the anchoring."""
    if problem:
        subject = "[radmon CRITICAL] audit trail verification failed"
        lines = [f"The daily verification of the audit trail failed: {problem}", "Nothing was anchored."]
    else:
        subject = f"[radmon] audit trail anchor: event {anchor['seq']}"
        lines = [
            "The audit trail's head, for your records (keep this email):",
            *(f"{name}: {anchor[name]}" for name in ("anchored_at", "seq", "hash", "key_id", "keyed_from_seq")),
            "`radmon audit verify` compares the trail with the anchor file; if that file is lost or in doubt,",
            f"compare the hash of event {anchor['seq']} in `radmon audit export` with the one above.",
        ]
    text = "\n".join(lines) + "\n"
    return {"subject": subject, "text": text, "html": f"<pre>{html.escape(text)}</pre>"}


def enqueue_audit_anchor(
    session: Session, *, anchor: dict[str, Any], problem: str | None, now: datetime, settings: Settings
) -> str:
    """The audit chain's head (or a failed verification) to every model's alert recipients and the
    webhook, copies the database owner cannot reach (decision 0205); says where it goes."""
    recipients = sorted(
        {
            address
            for model in session.execute(select(Model).order_by(Model.id)).scalars()
            for address in recipients_for(model=model, policy=policy_for(session=session, model_id=model.id))
        }
    )
    key = f"audit-anchor-{anchor.get('seq', 0)}-{uuid.uuid4().hex[:8]}"
    if settings.webhook_url:
        _add(
            session,
            channel="webhook",
            category="audit_anchor",
            group_key=key,
            recipient=settings.webhook_url,
            payload={
                "event": "audit.verify_failed" if problem else "audit.anchor",
                "anchor": anchor,
                "problem": problem,
            },
            now=now,
            settings=settings,
            alert_id=None,
            model_id=None,
        )
        session.flush()
    if recipients:
        enqueue_email(
            session,
            content=_audit_anchor_email(anchor, problem),
            category="audit_anchor",
            group_key=key,
            recipients=recipients,
            now=now,
            settings=settings,
            alert_id=None,
            model_id=None,
        )
    places = ([f"{len(recipients)} alert recipients"] if recipients else []) + (
        ["the webhook"] if settings.webhook_url else []
    )
    return (
        "sent to " + " and ".join(places)
        if places
        else "no alert recipients or webhook configured: only the file has it"
    )
