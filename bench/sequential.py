"""Sequential detection against the shipped fixed-window rules and an oracle-tuned CUSUM (issue 13).

    .venv/bin/python bench/sequential.py                       # 100 null model-years, 30 seeds per scenario
    .venv/bin/python bench/sequential.py --null-years 20 --seeds 10 --scenarios site_drop
    .venv/bin/python bench/sequential.py --calibrate           # the GLR's ARL0 by run-length simulation
    .venv/bin/python bench/sequential.py --null-years 100 --wall-clock-null   # + the null as daily runs see it
    .venv/bin/python bench/sequential.py --null-years 0 --first-seed 3000     # scenarios on another fresh set

The world is the simulator's (monitor/simulate: 4 sites, 8 age bands, 2 sexes, 4 manufacturers,
the demo policy's segments and site x manufacturer intersection, 300 studies/day, prevalence 10%,
labels confirmed for ~92% of positives and ~70% of negatives). Each seed's traffic becomes daily
statistics per series, as the monitor stores them:

- critical (performance): sensitivity and specificity per segment (overall included): the day's
  confirmed positives / true positives and negatives / true negatives, against the targets
  (0.90 / 0.80);
- warning (output drift): the day's rows and sum of score log-odds against the reference
  segment's mean and SD; the day's positive predictions against the reference segment's rate;
- warning (input drift): each numeric input's daily sum of places in the reference (each value's
  mid-rank share of the reference sample, as drift_checks.drift_series takes it per bin of the
  daily profiles' histograms) against the reference's mean place and SD, whole population.

The budget is split over hypotheses: series with (nearly) the same rows as an earlier one (a site
and its only manufacturer) count once, as the monitor does (--named: over every named series).

Outcomes are counted once every label that will ever arrive is in (as bench/subgroup_detection.py
counts "once labels cover the onset"); the monitor recomputes a day's totals as late labels arrive,
so data days are what the detector sees at the end. Wall-clock delays add the label lag (median 4
days, mean 8; docs/decisions/0420).

Rules, each with the same budget per model (policy defaults: 1 false critical per model-year, 1
false warning per model-month) split over the same named series:
- glr: monitor/checks/sequential.py (window-limited GLR, change point within 56 days);
- multi-k CUSUM: lower/two-sided CUSUMs of the daily standardized statistic with k = 0.25, 0.5, 1
  (shift sizes 0.5, 1, 2 daily SDs), each at 3x the series' ARL0 (the alternative with "several
  reference values");
- shipped: today's fixed 7-day windows (decisions 0420, 0501, 0502) on the same daily statistics:
  performance by BH (q = 0.05, doubled one-sided score-test p, >= 30 cases) across the run's
  segment x metric tests against target; output drift per segment: |log-odds shift| >= 0.1 SD and
  p <= 0.001 / m, positive rate relative change >= 20% and p <= 0.001 / m (m = 2 x segments);
  overall outputs and inputs: the distance net of its sampling bias (0.03) >= 0.1 and p <= 0.01
  (a normal test of the mean stands for the rank / KS tests, which daily sums cannot give);
- e-detector (mixture): a Shiryaev-Roberts e-detector over the normal-mixture e-processes of
  confseq's normal_mixture boundaries (Howard et al. 2021; reimplemented, the package needs a C++
  build), alarm at the series' ARL0 (an anytime guarantee, no window, no fitted constant);
- oracle CUSUM: for each target series, k = half its true post-change daily shift (the mean
  daily z after onset over all seeds of the scenario), h for the same per-series ARL0; it knows
  the size and direction, not the onset nor the segment.

Null: false criticals per model-year and false warnings per model-month, 95% Poisson intervals,
an alarm resetting its series (as an acknowledgement does). A performance series whose true value
(a 200-day, 2000/day run) is below its target is not a null: its alarms are printed apart.
Scenarios (onset day 45, detection within 7/14/28/56 days of post-onset data, median delay) use
seeds 1000+ by default: never used while choosing the window or the k's.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import special, stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.checks import cusum, performance, sequential
from monitor.checks import stats as radmon_stats
from monitor.simulate import Simulation, default_policy
from monitor.simulate.simulation import TARGETS

POLICY = default_policy()
ONSET = 45
HORIZON = 56
NUMERIC = (
    "kvp", "slice_thickness", "ctdi_vol", "mean_hu", "noise_sd", "cnr", "hyperdense_volume_ml", "lesion_hu",
    "midline_shift_mm", "ventricle_volume_ml",
)  # fmt: skip
LOGGED = {"ctdi_vol", "noise_sd", "hyperdense_volume_ml", "midline_shift_mm", "ventricle_volume_ml"}
MIN_REFERENCE = 100
SAME_ROWS = 0.95  # row overlap (Jaccard) above which two segments are one hypothesis
POOLED = False  # drift windows against the reference alone (--pooled: with the series past)
NORTH = ("site=north", "manufacturer=GE MEDICAL SYSTEMS", "site=north&manufacturer=GE MEDICAL SYSTEMS")
SCENARIOS: dict[str, tuple[str, Callable[[str], bool]]] = {
    # name: (simulator scenario, which series are the target of detection)
    "site_drop": ("scanner_change:site=north,onset=45", lambda s: s.startswith("sensitivity|") and _at(s, NORTH)),
    "scanner_output": (
        "scanner_change:site=north,onset=45",
        lambda s: s.split("|")[0] in ("score", "positive_rate") and _at(s, NORTH),
    ),
    "noise_drift": ("noise_drift:onset=45,per_day=0.01", lambda s: s in ("input|noise_sd", "input|cnr")),
    "calibration_decay": (
        "calibration_decay:onset=45,ramp_days=7",
        lambda s: s in ("score|overall", "positive_rate|overall"),
    ),
    "prevalence_shift": (
        "prevalence_shift:onset=45,to=0.2",
        lambda s: s in ("score|overall", "positive_rate|overall"),
    ),
}


def _at(series: str, segments: Iterable[str]) -> bool:
    return series.split("|", 1)[1] in segments


@dataclass
class Series:
    """One monitored series: its daily totals and how to test a window of them."""

    name: str  # metric|segment
    severity: str  # critical | warning
    daily: dict[str, np.ndarray]
    z_of: sequential.WindowZ
    sided: str
    daily_z: np.ndarray  # each day on its own (the CUSUMs' input); NaN on days without data
    same_as: str | None = None  # identical rows to an earlier series: one hypothesis
    # shipped-rule inputs
    kind: str = ""
    reference: dict[str, float] = field(default_factory=dict)
    labels: np.ndarray | None = None  # performance: (day, day the label arrived, success) per confirmed case


@dataclass
class World:
    series: list[Series]
    days: int
    truth: dict[str, float]  # performance series' true values (null only)

    def named(self, severity: str) -> int:
        return sum(s.severity == severity for s in self.series)

    def distinct(self, severity: str) -> int:
        """Hypotheses: series with (nearly) the same rows as an earlier one count once (as the monitor does)."""
        return sum(s.severity == severity and s.same_as is None for s in self.series)


def _logit(score: np.ndarray) -> np.ndarray:
    p = np.clip(score.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _numeric(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.log1p(np.maximum(values, 0)) if name in LOGGED else values


def _bincount(day: np.ndarray, weights: np.ndarray | None, days: int) -> np.ndarray:
    return np.bincount(day, weights=weights, minlength=days)[:days].astype(np.float64)


def mean_daily_z(sums: np.ndarray, n: np.ndarray, mean: float, sd: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, (sums / n - mean) / (sd / np.sqrt(n)), np.nan)


def rate_daily_z(x: np.ndarray, n: np.ndarray, rate: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, (x - n * rate) / np.sqrt(n * rate * (1 - rate)), np.nan)


def world(simulation: Simulation) -> World:
    frame, days = simulation.frame(), simulation.days
    reference = simulation.reference(5000)
    threshold = simulation.threshold
    segments, intersections = POLICY["segments"], POLICY["intersections"]
    columns = {
        a: np.concatenate(
            [np.array([r["features"].get(a) for r in reference], dtype=object), frame[a].to_numpy(object)]
        )
        for a in segments
    }
    n_ref = len(reference)
    ref_logit = _logit(np.array([r["score"] for r in reference]))
    ref_pred = np.array([r["score"] for r in reference]) >= threshold
    day = frame.day.to_numpy()
    logit = _logit(frame.score.to_numpy())
    predicted = frame.prediction.to_numpy().astype(bool)
    arrived = frame.confirmed_at.notna().to_numpy()
    arrival = ((frame.confirmed_at - simulation.start).dt.total_seconds() // 86400).fillna(-1).to_numpy().astype(int)
    label = frame.label.to_numpy().astype(bool)
    groups: list[tuple[str, np.ndarray]] = [("overall", np.ones(n_ref + len(frame), dtype=bool))]
    for part in performance.partitions(columns, segments, intersections):
        groups += [(name, part.codes == i) for i, name in enumerate(part.names)]
    # The score's daily statistic: each row's place in the whole reference (the 50 quantile bins
    # the daily profiles keep, mid-bin), a bounded, rank-type figure calibrated at a few rows a day.
    edges = np.quantile(np.array([r["score"] for r in reference]), np.linspace(0, 1, 51)[1:-1])
    ref_u = (np.searchsorted(edges, np.array([r["score"] for r in reference]), side="right") + 0.5) / 50
    run_u = (np.searchsorted(edges, frame.score.to_numpy(), side="right") + 0.5) / 50
    out: list[Series] = []
    kept: list[tuple[str, np.ndarray]] = []
    for name, rows in groups:
        in_ref, in_run = rows[:n_ref], rows[n_ref:]
        if in_ref.sum() < MIN_REFERENCE:
            continue
        # Segments with (nearly) the same rows, e.g. a site and its only manufacturer: one hypothesis.
        same_as = next((k for k, r in kept if (r & rows).sum() >= SAME_ROWS * (r | rows).sum()), None)
        kept.append((name, rows))
        d = day[in_run]
        for metric, (hit, case) in {
            "sensitivity": (label & predicted, label),
            "specificity": (~label & ~predicted, ~label),
        }.items():
            cases = _bincount(d, (case & arrived)[in_run], days)
            successes = _bincount(d, (hit & arrived)[in_run], days)
            out.append(
                Series(
                    f"{metric}|{name}", "critical", {"successes": successes, "totals": cases},
                    sequential.proportion_vs_target(TARGETS[metric], sided="lower"), "lower",
                    cusum.standardize(successes, cases, TARGETS[metric]), same_as, "performance",
                    {"target": TARGETS[metric]},
                    np.column_stack([day, arrival, hit])[in_run & case & arrived],
                )
            )  # fmt: skip
        rows_per_day = _bincount(d, None, days)
        mean, sd = float(ref_u[in_ref].mean()), float(ref_u[in_ref].std(ddof=1))
        sums = _bincount(d, run_u[in_run], days)
        logit_mean, logit_sd = float(ref_logit[in_ref].mean()), float(ref_logit[in_ref].std(ddof=1))
        out.append(
            Series(
                f"score|{name}", "warning",
                {"sums": sums, "totals": rows_per_day, "logit_sums": _bincount(d, logit[in_run], days)},
                sequential.mean_vs_reference(mean, sd, in_ref.sum(), pooled=POOLED), "two",
                mean_daily_z(sums, rows_per_day, mean, sd), same_as, "mean",
                {"mean": mean, "sd": sd, "n": float(in_ref.sum()), "overall": float(name == "overall"),
                 "logit_mean": logit_mean, "logit_sd": logit_sd},
            )
        )  # fmt: skip
        rate = float(ref_pred[in_ref].mean())
        positives = _bincount(d, predicted[in_run], days)
        out.append(
            Series(
                f"positive_rate|{name}", "warning", {"successes": positives, "totals": rows_per_day},
                sequential.proportion_vs_reference(rate, in_ref.sum(), pooled=POOLED), "two",
                rate_daily_z(positives, rows_per_day, rate), same_as, "rate",
                {"rate": rate, "n": float(in_ref.sum()), "overall": float(name == "overall")},
            )
        )  # fmt: skip
    for feature in NUMERIC:
        # As the monitor (drift_checks.drift_series): each value's place in the reference (its mid-rank
        # share; the monitor's daily profiles give it per bin of the reference's histogram).
        ref_values = np.array([r["features"].get(feature, np.nan) for r in reference], dtype=float)
        ref_values = np.sort(ref_values[np.isfinite(ref_values)])
        values = frame[feature].to_numpy(dtype=float)
        present = np.isfinite(values)

        def place(x: np.ndarray, ordered: np.ndarray = ref_values) -> np.ndarray:
            return (np.searchsorted(ordered, x, side="left") + np.searchsorted(ordered, x, side="right")) / (
                2.0 * len(ordered)
            )

        ref_places = place(ref_values)
        mean, sd = float(ref_places.mean()), float(ref_places.std(ddof=1))
        if sd <= 0:
            continue
        n = _bincount(day[present], None, days)
        sums = _bincount(day[present], place(values[present]), days)
        out.append(
            Series(
                f"input|{feature}", "warning", {"sums": sums, "totals": n},
                sequential.mean_vs_reference(mean, sd, len(ref_values), pooled=POOLED), "two",
                mean_daily_z(sums, n, mean, sd), None, "mean",
                {"mean": mean, "sd": sd, "n": float(len(ref_values)), "overall": 1.0},
            )
        )  # fmt: skip
    return World(out, days, {})


def at_target(series: Series, rng: np.random.Generator) -> Series:
    """The series with the same daily cases, each a success with probability exactly the target."""
    target = series.reference["target"]
    successes = rng.binomial(series.daily["totals"].astype(np.int64), target).astype(np.float64)
    daily = {"successes": successes, "totals": series.daily["totals"]}
    return replace(series, daily=daily, daily_z=cusum.standardize(successes, daily["totals"], target))


def truths() -> dict[str, float]:
    """Each performance series' true value on a large null run (all labels, confirmed or not)."""
    simulation = Simulation(days=200, per_day=2000, seed=999_999)
    frame = simulation.frame()
    label, predicted = frame.label.to_numpy().astype(bool), frame.prediction.to_numpy().astype(bool)
    columns = {a: frame[a].to_numpy(object) for a in POLICY["segments"]}
    groups = [("overall", np.ones(len(frame), dtype=bool))]
    for part in performance.partitions(columns, POLICY["segments"], POLICY["intersections"]):
        groups += [(name, part.codes == i) for i, name in enumerate(part.names)]
    out = {}
    for name, rows in groups:
        if (rows & label).sum() >= 20:
            out[f"sensitivity|{name}"] = float(predicted[rows & label].mean())
        if (rows & ~label).sum() >= 20:
            out[f"specificity|{name}"] = float((~predicted[rows & ~label]).mean())
    return out


