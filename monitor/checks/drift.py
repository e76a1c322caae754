"""Column drift from histogram profiles, with Evidently 0.7's method choice and verdicts.

Every statistic here is computed from the mergeable profiles (monitor.checks.profiles), never
from raw rows, and reproduces Evidently's legacy stattests (evidently/legacy/calculations/
stattests) on the same data:

- method choice (`_get_default_stattest`): reference (non-missing) <= 1000 rows: numeric with
  <= 5 distinct values (reference and current together) -> chi-square (3-5 values) or Z-test (<= 2),
  numeric otherwise -> KS p-value, categorical -> chi-square (> 2 values) or Z-test; larger
  references: numeric with <= 5 values -> Jensen-Shannon, numeric otherwise -> Wasserstein
  (normed by the reference's standard deviation), categorical -> Jensen-Shannon.
- thresholds: 0.1 for the distances (Wasserstein, Jensen-Shannon, PSI; the policy's
  drift_threshold), 0.05 for the p-values (KS, chi-square, Z); a FeatureSpec pins either.
- verdicts: distance >= threshold; KS p <= threshold; chi-square and Z p < threshold.

Exact from the profiles: chi-square, Z, KS and everything on value counts (categorical and
low-cardinality numeric features), KS whenever the reference has <= 1000 distinct values.
Wasserstein is exact unless the two CDFs cross inside one reference bin (then slightly low).
Jensen-Shannon and PSI on continuous features use Evidently's Sturges bins over the combined
range, filled from the fine reference bins by linear interpolation of the CDF (approximate).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

from monitor.checks.profiles import (
    DISCRETE_MAX,
    CategoricalColumn,
    CategoricalHist,
    Column,
    Hist,
    NumericColumn,
    NumericHist,
)

SMALL_REFERENCE = 1000  # Evidently: references up to this size get the statistical tests
P_VALUE_METHODS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05}
DISTANCE_METHODS = ("wasserstein", "jensenshannon", "psi")
NUMERIC_ONLY = {"wasserstein", "ks"}
CATEGORICAL_ONLY = {"chisquare", "z"}


@dataclass
class ColumnDrift:
    method: str
    score: float
    threshold: float
    drifted: bool
    n: int
    n_reference: int
    details: dict[str, Any] = field(default_factory=dict)


def default_threshold(method: str, distance_threshold: float) -> float:
    """The policy's drift_threshold for distances; Evidently's 0.05 for p-values."""
    return P_VALUE_METHODS.get(method, distance_threshold)


def column_drift(
    column: Column, window: Hist, *, pinned_method: str | None, threshold: float | None, distance_threshold: float
) -> ColumnDrift:
    """One column's drift score and verdict; `threshold` None takes the method's default."""
    reference = column.hist
    method = pinned_method or choose_method(column, window)
    _check_applicable(method, column)
    limit = threshold if threshold is not None else default_threshold(method, distance_threshold)
    score, details = _SCORERS[method](column, window)
    return ColumnDrift(
        method=method,
        score=float(score),
        threshold=limit,
        drifted=_drifted(method, float(score), limit),
        n=window.n,
        n_reference=reference.n,
        details=details,
    )


def _drifted(method: str, score: float, threshold: float) -> bool:
    if method == "ks":
        return score <= threshold
    if method in P_VALUE_METHODS:
        return score < threshold
    return score >= threshold


def _check_applicable(method: str, column: Column) -> None:
    numeric = isinstance(column, NumericColumn)
    if (method in NUMERIC_ONLY and not numeric) or (
        method in CATEGORICAL_ONLY and isinstance(column, NumericColumn) and not column.discrete
    ):
        kind = "numeric" if numeric else "categorical"
        raise ValueError(f"drift method '{method}' does not apply to a {kind} feature")


def union_nunique(column: Column, window: Hist) -> int:
    """Distinct non-missing values in reference and window together (capped counts stay large)."""
    if isinstance(column, CategoricalColumn):
        assert isinstance(window, CategoricalHist)
        extra = len(window.unseen) + (1 if window.unseen_overflow else 0)
        return column.nunique + extra
    assert isinstance(window, NumericHist)
    if not column.discrete:
        return column.nunique
    if window.novel is None:
        return column.nunique + 10**6
    return column.nunique + len(window.novel)


def choose_method(column: Column, window: Hist) -> str:
    """Evidently's default stattest for this column and data size."""
    n_values = union_nunique(column, window)
    small = column.hist.n <= SMALL_REFERENCE
    if isinstance(column, CategoricalColumn):
        if small:
            return "chisquare" if n_values > 2 else "z"
        return "jensenshannon"
    if small:
        if n_values <= 5:
            return "chisquare" if n_values > 2 else "z"
        return "ks"
    return "jensenshannon" if n_values <= 5 else "wasserstein"


