"""HTTP routes for inference and outcome batches."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["ingest"])