# ------------------------------------------------------------------------------------------------
# Rules: each returns the alarm days of a series (an alarm resets the series: the next day starts fresh).

Rule = Callable[[Series, float], list[int]]


def _restarting(first: Callable[[Series, int, float], int | None]) -> Rule:
    def rule(series: Series, arl0: float) -> list[int]:
        alarms, start = [], 0
        length = len(series.daily_z)
        while start < length:
            hit = first(series, start, arl0)
            if hit is None:
                break
            alarms.append(hit)
            start = hit + 1
        return alarms

    return rule


def _glr_first(series: Series, start: int, arl0: float) -> int | None:
    c = sequential.threshold(arl0, sided=series.sided)
    daily = {k: v[start:] for k, v in series.daily.items()}
    hit = sequential.glr(daily, series.z_of, sided=series.sided).first_above(c)
    return None if hit is None else start + hit


def _cusum_path(z: np.ndarray, k: float, h: float, direction: float) -> int | None:
    current = 0.0
    for i, value in enumerate(z):
        if not np.isfinite(value):
            continue
        current = max(0.0, current + direction * value - k)
        if current > h:
            return i
    return None


def _directions(series: Series) -> list[float]:
    return {"lower": [-1.0], "upper": [1.0], "two": [-1.0, 1.0]}[series.sided]


