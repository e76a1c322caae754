"""Drift findings on simulated traffic: false-finding rate under the null, detection delays.

    .venv/bin/python bench/drift_scenarios.py [--seeds 10] [--days 90] [--per-day 300]

For each seed, a fresh SQLite database gets the simulator's reference (5000 rows), its default
policy and its traffic through the ingest service; then the scheduler's daily drift runs
(input_drift and output_drift) for every window_end from day 1 to day 90. Prints, for the null
scenario, the share of daily runs with a finding (any metric point in breach: what becomes an
alert) and with a warning; and, for scenarios with an onset on day 45, the first window_end
(days after onset) at which the changed features and the outputs are in breach.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
# Runs feed alerts, which read settings: a bench secret and a scratch outbox for their emails.
os.environ.setdefault("RADMON_SECRET_KEY", "bench-secret-key-0123456789")
os.environ.setdefault("RADMON_OUTBOX_DIR", "/tmp/radmon-bench-outbox")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import migrate  # noqa: E402
from monitor.db import Database  # noqa: E402
from monitor.simulate import Simulation  # noqa: E402
from tests.checks.scenarios import DayResult, daily_checks, load  # noqa: E402

ONSET = 45
DETECTION = {
    "scanner_change:site=north,onset=45": {
        "inputs": [("drift_score", "kvp"), ("unseen_categories", "scanner_model")],
        "outputs": [("drift_score", "score"), ("positive_rate", "prediction")],
    },
    "prevalence_shift:onset=45,to=0.2": {"outputs": [("drift_score", "score"), ("positive_rate", "prediction")]},
    "calibration_decay:onset=45,ramp=7": {"outputs": [("drift_score", "score"), ("positive_rate", "prediction")]},
}


def simulate(scenario: str, seed: int, days: int, per_day: int, checks: range) -> list[DayResult]:
    with tempfile.TemporaryDirectory() as directory:
        database = Database(f"sqlite:///{directory}/bench.db")
        migrate.upgrade(database.engine)
        simulation = Simulation(days=days, per_day=per_day, seed=seed, scenarios=scenario)
        load(database, simulation)
        results = daily_checks(database, simulation, checks)
        database.dispose()
    return results


def null_rates(seeds: list[int], days: int, per_day: int) -> None:
    runs = with_finding = with_warning = 0
    metrics: collections.Counter[tuple[str, str | None]] = collections.Counter()
    warned: collections.Counter[tuple[str, str | None]] = collections.Counter()
    for seed in seeds:
        started = time.perf_counter()
        results = simulate("null", seed, days, per_day, range(1, days + 1))
        found = [r for r in results if r.breaches]
        runs += len(results)
        with_finding += len(found)
        with_warning += sum(1 for r in results if r.warnings)
        for r in results:
            metrics.update(r.breaches)
            warned.update(r.warnings)
        print(
            f"  null seed {seed:2d}: {len(results)} daily runs, {len(found)} with a finding, "
            f"{sum(1 for r in results if r.warnings)} with a warning ({time.perf_counter() - started:.0f} s)"
            + (f"; findings on days {[r.day for r in found]}: {sorted(set().union(*(r.breaches for r in found)), key=str)}" if found else "")
        )
    print(f"null: false-finding rate {with_finding}/{runs} daily runs = {with_finding / runs:.2%} (seeds {seeds[0]}..{seeds[-1]})")
    print(f"null: runs with a warning {with_warning}/{runs} = {with_warning / runs:.2%}; warnings by metric: {dict(warned.most_common(6))}")
    if metrics:
        print(f"null: findings by metric: {dict(metrics)}")


def delays(seeds: list[int], per_day: int) -> None:
    for scenario, expected in DETECTION.items():
        table: dict[str, list[int | None]] = collections.defaultdict(list)
        for seed in seeds:
            results = simulate(scenario, seed, ONSET + 8, per_day, range(ONSET - 2, ONSET + 8))
            early = [r.day for r in results if r.day <= ONSET and r.breaches]
            if early:
                table["finding before onset"].append(len(early))
            for group, findings in expected.items():
                for finding in findings:
                    day = next((r.day for r in results if finding in r.breaches), None)
                    table[f"{group} {finding[0]}:{finding[1]}"].append(None if day is None else day - ONSET)
        print(f"{scenario}: days from onset to the first breach, per seed (None: not within 7 days)")
        for label, values in table.items():
            hit = [v for v in values if v is not None]
            print(f"    {label:45s} {values}  detected {len(hit)}/{len(values)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--skip-delays", action="store_true")
    args = parser.parse_args()
    seeds = list(range(1, args.seeds + 1))
    print(f"drift findings on simulated traffic: {args.per_day} studies/day, reference 5000 rows, policy = simulate.default_policy()")
    null_rates(seeds, args.days, args.per_day)
    if not args.skip_delays:
        delays(seeds[: min(len(seeds), 5)], args.per_day)


if __name__ == "__main__":
    main()
