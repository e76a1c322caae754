"""Python client for inference services: send inferences and outcomes, read the active version.

    from datetime import UTC, datetime
    from monitor.client import RadmonClient, RadmonError

    with RadmonClient("https://radmon.hospital.example", api_key="rmk_...") as radmon:
        active = radmon.active_version("ich-ct")  # {"model": "ich-ct", "version": "2.1.0", ...}
        answer = radmon.log_inferences([
            {"model": "ich-ct", "version": active["version"], "inference_id": "7f3c0e...",
             "occurred_at": datetime.now(UTC), "study_key": "acc-3fa9...", "score": 0.87,
             "prediction": 1, "latency_ms": 412, "features": {"site": "north", "kvp": 120}},
        ])
        for problem in answer["rejected"]:
            print(problem["index"], problem["field"], problem["reason"])
        radmon.log_outcomes([{"model": "ich-ct", "inference_id": "7f3c0e...", "label": 1,
                              "source": "consensus_read", "confirmed_at": datetime.now(UTC)}])

Ingestion is idempotent by (model, inference_id), so the client retries a batch whose fate it
does not know (connection error, timeout, 5xx) with exponential backoff and jitter. When the
lost attempt had been committed, the retry answers those records as `duplicates`: they are
stored, which is why the merged answer also reports `delivered` (accepted + duplicates).
A 4xx is the caller's problem and is never retried: it raises RadmonError with the server's
message. Datetimes (aware ones, please: radmon stores UTC) are sent as ISO 8601.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson

from monitor import __version__

DEFAULT_BATCH_SIZE = 10_000
# Transport failures after which the request may or may not have reached the server.
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

BatchCallback = Callable[[int, dict[str, Any]], None]


class RadmonError(Exception):
    """The server refused a request (4xx), or it stayed unreachable after every retry."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
        partial: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details
        # For batched calls: what the batches before the failing one already delivered.
        self.partial = partial


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):  # date, time, pandas.Timestamp (orjson handles datetime itself)
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars of kinds orjson does not know
        return value.item()
    raise TypeError(f"cannot send a {type(value).__name__} to radmon: {value!r}")


def encode(payload: Any) -> bytes:
    """JSON bytes; datetimes as ISO 8601, numpy scalars and arrays as numbers."""
    return orjson.dumps(payload, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _empty_answer() -> dict[str, Any]:
    return {"accepted": 0, "duplicates": [], "rejected": [], "delivered": 0, "retries": 0}


def _rebased(items: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
    return [{**item, "index": item["index"] + offset} for item in items]


class RadmonClient:
    """A connection to one radmon server with one API key (thread-safe, reuses connections)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("max_retries, backoff and max_backoff must not be negative")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep: Callable[[float], None] = time.sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": f"radmon-client/{__version__}",
            },
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- public calls ---------------------------------------------------------------------

    def log_inferences(
        self,
        records: Sequence[dict[str, Any]],
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        on_batch: BatchCallback | None = None,
    ) -> dict[str, Any]:
        """Send inference records; the answer's indexes refer to positions in `records`.

        Returns {"accepted", "duplicates", "rejected", "delivered", "retries"}, and "dropped" when
        the server left undeclared features out of stored records. `on_batch(offset,
        answer)` is called after each acknowledged batch (its answer already re-based)."""
        return self._send_batches("/api/v1/inferences", records, batch_size, on_batch)

    def log_outcomes(
        self,
        records: Sequence[dict[str, Any]],
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        on_batch: BatchCallback | None = None,
    ) -> dict[str, Any]:
        """Send outcome records; same answer and batching as log_inferences."""
        return self._send_batches("/api/v1/outcomes", records, batch_size, on_batch)

    def active_version(self, model: str) -> dict[str, Any]:
        """The version the model should run now: {"model", "version", "decision_threshold", ...}."""
        answer, _ = self._request("GET", f"/api/v1/models/{quote(model, safe='')}/active")
        return answer

    # -- batching -------------------------------------------------------------------------

    def _send_batches(
        self, path: str, records: Sequence[dict[str, Any]], batch_size: int, on_batch: BatchCallback | None
    ) -> dict[str, Any]:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        merged = _empty_answer()
        for offset in range(0, len(records), batch_size):
            try:
                answer = self._send_batch(path, records[offset : offset + batch_size], offset)
            except RadmonError as exc:
                exc.partial = merged
                raise
            _merge(merged, answer)
            if on_batch is not None:
                on_batch(offset, answer)
        return merged

    def _send_batch(self, path: str, batch: Sequence[dict[str, Any]], offset: int) -> dict[str, Any]:
        try:
            body, retries = self._request("POST", path, content=encode({"records": list(batch)}))
        except RadmonError as exc:
            if exc.status != 413 or len(batch) < 2:
                raise
            # Too many bytes for the server's limit: halve until the pieces fit.
            half = len(batch) // 2
            answer = _empty_answer()
            _merge(answer, self._send_batch(path, batch[:half], offset))
            _merge(answer, self._send_batch(path, batch[half:], offset + half))
            return answer
        duplicates = _rebased(body.get("duplicates", []), offset)
        answer = {
            "accepted": body.get("accepted", 0),
            "duplicates": duplicates,
            "rejected": _rebased(body.get("rejected", []), offset),
            "delivered": body.get("accepted", 0) + len(duplicates),
            "retries": retries,
        }
        if body.get("dropped"):  # features the model's policy does not declare (decision 0403)
            answer["dropped"] = _rebased(body["dropped"], offset)
        return answer

    # -- one request, retried -------------------------------------------------------------

    def _request(self, method: str, path: str, *, content: bytes | None = None) -> tuple[Any, int]:
        """The decoded JSON answer and how many retries it took."""
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, content=content, headers=headers)
            except _RETRYABLE_ERRORS as exc:
                if attempt >= self.max_retries:
                    raise RadmonError(
                        f"{method} {path} failed after {attempt + 1} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                failure: httpx.Response | None = None
            else:
                if response.status_code < 400:
                    return (orjson.loads(response.content) if response.content else None), attempt
                if response.status_code < 500 or attempt >= self.max_retries:
                    raise _error_from(response)
                failure = response
            self._sleep(self._delay(attempt, failure))
            attempt += 1

    def _delay(self, attempt: int, failure: httpx.Response | None) -> float:
        """Exponential backoff with jitter, never beyond max_backoff; honours Retry-After."""
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        delay = random.uniform(ceiling / 2, ceiling)  # jitter spreads out clients that failed together
        retry_after = failure.headers.get("Retry-After", "") if failure is not None else ""
        if retry_after.isdigit():
            delay = max(delay, min(float(retry_after), self.max_backoff))
        return delay


def _merge(into: dict[str, Any], answer: dict[str, Any]) -> None:
    for key in ("accepted", "delivered", "retries"):
        into[key] += answer[key]
    into["duplicates"].extend(answer["duplicates"])
    into["rejected"].extend(answer["rejected"])
    if answer.get("dropped"):
        into.setdefault("dropped", []).extend(answer["dropped"])


def _error_from(response: httpx.Response) -> RadmonError:
    """The server's {"error": {"code", "message", "details"}} as an exception."""
    code = details = None
    try:
        error = response.json()["error"]
        message, code, details = error["message"], error.get("code"), error.get("details")
    except (ValueError, KeyError, TypeError):
        message = response.text[:500] or response.reason_phrase
    return RadmonError(message, status=response.status_code, code=code, details=details)