def _multi_k_first(series: Series, start: int, arl0: float) -> int | None:
    ks = (0.25, 0.5, 1.0)
    directions = _directions(series)
    found = []
    for k in ks:
        h = cusum.threshold_for_arl(k, arl0 * len(ks) * len(directions), sided="upper")
        for direction in directions:
            hit = _cusum_path(series.daily_z[start:], k, h, direction)
            if hit is not None:
                found.append(start + hit)
    return min(found) if found else None


RHO = 0.5  # the mixture's prior variance of the daily shift (in daily SDs^2), fixed before any run


def _e_detector_first(series: Series, start: int, arl0: float) -> int | None:
    """A Shiryaev-Roberts e-detector (Shin, Ramdas & Rinaldo 2022) built from the normal-mixture
    e-processes behind confseq's normal_mixture boundaries (Howard et al. 2021): on each day t, the sum
    over every start day j of the mixture likelihood ratio of the days j..t's standardized z's
    (prior N(0, RHO) on the shift; for a decrease, its half below 0). Alarm when the sum reaches
    arl0: then the in-control ARL is at least arl0, for any horizon (no window, no fitted constant)."""
    z = series.daily_z[start:]
    valid = np.isfinite(z)
    s = np.concatenate([[0.0], np.cumsum(np.where(valid, z, 0.0))])
    n = np.concatenate([[0.0], np.cumsum(valid)])
    for t in range(len(z)):
        if not valid[t]:
            continue
        sums, counts = s[t + 1] - s[: t + 1], n[t + 1] - n[: t + 1]
        keep = counts > 0
        sums, counts = sums[keep], counts[keep]
        scale = 1.0 + RHO * counts
        log_e = -0.5 * np.log(scale) + RHO * sums**2 / (2.0 * scale)
        if series.sided == "lower":
            log_e += np.log(2.0) + special.log_ndtr(-sums * np.sqrt(RHO / scale))
        if special.logsumexp(log_e) >= np.log(arl0):
            return start + t
    return None


