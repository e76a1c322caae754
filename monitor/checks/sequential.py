"""Sequential decisions over daily statistics: a window-limited GLR with a false-alarm budget per model.

Every monitored series (a metric in a segment: sensitivity at site=north, the score's log-odds
shift at manufacturer=GE, the positive rate overall ...) keeps its daily sufficient statistics
(cases and successes; rows and sums). A fixed 7-day window forgets everything before it, so an
effect that persists never accumulates evidence. Here, on every day t the detector asks whether
the series changed at some day tau in the last `WINDOW` days (since its last reset), and for each
candidate tau tests the pooled days [tau, t] against the in-control value:

    G_t = max over tau in (t - WINDOW, t] of Z(tau, t)

(Z for a decrease, -Z; |Z| for both directions). For a normal mean with known variance this is
the generalized likelihood ratio (GLR) CUSUM of Lai (1995) with the shift size estimated, not
supplied: sqrt(2 log GLR) = max Z. No user-supplied shift: a small persisting shift is caught by a
long window, a large one by a short window. The estimated onset is the maximizing tau.

Z per window, from pooled day totals (so a day whose late labels arrive is recomputed from its
stored totals, never incremented twice):
- `proportion_vs_target`: x successes of n cases against a fixed value p0 (sensitivity against
  its target): the mid-p normal score under Binomial(n, p0) (cusum.standardize), calibrated at
  small n where the Wald statistic's tail is heavy.
- `mean_vs_reference`: the window's mean against the reference pooled with the series' own days
  before the window (since the reset): (mean - before) / (reference SD * sqrt(1/n + 1/n_before)).
  Comparing every window with the reference alone would let the reference sample's own error
  accumulate as if it were drift (a segment of 250 reference rows whose mean is 2 SE off is
  "shifted" in every window, and alarms again after every reset: measured, docs/decisions/0503);
  pooling in the series' past makes that error fade as the series ages.
- `proportion_vs_reference`: the same for a rate (pooled two-proportion z).

Threshold: G_t exceeds c at a rate that depends only on c and WINDOW when the daily Z's are
N(0, 1) and independent. The in-control average run length from a fresh start, measured by
simulation (bench/sequential.py --calibrate; 200-3000 run lengths per c), follows the shape of
Siegmund's tail approximation for the maximum of a Gaussian random field,

    ARL0(c) = exp(ALPHA + BETA log c + c^2 / 2)

within 7% for c in 2.6-4.8 (ARL0 94 - 150 000 days); `threshold` inverts it. Both directions
halve the ARL0 (two one-sided charts).

Budget: a model's false criticals per year and false warnings per month are stated in its policy
(`Budget`); each series of a severity gets ARL0 = horizon / allowed x number of such series
(Bonferroni on alarm rates), so adding segments raises every series' threshold instead of adding
false alarms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
from scipy import optimize

from monitor.checks import cusum
from monitor.checks.performance import Figure
from monitor.checks.schemas import MonitoringPolicy
from monitor.checks.windows import reference_places

WINDOW = 56  # days back a change point may lie
# log ARL0 = ALPHA + BETA log c + c^2/2: fitted to fresh-start run lengths for WINDOW = 56 (docs/decisions/0503).
ALPHA, BETA = 2.4501, -1.3110
DAYS_PER_YEAR, DAYS_PER_MONTH = 365.25, 365.25 / 12
MIN_THRESHOLD = 2.0  # below this the fit is not valid (ARL0 < ~20 days)


@dataclass(frozen=True)
class Budget:
    """False alarms a model may raise while nothing changed; split across its series."""

    critical_per_year: float = 1.0
    warning_per_month: float = 1.0

    def arl0(self, severity: str, series: int) -> float:
        """The in-control average run length (days) of each of `series` series of that severity."""
        series = max(series, 1)
        if severity == "critical":
            return DAYS_PER_YEAR / self.critical_per_year * series
        return DAYS_PER_MONTH / self.warning_per_month * series


def budget_for(policy: MonitoringPolicy) -> Budget:
    return Budget(policy.false_criticals_per_year, policy.false_warnings_per_month)


def arl0_of(c: float, *, sided: str = "lower") -> float:
    """Days to a false signal of one series at threshold c (one direction; 'two': both)."""
    one = float(np.exp(ALPHA + BETA * np.log(c) + c * c / 2.0))
    return one / 2.0 if sided == "two" else one


@lru_cache(maxsize=1024)
def threshold(arl0: float, *, sided: str = "lower") -> float:
    """The c whose in-control ARL is arl0 days."""
    if arl0 <= 1:
        raise ValueError(f"the in-control ARL must exceed 1 day; got {arl0}")
    target = np.log(arl0)
    low = MIN_THRESHOLD
    if np.log(arl0_of(low, sided=sided)) >= target:
        return low
    return float(optimize.brentq(lambda c: np.log(arl0_of(c, sided=sided)) - target, low, 12.0, xtol=1e-8))


# ------------------------------------------------------------------------------------------------
# Window statistics. Each takes window sums of shape (T, WINDOW) (end day x window length) and
# returns Z of the same shape; NaN where the window has no data.

WindowZ = Callable[[dict[str, np.ndarray]], np.ndarray]


SCREEN = 1.0  # |score z| <= 1 implies |mid-p z| <= 1 (checked for n < 1500 and p0 from 0.5 to 0.999)


def proportion_vs_target(p0: float, *, sided: str = "two") -> WindowZ:
    """Mid-p normal scores, computed exactly only where the score statistic leaves [-1, 1] (below -1
    for sided="lower"): thresholds are >= 2, so the cheap statistic stands in where it cannot matter."""

    def z(sums: dict[str, np.ndarray]) -> np.ndarray:
        x, n = sums["successes"], sums["totals"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(n > 0, (x - n * p0) / np.sqrt(n * p0 * (1 - p0)), np.nan)
        score = np.nan_to_num(out)
        exact = score < -SCREEN if sided == "lower" else np.abs(score) > SCREEN
        out[exact] = cusum.standardize(x[exact], n[exact], p0)
        return out

    return z


def mean_vs_reference(mean: float, sd: float, n_reference: float, *, pooled: bool = True) -> WindowZ:
    """The window's mean against the reference pooled with the series' own days before the window
    (pooled=False: against the reference alone)."""

    def z(sums: dict[str, np.ndarray]) -> np.ndarray:
        n = sums["totals"]
        before = n_reference + sums["prior_totals"] * pooled
        before_mean = (mean * n_reference + sums["prior_sums"] * pooled) / before
        with np.errstate(divide="ignore", invalid="ignore"):
            se = sd * np.sqrt(1.0 / n + 1.0 / before)
            return np.where(n > 0, (sums["sums"] / n - before_mean) / se, np.nan)

    return z


def proportion_vs_reference(rate: float, n_reference: float, *, pooled: bool = True) -> WindowZ:
    """The window's rate against the reference pooled with the series' own days before the window
    (pooled=False: against the reference alone)."""

    def z(sums: dict[str, np.ndarray]) -> np.ndarray:
        n, x = sums["totals"], sums["successes"]
        before = n_reference + sums["prior_totals"] * pooled
        before_rate = (rate * n_reference + sums["prior_successes"] * pooled) / before
        with np.errstate(divide="ignore", invalid="ignore"):
            common = (x + before_rate * before) / (n + before)
            se = np.sqrt(common * (1 - common) * (1.0 / n + 1.0 / before))
            return np.where((n > 0) & (se > 0), (x / n - before_rate) / se, np.nan)

    return z


@dataclass(frozen=True)
class Scan:
    """The detector over a series' days: per end day, G and the start day maximizing it."""

    statistic: np.ndarray  # G_t, in the direction tested (larger = more evidence of change)
    onset: np.ndarray  # the maximizing tau for each t (day index)
    z: np.ndarray  # the signed Z of that window

    def first_above(self, c: float) -> int | None:
        above = np.flatnonzero(self.statistic > c)
        return int(above[0]) if len(above) else None


