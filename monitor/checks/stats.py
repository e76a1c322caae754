"""Vectorized interval estimates and tests for performance monitoring, independent of the database.

Every function takes numpy arrays (one entry per segment where that makes sense) and returns
arrays, so a run over hundreds of segments costs a handful of numpy calls:

- Wilson score interval for a proportion (continuity-corrected by default), and the score test it
  inverts (so "the 95% upper bound is below the target" and "the score test rejects p >= target
  at 2.5%" are the same statement).
- Miettinen-Nurminen score interval and test for a difference of two independent proportions
  (segment vs the rest of the population); interval and test are inversions of one statistic.
- DeLong's AUC variance with midranks (Sun & Xu 2014: O(n log n) after one sort), per group.
- A Poisson bootstrap of Brier score and expected calibration error on per-cell sufficient
  statistics (see `calibration_bootstrap`), seeded.
- Benjamini-Hochberg adjusted p-values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

Z95 = 1.959963984540054


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def normal_two_sided(z: np.ndarray) -> np.ndarray:
    """Two-sided p-value of a standard normal statistic (NaN stays NaN)."""
    return special.erfc(np.abs(np.asarray(z, dtype=np.float64)) / np.sqrt(2.0))


def worse_side(z: npt.ArrayLike) -> np.ndarray:
    """Doubled one-sided p-value for "smaller than": min(1, 2 P(Z <= z)).

    Below the null it equals the two-sided p-value, so a lone test rejects at 0.05 exactly when
    the 95% interval lies below; above it is 1. In a Benjamini-Hochberg family this keeps
    estimates far on the good side (an AUC of 0.96 against a 0.85 target) from counting as
    discoveries that would loosen the threshold for everything else."""
    return np.minimum(1.0, 2.0 * special.ndtr(np.asarray(z, dtype=np.float64)))


# ---------------------------------------------------------------------------------------------
# One proportion


def wilson_interval(
    successes: np.ndarray, n: np.ndarray, *, z: float = Z95, continuity: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (with continuity correction unless told otherwise); NaN where n is 0.

    The corrected interval (Newcombe 1998, method 4) takes the plain Wilson lower bound at
    x - 1/2 and the upper at x + 1/2. Plain Wilson's coverage oscillates below nominal (exactly
    93.6% at p=0.9, n=100 and 93.9% at p=0.95, n=30 for a nominal 95%); the corrected one stays
    at or above 95% there, at ~8% more width. A breach is a patient-safety claim, so the
    decisions use the corrected interval (docs/decisions/0420-performance-and-subgroup-statistics.md)."""
    x, n = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    shift = 0.5 if continuity else 0.0
    low = np.where(x <= 0, 0.0, _wilson_bound(x - shift, n, z, -1.0))
    high = np.where(x >= n, 1.0, _wilson_bound(x + shift, n, z, 1.0))
    return np.where(n > 0, np.clip(low, 0.0, 1.0), np.nan), np.where(n > 0, np.clip(high, 0.0, 1.0), np.nan)


def wilson(successes: float, n: float) -> tuple[float, float]:
    """wilson_interval (continuity-corrected, 95%) of one proportion, as floats: the drift checks'
    missing-share and positive-rate rules judge with the same interval as performance."""
    low, high = wilson_interval(np.asarray(successes), np.asarray(n))
    return float(low), float(high)


def _wilson_bound(x: np.ndarray, n: np.ndarray, z: float, side: float) -> np.ndarray:
    safe_n = np.where(n > 0, n, 1.0)
    p = np.clip(x / safe_n, 0.0, 1.0)
    z2 = z * z
    denominator = 1.0 + z2 / safe_n
    centre = (p + z2 / (2.0 * safe_n)) / denominator
    half = z / denominator * np.sqrt(np.maximum(p * (1.0 - p) / safe_n + z2 / (4.0 * safe_n * safe_n), 0.0))
    return centre + side * half


def score_test(successes: npt.ArrayLike, n: npt.ArrayLike, p0: npt.ArrayLike, *, continuity: bool = True) -> np.ndarray:
    """Score statistic (x - n p0) / sqrt(n p0 (1 - p0)), shrunk by 1/2 toward 0 when corrected.

    It is the statistic `wilson_interval` inverts: |z| > 1.96 exactly when p0 lies outside the
    95% interval (same continuity setting)."""
    x, n = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    p0 = np.clip(np.asarray(p0, dtype=np.float64), 1e-12, 1 - 1e-12)
    deviation = x - n * p0
    if continuity:
        deviation = np.sign(deviation) * np.maximum(np.abs(deviation) - 0.5, 0.0)
    return _ratio(deviation, np.sqrt(n * p0 * (1.0 - p0)))


# ---------------------------------------------------------------------------------------------
# Difference of two independent proportions: Miettinen-Nurminen


