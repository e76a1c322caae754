"""Dashboard sign-in: the session cookie, CSRF defences, and the Actor behind every request.

Every request passes `_guard` before Dash sees it:
- unsafe methods must come from this site (Origin, else Referer, host check);
- Dash callbacks (POST /_dash-update-component) must also echo the session's CSRF token
  in the X-CSRFToken header (the renderer copies it from the readable radmon_csrf cookie);
- without a valid session, pages redirect to the login form and everything else answers 401.
The signed session cookie is HttpOnly and SameSite=Lax and carries a session token; the session
itself lives in the database (decision 0204): it ends at sign-out, on a password change, when
the user is disabled, after RADMON_SESSION_IDLE_MINUTES unused and 8 hours after sign-in.
Sign-in is throttled per account and per address by the auth service (429 with Retry-After).
Roles are enforced by the services (authorize) and re-checked by each action callback.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, current_app, g, jsonify, redirect, render_template_string, request, session
from werkzeug.wrappers import Response as WerkzeugResponse

from dashboard import data
from monitor.auth import service as auth_service
from monitor.auth.actors import Actor, Permission
from monitor.config import Settings
from monitor.errors import Forbidden, MonitorError, Unauthorized

PREFIX = "/dashboard/"
SESSION_COOKIE = "radmon_session"
SESSION_LIFETIME = auth_service.LoginLimits().session_lifetime
CSRF_COOKIE = "radmon_csrf"
CSRF_HEADER = "X-CSRFToken"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths (relative to the mount point) anyone may fetch: the login form and static bundles.
PUBLIC_PATHS = frozenset({"/login", "/_favicon.ico"})
PUBLIC_PREFIXES = ("/_dash-component-suites/", "/assets/")


def install(server: Flask, *, settings: Settings) -> None:
    """Configure the session cookie and add the guard, the login/logout routes and error pages."""
    # A key of its own: the session signature never shares bytes with pseudonyms or others.
    server.secret_key = hashlib.sha256(b"radmon-dashboard-session:" + settings.secret_key.encode()).hexdigest()
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_PATH=PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.dashboard_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    server.config["RADMON_TRUSTED_HOSTS"] = {urlsplit(settings.dashboard_url).netloc}
    server.config["RADMON_SETTINGS"] = settings
    server.before_request(_guard)
    server.after_request(_harden)
    server.add_url_rule("/login", "radmon_login", _login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "radmon_logout", _logout, methods=["POST"])
    server.register_error_handler(MonitorError, _monitor_error)


# -- the Actor of this request -------------------------------------------------------------------


def current_actor() -> Actor:
    """The signed-in actor (the guard has resolved it); Unauthorized outside a signed-in request."""
    actor = g.get("actor")
    if actor is None:
        raise Unauthorized("sign in to use the dashboard")
    return actor


def optional_actor() -> Actor | None:
    return g.get("actor")


def require(permission: Permission) -> Actor:
    """The signed-in actor if their role grants the permission, else Forbidden (HTTP 403).

    Action callbacks call this first: hiding a button is no protection against a forged request."""
    actor = current_actor()
    if not actor.can(permission):
        raise Forbidden(f"role '{actor.role}' may not {permission.value}", details={"user": actor.username})
    return actor


def settings() -> Settings:
    """The settings the dashboard was built with (webhook target, dashboard URL for alert links)."""
    return current_app.config["RADMON_SETTINGS"]


def csrf_token() -> str:
    return str(session.get("csrf", ""))


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


def _limits() -> auth_service.LoginLimits:
    return auth_service.LoginLimits.from_settings(settings())


def _session_actor() -> Actor | None:
    token = session.get("sid")
    if not isinstance(token, str) or not token:
        return None
    # Looked up on every request, so sign-out, disabling a user or changing a role acts at once.
    with data.transaction() as db:
        actor = auth_service.session_actor(session=db, token=token, limits=_limits(), now=_now())
    if actor is None:
        session.clear()
    return actor


# -- request guard --------------------------------------------------------------------------------


def _guard() -> WerkzeugResponse | None:
    path = request.path
    if request.method not in SAFE_METHODS and not _same_origin():
        return _refuse(403, "forbidden", "cross-site request refused (Origin/Referer is not this dashboard)")
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    actor = _session_actor()
    if actor is None:
        if path == "/logout":
            return redirect(_login_url(signed_out="1"))
        if request.method in SAFE_METHODS and not path.startswith("/_"):
            return redirect(_login_url(next_path=request.full_path.rstrip("?")))
        return _refuse(401, "unauthorized", "sign in to use the dashboard (session missing or expired)")
    if not actor.can(Permission.MODELS_READ):
        return _refuse(403, "forbidden", f"role '{actor.role}' has no dashboard access")
    g.actor = actor
    _tag_request_log(actor)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
        if not sent or not hmac.compare_digest(sent.encode(), csrf_token().encode()):
            return _refuse(403, "forbidden", "missing or wrong CSRF token; reload the page")
    return None


def _same_origin() -> bool:
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    # The public host from RADMON_DASHBOARD_URL counts too: behind a proxy Host may differ.
    trusted = {request.host, *current_app.config.get("RADMON_TRUSTED_HOSTS", ())}
    return urlsplit(source).netloc in trusted


def _tag_request_log(actor: Actor) -> None:
    # The API's request log reads the actor from the ASGI scope state; give it ours.
    scope = request.environ.get("asgi.scope")
    if isinstance(scope, dict):
        scope.setdefault("state", {})["actor"] = actor.username


def _refuse(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": None}})
    response.status_code = status
    return response


def _monitor_error(exc: MonitorError) -> Response:
    return _refuse(exc.status_code, exc.code, exc.message)


def _harden(response: Response) -> Response:
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith(PUBLIC_PREFIXES):
        response.headers.setdefault("Cache-Control", "no-store")
    token = csrf_token()
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, path=PREFIX, samesite="Strict", secure=_cookie_secure(), httponly=False)
    elif not token and CSRF_COOKIE in request.cookies:
        response.delete_cookie(CSRF_COOKIE, path=PREFIX)
    return response


def _cookie_secure() -> bool:
    return bool(current_app.config["SESSION_COOKIE_SECURE"])


# -- login and logout ------------------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    """Only paths inside the dashboard: an open redirect would make the login page a phishing aid."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


