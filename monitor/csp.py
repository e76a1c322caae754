"""Content-Security-Policy helpers shared by the pages radmon renders itself."""

from __future__ import annotations

import base64
import hashlib
import re

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(page: str) -> list[str]:
    """CSP sources ('sha256-...') allowing exactly the page's inline <script> elements, once each."""
    bodies = dict.fromkeys(match[1] for match in _INLINE_SCRIPT.finditer(page))
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'" for body in bodies]
