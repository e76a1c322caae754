"""create_app(): the FastAPI application with its routers, error handlers and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor import __version__
from monitor.alerts.router import router as alerts_router
from monitor.audit.router import router as audit_router
from monitor.auth.router import router as users_router
from monitor.checks.router import router as checks_router
from monitor.config import Settings, get_settings
from monitor.db import get_database
from monitor.errors import MonitorError
from monitor.ingest.group_commit import GroupCommit
from monitor.ingest.router import router as ingest_router
from monitor.observability import RequestGuardMiddleware, RequestMetricsMiddleware
from monitor.reference.router import router as reference_router
from monitor.registry.router import change_requests_router
from monitor.registry.router import router as registry_router

log = logging.getLogger("radmon")

# Sync routes run in anyio's worker threads (40 by default). An ingest request waits in its
# thread for its group's commit, so at 200 requests/s a one-second stall of the database holds
# about 200 threads; with fewer, later requests (health probes included) queue behind them.
WORKER_THREADS = 200


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details}}


def _field_path(loc: tuple[object, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MonitorError)
    async def monitor_error(_request: Request, exc: MonitorError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": _field_path(tuple(e["loc"])), "reason": e["msg"]} for e in exc.errors()]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        return JSONResponse(error_body("invalid", message, details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(error_body("internal", "internal error; see the server log"), status_code=500)


def _probe_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"], include_in_schema=True)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        """Readiness: the database answers."""
        try:
            with get_database().engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # the probe reports any failure rather than raising it
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus text format."""
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, WORKER_THREADS)
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API application (the dashboard is mounted beside it by `radmon serve`)."""
    settings = settings or get_settings()
    app = FastAPI(
        lifespan=_lifespan,
        title="radmon",
        version=__version__,
        description="Post-deployment monitoring for radiology ML models.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    _install_error_handlers(app)
    _probe_routes(app)
    api = APIRouter(prefix="/api/v1")
    # Ingest first: routes are matched in order, and ingest is the hot path (hundreds of requests/s).
    for router in (
        ingest_router,
        registry_router,
        change_requests_router,
        reference_router,
        checks_router,
        audit_router,
        alerts_router,
        users_router,
    ):
        api.include_router(router)
    app.include_router(api)
    app.add_middleware(RequestGuardMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestMetricsMiddleware)
    app.state.settings = settings
    # One per application: concurrent ingest requests share its transactions (group commit).
    app.state.ingest_commit = GroupCommit()
    return app
