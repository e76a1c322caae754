"""Models, immutable versions, the deployment history and change requests with their signatures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from monitor.db import Base, JSONType, UTCDateTime, utcnow

TASKS = ("binary", "multiclass", "regression", "segmentation")
CHANGE_KINDS = ("rollback", "promotion")
# pending -> approved (quorum) -> executed, in one transaction; or pending -> rejected | expired.
CHANGE_STATUSES = ("pending", "approved", "rejected", "expired", "executed")
DECISIONS = ("approve", "reject")


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(16), default="binary")
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part: Mapped[str | None] = mapped_column(String(64))
    intended_use: Mapped[str] = mapped_column(Text, default="")
    alert_recipients: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(back_populates="model", lazy="raise")


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    artifact_uri: Mapped[str] = mapped_column(Text)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    training_data: Mapped[str] = mapped_column(Text, default="")
    validated_populations: Mapped[list[str]] = mapped_column(JSONType, default=list)
    targets: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    decision_threshold: Mapped[float] = mapped_column(Float, default=0.5)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    model: Mapped[Model] = relationship(back_populates="versions", lazy="raise")


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    # Set when a change request (rollback/promotion) caused this deployment.
    change_request_id: Mapped[int | None] = mapped_column(ForeignKey("change_requests.id"), index=True)


class ChangeRequest(Base):
    """A request to change a model's active version, decided by signed approvals."""

    __tablename__ = "change_requests"
    __table_args__ = (
        # One open request per model: the service says so first with a reason; the index keeps
        # the rule under concurrent requests.
        Index(
            "uq_change_requests_pending_model",
            "model_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_change_requests_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # The version active when the request was made: what the signers saw being replaced.
    from_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    target_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    reason: Mapped[str] = mapped_column(Text)
    # The alert that prompted the request; the alerts table arrives later, hence no FK yet.
    alert_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Copied from the policy at request time: editing the policy does not move the goalposts
    # of a request already under review.
    approvals_required: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When it was approved, rejected or expired; executed_at when the deployment switched.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    executed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Signature(Base):
    """An electronic signature on a change request (21 CFR 11.50, 11.70)."""

    __tablename__ = "change_request_signatures"
    __table_args__ = (UniqueConstraint("change_request_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_request_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    # The signer's name as printed at signing time (a later rename does not rewrite it).
    printed_name: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(16))
    meaning: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # SHA-256 of the request's content when signed: binds the signature to what was signed.
    request_hash: Mapped[str] = mapped_column(String(64))


class DeploymentNotification(Base):
    """Outbox row: tell the deployment system that a change request switched the version."""

    __tablename__ = "deployment_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
