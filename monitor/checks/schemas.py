"""Monitoring policy: what is checked for a model, how often, and against which thresholds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.checks.catalog import CheckKind, Severity
from monitor.ingest import phi

DriftMethod = Literal["wasserstein", "jensenshannon", "psi", "ks", "chisquare"]
# Reference uploads and the drift profiles use these as columns of their own.
RESERVED_COLUMNS = ("score", "prediction", "label", "occurred_at")


class FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    type: Literal["numeric", "categorical"]
    drift_method: DriftMethod | None = Field(default=None, description="pin a method; default: chosen per column")
    drift_threshold: float | None = Field(
        default=None,
        gt=0,
        description="override the threshold: a distance for wasserstein/jensenshannon/psi, a p-value for ks/chisquare",
    )
    # The allow-list (decision 0403): what ingestion and reference uploads accept for the feature.
    min: float | None = Field(default=None, description="numeric: smallest plausible value (default -1e6)")
    max: float | None = Field(default=None, description="numeric: largest plausible value (default 1e6)")
    values: list[str] | None = Field(
        default=None, max_length=1000, description="categorical: the only values accepted (default: any short token)"
    )

    @model_validator(mode="after")
    def _applicable(self) -> FeatureSpec:
        if self.name in RESERVED_COLUMNS:
            raise ValueError(f"'{self.name}' names an inference field, not a feature")
        problem = phi.policy_name_problem(self.name, what="feature")
        if problem is not None:
            raise ValueError(problem)
        if self.type == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError(f"feature '{self.name}': min and max apply to numeric features")
        if self.type == "numeric" and self.values is not None:
            raise ValueError(f"feature '{self.name}': values (a vocabulary) apply to categorical features")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature '{self.name}': min must not exceed max")
        if self.values is not None:
            problem = phi.vocabulary_problem(self.values)
            if problem is not None:
                raise ValueError(f"feature '{self.name}': {problem}")
        if self.type == "numeric" and self.drift_method == "chisquare":
            raise ValueError(f"feature '{self.name}': chisquare applies to categorical features")
        if self.type == "categorical" and self.drift_method in ("wasserstein", "ks"):
            raise ValueError(f"feature '{self.name}': {self.drift_method} applies to numeric features")
        return self


class BaselinePeriod(BaseModel):
    """A production period used as the reference instead of uploaded validation data."""

    model_config = ConfigDict(extra="forbid")

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> BaselinePeriod:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("baseline start and end must include a timezone")
        if self.end <= self.start:
            raise ValueError("baseline end must be after its start")
        return self


class MonitoringPolicy(BaseModel):
    """Every field has a default, so an empty PUT body is a valid policy."""

    model_config = ConfigDict(extra="forbid")

    features: list[FeatureSpec] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    undeclared_features: Literal["drop", "reject"] = Field(
        default="drop",
        description="an inference feature the policy does not declare is dropped before storage and named in the "
        "answer (drop), or rejects its record (reject)",
    )
    intersections: list[list[str]] = Field(default_factory=list)
    window_days: int = Field(default=7, ge=1, le=365)
    schedule: str = Field(default="0 2 * * *", description="cron, UTC")
    min_window_count: int = Field(default=100, ge=1)
    min_positives: int = Field(default=30, ge=1)
    min_negatives: int = Field(default=30, ge=1)
    fdr_q: float = Field(default=0.05, gt=0, lt=1)
    drift_threshold: float = Field(default=0.1, gt=0)
    label_horizon_days: int = Field(
        default=60, ge=0, le=730, description="recompute windows this recent as labels arrive"
    )
    # The sequential detectors' false-alarm budget (docs/decisions/0503): split across all the model's
    # series (metrics x segments x kinds), so adding segments raises thresholds instead of alarms.
    false_criticals_per_year: float = Field(
        default=1.0,
        gt=0,
        le=365,
        description="false critical alarms the model may raise per year while nothing changed",
    )
    false_warnings_per_month: float = Field(
        default=1.0, gt=0, le=31, description="false warnings the model may raise per month while nothing changed"
    )
    baseline: BaselinePeriod | None = None
    approvals_required: int = Field(default=2, ge=1, le=10)
    change_request_ttl_hours: int = Field(default=72, ge=1, le=24 * 90)
    alert_recipients: list[str] = Field(default_factory=list)
    alert_severities: dict[CheckKind, Severity] = Field(
        default_factory=dict,
        description="severity of a breach per check kind; default critical for performance and subgroups, "
        "warning for drift and estimated performance",
    )
    auto_resolve_after: int = Field(
        default=3, ge=0, le=365, description="consecutive clean runs that resolve an alert; 0: never"
    )
    digest_hours: int = Field(
        default=24, ge=1, le=168, description="warnings are emailed as one digest per this period"
    )
    critical_emails_per_hour: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="beyond this, the model's critical alerts go into the next digest, never dropped",
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"'{value}' is not a 5-field cron expression: {exc}") from None
        return value

    @field_validator("alert_recipients")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or " " in address.strip():
                raise ValueError(f"'{address}' is not an email address")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MonitoringPolicy:
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"features listed twice: {', '.join(duplicated)}")
        if len(set(self.segments)) != len(self.segments):
            raise ValueError("segments must not repeat")
        for segment in self.segments:
            problem = phi.policy_name_problem(segment, what="segment")
            if problem is not None:
                raise ValueError(problem)
        for combo in self.intersections:
            if len(combo) < 2:
                raise ValueError(f"an intersection needs at least two attributes; got {combo}")
            unknown = [a for a in combo if a not in self.segments]
            if unknown:
                raise ValueError(f"intersection {combo} uses {unknown}, which are not in segments")
        return self

    def feature(self, name: str) -> FeatureSpec | None:
        return next((f for f in self.features if f.name == name), None)


class PolicyOut(MonitoringPolicy):
    model: str
    updated_at: datetime | None
    updated_by: str | None


# ---------------------------------------------------------------------------------------------
# Check runs and metric points


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=64)
    kinds: list[str] | None = Field(default=None, description="default: every implemented kind")
    window_end: datetime | None = Field(default=None, description="ISO 8601 with timezone; default: today 00:00 UTC")

    @field_validator("window_end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("window_end must include a timezone (e.g. 2026-11-26T00:00:00Z)")
        return value


class MetricPointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    feature: str | None
    segment: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    threshold: float | None
    method: str | None
    status: str
    estimated: bool
    details: dict[str, Any] | None = None


class CheckRunOut(BaseModel):
    id: int
    model: str
    version: str
    kind: str
    status: str
    window_start: datetime
    window_end: datetime
    started_at: datetime
    finished_at: datetime | None
    triggered_by: str
    reference_set_id: int | None
    superseded_at: datetime | None
    superseded_by: int | None
    error: str | None
    summary: dict[str, Any]
    metrics: list[MetricPointOut] | None = Field(
        default=None, description="omitted in lists; GET /checks/{id} has them"
    )


class SeriesPointOut(MetricPointOut):
    run_id: int
    version: str
    kind: str
    window_end: datetime


# ---------------------------------------------------------------------------------------------
# The subgroup table (GET /api/v1/models/{model}/subgroups)


class SubgroupMetricOut(BaseModel):
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    threshold: float | None = Field(description="the version's target, when it has one")
    method: str | None
    status: str
    p_target: float | None = Field(default=None, description="p-value of 'worse than the target' (doubled one-sided)")
    q_target: float | None = Field(
        default=None, description="Benjamini-Hochberg adjusted, across every test of the run"
    )
    p_rest: float | None = Field(default=None, description="p-value of 'worse than the rest of the population'")
    q_rest: float | None = None
    rest: dict[str, Any] | None = Field(
        default=None, description="the rest's figure, the difference and its Miettinen-Nurminen 95% interval"
    )
    same_rows_as: str | None = Field(
        default=None, description="a segment with exactly the same rows, tested once under that name"
    )
    first_signal: str | None = Field(default=None, description="CUSUM: first day the chart signalled in its lookback")
    estimated: dict[str, Any] | None = Field(
        default=None, description="the label-free estimate for the same window and segment"
    )


class SubgroupOut(BaseModel):
    segment: str
    attributes: list[str] | None = None
    rank: int | None = Field(description="1 = furthest below target")
    status: str
    shortfall: float | None = Field(description="largest gap below a target among the segment's judged metrics")
    worst_metric: str | None
    inferences: int | None = None
    label_coverage: float | None = None
    counts: dict[str, int] | None = None
    metrics: dict[str, SubgroupMetricOut]


class SubgroupTableOut(BaseModel):
    model: str
    version: str
    run_id: int
    status: str
    window_start: datetime
    window_end: datetime
    computed_at: datetime | None
    fdr_q: float | None
    tests: int | None = Field(description="size of the run's Benjamini-Hochberg family")
    targets: dict[str, float]
    breached_segments: list[str]
    segments: list[SubgroupOut]
