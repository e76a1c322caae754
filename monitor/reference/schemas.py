"""Reference upload bodies and the reference set as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_JSON_RECORDS = 100_000


class ReferenceRecords(BaseModel):
    """Inference-shaped records plus "label" (the features dict holds the policy's features)."""

    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_JSON_RECORDS)


class BaselineRequest(BaseModel):
    """Build the reference from the version's own inferences in the policy's baseline period."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["baseline"]


class ReferenceSetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    model: str
    version: str
    source: str
    format: str
    filename: str | None
    content_sha256: str | None
    status: str
    row_count: int
    labelled_rows: int
    columns: list[str]
    baseline_start: datetime | None
    baseline_end: datetime | None
    created_at: datetime
    created_by: str
    superseded_at: datetime | None
    superseded_by: int | None