glr_rule = _restarting(_glr_first)
multi_k_rule = _restarting(_multi_k_first)
e_detector_rule = _restarting(_e_detector_first)


def oracle_rule(shift: float) -> Rule:
    """A CUSUM tuned to the series' true daily shift (size and sign), one-sided, same ARL0."""
    k = abs(shift) / 2

    def first(series: Series, start: int, arl0: float) -> int | None:
        h = cusum.threshold_for_arl(min(max(k, 0.1), 1.5), arl0, sided="upper")
        hit = _cusum_path(series.daily_z[start:], min(max(k, 0.1), 1.5), h, np.sign(shift) or 1.0)
        return None if hit is None else start + hit

    return _restarting(first)


# The shipped fixed-window rules, decided for all series of a world at once (they share families).


def _windowed(values: np.ndarray, width: int = 7) -> np.ndarray:
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    return cumulative[ends] - cumulative[np.maximum(ends - width, 0)]


def shipped_alarms(w: World) -> dict[str, list[int]]:
    """Days each series is in breach under today's rules (first day of each run of breaches)."""
    breach: dict[str, np.ndarray] = {}
    distinct = [s for s in w.series if s.same_as is None]
    performance_series = [s for s in distinct if s.kind == "performance"]
    if performance_series:
        x = np.array([_windowed(s.daily["successes"]) for s in performance_series])
        n = np.array([_windowed(s.daily["totals"]) for s in performance_series])
        target = np.array([s.reference["target"] for s in performance_series])[:, None]
        z = radmon_stats.score_test(x, np.maximum(n, 1), target)
        p = np.where(n >= 30, np.minimum(1.0, 2 * special.ndtr(z)), np.nan)
        for day in range(w.days):
            q = radmon_stats.benjamini_hochberg(p[:, day])
            hit = (q <= 0.05) & (x[:, day] < n[:, day] * target[:, 0])
            for s, h in zip(performance_series, hit, strict=True):
                breach.setdefault(s.name, np.zeros(w.days, dtype=bool))[day] = h
    segments = sum(1 for s in distinct if s.kind in ("mean", "rate") and not s.reference["overall"])
    m = max(2 * (segments // 2), 1)
    for s in distinct:
        if s.kind not in ("mean", "rate"):
            continue
        n = _windowed(s.daily["totals"])
        overall = bool(s.reference["overall"])
        alpha = 0.01 if overall else 0.001 / m
        with np.errstate(divide="ignore", invalid="ignore"):
            if s.kind == "mean":
                shift = (_windowed(s.daily["sums"]) / n - s.reference["mean"]) / s.reference["sd"]
                z = shift / np.sqrt(1 / n + 1 / s.reference["n"])  # rank-type (the shipped Mann-Whitney)
                if "logit_sums" in s.daily:  # the effect: log-odds shift in reference SDs
                    shift = (_windowed(s.daily["logit_sums"]) / n - s.reference["logit_mean"]) / s.reference["logit_sd"]
                effect = np.abs(shift) - (0.03 if overall else 0.0)
                big = effect >= 0.1
            else:
                x = _windowed(s.daily["successes"])
                rate, n_ref = s.reference["rate"], s.reference["n"]
                pooled = (x + rate * n_ref) / (n + n_ref)
                z = (x / n - rate) / np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_ref))
                big = np.abs(x / n - rate) / rate >= 0.2
            p = 2 * special.ndtr(-np.abs(z))
        breach[s.name] = np.nan_to_num(big & (p <= alpha) & (n >= 100), nan=False).astype(bool)
    out = {}
    for name, flags in breach.items():
        starts = np.flatnonzero(flags & ~np.concatenate([[False], flags[:-1]]))
        out[name] = [int(d) for d in starts]
    return out


