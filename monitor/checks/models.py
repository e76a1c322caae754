"""Monitoring policies, daily profiles, check runs, their reports and metric points."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, BigId, JSONType, UTCDateTime, utcnow

RUN_STATUSES = ("completed", "failed", "insufficient_data")
METRIC_STATUSES = ("ok", "warn", "breach", "insufficient_data")


class PolicyRecord(Base):
    """The policy document per model, validated by checks.schemas.MonitoringPolicy."""

    __tablename__ = "monitoring_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), unique=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class DailyProfile(Base):
    """Histograms of one UTC day of a version's inferences on one reference set's bins.

    row_count and max_inference_pk describe exactly the rows profiled; a later row count that
    differs (late records, even ones committed out of id order; retention) marks the day stale."""

    __tablename__ = "daily_profiles"
    __table_args__ = (UniqueConstraint("model_id", "version_id", "reference_set_id", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    reference_set_id: Mapped[int] = mapped_column(ForeignKey("reference_sets.id"))
    day: Mapped[date] = mapped_column(Date)
    spec: Mapped[str] = mapped_column(String(16))
    row_count: Mapped[int] = mapped_column(Integer)
    max_inference_pk: Mapped[int] = mapped_column(BigInteger)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)


class CheckRun(Base):
    """One evaluation of one kind for one model version and window; re-runs supersede."""

    __tablename__ = "check_runs"
    __table_args__ = (
        Index("ix_check_runs_model_kind_window", "model_id", "kind", "window_end"),
        # One current run per (model, version, kind, window): a re-run supersedes, never overwrites.
        Index(
            "uq_check_runs_current",
            "model_id",
            "version_id",
            "kind",
            "window_start",
            "window_end",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
            sqlite_where=text("superseded_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    kind: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    reference_set_id: Mapped[int | None] = mapped_column(ForeignKey("reference_sets.id"))
    triggered_by: Mapped[str] = mapped_column(String(64))
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_by: Mapped[int | None] = mapped_column(Integer)


class CheckReport(Base):
    """The Evidently HTML drill-down of a run, gzip-compressed, rendered on first request."""

    __tablename__ = "check_reports"

    run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id"), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(64), default="text/html")
    encoding: Mapped[str] = mapped_column(String(16), default="gzip")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    window_rows: Mapped[int] = mapped_column(Integer)
    reference_rows: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MetricPoint(Base):
    """One figure of a run; model, kind and window_end are copied from the run for series reads."""

    __tablename__ = "metric_points"
    __table_args__ = (
        Index("ix_metric_points_series", "model_id", "metric", "window_end"),
        # The dashboard's series: one kind's metric for one segment (NULL: overall) over time.
        Index("ix_metric_points_kind_series", "model_id", "kind", "metric", "segment", "window_end"),
        Index("ix_metric_points_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    kind: Mapped[str] = mapped_column(String(32))
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    metric: Mapped[str] = mapped_column(String(64))
    feature: Mapped[str | None] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int | None] = mapped_column(Integer)
    threshold: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
