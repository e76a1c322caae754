"""Synthetic head-CT traffic for the drift tests, and bulk inserts that bypass the API."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert
from sqlalchemy.orm import Session

from monitor.ingest.models import Inference, Outcome
from monitor.registry.models import ModelVersion

POLICY: dict[str, Any] = {
    "features": [
        {"name": "age", "type": "numeric"},
        {"name": "kvp", "type": "numeric"},
        {"name": "noise_sd", "type": "numeric"},
        {"name": "mean_hu", "type": "numeric"},
        {"name": "manufacturer", "type": "categorical"},
        {"name": "patient_sex", "type": "categorical"},
    ],
    "segments": ["site", "manufacturer", "patient_sex"],
    "min_window_count": 100,
}
NUMERIC = ("age", "kvp", "noise_sd", "mean_hu")
CATEGORICAL = ("manufacturer", "patient_sex")
MANUFACTURERS = ["GE", "Siemens", "Philips", "Canon"]


def frame(
    n: int,
    *,
    seed: int,
    shift: float = 0.0,
    manufacturer_mix: list[float] | None = None,
    new_manufacturer: float = 0.0,
    missing_noise: float = 0.0,
    positive_rate: float = 0.1,
) -> pd.DataFrame:
    """Rows with features, score, prediction and label; `shift` moves age, noise and HU."""
    rng = np.random.default_rng(seed)
    mix = manufacturer_mix or [0.4, 0.3, 0.2, 0.1]
    label = (rng.random(n) < positive_rate).astype(int)
    score = np.clip(rng.beta(2, 8, n) + 0.45 * label + shift * 0.15, 0, 1)
    data = pd.DataFrame(
        {
            # Capped at 89: an older age identifies a patient and is refused (decision 0403).
            "age": np.minimum(np.round(rng.normal(62 + 8 * shift, 14, n), 1), 89.0),
            "kvp": rng.choice([100.0, 120.0, 140.0], n, p=[0.2, 0.7, 0.1]),
            "noise_sd": np.round(rng.gamma(4, 1.5, n) * (1 + 0.4 * shift), 2),
            "mean_hu": np.round(rng.normal(32 + 3 * shift, 4, n), 1),
            "manufacturer": rng.choice(MANUFACTURERS, n, p=mix),
            "patient_sex": rng.choice(["F", "M"], n),
            "site": rng.choice(["north", "south", "east", "west"], n),
            "score": score,
            "prediction": (score >= 0.5).astype(int),
            "label": label,
        }
    )
    if new_manufacturer:
        data.loc[rng.random(n) < new_manufacturer, "manufacturer"] = "United Imaging"
    if missing_noise:
        data["noise_sd"] = data["noise_sd"].where(rng.random(n) >= missing_noise)
    return data


def records(data: pd.DataFrame) -> list[dict[str, Any]]:
    """Inference-shaped reference records (features nested) with labels."""
    features = [c for c in data.columns if c not in ("score", "prediction", "label", "occurred_at")]
    out = []
    for row in data.to_dict("records"):
        out.append(
            {
                "features": {k: (None if isinstance(row[k], float) and np.isnan(row[k]) else row[k]) for k in features},
                "score": float(row["score"]),
                "prediction": int(row["prediction"]),
                "label": int(row["label"]),
            }
        )
    return out


_counter = iter(range(10**9))


def insert_inferences(
    session: Session,
    version: ModelVersion,
    data: pd.DataFrame,
    *,
    start: datetime,
    days: int,
    prefix: str | None = None,
) -> list[str]:
    """Store rows as inferences spread evenly over `days` days from `start` (bulk Core insert)."""
    prefix = prefix or f"t{next(_counter)}"
    n = len(data)
    offsets = np.linspace(0, days * 86400 - 1, n)
    rows, ids = [], []
    features = [c for c in data.columns if c not in ("score", "prediction", "label")]
    for i, row in enumerate(data.to_dict("records")):
        inference_id = f"{prefix}-{i}"
        ids.append(inference_id)
        rows.append(
            {
                "model_id": version.model_id,
                "version_id": version.id,
                "inference_id": inference_id,
                "study_key": f"study-{prefix}-{i}",
                "occurred_at": start + timedelta(seconds=float(offsets[i])),
                "received_at": datetime.now(UTC),
                "score": float(row["score"]),
                "prediction": int(row["prediction"]),
                "latency_ms": 100.0,
                "features": {k: (None if isinstance(row[k], float) and np.isnan(row[k]) else row[k]) for k in features},
                "content_hash": hashlib.sha256(inference_id.encode()).hexdigest(),
            }
        )
    session.execute(insert(Inference), rows)
    session.flush()
    return ids


def insert_outcomes(session: Session, model_id: int, labels: dict[str, int]) -> None:
    now = datetime.now(UTC)
    session.execute(
        insert(Outcome),
        [
            {
                "model_id": model_id,
                "inference_id": inference_id,
                "label": label,
                "source": "consensus_read",
                "confirmed_at": now,
                "received_at": now,
                "content_hash": hashlib.sha256(f"outcome-{inference_id}".encode()).hexdigest(),
            }
            for inference_id, label in labels.items()
        ],
    )
    session.flush()