# ------------------------------------------------------------------------------------------------


def poisson_interval(count: int, exposure: float) -> tuple[float, float]:
    low = stats.chi2.ppf(0.025, 2 * count) / 2 if count else 0.0
    high = stats.chi2.ppf(0.975, 2 * count + 2) / 2
    return low / exposure, high / exposure


DISTINCT = True  # the budget counts series with (nearly) the same rows once (--named: every named series)


def arl0s(w: World, budget: sequential.Budget) -> dict[str, float]:
    count = w.distinct if DISTINCT else w.named
    return {sev: budget.arl0(sev, count(sev)) for sev in ("critical", "warning")}


def null(years: int, first_seed: int, truth: dict[str, float], *, wall: bool = False) -> None:
    budget = sequential.Budget()
    rules: dict[str, Rule] = {"glr": glr_rule, "multi-k CUSUM": multi_k_rule, "e-detector (mixture)": e_detector_rule}
    if wall:
        # Drift series need no labels: what the daily runs see is the data-day path.
        rules["glr, wall clock"] = lambda s, arl0: (
            wall_clock_alarms(s, arl0, 365) if s.labels is not None else glr_rule(s, arl0)
        )
    counts = {r: {"critical": 0, "warning": 0, "below target": 0} for r in [*rules, "shipped"]}
    where: dict[str, list[str]] = {r: [] for r in counts}
    at_boundary = {"glr": 0, "shipped": 0}
    started = time.perf_counter()
    named = None
    for seed in range(first_seed, first_seed + years):
        w = world(Simulation(days=365, per_day=300, seed=seed))
        arl = arl0s(w, budget)
        named = (w.named("critical"), w.named("warning"))
        shipped = shipped_alarms(w)
        for s in w.series:
            if s.same_as is not None:
                continue
            below = s.kind == "performance" and truth.get(s.name, 1.0) < s.reference["target"]
            found = {name: rule(s, arl[s.severity]) for name, rule in rules.items()}
            found["shipped"] = shipped.get(s.name, [])
            for name, days in found.items():
                key = "below target" if below else s.severity
                counts[name][key] += len(days)
                truth_note = f" (true {truth[s.name]:.3f})" if s.name in truth else ""
                where[name] += [f"{seed}:{s.name}@{d}{truth_note}" for d in days if not below]
        # The worst case the budget is stated for: every performance series exactly at its target.
        rng = np.random.default_rng([seed, 13])
        boundary = World([at_target(s, rng) for s in w.series if s.kind == "performance"], w.days, {})
        shipped = shipped_alarms(boundary)
        for s in boundary.series:
            if s.same_as is None:
                at_boundary["glr"] += len(glr_rule(s, arl["critical"]))
                at_boundary["shipped"] += len(shipped.get(s.name, []))
        print(f"  null seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    print(f"\nNULL: {years} model-years (365 days, seeds {first_seed}-{first_seed + years - 1}); named series:"
          f" {named[0] if named else 0} critical, {named[1] if named else 0} warning")  # fmt: skip
    print(f"{'rule':16s} {'false criticals / model-year (95% CI)':40s} {'false warnings / model-month (95% CI)':40s}"
          " alarms in segments truly below target")  # fmt: skip
    for name, c in counts.items():
        crit = poisson_interval(c["critical"], years)
        warn = poisson_interval(c["warning"], years * 12)
        print(
            f"{name:16s} {c['critical'] / years:5.3f} ({crit[0]:.3f}-{crit[1]:.3f}) [{c['critical']:4d}]"
            f"{'':13s} {c['warning'] / (years * 12):5.3f} ({warn[0]:.3f}-{warn[1]:.3f}) [{c['warning']:4d}]"
            f"{'':13s} {c['below target']}"
        )
    for name, count in at_boundary.items():
        low, high = poisson_interval(count, years)
        print(
            f"  {name}: every performance series at its target: {count / years:.3f} false criticals / model-year"
            f" ({low:.3f}-{high:.3f}) [{count}]"
        )
    for name in ("glr",):
        critical = [a for a in where[name] if a.split(":")[1].startswith(("sensitivity", "specificity"))]
        print(f"  {name} false criticals: {', '.join(critical)}")


