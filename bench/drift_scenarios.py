"""Drift findings on simulated traffic: false-finding rate under the null, detection delays.

    .venv/bin/python bench/drift_scenarios.py [--seeds 10] [--first-seed 1] [--days 90] [--per-day 300]
        [--skip-null] [--skip-delays] [--scenarios scanner_change]

For each seed, a fresh SQLite database gets the simulator's reference (5000 rows), its default
policy and its traffic through the ingest service; then the scheduler's daily drift runs
(input_drift and output_drift) for every window_end from day 1 to day 90. Prints, for the null
scenario, the share of daily runs with a finding (any metric point in breach: what becomes an
alert, whole population or segment) and with a warning, and the runs with a segment finding;
and, for scenarios with an onset on day 45, the first window_end (days after onset) at which the
changed features and the outputs are in breach, overall and in the changed site's segment.
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
os.environ.setdefault("RADMON_AUDIT_KEY", "bench-audit-key-0123456789")
os.environ.setdefault("RADMON_OUTBOX_DIR", "/tmp/radmon-bench-outbox")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import migrate
from monitor.db import Database
from monitor.simulate import Simulation
from tests.checks.scenarios import DayResult, daily_checks, load

ONSET = 45
DETECTION: dict[str, dict[str, list[tuple[str, ...]]]] = {
    "scanner_change:site=north,onset=45": {
        "inputs": [("drift_score", "kvp"), ("unseen_categories", "scanner_model")],
        "outputs": [
            ("drift_score", "score"),
            ("positive_rate", "prediction"),
            ("drift_score", "score", "site=north"),
            ("positive_rate", "prediction", "site=north"),
            ("output_drift",),  # any output_drift point in breach, overall or in any segment
        ],
    },
    # The same change with blood read 12 HU darker instead of 8: an output effect at north about
    # twice the default's (docs/decisions/0501).
    "scanner_change:site=north,onset=45,hu_shift=-12": {
        "outputs": [
            ("drift_score", "score", "site=north"),
            ("positive_rate", "prediction", "site=north"),
            ("output_drift",),
        ],
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
    runs = with_finding = with_warning = with_segment_finding = with_segment_warning = 0
    metrics: collections.Counter[tuple[str, ...]] = collections.Counter()
    warned: collections.Counter[tuple[str, ...]] = collections.Counter()
    for seed in seeds:
        started = time.perf_counter()
        results = simulate("null", seed, days, per_day, range(1, days + 1))
        found = [r for r in results if r.findings]
        runs += len(results)
        with_finding += len(found)
        with_warning += sum(1 for r in results if r.warnings or r.segment_warnings)
        with_segment_finding += sum(1 for r in results if r.segment_breaches)
        with_segment_warning += sum(1 for r in results if r.segment_warnings)
        for r in results:
            metrics.update(r.breaches | r.segment_breaches)
            warned.update(r.warnings | r.segment_warnings)
        print(
            f"  null seed {seed:2d}: {len(results)} daily runs, {len(found)} with a finding "
            f"({sum(1 for r in results if r.segment_breaches)} in a segment), "
            f"{sum(1 for r in results if r.warnings or r.segment_warnings)} with a warning ({time.perf_counter() - started:.0f} s)"
            + (
                f"; findings on days {[r.day for r in found]}: {sorted(set().union(*(r.breaches | r.segment_breaches for r in found)), key=str)}"
                if found
                else ""
            ),
            flush=True,
        )
    print(
        f"null: false-finding rate {with_finding}/{runs} daily runs = {with_finding / runs:.2%} (seeds {seeds[0]}..{seeds[-1]})"
    )
    print(f"null: runs with a segment finding {with_segment_finding}/{runs} = {with_segment_finding / runs:.2%}")
    print(
        f"null: runs with a warning {with_warning}/{runs} = {with_warning / runs:.2%} (in a segment: {with_segment_warning}); warnings by metric: {dict(warned.most_common(6))}"
    )
    if metrics:
        print(f"null: findings by metric: {dict(metrics)}")


def _breached(result: DayResult, finding: tuple[str, ...]) -> bool:
    if finding == ("output_drift",):
        return any(
            f[:2] in (("drift_score", "score"), ("positive_rate", "prediction"))
            for f in result.breaches | result.segment_breaches
        )
    return finding in (result.breaches if len(finding) == 2 else result.segment_breaches)


def delays(seeds: list[int], per_day: int, scenarios: list[str]) -> None:
    for scenario, expected in DETECTION.items():
        if scenarios and scenario.split(":")[0] not in scenarios:
            continue
        table: dict[str, list[int | None]] = collections.defaultdict(list)
        for seed in seeds:
            results = simulate(scenario, seed, ONSET + 8, per_day, range(ONSET - 2, ONSET + 8))
            early = [r.day for r in results if r.day <= ONSET and r.findings]
            if early:
                table["finding before onset"].append(len(early))
            for group, findings in expected.items():
                for finding in findings:
                    day = next((r.day for r in results if _breached(r, finding)), None)
                    table[f"{group} {':'.join(finding)}"].append(None if day is None else day - ONSET)
        print(f"{scenario}: days from onset to the first breach, per seed (None: not within 7 days)")
        for label, values in table.items():
            hit = [v for v in values if v is not None]
            print(f"    {label:55s} {values}  detected {len(hit)}/{len(values)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--skip-null", action="store_true")
    parser.add_argument("--skip-delays", action="store_true")
    parser.add_argument(
        "--scenarios", nargs="*", default=[], help="delays for these scenario names only (default: all)"
    )
    args = parser.parse_args()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(
        f"drift findings on simulated traffic: {args.per_day} studies/day, reference 5000 rows, policy = simulate.default_policy()"
    )
    print(
        f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True
    )
    if not args.skip_null:
        null_rates(seeds, args.days, args.per_day)
    if not args.skip_delays:
        delays(seeds, args.per_day, args.scenarios)
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