def _constrained_mle(
    x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MLE of (p1, p2) under p1 - p2 = delta: the closed-form root of Farrington & Manning's cubic."""
    p1, p2 = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1.0 + theta
    b = -(1.0 + theta + p1 + theta * p2 + delta * (theta + 2.0))
    c = delta * delta + delta * (2.0 * p1 + theta + 1.0) + p1 + theta * p2
    d = -p1 * delta * (1.0 + delta)
    v = b**3 / (27.0 * a**3) - b * c / (6.0 * a * a) + d / (2.0 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b * b / (9.0 * a * a) - c / (3.0 * a), 0.0))
    u = np.where(u == 0, 1e-300, u)
    w = (np.pi + np.arccos(np.clip(v / u**3, -1.0, 1.0))) / 3.0
    q1 = np.clip(2.0 * u * np.cos(w) - b / (3.0 * a), 0.0, 1.0)
    q2 = np.clip(q1 - delta, 0.0, 1.0)
    return q1, q2


def mn_statistic(
    x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray, delta: np.ndarray | float = 0.0
) -> np.ndarray:
    """Miettinen-Nurminen score statistic for H0: p1 - p2 = delta (standard normal under H0)."""
    x1, n1, x2, n2 = (np.asarray(v, dtype=np.float64) for v in (x1, n1, x2, n2))
    delta = np.broadcast_to(np.asarray(delta, dtype=np.float64), np.broadcast_shapes(x1.shape, np.shape(delta))).copy()
    ok = (n1 > 0) & (n2 > 0)
    n1s, n2s = np.where(ok, n1, 1.0), np.where(ok, n2, 1.0)
    q1, q2 = _constrained_mle(x1, n1s, x2, n2s, delta)
    total = n1s + n2s
    variance = (q1 * (1 - q1) / n1s + q2 * (1 - q2) / n2s) * total / np.maximum(total - 1.0, 1.0)
    diff = x1 / n1s - x2 / n2s - delta
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(
            variance > 0,
            diff / np.sqrt(np.where(variance > 0, variance, 1.0)),
            np.where(diff == 0, 0.0, np.sign(diff) * np.inf),
        )
    return np.where(ok, z, np.nan)


def mn_difference(
    x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray, *, z: float = Z95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(p1 - p2, its MN score interval low and high, two-sided p-value of p1 = p2).

    The interval is {delta : |MN statistic| <= z}, found by bisection (60 halvings: exact to
    1e-15 whatever the counts); the p-value comes from the same statistic at delta = 0, so
    "0 lies outside the interval" and "p < 0.05" always agree."""
    x1, n1, x2, n2 = (np.asarray(v, dtype=np.float64) for v in (x1, n1, x2, n2))
    estimate = _ratio(x1, n1) - _ratio(x2, n2)
    # The statistic decreases in delta: the lower bound is where it falls to z, the upper to -z.
    low = _bisect(lambda d: mn_statistic(x1, n1, x2, n2, d) - z, np.full_like(estimate, -1.0), np.nan_to_num(estimate))
    high = _bisect(lambda d: mn_statistic(x1, n1, x2, n2, d) + z, np.nan_to_num(estimate), np.full_like(estimate, 1.0))
    p_value = normal_two_sided(mn_statistic(x1, n1, x2, n2, 0.0))
    valid = np.isfinite(estimate)
    return estimate, np.where(valid, low, np.nan), np.where(valid, high, np.nan), np.where(valid, p_value, np.nan)


def _bisect(f, low: np.ndarray, high: np.ndarray, iterations: int = 60) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Root of a decreasing f between low and high, elementwise (an end when f keeps one sign)."""
    low, high = low.astype(np.float64).copy(), high.astype(np.float64).copy()
    f_low = f(low)
    stays_positive = f(high) > 0
    below = ~(f_low > 0)  # f already <= 0 at the lower end: the root is the lower end
    for _ in range(iterations):
        middle = (low + high) / 2.0
        positive = f(middle) > 0
        low = np.where(positive, middle, low)
        high = np.where(positive, high, middle)
    root = (low + high) / 2.0
    return np.where(below, low, np.where(stays_positive, high, root))


# ---------------------------------------------------------------------------------------------
# Ranks within groups and DeLong's AUC


def group_order(scores: np.ndarray, groups: np.ndarray, score_order: np.ndarray | None = None) -> np.ndarray:
    """Row order sorting by group, then score. With `score_order` (an argsort of the scores,
    shared by every partition of a run) only a stable integer sort by group remains: O(n)."""
    if score_order is None:
        return np.lexsort((scores, groups))
    codes = groups[score_order]
    if codes.size and codes.max() < 65536:  # numpy radix-sorts 16-bit integers when asked for stability
        codes = codes.astype(np.uint16)
    return score_order[np.argsort(codes, kind="stable")]


def midranks_in_runs(keys_sorted: tuple[np.ndarray, ...], group_start_rank: np.ndarray) -> np.ndarray:
    """Midranks (1-based) of rows already sorted by keys; ties are rows whose keys are all equal.

    `group_start_rank` is, for each sorted row, the position where its group starts: ranks restart
    at 1 in every group."""
    n = len(keys_sorted[0])
    if n == 0:
        return np.zeros(0)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for key in keys_sorted:
        change[1:] |= key[1:] != key[:-1]
    run = np.cumsum(change) - 1
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], n) - 1
    midpoint = (starts + ends) / 2.0
    return midpoint[run] - group_start_rank + 1.0