def wall_clock(series: Series, arl0: float, *, lag: int = 60) -> int | None:
    """The first run day (days after onset, counting the onset day) on which a daily run with only
    the labels arrived by then shows the GLR breach: the version's last WINDOW days, recomputed from
    the labels in hand, alarm standing while its signalling day is in the lookback."""
    if series.labels is None:
        return None
    c = sequential.threshold(arl0, sided=series.sided)
    day, arrived, success = series.labels.T
    for run in range(ONSET + 1, ONSET + HORIZON + lag):
        first = max(run - sequential.WINDOW, 0)
        known = (arrived < run) & (day < run) & (day >= first)
        daily = {
            "successes": np.bincount(day[known & (success == 1)] - first, minlength=run - first).astype(float),
            "totals": np.bincount(day[known] - first, minlength=run - first).astype(float),
        }
        if sequential.glr(daily, series.z_of, sided=series.sided).first_above(c) is not None:
            return run - ONSET
    return None


def wall_clock_alarms(series: Series, arl0: float, days: int) -> list[int]:
    """Null, wall clock: one run a day (run r sees the data days before r and only the labels that
    arrived before r, coverage below 100% as the simulator confirms ~92% of positives and ~70% of
    negatives), each run judging the series over its last WINDOW days since its last reset; an
    alarm is acknowledged on its run day, which resets the series there (docs/decisions/0503).
    Returns the run days that raised a (new) alarm."""
    if series.labels is None:
        return []
    c = sequential.threshold(arl0, sided=series.sided)
    day, arrived, success = series.labels.T
    alarms, reset = [], 0
    for run in range(1, days + 1):
        first = max(run - sequential.WINDOW, reset)
        known = (arrived < run) & (day < run) & (day >= first)
        if not known.any():
            continue
        daily = {
            "successes": np.bincount(day[known & (success == 1)] - first, minlength=run - first).astype(float),
            "totals": np.bincount(day[known] - first, minlength=run - first).astype(float),
        }
        if sequential.glr(daily, series.z_of, sided=series.sided).first_above(c) is not None:
            alarms.append(run)
            reset = run
    return alarms


