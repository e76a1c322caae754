"""Domain errors: each carries a readable message and the HTTP status it maps to."""

from __future__ import annotations

from typing import Any


class MonitorError(Exception):
    """Base of every error a user may see."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Invalid(MonitorError):
    status_code = 422
    code = "invalid"


class Unauthorized(MonitorError):
    status_code = 401
    code = "unauthorized"


class Forbidden(MonitorError):
    status_code = 403
    code = "forbidden"


class NotFound(MonitorError):
    status_code = 404
    code = "not_found"


class Conflict(MonitorError):
    status_code = 409
    code = "conflict"


class TooLarge(MonitorError):
    status_code = 413
    code = "too_large"


class Locked(MonitorError):
    status_code = 423
    code = "locked"


class ConfigurationError(MonitorError):
    status_code = 500
    code = "configuration"