# ---------------------------------------------------------------------------------------------
# Value counts (categorical features and low-cardinality numeric ones)


def value_counts(column: Column, window: Hist) -> tuple[list[Any], np.ndarray, np.ndarray] | None:
    """Keys (union, reference order first) with reference and window counts, or None when a
    numeric feature has too many distinct values to be counted exactly."""
    if isinstance(column, CategoricalColumn):
        assert isinstance(window, CategoricalHist)
        present = column.hist.counts > 0
        keys: list[Any] = [c for c, keep in zip(column.categories, present, strict=True) if keep]
        ref = column.hist.counts[present]
        cur = window.counts[present]
        extra = dict(window.unseen)
        if window.unseen_overflow:
            extra["(other unseen)"] = window.unseen_overflow
        keys += list(extra)
        return (
            keys,
            np.concatenate([ref, np.zeros(len(extra), np.int64)]),
            np.concatenate([cur, list(extra.values())]).astype(np.int64),
        )
    assert isinstance(window, NumericHist)
    if not column.discrete or window.novel is None:
        return None
    points = slice(1, 2 * len(column.edges) + 1, 2)
    keys = column.edges.tolist() + list(window.novel)
    ref = np.concatenate([column.hist.counts[points], np.zeros(len(window.novel), np.int64)])
    cur = np.concatenate([window.counts[points], np.asarray(list(window.novel.values()), np.int64)])
    return keys, ref, cur


def _chisquare(column: Column, window: Hist) -> tuple[float, dict[str, Any]]:
    counted = value_counts(column, window)
    if counted is None:
        raise ValueError("chi-square needs value counts; this feature has too many distinct values")
    _keys, ref, cur = counted
    expected = ref * (cur.sum() / ref.sum())
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_value = stats.chisquare(cur, expected)[1]
    return float(p_value), {}


def _z_test(column: Column, window: Hist) -> tuple[float, dict[str, Any]]:
    counted = value_counts(column, window)
    if counted is None:
        raise ValueError("the Z-test needs value counts; this feature has too many distinct values")
    keys, ref, cur = counted
    ref_present, cur_present = (
        [k for k, c in zip(keys, ref, strict=True) if c],
        [k for k, c in zip(keys, cur, strict=True) if c],
    )
    if len(ref_present) == 1 and len(cur_present) == 1 and ref_present[0] == cur_present[0]:
        return 1.0, {}
    first = min(keys)
    at = keys.index(first)
    n1, n2 = int(ref.sum()), int(cur.sum())
    p1, p2 = (n1 - int(ref[at])) / n1, (n2 - int(cur[at])) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z)))), {}


# ---------------------------------------------------------------------------------------------
# Numeric features on the fine bins


def _bounds(column: NumericColumn, window: NumericHist) -> tuple[float, float]:
    reference = column.hist
    return min(reference.vmin, window.vmin), max(reference.vmax, window.vmax)


def interval_integrals(hist: NumericHist, edges: np.ndarray, low: float, high: float) -> np.ndarray:
    """Integral of the empirical CDF over each open interval (below e0, between edges, above eK).

    For an interval (a, c): (count(x <= a) * (c - a) + count_in * c - sum_in) / n, exact."""
    n = hist.n
    interval_bins = np.arange(0, 2 * len(edges) + 1, 2)
    below = (np.cumsum(hist.counts) - hist.counts)[interval_bins]
    lower = np.concatenate([[low], edges])
    upper = np.concatenate([edges, [high]])
    counts, sums = hist.counts[interval_bins], hist.sums[interval_bins]
    return (below * (upper - lower) + counts * upper - sums) / n


