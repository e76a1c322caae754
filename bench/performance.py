"""Subgroup run over 1M labelled inferences with 6 segment attributes on PostgreSQL: time and peak memory.

    .venv/bin/python bench/performance.py                       # 1 000 000 rows, PostgreSQL on 127.0.0.1:5432
    .venv/bin/python bench/performance.py --rows 200000 --pg-url postgresql+psycopg2://user:pw@host/postgres

Creates a scratch database `radmon_bench_<hex>` (migrations applied), loads `--rows` inferences
over one 7-day window by COPY, one current outcome for each (plus 2% superseded by a later one,
so the effective-label query has supersession to resolve), ANALYZEs, then runs the `subgroups`
check kind (checks.flows.run_checks) in a fresh process and reports its wall time, its own and its
PostgreSQL backend's CPU time and that process's peak resident memory (ru_maxrss, imports
included); then again (the first run opens the alerts of its breaches, the second is a daily
check's steady state). Then the same for `performance`.
The database is dropped at the end, even on failure.

Segment attributes: site (4 values), manufacturer (5), scanner_model (10), patient_sex (2 and
missing), age_band (8), kernel (6); intersection site x manufacturer: 57 segments, each with all
ten metrics, the BH family, and the per-segment CUSUM over the 28-day lookback (which holds only
this window's rows here). Goal: <= 10 s and <= 1 GB peak for the subgroups run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2
from sqlalchemy import make_url, text

os.environ.setdefault("RADMON_SECRET_KEY", "bench-secret-key-0123456789")
os.environ.setdefault("RADMON_AUDIT_KEY", "bench-audit-key-0123456789")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import migrate
from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy
from monitor.db import Database
from monitor.registry import service as registry_service
from monitor.registry.schemas import ModelCreate, VersionCreate

MODEL, VERSION = "ich-ct", "2.1.0"
WINDOW_END = datetime(2026, 11, 20, tzinfo=UTC)
ATTRIBUTES = {
    "site": ["north", "south", "east", "west"],
    "manufacturer": ["GE", "Siemens", "Philips", "Canon", "United Imaging"],
    "scanner_model": [f"model-{i}" for i in range(10)],
    "patient_sex": ["F", "M"],
    "age_band": ["20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90+"],
    "kernel": ["STANDARD", "SOFT", "B30s", "Hr38", "UB", "FC26"],
}
POLICY = {"segments": list(ATTRIBUTES), "intersections": [["site", "manufacturer"]], "window_days": 7}
DEFAULT_PG = os.environ.get("RADMON_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(admin_url: str) -> Iterator[Database]:
    """A new, migrated PostgreSQL database, dropped afterwards whatever happens."""
    url = make_url(admin_url)
    name = f"radmon_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=url.database
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    database = Database(url.set(database=name).render_as_string(hide_password=False))
    try:
        migrate.upgrade(database.engine)
        yield database
    finally:
        database.dispose()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def seed_model(database: Database) -> tuple[int, int]:
    with database.transaction() as session:
        model = registry_service.create_model(
            session=session, actor=SYSTEM, data=ModelCreate(name=MODEL, display_name="ICH triage")
        )
        version = registry_service.create_version(
            session=session, actor=SYSTEM, model_name=MODEL,
            data=VersionCreate(version=VERSION, artifact_uri="s3://m/ich.onnx", artifact_sha256="ab" * 32,
                               targets={"sensitivity": 0.9, "specificity": 0.8, "auc": 0.85}, decision_threshold=0.5),
        )  # fmt: skip
        registry_service.activate_first(
            session=session, actor=SYSTEM, model_name=MODEL, version=VERSION, reason="bench"
        )
        checks_policy.put_policy(
            session=session, actor=SYSTEM, model_name=MODEL, policy=MonitoringPolicy.model_validate(POLICY)
        )
        return model.id, version.id


def frames(
    rows: int, model_id: int, version_id: int, seed: int = 2026
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Inference and outcome rows as they are stored (vectorized)."""
    rng = np.random.default_rng(seed)
    label = rng.random(rows) < 0.1
    site = rng.integers(0, 4, rows)
    sensitivity_drop = np.where(site == 0, 0.9, 1.0)  # one site a little worse
    score = np.clip(rng.beta(1.2, 9, rows) + label * rng.beta(6, 2, rows) * sensitivity_drop, 0, 1).round(6)
    occurred = WINDOW_END - timedelta(days=7) + pd.to_timedelta(rng.integers(0, 7 * 86400, rows), unit="s")
    values = {
        name: np.array(choices, dtype=object)[rng.integers(0, len(choices), rows)]
        for name, choices in ATTRIBUTES.items()
    }
    values["site"] = np.array(ATTRIBUTES["site"], dtype=object)[site]
    sex = values["patient_sex"]
    features = (
        '{"site": "' + values["site"] + '", "manufacturer": "' + values["manufacturer"] + '", "scanner_model": "'
        + values["scanner_model"] + '", "age_band": "' + values["age_band"] + '", "kernel": "' + values["kernel"] + '"'
        + np.where(rng.random(rows) < 0.01, "", ', "patient_sex": "' + sex + '"') + ', "kvp": 120}'
    )  # fmt: skip
    ids = np.char.add("bench-", np.arange(rows).astype(str))
    received = datetime.now(UTC)
    inferences = pd.DataFrame(
        {
            "model_id": model_id, "version_id": version_id, "inference_id": ids, "study_key": np.char.add("s-", np.arange(rows).astype(str)),
            "occurred_at": occurred, "received_at": received, "score": score, "prediction": (score >= 0.5).astype(int),
            "latency_ms": 100.0, "features": features, "content_hash": np.char.add("i", np.arange(rows).astype(str)),
        }
    )  # fmt: skip
    confirmed = occurred + pd.Timedelta(days=2)
    outcomes = pd.DataFrame(
        {
            "model_id": model_id, "inference_id": ids, "label": label.astype(int), "source": "consensus_read",
            "confirmed_at": confirmed, "received_at": received, "content_hash": np.char.add("o", np.arange(rows).astype(str)),
        }
    )  # fmt: skip
    # 2% of studies get a later, different outcome that supersedes the first.
    later = rng.random(rows) < 0.02
    again = outcomes[later].copy()
    again["label"] = 1 - again["label"]
    again["confirmed_at"] = again["confirmed_at"] + pd.Timedelta(days=20)
    again["content_hash"] = np.char.add("p", np.arange(later.sum()).astype(str))
    return inferences, pd.concat([outcomes, again], ignore_index=True), later


