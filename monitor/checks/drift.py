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
    if (method in NUMERIC_ONLY and not numeric) or (method in CATEGORICAL_ONLY and numeric and not column.discrete):
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
        return keys, np.concatenate([ref, np.zeros(len(extra), np.int64)]), np.concatenate([cur, list(extra.values())]).astype(np.int64)
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
    ref_present, cur_present = [k for k, c in zip(keys, ref, strict=True) if c], [k for k, c in zip(keys, cur, strict=True) if c]
    if len(ref_present) == 1 and len(cur_present) == 1 and ref_present[0] == cur_present[0]:
        return 1.0, {}
    first = sorted(keys)[0]
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
            if success:
                return float(np.clip(prob, 0, 1))
        except Exception:  # private scipy helper: fall back to the asymptotic formula
            pass
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


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


# ---------------------------------------------------------------------------------------------
# Unified drift score (in the spirit of CheXstray's multi-modal concordance, MMC)
#
# Each component is a distance between the window and the reference: normed Wasserstein for
# numeric features and the score, Jensen-Shannon for categorical features (unseen categories
# pooled), |rate - reference rate| for positive predictions. Each is standardized against its
# own behaviour on reference-period windows of the same size (bootstrap: multinomial draws of
# the window's size from the reference histogram), z = (d - mean) / sd, and the z-scores are
# combined with fixed weights summing to 1: half for the inputs (shared equally by the
# features), a quarter each for the score distribution and the positive-prediction rate (the
# outputs summarize what the model makes of every input). A component's contribution is w * z;
# the unified score is their sum. Since every z has unit spread under the null, the sum's spread
# is at most 1 whatever the correlation between components, so UNIFIED_BREACH (3) is a
# conservative 3-sigma limit.

UNIFIED_BOOTSTRAP = 200
UNIFIED_BREACH = 3.0
UNIFIED_WARN = 2.0
INPUT_WEIGHT, SCORE_WEIGHT, RATE_WEIGHT = 0.5, 0.25, 0.25
Z_LIMITS = (-50.0, 1000.0)


@dataclass
class Component:
    name: str  # feature name, "score" or "prediction"
    family: str  # input, output
    statistic: str  # wasserstein, jensenshannon, rate_difference
    distance: float
    null_mean: float
    null_sd: float
    weight: float = 0.0

    @property
    def z(self) -> float:
        spread = max(self.null_sd, 1e-9)
        return float(np.clip((self.distance - self.null_mean) / spread, *Z_LIMITS))

    @property
    def contribution(self) -> float:
        return self.weight * self.z


@dataclass
class UnifiedDrift:
    value: float
    components: list[Component]
    null_mean: float
    null_sd: float


def _numeric_null(column: NumericColumn, n: int, rng: np.random.Generator, replicates: int) -> np.ndarray:
    reference = column.hist
    shares = reference.counts / reference.n
    counts = rng.multinomial(n, shares, size=replicates)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(reference.counts > 0, reference.sums / np.maximum(reference.counts, 1), 0.0)
    sums = counts * means
    edges, low, high = column.edges, reference.vmin, reference.vmax
    intervals = np.arange(0, 2 * len(edges) + 1, 2)
    lower = np.concatenate([[low], edges])
    upper = np.concatenate([edges, [high]])
    below = (np.cumsum(counts, axis=1) - counts)[:, intervals]
    current = (below * (upper - lower) + counts[:, intervals] * upper - sums[:, intervals]) / n
    expected = interval_integrals(reference, edges, low, high)
    return np.abs(current - expected).sum(axis=1) / max(column.std, 0.001)


def _js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (natural log, as scipy's) between p and each row of q."""
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1)
    return np.sqrt(np.maximum((left + right) / 2, 0.0))


def _categorical_shares(column: CategoricalColumn, window: CategoricalHist) -> tuple[np.ndarray, np.ndarray]:
    reference = np.append(column.hist.counts, 0) / column.hist.n
    current = np.append(window.counts, window.unseen_rows) / window.n
    return reference, current


def _component(
    name: str, column: Column, window: Hist, rng: np.random.Generator, replicates: int, family: str
) -> tuple[Component, np.ndarray]:
    if isinstance(column, NumericColumn):
        assert isinstance(window, NumericHist)
        null = _numeric_null(column, window.n, rng, replicates)
        distance_now = wasserstein_normed(column, window)
        statistic = "wasserstein"
    else:
        assert isinstance(window, CategoricalHist)
        reference, current = _categorical_shares(column, window)
        draws = rng.multinomial(window.n, reference, size=replicates) / window.n
        null = _js_rows(reference, draws)
        distance_now = float(_js_rows(reference, current[None, :])[0])
        statistic = "jensenshannon"
    component = Component(name, family, statistic, distance_now, float(null.mean()), float(null.std()))
    return component, null


def unified_drift(
    columns: dict[str, tuple[Column, Hist]],
    score: tuple[NumericColumn, NumericHist] | None,
    rate: tuple[int, int, int, int] | None,
    rng: np.random.Generator,
    replicates: int = UNIFIED_BOOTSTRAP,
) -> UnifiedDrift:
    """Combine standardized drift components; `rate` is (ref positives, ref n, window positives, window n)."""
    components: list[Component] = []
    nulls: list[np.ndarray] = []
    for name, (column, window) in columns.items():
        component, null = _component(name, column, window, rng, replicates, "input")
        components.append(component)
        nulls.append(null)
    if score is not None:
        component, null = _component("score", score[0], score[1], rng, replicates, "output")
        components.append(component)
        nulls.append(null)
    if rate is not None:
        ref_pos, ref_n, pos, n = rate
        reference_rate = ref_pos / ref_n
        null = np.abs(rng.binomial(n, reference_rate, size=replicates) / n - reference_rate)
        components.append(
            Component("prediction", "output", "rate_difference", abs(pos / n - reference_rate), float(null.mean()), float(null.std()))
        )
        nulls.append(null)
    _weigh(components)
    if not components:
        return UnifiedDrift(0.0, [], 0.0, 0.0)
    z_null = np.stack(
        [np.clip((null - c.null_mean) / max(c.null_sd, 1e-9), *Z_LIMITS) * c.weight for c, null in zip(components, nulls, strict=True)]
    ).sum(axis=0)
    value = float(sum(c.contribution for c in components))
    return UnifiedDrift(value, components, float(z_null.mean()), float(z_null.std()))


def _weigh(components: list[Component]) -> None:
    inputs = [c for c in components if c.family == "input"]
    shares = {"input": INPUT_WEIGHT if inputs else 0.0, "score": SCORE_WEIGHT, "prediction": RATE_WEIGHT}
    present = {c.name if c.family == "output" else "input" for c in components}
    total = sum(weight for key, weight in shares.items() if key in present)
    for c in components:
        if c.family == "input":
            c.weight = shares["input"] / len(inputs) / total
        else:
            c.weight = shares[c.name] / total