def wasserstein_normed(column: NumericColumn, window: NumericHist) -> float:
    low, high = _bounds(column, window)
    reference = interval_integrals(column.hist, column.edges, low, high)
    current = interval_integrals(window, column.edges, low, high)
    return float(np.abs(reference - current).sum()) / max(column.std, 0.001)


def _wasserstein(column: Column, window: Hist) -> tuple[float, dict[str, Any]]:
    assert isinstance(column, NumericColumn) and isinstance(window, NumericHist)
    return wasserstein_normed(column, window), {}


def ks_statistic(column: NumericColumn, window: NumericHist) -> float:
    """sup |F_ref - F_cur| over the edges, from both sides (exact when edges are the
    reference's distinct values)."""
    points = np.arange(1, 2 * len(column.edges) + 1, 2)

    def cdfs(hist: NumericHist) -> tuple[np.ndarray, np.ndarray]:
        cumulative = np.cumsum(hist.counts) / hist.n
        return (cumulative - hist.counts / hist.n)[points], cumulative[points]

    ref_before, ref_at = cdfs(column.hist)
    cur_before, cur_at = cdfs(window)
    return float(max(np.abs(ref_before - cur_before).max(initial=0.0), np.abs(ref_at - cur_at).max(initial=0.0)))


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """scipy.stats.ks_2samp's two-sided p-value for a statistic (method 'auto')."""
    from scipy.stats import _stats_py

    g = math.gcd(n1, n2)
    if max(n1, n2) <= 10000:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                success, _d, prob = _stats_py._attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
        except Exception:  # private scipy helper: fall back to the asymptotic formula
            success = False
        if success:
            return float(np.clip(prob, 0, 1))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


def _ks(column: Column, window: Hist) -> tuple[float, dict[str, Any]]:
    assert isinstance(column, NumericColumn) and isinstance(window, NumericHist)
    d = ks_statistic(column, window)
    return ks_p_value(d, column.hist.n, window.n), {"statistic": d}


def _sturges_shares(column: NumericColumn, window: NumericHist) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's get_binned_data for continuous features: Sturges bins over the combined range."""
    low, high = _bounds(column, window)
    if low == high:
        low, high = low - 0.5, high + 0.5
    total = column.hist.n + window.n
    width = (high - low) / (np.log2(total) + 1.0)
    n_bins = int(np.ceil((high - low) / width)) if width else 1
    bin_edges = np.linspace(low, high, n_bins + 1)

    def shares(hist: NumericHist) -> np.ndarray:
        below = mass_below(hist, column.edges, low, high, bin_edges)
        below[-1] = hist.n  # the last bin is closed
        return np.diff(below) / hist.n

    return shares(column.hist), shares(window)


def mass_below(hist: NumericHist, edges: np.ndarray, low: float, high: float, xs: np.ndarray) -> np.ndarray:
    """Count of values strictly below each x.

    Inside an open interval the mass is spread uniformly over the widest sub-interval centred
    on the interval's mean (known from the bin sums), so a lone value sits exactly where it is
    and a crowded interval keeps its centre of mass."""
    exclusive = np.cumsum(hist.counts) - hist.counts
    position = np.searchsorted(edges, xs, side="left")
    on_edge = (position < len(edges)) & (edges[np.minimum(position, len(edges) - 1)] == xs)
    interval = 2 * position
    lower = np.where(position == 0, low, edges[np.maximum(position - 1, 0)])
    upper = np.where(position == len(edges), high, edges[np.minimum(position, len(edges) - 1)])
    counts = hist.counts[interval]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(counts > 0, hist.sums[interval] / counts, (lower + upper) / 2)
        mean = np.clip(mean, lower, upper)
        half = np.where(counts > 1, np.minimum(mean - lower, upper - mean), 0.0)
        spread = np.where(half > 0, (xs - (mean - half)) / (2 * half), (xs > mean).astype(np.float64))
    fraction = np.clip(spread, 0.0, 1.0)
    inside = exclusive[interval] + counts * fraction
    return np.where(on_edge, exclusive[np.minimum(2 * position + 1, len(exclusive) - 1)], inside).astype(np.float64)


