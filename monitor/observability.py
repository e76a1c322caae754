"""Prometheus metrics, structured logs and the request middleware that feeds both."""

from __future__ import annotations

import hmac
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest, start_http_server
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("radmon_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "radmon_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECORDS = Counter("radmon_ingest_records_total", "Ingested records by outcome", ["kind", "result"])

log = logging.getLogger("radmon")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(*, fmt: str, level: str) -> None:
    """Route radmon's and uvicorn's logs through one handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request once


def metrics_response(*, authorization: str | None, token: str) -> Response:
    """Prometheus text for a scraper that sends `Authorization: Bearer <RADMON_METRICS_TOKEN>`;
    401 for anyone else, and for everyone when no token is configured (then the metrics are on
    RADMON_METRICS_ADDRESS, or nowhere)."""
    scheme, _, sent = (authorization or "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    message = (
        "send the metrics token: Authorization: Bearer <RADMON_METRICS_TOKEN>"
        if token
        else "metrics need RADMON_METRICS_TOKEN (bearer), or are served on RADMON_METRICS_ADDRESS"
    )
    return JSONResponse(
        {"error": {"code": "unauthorized", "message": message, "details": None}},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="radmon-metrics"'},
    )


def start_metrics_listener(address: str) -> Callable[[], None] | None:
    """Serve /metrics on `host:port` (no token: the address is the access control); returns a
    stop function, or None when the address is taken (another worker of this host serves it)."""
    host, _, port = address.rpartition(":")
    try:
        server, thread = start_http_server(int(port), addr=host.strip("[]"))
    except OSError as exc:
        log.warning("metrics listener not started", extra={"address": address, "error": str(exc)})
        return None
    log.info("metrics listener started", extra={"address": address})

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop


class RequestMetricsMiddleware:
    """Counts, times and logs every HTTP request (pure ASGI: no per-request task overhead)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], path, str(status)).inc()
            LATENCY.labels(scope["method"], path).observe(elapsed)
            state = scope.get("state") or {}
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "actor": state.get("actor"),
                },
            )


class RequestGuardMiddleware:
    """Answers 413 before reading a body larger than the limit (declared or streamed), and 422
    for a NUL character in the path or query string."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope):
            # PostgreSQL text cannot hold NUL: refuse it here, once, for every filter and path.
            await _refuse(send, 422, "invalid", "the path and query parameters must not contain NUL characters")
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _too_large(send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


def _has_nul(scope: Scope) -> bool:
    query = scope.get("query_string") or b""
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


async def _too_large(send: Send, max_bytes: int) -> None:
    await _refuse(send, 413, "too_large", f"request body exceeds {max_bytes} bytes")


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
