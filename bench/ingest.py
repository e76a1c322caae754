"""Ingest benchmark on PostgreSQL: the HTTP API against raw COPY and two per-row ORM paths, then 1-record latency.

    .venv/bin/python bench/ingest.py [--rows 200000] [--pg-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

Creates a scratch database (dropped at the end), loads the same inference records (30 features,
numeric and categorical) four ways into the same `inferences` table, truncating between phases,
and prints rows/s with the ratios HTTP/COPY (goal >= 0.6) and HTTP/ORM (goal >= 10) against both
ORM baselines (objects flushed together, and each object flushed on its own); then posts one
record per request at a fixed rate (open loop) and prints p50/p95/p99 (goal p99 <= 20 ms).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg2
from sqlalchemy import make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import migrate
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.client import RadmonClient, RadmonError
from monitor.db import Database
from monitor.ingest.models import Inference
from monitor.ingest.pseudonym import pseudonymize
from monitor.registry import service as registry_service
from monitor.registry.schemas import ModelCreate, VersionCreate

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "bench-secret-key-0123456789"
PSEUDONYM_KEY = "bench-pseudonym-key-0123456789"
MODEL, VERSION = "ich-ct", "2.1.0"
COLUMNS = (
    "model_id", "version_id", "inference_id", "study_key", "occurred_at", "received_at",
    "score", "prediction", "latency_ms", "features", "content_hash",
)  # fmt: skip
CATEGORIES = {
    "site": ["north", "south", "east", "west"],
    "manufacturer": ["GE", "Siemens", "Philips", "Canon"],
    "scanner_model": ["Revolution", "SOMATOM Force", "IQon", "Aquilion ONE", "Optima 660"],
    "convolution_kernel": ["STANDARD", "Hr40", "B", "FC43"],
    "patient_sex": ["F", "M"],
    "age_band": ["18-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90+"],
    "body_part": ["HEAD", "BRAIN"],
    "protocol": ["routine", "trauma", "stroke"],
    "contrast": ["none", "iv"],
    "priority": ["routine", "urgent", "stat"],
    "software_version": ["1.0", "1.1", "2.0"],
    "department": ["ED", "inpatient", "outpatient"],
}
NUMERIC = ("kvp", "exposure", "slice_thickness", "pixel_spacing", "mean_hu", "noise_sd", "rows", "columns") + tuple(
    f"texture_{i}" for i in range(10)
)  # 18 numeric + 12 categorical = 30 features


LOAD_AT_START = 0.0


@dataclass
class Phase:
    name: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


# -- set-up -------------------------------------------------------------------------------


@contextmanager
def scratch_database(admin_url: str) -> Iterator[Database]:
    """A new, migrated PostgreSQL database, dropped afterwards whatever happens."""
    url = make_url(admin_url)
    name = f"radmon_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                             dbname=url.database)  # fmt: skip
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


def seed(database: Database) -> tuple[str, int, int]:
    """Model, active version and an ingest key; returns (key, model_id, version_id)."""
    with database.transaction() as session:
        data = ModelCreate(name=MODEL, display_name="ICH triage (head CT)")
        model = registry_service.create_model(session=session, actor=SYSTEM, data=data)
        version = registry_service.create_version(
            session=session,
            actor=SYSTEM,
            model_name=MODEL,
            data=VersionCreate(
                version=VERSION,
                artifact_uri="s3://m/ich.onnx",
                artifact_sha256="ab" * 32,
                targets={"sensitivity": 0.9},
                decision_threshold=0.5,
            ),
        )
        registry_service.activate_first(
            session=session, actor=SYSTEM, model_name=MODEL, version=VERSION, reason="bench"
        )
        auth_service.create_user(session=session, actor=SYSTEM, username="bench-ingest", role="ingest", password=None)
        _, key = auth_service.create_api_key(session=session, actor=SYSTEM, username="bench-ingest")
        return key, model.id, version.id


def make_records(n: int, *, prefix: str = "bench", seed_value: int = 2026) -> list[dict[str, Any]]:
    """n inference records shaped like an ICH head-CT service's, deterministic for a seed."""
    rng = np.random.default_rng(seed_value)
    numeric = {name: np.round(rng.normal(50, 15, n), 3).tolist() for name in NUMERIC}
    categorical = {name: rng.choice(values, n).tolist() for name, values in CATEGORIES.items()}
    scores = np.round(rng.random(n), 5).tolist()
    latencies = rng.integers(80, 900, n).tolist()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)
    records = []
    for i in range(n):
        features: dict[str, Any] = {name: values[i] for name, values in numeric.items()}
        features.update({name: values[i] for name, values in categorical.items()})
        records.append({
            "model": MODEL, "version": VERSION, "inference_id": f"{prefix}-{i:08d}",
            "occurred_at": start + timedelta(seconds=i * 3), "study_key": f"ACC{i:010d}",
            "score": scores[i], "prediction": int(scores[i] >= 0.5), "latency_ms": latencies[i], "features": features,
        })  # fmt: skip
    return records