def binned_shares(column: Column, window: Hist) -> tuple[np.ndarray, np.ndarray]:
    """Reference and window shares as Evidently bins them for Jensen-Shannon and PSI."""
    if isinstance(column, NumericColumn) and column.nunique > DISCRETE_MAX:
        assert isinstance(window, NumericHist)
        return _sturges_shares(column, window)
    counted = value_counts(column, window)
    if counted is None:  # a low-cardinality reference meets a window of many new values
        assert isinstance(column, NumericColumn) and isinstance(window, NumericHist)
        return _sturges_shares(column, window)
    _keys, ref, cur = counted
    return ref / ref.sum(), cur / cur.sum()


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    nonzero = shares[shares != 0]
    smallest = nonzero.min() if len(nonzero) else 0.0
    filler = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, filler, shares)


def _psi(column: Column, window: Hist) -> tuple[float, dict[str, Any]]:
    ref, cur = binned_shares(column, window)
    ref, cur = _fill_zeroes(ref), _fill_zeroes(cur)
    return float(np.sum((ref - cur) * np.log(ref / cur))), {}


def _jensenshannon(column: Column, window: Hist) -> tuple[float, dict[str, Any]]:
    ref, cur = binned_shares(column, window)
    return float(distance.jensenshannon(ref, cur)), {}


_SCORERS = {
    "wasserstein": _wasserstein,
    "ks": _ks,
    "jensenshannon": _jensenshannon,
    "psi": _psi,
    "chisquare": _chisquare,
    "z": _z_test,
}


# ---------------------------------------------------------------------------------------------
# Proportions


# ---------------------------------------------------------------------------------------------
# Is a difference beyond sampling noise? (the guard on breaches)
#
# Distribution-free and analytic: the two-sample KS test for numeric columns (rank-based, so a
# handful of extreme values barely moves it, and it accounts for both sample sizes) and the
# chi-square test of homogeneity for categorical ones (unseen categories pooled). Evidently's
# fixed distance thresholds do not scale with the window's size; this does.

SIGNIFICANCE_ALPHA = 0.01


