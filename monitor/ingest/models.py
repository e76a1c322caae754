"""Inference and outcome records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, BigId, JSONType, UTCDateTime


class Inference(Base):
    __tablename__ = "inferences"
    __table_args__ = (
        UniqueConstraint("model_id", "inference_id"),
        Index("ix_inferences_window", "model_id", "version_id", "occurred_at"),
        Index("ix_inferences_study", "model_id", "study_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    inference_id: Mapped[str] = mapped_column(String(128))
    study_key: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[float] = mapped_column(Float)
    prediction: Mapped[int] = mapped_column(SmallInteger)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # SHA-256 of the record's canonical content: tells a retry from a conflicting reuse of an id.
    content_hash: Mapped[str] = mapped_column(String(64))


class Outcome(Base):
    __tablename__ = "outcomes"
    __table_args__ = (
        Index("ix_outcomes_inference", "model_id", "inference_id"),
        Index("ix_outcomes_study", "model_id", "study_key"),
        # An exact repeat of an outcome is the same fact: stored once, even under concurrent retries.
        UniqueConstraint("model_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    # Exactly one of inference_id / study_key is set; a study_key outcome applies to every
    # inference of the model on that study.
    inference_id: Mapped[str | None] = mapped_column(String(128))
    study_key: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(String(32))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    # When a later outcome for the same target replaced this one (history is kept).
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_by: Mapped[int | None] = mapped_column(BigInteger)
