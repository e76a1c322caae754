"""create_dashboard(): the Dash app (shell, navigation, sign-in); mount_dashboard() puts it under /dashboard/."""

from __future__ import annotations

import sys
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from a2wsgi import WSGIMiddleware
from dash import Dash, html
from dash.development.base_component import Component
from fastapi import FastAPI
from flask import Flask, Response, has_request_context, jsonify
from sqlalchemy import exc as sa_exc

from dashboard import auth
from dashboard.components.widgets import navbar
from monitor.config import Settings
from monitor.db import RETRY_AFTER_SECONDS, database_unavailable

PACKAGE_DIR = Path(__file__).resolve().parent
PAGES_FOLDER = PACKAGE_DIR / "pages"
ASSETS_FOLDER = PACKAGE_DIR / "assets"
MOUNT_PATH = "/dashboard"


def create_dashboard(*, settings: Settings) -> Dash:
    """The Dash app, served by its own Flask server whose routes are relative to the mount point."""
    server = Flask("dashboard")
    app = Dash(
        "dashboard",
        server=server,
        use_pages=True,
        pages_folder=str(PAGES_FOLDER),
        assets_folder=str(ASSETS_FOLDER),
        # The browser asks for /dashboard/...; the mount hands Flask the rest of the path.
        requests_pathname_prefix=auth.PREFIX,
        routes_pathname_prefix="/",
        title="radmon",
        update_title=None,
        # Page layouts need the signed-in actor, so Dash must not call them all at start-up
        # to build a validation layout; callbacks name only ids of their own page.
        suppress_callback_exceptions=True,
        serve_locally=True,
        include_pages_meta=False,
        csrf_token_name=auth.CSRF_COOKIE,
        csrf_header_name=auth.CSRF_HEADER,
        enable_mcp=False,
        compress=False,
    )
    auth.install(server, settings=settings)
    for error in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.PendingRollbackError, sa_exc.DBAPIError):
        server.register_error_handler(error, _database_error)
    app.layout = shell
    _register_page_callbacks(app)
    _install_content_security_policy(app)
    return app


def shell() -> Component:
    """Navbar and the page container; built per request so the navbar shows who is signed in."""
    signed_in = has_request_context()
    return html.Div(
        [
            navbar(auth.optional_actor() if signed_in else None, csrf_token=auth.csrf_token() if signed_in else ""),
            dbc.Container(dash.page_container, fluid="xxl", className="py-4", id="shell-content"),
        ]
    )


def _register_page_callbacks(app: Dash) -> None:
    # Callbacks are bound to this app (not dash.callback's process-wide list), so several
    # dashboards in one process, as in tests, each get their own.
    for module_name in list(dash.page_registry):
        module = sys.modules.get(module_name)
        register = getattr(module, "register_callbacks", None)
        if callable(register):
            register(app)


def mount_dashboard(app: FastAPI, *, settings: Settings) -> None:
    """Serve the dashboard at /dashboard/ inside the FastAPI app (roles `all` and `dashboard`)."""
    dashboard = create_dashboard(settings=settings)
    # Starlette's own WSGIMiddleware is deprecated in Starlette 1.x; a2wsgi is its named successor.
    app.mount(MOUNT_PATH, WSGIMiddleware(dashboard.server), name="dashboard")  # type: ignore[arg-type]


def _database_error(exc: Exception) -> Response:
    """A lost database connection is a retryable 503 here too (as on the API), not a 500."""
    if not database_unavailable(exc):
        raise exc
    response = jsonify(
        {"error": {"code": "unavailable", "message": "the database connection was lost; retry", "details": None}}
    )
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def content_security_policy(script_hashes: list[str]) -> str:
    """The dashboard's policy: scripts only from radmon's own bundles plus Dash's inline renderer
    start-up (by hash), no plugins, no framing, requests only to this origin. Inline styles stay
    allowed: React and Plotly set style attributes, and a style cannot run code."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' " + " ".join(script_hashes),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _install_content_security_policy(app: Dash) -> None:
    # Dash hashes its inline scripts (the renderer start-up and each clientside callback); pages
    # register theirs when Dash sets itself up on the first request, so the policy is computed
    # from the scripts the app holds when it answers, and recomputed only when they change.
    cached: dict[int, str] = {}

    def add_policy(response: Response) -> Response:
        hashes = list(app.csp_hashes())
        if len(hashes) not in cached:
            cached.clear()
            cached[len(hashes)] = content_security_policy(hashes)
        # setdefault: a response with a policy of its own (the sandboxed Evidently report) keeps it.
        response.headers.setdefault("Content-Security-Policy", cached[len(hashes)])
        return response

    app.server.after_request(add_policy)
