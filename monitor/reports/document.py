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

from markupsafe import Markup
from sqlalchemy.orm import Session

from monitor.checks.catalog import kind_label, metric_label
from monitor.documents import templates
from monitor.documents.pdf import render_pdf
from monitor.reports import figures
from monitor.reports.content import ReportContent, day, gather, num, pct, segment_label, stamp


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
    content = gather(session, model_id=model_id, period_start=period_start, period_end=period_end)
    html = render_html(content, revision=revision, supersedes=supersedes, signatures=signatures)
    # The only time that reaches the file is a recorded one: the end of the period.
    rendered = render_pdf(html, recorded_at=datetime.combine(period_end, time.max, tzinfo=UTC))
    return RenderedReport(html=html, pdf=rendered.pdf, sha256=rendered.sha256, pages=rendered.pages)


def render_html(
    content: ReportContent,
    *,
    revision: int = 1,
    supersedes: Supersedes | None = None,
    signatures: Sequence[ReportSignature] = (),
) -> str:
    """The report's HTML (the preview, and the PDF's source) from gathered content."""
    return (
        templates.environment("monitor.reports")
        .get_template("report.html.j2")
        .render(
            c=content,
            charts=charts(content),
            revision=revision,
            supersedes=supersedes,
            signatures=list(signatures),
            num=num,
            pct=pct,
            day=day,
            stamp=stamp,
            signed=signed,
            segment_label=segment_label,
            metric_label=metric_label,
            kind_label=kind_label,
            status_label=status_label,
        )
    )


def charts(content: ReportContent) -> dict[str, object]:
    """The report's charts as inline SVG. Marked safe: matplotlib escapes every text it writes into the SVG
    (segment values and feature names come from ingested data), which a test checks with a hostile value."""
    found: dict[str, object] = dict.fromkeys(("volume", "performance", "calibration", "estimate", "drift"))
    found["subgroups"] = []
    if any(d.inferences for d in content.daily):
        found["volume"] = Markup(figures.volume_chart(content.daily))
    if content.series:
        found["performance"] = Markup(figures.performance_chart(content.series))
    if content.calibration and content.calibration_window is not None:
        found["calibration"] = Markup(figures.calibration_chart(content.calibration, content.calibration_window))
    metric = next((m for m in ("sensitivity", "specificity", "auc") if m in content.estimated_series), None)
    if metric is not None:
        found["estimate"] = Markup(
            figures.estimate_chart(metric, content.series.get(metric, []), content.estimated_series[metric])
        )
    if content.subgroups and content.subgroups_window is not None:
        targets = {r.metric: r.target for r in content.performance}
        found["subgroups"] = [
            Markup(figures.subgroup_chart(content.subgroups, m, targets.get(m), content.subgroups_window))
            for m in content.subgroup_metrics
            if m in ("sensitivity", "specificity")
        ]
    if content.drift_series:
        found["drift"] = Markup(figures.drift_chart(content.drift_series))
    return found


def signed(value: float | None) -> str:
    """An estimate error with its sign, rounded as the dashboard does."""
    return "–" if value is None else f"{value:+.3f}"


STATUS_LABELS = {
    "ok": "within target",
    "warn": "estimate misses target",
    "breach": "interval misses target",
    "insufficient_data": "too few outcomes",
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)
