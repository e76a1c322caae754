"""The statistical core: interval coverage, test/interval agreement, DeLong, bootstrap, BH, CUSUM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize
from scipy.stats import binom
from sklearn.metrics import roc_auc_score

from monitor.checks import cusum, stats

GRID_P = (0.5, 0.8, 0.9, 0.95)
GRID_N = (30, 100, 500)


def simulated_coverage(p: float, n: int, *, draws: int, continuity: bool, seed: int) -> float:
    successes = np.random.default_rng(seed).binomial(n, p, draws)
    low, high = stats.wilson_interval(successes, np.full(draws, n), continuity=continuity)
    return float(np.mean((low <= p) & (p <= high)))


def exact_coverage(p: float, n: int, *, continuity: bool) -> float:
    x = np.arange(n + 1)
    low, high = stats.wilson_interval(x, np.full(n + 1, n), continuity=continuity)
    return float(binom.pmf(x, n, p)[(low <= p) & (p <= high)].sum())


# ---------------------------------------------------------------------------------------------
# Wilson


@pytest.mark.parametrize("n", GRID_N)
@pytest.mark.parametrize("p", GRID_P)
def test_wilson_covers_at_least_94_percent_by_simulation(p: float, n: int) -> None:
    coverage = simulated_coverage(p, n, draws=40_000, continuity=True, seed=int(p * 1000) + n)
    assert coverage >= 0.94, f"p={p} n={n}: {coverage:.4f}"
    # The simulation agrees with the exact binomial sum (MC standard error ~0.001).
    assert abs(coverage - exact_coverage(p, n, continuity=True)) < 0.005


def test_plain_wilson_dips_below_94_percent_which_is_why_decisions_use_the_corrected_interval() -> None:
    assert exact_coverage(0.9, 100, continuity=False) < 0.94
    assert exact_coverage(0.95, 30, continuity=False) < 0.94
    assert simulated_coverage(0.9, 100, draws=40_000, continuity=False, seed=3) < 0.945


def test_wilson_matches_newcombes_closed_forms() -> None:
    z, n = stats.Z95, 50
    x = np.arange(n + 1, dtype=float)
    p, q = x / n, 1 - x / n
    low_cc = (2 * n * p + z * z - 1 - z * np.sqrt(np.maximum(z * z - 2 - 1 / n + 4 * p * (n * q + 1), 0))) / (
        2 * (n + z * z)
    )
    high_cc = (2 * n * p + z * z + 1 + z * np.sqrt(np.maximum(z * z + 2 - 1 / n + 4 * p * (n * q - 1), 0))) / (
        2 * (n + z * z)
    )
    low, high = stats.wilson_interval(x, np.full(n + 1, n))
    np.testing.assert_allclose(low, np.where(x == 0, 0, low_cc), atol=1e-12)
    np.testing.assert_allclose(high, np.where(x == n, 1, high_cc), atol=1e-12)
    plain_low, plain_high = stats.wilson_interval(np.array([40.0]), np.array([50.0]), continuity=False)
    centre = (0.8 + z * z / 100) / (1 + z * z / 50)
    half = z / (1 + z * z / 50) * np.sqrt(0.8 * 0.2 / 50 + z * z / 10000)
    np.testing.assert_allclose([plain_low[0], plain_high[0]], [centre - half, centre + half])


@pytest.mark.parametrize("continuity", [True, False])
def test_wilson_bounds_are_where_the_score_test_reaches_196(continuity: bool) -> None:
    x, n = np.arange(1, 50, dtype=float), np.full(49, 50.0)
    low, high = stats.wilson_interval(x, n, continuity=continuity)
    np.testing.assert_allclose(stats.score_test(x, n, high, continuity=continuity), -stats.Z95, atol=1e-9)
    np.testing.assert_allclose(stats.score_test(x, n, low, continuity=continuity), stats.Z95, atol=1e-9)


def test_wilson_edges_and_empty() -> None:
    low, high = stats.wilson_interval(np.array([0, 30, 0]), np.array([30, 30, 0]))
    assert low[0] == 0 and high[1] == 1
    assert np.isnan(low[2]) and np.isnan(high[2])


# ---------------------------------------------------------------------------------------------
# Difference of proportions


def test_miettinen_nurminen_reproduces_newcombes_worked_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 - 48/80, method 6.
    diff, low, high, _ = stats.mn_difference(np.array([56]), np.array([70]), np.array([48]), np.array([80]))
    assert diff[0] == pytest.approx(0.2)
    assert low[0] == pytest.approx(0.0528, abs=5e-5)
    assert high[0] == pytest.approx(0.3382, abs=5e-5)


def brute_statistic(x1: int, n1: int, x2: int, n2: int, delta: float) -> float:
    """MN statistic with the constrained MLE found numerically from the likelihood."""

    def negative_log_likelihood(p2: float) -> float:
        p1 = p2 + delta
        return -(x1 * np.log(p1) + (n1 - x1) * np.log(1 - p1) + x2 * np.log(p2) + (n2 - x2) * np.log(1 - p2))

    lo, hi = max(0.0, -delta) + 1e-12, min(1.0, 1.0 - delta) - 1e-12
    p2 = optimize.minimize_scalar(
        negative_log_likelihood, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}
    ).x
    p1, total = p2 + delta, n1 + n2
    variance = (p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) * total / (total - 1)
    return (x1 / n1 - x2 / n2 - delta) / np.sqrt(variance)


def test_miettinen_nurminen_interval_is_the_inversion_of_its_score_test() -> None:
    rng = np.random.default_rng(5)
    n1, n2 = rng.integers(10, 400, 40), rng.integers(10, 400, 40)
    x1, x2 = rng.binomial(n1, 0.8), rng.binomial(n2, 0.85)
    diff, low, high, p_value = stats.mn_difference(x1, n1, x2, n2)
    for i in range(0, 40, 8):
        assert brute_statistic(x1[i], n1[i], x2[i], n2[i], low[i]) == pytest.approx(stats.Z95, abs=1e-4)
        assert brute_statistic(x1[i], n1[i], x2[i], n2[i], high[i]) == pytest.approx(-stats.Z95, abs=1e-4)
    # "0 outside the interval" and "p < 0.05" are one statement.
    np.testing.assert_array_equal((low > 0) | (high < 0), p_value < 0.05)
    assert np.all((low <= diff) & (diff <= high))


def test_miettinen_nurminen_coverage_near_nominal() -> None:
    rng = np.random.default_rng(8)
    draws = 4000
    x1, x2 = rng.binomial(60, 0.85, draws), rng.binomial(200, 0.92, draws)
    _, low, high, _ = stats.mn_difference(x1, np.full(draws, 60), x2, np.full(draws, 200))
    truth = 0.85 - 0.92
    assert 0.93 <= np.mean((low <= truth) & (truth <= high)) <= 0.975


# ---------------------------------------------------------------------------------------------
# AUC


def test_delong_auc_is_sklearns_and_its_interval_is_centred_on_it() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(3000) < 0.1
    scores = np.round(np.clip(rng.normal(0.3 + 0.3 * labels, 0.2), 0, 1), 2)  # many ties
    result = stats.delong_auc(labels, scores)
    expected = roc_auc_score(labels, scores)
    assert result.auc[0] == pytest.approx(expected, abs=1e-12)
    low, high = result.interval()
    assert (low[0] + high[0]) / 2 == pytest.approx(expected, abs=1e-12)
    assert low[0] < expected < high[0]


def test_delong_variance_matches_the_pairwise_definition_per_group() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(900) < 0.3
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)
    groups = rng.integers(0, 3, 900)
    result = stats.delong_auc(labels, scores, groups, 4)
    for g in range(3):
        x, y = scores[(groups == g) & labels], scores[(groups == g) & ~labels]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        variance = psi.mean(1).var(ddof=1) / len(x) + psi.mean(0).var(ddof=1) / len(y)
        assert result.auc[g] == pytest.approx(roc_auc_score(labels[groups == g], scores[groups == g]), abs=1e-12)
        assert result.variance[g] == pytest.approx(variance, rel=1e-9)
    assert np.isnan(result.auc[3])  # an empty group


def test_delong_interval_covers_the_true_auc() -> None:
    rng = np.random.default_rng(2)
    runs, hits = 400, 0
    truth = float(stats.special.ndtr(1.2 / np.sqrt(2)))  # binormal, separation 1.2
    for _ in range(runs):
        labels = rng.random(600) < 0.15
        scores = rng.normal(labels * 1.2, 1.0)
        low, high = stats.delong_auc(labels, scores).interval()
        hits += low[0] <= truth <= high[0]
    assert 0.92 <= hits / runs <= 0.98


# ---------------------------------------------------------------------------------------------
# Calibration bootstrap


def row_bootstrap(labels: np.ndarray, scores: np.ndarray, replicates: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    brier, ece = [], []
    for _ in range(replicates):
        rows = rng.integers(0, len(labels), len(labels))
        y, s = labels[rows], scores[rows]
        cells = stats.CalibrationCells.build(y, s, np.zeros(len(y), dtype=np.int64), 1)
        brier.append(stats.brier_from_cells(cells.count, cells.brier_sum())[0])
        ece.append(stats.ece_from_cells(cells.count, cells.score_sum)[0])
    return np.array(brier), np.array(ece)


def test_cell_bootstrap_agrees_with_a_row_bootstrap() -> None:
    rng = np.random.default_rng(4)
    scores = rng.beta(0.6, 4.0, 3000)
    labels = (rng.random(3000) < np.clip(scores * 1.2, 0, 1)).astype(int)
    cells = stats.CalibrationCells.build(labels, scores, np.zeros(3000, dtype=np.int64), 1)
    brier = stats.brier_from_cells(cells.count, cells.brier_sum())[0]
    assert brier == pytest.approx(np.mean((scores - labels) ** 2))
    fast_brier, fast_ece = stats.calibration_bootstrap(cells, replicates=2000, seed=1)
    slow_brier, slow_ece = row_bootstrap(labels, scores, 600, seed=2)
    assert np.std(fast_brier[:, 0]) == pytest.approx(np.std(slow_brier), rel=0.12)
    assert np.std(fast_ece[:, 0]) == pytest.approx(np.std(slow_ece), rel=0.15)
    assert np.mean(fast_ece[:, 0]) == pytest.approx(np.mean(slow_ece), rel=0.05)


def test_ece_uses_ten_equal_width_bins() -> None:
    scores = np.array([0.05, 0.05, 0.95, 0.95])
    labels = np.array([0, 1, 1, 1])
    cells = stats.CalibrationCells.build(labels, scores, np.zeros(4, dtype=np.int64), 1)
    # bin [0, .1): |0.1 - 0.5| x 2/4 ; bin [.9, 1]: |1.9 - 2| / 4
    assert stats.ece_from_cells(cells.count, cells.score_sum)[0] == pytest.approx(0.45 * 0.5 + 0.1 / 4)


# ---------------------------------------------------------------------------------------------
# Benjamini-Hochberg


def test_benjamini_hochberg_matches_the_step_up_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2, 0.005])
    q = stats.benjamini_hochberg(p)
    m = 5
    order = [5, 0, 2, 1, 4]
    raw = [p[i] * m / (r + 1) for r, i in enumerate(order)]
    expected = np.minimum.accumulate(np.array(raw)[::-1])[::-1]
    np.testing.assert_allclose(q[order], expected)
    assert np.isnan(q[3])


def test_bh_keeps_false_discoveries_at_q_in_a_null_simulation_with_40_segments() -> None:
    """40 segments per run, every segment's sensitivity exactly at its target (the worst null).

    The family is what a run tests: each segment's score test against the target. Under the
    complete null every discovery is false, so FDR = P(any discovery) and must stay <= q."""
    rng = np.random.default_rng(40)
    runs, segments, q = 4000, 40, 0.05
    positives = rng.integers(30, 200, (runs, segments))
    successes = rng.binomial(positives, 0.9)
    z = stats.score_test(successes, positives, 0.9)
    for p_values in (stats.normal_two_sided(z), stats.worse_side(z)):  # two-sided, and the one-sided ones runs use
        discoveries = np.array([(stats.benjamini_hochberg(row) <= q).sum() for row in p_values])
        fdr = np.mean(discoveries > 0)
        assert fdr <= q + 2 * np.sqrt(q * (1 - q) / runs)


def test_bh_controls_fdr_when_some_segments_are_degraded() -> None:
    rng = np.random.default_rng(41)
    runs, segments, degraded, q = 2000, 40, 8, 0.05
    truth = np.full(segments, 0.9)
    truth[:degraded] = 0.78
    positives = np.full((runs, segments), 120)
    successes = rng.binomial(positives, truth)
    p_values = stats.worse_side(stats.score_test(successes, positives, 0.9))
    proportions = []
    for row in p_values:
        found = stats.benjamini_hochberg(row) <= q
        proportions.append(found[degraded:].sum() / max(found.sum(), 1))
    assert np.mean(proportions) <= q


# ---------------------------------------------------------------------------------------------
# CUSUM


def test_cusum_arl_reproduces_published_values() -> None:
    assert cusum.arl(0.5, 3.0, 0.0) == pytest.approx(117.6, abs=0.1)  # Brook & Evans 1972
    assert cusum.arl(0.5, 3.0, 0.5) == pytest.approx(17.35, abs=0.01)  # Waldmann 1986
    assert cusum.arl(0.5, 3.0, -0.5) == pytest.approx(1963, rel=1e-3)
    assert cusum.arl(0.0, 10.0, 0.0) == pytest.approx(124.66, abs=0.01)  # Vance 1986
    assert cusum.arl(0.5, 4.0, 0.0, sided="two") == pytest.approx(168, abs=0.5)  # Lucas & Crosier 1982
    assert cusum.arl(0.5, 4.0, 1.0, sided="two") == pytest.approx(8.38, abs=0.01)
    assert cusum.siegmund_arl(0.5, 4.0, 0.0) == pytest.approx(cusum.arl(0.5, 4.0, 0.0), rel=0.02)


def test_cusum_threshold_gives_the_target_in_control_arl() -> None:
    design = cusum.design(shift=1.0, arl0=365)
    assert design.k == 0.5
    assert cusum.arl(design.k, design.h, 0.0, sided="lower") == pytest.approx(365, rel=1e-6)
    assert 4.0 < design.h < 4.2
    assert design.arl1 < 10
    assert cusum.threshold_for_arl(0.5, 1000) > design.h


def run_lengths(
    rng: np.random.Generator, cases: int, truth: float, mu0: float, design: cusum.Design, runs: int
) -> np.ndarray:
    lengths = []
    for _ in range(runs):
        successes = rng.binomial(cases, truth, 3000)
        chart = cusum.daily_chart(successes, np.full(3000, cases), mu0=mu0, chart_design=design)
        signals = chart.signal_days
        lengths.append(signals[0] + 1 if len(signals) else 3000)
    return np.array(lengths)


def test_daily_cusum_in_control_run_length_is_at_least_the_design_and_it_catches_the_scanner_drop() -> None:
    """Binomial days of 8 positives at sensitivity 0.92 (one site of the simulator)."""
    rng = np.random.default_rng(9)
    design = cusum.design(arl0=365)
    in_control = run_lengths(rng, 8, 0.92, 0.92, design, 200)
    assert np.mean(in_control) >= 0.9 * 365
    dropped = run_lengths(rng, 8, 0.80, 0.92, design, 200)
    assert np.median(dropped) <= 10


def test_daily_chart_skips_days_without_cases() -> None:
    chart = cusum.daily_chart(np.array([8, 0, 5, 2]), np.array([8, 0, 8, 8]), mu0=0.92)
    np.testing.assert_array_equal(chart.days, [0, 2, 3])
    assert chart.statistic[0] == 0.0
    assert chart.statistic[-1] > chart.statistic[1] > 0


def test_delong_with_a_shared_score_order_equals_the_full_sort() -> None:
    rng = np.random.default_rng(12)
    labels = rng.random(5000) < 0.2
    scores = np.round(rng.normal(labels * 0.7, 1.0), 2)
    groups = rng.integers(0, 7, 5000)
    direct = stats.delong_auc(labels, scores, groups, 7)
    shared = stats.delong_auc(labels, scores, groups, 7, score_order=np.argsort(scores, kind="stable"))
    np.testing.assert_allclose(shared.auc, direct.auc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(shared.variance, direct.variance, rtol=1e-12)