def scenario(name: str, seeds: range) -> None:
    spec, is_target = SCENARIOS[name]
    budget = sequential.Budget()
    worlds = [world(Simulation(days=ONSET + HORIZON, per_day=300, seed=s, scenarios=spec)) for s in seeds]
    targets = [s.name for s in worlds[0].series if is_target(s.name) and s.same_as is None]
    # The oracle's shift per target series: the mean daily z after onset (first 28 days), over all seeds.
    shifts = {
        t: float(np.nanmean([np.nanmean(next(s for s in w.series if s.name == t).daily_z[ONSET : ONSET + 28])
                             for w in worlds]))
        for t in targets
    }  # fmt: skip
    delays: dict[str, list[float]] = {
        r: [] for r in ("glr", "multi-k CUSUM", "shipped", "oracle CUSUM", "e-detector (mixture)")
    }
    early: dict[str, int] = dict.fromkeys(delays, 0)
    clock: list[float] = []
    for w in worlds:
        arl = arl0s(w, budget)
        shipped = shipped_alarms(w)
        best = dict.fromkeys(delays, np.inf)
        for s in w.series:
            if s.name not in targets:
                continue
            found = {
                "glr": glr_rule(s, arl[s.severity]),
                "multi-k CUSUM": multi_k_rule(s, arl[s.severity]),
                "shipped": shipped.get(s.name, []),
                "oracle CUSUM": oracle_rule(shifts[s.name])(s, arl[s.severity]),
                "e-detector (mixture)": e_detector_rule(s, arl[s.severity]),
            }
            for rule, days in found.items():
                after = [d for d in days if d >= ONSET]
                early[rule] += len(days) - len(after)
                if after:
                    best[rule] = min(best[rule], after[0] - ONSET + 1)
        for rule, value in best.items():
            delays[rule].append(value)
        walls = [wall_clock(s, arl[s.severity]) for s in w.series if s.name in targets and s.labels is not None]
        if walls:
            clock.append(min((x for x in walls if x is not None), default=np.inf))
    shown = ", ".join(f"{t} {v:+.2f}" for t, v in shifts.items())
    print(f"\n{name} ({spec}), seeds {seeds.start}-{seeds.stop - 1}; targets and oracle daily shift: {shown}")
    print(
        f"{'rule':16s} {'<=7':>6s} {'<=14':>6s} {'<=28':>6s} {'<=56':>6s} {'median delay':>13s}  pre-onset alarms in targets"
    )
    for rule, values in delays.items():
        v = np.array(values)
        shares = [f"{int((v <= d).sum())}/{len(v)}" for d in (7, 14, 28, 56)]
        median = np.median(v)
        print(f"{rule:16s} " + " ".join(f"{s:>6s}" for s in shares) + f" {median:>13.1f}  {early[rule]}"
              + "   delays " + ",".join("-" if not np.isfinite(x) else str(int(x)) for x in v))  # fmt: skip
    if clock:
        v = np.array(clock)
        shares = " ".join(f"<={d}: {int((v <= d).sum())}/{len(v)}" for d in (14, 28, 56))
        print(f"glr, wall clock (a run a day with the labels in hand): median {np.median(v):.1f} days after onset; "
              f"{shares}; " + ",".join("-" if not np.isfinite(x) else str(int(x)) for x in v))  # fmt: skip


