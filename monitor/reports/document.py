"""The periodic surveillance report's document: stored data -> HTML -> PDF (issue 16, decision 0600).

Interface used by the report lifecycle (service, API, CLI, scheduler, dashboard):
``render_report(session, model_id=..., period_start=..., period_end=..., revision=..., supersedes=...,
signatures=...)`` reads stored data only and returns the HTML (the preview), the PDF, its SHA-256 and its
page count. The same stored data and arguments give the same bytes. The signatures passed in are printed
as 21 CFR 11.50 manifestations (printed name, date and time, meaning) on the first page and the last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from monitor.documents.pdf import render_pdf
from monitor.registry.models import Model


@dataclass(frozen=True)
class ReportSignature:
    """One e-signature as it is printed: who (printed name and username), when (UTC), what it means."""

    printed_name: str
    username: str
    role: str
    meaning: str  # "reviewed", "approved"
    signed_at: datetime


@dataclass(frozen=True)
class Supersedes:
    """The signed revision a correction replaces."""

    revision: int
    sha256: str


@dataclass(frozen=True)
class RenderedReport:
    html: str
    pdf: bytes
    sha256: str
    pages: int


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("monitor.reports", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(
    session: Session,
    *,
    model_id: int,
    period_start: date,
    period_end: date,
    revision: int = 1,
    supersedes: Supersedes | None = None,
    signatures: Sequence[ReportSignature] = (),
) -> RenderedReport:
    """The report of ``[period_start, period_end]`` (both inclusive, UTC days) from stored data only."""
    model = session.get(Model, model_id)
    if model is None:
        raise LookupError(f"model {model_id} does not exist")
    html = (
        environment()
        .get_template("report.html.j2")
        .render(
            model=model,
            period_start=period_start,
            period_end=period_end,
            revision=revision,
            supersedes=supersedes,
            signatures=list(signatures),
        )
    )
    # The only time that reaches the file is a recorded one: the end of the period.
    rendered = render_pdf(html, recorded_at=datetime.combine(period_end, time.max, tzinfo=UTC))
    return RenderedReport(html=html, pdf=rendered.pdf, sha256=rendered.sha256, pages=rendered.pages)
