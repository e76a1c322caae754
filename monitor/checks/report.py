"""Evidently HTML drill-down of a drift run, on a bounded sample, rendered once and kept gzip'd.

The run's verdicts come from the full window's profiles (drift.py); the report is for a person
looking into them: Evidently's DataDriftPreset over at most REPORT_ROWS rows of the window and
of the reference, with each column pinned to the method and threshold the run used, so the
page explains the run rather than re-deciding it with methods chosen for the sample's size.
It is rendered on the first GET (an Evidently run takes seconds; backfills should not pay it
for windows nobody opens) and stored in check_reports, so later reads are a decompression.
"""

from __future__ import annotations

import gzip
import html as html_lib
import os
import re
import warnings

import pandas as pd
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.checks.drift import CATEGORICAL_ONLY
from monitor.checks.models import CheckReport, CheckRun, MetricPoint
from monitor.checks.schemas import FeatureSpec
from monitor.checks.windows import Source, read_columns
from monitor.csp import inline_script_hashes
from monitor.db import utcnow
from monitor.errors import Conflict
from monitor.reference import service as reference_service

REPORT_ROWS = 5000
REPORT_KINDS = ("input_drift", "output_drift")
# What opens the <head> of every page rendered since values are escaped for script context: a
# Content-Security-Policy meta element naming the hashes of the page's own scripts. A stored page
# without it was rendered by older code (values embedded raw) and is rendered again. Feature
# values only appear further down, so they cannot forge it.
PAGE_MARKER = '<head><meta name="radmon-report" content="2">'
_PAGE_POLICY = re.compile(re.escape(PAGE_MARKER) + r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')
# Evidently's data block: two `var name = <JSON>;` lines. json.dumps never writes a raw newline,
# so each JSON value is exactly the rest of its line, whatever the feature values hold.
_DATA_BLOCK = re.compile(
    r"<script>\n    var (?P<id>metric_[0-9a-f]+) = (?P<info>[^\n]*);\n"
    r"    var additional_graphs_(?P=id) = (?P<graphs>[^\n]*);\n</script>"
)
# What the report page may do: run its own scripts (by hash), draw with inline styles, fonts and
# images from data: URLs; nothing else. `sandbox allow-scripts` without allow-same-origin gives
# the page an opaque origin: no cookies, no storage, no same-origin requests to radmon.
_REPORT_POLICY = (
    "default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "connect-src 'none'; form-action 'none'; base-uri 'none'"
)


def _frame(table: pa.Table, columns: list[FeatureSpec]) -> pd.DataFrame:
    frame = {}
    for spec in columns:
        values = table[spec.name].to_pandas()
        frame[spec.name] = values.astype("float64") if spec.type == "numeric" else values.astype("object")
    return pd.DataFrame(frame)


def _columns(run: CheckRun, features: list[FeatureSpec]) -> list[FeatureSpec]:
    if run.kind == "output_drift":
        # The outputs are not policy features (the names are reserved there), hence model_construct.
        return [
            FeatureSpec.model_construct(name="score", type="numeric"),
            FeatureSpec.model_construct(name="prediction", type="categorical"),
        ]
    return features


def _pins(session: Session, run: CheckRun) -> tuple[dict[str, str], dict[str, float]]:
    points = session.execute(
        select(MetricPoint.feature, MetricPoint.method, MetricPoint.threshold).where(
            MetricPoint.run_id == run.id,
            MetricPoint.metric == "drift_score",
            MetricPoint.method.is_not(None),
            MetricPoint.segment.is_(None),  # per-segment output drift is not a column of the report
        )
    ).all()
    return {f: m for f, m, _ in points if f is not None and m is not None}, {
        f: t for f, _, t in points if f is not None and t is not None
    }


def render(*, session: Session, run: CheckRun, features: list[FeatureSpec]) -> CheckReport:
    """Run Evidently on the samples and store the page (no authorization: the caller checked)."""
    if run.kind not in REPORT_KINDS:
        raise Conflict(f"there is no Evidently report for {run.kind} runs")
    if run.reference_set_id is None:
        raise Conflict(
            f"run {run.id} has no reference to compare against (status {run.status}: {run.error or 'no data'})"
        )
    columns = _columns(run, features)
    data_columns = [c for c in columns if c.name not in ("score", "prediction")]
    window = read_columns(
        session,
        Source(model_id=run.model_id, version_id=run.version_id, start=run.window_start, end=run.window_end),
        data_columns,
        limit=REPORT_ROWS,
    )
    reference_set = reference_service.get_set(session=session, reference_set_id=run.reference_set_id)
    reference = reference_service.sample_rows(
        session=session, reference_set=reference_set, features=data_columns, limit=REPORT_ROWS
    )
    if window.num_rows == 0:
        raise Conflict(f"the window of run {run.id} holds no inferences any more; nothing to report")
    current, baseline = _frame(window, columns), _frame(reference, columns)
    usable = [c for c in columns if current[c.name].notna().any() and baseline[c.name].notna().any()]
    methods, thresholds = _pins(session, run)
    banner = html_lib.escape(
        f"radmon check run {run.id} ({run.kind}, window {run.window_start.isoformat()} to "
        f"{run.window_end.isoformat()}): Evidently on a sample of {window.num_rows} window rows and "
        f"{reference.num_rows} reference rows. The run's verdicts use the whole window."
    )
    page = _evidently_html(current, baseline, usable, methods, thresholds).replace(
        "<body>", f'<body><div style="font-family:sans-serif;padding:8px;background:#fff3cd">{banner}</div>', 1
    )
    body = safe_page(page).encode()
    # Replaces a page stored by older code (see PAGE_MARKER); the run's id is the key.
    report = session.get(CheckReport, run.id) or CheckReport(run_id=run.id)
    report.media_type, report.encoding = "text/html", "gzip"
    report.body, report.size_bytes = gzip.compress(body, compresslevel=6), len(body)
    report.window_rows, report.reference_rows, report.created_at = window.num_rows, reference.num_rows, utcnow()
    session.add(report)
    session.flush()
    return report


def script_json(text: str) -> str:
    """JSON text made safe inside an HTML <script> element: no `<`, `>` or `&` (so neither
    `</script>` nor `<!--` can end or bend the element), no U+2028/U+2029. Valid only for JSON,
    where these characters can appear in strings alone, and there the escapes mean the same."""
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def safe_page(page: str) -> str:
    """Evidently's page with its data block escaped for script context, and a CSP meta element
    first in the document that allows exactly the page's own scripts (defence in depth: the same
    policy is sent as a header with a sandbox, see `headers`)."""
    match = _DATA_BLOCK.search(page)
    if match is None or _DATA_BLOCK.search(page, match.end()) is not None:
        # Fail closed: an Evidently upgrade that changes the layout must not ship values unescaped.
        raise RuntimeError("the Evidently page has no single data block in the expected layout; not serving it")
    data = (
        f"<script>\n    var {match['id']} = {script_json(match['info'])};\n"
        f"    var additional_graphs_{match['id']} = {script_json(match['graphs'])};\n</script>"
    )
    page = page[: match.start()] + data + page[match.end() :]
    if not 0 <= page.find("<head>") < match.start():
        raise RuntimeError("the Evidently page has no <head> before its data; not serving it")
    policy = _REPORT_POLICY.format(hashes=" ".join(inline_script_hashes(page)))
    meta = f'{PAGE_MARKER}<meta http-equiv="Content-Security-Policy" content="{html_lib.escape(policy, quote=False)}">'
    return page.replace("<head>", meta, 1)


def _page_policy(page: str) -> str | None:
    head = page.find("<head>")
    match = _PAGE_POLICY.match(page, head) if head >= 0 else None
    return html_lib.unescape(match[1]) if match else None


def is_current(report: CheckReport) -> bool:
    """Whether a stored page was rendered with values escaped (else it is rendered again)."""
    return _page_policy(stored_html(report)) is not None


def headers(page: str) -> dict[str, str]:
    """Response headers for a report page: the page's own policy (from its CSP meta element; no
    script at all for any other page), sandboxed into an opaque origin, framable only by radmon."""
    policy = _page_policy(page) or _REPORT_POLICY.format(hashes="'none'")
    return {
        "Content-Security-Policy": f"{policy}; sandbox allow-scripts; frame-ancestors 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _evidently_html(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    columns: list[FeatureSpec],
    methods: dict[str, str],
    thresholds: dict[str, float],
) -> str:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = [c.name for c in columns]
    # A numeric feature with few distinct values gets chi-square or z from the run's automatic
    # choice (drift.choose_method), which treats its values as categories; Evidently refuses those
    # tests on a numerical column, so the report declares the column the way the run read it.
    as_categories = {c.name for c in columns if c.type == "categorical" or methods.get(c.name) in CATEGORICAL_ONLY}
    definition = DataDefinition(
        numerical_columns=[name for name in names if name not in as_categories],
        categorical_columns=[name for name in names if name in as_categories],
    )
    preset = DataDriftPreset(
        columns=names,
        per_column_method={k: v for k, v in methods.items() if k in names} or None,
        per_column_threshold={k: v for k, v in thresholds.items() if k in names} or None,
    )
    with warnings.catch_warnings():  # Evidently's own pandas deprecation noise
        warnings.simplefilter("ignore")
        snapshot = Report([preset], include_tests=True).run(
            Dataset.from_pandas(current[names], data_definition=definition),
            Dataset.from_pandas(reference[names], data_definition=definition),
        )
    return str(snapshot.get_html_str(as_iframe=False))


def stored_html(report: CheckReport) -> str:
    return gzip.decompress(report.body).decode()
