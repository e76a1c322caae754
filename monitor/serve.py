"""Server roles: build the ASGI app (API, dashboard) or the scheduler, prepare the schema, run."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
import time
from enum import StrEnum
from types import ModuleType
from typing import TYPE_CHECKING

import uvicorn
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import text

from monitor import __version__, migrate
from monitor.config import Settings
from monitor.db import Database, get_database, set_database
from monitor.errors import ConfigurationError, MonitorError
from monitor.observability import configure_logging

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger("radmon.serve")


class Role(StrEnum):
    ALL = "all"
    API = "api"
    SCHEDULER = "scheduler"
    DASHBOARD = "dashboard"


class RoleUnavailable(MonitorError):
    """The requested role is not part of this build."""

    status_code = 503
    code = "unavailable"
    exit_code = 2


def schema_heads(database: Database) -> tuple[str | None, set[str]]:
    """The database's current revision and the revisions this radmon expects (the heads)."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config(database.engine))
    return migrate.current(database.engine), set(scripts.get_heads())


def require_schema_at_head(database: Database) -> None:
    """Refuse to run against a schema older (or newer) than the code's migrations."""
    current, heads = schema_heads(database)
    if current in heads:
        return
    found = f"at revision {current}" if current else "empty (no radmon tables)"
    raise ConfigurationError(
        f"the database schema is {found} but this radmon needs {', '.join(sorted(heads))}: "
        "run `radmon db upgrade` first"
    )


def prepare_schema(database: Database) -> None:
    """The embedded SQLite database migrates itself; PostgreSQL is upgraded by the operator."""
    if database.dialect == "sqlite":
        migrate.upgrade(database.engine)
    else:
        require_schema_at_head(database)


def _mount_dashboard(app: FastAPI, settings: Settings) -> None:
    """Mount the Dash app at /dashboard/, or raise RoleUnavailable if this build has none."""
    try:
        from dashboard.app import mount_dashboard  # heavy (Dash, plotly): only for roles that serve it
    except ImportError as exc:
        raise RoleUnavailable(f"the dashboard is not available in this build ({exc})") from None
    mount_dashboard(app, settings=settings)


def _ops_app(settings: Settings) -> FastAPI:
    """A bare app with the liveness and readiness probes, for the dashboard-only role."""
    app = FastAPI(title="radmon dashboard", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        try:
            with get_database().engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # the probe reports any failure rather than raising it
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    app.state.settings = settings
    return app


def _root_redirect(app: FastAPI, target: str) -> None:
    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(target)


def _scheduler_module() -> ModuleType:
    """monitor.scheduler, or RoleUnavailable if this build has none."""
    try:  # APScheduler and every domain's jobs: only for the roles that run them
        return importlib.import_module("monitor.scheduler")
    except ImportError as exc:
        raise RoleUnavailable(f"the scheduler is not available in this build ({exc})") from None


def start_background_scheduler(database: Database) -> BaseScheduler | None:
    """The in-process scheduler of role `all` (and the demo); None, logged, if this build has none."""
    try:
        module = _scheduler_module()
    except RoleUnavailable as exc:
        log.warning("running without scheduled checks and alert delivery: %s", exc.message)
        return None
    scheduler = module.build_scheduler(database=database, blocking=False)
    module.start(scheduler)
    log.info("scheduler started in-process")
    return scheduler


def stop_scheduler(scheduler: BaseScheduler) -> None:
    """Stop taking jobs. Not wait=True: APScheduler holds its job-store lock while it waits, and
    a running job that asks the scheduler for its jobs (the check-job sync does) would deadlock.
    Running jobs still finish before the process exits (their threads are not daemons)."""
    if scheduler.running:
        scheduler.shutdown(wait=False)


def run_scheduler(database: Database) -> None:
    """Role `scheduler`: run the jobs in the foreground until SIGTERM or Ctrl-C."""
    module = _scheduler_module()
    scheduler = module.build_scheduler(database=database, blocking=True)

    def request_exit(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, request_exit)
    log.info("scheduler started", extra={"role": Role.SCHEDULER.value, "db": database.dialect})
    try:
        module.start(scheduler)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        stop_scheduler(scheduler)
    log.info("scheduler stopped")


def build_app(settings: Settings, role: Role | str) -> FastAPI:
    """The ASGI application a role serves: `all` = API + dashboard, `api`, or `dashboard`."""
    role = Role(role)
    if role is Role.SCHEDULER:
        raise ValueError("the scheduler role serves no HTTP application")
    if role is Role.DASHBOARD:
        app = _ops_app(settings)
        _mount_dashboard(app, settings)
        _root_redirect(app, "/dashboard/")
        return app
    from monitor.main import create_app  # imports every router; keep `radmon --help` fast

    app = create_app(settings)
    if role is Role.ALL:
        try:
            _mount_dashboard(app, settings)
            _root_redirect(app, "/dashboard/")
        except RoleUnavailable as exc:
            log.warning("serving the API without the dashboard: %s", exc.message)
            _root_redirect(app, "/api/docs")
    else:
        _root_redirect(app, "/api/docs")
    return app


def open_database(settings: Settings) -> Database:
    """The process-wide database for a server, with its schema ready."""
    database = Database(settings.database_url)
    set_database(database)
    prepare_schema(database)
    return database


def uvicorn_server(app: FastAPI, *, host: str, port: int) -> uvicorn.Server:
    # log_config=None: keep the JSON logging configure_logging installed.
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
    return uvicorn.Server(config)


def configure_server_logging(settings: Settings, level: str | None = None) -> None:
    """JSON (or text) logs; APScheduler's per-run chatter only from WARNING: the jobs log their own work."""
    configure_logging(fmt=settings.log_format, level=level or settings.log_level)
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))


def run(settings: Settings, *, role: Role | str, host: str, port: int) -> None:
    """Serve a role in the foreground until interrupted."""
    configure_server_logging(settings)
    role = Role(role)
    if role is Role.SCHEDULER:
        _scheduler_module()  # fail before touching the database
    database = open_database(settings)
    try:
        if role is Role.SCHEDULER:
            run_scheduler(database)
            return
        app = build_app(settings, role)
        scheduler = start_background_scheduler(database) if role is Role.ALL else None
        log.info("radmon serving", extra={"role": role.value, "host": host, "port": port, "db": database.dialect})
        try:
            uvicorn_server(app, host=host, port=port).run()
        finally:
            if scheduler is not None:
                stop_scheduler(scheduler)
    finally:
        database.dispose()


class BackgroundServer:
    """uvicorn in a daemon thread (the demo seeds through the real API, then keeps serving)."""

    def __init__(self, app: FastAPI, *, host: str, port: int) -> None:
        self.server = uvicorn_server(app, host=host, port=port)
        self.thread = threading.Thread(target=self.server.run, name="radmon-uvicorn", daemon=True)
        self.host = host

    def start(self, timeout: float = 30.0) -> int:
        """Start listening; returns the bound port (useful with port 0)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                port = self.server.config.port
                raise ConfigurationError(
                    f"could not start the server on {self.host}:{port} (is the port in use? try --port)"
                )
            time.sleep(0.05)
        return self.server.servers[0].sockets[0].getsockname()[1]

    def wait(self) -> None:
        """Block until the server stops; Ctrl-C or SIGTERM stop it gracefully."""

        def request_exit(_signum: int, _frame: object) -> None:
            self.server.should_exit = True

        # uvicorn installs its signal handlers only in the main thread, which this one is not.
        previous = {sig: signal.signal(sig, request_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self.thread.is_alive():
                self.thread.join(0.5)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
