"""Keyed-HMAC pseudonyms: the same input and key always give the same opaque token."""

from __future__ import annotations

import hashlib
import hmac


def pseudonymize(value: str, *, key: str, kind: str = "study") -> str:
    """An opaque, stable token for an identifier; `kind` keeps different identifier spaces apart."""
    digest = hmac.new(key.encode(), f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind[:3]}-{digest[:40]}"
