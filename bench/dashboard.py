"""Dashboard read latency at production scale: p95 of every page's data calls <= 300 ms.

    .venv/bin/python bench/dashboard.py [--inferences 10000000] [--models 5] [--days 365] [--repeats 20]
                                        [--pg-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]
                                        [--keep | --reuse radmon_bench_...]

Creates a scratch PostgreSQL database (dropped at the end, even on failure), migrates it and
registers --models models (two versions each, the first active, a policy with 10 features and two
segment attributes, a small labelled reference) through the services as SYSTEM. Then:

- --inferences inference rows go in with COPY (staged typed columns, features JSONB built
  server-side), spread evenly over the --days days before today and over the models;
- a year of daily check runs per model and kind (input_drift, output_drift, performance,
  subgroups, estimated_performance) with metric points shaped like the ones checks.flows
  writes (drift_score / missing_share per feature, unified_drift, dataset_drift_share,
  positive_rate, sensitivity / specificity / auc / ppv with intervals, label_coverage, segments
  "site=north" ...), their audit events, and some alerts with occurrences, written directly
  (running the real checks for every day of a year would take hours);
- the daily profiles the scheduler's input_drift runs would have left for every past day, built
  by the check's own code (KindContext.window_profile over the year: each whole UTC day profiled
  from its inference rows and stored), which the overview's volume reads;
- the newest window (ending today 00:00 UTC) is run for real (input_drift + output_drift through
  checks_flows.run_checks), so the drift page's distributions read real daily profiles.

Then, as a viewer, every dashboard.data function a page's layout or callbacks call is timed,
--repeats times after one warm-up, and the page's figure is the sum of its calls per page view.
Prints p50 / p95 / max ms per page and PASS/FAIL against 300 ms, and how long the full chain
rehash takes that the audit page's button starts in the background. --keep leaves the scratch
database for --reuse, which times again without loading (same --models and --days).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
from sqlalchemy import insert, make_url, select

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("RADMON_SECRET_KEY", "bench-secret-key-0123456789")
os.environ.setdefault("RADMON_AUDIT_KEY", "bench-audit-key-0123456789")
os.environ.setdefault("RADMON_PSEUDONYM_KEY", "bench-pseudonym-key-0123456789")
os.environ.setdefault("RADMON_OUTBOX_DIR", "/tmp/radmon-bench-outbox")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = os.environ.get("RADMON_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
GOAL_MS = 300.0
NUMERIC = ["age", "slice_thickness_mm", "kvp", "ctdi_vol", "pixel_spacing_mm", "hu_mean"]
CATEGORICAL = ["site", "scanner", "sex", "protocol"]
SITES = ["north", "south", "east", "west"]
SCANNERS = ["ge", "siemens", "philips"]
KINDS = ("input_drift", "output_drift", "performance", "subgroups", "estimated_performance")
PERF = ("sensitivity", "specificity", "auc", "ppv")
CHUNK = 250_000


# ---------------------------------------------------------------------------------------------
# Scratch database


def admin_connection(admin_url: str) -> Any:
    url = make_url(admin_url)
    connection = psycopg2.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=url.database
    )
    connection.autocommit = True
    return connection


# ---------------------------------------------------------------------------------------------
# Synthetic data


def feature_frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "age": np.round(rng.normal(62, 15, n).clip(18, 100), 0),
            "slice_thickness_mm": rng.choice([0.625, 1.25, 2.5, 5.0], n),
            "kvp": rng.choice([80.0, 100.0, 120.0, 140.0], n, p=[0.1, 0.2, 0.6, 0.1]),
            "ctdi_vol": np.round(rng.gamma(6, 8, n), 2),
            "pixel_spacing_mm": np.round(rng.normal(0.45, 0.03, n), 3),
            "hu_mean": np.round(rng.normal(35, 6, n), 2),
            "site": rng.choice(SITES, n, p=[0.4, 0.3, 0.2, 0.1]),
            "scanner": rng.choice(SCANNERS, n, p=[0.5, 0.3, 0.2]),
            "sex": rng.choice(["F", "M"], n),
            "protocol": rng.choice(["routine", "trauma", "stroke"], n, p=[0.6, 0.25, 0.15]),
        }
    )
    score = 1 / (1 + np.exp(-((frame["hu_mean"] - 35) / 6 - 1.5 + rng.normal(0, 1, n))))
    frame["score"] = score
    frame["prediction"] = (score >= 0.5).astype(int)
    frame["label"] = (rng.random(n) < score).astype(int)
    return frame


def policy_body() -> dict[str, Any]:
    return {
        "features": [{"name": c, "type": "numeric"} for c in NUMERIC]
        + [{"name": c, "type": "categorical"} for c in CATEGORICAL],
        "segments": ["site", "scanner"],
        "window_days": 7,
        "alert_recipients": ["qa@example.org"],
    }


def register(database: Any, models: int) -> list[str]:
    from monitor.auth.actors import SYSTEM
    from monitor.checks import policy as checks_policy
    from monitor.checks.schemas import MonitoringPolicy
    from monitor.reference import service as reference_service
    from monitor.registry import service as registry_service
    from monitor.registry.schemas import ModelCreate, VersionCreate

    names = [f"ich-{i}" for i in range(models)]
    rng = np.random.default_rng(11)
    for name in names:
        with database.transaction() as session:
            registry_service.create_model(
                session=session, actor=SYSTEM, data=ModelCreate(name=name, display_name=f"ICH detector {name}")
            )
            for version in ("1", "2"):
                registry_service.create_version(
                    session=session,
                    actor=SYSTEM,
                    model_name=name,
                    data=VersionCreate(
                        version=version, artifact_uri=f"s3://models/{name}/{version}", artifact_sha256=hashlib.sha256(f"{name}{version}".encode()).hexdigest(),
                        targets={"sensitivity": 0.9, "specificity": 0.85, "auc": 0.9},
                    ),
                )  # fmt: skip
            registry_service.activate_first(
                session=session, actor=SYSTEM, model_name=name, version="1", reason="bench go-live"
            )
            checks_policy.put_policy(
                session=session, actor=SYSTEM, model_name=name, policy=MonitoringPolicy.model_validate(policy_body())
            )
        buffer = io.BytesIO()
        feature_frame(5000, rng).to_parquet(buffer, index=False)
        with database.transaction() as session:
            reference_service.upload_file(
                session=session,
                actor=SYSTEM,
                model_name=name,
                version="1",
                content=buffer.getvalue(),
                filename="reference.parquet",
            )
    return names


def copy_inferences(database: Any, total: int, days: int, today: date) -> float:
    """COPY typed columns into a staging table, then one INSERT ... SELECT builds the features JSONB."""
    rng = np.random.default_rng(5)
    raw = database.engine.raw_connection()
    started = time.perf_counter()
    try:
        cursor = raw.cursor()
        cursor.execute(
            "SELECT m.id, v.id FROM models m JOIN model_versions v ON v.model_id = m.id AND v.version = '1' ORDER BY m.id"
        )
        pairs = cursor.fetchall()
        columns = ", ".join(f"{c} float8" for c in NUMERIC) + ", " + ", ".join(f"{c} text" for c in CATEGORICAL)
        cursor.execute(
            f"CREATE UNLOGGED TABLE staged (i bigint, m int, v int, occurred_at timestamptz, score float8, prediction int, {columns})"
        )
        start = datetime.combine(today - timedelta(days=days), datetime.min.time(), UTC)
        span = days * 86400
        for offset in range(0, total, CHUNK):
            n = min(CHUNK, total - offset)
            part = feature_frame(n, rng)
            idx = np.arange(offset, offset + n)
            which = idx % len(pairs)
            seconds = (idx // len(pairs)) * (span / max(total // len(pairs), 1)) + rng.uniform(0, 1, n)
            stamps = pd.to_datetime(start) + pd.to_timedelta(np.minimum(seconds, span - 1), unit="s")
            staged = pd.DataFrame(
                {
                    "i": idx,
                    "m": [pairs[k][0] for k in which],
                    "v": [pairs[k][1] for k in which],
                    "occurred_at": stamps.strftime("%Y-%m-%d %H:%M:%S.%f+00"),
                    "score": part["score"].round(5).to_numpy(),
                    "prediction": part["prediction"].to_numpy(),
                    **{c: part[c].to_numpy() for c in NUMERIC + CATEGORICAL},
                }
            )
            text = io.StringIO()
            staged.to_csv(text, index=False, header=False)
            text.seek(0)
            cursor.copy_expert("COPY staged FROM STDIN WITH (FORMAT csv)", text)
            print(f"  staged {offset + n:>10,} / {total:,} rows  ({time.perf_counter() - started:.0f} s)", flush=True)
        pairs_sql = ", ".join(f"'{c}', {c}" for c in NUMERIC + CATEGORICAL)
        cursor.execute(
            f"""INSERT INTO inferences (model_id, version_id, inference_id, study_key, occurred_at, received_at, score,
                    prediction, latency_ms, features, content_hash)
                SELECT m, v, 'inf-' || i, md5('study' || (i / 2)), occurred_at, occurred_at + interval '2 seconds', score,
                       prediction, 80 + (i % 50), jsonb_build_object({pairs_sql}), md5('a' || i) || md5('b' || i)
                FROM staged"""
        )
        cursor.execute("DROP TABLE staged")
        raw.commit()
        print(f"  inserted into inferences ({time.perf_counter() - started:.0f} s)", flush=True)
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        raw.driver_connection.cursor().execute("VACUUM ANALYZE inferences")  # type: ignore[union-attr]
        raw.driver_connection.autocommit = False  # type: ignore[union-attr]  # back to the pool as it came
    finally:
        raw.close()
    return time.perf_counter() - started


def _ci(value: float, half: float) -> tuple[float, float]:
    return max(0.0, value - half), min(1.0, value + half)


def synth_points(
    kind: str, day_index: int, rng: np.random.Generator
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(status, summary, metric point rows without run/model/version/window) of one synthetic run."""
    points: list[dict[str, Any]] = []
    drift = day_index > 300  # a slow scanner change in the last two months

    def point(metric: str, value: float | None, status: str = "ok", **extra: Any) -> None:
        points.append({"metric": metric, "feature": None, "segment": None, "value": value, "ci_low": None, "ci_high": None, "n": None,
                       "threshold": None, "method": None, "status": status, "estimated": False, "details": None} | extra)  # fmt: skip

    n = int(rng.integers(30_000, 45_000))
    if kind == "input_drift":
        breaches = 0
        for feature in NUMERIC + CATEGORICAL:
            score = abs(rng.normal(0.03, 0.02)) + (0.12 if drift and feature in ("kvp", "scanner") else 0.0)
            status = "breach" if score > 0.1 else "ok"
            breaches += status == "breach"
            method = "wasserstein" if feature in NUMERIC else "jensenshannon"
            point("drift_score", score, status, feature=feature, n=n, threshold=0.1, method=method,
                  details={"reference_n": 5000, "type": "numeric" if feature in NUMERIC else "categorical"})  # fmt: skip
            point(
                "missing_share", float(rng.uniform(0, 0.01)), "ok", feature=feature, n=n, threshold=0.05, method="share"
            )
        unified = float(abs(rng.normal(0.05, 0.02)) + (0.1 if drift else 0))
        point("unified_drift", unified, "breach" if unified > 0.12 else "ok", n=n, threshold=0.12, method="domain_classifier",
              details={"top_features": ["kvp", "scanner", "ctdi_vol"]})  # fmt: skip
        point("dataset_drift_share", breaches / 10, "ok", n=n, threshold=0.5, method="share")
        return "completed", {"breaches": breaches, "rows": n, "drifted": breaches}, points
    if kind == "output_drift":
        score = abs(rng.normal(0.02, 0.01))
        point("drift_score", score, "ok", feature="score", n=n, threshold=0.1, method="wasserstein")
        rate = float(rng.normal(0.12, 0.01))
        low, high = _ci(rate, 0.01)
        point("positive_rate", rate, "ok", n=n, ci_low=low, ci_high=high, threshold=0.05, method="wilson")
        return "completed", {"breaches": 0, "rows": n}, points
    labelled = int(n * 0.7)
    summary: dict[str, Any] = {"breaches": 0, "rows": n, "labelled": labelled, "label_coverage": labelled / n}
    if kind == "performance":
        for metric in PERF:
            value = float(rng.normal(0.91 if metric != "ppv" else 0.6, 0.01))
            low, high = _ci(value, 0.02)
            point(
                metric,
                value,
                "ok",
                n=labelled,
                ci_low=low,
                ci_high=high,
                threshold=0.85,
                method="wilson" if metric != "auc" else "delong",
            )
            point(f"{metric}_cusum", float(abs(rng.normal(0.5, 0.3))), "ok", n=labelled, threshold=5.0, method="cusum",
                  details={"chart": [float(x) for x in np.abs(rng.normal(0.5, 0.3, 28)).round(3)]})  # fmt: skip
        point("label_coverage", labelled / n, "ok", n=n)
        point("calibration", float(rng.uniform(0.01, 0.03)), "ok", n=labelled, method="reliability",
              details={"bins": [{"mean_score": b / 10 + 0.05, "observed": b / 10 + 0.04, "n": 300} for b in range(10)]})  # fmt: skip
        return "completed", summary, points
    segments = [f"site={s}" for s in SITES] + [f"scanner={s}" for s in SCANNERS]
    estimated = kind == "estimated_performance"
    ranking = []
    for rank, segment in enumerate(segments, start=1):
        attribute, value_name = segment.split("=")
        for metric in PERF:
            value = float(rng.normal(0.9 if metric != "ppv" else 0.6, 0.03))
            low, high = _ci(value, 0.05)
            status = (
                "breach"
                if (not estimated and drift and segment == "scanner=philips" and metric == "sensitivity")
                else "ok"
            )
            if status == "breach":
                value, low, high = 0.78, 0.72, 0.83
            point(metric, value, status, segment=segment, n=labelled // 5, ci_low=low, ci_high=high, threshold=0.85,
                  method="mc_interval" if estimated else "wilson", estimated=estimated,
                  details={"attributes": {attribute: value_name}, "p_target": 0.2, "q_target": 0.1})  # fmt: skip
        if not estimated:
            point(
                "label_coverage",
                0.7,
                "ok",
                segment=segment,
                n=n // 5,
                details={"counts": {"tp": 80, "fn": 9, "tn": 900, "fp": 120}},
            )
        ranking.append({"segment": segment, "rank": rank, "status": "ok", "shortfall": 0.0, "metric": "sensitivity"})
    if estimated:
        for metric in PERF:
            value = float(rng.normal(0.9, 0.01))
            low, high = _ci(value, 0.03)
            point(
                metric, value, "ok", n=n, ci_low=low, ci_high=high, threshold=0.85, method="mc_interval", estimated=True
            )
        return "completed", summary | {"method": "isotonic calibration", "reference_rows": 5000}, points
    breached = sorted({p["segment"] for p in points if p["status"] == "breach"})
    return "completed", summary | {"ranking": ranking, "breached_segments": breached}, points


