"""Request and response bodies of the adverse-event clock."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, field_validator


def _says_something(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"state {what}")
    return value.strip()


class ClassifyCreate(BaseModel):
    """Classify an incident as a reportable adverse event, signed with the classifier's password."""

    model_config = ConfigDict(extra="forbid")

    jurisdictions: list[str] = Field(min_length=1, max_length=20, description="codes, e.g. fda-user-facility")
    aware_at: AwareDatetime | None = Field(
        default=None, description="when the facility became aware (default: now); not in the future"
    )
    remedial_action: bool = Field(
        default=False, description="remedial action is needed to prevent an unreasonable risk (21 CFR 803.53)"
    )
    reason: str = Field(min_length=1, max_length=4000, description="why the incident is reportable")
    meaning: str = Field(default="classified as a reportable adverse event", min_length=1, max_length=200)
    password: SecretStr = Field(description="the signer's own password, re-entered for this signature")

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _says_something(value, "why the incident is reportable")

    @field_validator("meaning")
    @classmethod
    def _meaning(cls, value: str) -> str:
        return _says_something(value, "what the signature means")

    @field_validator("jurisdictions")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each jurisdiction once")
        return value


class ReportedCreate(BaseModel):
    """Record that the report to one jurisdiction was filed, signed."""

    model_config = ConfigDict(extra="forbid")

    reference: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^\s*[A-Za-z0-9][A-Za-z0-9._/:#-]*\s*$",
        description="the report number the recipient gave (one token: letters, digits, . _ / : # -)",
    )
    reported_on: date | None = Field(default=None, description="the date it was filed (default: today, local)")
    meaning: str = Field(default="report filed", min_length=1, max_length=200)
    password: SecretStr

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        return _says_something(value, "the report's reference number")

    @field_validator("meaning")
    @classmethod
    def _meaning(cls, value: str) -> str:
        return _says_something(value, "what the signature means")


class SignatureOut(BaseModel):
    action: str
    jurisdiction: str | None
    username: str
    printed_name: str
    meaning: str
    signed_at: datetime
    content_hash: str
    manifestation: str = Field(description="printed name, date and time, meaning (21 CFR 11.50)")


class DeadlineOut(BaseModel):
    jurisdiction: str
    name: str
    regulation: str
    days: int
    unit: str
    due_date: date
    due_at: datetime
    due_local: str = Field(description="the due time in the facility's time zone, e.g. 'Mon 14 Dec 2026 23:59 CET'")
    status: str = Field(description="open | overdue | reported | reported_late")
    countdown: str
    days_left: int
    reported_at: datetime | None
    reported_on: date | None
    reference: str | None
    reported_by: str | None


class AdverseEventOut(BaseModel):
    id: int
    alert_id: int
    model: str
    headline: str
    aware_at: datetime
    time_zone: str
    remedial_action: bool
    reason: str
    classified_by: str
    classified_at: datetime
    deadlines: list[DeadlineOut]
    signatures: list[SignatureOut]
    link: str


class JurisdictionOut(BaseModel):
    code: str
    name: str
    regulation: str
    days: int
    unit: str
    remedial_days: int | None
    remedial_unit: str | None
    remedial_regulation: str
    country: str