def window_sums(daily: dict[str, np.ndarray], window: int = WINDOW) -> dict[str, np.ndarray]:
    """Sums over [t - m + 1, t] for every end day t and length m = 1..window (NaN before day 0), and
    `prior_<name>`: the sums over the series' days before that window (since its reset)."""
    out: dict[str, np.ndarray] = {}
    for name, values in daily.items():
        values = np.asarray(values, dtype=np.float64)
        cumulative = np.concatenate([[0.0], np.cumsum(values)])
        ends = np.arange(1, len(values) + 1)[:, None]
        starts = ends - np.arange(1, window + 1)[None, :]
        valid = starts >= 0
        out[name] = np.where(valid, cumulative[ends] - cumulative[np.maximum(starts, 0)], np.nan)
        out[f"prior_{name}"] = np.where(valid, cumulative[np.maximum(starts, 0)], np.nan)
    return out


def glr(daily: dict[str, np.ndarray], z_of: WindowZ, *, sided: str = "lower", window: int = WINDOW) -> Scan:
    """G_t for every day t of the series (days since its last reset, oldest first).

    daily: per-day totals (`totals`, and `successes` or `sums`), from the stored day totals."""
    length = len(next(iter(daily.values())))
    if length == 0:
        empty = np.zeros(0)
        return Scan(empty, empty.astype(np.int64), empty)
    z = z_of(window_sums(daily, window))
    oriented = {"lower": -z, "upper": z, "two": np.abs(z)}[sided]
    oriented = np.where(np.isfinite(oriented), oriented, -np.inf)
    best = np.argmax(oriented, axis=1)
    rows = np.arange(length)
    statistic = oriented[rows, best]
    return Scan(
        statistic=np.where(np.isfinite(statistic), statistic, 0.0),
        onset=rows - best,
        z=np.nan_to_num(z[rows, best]),
    )


