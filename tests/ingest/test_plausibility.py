"""Plausibility bounds (decision 0403): instants, latency, integers, booleans, invisible characters."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.config import Settings
from monitor.ingest.models import Inference
from monitor.registry.models import Model
from tests.factories import auth
from tests.ingest.conftest import inference, outcome

URL = "/api/v1/inferences"


def _rejected(client: TestClient, key: str, record: dict[str, Any], url: str = URL) -> dict[str, Any]:
    answer = client.post(url, json={"records": [record]}, headers=auth(key))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 0, body
    [rejection] = body["rejected"]
    return rejection  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"occurred_at": "0001-01-01T00:00:00Z"}, "occurred_at", "more than 3650 days in the past"),
        ({"occurred_at": "1970-01-01T00:00:00Z"}, "occurred_at", "more than 3650 days in the past"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", "more than a day in the future"),
        ({"latency_ms": 1e300}, "latency_ms", "at most 8.64e+07"),
        ({"latency_ms": 10**30}, "latency_ms", "beyond 2^53"),
        ({"prediction": True}, "prediction", "booleans are not numbers"),
        ({"score": True}, "score", "booleans are not numbers"),
        ({"score": 123456789012345678901234567890}, "score", "beyond 2^53"),
        ({"score": 1e300}, "score", "between -1e12 and 1e12"),
        ({"features": {"kvp": 123456789012345678901234567890}}, "features.kvp", "beyond 2^53"),
        ({"features": {"kvp": [1, 2**60]}}, "features.kvp", "beyond 2^53"),
        ({"inference_id": "inf-\u200b00001"}, "inference_id", "printable"),
        ({"inference_id": "inf-\u202e00001"}, "inference_id", "printable"),
        ({"inference_id": "inf\u3164-00001"}, "inference_id", "invisible"),
        ({"inference_id": "inf-\u034f00001"}, "inference_id", "invisible"),
        ({"model": "ich-ct\u200d"}, "model", "printable"),
        ({"version": "2.1.0\ufe0f"}, "version", "invisible"),
        ({"study_key": "ACC\u200b00000001"}, "study_key", "invisible"),
        ({"study_key": "ACC\u2067001"}, "study_key", "invisible"),
    ],
)
def test_implausible_records_are_rejected_with_a_reason(
    client: TestClient, ich: Model, ingest_key: str, changes: dict[str, Any], field: str, says: str
) -> None:
    rejection = _rejected(client, ingest_key, inference(0, **changes))

    assert rejection["field"] == field and says in rejection["reason"], rejection


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"confirmed_at": "1970-01-01T00:00:00Z"}, "confirmed_at", "in the past"),
        ({"label": True}, "label", "booleans are not numbers"),
        ({"inference_id": "inf-\u200b00000"}, "inference_id", "printable"),
    ],
)
def test_implausible_outcomes_are_rejected(
    client: TestClient, ich: Model, ingest_key: str, changes: dict[str, Any], field: str, says: str
) -> None:
    rejection = _rejected(client, ingest_key, outcome(**changes), url="/api/v1/outcomes")

    assert rejection["field"] == field and says in rejection["reason"], rejection


def test_the_window_and_the_latency_bound_come_from_the_settings(
    client: TestClient, session: Session, settings: Settings, ich: Model, ingest_key: str
) -> None:
    settings.occurred_at_max_age_days = 60
    settings.max_latency_ms = 1000.0

    old = _rejected(client, ingest_key, inference(0, occurred_at="2026-09-01T00:00:00Z"))
    slow = _rejected(client, ingest_key, inference(1, latency_ms=1500))

    assert "more than 60 days in the past" in old["reason"]
    assert "RADMON_MAX_LATENCY_MS" in slow["reason"]
    assert session.execute(select(Inference.id)).first() is None


def test_plausible_records_still_pass(client: TestClient, ich: Model, ingest_key: str) -> None:
    record = inference(0, latency_ms=86_400_000, prediction=1, score=0.0, features={"kvp": 120, "site": "Å-site"})

    answer = client.post(URL, json={"records": [record]}, headers=auth(ingest_key)).json()

    assert answer["accepted"] == 1, answer
