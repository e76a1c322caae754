"""Sign-in time for a known user with a wrong password against a name without a user.

    .venv/bin/python bench/login.py [--attempts 7]

Production argon2 parameters, a scratch SQLite database, attempts interleaved (known, unknown,
known ...) two hours apart on the injected clock so none is throttled; prints the medians and
how far apart they are. Goal (issue 14): within 20 %. Before decision 0204 the unknown name
answered without hashing: known 1067 ms, unknown 1 ms on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import migrate
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.db import Database

T0 = datetime(2026, 12, 7, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        database = Database(f"sqlite:///{Path(scratch) / 'login.db'}")
        migrate.upgrade(database.engine)
        with database.transaction() as session:
            auth_service.create_user(
                session=session, actor=SYSTEM, username="vera", role="viewer", password="correct horse battery"
            )

        def timed(username: str, attempt: int) -> float:
            with database.transaction() as session:
                started = time.perf_counter()
                auth_service.authenticate_password(
                    session=session, username=username, password="a wrong guess", now=T0 + timedelta(hours=2 * attempt)
                )
                return time.perf_counter() - started

        timed("vera", 0), timed("nobody", 0)  # warm-up: the stand-in hash is made on first use
        known, unknown = [], []
        for attempt in range(1, args.attempts + 1):
            known.append(timed("vera", attempt))
            unknown.append(timed("nobody", attempt))
        database.dispose()
    k, u = statistics.median(known), statistics.median(unknown)
    print(f"known user {k * 1000:.0f} ms, unknown name {u * 1000:.0f} ms: {abs(k - u) / max(k, u):.0%} apart")


if __name__ == "__main__":
    main()