@dataclass(frozen=True)
class Decision:
    """A series' sequential verdict as of its last day."""

    signalled: bool
    day: int | None  # first day G crossed the threshold since the reset
    onset: int | None  # the change point estimated on that day
    statistic: float  # G on the last day
    threshold: float
    z: float  # the signed Z of the maximizing window on the signalling (else the last) day

    def details(self) -> dict[str, float | int | None]:
        return {"statistic": round(self.statistic, 4), "threshold": round(self.threshold, 4), "z": round(self.z, 4)}


def decide(path: Scan, c: float) -> Decision:
    """An alarm stands from the first day G crosses c (until the series is reset)."""
    first = path.first_above(c)
    last = float(path.statistic[-1]) if len(path.statistic) else 0.0
    if first is None:
        return Decision(False, None, None, last, c, float(path.z[-1]) if len(path.z) else 0.0)
    return Decision(True, first, int(path.onset[first]), last, c, float(path.z[first]))


def binned_places(reference_counts: np.ndarray) -> np.ndarray:
    """Each bin's place in the reference (mid-rank / n: the share of reference values below it plus
    half its own), a bounded rank-type statistic a daily profile's bin counts give exactly."""
    return reference_places(reference_counts)


def binned_moments(counts: np.ndarray, places: np.ndarray) -> tuple[float, float, float]:
    """(rows, mean place, SD of the place) of a sample given as bin counts."""
    counts = np.asarray(counts, dtype=np.float64)
    n = float(counts.sum())
    if n < 2:
        return n, 0.5, 0.0
    mean = float(counts @ places / n)
    return n, mean, float(np.sqrt(counts @ np.square(places - mean) / (n - 1)))


def drift_decision(daily: dict[str, np.ndarray], z_of: WindowZ, *, arl0: float) -> Decision:
    """A drift series' verdict (two-sided) from its daily totals since its start."""
    return decide(glr(daily, z_of, sided="two"), threshold(arl0, sided="two"))


# ------------------------------------------------------------------------------------------------
# The performance and subgroups kinds: a sequential verdict per metric x segment with a target.

PERFORMANCE_METRICS = {"sensitivity": ("tp", "positives"), "specificity": ("tn", "negatives")}


def critical_series(targets: dict[str, float], segments: int) -> int:
    """The model's critical series: sensitivity and specificity (those with a target) overall and per segment."""
    return sum(metric in targets for metric in PERFORMANCE_METRICS) * (1 + segments)


def performance_figures(
    counts: dict[str, np.ndarray],
    names: list[str | None],
    *,
    first_day: int,
    targets: dict[str, float],
    budget: Budget,
    series: int,
    resets: dict[tuple[str, str | None], int] | None = None,
) -> list[Figure]:
    """`<metric>_sequential` per group from its daily counts (rows: groups, columns: days of the lookback,
    recomputed each run from the stored labels, so late labels replace a day's totals).

    breach when G crossed the budget's threshold on any day since the series' start (the alarm stands; the
    version's own rows only, so a new version starts fresh); value = G today, threshold = c;
    details.onset = the change point estimated when it crossed (ISO date), details.sequential =
    the statistic, threshold and signed Z of that window. resets: (metric, group) -> the day index
    (of the lookback) where a person acknowledged or resolved the series' alert; its evidence
    starts there, so the days that raised the alarm do not raise it again (docs/decisions/0503)."""
    arl0 = budget.arl0("critical", series)
    c = threshold(arl0)
    resets = resets or {}
    figures = []
    for metric, (success, total) in PERFORMANCE_METRICS.items():
        if metric not in targets:
            continue
        z_of = proportion_vs_target(targets[metric], sided="lower")
        for i, name in enumerate(names):
            start = min(max(resets.get((metric, name), 0), 0), counts[total].shape[1])

            def iso(day: int | None, start: int = start) -> str | None:
                return None if day is None else date.fromordinal(first_day + start + day).isoformat()

            reset = {"reset_on": iso(0)} if start > 0 else {}
            successes, totals = counts[success][i][start:], counts[total][i][start:]
            cases = int(totals.sum())
            if cases == 0:
                figures.append(
                    Figure(f"{metric}_sequential", name, None, None, None, 0, c, "glr", "insufficient_data",
                           details={"reason": "no labelled cases in the lookback" + (" since the reset" if reset else ""),
                                    **reset})
                )  # fmt: skip
                continue
            decision = decide(glr({"successes": successes, "totals": totals}, z_of), c)
            figures.append(
                Figure(
                    f"{metric}_sequential", name, round(decision.statistic, 4), None, None, cases, round(c, 4), "glr",
                    "breach" if decision.signalled else "ok",
                    details={
                        "onset": iso(decision.onset), "signalled_on": iso(decision.day), **reset,
                        "sequential": decision.details() | {"arl0_days": round(arl0, 1), "series": series,
                                                            "window_days": WINDOW, "target": targets[metric]},
                    },
                )
            )  # fmt: skip
    return figures