@dataclass
class GroupedAUC:
    auc: np.ndarray  # per group; NaN without both classes
    variance: np.ndarray  # DeLong
    positives: np.ndarray
    negatives: np.ndarray

    def interval(self, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
        """Wald interval on the AUC scale, centred on the estimate, clipped to [0, 1]."""
        se = np.sqrt(self.variance)
        return np.clip(self.auc - z * se, 0.0, 1.0), np.clip(self.auc + z * se, 0.0, 1.0)


def delong_auc(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray | None = None,
    n_groups: int | None = None,
    *,
    score_order: np.ndarray | None = None,
) -> GroupedAUC:
    """AUC and DeLong variance per group (ties count one half, as in roc_auc_score).

    DeLong's structural components: for a positive i, V10_i = (negatives of its group scored
    below it + half those tied) / n_negatives; for a negative j, V01_j = (positives above + half
    tied) / n_positives. The AUC is the mean of V10, its variance var(V10)/m + var(V01)/n. With
    the rows sorted by (group, score) both counts come from running class counts at the start of
    each run of tied scores (the midrank formulation of Sun & Xu 2014, in one pass)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if groups is None:
        groups = np.zeros(len(labels), dtype=np.int64)
        n_groups = 1
    groups = np.asarray(groups, dtype=np.int64)
    n_groups = int(n_groups if n_groups is not None else (groups.max() + 1 if len(groups) else 0))
    if len(labels) == 0:
        empty = np.full(n_groups, np.nan)
        return GroupedAUC(empty, empty.copy(), np.zeros(n_groups, dtype=np.int64), np.zeros(n_groups, dtype=np.int64))
    order = group_order(scores, groups, score_order)
    g, s, y = groups[order], scores[order], labels[order]
    m = np.bincount(g, weights=y, minlength=n_groups)
    n = np.bincount(g, minlength=n_groups) - m
    change = np.empty(len(g), dtype=bool)
    change[0] = True
    np.not_equal(s[1:], s[:-1], out=change[1:])
    change[1:] |= g[1:] != g[:-1]
    run = np.cumsum(change) - 1
    starts = np.flatnonzero(change)
    positives_before = np.cumsum(y) - y  # positives earlier in the sorted order (all groups)
    group_start = np.concatenate([[0], np.cumsum(m + n)[:-1]]).astype(np.int64)
    run_group = g[starts]
    run_pos = np.bincount(run, weights=y)
    run_neg = np.bincount(run, weights=~y)
    pos_below = positives_before[starts] - positives_before[group_start[run_group]]
    neg_below = (starts - group_start[run_group]) - pos_below
    pos_above = m[run_group] - pos_below - run_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        v10_run = (neg_below + 0.5 * run_neg) / n[run_group]
        v01_run = (pos_above + 0.5 * run_pos) / m[run_group]
    # Per group sums over rows = sums over runs weighted by the run's class counts.
    auc = _ratio(np.bincount(run_group, weights=np.nan_to_num(v10_run) * run_pos, minlength=n_groups), m)
    mean01 = _ratio(np.bincount(run_group, weights=np.nan_to_num(v01_run) * run_neg, minlength=n_groups), n)
    d10 = np.nan_to_num(v10_run - auc[run_group])
    d01 = np.nan_to_num(v01_run - mean01[run_group])
    s10 = _ratio(np.bincount(run_group, weights=d10 * d10 * run_pos, minlength=n_groups), m - 1)
    s01 = _ratio(np.bincount(run_group, weights=d01 * d01 * run_neg, minlength=n_groups), n - 1)
    variance = _ratio(s10, m) + _ratio(s01, n)
    valid = (m > 0) & (n > 0)
    return GroupedAUC(
        auc=np.where(valid, auc, np.nan),
        variance=np.where(valid, np.nan_to_num(variance, nan=0.0), np.nan),
        positives=m.astype(np.int64),
        negatives=n.astype(np.int64),
    )


# ---------------------------------------------------------------------------------------------
# Calibration: reliability bins, ECE and Brier with a seeded Poisson bootstrap


ECE_BINS = 10  # the usual equal-width bins of the expected calibration error
CELL_BINS = 20  # finer cells for the bootstrap (width 0.05); a multiple of ECE_BINS so ECE bins are unions


def calibration_bins(scores: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin index of each score in [0, 1] (1.0 falls in the last bin)."""
    return np.minimum((np.asarray(scores, dtype=np.float64) * n_bins).astype(np.int64), n_bins - 1).clip(0)


@dataclass
class CalibrationCells:
    """Sufficient statistics per (group, bin, class): count, sum and sum of squares of the score."""

    count: np.ndarray  # shape (groups, bins, 2); class 0 negatives, 1 positives
    score_sum: np.ndarray
    score_sq: np.ndarray

    @classmethod
    def build(
        cls, labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, n_groups: int, n_bins: int = CELL_BINS
    ) -> CalibrationCells:
        scores = np.asarray(scores, dtype=np.float64)
        cell = (np.asarray(groups, dtype=np.int64) * n_bins + calibration_bins(scores, n_bins)) * 2 + np.asarray(
            labels, dtype=np.int64
        )
        size = n_groups * n_bins * 2
        shape = (n_groups, n_bins, 2)
        return cls(
            count=np.bincount(cell, minlength=size).reshape(shape).astype(np.float64),
            score_sum=np.bincount(cell, weights=scores, minlength=size).reshape(shape),
            score_sq=np.bincount(cell, weights=scores * scores, minlength=size).reshape(shape),
        )

    def brier_sum(self) -> np.ndarray:
        """Sum of (score - label)^2 per cell: s^2 for negatives, (1 - s)^2 = 1 - 2s + s^2 for positives."""
        return self.score_sq + np.stack(
            [np.zeros_like(self.count[..., 0]), self.count[..., 1] - 2 * self.score_sum[..., 1]], axis=-1
        )


def coarsen(cells: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """Sum fine score bins (axis -2) into `bins` equal-width bins."""
    shape = cells.shape
    return cells.reshape(*shape[:-2], bins, shape[-2] // bins, shape[-1]).sum(axis=-2)


def ece_from_cells(count: np.ndarray, score_sum: np.ndarray) -> np.ndarray:
    """Expected calibration error per group (and per replicate, over leading axes), on ECE_BINS bins."""
    count, score_sum = coarsen(count), coarsen(score_sum)
    n_bin = count.sum(axis=-1)
    gap = np.abs(score_sum.sum(axis=-1) - count[..., 1])
    return _ratio(gap.sum(axis=-1), n_bin.sum(axis=-1))


def brier_from_cells(count: np.ndarray, brier_sum: np.ndarray) -> np.ndarray:
    return _ratio(brier_sum.sum(axis=(-1, -2)), count.sum(axis=(-1, -2)))


def calibration_bootstrap(cells: CalibrationCells, *, replicates: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of (Brier, ECE) per group: arrays of shape (replicates, groups).

    A Poisson bootstrap (each row weighted by a Poisson(1) count) on sufficient statistics: a
    cell's resampled row count is Poisson(n_cell), and the sum of its resampled scores given that
    count K is drawn as Normal(K mean, K var) of the cell's scores. Mean and variance of every
    resampled sum are those of the row bootstrap exactly; only the shape within a cell (a narrow
    score bin of one class) is approximated. Cost: replicates x cells, independent of row count."""
    rng = np.random.default_rng(seed)
    count = cells.count
    mean = _ratio(cells.score_sum, count)
    variance = np.maximum(_ratio(cells.score_sq, count) - mean * mean, 0.0)
    mean, variance = np.nan_to_num(mean), np.nan_to_num(variance)
    k = rng.poisson(np.broadcast_to(count, (replicates, *count.shape))).astype(np.float64)
    score_sum = k * mean + np.sqrt(k * variance) * rng.standard_normal(k.shape)
    # Brier terms need the resampled sum of squares too: its within-cell spread is second order
    # (bins are narrow), so K times the cell's mean square keeps its expectation exact.
    mean_sq = np.nan_to_num(_ratio(cells.score_sq, count))
    score_sq = k * mean_sq + 2 * mean * (score_sum - k * mean)
    brier_sum = score_sq + np.stack([np.zeros_like(k[..., 0]), k[..., 1] - 2 * score_sum[..., 1]], axis=-1)
    return brier_from_cells(k, brier_sum), ece_from_cells(k, score_sum)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the first axis, ignoring NaN replicates."""
    tail = (1.0 - level) / 2.0 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups: NaN bounds
        return np.nanpercentile(replicates, tail, axis=0), np.nanpercentile(replicates, 100 - tail, axis=0)


# ---------------------------------------------------------------------------------------------
# Multiple testing


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values); a test is a discovery at level q when its value <= q.

    NaN p-values (tests not made, e.g. insufficient data) stay NaN and do not count in m."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = len(tested)
    if m == 0:
        return adjusted
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return adjusted