def truncate(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("TRUNCATE inferences RESTART IDENTITY"))


def stored(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM inferences")).scalar_one())


# -- the server ---------------------------------------------------------------------------


class Server:
    """The real API in its own process: python -m uvicorn monitor.main:create_app --factory."""

    def __init__(self, database_url: str, log_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, RADMON_DATABASE_URL=database_url, RADMON_SECRET_KEY=SECRET_KEY, RADMON_AUDIT_KEY=SECRET_KEY,
                   RADMON_PSEUDONYM_KEY=PSEUDONYM_KEY, RADMON_LOG_LEVEL="WARNING")  # fmt: skip
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "monitor.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited with {self.process.returncode}; see {log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise SystemExit(f"server not ready after 30 s; see {log_path}")

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()


# -- the three ways in --------------------------------------------------------------------


def via_http(server: Server, key: str, records: list[dict[str, Any]]) -> Phase:
    with RadmonClient(server.url, key, timeout=300, max_retries=0) as client:
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        answer = client.log_inferences(records, batch_size=10_000)
        seconds = time.perf_counter() - started
        server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
    if answer["accepted"] != len(records):
        problems = answer["rejected"][:3]
        raise SystemExit(f"HTTP phase: {answer['accepted']} accepted of {len(records)}; rejected: {problems}")
    note = f"CPU: API process {server_cpu:.1f} s, client {client_cpu:.1f} s (the rest is PostgreSQL and waiting)"
    return Phase("HTTP API (RadmonClient, 10k/batch)", len(records), seconds, note)


def content_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()


def stored_rows(records: list[dict[str, Any]], model_id: int, version_id: int) -> list[tuple[Any, ...]]:
    """The column values the API stores for each record (pseudonymized study key, content hash)."""
    received = datetime.now(UTC)
    return [
        (model_id, version_id, r["inference_id"], pseudonymize(r["study_key"], key=PSEUDONYM_KEY), r["occurred_at"],
         received, r["score"], r["prediction"], r["latency_ms"], r["features"], content_hash(r))
        for r in records
    ]  # fmt: skip


def via_copy(database: Database, rows: list[tuple[Any, ...]]) -> tuple[Phase, float]:
    """COPY ... FROM STDIN (csv) of precomputed rows; returns the phase and the CSV-building time."""
    started = time.perf_counter()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        features = orjson.dumps(row[9]).decode()
        writer.writerow((*row[:4], row[4].isoformat(), row[5].isoformat(), *row[6:9], features, row[10]))
    buffer.seek(0)
    prepared = time.perf_counter() - started
    connection = database.engine.raw_connection()
    try:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.copy_expert(f"COPY inferences ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer)
        connection.commit()
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    note = f"+{prepared:.2f} s building the CSV, not counted"
    return Phase("raw COPY (psycopg2 copy_expert)", len(rows), seconds, note), prepared


def via_orm(database: Database, rows: list[tuple[Any, ...]], total: int) -> Phase:
    """session.add(Inference(...)) per row, one commit at the end (SQLAlchemy batches the INSERTs)."""
    started = time.perf_counter()
    with database.sessions() as session:
        for row in rows:
            session.add(Inference(**dict(zip(COLUMNS, row, strict=True))))
        session.commit()
    seconds = time.perf_counter() - started
    note = "" if len(rows) == total else f"measured on {len(rows)} rows; {total} extrapolated at the same rate"
    return Phase("ORM, one object per row", len(rows), seconds, note)


def via_orm_flushed(database: Database, rows: list[tuple[Any, ...]], total: int) -> Phase:
    """session.add(Inference(...)) and session.flush() per row, one commit at the end: one INSERT
    statement (and round trip) per row, what "one ORM object per row" costs without batching."""
    started = time.perf_counter()
    with database.sessions() as session:
        for row in rows:
            session.add(Inference(**dict(zip(COLUMNS, row, strict=True))))
            session.flush()
        session.commit()
    seconds = time.perf_counter() - started
    note = "" if len(rows) == total else f"measured on {len(rows)} rows; {total} extrapolated at the same rate"
    return Phase("ORM, one object per row flushed on its own", len(rows), seconds, note)


# -- latency ------------------------------------------------------------------------------


def latency(server: Server, key: str, *, rate: float, seconds: float, workers: int, run: int = 0) -> dict[str, Any]:
    """Open loop: request i is due at start + i/rate whatever happened before; latency counts from due time."""
    total = int(rate * seconds)
    records = make_records(total, prefix=f"lat{run}" if run else "lat", seed_value=7 + run)
    load_before = os.getloadavg()[0]
    due_latencies: list[float] = [0.0] * total
    service_latencies: list[float] = [0.0] * total
    errors: list[str] = []
    next_index = iter(range(total))
    lock = threading.Lock()
    start = time.perf_counter() + 0.5

    def worker() -> None:
        with RadmonClient(server.url, key, timeout=10, max_retries=0) as client:
            client.active_version(MODEL)  # open the connection before the clock starts
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                due = start + index / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                sent = time.perf_counter()
                try:
                    answer = client.log_inferences([records[index]])
                    if answer["accepted"] != 1:
                        errors.append(f"not accepted: {answer}")
                except RadmonError as exc:
                    errors.append(str(exc))
                done = time.perf_counter()
                due_latencies[index] = done - due
                service_latencies[index] = done - sent

    server_cpu = server.cpu_seconds()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    server_cpu = server.cpu_seconds() - server_cpu
    quantiles = np.percentile(np.array(due_latencies) * 1000, [50, 95, 99])
    return {
        "requests": total,
        "achieved_rate": total / elapsed,
        "p50": quantiles[0], "p95": quantiles[1], "p99": quantiles[2],
        "max": max(due_latencies) * 1000,
        "service_p99": float(np.percentile(np.array(service_latencies) * 1000, 99)),
        "mean": statistics.fmean(due_latencies) * 1000,
        "server_cpu_ms": server_cpu / total * 1000,
        "errors": len(errors), "first_error": errors[0] if errors else "",
        "load": (load_before, os.getloadavg()[0]),
    }  # fmt: skip


# -- report -------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "meets goal" if ok else "MISSES goal"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--orm-rows", type=int, default=50_000, help="ORM phase subset (extrapolated); 0 = all rows")
    parser.add_argument(
        "--orm-flush-rows",
        type=int,
        default=10_000,
        help="subset for the ORM phase that flushes each object on its own (extrapolated); 0 = all rows",
    )
    parser.add_argument("--pg-url", default=os.environ.get("RADMON_TEST_PG_URL", DEFAULT_PG_URL), help="admin URL")
    parser.add_argument("--rate", type=float, default=200.0, help="single-record requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the latency phase")
    parser.add_argument("--workers", type=int, default=16, help="client threads in the latency phase")
    parser.add_argument("--latency-runs", type=int, default=1, help="repeat the latency phase (every run is reported)")
    args = parser.parse_args()
    global LOAD_AT_START
    LOAD_AT_START = os.getloadavg()[0]

    print(f"radmon ingest bench: {args.rows} rows x {len(NUMERIC) + len(CATEGORIES)} features; "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs (shared)", flush=True)  # fmt: skip
    records = make_records(args.rows)
    with scratch_database(args.pg_url) as database, tempfile.TemporaryDirectory() as tmp:
        key, model_id, version_id = seed(database)
        server = Server(database.url, Path(tmp) / "server.log")
        try:
            print("(a) HTTP ...", flush=True)
            http = via_http(server, key, records)
            assert stored(database) == args.rows
            truncate(database)

            rows = stored_rows(records, model_id, version_id)
            orm_rows = rows[: args.orm_rows] if args.orm_rows else rows
            print(f"(c) ORM on {len(orm_rows)} rows ...", flush=True)
            orm = via_orm(database, orm_rows, args.rows)
            truncate(database)

            flush_rows = rows[: args.orm_flush_rows] if args.orm_flush_rows else rows
            print(f"(c') ORM, each object flushed on its own, on {len(flush_rows)} rows ...", flush=True)
            orm_flushed = via_orm_flushed(database, flush_rows, args.rows)
            truncate(database)

            print("(b) COPY ...", flush=True)
            copy, _ = via_copy(database, rows)
            assert stored(database) == args.rows

            print(f"(d) latency: {args.rate:.0f} single-record POST/s for {args.seconds:.0f} s "
                  f"(table holds {args.rows} rows) ...", flush=True)  # fmt: skip
            runs = [latency(server, key, rate=args.rate, seconds=args.seconds, workers=args.workers, run=run)
                    for run in range(args.latency_runs)]  # fmt: skip
        finally:
            server.stop()
    report(http, copy, orm, orm_flushed, runs, args.rows)


def report(http: Phase, copy: Phase, orm: Phase, orm_flushed: Phase, runs: list[dict[str, Any]], rows: int) -> None:
    http_copy, http_orm, http_orm_flushed = http.rate / copy.rate, http.rate / orm.rate, http.rate / orm_flushed.rate
    print()
    print("summary (PostgreSQL, same inferences table, truncated between phases)")
    print(f"{'phase':<44} {'rows':>8} {'wall s':>8} {'rows/s':>10}  note")
    for phase in (http, copy, orm, orm_flushed):
        wall = phase.seconds if phase.rows == rows else phase.seconds * rows / phase.rows
        shown = f"{wall:.2f}" + ("*" if phase.rows != rows else "")
        print(f"{phase.name:<44} {rows:>8} {shown:>8} {phase.rate:>10,.0f}  {phase.note}")
    print(f"{'ratio HTTP/COPY':<44} {http_copy:>8.2f}  (goal >= 0.6: {verdict(http_copy >= 0.6)})")
    print(f"{'ratio HTTP/ORM':<44} {http_orm:>8.2f}  (goal >= 10: {verdict(http_orm >= 10)}; "
          "ORM objects flushed together: SQLAlchemy 2 sends multi-row INSERTs)")  # fmt: skip
    print(f"{'ratio HTTP/ORM flushed per row':<44} {http_orm_flushed:>8.2f}  (goal >= 10: "
          f"{verdict(http_orm_flushed >= 10)}; one INSERT per row)")  # fmt: skip
    for number, lat in enumerate(runs, start=1):
        title = "single-record latency" + (f", run {number} of {len(runs)}" if len(runs) > 1 else "")
        print(f"{title:<44} {lat['requests']} requests at {lat['achieved_rate']:.0f}/s achieved "
              f"(load {lat['load'][0]:.1f} -> {lat['load'][1]:.1f})")  # fmt: skip
        print(f"{'  p50 / p95 / p99 ms':<44} {lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f}  "
              f"(max {lat['max']:.1f}, p99 of service time {lat['service_p99']:.1f}; goal p99 <= 20: "
              f"{verdict(lat['p99'] <= 20)})")  # fmt: skip
        print(f"{'  API process CPU per request':<44} {lat['server_cpu_ms']:.1f} ms")
        print(f"{'  errors':<44} {lat['errors']}" + (f"  first: {lat['first_error']}" if lat["errors"] else ""))
    load_now = os.getloadavg()[0]
    print(f"load average (1 min) at start / end: {LOAD_AT_START:.1f} / {load_now:.1f} on {os.cpu_count()} CPUs")
    if orm.rows != rows or orm_flushed.rows != rows:
        print("* extrapolated from the measured subset at its rate")


if __name__ == "__main__":
    main()
