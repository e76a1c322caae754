"""kill -9 of the API in the middle of a large ingest: nothing acknowledged is lost, nothing stored twice."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from monitor.client import RadmonClient
from monitor.db import Database
from tests.live_server import LiveServer, needs_ingest, seed_ingest

pytestmark = [pytest.mark.slow, needs_ingest]

TOTAL = 50_000
BATCH = 1_000
KILL_AFTER_BATCHES = 10
RESENT = 500  # the caller re-sends its first records at the end: they must come back as duplicates
OUTAGE_SECONDS = 0.5


def inference_records(n: int, *, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    sites = ("north", "south", "east", "west")
    return [
        {
            "model": "ich-ct",
            "version": "2.1.0",
            "inference_id": f"crash-{i:06d}",
            "occurred_at": now - timedelta(seconds=i),
            "study_key": f"acc-{i:08d}",
            "score": round(rng.random(), 4),
            "prediction": rng.randint(0, 1),
            "latency_ms": rng.randint(100, 900),
            "features": {
                "site": sites[i % 4],
                "kvp": rng.choice((100, 120, 140)),
                "mean_hu": round(rng.gauss(30, 5), 2),
            },
        }
        for i in range(n)
    ]


class Ingest(threading.Thread):
    """Sends the records through a retrying client, noting which batches the server acknowledged."""

    def __init__(self, client: RadmonClient, records: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.records = records
        self.acknowledged: set[str] = set()
        self.batches_acknowledged = 0
        self.enough_acknowledged = threading.Event()
        self.answer: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def on_batch(self, offset: int, answer: dict[str, Any]) -> None:
        rejected = {problem["index"] for problem in answer["rejected"]}
        batch = self.records[offset : offset + BATCH]
        kept = (r["inference_id"] for i, r in enumerate(batch, start=offset) if i not in rejected)
        self.acknowledged.update(kept)
        self.batches_acknowledged += 1
        if self.batches_acknowledged >= KILL_AFTER_BATCHES:
            self.enough_acknowledged.set()

    def run(self) -> None:
        try:
            self.answer = self.client.log_inferences(self.records, batch_size=BATCH, on_batch=self.on_batch)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
        finally:
            self.enough_acknowledged.set()


def test_kill_9_mid_ingest_loses_nothing_acknowledged_and_stores_nothing_twice(
    fresh_database: Database, tmp_path: Path
) -> None:
    key = seed_ingest(fresh_database)
    unique = inference_records(TOTAL)
    sent = unique + unique[:RESENT]
    server = LiveServer(fresh_database.url, tmp_path)
    server.start()
    # About 50 s of retries: longer than a restart may take (LiveServer waits up to 30 s; importing
    # the app alone took 8 s at load 7 on the shared 2-core box, and a 20 s budget ran out at load 10).
    client = RadmonClient(server.url, key, timeout=30, max_retries=100, backoff=0.05, max_backoff=0.5)
    ingest = Ingest(client, sent)
    try:
        ingest.start()
        assert ingest.enough_acknowledged.wait(timeout=60), "no batch acknowledged within 60 s"
        assert ingest.error is None, ingest.error
        assert ingest.is_alive(), "the ingest finished before the server could be killed"
        time.sleep(random.uniform(0, 0.05))  # land anywhere in a batch: parsing, inserting, committing
        acknowledged_before_kill = ingest.batches_acknowledged
        server.kill()
        time.sleep(OUTAGE_SECONDS)
        server.start()
        ingest.join(timeout=120)
        assert not ingest.is_alive(), "the client did not finish within 120 s of the restart"
    finally:
        server.stop()
        client.close()

    assert ingest.error is None, f"{ingest.error}\n{server.log_tail()}"
    answer = ingest.answer
    assert answer is not None
    print(
        f"killed after {acknowledged_before_kill} acknowledged batches; {answer['retries']} retries; "
        f"{len(answer['duplicates']) - RESENT} records answered as duplicates of the killed attempt"
    )
    assert KILL_AFTER_BATCHES <= acknowledged_before_kill < len(sent) // BATCH
    assert answer["retries"] >= 1, "the kill was not noticed by the client"
    assert answer["rejected"] == []
    assert answer["delivered"] == len(sent)
    assert {d["index"] for d in answer["duplicates"]} >= set(range(TOTAL, TOTAL + RESENT))

    with fresh_database.engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM inferences")).scalar_one()
        doubled = connection.execute(
            text("SELECT model_id, inference_id FROM inferences GROUP BY model_id, inference_id HAVING count(*) > 1")
        ).all()
        stored_ids = set(connection.execute(text("SELECT inference_id FROM inferences")).scalars())
    assert stored == len({r["inference_id"] for r in sent}) == TOTAL
    assert doubled == []
    assert ingest.acknowledged <= stored_ids
    assert len(ingest.acknowledged) == TOTAL
