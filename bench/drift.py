"""Drift check benchmark on PostgreSQL: radmon's profiles vs pandas + Evidently on the same rows.

    .venv/bin/python bench/drift.py [--rows 1000000] [--small-rows 100000] [--pg-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

Creates a scratch database (dropped at the end), uploads a reference of --rows rows (30
features: 20 numeric, 10 categorical) through the reference service, and inserts two 7-day
windows of inferences with COPY: --rows rows (window A) and --small-rows rows (window B), six
features drifted. Then, each in its own process so that the peak RSS is the check's:

- radmon, cold: run_checks(input_drift + output_drift) on window A, from stored rows (day by
  day, column-projected COPY into pyarrow, two days at a time over two connections) to daily
  profiles to persisted metric points; first once with one connection (the daily profiles are
  then deleted), for the gain of the parallel reads;
- radmon, warm: the same window again (the daily profiles are current);
- radmon, daily: the window moved on by one day, six days stored and one new (what the daily
  scheduler pays in steady state);
- the same two for window B (check time must be flat between the two sizes);
- Evidently: the same window and the reference read into pandas (COPY of the same projected
  columns), DataDriftPreset (include_tests=True), as a data scientist would do it;
- NannyML univariate drift, when --nannyml-python names an interpreter with nannyml installed.

Prints times, peak RSS, the ratios against the goals (>= 20x faster than the Evidently path,
<= 1 GB peak, identical drifted-column sets, flat warm time) and the drifted sets.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
from sqlalchemy import make_url

os.environ.setdefault("DO_NOT_TRACK", "1")
# Runs feed alerts, which read settings: a bench secret and a scratch outbox for their emails.
os.environ.setdefault("RADMON_SECRET_KEY", "bench-secret-key-0123456789")
os.environ.setdefault("RADMON_AUDIT_KEY", "bench-audit-key-0123456789")
os.environ.setdefault("RADMON_OUTBOX_DIR", "/tmp/radmon-bench-outbox")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NUMERIC = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i:02d}" for i in range(10)]
DRIFTED = {"n00", "n05", "n08", "n10", "c00", "c03"}
WINDOW_A_END = datetime(2026, 11, 8, tzinfo=UTC)
NEXT_DAY_END = WINDOW_A_END + timedelta(days=1)  # window A moved on by one day: six stored days + one new
WINDOW_B_END = WINDOW_A_END + timedelta(days=8)
CHUNK = 200_000


def features(n: int, rng: np.random.Generator, drift: bool) -> pd.DataFrame:
    """20 numeric (normal, gamma, lognormal, discrete, counts, bounded) and 10 categorical columns."""
    d = 1.0 if drift else 0.0
    data: dict[str, Any] = {}
    for i in range(5):
        data[f"n{i:02d}"] = rng.normal(10 * i + 0.3 * d * (i == 0), 1 + i / 2, n)
    for i in range(5, 8):
        data[f"n{i:02d}"] = rng.gamma(2 + i, 1.0, n) * (1.3 if drift and i == 5 else 1.0)
    for i in range(8, 10):
        data[f"n{i:02d}"] = rng.lognormal(1.0 + 0.25 * d * (i == 8), 0.5, n)
    kvp = [0.1, 0.2, 0.6, 0.1] if not (drift) else [0.3, 0.2, 0.4, 0.1]
    data["n10"] = rng.choice([80.0, 100.0, 120.0, 140.0], n, p=kvp)
    data["n11"] = rng.choice([0.625, 1.25, 2.5, 5.0], n)
    for i in range(12, 14):
        data[f"n{i:02d}"] = rng.poisson(3 + i, n).astype(float)
    for i in range(14, 20):
        data[f"n{i:02d}"] = np.round(rng.beta(2, 5, n) * 100, 2)
    data["n14"][rng.random(n) < 0.02] = np.nan  # some missing values
    for i in range(10):
        k = 2 + i
        p = np.arange(1, k + 1, dtype=float)
        p /= p.sum()
        if drift and i == 0:
            p = p[::-1]
        values = rng.choice([f"v{j}" for j in range(k)], n, p=p).astype(object)
        if drift and i == 3:
            values[rng.random(n) < 0.05] = "new"
        data[f"c{i:02d}"] = values
    frame = pd.DataFrame(data)
    score = 1 / (1 + np.exp(-(frame["n00"] - 0.5 + rng.normal(0, 1, n))))
    frame["score"] = score
    frame["prediction"] = (score >= 0.5).astype(int)
    frame["label"] = (rng.random(n) < score).astype(int)
    return frame


def policy() -> dict[str, Any]:
    return {
        "features": [{"name": n, "type": "numeric"} for n in NUMERIC]
        + [{"name": c, "type": "categorical"} for c in CATEGORICAL],
        "window_days": 7,
    }


# ---------------------------------------------------------------------------------------------
# Setup


def setup(url: str, rows: int, small_rows: int) -> dict[str, float]:
    from monitor import migrate
    from monitor.auth.actors import SYSTEM
    from monitor.checks import policy as checks_policy
    from monitor.checks.schemas import MonitoringPolicy
    from monitor.db import Database
    from monitor.reference import service as reference_service
    from monitor.registry import service as registry_service
    from monitor.registry.schemas import ModelCreate, VersionCreate

    timings: dict[str, float] = {}
    database = Database(url)
    migrate.upgrade(database.engine)
    rng = np.random.default_rng(7)
    with database.transaction() as session:
        registry_service.create_model(
            session=session, actor=SYSTEM, data=ModelCreate(name="bench", display_name="bench")
        )
        registry_service.create_version(
            session=session,
            actor=SYSTEM,
            model_name="bench",
            data=VersionCreate(version="1", artifact_uri="x", artifact_sha256="ab" * 32),
        )
        registry_service.activate_first(session=session, actor=SYSTEM, model_name="bench", version="1", reason="bench")
        checks_policy.put_policy(
            session=session, actor=SYSTEM, model_name="bench", policy=MonitoringPolicy.model_validate(policy())
        )
    reference = features(rows, rng, drift=False)
    buffer = io.BytesIO()
    reference.to_parquet(buffer, index=False)
    started = time.perf_counter()
    with database.transaction() as session:
        reference_service.upload_file(
            session=session,
            actor=SYSTEM,
            model_name="bench",
            version="1",
            content=buffer.getvalue(),
            filename="reference.parquet",
        )
    timings["reference_upload_s"] = time.perf_counter() - started
    del reference, buffer
    started = time.perf_counter()
    copy_inferences(database, features(rows + rows // 7, rng, drift=True), NEXT_DAY_END, "a", days=8)
    copy_inferences(database, features(small_rows, rng, drift=True), WINDOW_B_END, "b", days=7)
    timings["inferences_copy_s"] = time.perf_counter() - started
    database.dispose()
    return timings


def copy_inferences(database: Any, frame: pd.DataFrame, end: datetime, prefix: str, *, days: int) -> None:
    """COPY typed columns into a temporary table, then build the features JSONB server-side."""
    n = len(frame)
    offsets = np.linspace(0, days * 86400 - 1, n)
    start = end - timedelta(days=days)
    names = NUMERIC + CATEGORICAL
    pairs = ", ".join(f"'{c}', {c}" for c in names)
    columns = ", ".join(f"{c} float8" for c in NUMERIC) + ", " + ", ".join(f"{c} text" for c in CATEGORICAL)
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT id FROM models WHERE name = 'bench'")
        model_id = cursor.fetchone()[0]
        cursor.execute("SELECT id FROM model_versions WHERE model_id = %s", (model_id,))
        version_id = cursor.fetchone()[0]
        cursor.execute(
            f"CREATE TEMP TABLE staged (i bigint, occurred_at timestamptz, score float8, prediction int, {columns})"
        )
        for offset in range(0, n, CHUNK):
            part = frame.iloc[offset : offset + CHUNK]
            staged = pd.DataFrame(
                {
                    "i": np.arange(offset, offset + len(part)),
                    "occurred_at": [
                        (start + timedelta(seconds=float(s))).isoformat() for s in offsets[offset : offset + len(part)]
                    ],
                    "score": part["score"].to_numpy(),
                    "prediction": part["prediction"].to_numpy(),
                    **{c: part[c].to_numpy() for c in names},
                }
            )
            text = io.StringIO()
            staged.to_csv(text, index=False, header=False)
            text.seek(0)
            cursor.copy_expert("COPY staged FROM STDIN WITH (FORMAT csv)", text)
        cursor.execute(
            f"""INSERT INTO inferences (model_id, version_id, inference_id, study_key, occurred_at, received_at, score,
                    prediction, latency_ms, features, content_hash)
                SELECT %s, %s, '{prefix}-' || i, 'study-{prefix}-' || i, occurred_at, now(), score, prediction, 100,
                       jsonb_build_object({pairs}), md5('{prefix}' || i) || md5('{prefix}' || i)
                FROM staged""",
            (model_id, version_id),
        )
        cursor.execute("DROP TABLE staged")
        raw.commit()
        # What autovacuum does soon after a bulk insert: statistics and the visibility map (the
        # per-day counts that find stale profiles are index-only scans thanks to it).
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        raw.driver_connection.cursor().execute("VACUUM ANALYZE inferences")  # type: ignore[union-attr]
    finally:
        raw.close()


# ---------------------------------------------------------------------------------------------
# Measured children (one process each, so ru_maxrss is that path's peak)


def child_radmon(url: str, window_end: str, *, serial: bool = False) -> dict[str, Any]:
    from sqlalchemy import select

    from monitor.checks import windows

    if serial:
        windows.PARALLEL_READS = 1
    from monitor.auth.actors import SYSTEM
    from monitor.checks import flows as checks_flows
    from monitor.checks.models import MetricPoint
    from monitor.db import Database

    database = Database(url)
    baseline = _rss_mb()
    started = time.perf_counter()
    with database.transaction() as session:
        runs = checks_flows.run_checks(
            session=session,
            actor=SYSTEM,
            model_name="bench",
            kinds=["input_drift", "output_drift"],
            window_end=datetime.fromisoformat(window_end),
        )
        ids = [r.id for r in runs]
        summary = runs[0].summary
    elapsed = time.perf_counter() - started
    cpu = time.process_time()
    with database.transaction() as session:
        points = session.execute(
            select(MetricPoint.feature, MetricPoint.details).where(
                MetricPoint.run_id == ids[0], MetricPoint.metric == "drift_score"
            )
        ).all()
    drifted = sorted(f for f, details in points if details and details.get("drifted"))
    breached = sorted(summary.get("drifted_features", []))
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "peak_rss_mb": _rss_mb(),
        "baseline_rss_mb": baseline,
        "drifted": drifted,
        "summary_drifted": breached,
        "rows": summary.get("rows"),
        "days_profiled_now": summary.get("days_profiled_now"),
        "rows_read": summary.get("rows_read"),
        "methods": summary.get("methods"),
    }


def child_evidently(url: str, window_end: str) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    end = datetime.fromisoformat(window_end)
    baseline = _rss_mb()
    started = time.perf_counter()
    params = make_url(url)
    connection = psycopg2.connect(
        host=params.host, port=params.port or 5432, user=params.username, dbname=params.database
    )
    window = _read(
        connection,
        "inferences",
        f"occurred_at >= '{(end - timedelta(days=7)).isoformat()}' AND occurred_at < '{end.isoformat()}'",
    )
    reference = _read(connection, "reference_rows", "reference_set_id = (SELECT max(id) FROM reference_sets)")
    read = time.perf_counter() - started
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset(columns=NUMERIC + CATEGORICAL)], include_tests=True).run(
        Dataset.from_pandas(window, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    body = snapshot.dict()
    drifted = sorted(
        t["metric_config"]["params"]["column"] for t in body["tests"] if t["id"] == "drift" and t["status"] == "FAIL"
    )
    return {
        "seconds": time.perf_counter() - started,
        "read_seconds": read,
        "peak_rss_mb": _rss_mb(),
        "baseline_rss_mb": baseline,
        "drifted": drifted,
    }


def _read(connection: Any, table: str, where: str) -> pd.DataFrame:
    select = ", ".join(
        [f"(features->>'{c}')::float8 AS {c}" for c in NUMERIC] + [f"features->>'{c}' AS {c}" for c in CATEGORICAL]
    )
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY (SELECT {select} FROM {table} WHERE {where}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer
        )
    buffer.seek(0)
    return pd.read_csv(buffer, dtype={c: "object" for c in CATEGORICAL})


NANNYML_CHILD = """
import io, json, resource, sys, time
import pandas as pd, psycopg2
url, window_end, numeric, categorical = json.loads(sys.argv[1])
import nannyml as nml
started = time.perf_counter()
connection = psycopg2.connect(url)
def read(table, where):
    cols = ", ".join([f"(features->>'{c}')::float8 AS {c}" for c in numeric] + [f"features->>'{c}' AS {c}" for c in categorical])
    buffer = io.BytesIO()
    connection.cursor().copy_expert(f"COPY (SELECT {cols} FROM {table} WHERE {where}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    return pd.read_csv(buffer, dtype={c: "object" for c in categorical})
window = read("inferences", f"occurred_at >= '{window_end}'::timestamptz - interval '7 days' AND occurred_at < '{window_end}'")
reference = read("reference_rows", "reference_set_id = (SELECT max(id) FROM reference_sets)")
# One window against the reference, judged like Evidently: NannyML's Wasserstein is raw, so the
# numeric columns are scaled by the reference's std, and both distances get a constant 0.1
# (NannyML's default thresholds come from reference chunks, meaningless with a single chunk).
from nannyml.thresholds import ConstantThreshold
for c in numeric:
    spread = reference[c].std(ddof=0) or 1.0
    reference[c] = reference[c] / spread
    window[c] = window[c] / spread
calc = nml.UnivariateDriftCalculator(column_names=numeric + categorical, continuous_methods=["wasserstein"],
                                     categorical_methods=["jensen_shannon"], chunk_number=1,
                                     thresholds={"wasserstein": ConstantThreshold(upper=0.1), "jensen_shannon": ConstantThreshold(upper=0.1)})
calc.fit(reference)
result = calc.calculate(window).filter(period="analysis").to_df()
alerts = sorted({c for c in numeric + categorical for m in ("wasserstein", "jensen_shannon")
                 if (c, m, "alert") in result.columns and bool(result[(c, m, "alert")].iloc[-1])})
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0] / 1024
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": hwm, "drifted": alerts}))
"""


def _clear_profiles(url: str) -> None:
    params = make_url(url)
    connection = psycopg2.connect(
        host=params.host, port=params.port or 5432, user=params.username, dbname=params.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM daily_profiles"
            )  # the next run re-reads every day (its run supersedes the last)
        connection.commit()
    finally:
        connection.close()


def _rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, it does not carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spawn(kind: str, url: str, window_end: datetime) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--url",
        url,
        "--window-end",
        window_end.isoformat(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, "DO_NOT_TRACK": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _nannyml(python: str | None, url: str) -> dict[str, Any] | str:
    if not python:
        return "skipped: no --nannyml-python given (NannyML needs its own venv: python -m venv /tmp/nml && /tmp/nml/bin/pip install nannyml statsmodels psycopg2-binary)"
    params = make_url(url)
    dsn = f"host={params.host} port={params.port or 5432} user={params.username} dbname={params.database}"
    argument = json.dumps([dsn, WINDOW_A_END.isoformat(), NUMERIC, CATEGORICAL])
    done = subprocess.run([python, "-c", NANNYML_CHILD, argument], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"skipped: NannyML run failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("RADMON_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--nannyml-python", default=os.environ.get("NANNYML_PYTHON"))
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--window-end")
    args = parser.parse_args()
    if args.child:
        if args.child in ("radmon", "radmon-serial"):
            result = child_radmon(args.url, args.window_end, serial=args.child == "radmon-serial")
        else:
            result = child_evidently(args.url, args.window_end)
        print(json.dumps(result))
        return

    admin_url = make_url(args.pg_url)
    name = f"radmon_bench_drift_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(
        host=admin_url.host, port=admin_url.port or 5432, user=admin_url.username, dbname=admin_url.database
    )
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        print(
            f"drift bench on PostgreSQL: reference {args.rows:,} rows, window A {args.rows:,} rows, window B {args.small_rows:,} rows, 30 features"
        )
        timings = setup(url, args.rows, args.small_rows)
        print(
            f"setup: reference upload (validate, COPY, profile) {timings['reference_upload_s']:.1f} s; inferences COPY {timings['inferences_copy_s']:.1f} s"
        )
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        cold_serial = _spawn("radmon-serial", url, WINDOW_A_END)
        _clear_profiles(url)
        cold_a = _spawn("radmon", url, WINDOW_A_END)
        print(
            f"window A cold with one connection: {cold_serial['seconds']:.2f} s (process CPU {cold_serial['cpu_seconds']:.1f} s), "
            f"two connections: {cold_a['seconds']:.2f} s (process CPU {cold_a['cpu_seconds']:.1f} s): {cold_serial['seconds'] / cold_a['seconds']:.2f}x; "
            f"load average now {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        warm_a = _spawn("radmon", url, WINDOW_A_END)
        next_day = _spawn("radmon", url, NEXT_DAY_END)
        cold_b = _spawn("radmon", url, WINDOW_B_END)
        warm_b = _spawn("radmon", url, WINDOW_B_END)
        report(args, cold_a, warm_a, next_day, cold_b, warm_b)
        if not args.skip_evidently:
            evidently = _spawn("evidently", url, WINDOW_A_END)
            print(
                f"Evidently path, window A: {evidently['seconds']:.1f} s (reading into pandas {evidently['read_seconds']:.1f} s, "
                f"DataDriftPreset {evidently['seconds'] - evidently['read_seconds']:.1f} s), peak RSS {evidently['peak_rss_mb']:.0f} MB"
            )
            print(
                f"  speed-up: cold (first run, 7 days to profile) {evidently['seconds'] / cold_a['seconds']:.1f}x (goal >= 20x); "
                f"daily (one new day) {evidently['seconds'] / next_day['seconds']:.1f}x; warm {evidently['seconds'] / warm_a['seconds']:.0f}x"
            )
            print(
                f"  peak memory: radmon {cold_a['peak_rss_mb']:.0f} MB vs Evidently path {evidently['peak_rss_mb']:.0f} MB ({evidently['peak_rss_mb'] / cold_a['peak_rss_mb']:.1f}x)"
            )
            same = cold_a["drifted"] == evidently["drifted"]
            print(f"  drifted columns identical: {same}; radmon {cold_a['drifted']}; Evidently {evidently['drifted']}")
        nannyml = _nannyml(args.nannyml_python, url)
        if isinstance(nannyml, str):
            print(f"NannyML: {nannyml}")
        else:
            print(
                f"NannyML univariate drift, window A: {nannyml['seconds']:.1f} s, peak RSS {nannyml['peak_rss_mb']:.0f} MB, alerts {nannyml['drifted']}"
            )
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def report(
    args: argparse.Namespace,
    cold_a: dict[str, Any],
    warm_a: dict[str, Any],
    next_day: dict[str, Any],
    cold_b: dict[str, Any],
    warm_b: dict[str, Any],
) -> None:
    def line(label: str, r: dict[str, Any]) -> str:
        return (
            f"  {label:28s} {r['seconds']:6.2f} s  peak RSS {r['peak_rss_mb']:5.0f} MB (process after imports {r['baseline_rss_mb']:.0f} MB)"
            f"  days profiled {r['days_profiled_now']}, rows read {r['rows_read']:,}"
        )

    print("radmon run_checks(input_drift + output_drift), stored rows -> daily profiles -> metric points:")
    print(line(f"window A ({cold_a['rows']:,} rows), cold", cold_a))
    print(line("window A, warm", warm_a))
    print(line(f"A moved on a day ({next_day['rows']:,})", next_day))
    print(line(f"window B ({cold_b['rows']:,} rows), cold", cold_b))
    print(line("window B, warm", warm_b))
    print(
        f"  warm check time, A / B ({cold_a['rows'] // cold_b['rows']}x the rows): {warm_a['seconds'] / warm_b['seconds']:.2f} (flat: ~1)"
    )
    print(f"load average at end of the radmon runs: {os.getloadavg()[0]:.1f}")
    print(
        f"  peak memory goal <= 1024 MB: {'met' if max(cold_a['peak_rss_mb'], cold_b['peak_rss_mb']) <= 1024 else 'MISSED'}"
    )
    print(
        f"  expected drifted {sorted(DRIFTED)}; Evidently-rule verdicts {cold_a['drifted']}; methods {sorted(set((cold_a['methods'] or {}).values()))}"
    )


if __name__ == "__main__":
    main()
