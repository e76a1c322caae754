"""The stored-XSS chain of issue 14 finding 1, as data: hostile feature values an ingest key can
post, and the steps that put them into a run's Evidently report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
from sqlalchemy.orm import Session

from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy
from monitor.reference import service as reference_service
from monitor.registry.models import ModelVersion
from tests.checks.data import POLICY, frame, insert_inferences, records
from tests.factories import auth

END = datetime(2026, 11, 20, tzinfo=UTC)
START = END - timedelta(days=7)
# Each sets a flag on the page if it runs: an event handler, a script element after closing the
# data block, a comment opener that would bend the parser, and an attribute break-out.
HOSTILE = [
    '<img src=x onerror="window.__radmonXss=(window.__radmonXss||0)+1">',
    "</script><script>window.__radmonXss=(window.__radmonXss||0)+1</script>",
    "<!--<script>window.__radmonXss=(window.__radmonXss||0)+1</script>",
    '"><svg onload="window.__radmonXss=(window.__radmonXss||0)+1">',
]


def prepare(session: Session, version: ModelVersion, *, reference_rows: int = 1200) -> None:
    """Policy, a reference and a week of ordinary traffic for the version. Above 1000 reference
    rows every feature gets a distance (no chi-square), so the report renders on older code too."""
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )
    reference_service.upload_records(
        session=session,
        actor=SYSTEM,
        model_name="ich-ct",
        version="2.1.0",
        records=records(frame(reference_rows, seed=1)),
    )
    insert_inferences(session, version, frame(700, seed=2), start=START, days=7)


def hostile_records() -> list[dict[str, Any]]:
    """Inference records whose manufacturer is one of the hostile values (20 of each)."""
    out = []
    for i in range(20 * len(HOSTILE)):
        out.append(
            {
                "model": "ich-ct",
                "version": "2.1.0",
                "inference_id": f"hostile-{i}",
                "occurred_at": (START + timedelta(hours=1 + i)).isoformat(),
                "score": float(np.clip(0.1 + 0.01 * (i % 50), 0, 1)),
                "prediction": 0,
                "features": {"manufacturer": HOSTILE[i % len(HOSTILE)], "age": 60.0, "kvp": 120.0},
            }
        )
    return out


def post_hostile(post: Any, ingest_key: str) -> httpx.Response:
    """POST the hostile records with the ingest key (`post` is a TestClient's or httpx's)."""
    return post("/api/v1/inferences", json={"records": hostile_records()}, headers=auth(ingest_key))


def insert_hostile(session: Session, version: ModelVersion) -> None:
    """The hostile rows stored directly, as if posted before an ingest gate refused them."""
    import pandas as pd

    rows = hostile_records()
    data = pd.DataFrame([{**r["features"], "score": r["score"], "prediction": r["prediction"]} for r in rows])
    insert_inferences(session, version, data, start=START, days=7, prefix="hostile-direct")


def bind_ingest(client: Any, session: Session) -> None:
    """Ingest's group commit in the test's session (as tests/ingest/conftest.py's client does)."""
    from contextlib import nullcontext

    from monitor.ingest.group_commit import GroupCommit, ingest_commit

    def group_session() -> Any:
        session.commit()
        return nullcontext(session)

    committer = GroupCommit(group_session)
    client.app.dependency_overrides[ingest_commit] = lambda: committer
