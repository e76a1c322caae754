"""Adverse events: an incident classified as reportable, its deadlines per jurisdiction, signatures, reminders."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, UTCDateTime

SIGNATURE_ACTIONS = ("classified", "reported")
REMINDER_STATUSES = ("queued", "superseded")


class AdverseEvent(Base):
    """An incident (its primary alert) that qa classified as a reportable adverse event."""

    __tablename__ = "adverse_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One classification per incident: the unique key refuses a second one even from a racing request.
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    aware_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The facility's IANA time zone when classified: the deadlines' local days were counted in it.
    time_zone: Mapped[str] = mapped_column(String(64))
    remedial_action: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text)
    classified_by: Mapped[str] = mapped_column(String(64))
    classified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AdverseDeadline(Base):
    """One jurisdiction's report on an adverse event: when it is due, and when it was filed."""

    __tablename__ = "adverse_event_deadlines"
    __table_args__ = (UniqueConstraint("adverse_event_id", "jurisdiction"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    adverse_event_id: Mapped[int] = mapped_column(ForeignKey("adverse_events.id"), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(40))
    # As configured when classified (a later settings change does not move a running clock).
    name: Mapped[str] = mapped_column(String(200))
    regulation: Mapped[str] = mapped_column(String(200))
    days: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))  # work | calendar
    due_date: Mapped[date] = mapped_column(Date)  # the facility's local due day
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # its end, 23:59:59 local, in UTC
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it was recorded in radmon
    reported_on: Mapped[date | None] = mapped_column(Date)  # the date the report was filed
    reference: Mapped[str | None] = mapped_column(String(200))
    reported_by: Mapped[str | None] = mapped_column(String(64))


class AdverseSignature(Base):
    """An electronic signature on a classification or a report (21 CFR 11.50, 11.70)."""

    __tablename__ = "adverse_event_signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    adverse_event_id: Mapped[int] = mapped_column(ForeignKey("adverse_events.id"), index=True)
    deadline_id: Mapped[int | None] = mapped_column(ForeignKey("adverse_event_deadlines.id"))
    action: Mapped[str] = mapped_column(String(16))  # classified | reported
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # SHA-256 of what was signed (the classification or the report as shown), binding the signature to it.
    content_hash: Mapped[str] = mapped_column(String(64))


class AdverseReminder(Base):
    """A reminder stage of a deadline, written with its outbox rows: the unique key keeps it to one."""

    __tablename__ = "adverse_event_reminders"
    __table_args__ = (UniqueConstraint("deadline_id", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deadline_id: Mapped[int] = mapped_column(ForeignKey("adverse_event_deadlines.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))  # "3wd", "1wd", "overdue"
    status: Mapped[str] = mapped_column(String(16))  # queued | superseded (a later stage went instead)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    group_key: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
