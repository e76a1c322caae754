"""Alert and notification shapes: findings in, alerts and delivery reports out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["critical", "warning", "info"]
AlertStatus = Literal["open", "acknowledged", "resolved"]
NotificationStatus = Literal["pending", "sending", "sent", "dead"]


@dataclass(frozen=True)
class Finding:
    """One metric point as alerting sees it (DESIGN 5), whether read from a run or given directly."""

    model: str
    version: str
    kind: str
    metric: str
    status: str  # ok | warn | breach | insufficient_data
    window_end: datetime
    feature: str | None = None
    segment: str | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    threshold: float | None = None
    method: str | None = None
    estimated: bool = False
    run_id: int | None = None
    # The check's details: same_rows_as / overlaps (aliases), onset (an estimated change onset, ISO date).
    details: dict[str, Any] | None = field(default=None, compare=False, hash=False)


class AlertNote(BaseModel):
    """Body of acknowledge and resolve: what was done, in the reviewer's words."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000)

    @field_validator("note")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a note is required: say what was checked or done")
        if "\x00" in value:
            raise ValueError("a note must not contain NUL characters")
        return value.strip()


class TransitionOut(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    severity: str
    note: str


class LinkedAlertOut(BaseModel):
    """An alert that belongs to an incident: an alias (the same evidence under another name) or linked
    evidence (a related finding of another kind)."""

    id: int
    kind: str
    metric: str
    feature: str | None
    segment: str | None
    severity: Severity
    status: AlertStatus
    reason: str = Field(description="why it belongs to the incident")
    first_seen: datetime
    last_seen: datetime
    breaching_since: datetime
    evidence: dict[str, Any]


class AlertOut(BaseModel):
    id: int
    model: str
    version: str
    kind: str
    severity: Severity
    status: AlertStatus
    fingerprint: str
    metric: str
    feature: str | None
    segment: str | None
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    evidence: dict[str, Any]
    history: list[TransitionOut]
    link: str = Field(description="the alert in the dashboard")
    breaching_since: datetime = Field(
        description="start of the current continuous episode: its first window, or the change onset a "
        "sequential detector estimated (breaching_since_source); earlier episodes are in the history"
    )
    breaching_since_source: Literal["window", "onset"]
    incident_id: int | None = Field(description="set when this alert belongs to another alert's incident")
    incident_role: Literal["alias", "evidence"] | None
    incident_reason: str | None
    aliases: list[LinkedAlertOut] = Field(description="the same evidence under other names (segments)")
    linked_evidence: list[LinkedAlertOut] = Field(description="related findings of other kinds")


class OccurrenceOut(BaseModel):
    run_id: int | None
    window_end: datetime
    status: str
    severity: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    threshold: float | None
    method: str | None
    estimated: bool


class AttemptOut(BaseModel):
    number: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: str | None


class NotificationOut(BaseModel):
    id: int
    alert_id: int | None
    channel: str
    category: str
    recipient: str
    subject: str | None
    message_id: str
    status: NotificationStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    attempt_log: list[AttemptOut]


@dataclass
class DeliveryReport:
    """What one run of the delivery job did (the scheduler logs it)."""

    digests: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    files: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # channels skipped after a transport failure

    def as_dict(self) -> dict[str, Any]:
        return {
            "digests": self.digests,
            "sent": self.sent,
            "retrying": self.retrying,
            "dead": self.dead,
            "files": list(self.files),
            "stopped": list(self.stopped),
        }


@dataclass(frozen=True)
class TestEmailResult:
    """The outcome of `radmon alerts test-email`, worded for an operator."""

    ok: bool
    channel: str  # smtp | file
    detail: str
    message_id: str
