"""What every page family's reads and writes share: the unit of work and form validation."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from monitor.db import get_database
from monitor.errors import Invalid


def transaction() -> AbstractContextManager[Session]:
    """One unit of work: commits on success, rolls back on error (tests point it at their session)."""
    return get_database().transaction()


def _validated(schema: Any, values: dict[str, Any]) -> Any:
    """Validate form values with the API's own schema; problems read like the API's 422 details."""
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(part) for part in error["loc"]) or "policy",
                "reason": error["msg"].removeprefix("Value error, "),
            }
            for error in exc.errors()
        ]
        raise Invalid("; ".join(f"{d['field']}: {d['reason']}" for d in details[:5]), details=details) from None
