"""HTML to PDF with WeasyPrint: the same HTML gives the same bytes (decision 0600).

WeasyPrint writes no creation date unless the HTML carries one, and pydyf's automatic file identifier is a
digest of the content. The one clock it reads is fontTools': subsetting an embedded font stamps the font's
``head.modified`` with the time now, unless ``SOURCE_DATE_EPOCH`` is set. ``render_pdf`` sets it to a
recorded time the caller passes (a report's period end, a dossier's classification time) for the duration
of the render, under a lock, so two renders of the same HTML are byte-identical, in one process or two.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from weasyprint import HTML

_render_lock = threading.Lock()
# WeasyPrint logs a warning for every SVG presentation attribute its CSS parser does not know (matplotlib's
# `fill`, `stroke` in style attributes: thousands per report, all rendered correctly) into the service's log.
# Errors still come through.
logging.getLogger("weasyprint").setLevel(logging.ERROR)


@dataclass(frozen=True)
class RenderedPdf:
    pdf: bytes
    sha256: str
    pages: int


@contextmanager
def _source_date_epoch(epoch: int) -> Iterator[None]:
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


def render_pdf(html: str, *, recorded_at: datetime) -> RenderedPdf:
    """Render self-contained HTML (inline CSS and SVG, no external resources) to PDF.

    ``recorded_at`` is the only time that may reach the file (embedded fonts' timestamps); pass a time the
    database recorded, never now. External URLs are refused, so a report renders the same offline.
    """
    with _render_lock, _source_date_epoch(int(recorded_at.timestamp())):
        document = HTML(string=html, url_fetcher=_refuse_fetch).render()
        pdf = document.write_pdf()
    assert pdf is not None
    return RenderedPdf(pdf=pdf, sha256=hashlib.sha256(pdf).hexdigest(), pages=len(document.pages))


def _refuse_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    # data: URLs are resolved by WeasyPrint itself before the fetcher; anything else would make the PDF
    # depend on the network or the file system.
    raise ValueError(f"reports are self-contained; refusing to fetch {url!r}")
