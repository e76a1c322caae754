"""Stored surveillance reports (one row per revision) and their electronic signatures (decision 0604)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, UTCDateTime

# draft: may be regenerated or deleted; reviewed: signed by qa, waits for the approver's signature
# (only when RADMON_REPORT_APPROVAL_REQUIRED); signed: complete. Reviewed and signed are immutable.
REPORT_STATUSES = ("draft", "reviewed", "signed")
MEANINGS = ("reviewed", "approved")


class SurveillanceReport(Base):
    """One revision of a model's report for a period, with the PDF exactly as it was filed."""

    __tablename__ = "surveillance_reports"
    __table_args__ = (
        UniqueConstraint(
            "model_id", "period_start", "period_end", "revision", name="uq_surveillance_reports_period_revision"
        ),
        Index("ix_surveillance_reports_model_id_period_end", "model_id", "period_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # inclusive, like the report says
    revision: Mapped[int] = mapped_column(Integer)
    # The signed revision this one corrects (None for revision 1).
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("surveillance_reports.id"))
    # Why a correction was made (empty for revision 1).
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    html: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    # SHA-256 of the PDF as stored now (with the signatures printed once signed) ...
    sha256: Mapped[str] = mapped_column(String(64))
    # ... and of the unsigned draft: the same stored data always gives this hash (decision 0600).
    draft_sha256: Mapped[str] = mapped_column(String(64))
    pages: Mapped[int] = mapped_column(Integer)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    generated_by: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReportSignature(Base):
    """An electronic signature on a report: who, when, what it means, and the PDF hash they signed."""

    __tablename__ = "surveillance_report_signatures"
    __table_args__ = (UniqueConstraint("report_id", "meaning"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("surveillance_reports.id", name="fk_surveillance_report_signatures_report_id"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    printed_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    meaning: Mapped[str] = mapped_column(String(16))  # reviewed | approved
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The PDF the signer was shown (before their own signature was printed on it) ...
    signed_sha256: Mapped[str] = mapped_column(String(64))
    # ... and the PDF with their signature printed, as stored after signing.
    pdf_sha256: Mapped[str] = mapped_column(String(64))