def significance(column: Column, window: Hist) -> tuple[str, float]:
    """(test, p-value) that the window and the reference come from one distribution."""
    if isinstance(column, NumericColumn):
        assert isinstance(window, NumericHist)
        return "ks", ks_p_value(ks_statistic(column, window), column.hist.n, window.n)
    assert isinstance(window, CategoricalHist)
    table = np.array([np.append(column.hist.counts, 0), np.append(window.counts, window.unseen_rows)], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return "chi2", 1.0
    return "chi2", float(stats.chi2_contingency(table, correction=False)[1])


def outside_reference_range(window: NumericHist) -> int:
    """Window values below the reference's minimum or above its maximum (the two open ends)."""
    return int(window.counts[0] + window.counts[-1])


# ---------------------------------------------------------------------------------------------
# Sampling noise: how far apart two samples of these sizes from the reference distribution land
#
# A two-sample bootstrap on the histograms: a reference-sized and a window-sized multinomial
# draw from the reference's bin shares (values placed at each bin's mean), and the distance
# between the two; normed Wasserstein for numeric columns, Jensen-Shannon for categorical ones
# (unseen categories pooled into one bucket). Both sample sizes count: the reference is a
# sample too. It serves two purposes: a drift verdict that sampling noise alone would reach
# often (small windows, heavy tails: Evidently's fixed 0.1 does not scale with n) is a warning,
# not a breach; and it standardizes the components of the unified score.

NOISE_REPLICATES = 200
NOISE_ALPHA = 0.01
OUTLIER_SHARE = 0.01  # at most this share of a window outside the reference's range counts as outliers


@dataclass
class Noise:
    statistic: str  # wasserstein, jensenshannon, rate_difference
    distance: float  # numeric: with values outside the reference's range clamped onto it
    null: np.ndarray
    outside_reference_range: int = 0

    @property
    def p_value(self) -> float:
        """Share of bootstrap distances at least as large (with the +1 correction)."""
        return float((1 + np.count_nonzero(self.null >= self.distance)) / (len(self.null) + 1))

    @property
    def mean(self) -> float:
        return float(self.null.mean())

    @property
    def sd(self) -> float:
        return float(self.null.std())


def _resample(shares: np.ndarray, size: int, rng: np.random.Generator, replicates: int) -> np.ndarray:
    """Poisson bootstrap of a sample of `size` from these bin shares (one row per replicate).

    Independent Poisson counts approximate the multinomial closely at these sizes and cost one
    vectorized draw instead of one binomial per bin and replicate."""
    counts = rng.poisson(shares * size, size=(replicates, len(shares)))
    empty = counts.sum(axis=1) == 0
    if empty.any():  # a tiny sample can come out empty; give it its most likely value
        counts[empty, int(np.argmax(shares))] = 1
    return counts


def _shares(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum(axis=1, keepdims=True)


def _bin_means(hist: NumericHist) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hist.counts > 0, hist.sums / np.maximum(hist.counts, 1), 0.0)


def _integrals(counts: np.ndarray, sums: np.ndarray, edges: np.ndarray, low: float, high: float) -> np.ndarray:
    """interval_integrals for a stack of histograms (one per row)."""
    n = counts.sum(axis=1, keepdims=True)
    intervals = np.arange(0, 2 * len(edges) + 1, 2)
    lower = np.concatenate([[low], edges])
    upper = np.concatenate([edges, [high]])
    below = (np.cumsum(counts, axis=1) - counts)[:, intervals]
    return (below * (upper - lower) + counts[:, intervals] * upper - sums[:, intervals]) / n


def clamp_to_reference(column: NumericColumn, window: NumericHist) -> tuple[NumericHist, int]:
    """The window with values outside the reference's range moved onto its ends, and how many moved.

    A few implausible values (a 960 ml bleed against a reference maximum of 226) can carry
    Wasserstein past its threshold alone; that is an outlier finding, not a shifted distribution.
    Used only while they are at most OUTLIER_SHARE of the window."""
    clamped = NumericHist(window.counts.copy(), window.sums.copy(), window.missing)
    edges, last = column.edges, len(window.counts) - 1
    outside = int(window.counts[0] + window.counts[last])
    for outer, inner, edge in ((0, 1, edges[0]), (last, last - 1, edges[-1])):
        clamped.counts[inner] += clamped.counts[outer]
        clamped.sums[inner] += clamped.counts[outer] * edge
        clamped.counts[outer], clamped.sums[outer] = 0, 0.0
    clamped.vmin, clamped.vmax = column.hist.vmin, column.hist.vmax
    return clamped, outside


def _numeric_noise(column: NumericColumn, window: NumericHist, rng: np.random.Generator, replicates: int) -> Noise:
    reference = column.hist
    shares, means = reference.counts / reference.n, _bin_means(reference)
    draws = [_resample(shares, size, rng, replicates) for size in (reference.n, window.n)]
    low, high = reference.vmin, reference.vmax
    a, b = (_integrals(d, d * means, column.edges, low, high) for d in draws)
    null = np.abs(a - b).sum(axis=1) / max(column.std, 0.001)
    clamped, outside = clamp_to_reference(column, window)
    # Clamping discounts a handful of outliers; a real share of new values (a new kVp) is a shift.
    judged = clamped if outside <= OUTLIER_SHARE * window.n else window
    return Noise("wasserstein", wasserstein_normed(column, judged), null, outside)


def _js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (natural log, as scipy's) between matching rows of p and q."""
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1)
    return np.sqrt(np.maximum((left + right) / 2, 0.0))


def _categorical_noise(
    column: CategoricalColumn, window: CategoricalHist, rng: np.random.Generator, replicates: int
) -> Noise:
    reference = np.append(column.hist.counts, 0) / column.hist.n
    current = np.append(window.counts, window.unseen_rows) / window.n
    a, b = (_shares(_resample(reference, size, rng, replicates)) for size in (column.hist.n, window.n))
    return Noise("jensenshannon", float(_js_rows(reference, current)), _js_rows(a, b))


def noise(column: Column, window: Hist, rng: np.random.Generator, replicates: int = NOISE_REPLICATES) -> Noise:
    """The column's distance to the reference and its sampling distribution under no change."""
    if isinstance(column, NumericColumn):
        assert isinstance(window, NumericHist)
        return _numeric_noise(column, window, rng, replicates)
    assert isinstance(window, CategoricalHist)
    return _categorical_noise(column, window, rng, replicates)


def rate_noise(
    reference: tuple[int, int], window: tuple[int, int], rng: np.random.Generator, replicates: int = NOISE_REPLICATES
) -> Noise:
    """|window rate - reference rate| and its two-sample bootstrap; arguments are (positives, n)."""
    (ref_pos, ref_n), (pos, n) = reference, window
    rate = ref_pos / ref_n
    null = np.abs(rng.binomial(n, rate, size=replicates) / n - rng.binomial(ref_n, rate, size=replicates) / ref_n)
    return Noise("rate_difference", abs(pos / n - rate), null)


# ---------------------------------------------------------------------------------------------
# Unified drift score (in the spirit of CheXstray's multi-modal concordance, MMC)
#
# Each component is a distance between the window and the reference (see Noise): normed
# Wasserstein for numeric features and the score, Jensen-Shannon for categorical features,
# |rate - reference rate| for positive predictions. Each is standardized against its own
# behaviour on reference-period windows of the same size, z = (d - mean) / sd over the
# two-sample bootstrap, and the z-scores are combined with fixed weights summing to 1: half for
# the inputs (shared equally by the features), a quarter each for the score distribution and
# the positive-prediction rate (the outputs summarize what the model makes of every input). A
# component's contribution is w * z; the unified score is their sum. Every z has unit spread
# under no change, so the sum's spread is at most 1 whatever the correlation between
# components: UNIFIED_BREACH (3) is a conservative 3-sigma limit.

UNIFIED_BREACH = 3.0
UNIFIED_WARN = 2.0
INPUT_WEIGHT, SCORE_WEIGHT, RATE_WEIGHT = 0.5, 0.25, 0.25
Z_LIMITS = (-50.0, 1000.0)


@dataclass
class Component:
    name: str  # feature name, "score" or "prediction"
    family: str  # input, output
    noise: Noise
    weight: float = 0.0

    @property
    def z(self) -> float:
        return float(np.clip((self.noise.distance - self.noise.mean) / max(self.noise.sd, 1e-9), *Z_LIMITS))

    @property
    def contribution(self) -> float:
        return self.weight * self.z


@dataclass
class UnifiedDrift:
    value: float
    components: list[Component]
    null_mean: float
    null_sd: float


def unified_drift(inputs: dict[str, Noise], outputs: dict[str, Noise]) -> UnifiedDrift:
    """Combine standardized components; outputs are keyed "score" and "prediction"."""
    components = [Component(name, "input", n) for name, n in inputs.items()]
    components += [Component(name, "output", n) for name, n in outputs.items()]
    if not components:
        return UnifiedDrift(0.0, [], 0.0, 0.0)
    _weigh(components)
    replicates = min(len(c.noise.null) for c in components)
    null = np.stack(
        [
            np.clip((c.noise.null[:replicates] - c.noise.mean) / max(c.noise.sd, 1e-9), *Z_LIMITS) * c.weight
            for c in components
        ]
    ).sum(axis=0)
    return UnifiedDrift(
        float(sum(c.contribution for c in components)), components, float(null.mean()), float(null.std())
    )


def _weigh(components: list[Component]) -> None:
    inputs = [c for c in components if c.family == "input"]
    shares = {"input": INPUT_WEIGHT if inputs else 0.0, "score": SCORE_WEIGHT, "prediction": RATE_WEIGHT}
    present = {c.name if c.family == "output" else "input" for c in components}
    total = sum(weight for key, weight in shares.items() if key in present)
    for c in components:
        c.weight = (shares["input"] / len(inputs) if c.family == "input" else shares[c.name]) / total
