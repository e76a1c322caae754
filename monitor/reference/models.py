"""Reference sets per model version (uploaded validation data or a production baseline) and their rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, BigId, JSONType, UTCDateTime, utcnow

REFERENCE_STATUSES = ("active", "superseded")


class ReferenceSet(Base):
    __tablename__ = "reference_sets"
    __table_args__ = (
        # At most one active reference per version; older ones stay, marked superseded.
        Index(
            "uq_reference_sets_active_version",
            "version_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index("ix_reference_sets_model_version", "model_id", "version_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    # upload: validation data sent by QA; baseline: copied from the version's own inferences.
    source: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(16))  # json, csv, parquet, baseline
    filename: Mapped[str | None] = mapped_column(String(255))
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    row_count: Mapped[int] = mapped_column(Integer)
    labelled_rows: Mapped[int] = mapped_column(Integer, default=0)
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    baseline_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    baseline_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Edges, categories and the reference's own histograms (monitor.checks.profiles), computed
    # at upload for the policy's features; `profile_spec` says for which feature list.
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    profile_spec: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_by: Mapped[int | None] = mapped_column(Integer)


class ReferenceRow(Base):
    """One reference record, shaped like an inference (features JSON) plus its label."""

    __tablename__ = "reference_rows"
    __table_args__ = (Index("ix_reference_rows_set", "reference_set_id", "row_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference_set_id: Mapped[int] = mapped_column(ForeignKey("reference_sets.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    row_number: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score: Mapped[float] = mapped_column(Float)
    prediction: Mapped[int] = mapped_column(SmallInteger)
    label: Mapped[int | None] = mapped_column(SmallInteger)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType)