def copy(database: Database, table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    connection = database.engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.copy_expert(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)", buffer)
        connection.commit()
    finally:
        connection.close()


def load(database: Database, rows: int) -> None:
    model_id, version_id = seed_model(database)
    started = time.perf_counter()
    inferences, outcomes, later = frames(rows, model_id, version_id)
    copy(database, "inferences", inferences)
    copy(database, "outcomes", outcomes)
    with database.engine.begin() as connection:
        # The earlier outcome of each re-confirmed study is superseded, as ingest would mark it.
        connection.execute(
            text(
                "UPDATE outcomes o SET superseded_at = now(), superseded_by = n.id FROM outcomes n "
                "WHERE o.model_id = n.model_id AND o.inference_id = n.inference_id AND o.id < n.id"
            )
        )
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE inferences"))
        connection.execute(text("ANALYZE outcomes"))
    print(
        f"loaded {rows} inferences and {len(outcomes)} outcomes ({int(later.sum())} superseding) in {time.perf_counter() - started:.1f} s"
    )


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a local PostgreSQL backend, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def measure(url: str, kind: str) -> None:
    """Runs in a fresh process: one run of `kind`, timed, with CPU of both sides and peak memory."""
    database = Database(url)
    with database.transaction() as session:
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        backend_before, own_before = backend_cpu(backend), time.process_time()
        started = time.perf_counter()
        run = checks_flows.run_checks(
            session=session, actor=SYSTEM, model_name=MODEL, kinds=[kind], window_end=WINDOW_END
        )[0]
        summary = {"status": run.status, "error": run.error, "labelled": run.summary.get("labelled"), "segments": run.summary.get("segments"),
                   "tests": run.summary.get("tests"), "breaches": run.summary.get("breaches")}  # fmt: skip
        seconds = time.perf_counter() - started
        cpu = {
            "python_cpu_s": time.process_time() - own_before,
            "postgres_cpu_s": backend_cpu(backend) - backend_before,
        }
    json.dump(
        {"kind": kind, "seconds": seconds, "peak_mb": peak_mb(), **cpu, "load": os.getloadavg()[0], **summary},
        sys.stdout,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin URL of a PostgreSQL that allows CREATE DATABASE")
    parser.add_argument("--measure", nargs=2, metavar=("URL", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    with scratch_database(args.pg_url) as database:
        load(database, args.rows)  # the frames are freed on return, before the measured processes start
        results = []
        # Each kind twice: the first run opens the alerts of its breaches, the second (same window,
        # superseding it) is the steady state of a daily check whose alerts exist already.
        for kind in ("subgroups", "subgroups", "performance", "performance"):
            answer = subprocess.run(
                [sys.executable, __file__, "--measure", database.url, kind],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
            )
            results.append(json.loads(answer.stdout.strip().splitlines()[-1]))
            results[-1]["run"] = "again" if any(r["kind"] == kind for r in results[:-1]) else "first"
            print(json.dumps(results[-1]))
    load_avg = os.getloadavg()[0]
    print(
        f"\nsummary ({args.rows} labelled rows, PostgreSQL, 1-minute load average {load_avg:.1f} on {os.cpu_count()} cores)"
    )
    print("  kind, run           wall s  python cpu s  postgres cpu s  peak MB  load  run")
    for result in results:
        goal = " (goal <= 10 s, <= 1024 MB)" if result["kind"] == "subgroups" else ""
        verdict = "" if not goal else ("  ok" if result["seconds"] <= 10 and result["peak_mb"] <= 1024 else "  MISSED")
        print(f"  {result['kind'] + ', ' + result['run']:<18} {result['seconds']:7.2f} {result['python_cpu_s']:13.2f} {result['postgres_cpu_s']:15.2f} "
              f"{result['peak_mb']:8.0f} {result['load']:5.1f}  {result['status']}, {result['labelled']} labelled, "
              f"{result['segments']} segments, {result['tests']} tests{goal}{verdict}")  # fmt: skip
    print("  (wall time on a shared machine: python + postgres CPU is what the run itself costs)")


if __name__ == "__main__":
    main()
