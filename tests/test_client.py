"""RadmonClient: batching, index re-basing, retries and errors (mock transport), then for real."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from monitor.client import RadmonClient, RadmonError
from monitor.db import Database
from tests.live_server import LiveServer, needs_ingest, seed_ingest

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, **options: float) -> tuple[RadmonClient, list[float]]:
    """A client on a mock transport whose backoff sleeps are recorded instead of slept."""
    transport = httpx.MockTransport(handler)
    client = RadmonClient("http://radmon.test", "rmk_test", transport=transport, **options)  # type: ignore[arg-type]
    sleeps: list[float] = []
    client._sleep = sleeps.append
    return client, sleeps


def records(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    occurred = datetime(2026, 11, 2, 8, 14, 5, tzinfo=UTC)
    return [
        {
            "model": "ich-ct",
            "version": "2.1.0",
            "inference_id": f"inf-{i}",
            "occurred_at": occurred,
            "score": 0.5,
            "prediction": 0,
            "features": {"kvp": 120, "site": "north"},
        }
        for i in range(start, start + n)
    ]


def ingest_answer(
    body: dict[str, Any], *, duplicate: Collection[str] = (), reject: Collection[str] = ()
) -> httpx.Response:
    """What the server answers: every record accepted unless its id is in duplicate/reject."""
    duplicates, rejected = [], []
    for index, record in enumerate(body["records"]):
        if record["inference_id"] in duplicate:
            duplicates.append({"index": index, "inference_id": record["inference_id"]})
        elif record["inference_id"] in reject:
            rejected.append({"index": index, "inference_id": record["inference_id"], "field": "score", "reason": "bad"})
    accepted = len(body["records"]) - len(duplicates) - len(rejected)
    return httpx.Response(200, json={"accepted": accepted, "duplicates": duplicates, "rejected": rejected})


def test_batches_are_split_and_indexes_rebased_to_the_callers_list() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/inferences"
        assert request.headers["Authorization"] == "Bearer rmk_test"
        body = json.loads(request.content)
        sizes.append(len(body["records"]))
        return ingest_answer(body, duplicate={"inf-3", "inf-7"}, reject={"inf-5", "inf-9"})

    client, _ = make_client(handler)
    acknowledged: list[int] = []
    answer = client.log_inferences(records(10), batch_size=4, on_batch=lambda offset, _a: acknowledged.append(offset))

    assert sizes == [4, 4, 2]
    assert acknowledged == [0, 4, 8]
    assert answer["accepted"] == 6
    assert answer["delivered"] == 8
    assert answer["duplicates"] == [{"index": 3, "inference_id": "inf-3"}, {"index": 7, "inference_id": "inf-7"}]
    rejected = [(r["index"], r["inference_id"], r["field"]) for r in answer["rejected"]]
    assert rejected == [(5, "inf-5", "score"), (9, "inf-9", "score")]


def test_features_the_server_dropped_are_reported_with_rebased_indexes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        dropped = [
            {"index": i, "inference_id": r["inference_id"], "features": ["site"]}
            for i, r in enumerate(body["records"])
            if r["inference_id"] in ("inf-1", "inf-4")
        ]
        answer = {"accepted": len(body["records"]), "duplicates": [], "rejected": []}
        return httpx.Response(200, json={**answer, **({"dropped": dropped} if dropped else {})})

    client, _ = make_client(handler)

    answer = client.log_inferences(records(5), batch_size=3)

    assert answer["dropped"] == [
        {"index": 1, "inference_id": "inf-1", "features": ["site"]},
        {"index": 4, "inference_id": "inf-4", "features": ["site"]},
    ]


def test_outcomes_go_to_their_endpoint_and_datetimes_are_iso_8601() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/outcomes"
        seen.extend(json.loads(request.content)["records"])
        return httpx.Response(200, json={"accepted": 1, "duplicates": [], "rejected": []})

    client, _ = make_client(handler)
    confirmed = datetime(2026, 11, 20, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    outcome = {"model": "ich-ct", "inference_id": "inf-1", "label": 1, "source": "pathology", "confirmed_at": confirmed}
    client.log_outcomes([outcome])
    assert datetime.fromisoformat(seen[0]["confirmed_at"]) == confirmed  # type: ignore[arg-type]
    assert seen[0]["confirmed_at"] == "2026-11-20T09:30:00+01:00"


def test_retries_503_then_counts_the_committed_first_attempt_as_delivered() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        body = json.loads(request.content)
        if len(calls) == 1:
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "restarting"}})
        # The first attempt was committed before the 503 (e.g. from a proxy): all duplicates now.
        return ingest_answer(body, duplicate={r["inference_id"] for r in body["records"]})

    client, sleeps = make_client(handler, backoff=0.2)
    answer = client.log_inferences(records(3))
    assert len(calls) == 2 and len(sleeps) == 1
    assert 0.1 <= sleeps[0] <= 0.2
    assert answer["accepted"] == 0 and answer["delivered"] == 3 and answer["retries"] == 1


def test_retries_connection_errors_then_succeeds() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= 3:
            raise httpx.ConnectError("connection refused", request=request)
        return ingest_answer(json.loads(request.content))

    client, sleeps = make_client(handler, backoff=0.1)
    answer = client.log_inferences(records(5))
    assert answer["accepted"] == 5 and answer["retries"] == 3
    assert len(sleeps) == 3


def test_gives_up_after_max_retries_and_reports_what_was_delivered() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return ingest_answer(json.loads(request.content))
        raise httpx.ReadTimeout("timed out", request=request)

    client, sleeps = make_client(handler, max_retries=2)
    with pytest.raises(RadmonError) as failure:
        client.log_inferences(records(4), batch_size=2)
    assert len(calls) == 4 and len(sleeps) == 2  # one good batch, then 1 + 2 retries
    assert "ReadTimeout" in failure.value.message
    assert failure.value.partial is not None and failure.value.partial["accepted"] == 2


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (422, "invalid", "records.0.score: Input should be a valid number"),
        (401, "unauthorized", "invalid or revoked API key"),
    ],
)
def test_client_errors_are_never_retried_and_carry_the_servers_message(status: int, code: str, message: str) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json={"error": {"code": code, "message": message, "details": None}})

    client, sleeps = make_client(handler)
    with pytest.raises(RadmonError) as failure:
        client.log_inferences(records(2))
    assert calls == [1] and sleeps == []
    assert failure.value.status == status
    assert failure.value.code == code
    assert failure.value.message == message
    assert message in str(failure.value)


def test_413_splits_the_batch_until_it_fits() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if len(body["records"]) > 3:
            too_large = {"code": "too_large", "message": "request body exceeds 1024 bytes"}
            return httpx.Response(413, json={"error": too_large})
        return ingest_answer(body, reject={"inf-6"})

    client, sleeps = make_client(handler)
    answer = client.log_inferences(records(10))
    assert answer["accepted"] == 9 and sleeps == []
    assert [r["index"] for r in answer["rejected"]] == [6]


def test_backoff_grows_exponentially_with_jitter_and_stays_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    client, sleeps = make_client(handler, max_retries=12, backoff=0.5, max_backoff=4.0)
    with pytest.raises(RadmonError) as failure:
        client.active_version("ich-ct")
    assert failure.value.status == 502 and failure.value.message == "bad gateway"
    assert len(sleeps) == 12
    for attempt, slept in enumerate(sleeps):
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= slept <= ceiling
    assert max(sleeps) <= 4.0
    assert len(set(sleeps)) > 1  # jittered, not a fixed schedule


def test_retry_after_is_honoured_within_the_bound() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "120"}),
            httpx.Response(200, json={"version": "2.1.0"}),
        ]
    )
    client, sleeps = make_client(lambda _request: next(answers), backoff=0.1, max_backoff=5.0)
    assert client.active_version("ich-ct") == {"version": "2.1.0"}
    assert sleeps == [5.0]


def test_active_version_quotes_the_model_name() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.raw_path == b"/api/v1/models/ich%2Fct/active"
        return httpx.Response(200, json={"model": "ich/ct", "version": "1.0.0"})

    client, _ = make_client(handler)
    with client:
        assert client.active_version("ich/ct")["version"] == "1.0.0"


# -- against the real application ---------------------------------------------------------


def test_active_version_against_a_running_server(fresh_database: Database, tmp_path: Path) -> None:
    key = seed_ingest(fresh_database)
    with LiveServer(fresh_database.url, tmp_path) as server:
        with RadmonClient(server.url, key, backoff=0.05) as radmon:
            active = radmon.active_version("ich-ct")
            assert (active["model"], active["version"]) == ("ich-ct", "2.1.0")
            with pytest.raises(RadmonError) as missing:
                radmon.active_version("no-such-model")
            assert missing.value.status == 404 and "no-such-model" in missing.value.message
        with RadmonClient(server.url, "rmk_not-a-key") as stranger, pytest.raises(RadmonError) as refused:
            stranger.active_version("ich-ct")
        assert refused.value.status == 401 and "API key" in refused.value.message


@needs_ingest
def test_ingest_against_a_running_server(fresh_database: Database, tmp_path: Path) -> None:
    key = seed_ingest(fresh_database)
    with LiveServer(fresh_database.url, tmp_path) as server, RadmonClient(server.url, key, backoff=0.05) as radmon:
        sent = records(25)
        sent[7]["score"] = 7.5  # a binary model's score lies in [0, 1]
        first = radmon.log_inferences(sent, batch_size=10)
        assert first["accepted"] == 24
        assert [(r["index"], r["inference_id"]) for r in first["rejected"]] == [(7, "inf-7")]

        again = radmon.log_inferences(records(5, start=20) + records(5, start=25), batch_size=4)
        assert again["accepted"] == 5
        assert [d["index"] for d in again["duplicates"]] == [0, 1, 2, 3, 4]
        assert again["delivered"] == 10

    with fresh_database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM inferences")).scalar_one() == 29
