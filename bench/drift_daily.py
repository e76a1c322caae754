"""CPU of the scheduler's daily drift runs in steady state: 56 days of stored daily profiles behind each run.

    .venv/bin/python bench/drift_daily.py [--seed 2000]

A fresh SQLite database gets the simulator's reference, default policy and 90 days of null traffic
(300 studies/day); the daily input_drift + output_drift runs of days 1-56 store the daily profiles,
then the runs of days 57-90 are timed (process CPU: the box is shared, wall time is not the run's
cost). docs/decisions/0503 compares this tree with the same tree with the sequential decisions
switched off, in one session (before, after, after, before).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("RADMON_SECRET_KEY", "bench-secret-key-0123456789")
os.environ.setdefault("RADMON_AUDIT_KEY", "bench-audit-key-0123456789")
os.environ.setdefault("RADMON_OUTBOX_DIR", "/tmp/radmon-bench-outbox")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import migrate
from monitor.db import Database
from monitor.simulate import Simulation
from tests.checks.scenarios import daily_checks, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        database = Database(f"sqlite:///{directory}/bench.db")
        migrate.upgrade(database.engine)
        simulation = Simulation(days=90, per_day=300, seed=args.seed)
        load(database, simulation)
        daily_checks(database, simulation, range(1, 57))
        started = time.process_time()
        daily_checks(database, simulation, range(57, 91))
        cpu = time.process_time() - started
        database.dispose()
    print(f"34 daily drift runs (input_drift + output_drift), 56 stored days behind each: {cpu:.2f} s CPU, "
          f"{cpu / 34 * 1000:.0f} ms a run")  # fmt: skip


if __name__ == "__main__":
    main()
