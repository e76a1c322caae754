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
import os
import warnings

import pandas as pd
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.checks.models import CheckReport, CheckRun, MetricPoint
from monitor.checks.schemas import FeatureSpec
from monitor.checks.windows import Source, read_columns
from monitor.db import utcnow
from monitor.errors import Conflict
from monitor.reference import service as reference_service

REPORT_ROWS = 5000
REPORT_KINDS = ("input_drift", "output_drift")


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
    html = _evidently_html(current, baseline, usable, methods, thresholds)
    banner = (
        f'<div style="font-family:sans-serif;padding:8px;background:#fff3cd">radmon check run {run.id} ({run.kind}, '
        f"window {run.window_start.isoformat()} to {run.window_end.isoformat()}): Evidently on a sample of "
        f"{window.num_rows} window rows and {reference.num_rows} reference rows. The run's verdicts use the whole window.</div>"
    )
    html = html.replace("<body>", "<body>" + banner, 1)
    body = html.encode()
    report = CheckReport(
        run_id=run.id,
        media_type="text/html",
        encoding="gzip",
        body=gzip.compress(body, compresslevel=6),
        size_bytes=len(body),
        window_rows=window.num_rows,
        reference_rows=reference.num_rows,
        created_at=utcnow(),
    )
    session.add(report)
    session.flush()
    return report


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
    definition = DataDefinition(
        numerical_columns=[c.name for c in columns if c.type == "numeric"],
        categorical_columns=[c.name for c in columns if c.type == "categorical"],
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
