"""create_app(): the FastAPI application with its routers, error handlers and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor import __version__
from monitor.adverse import jurisdictions as adverse_jurisdictions
from monitor.adverse.router import router as adverse_router
from monitor.alerts.router import router as alerts_router
from monitor.audit.router import router as audit_router
from monitor.auth.router import router as users_router
from monitor.checks.router import router as checks_router
from monitor.config import Settings, get_settings
from monitor.csp import inline_script_hashes
from monitor.db import RETRY_AFTER_SECONDS, database_unavailable, get_database
from monitor.errors import MonitorError
from monitor.ingest.group_commit import GroupCommit
from monitor.ingest.router import router as ingest_router
from monitor.observability import (
    RequestGuardMiddleware,
    RequestMetricsMiddleware,
    metrics_response,
    start_metrics_listener,
)
from monitor.reference.router import router as reference_router
from monitor.registry.router import change_requests_router
from monitor.registry.router import router as registry_router
from monitor.reports.router import router as reports_router

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
        # 503s (a group commit that failed with its connection) are retryable: say when.
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.status_code == 503 else None
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=headers
        )

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

    # Registered by class so that Starlette answers them without re-raising (the Exception
    # handler above runs in the outermost middleware, which re-raises after answering).
    @app.exception_handler(sa_exc.SQLAlchemyError)
    @app.exception_handler(ValueError)
    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, ValueError) and "NUL (0x00)" in str(exc):
            # psycopg2 refuses a NUL in any text parameter before sending it: the client's text
            # held one (the request guard catches them in paths and queries; bodies reach here).
            return JSONResponse(
                error_body("invalid", "text fields must not contain NUL (\\u0000) characters"), status_code=422
            )
        if database_unavailable(exc):
            log.warning("database unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
            return JSONResponse(
                error_body("unavailable", "the database connection was lost before the request completed; retry it"),
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return await unexpected(request, exc)


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
    def metrics(request: Request) -> Response:
        """Prometheus text format, for `Authorization: Bearer <RADMON_METRICS_TOKEN>` (else 401)."""
        settings: Settings = request.app.state.settings
        return metrics_response(authorization=request.headers.get("Authorization"), token=settings.metrics_token)


# Swagger UI's and ReDoc's scripts and styles, from the fastapi-offline package: the API docs
# render on a hospital network without internet access.
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS_URL = "/api/docs-assets"
OPENAPI_URL = "/api/openapi.json"


def docs_policy(page: str) -> str:
    """The docs pages' Content-Security-Policy: radmon's own assets, the page's inline start-up
    script by hash, ReDoc's search worker from a blob; nothing from elsewhere, no framing."""
    scripts = " ".join(["'self'", *inline_script_hashes(page)])
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _docs_routes(app: FastAPI) -> None:
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    swagger = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title="radmon API",
        swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},  # the online validator badge would call out
    )
    redoc = get_redoc_html(
        openapi_url=OPENAPI_URL,
        title="radmon API",
        redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    pages = {"/api/docs": swagger, "/api/redoc": redoc}
    for path, page in pages.items():
        body, policy = bytes(page.body), docs_policy(bytes(page.body).decode())

        def serve(body: bytes = body, policy: str = policy) -> HTMLResponse:
            return HTMLResponse(body, headers={"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff"})

        app.add_api_route(path, serve, methods=["GET"], include_in_schema=False)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, WORKER_THREADS)
    address = app.state.settings.metrics_address
    stop_metrics = start_metrics_listener(address) if address else None
    try:
        yield
    finally:
        if stop_metrics is not None:
            stop_metrics()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API application (the dashboard is mounted beside it by `radmon serve`)."""
    settings = settings or get_settings()
    adverse_jurisdictions.configured(settings)  # a bad RADMON_ADVERSE_JURISDICTIONS fails the start, not a request
    app = FastAPI(
        lifespan=_lifespan,
        title="radmon",
        version=__version__,
        description="Post-deployment monitoring for radiology ML models.",
        docs_url=None,  # served by _docs_routes from local assets
        redoc_url=None,
        openapi_url=OPENAPI_URL,
    )
    _install_error_handlers(app)
    _probe_routes(app)
    _docs_routes(app)
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
        reports_router,
        users_router,
        adverse_router,
    ):
        api.include_router(router)
    app.include_router(api)
    app.add_middleware(RequestGuardMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestMetricsMiddleware)
    app.state.settings = settings
    # One per application: concurrent ingest requests share its transactions (group commit).
    app.state.ingest_commit = GroupCommit()
    return app