def _unit_glr(x: np.ndarray, window: int = sequential.WINDOW) -> np.ndarray:
    """G_t of N(0, 1) days with a known mean: what sequential.glr computes, without its (T, WINDOW) arrays."""
    cumulative = np.concatenate([[0.0], np.cumsum(x)])
    g = np.full(len(x), -np.inf)
    for m in range(1, window + 1):
        np.maximum(g[m - 1 :], (cumulative[m:] - cumulative[:-m]) / np.sqrt(m), out=g[m - 1 :])
    return g


def calibrate(days: float, seed: int) -> None:
    """Run lengths of the GLR from a fresh start on N(0, 1) days at several thresholds."""
    rng = np.random.default_rng(seed)
    print("c      runs    ARL0 (se)     fitted ARL0")
    for c in (2.6, 3.0, 3.4, 3.8, 4.2, 4.6):
        fitted = sequential.arl0_of(c, sided="upper")
        lengths: list[int] = []
        total, x = 0, np.zeros(0)
        while total < days:
            if len(x) < 8 * fitted:
                x = np.concatenate([x, rng.standard_normal(int(max(8 * fitted, 4000)))])
            above = np.flatnonzero(_unit_glr(x) > c)
            if not len(above):
                continue  # the path grows until it signals
            lengths.append(int(above[0]) + 1)
            total += int(above[0]) + 1
            x = x[above[0] + 1 :]  # a fresh start: the next run begins after the signal
        values = np.array(lengths)
        se = values.std() / np.sqrt(len(values))
        print(f"{c:.1f} {len(values):7d} {values.mean():9.0f} ({se:5.0f}) {fitted:11.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--null-years", type=int, default=100)
    parser.add_argument("--null-first-seed", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--calibrate", action="store_true", help="only the GLR's ARL0 by simulation")
    parser.add_argument("--pooled", action="store_true", help="drift windows against the reference and the past")
    parser.add_argument("--named", action="store_true", help="the budget split over every named series")
    parser.add_argument(
        "--wall-clock-null", action="store_true",
        help="also the null judged as the daily runs see it: labels in hand on each run day, reset on each alarm",
    )  # fmt: skip
    args = parser.parse_args()
    global POOLED, DISTINCT
    POOLED, DISTINCT = args.pooled, not args.named
    started, cpu = time.perf_counter(), time.process_time()
    if args.calibrate:
        calibrate(2e6, 7)
        return
    for name in filter(None, args.scenarios.split(",")):
        scenario(name, range(args.first_seed, args.first_seed + args.seeds))
    if args.null_years:
        null(args.null_years, args.null_first_seed, truths(), wall=args.wall_clock_null)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"\n{time.perf_counter() - started:.0f} s wall, {time.process_time() - cpu:.0f} s CPU; load average {load}")


if __name__ == "__main__":
    main()
