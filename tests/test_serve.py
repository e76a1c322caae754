"""`radmon serve` and `radmon demo` as real processes, and which app each server role builds."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from monitor import serve
from monitor.config import Settings, load_settings
from monitor.db import set_database

SECRET = "serve-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def radmon_process(args: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RADMON_") or k.startswith("RADMON_TEST_")}
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", *args], env={**clean, **env}, stdout=handle, stderr=subprocess.STDOUT
        )


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"radmon exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"radmon not ready after {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def api_server(server_dir: Path) -> Iterator[str]:
    """`radmon serve --role api` on a free port, against a new (unmigrated) SQLite file."""
    tmp_path = server_dir
    port = free_port()
    log = tmp_path / "serve.log"
    process = radmon_process(
        ["serve", "--role", "api", "--port", str(port)],
        env={
            "RADMON_DATABASE_URL": f"sqlite:///{tmp_path / 'radmon.db'}",
            "RADMON_SECRET_KEY": SECRET,
            "RADMON_AUDIT_KEY": SECRET,
            "RADMON_METRICS_TOKEN": SECRET,
        },
        log=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_serve_api_migrates_sqlite_and_answers_probes_docs_and_refuses_anonymous_calls(
    api_server: str, server_dir: Path
) -> None:
    assert httpx.get(f"{api_server}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{api_server}/readyz").json() == {"status": "ok"}
    assert httpx.get(f"{api_server}/metrics").status_code == 401
    metrics = httpx.get(f"{api_server}/metrics", headers={"Authorization": f"Bearer {SECRET}"})
    assert metrics.status_code == 200 and "radmon_http_requests_total" in metrics.text
    docs = httpx.get(f"{api_server}/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    anonymous = httpx.get(f"{api_server}/api/v1/models")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    assert httpx.get(f"{api_server}/dashboard/").status_code == 404  # the api role serves no dashboard
    with sqlite3.connect(server_dir / "radmon.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()


def test_serve_logs_one_json_object_per_request(api_server: str, server_dir: Path) -> None:
    httpx.get(f"{api_server}/healthz?probe=json-log")
    time.sleep(0.3)
    lines = [json.loads(line) for line in (server_dir / "serve.log").read_text().splitlines() if line.startswith("{")]
    assert any(entry.get("msg") == "request" and entry.get("path") == "/healthz" for entry in lines)


# ---------------------------------------------------------------------------- roles


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", secret_key=SECRET, log_format="text")


@pytest.fixture
def fake_dashboard(monkeypatch: pytest.MonkeyPatch) -> list[FastAPI]:
    """A stand-in dashboard.app module whose mount_dashboard records the apps it was given."""
    mounted: list[FastAPI] = []

    def mount_dashboard(app: FastAPI, *, settings: Settings) -> None:
        mounted.append(app)

        @app.get("/dashboard/")
        def page() -> dict[str, str]:
            return {"page": "dashboard"}

    monkeypatch.setitem(sys.modules, "dashboard.app", types.SimpleNamespace(mount_dashboard=mount_dashboard))
    return mounted


@pytest.fixture
def no_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dashboard.app", None)  # import raises ImportError


def test_role_all_serves_api_and_dashboard(settings: Settings, fake_dashboard: list[FastAPI]) -> None:
    app = serve.build_app(settings, "all")
    assert fake_dashboard == [app]
    with TestClient(app) as client:
        assert "/api/v1/models" in client.get("/api/openapi.json").json()["paths"]
        assert client.get("/dashboard/").json() == {"page": "dashboard"}
        assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard/"


def test_role_all_without_a_dashboard_still_serves_the_api(settings: Settings, no_dashboard: None) -> None:
    app = serve.build_app(settings, "all")
    with TestClient(app) as client:
        assert "/api/v1/models" in client.get("/api/openapi.json").json()["paths"]
        assert client.get("/", follow_redirects=False).headers["location"] == "/api/docs"


def test_role_dashboard_serves_only_the_dashboard_and_probes(settings: Settings, fake_dashboard: list[FastAPI]) -> None:
    app = serve.build_app(settings, "dashboard")
    with TestClient(app) as client:
        assert client.get("/dashboard/").status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/models").status_code == 404
        assert client.get("/api/openapi.json").status_code == 404


def test_role_dashboard_without_a_dashboard_is_unavailable(settings: Settings, no_dashboard: None) -> None:
    with pytest.raises(serve.RoleUnavailable, match="dashboard is not available"):
        serve.build_app(settings, "dashboard")


def test_role_all_runs_the_scheduler_in_process(settings: Settings) -> None:
    database = serve.open_database(settings)
    try:
        scheduler = serve.start_background_scheduler(database)
        assert scheduler is not None and scheduler.running
        assert "alerts:deliver" in {job.id for job in scheduler.get_jobs()}
        serve.stop_scheduler(scheduler)
        assert not scheduler.running
    finally:
        set_database(None)
        database.dispose()


def test_role_all_without_a_scheduler_in_the_build_still_serves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "monitor.scheduler", None)
    database = serve.open_database(settings)
    try:
        assert serve.start_background_scheduler(database) is None
    finally:
        set_database(None)
        database.dispose()


def test_serve_role_scheduler_runs_until_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "scheduler.log"
    process = radmon_process(
        ["serve", "--role", "scheduler"],
        env={
            "RADMON_DATABASE_URL": f"sqlite:///{tmp_path / 'radmon.db'}",
            "RADMON_SECRET_KEY": SECRET,
            "RADMON_AUDIT_KEY": SECRET,
        },
        log=log,
    )
    try:
        deadline = time.monotonic() + 60
        while '"scheduler started"' not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, log.read_text()
        time.sleep(1)
        assert process.poll() is None, log.read_text()  # it keeps running: a blocking scheduler
    finally:
        process.terminate()
        process.wait(30)
    assert process.returncode == 0, log.read_text()
    assert '"scheduler stopped"' in log.read_text()


# ---------------------------------------------------------------------------- demo


def test_demo_seeds_users_model_and_traffic_through_the_api(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    log = tmp_path / "demo.log"
    process = radmon_process(
        ["demo", "--no-serve", "--days", "1", "--port", "0", "--db", str(database)], env={}, log=log
    )
    try:
        process.wait(240)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"radmon demo did not finish:\n{log.read_text()}")
    output = log.read_text()
    assert process.returncode == 0, output
    for role in ("ingest", "viewer", "qa", "approver", "admin"):
        assert role in output
    with sqlite3.connect(database) as connection:
        inferences = connection.execute("SELECT count(*) FROM inferences").fetchone()[0]
        outcomes = connection.execute("SELECT count(*) FROM outcomes").fetchone()[0]
        active = connection.execute(
            "SELECT v.version FROM deployments d JOIN model_versions v ON v.id = d.version_id"
        ).fetchall()
        users = connection.execute("SELECT role FROM users ORDER BY role").fetchall()
    assert inferences == 300 and 0 < outcomes < inferences
    assert f"Stored {inferences} inferences and {outcomes} outcomes" in output
    assert active == [("2.1.0",)]
    assert [role for (role,) in users] == ["admin", "approver", "approver", "ingest", "qa", "viewer"]  # two approvers


def test_demo_keeps_serving_what_it_seeded_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    process = radmon_process(
        ["demo", "--days", "1", "--port", str(port), "--db", str(tmp_path / "demo.db")], env={}, log=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while "Dashboard:" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        output = log.read_text()
        assert "Dashboard: " + url + "/dashboard/" in output, output
        viewer_key = next(line.split()[-2] for line in output.splitlines() if "│ viewer " in line)
        models = httpx.get(f"{url}/api/v1/models", headers={"Authorization": f"Bearer {viewer_key}"})
        assert models.status_code == 200, models.text
        assert "ich-ct" in models.text
    finally:
        process.terminate()
        process.wait(30)
    assert process.returncode == 0, log.read_text()


def test_demo_traffic_is_deterministic_and_outcomes_are_never_from_the_future() -> None:
    from datetime import UTC, datetime

    from monitor.demo import synthetic_traffic

    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    first = synthetic_traffic(days=3, seed=11, now=now)
    assert first == synthetic_traffic(days=3, seed=11, now=now)
    assert first != synthetic_traffic(days=3, seed=12, now=now)
    inferences, outcomes = first
    assert len(inferences) == 3 * 300 and len({r["inference_id"] for r in inferences}) == len(inferences)
    assert all(datetime.fromisoformat(o["confirmed_at"]) <= now for o in outcomes)
    assert {r["features"]["site"] for r in inferences} == {"north", "south", "east", "west"}
    assert len({r["features"].get("manufacturer") for r in inferences} - {None}) == 4  # one scanner fleet per site
    positives = [o for o in outcomes if o["label"] == 1]
    assert 0 < len(positives) < len(outcomes) / 3  # a triage model sees mostly negatives