def synth_runs(database: Any, days: int, today: date) -> tuple[int, int, int]:
    """A year of daily current runs per model and kind (window ending today excluded: run for real),
    their metric points (COPY), one audit event per run, and alerts with occurrences."""
    from monitor.alerts.models import Alert, AlertOccurrence, AlertTransition
    from monitor.audit import service as audit_service
    from monitor.checks.models import CheckRun
    from monitor.registry.models import Model, ModelVersion

    rng = np.random.default_rng(3)
    columns = ["run_id", "model_id", "version_id", "kind", "window_end", "metric", "feature", "segment", "value", "ci_low",
               "ci_high", "n", "threshold", "method", "status", "estimated", "details"]  # fmt: skip
    run_count = point_count = alert_count = 0
    with database.transaction() as session:
        pairs = session.execute(
            select(Model.id, Model.name, ModelVersion.id)
            .join(ModelVersion, ModelVersion.model_id == Model.id)
            .where(ModelVersion.version == "1")
        ).all()
    for model_id, model_name, version_id in pairs:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        with database.transaction() as session:
            run_rows: list[dict[str, Any]] = []
            payloads = []
            for back in range(days, 0, -1):
                end = datetime.combine(today - timedelta(days=back), datetime.min.time(), UTC)
                for kind in KINDS:
                    status, summary, points = synth_points(kind, days - back, rng)
                    run_rows.append({"model_id": model_id, "version_id": version_id, "kind": kind, "window_start": end - timedelta(days=7),
                                     "window_end": end, "started_at": end + timedelta(hours=2), "finished_at": end + timedelta(hours=2, seconds=3),
                                     "status": status, "summary": summary, "error": None, "reference_set_id": None, "triggered_by": "scheduler"})  # fmt: skip
                    payloads.append(points)
            ids = (
                session.execute(insert(CheckRun.__table__).returning(CheckRun.__table__.c.id), run_rows).scalars().all()
            )
            for run_id, run, points in zip(ids, run_rows, payloads, strict=True):
                for p in points:
                    writer.writerow([run_id, model_id, version_id, run["kind"], run["window_end"].isoformat(), p["metric"], p["feature"], p["segment"],
                                     p["value"], p["ci_low"], p["ci_high"], p["n"], p["threshold"], p["method"], p["status"], p["estimated"],
                                     json.dumps(p["details"]) if p["details"] is not None else None])  # fmt: skip
                    point_count += 1
                audit_service.record(session=session, actor="scheduler", action="check.run", entity="check_run", entity_id=run_id,
                                     after={"model": model_name, "version": "1", "kind": run["kind"], "window_start": run["window_start"],
                                            "window_end": run["window_end"], "status": run["status"], "breaches": run["summary"].get("breaches", 0),
                                            "metric_points": len(points)})  # fmt: skip
            run_count += len(ids)
            # Alerts: drift on kvp/scanner and the philips subgroup over the last two months, plus older resolved ones.
            specs = [("input_drift", "drift_score", "kvp", None, "warning", "open"), ("input_drift", "drift_score", "scanner", None, "warning", "acknowledged"),
                     ("input_drift", "unified_drift", None, None, "warning", "open"), ("subgroups", "sensitivity", None, "scanner=philips", "critical", "open")]  # fmt: skip
            specs += [("performance", PERF[i % 4], None, None, "critical", "resolved") for i in range(8)]
            specs += [("input_drift", "drift_score", NUMERIC[i % 6], None, "warning", "resolved") for i in range(12)]
            for number, (kind, metric, feature, segment, severity, status) in enumerate(specs):
                first = datetime.combine(
                    today - timedelta(days=60 if status != "resolved" else 300 - number * 10), datetime.min.time(), UTC
                )
                last = first + timedelta(days=59 if status != "resolved" else 5)
                now = datetime.now(UTC)
                alert = Alert(
                    fingerprint=hashlib.sha256(f"{model_id}|{version_id}|{kind}|{metric}|{feature}|{segment}|{number}".encode()).hexdigest(),
                    model_id=model_id, version_id=version_id, kind=kind, metric=metric, feature=feature, segment=segment, severity=severity,
                    status=status, first_seen=first, last_seen=last, occurrences=(last - first).days + 1, clean_runs=3 if status == "resolved" else 0,
                    evidence={"value": 0.2, "threshold": 0.1, "method": "wasserstein", "run_id": int(ids[-1]), "window_end": last.isoformat()},
                    opened_at=first + timedelta(hours=2), updated_at=now, resolved_at=last + timedelta(days=3) if status == "resolved" else None,
                )  # fmt: skip
                session.add(alert)
                session.flush()
                session.execute(insert(AlertOccurrence.__table__), [
                    {"alert_id": alert.id, "run_id": None, "window_end": first + timedelta(days=d), "status": "breach", "severity": severity,
                     "value": 0.2, "ci_low": None, "ci_high": None, "n": 35000, "threshold": 0.1, "method": "wasserstein", "estimated": False,
                     "recorded_at": first + timedelta(days=d, hours=2)} for d in range((last - first).days + 1)])  # fmt: skip
                session.add(AlertTransition(alert_id=alert.id, at=first + timedelta(hours=2), actor="scheduler", action="opened",
                                            from_status=None, to_status="open", severity=severity, note=""))  # fmt: skip
                if status != "open":
                    session.add(AlertTransition(alert_id=alert.id, at=last, actor="qa1", action="acknowledged" if status == "acknowledged" else "resolved",
                                                from_status="open", to_status=status, severity=severity, note="reviewed with the site"))  # fmt: skip
                alert_count += 1
        buffer.seek(0)
        raw = database.engine.raw_connection()
        try:
            raw.cursor().copy_expert(f"COPY metric_points ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)
            raw.commit()
        finally:
            raw.close()
        print(f"  {model_name}: {len(ids)} runs, {point_count:,} metric points so far", flush=True)
    raw = database.engine.raw_connection()
    raw.driver_connection.autocommit = True  # type: ignore[union-attr]
    raw.driver_connection.cursor().execute("VACUUM ANALYZE")  # type: ignore[union-attr]
    raw.driver_connection.autocommit = False  # type: ignore[union-attr]  # back to the pool as it came
    raw.close()
    return run_count, point_count, alert_count


def build_daily_profiles(database: Any, names: list[str], days: int, today: date) -> tuple[float, int, int]:
    """The daily profiles the scheduler's input_drift runs would have left for every past day:
    built by the check's own code path (KindContext.window_profile over the whole history, which
    profiles each whole UTC day from its inference rows and stores it), not written by hand."""
    from monitor.auth.actors import SYSTEM
    from monitor.checks import policy as checks_policy
    from monitor.checks.kinds import KindContext
    from monitor.checks.windows import Window, day_start
    from monitor.registry.models import Model, ModelVersion

    started = time.perf_counter()
    built = rows = 0
    for name in names:
        with database.transaction() as session:
            model = session.execute(select(Model).where(Model.name == name)).scalar_one()
            version = session.execute(
                select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == "1")
            ).scalar_one()
            context = KindContext(session=session, actor=SYSTEM, model=model, version=version,
                                  policy=checks_policy.policy_for(session=session, model_id=model.id),
                                  window=Window(day_start(today - timedelta(days=days)), day_start(today)))  # fmt: skip
            profile = context.window_profile
            built, rows = built + profile.days_rebuilt, rows + profile.rows_read
        print(
            f"  {name}: {profile.days_rebuilt} daily profiles from {profile.rows_read:,} rows ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return time.perf_counter() - started, built, rows


def real_latest_runs(database: Any, names: list[str]) -> float:
    from monitor.auth.actors import SYSTEM
    from monitor.checks import flows as checks_flows

    started = time.perf_counter()
    for name in names:
        with database.transaction() as session:
            checks_flows.run_checks(
                session=session, actor=SYSTEM, model_name=name, kinds=["input_drift", "output_drift"]
            )
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Timing


def page_calls(names: list[str], settings: Any, today: date) -> dict[str, list[tuple[str, Callable[[], Any]]]]:
    """Per page, the dashboard.data calls of one page view (layout plus its initial callbacks)."""
    from dashboard import data
    from monitor.auth.actors import Actor

    viewer = Actor(username="viewer1", role="viewer", printed_name="Bench Viewer")
    model = names[0]
    since90 = datetime.now(UTC) - timedelta(days=90)
    since365 = datetime.now(UTC) - timedelta(days=365)

    def scope() -> Any:
        return data.analysis_scope(actor=viewer, model_name=model, version=None)

    fixed = scope()
    drift_view = data.drift_view(actor=viewer, scope=fixed, since=since90)
    assert drift_view.latest_input is not None and drift_view.latest_output is not None, "no drift runs"
    input_id, output_id = drift_view.latest_input.id, drift_view.latest_output.id
    alert_list = data.alerts(actor=viewer, filters=data.AlertFilters(), settings=settings)
    alert_id = alert_list[0].id
    clicked: dict[str, datetime] = {}

    return {
        "overview": [
            ("overview", lambda: data.overview(actor=viewer)),
            ("monitoring_status", lambda: data.monitoring_status(actor=viewer, today=today)),
        ],
        "drift (90 d)": [
            ("analysis_scope", scope),
            ("drift_view", lambda: data.drift_view(actor=viewer, scope=fixed, since=since90)),
            (
                "drift_distribution(score)",
                lambda: data.drift_distribution(actor=viewer, run_id=output_id, feature="score"),
            ),
            (
                "drift_distribution(ctdi_vol)",
                lambda: data.drift_distribution(actor=viewer, run_id=input_id, feature="ctdi_vol"),
            ),
        ],
        "drift (365 d)": [
            ("analysis_scope", scope),
            ("drift_view", lambda: data.drift_view(actor=viewer, scope=fixed, since=since365)),
            (
                "drift_distribution(score)",
                lambda: data.drift_distribution(actor=viewer, run_id=output_id, feature="score"),
            ),
        ],
        "drift cell click": [
            (
                "drift_distribution(scanner)",
                lambda: data.drift_distribution(actor=viewer, run_id=input_id, feature="scanner"),
            ),
        ],
        "performance (90 d)": [
            ("analysis_scope", scope),
            ("performance_view", lambda: data.performance_view(actor=viewer, scope=fixed, since=since90)),
        ],
        "performance (365 d)": [
            ("analysis_scope", scope),
            ("performance_view", lambda: data.performance_view(actor=viewer, scope=fixed, since=since365)),
        ],
        "performance segment (90 d)": [
            ("analysis_scope", scope),
            (
                "performance_view(scanner=philips)",
                lambda: data.performance_view(actor=viewer, scope=fixed, since=since90, segment="scanner=philips"),
            ),
        ],
        "subgroups": [
            ("analysis_scope", scope),
            ("subgroup_view", lambda: data.subgroup_view(actor=viewer, scope=fixed, window_end=None)),
        ],
        "alerts": [
            ("alerts(active)", lambda: data.alerts(actor=viewer, filters=data.AlertFilters(), settings=settings)),
            (
                "alerts(all)",
                lambda: data.alerts(actor=viewer, filters=data.AlertFilters(status="all"), settings=settings),
            ),
            ("model_choices", lambda: data.model_choices(actor=viewer)),
            ("alert_detail", lambda: data.alert_detail(actor=viewer, alert_id=alert_id, settings=settings)),
        ],
        "versions": [
            ("model_choices", lambda: data.model_choices(actor=viewer)),
            ("model_detail", lambda: data.model_detail(actor=viewer, model_name=model)),
            ("change_requests(model)", lambda: data.change_requests(actor=viewer, model_name=model)),
            ("policy", lambda: data.policy(actor=viewer, model_name=model)),
            ("change_requests(pending)", lambda: data.change_requests(actor=viewer, status="pending")),
        ],
        "audit (events page)": [
            ("audit_events", lambda: data.audit_events(actor=viewer, filters=data.AuditFilters())),
            (
                "audit_events(filtered)",
                lambda: data.audit_events(actor=viewer, filters=data.AuditFilters(action="check.run")),
            ),
        ],
        "audit (chain status)": [
            ("audit_chain", lambda: data.audit_chain(actor=viewer)),
        ],
        "audit (verify full chain)": [  # the button's callback, then one poll; the rehash runs in a thread
            ("start_full_verification", lambda: clicked.update(started=data.start_full_verification(actor=viewer))),
            (
                "full_verification_result",
                lambda: data.full_verification_result(actor=viewer, started_at=clicked["started"]),
            ),
            (f"{UNTIMED}background rehash", lambda: data._full_verification and data._full_verification[1].join()),
        ],
        "policy": [
            ("model_choices", lambda: data.model_choices(actor=viewer)),
            ("policy", lambda: data.policy(actor=viewer, model_name=model)),
            ("policy_json", lambda: data.policy_json(data.policy(actor=viewer, model_name=model))),
        ],
    }


UNTIMED = "(untimed) "  # a step between callbacks that no callback waits for (a background job finishing)


def time_pages(pages: dict[str, list[tuple[str, Callable[[], Any]]]], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for page, calls in pages.items():
        for _name, call in calls:
            call()  # warm-up
        totals = []
        per_call: dict[str, list[float]] = {name: [] for name, _ in calls}
        for _ in range(repeats):
            total = 0.0
            for name, call in calls:
                started = time.perf_counter()
                call()
                if not name.startswith(UNTIMED):
                    per_call[name].append((time.perf_counter() - started) * 1000)
                    total += per_call[name][-1]
            totals.append(total)
        per_call = {name: times for name, times in per_call.items() if times}
        worst = max(per_call, key=lambda k: float(np.percentile(per_call[k], 95)))
        rows.append({
            "page": page, "p50": float(np.percentile(totals, 50)), "p95": float(np.percentile(totals, 95)), "max": max(totals),
            "slowest": f"{worst} p95 {np.percentile(per_call[worst], 95):.0f}",
        })  # fmt: skip
        r = rows[-1]
        print(
            f"  {page:<28} p50 {r['p50']:7.1f}  p95 {r['p95']:7.1f}  max {r['max']:7.1f} ms   ({r['slowest']})",
            flush=True,
        )
    return rows


def full_verification_ms() -> tuple[list[float], int]:
    from dashboard import data
    from monitor.auth.actors import Actor

    viewer = Actor(username="viewer1", role="viewer", printed_name="Bench Viewer")
    times, events = [], 0
    for _ in range(5):
        started = time.perf_counter()
        events = data.verify_audit_full(actor=viewer).through_seq
        times.append((time.perf_counter() - started) * 1000)
    return times, events


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


# ---------------------------------------------------------------------------------------------


def load(database: Any, args: argparse.Namespace, today: date) -> None:
    """Models, inferences, a year of synthetic runs, the daily profiles, and the real newest runs."""
    started = time.perf_counter()
    names = register(database, args.models)
    print(f"registered {len(names)} models with references ({time.perf_counter() - started:.1f} s)", flush=True)
    copy_s = copy_inferences(database, args.inferences, args.days, today)
    print(f"inferences: {args.inferences:,} rows over {args.days} days in {copy_s:.0f} s", flush=True)
    started = time.perf_counter()
    runs, points, alerts = synth_runs(database, args.days, today)
    print(
        f"synthetic history: {runs:,} runs, {points:,} metric points, {alerts} alerts ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    profile_s, profiled_days, profiled_rows = build_daily_profiles(database, names, args.days, today)
    print(f"daily profiles: {profiled_days:,} days from {profiled_rows:,} rows in {profile_s:.0f} s", flush=True)
    real_s = real_latest_runs(database, names)
    print(
        f"real input_drift + output_drift for the window ending {today} on {len(names)} models: {real_s:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inferences", type=int, default=10_000_000)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin URL of a PostgreSQL that allows CREATE DATABASE")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch database (its name is printed) for --reuse"
    )
    parser.add_argument(
        "--reuse",
        metavar="DATABASE",
        help="time against a database kept by --keep (same --models/--days) instead of loading",
    )
    args = parser.parse_args()

    from monitor import migrate
    from monitor.config import load_settings
    from monitor.db import Database, set_database

    name = args.reuse or f"radmon_bench_{uuid.uuid4().hex[:10]}"
    admin = admin_connection(args.pg_url)
    if not args.reuse:
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    print(f"scratch database {name}; load average {load_average()} on {os.cpu_count()} CPUs", flush=True)
    database = None
    try:
        database = Database(url)
        migrate.upgrade(database.engine)
        set_database(database)
        settings = load_settings(database_url=url, outbox_dir="/tmp/radmon-bench-outbox", log_format="text")
        today = datetime.now(UTC).date()
        if args.reuse:
            names = [f"ich-{i}" for i in range(args.models)]
        else:
            load(database, args, today)
            names = [f"ich-{i}" for i in range(args.models)]
        with database.engine.connect() as connection:
            sizes = {t: connection.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in
                     ("inferences", "check_runs", "metric_points", "daily_profiles", "alerts", "alert_occurrences", "audit_events")}  # fmt: skip
        print("rows: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()), flush=True)
        print(
            f"timing {args.repeats} page views per page after one warm-up (viewer); load average {load_average()}",
            flush=True,
        )
        rows = time_pages(page_calls(names, settings, today), args.repeats)
        load_end = load_average()
        full_ms, events = full_verification_ms()
        print()
        print(f"summary: dashboard data calls per page view, PostgreSQL, scale measured: {sizes['inferences']:,} inferences, "
              f"{args.models} models, {args.days} days of daily runs ({sizes['check_runs']:,} runs, {sizes['metric_points']:,} metric points, "
              f"{sizes['alerts']} alerts, {sizes['audit_events']:,} audit events)")  # fmt: skip
        if sizes["inferences"] < 10_000_000:
            print(f"NOTE: scaled down from the issue's 10,000,000 inferences to {sizes['inferences']:,} (see bench/README.md); "
                  "pages read no inference rows when every past day is profiled (the overview's volume reads daily profiles)")  # fmt: skip
        print(
            f"{'page':<28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  goal p95 <= {GOAL_MS:.0f}  slowest call (p95 ms)"
        )
        failed = 0
        for r in rows:
            verdict = "PASS" if r["p95"] <= GOAL_MS else "FAIL"
            failed += verdict == "FAIL"
            print(f"{r['page']:<28} {r['p50']:8.1f} {r['p95']:8.1f} {r['max']:8.1f}  {verdict:<16} {r['slowest']}")
        print(f"the full chain rehash the verify button starts in the background (no callback waits for it): {events:,} events, "
              f"median {np.median(full_ms):.0f} ms of 5")  # fmt: skip
        print(
            f"{len(rows) - failed}/{len(rows)} pages pass; load average (1/5/15 min) at end: {load_end} on {os.cpu_count()} CPUs"
        )
    finally:
        if database is not None:
            database.dispose()
        if args.keep:
            print(f"kept {name} (time it again with --reuse {name}; drop it with DROP DATABASE)", flush=True)
        else:
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped {name}", flush=True)
        admin.close()


if __name__ == "__main__":
    main()
