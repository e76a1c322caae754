"""A real radmon API process (uvicorn) for end-to-end tests that need a server to kill or time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
import uvicorn

from monitor.db import Database
from tests.factories import make_model, make_user, make_version

SECRET_KEY = "live-server-secret-0123456789"
PSEUDONYM_KEY = "live-server-pseudonym-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served_in_thread(app: Any, *, name: str) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a daemon thread on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the {name} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def ingest_routes_exist() -> bool:
    """Whether POST /api/v1/inferences is part of the application yet."""
    from monitor.config import load_settings
    from monitor.main import create_app

    app = create_app(load_settings(secret_key=SECRET_KEY, pseudonym_key=PSEUDONYM_KEY))
    return "/api/v1/inferences" in app.openapi()["paths"]  # app.routes nests included routers


needs_ingest = pytest.mark.skipif(not ingest_routes_exist(), reason="POST /api/v1/inferences is not merged yet")


def seed_ingest(database: Database, *, role: str = "ingest") -> str:
    """Commit model ich-ct with active version 2.1.0 and a user of `role`; returns their API key."""
    with database.transaction() as session:
        make_model(session)
        make_version(session, activate=True)
        _, key = make_user(session, role=role)
    return key


class LiveServer:
    """`python -m uvicorn monitor.main:create_app --factory` on a fixed port; start, kill -9, restart."""

    def __init__(self, database_url: str, log_dir: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log_path = log_dir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30.0) -> None:
        env = dict(
            os.environ,
            RADMON_DATABASE_URL=self.database_url,
            RADMON_SECRET_KEY=SECRET_KEY,
            RADMON_PSEUDONYM_KEY=PSEUDONYM_KEY,
        )
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "monitor.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing, in-flight requests are cut."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
