"""Request and response shapes for models, versions, deployments and change requests."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from monitor.checks.catalog import TARGET_METRICS

Slug = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="lowercase letters, digits and '-'")


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Slug
    display_name: str = Field(min_length=1, max_length=200)
    task: Literal["binary", "multiclass", "regression", "segmentation"] = "binary"
    modality: str | None = Field(default=None, max_length=16)
    body_part: str | None = Field(default=None, max_length=64)
    intended_use: str = ""
    alert_recipients: list[str] = Field(default_factory=list)

    @field_validator("alert_recipients")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or " " in address.strip():
                raise ValueError(f"'{address}' is not an email address")
        return [address.strip() for address in value]


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    display_name: str
    task: str
    modality: str | None
    body_part: str | None
    intended_use: str
    alert_recipients: list[str]
    created_by: str
    created_at: datetime
    active_version: str | None = None


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
    artifact_uri: str = Field(min_length=1)
    artifact_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the artifact, lowercase hex")
    training_data: str = ""
    validated_populations: list[str] = Field(default_factory=list)
    targets: dict[str, float] = Field(default_factory=dict, description="e.g. {'sensitivity': 0.9, 'auc': 0.85}")
    decision_threshold: float = Field(default=0.5, ge=0.0, le=1.0)

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, value: dict[str, float]) -> dict[str, float]:
        for metric, target in value.items():
            if metric not in TARGET_METRICS:
                raise ValueError(f"unknown target metric '{metric}' (known: {', '.join(TARGET_METRICS)})")
            if not 0.0 <= target <= 1.0:
                raise ValueError(f"target for {metric} must be between 0 and 1; got {target}")
        return value


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    artifact_uri: str
    artifact_sha256: str
    training_data: str
    validated_populations: list[str]
    targets: dict[str, float]
    decision_threshold: float
    created_by: str
    created_at: datetime


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="initial deployment", max_length=2000)


class DeploymentOut(BaseModel):
    model: str
    version: str
    activated_at: datetime
    activated_by: str
    reason: str
    change_request_id: int | None


class ActiveOut(BaseModel):
    model: str
    version: str
    activated_at: datetime
    decision_threshold: float
    artifact_sha256: str
    artifact_uri: str


class ChangeRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Slug
    kind: Literal["rollback", "promotion"] = Field(
        description="rollback: to a version older than the active one; promotion: to a newer one"
    )
    target_version: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=4000)
    alert_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="the alert that prompted the request, if any"
    )

    @field_validator("reason")
    @classmethod
    def _reason_says_something(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a change request needs a reason")
        return value.strip()


class DecisionCreate(BaseModel):
    """An electronic signature: the signer re-enters their password and states its meaning."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    meaning: str = Field(
        min_length=1, max_length=200, description="what the signature means, e.g. 'approved for clinical use'"
    )
    password: SecretStr = Field(description="the signer's own password, re-entered for this signature")
    comment: str = Field(default="", max_length=4000)

    @field_validator("meaning")
    @classmethod
    def _meaning_says_something(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("state what the signature means")
        return value.strip()


class SignatureOut(BaseModel):
    username: str
    printed_name: str
    decision: str
    meaning: str
    comment: str
    signed_at: datetime
    request_hash: str
    bound: bool = Field(description="the request's content still hashes to request_hash")
    manifestation: str = Field(description="the signature as displayed: printed name, UTC time and meaning")


class ChangeRequestOut(BaseModel):
    id: int
    model: str
    kind: str
    from_version: str
    target_version: str
    reason: str
    alert_id: int | None
    status: str
    approvals: int
    approvals_required: int
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    executed_at: datetime | None
    deployment_id: int | None
    request_hash: str
    signatures: list[SignatureOut]


class VersionMismatch(BaseModel):
    reported_version: str
    active_version: str | None = Field(description="null: no version was active when the inference occurred")
    count: int


class VersionMismatchReport(BaseModel):
    model: str
    since: datetime | None
    until: datetime | None
    inferences: int
    mismatched: int
    mismatches: list[VersionMismatch]
