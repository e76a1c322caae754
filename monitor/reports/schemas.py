"""Request and response shapes for surveillance reports and their signatures."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

MAX_PERIOD_DAYS = 400
# No radiology AI was monitored before this; an earlier date is a typing slip (and the PDF's recorded
# time, the period's end, must be after 1970 for the embedded fonts' timestamps).
EARLIEST_DAY = date(2000, 1, 1)


def month_period(value: str) -> tuple[date, date]:
    """'2026-11' -> (2026-11-01, 2026-11-30); ValueError with a readable reason otherwise."""
    try:
        year_text, month_text = value.strip().split("-")
        year, month = int(year_text), int(month_text)
        first = date(year, month, 1)
    except ValueError:
        raise ValueError(f"a period is a month written YYYY-MM, e.g. 2026-11; got {value!r}") from None
    return first, date(year, month, calendar.monthrange(year, month)[1])


class ReportCreate(BaseModel):
    """A period given as a month ('2026-11') or as first and last day (both inclusive, UTC days)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=64)
    period: str | None = Field(default=None, description="a month, YYYY-MM; or give period_start and period_end")
    period_start: date | None = None
    period_end: date | None = Field(default=None, description="last day of the period, inclusive")

    @model_validator(mode="after")
    def _one_period(self) -> ReportCreate:
        if self.period is not None:
            if self.period_start is not None or self.period_end is not None:
                raise ValueError("give either period (YYYY-MM) or period_start and period_end, not both")
            self.period_start, self.period_end = month_period(self.period)
        if self.period_start is None or self.period_end is None:
            raise ValueError("give period (YYYY-MM) or both period_start and period_end")
        if self.period_start < EARLIEST_DAY:
            raise ValueError(f"period_start {self.period_start} is before {EARLIEST_DAY}; check the year")
        if self.period_end < self.period_start:
            raise ValueError(f"period_end {self.period_end} is before period_start {self.period_start}")
        if (self.period_end - self.period_start).days + 1 > MAX_PERIOD_DAYS:
            raise ValueError(f"a report covers at most {MAX_PERIOD_DAYS} days; split the period")
        return self


class RevisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000, description="what the correction corrects")


class ReportSign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    meaning: Literal["reviewed", "approved"] = "reviewed"
    password: SecretStr = Field(min_length=1, max_length=1024, description="your password, checked again to sign")


class ReportSignatureOut(BaseModel):
    username: str
    printed_name: str
    role: str
    meaning: str
    signed_at: datetime
    signed_sha256: str
    pdf_sha256: str
    manifestation: str


class ReportOut(BaseModel):
    id: int
    model: str
    model_display_name: str
    period_start: date
    period_end: date
    revision: int
    supersedes_id: int | None
    supersedes_revision: int | None
    superseded_by_id: int | None
    reason: str
    status: str
    sha256: str
    draft_sha256: str
    pages: int
    size_bytes: int
    generated_at: datetime
    generated_by: str
    signed_at: datetime | None
    approval_required: bool
    awaiting: str | None = Field(description="the signature the report waits for: reviewed, approved, or none")
    signatures: list[ReportSignatureOut]
