"""Request and response shapes for models, versions and deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Targets a version may declare; "max" metrics are better when lower.
TARGET_METRICS = {
    "sensitivity": "min",
    "specificity": "min",
    "ppv": "min",
    "npv": "min",
    "auc": "min",
    "f1": "min",
    "accuracy": "min",
    "brier": "max",
    "ece": "max",
}

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

