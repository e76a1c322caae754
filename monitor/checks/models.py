"""Monitoring policies (check runs and metric points join them in the drift work)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, JSONType, UTCDateTime


class PolicyRecord(Base):
    """The policy document per model, validated by checks.schemas.MonitoringPolicy."""

    __tablename__ = "monitoring_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), unique=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
