"""Subgroup breach detection on the simulator: delay after a scanner change, false breaches under the null.

    .venv/bin/python bench/subgroup_detection.py                 # 10 seeds, 7-day windows (the policy default)
    .venv/bin/python bench/subgroup_detection.py --window 14 --seeds 5
    .venv/bin/python bench/subgroup_detection.py --first-seed 10 --seeds 30 --null-seeds 50   # fresh seeds

Scenario: 300 studies a day at four sites, prevalence 10%, version targets sensitivity 0.90,
specificity 0.80, AUC 0.85; the simulator's default policy (segments site, manufacturer,
patient_sex, age_band; intersection site x manufacturer), min 30 positives / 30 negatives,
BH q = 0.05. With --scenario (default scanner_change at north from day 45) every daily window
ending on days onset+1 .. onset+30 is evaluated; under the null every window ending on days
window .. 90. "Once labels cover the onset": each window uses every outcome that will ever arrive
for its inferences (some studies are never confirmed); the wall-clock delay adds the time those
labels take (median 1.5 to 21 days by source), which recomputation within the label horizon
absorbs.

A critical subgroup breach is a `breach` status in the subgroups table (a BH discovery below
target); warnings and the CUSUM do not count. The same functions run on arrays here as in the
check kinds on the database (tests/checks/test_performance_runs.py runs the database path).
For the scanner change it also reports, before any label, the label-free estimate at north: the
CBPE sensitivity (which cannot see this concept shift) and the estimate_support check (which
says the estimate extrapolates there).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.checks import estimation, performance
from monitor.checks.performance_checks import Rows, support_figures
from monitor.checks.schemas import FeatureSpec
from monitor.simulate import Simulation, default_policy
from monitor.simulate.simulation import TARGETS

POLICY = default_policy()
NORTH = ("site=north", "manufacturer=GE MEDICAL SYSTEMS", "site=north&manufacturer=GE MEDICAL SYSTEMS")


def columns(frame: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy(object)[rows] for name in POLICY["segments"]}


def breaches(frame: Any, rows: np.ndarray, label: np.ndarray) -> list[tuple[str, str]]:
    parts = performance.partitions(columns(frame, rows), POLICY["segments"], POLICY["intersections"])
    table = performance.subgroup_table(
        label[rows],
        frame.score.to_numpy()[rows],
        frame.prediction.to_numpy()[rows],
        parts,
        targets=TARGETS,
        limits=performance.Limits(replicates=50),
    )
    return [(f.segment or "", f.metric) for f in table.figures if f.status == "breach"]


def evaluate(
    simulation: Simulation, window: int, ends: range, *, labels_as_of: int | None = None
) -> dict[int, list[tuple[str, str]]]:
    """Breaches per window end; labels: every outcome that ever arrives, or those in by day `labels_as_of`."""
    frame = simulation.frame()
    arrived = frame.confirmed_at.notna().to_numpy()
    if labels_as_of is not None:
        cutoff = simulation.start + np.timedelta64(labels_as_of, "D")
        arrived &= (frame.confirmed_at <= cutoff).fillna(False).to_numpy()
    day, label = frame.day.to_numpy(), np.where(arrived, frame.label.to_numpy(), -1)
    return {end: breaches(frame, (day >= end - window) & (day < end), label) for end in ends}


def wall_clock(simulation: Simulation, window: int, end: int) -> int | None:
    """The first day on which window `end` shows the north breach with the labels arrived by then
    (the window is recomputed daily within the label horizon as outcomes come in)."""
    for as_of in range(end, end + 29):
        if any(
            segment in NORTH
            for segment, _ in evaluate(simulation, window, range(end, end + 1), labels_as_of=as_of)[end]
        ):
            return as_of
    return None


def early_estimate(simulation: Simulation, window: int, ends: range) -> dict[int, dict[str, Any]]:
    """Before any label: CBPE sensitivity at north and whether estimate_support breaches there."""
    frame = simulation.frame()
    reference_rows = simulation.reference(5000)
    reference_scores = np.array([r["score"] for r in reference_rows])
    reference_labels = np.array([r["label"] for r in reference_rows])
    fitted = estimation.Reference.fit(reference_scores, reference_labels, resamples=20)
    features = [FeatureSpec(**f) for f in POLICY["features"]]
    reference = Rows(
        pk=np.arange(len(reference_rows)), score=reference_scores, prediction=np.zeros(len(reference_rows), dtype=np.int64),
        label=reference_labels, day=np.zeros(len(reference_rows), dtype=np.int64),
        columns={f.name: _values([r["features"].get(f.name) for r in reference_rows], f.type) for f in features},
    )  # fmt: skip
    out = {}
    for end in ends:
        rows = ((frame.day >= end - window) & (frame.day < end)).to_numpy()
        part = frame[rows]
        window_rows = Rows(
            pk=np.arange(len(part)), score=part.score.to_numpy(), prediction=part.prediction.to_numpy(), label=np.full(len(part), -1),
            day=np.zeros(len(part), dtype=np.int64), columns={f.name: _values(part[f.name].tolist(), f.type) for f in features},
        )  # fmt: skip
        parts = performance.partitions({"site": part.site.to_numpy(object)}, ["site"], [])
        estimated = estimation.estimated_figures(
            fitted,
            part.score.to_numpy(),
            part.prediction.to_numpy(),
            targets=TARGETS,
            limits=performance.Limits(),
            parts=parts,
            replicates=100,
        )
        support = support_figures(window_rows, reference, features, parts)
        sensitivity = next(f for f in estimated if f.segment == "site=north" and f.metric == "sensitivity")
        north_support = next(f for f in support if f.segment == "site=north")
        out[end] = {
            "cbpe_sensitivity": sensitivity.value,
            "cbpe_status": sensitivity.status,
            "support": north_support.value,
            "support_status": north_support.status,
        }
    return out


def _values(values: list[Any], kind: str) -> np.ndarray:
    if kind == "numeric":
        return np.array([np.nan if v is None or (isinstance(v, float) and np.isnan(v)) else float(v) for v in values])
    return np.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values], dtype=object)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="validate on seeds the must-show does not name")
    parser.add_argument("--null-seeds", type=int, default=None, help="null seeds (default: --seeds)")
    parser.add_argument("--window", type=int, default=7, help="window_days of the policy")
    parser.add_argument("--onset", type=int, default=45)
    parser.add_argument("--skip-null", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"scanner_change at north from day {args.onset}: first critical breach per seed ({args.window}-day windows)")
    delays = []
    change_seeds = range(args.first_seed, args.first_seed + args.seeds)
    null_seeds = range(args.first_seed, args.first_seed + (args.seeds if args.null_seeds is None else args.null_seeds))
    for seed in change_seeds:
        simulation = Simulation(
            days=args.onset + 31, per_day=300, seed=seed, scenarios=f"scanner_change:site=north,onset={args.onset}"
        )
        found = evaluate(simulation, args.window, range(args.onset + 1, args.onset + 31))
        at_north = [end for end, hits in found.items() if any(segment in NORTH for segment, _ in hits)]
        delay = at_north[0] - args.onset if at_north else None
        delays.append(delay)
        seen = wall_clock(simulation, args.window, at_north[0]) if at_north else None
        frame = simulation.frame()
        north = frame[(frame.site == "north") & (frame.label == 1) & (frame.day >= args.onset)]
        early = early_estimate(simulation, args.window, range(args.onset + 1, args.onset + 5))
        warned = [end for end, e in early.items() if e["support_status"] == "breach"]
        day = warned[0] if warned else args.onset + 4
        print(
            f"  seed {seed}: delay {delay if delay is not None else '>30'} days"
            f"{f' (labels in hand on day {seen - args.onset})' if seen is not None else ''}; realized post-change sensitivity at north "
            f"{north.prediction.mean():.3f}; label-free: estimate_support breach "
            f"{'on day ' + str(day - args.onset) if warned else 'not within 4 days'} (support {early[day]['support']:.2f}), "
            f"CBPE sensitivity then {early[day]['cbpe_sensitivity']:.3f} ({early[day]['cbpe_status']})"
        )
    within = sum(d is not None and d <= 14 for d in delays)
    known = sorted(d for d in delays if d is not None)
    print(
        f"  detected within 14 days: {within}/{len(change_seeds)}; median delay {np.median(known) if known else None} days (detected seeds)"
    )
    if args.skip_null:
        return
    print(
        f"\nnull scenario, 90 days, seeds {null_seeds.start}-{null_seeds.stop - 1}: daily runs with any critical subgroup breach"
    )
    total_runs = total_bad = seeds_bad = 0
    for seed in null_seeds:
        found = evaluate(Simulation(days=90, per_day=300, seed=seed), args.window, range(args.window, 91))
        bad = {end: hits for end, hits in found.items() if hits}
        total_runs += len(found)
        total_bad += len(bad)
        seeds_bad += bool(bad)
        detail = "; ".join(
            f"day {end}: {min({s for s, _ in hits})} {hits[0][1]}" for end, hits in list(bad.items())[:3]
        )
        print(f"  seed {seed}: {len(bad)} of {len(found)} runs" + (f" ({detail})" if bad else ""))
    print(f"  runs with a critical breach: {total_bad}/{total_runs}; seeds with any: {seeds_bad}/{len(null_seeds)}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
