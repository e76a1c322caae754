"""Alerts with their occurrences and transitions, the notification outbox and its delivery attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, BigId, JSONType, UTCDateTime

SEVERITIES = ("critical", "warning", "info")
INCIDENT_ROLES = ("alias", "evidence")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
ACTIVE = ("open", "acknowledged")
CHANNELS = ("email", "webhook")
# adverse_event: one critical alert, one email; digest: grouped warnings and rate-limited criticals;
# alert: a webhook event.
CATEGORIES = ("adverse_event", "digest", "alert")
# pending -> sending (claimed, lease) -> sent | pending (retry after backoff) | dead (dead letter).
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "dead")


class Alert(Base):
    """One row per fingerprint: a recurrence reopens the row rather than adding a new one."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_status_model_id", "status", "model_id"),
        Index("ix_alerts_model_id_version_id_kind", "model_id", "version_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # sha256 of (model, version, kind, metric, feature, segment); unique, so two check runners
    # raising the same condition at once cannot create two alerts.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    kind: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(64))
    feature: Mapped[str | None] = mapped_column(String(200))
    segment: Mapped[str | None] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    # Data time: the window_end of the first and latest windows in which the condition held.
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    # Consecutive clean windows after last_seen (auto-resolve counts these), and the newest one.
    clean_runs: Mapped[int] = mapped_column(Integer, default=0)
    last_clean_window: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A resolved alert reopens only for a window after this one (a recomputed old window does not).
    resolved_through: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Incidents (decision 0303): set on an alert that belongs to another alert's incident; that
    # primary alert notifies for all of them. Role: alias (same evidence) | evidence (related kind).
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    incident_role: Mapped[str | None] = mapped_column(String(16))
    incident_reason: Mapped[str | None] = mapped_column(String(500))
    # The current episode: its first window ("breaching since") and, when a sequential detector
    # estimated one, the change onset (then shown instead).
    episode_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    episode_onset: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def breaching_since(self) -> datetime:
        """Start of the current episode: the estimated onset when there is one, else its first window."""
        return self.episode_onset or self.episode_start or self.first_seen


class AlertOccurrence(Base):
    """One window in which the condition held (a recomputed window updates its row)."""

    __tablename__ = "alert_occurrences"
    __table_args__ = (UniqueConstraint("alert_id", "window_end"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int | None] = mapped_column(Integer)
    threshold: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str | None] = mapped_column(String(64))
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertTransition(Base):
    """The alert's history: who moved it where, when, and why (also in the audit trail)."""

    __tablename__ = "alert_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    # opened, acknowledged, resolved, auto_resolved, reopened, escalated
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")


class Notification(Base):
    """Outbox row: one message to one recipient, written in the transaction of its cause."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notifications_model_id_category_created_at", "model_id", "category", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    # The rows of one message to several recipients (or one digest) share a group key.
    group_key: Mapped[str] = mapped_column(String(120), index=True)
    recipient: Mapped[str] = mapped_column(Text)
    # Fixed when written: a resend after a crash carries the same id, so receivers can dedupe.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationAttempt(Base):
    """Every delivery attempt, including one interrupted by a crash (outcome 'interrupted')."""

    __tablename__ = "notification_attempts"
    __table_args__ = (UniqueConstraint("notification_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # sent | failed | interrupted
    error: Mapped[str | None] = mapped_column(Text)


class DigestItem(Base):
    """An alert event waiting for its model's next digest email (warnings, rate-limited criticals)."""

    __tablename__ = "alert_digest_items"
    __table_args__ = (Index("ix_alert_digest_items_digest_key_due_at", "digest_key", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))  # opened, reopened, escalated
    severity: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(16))  # warning | rate_limited
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the item went into a digest: the digest's notification group key.
    digest_key: Mapped[str | None] = mapped_column(String(120))