def _login_url(*, next_path: str | None = None, **params: str) -> str:
    if next_path:
        params["next"] = (request.script_root + next_path) if not next_path.startswith(PREFIX) else next_path
    return f"{PREFIX}login" + (f"?{urlencode(params)}" if params else "")


def _login() -> WerkzeugResponse:
    next_path = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if _session_actor() is not None:
            return redirect(next_path)
        notice = "You have signed out." if request.args.get("signed_out") else None
        return _login_page(next_path=next_path, notice=notice)
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        auth_service.check_lengths(username=username, password=password)
    except auth_service.TooLong as exc:
        return _login_page(next_path=next_path, error=f"Not signed in: {exc.message}.", status=400)
    if not username or not password:
        return _login_page(next_path=next_path, error="Invalid username or password.", username=username)
    with data.transaction() as db:
        result = auth_service.sign_in(
            session=db, username=username, password=password, address=request.remote_addr, limits=_limits(), now=_now()
        )
    if result.actor is None or result.token is None:
        return _refused_sign_in(result, next_path=next_path, username=username)
    session.clear()
    session.permanent = True
    session["sid"] = result.token
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(next_path)


def _refused_sign_in(result: auth_service.SignIn, *, next_path: str, username: str) -> Response:
    if not result.retry_after:
        return _login_page(next_path=next_path, error="Invalid username or password.", username=username)
    wait = math.ceil(result.retry_after)
    if result.locked_until is not None:
        error = (
            f"Too many failed sign-ins: this account is locked until {result.locked_until:%H:%M} UTC "
            "(an administrator can unlock it sooner)."
        )
    else:
        error = f"Too many failed sign-ins: wait {wait} second{'s' if wait != 1 else ''} before trying again."
    response = _login_page(next_path=next_path, error=error, username=username, status=429)
    response.headers["Retry-After"] = str(wait)
    return response


def _logout() -> WerkzeugResponse:
    token = session.get("sid")
    if isinstance(token, str) and token:
        with data.transaction() as db:
            auth_service.end_session(session=db, token=token, now=_now())
    session.clear()
    return redirect(_login_url(signed_out="1"))


def _login_page(
    *,
    next_path: str,
    error: str | None = None,
    notice: str | None = None,
    username: str = "",
    status: int = 200,
) -> Response:
    page = render_template_string(
        LOGIN_TEMPLATE,
        prefix=PREFIX,
        next_path=next_path,
        error=error,
        notice=notice,
        username=username,
        idle_minutes=settings().session_idle_minutes,
    )
    return Response(page, status=status, mimetype="text/html")


LOGIN_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in · radmon</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{{ prefix }}assets/01-bootstrap.min.css">
  <link rel="stylesheet" href="{{ prefix }}assets/02-radmon.css">
</head>
<body class="radmon-login">
  <main class="radmon-login-card card shadow-sm">
    <div class="card-body p-4 p-md-5">
      <div class="radmon-brand mb-1"><span class="radmon-brand-mark">rad</span>mon</div>
      <p class="text-body-secondary mb-4">Post-deployment monitoring of radiology AI models</p>
      {% if error %}<div class="alert alert-danger py-2" role="alert" id="login-error">{{ error }}</div>{% endif %}
      {% if notice %}<div class="alert alert-info py-2" role="status" id="login-notice">{{ notice }}</div>{% endif %}
      <form method="post" action="{{ prefix }}login" id="login-form">
        <input type="hidden" name="next" value="{{ next_path }}">
        <div class="mb-3">
          <label class="form-label" for="login-username">Username</label>
          <input class="form-control" id="login-username" name="username" value="{{ username }}"
                 autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
        </div>
        <div class="mb-4">
          <label class="form-label" for="login-password">Password</label>
          <input class="form-control" id="login-password" name="password" type="password"
                 autocomplete="current-password" required>
        </div>
        <button class="btn btn-primary w-100" type="submit" id="login-submit">Sign in</button>
      </form>
      <p class="small text-body-secondary mt-4 mb-0">
        Access is logged. Sessions end after {{ idle_minutes }} minutes unused and 8 hours after sign-in;
        sign out on shared workstations.
      </p>
    </div>
  </main>
</body>
</html>
"""
