"""Label-free estimation: the estimator's arithmetic, its intervals, its failure under concept shift, NannyML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from monitor.checks import estimation, performance
from monitor.simulate import Simulation

LIMITS = performance.Limits()
TARGETS = {"sensitivity": 0.9, "specificity": 0.8, "auc": 0.85}
ROOT = Path(__file__).resolve().parents[2]


def calibrated_world(rng: np.random.Generator, rows: int, *, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose meaning never changes: P(label | score) = score. `shift` moves who is scanned."""
    scores = np.clip(rng.beta(0.5 + shift, 4.0, rows), 1e-4, 1 - 1e-4)
    return scores, (rng.random(rows) < scores).astype(int)


def overall(figures: list[performance.Figure]) -> dict[str, performance.Figure]:
    return {f.metric: f for f in figures if f.segment is None}


def test_calibrator_is_scikit_learns_isotonic_fit() -> None:
    rng = np.random.default_rng(0)
    scores, labels = calibrated_world(rng, 3000)
    ours = estimation.fit_calibrator(scores, labels)
    theirs = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, labels)
    grid = np.linspace(-0.1, 1.1, 500)
    np.testing.assert_allclose(ours(grid), theirs.predict(grid))


def test_expected_auc_is_the_weighted_share_of_correctly_ranked_pairs() -> None:
    rng = np.random.default_rng(1)
    probability, scores = rng.random(200), np.round(rng.random(200), 1)  # ties
    groups = rng.integers(0, 2, 200)
    result = estimation.expected_auc(probability, scores, groups, 2)
    for g in range(2):
        p, s = probability[groups == g], scores[groups == g]
        weight = p[:, None] * (1 - p[None, :])
        np.fill_diagonal(weight, 0)
        order = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
        assert result[g] == pytest.approx((weight * order).sum() / weight.sum())


def test_expected_confusion_matrix_sums_calibrated_probabilities() -> None:
    probability = np.array([0.9, 0.6, 0.2, 0.1])
    prediction = np.array([1, 1, 0, 0])
    tp, fp, fn, tn = estimation.expected_confusion(probability, prediction, np.zeros(4, dtype=np.int64), 1)
    assert (tp[0], fp[0], fn[0], tn[0]) == pytest.approx((1.5, 0.5, 0.3, 1.7))


def test_prediction_intervals_cover_the_realized_figures_when_the_assumptions_hold() -> None:
    """Covariate shift (a sicker population) but the score keeps its meaning: the estimate tracks."""
    rng = np.random.default_rng(2)
    reference = estimation.Reference.fit(*calibrated_world(rng, 5000), resamples=30)
    hits = {metric: 0 for metric in estimation.ESTIMATED_METRICS}
    errors = []
    windows = 60
    for _ in range(windows):
        scores, labels = calibrated_world(rng, 2000, shift=0.3)
        prediction = (scores >= 0.2).astype(int)
        estimated = overall(
            estimation.estimated_figures(reference, scores, prediction, targets=TARGETS, limits=LIMITS, replicates=150)
        )
        realized = overall(
            performance.overall_figures(
                labels, scores, prediction, targets=TARGETS, limits=performance.Limits(replicates=50)
            )
        )
        for metric in hits:
            hits[metric] += estimated[metric].ci_low <= realized[metric].value <= estimated[metric].ci_high
        errors.append(estimated["auc"].value - realized["auc"].value)
    for metric, count in hits.items():
        assert count / windows >= 0.88, (metric, count)
    assert abs(np.mean(errors)) < 0.01


def test_under_concept_shift_the_estimate_misses_and_reconciliation_says_so() -> None:
    """Same scores, but a positive now scores like a negative did (a scanner that hides bleeds)."""
    rng = np.random.default_rng(3)
    reference = estimation.Reference.fit(*calibrated_world(rng, 5000), resamples=30)
    scores, _ = calibrated_world(rng, 4000)
    labels = (rng.random(4000) < np.clip(scores * 0.6 + 0.04, 0, 1)).astype(int)  # P(label | score) changed
    bleeds_missed = (labels == 1) & (rng.random(4000) < 0.5)
    scores = np.where(bleeds_missed, scores * 0.3, scores)
    prediction = (scores >= 0.2).astype(int)
    estimated = estimation.estimated_figures(
        reference, scores, prediction, targets=TARGETS, limits=LIMITS, replicates=150
    )
    realized = performance.overall_figures(
        labels, scores, prediction, targets=TARGETS, limits=performance.Limits(replicates=50)
    )
    errors = {f.metric: f for f in estimation.reconcile(estimated, realized)}
    sensitivity = errors["sensitivity_estimate_error"]
    assert sensitivity.value > 0.1  # the estimate is optimistic by more than ten points
    assert sensitivity.status == "warn"
    assert "concept shift" in sensitivity.details["reason"]
    assert sensitivity.details["realized"] < overall(estimated)["sensitivity"].ci_low


def test_reconciliation_is_quiet_when_the_estimate_holds_and_waits_for_enough_labels() -> None:
    rng = np.random.default_rng(4)
    reference = estimation.Reference.fit(*calibrated_world(rng, 5000), resamples=30)
    scores, labels = calibrated_world(rng, 3000)
    prediction = (scores >= 0.2).astype(int)
    estimated = estimation.estimated_figures(
        reference, scores, prediction, targets=TARGETS, limits=LIMITS, replicates=150
    )
    realized = performance.overall_figures(
        labels, scores, prediction, targets=TARGETS, limits=performance.Limits(replicates=50)
    )
    errors = {f.metric: f for f in estimation.reconcile(estimated, realized)}
    assert {f.status for f in errors.values()} == {"ok"}
    few = np.where(np.arange(3000) < 100, labels, -1)  # only 100 labelled so far
    partial = performance.overall_figures(
        few, scores, prediction, targets=TARGETS, limits=performance.Limits(replicates=50)
    )
    errors = {f.metric: f for f in estimation.reconcile(estimated, partial)}
    assert errors["sensitivity_estimate_error"].status == "insufficient_data"
    assert errors["sensitivity_estimate_error"].value is None


def test_segments_get_their_own_estimates_and_minimums() -> None:
    rng = np.random.default_rng(5)
    reference = estimation.Reference.fit(*calibrated_world(rng, 5000), resamples=10)
    scores, _ = calibrated_world(rng, 3000)
    site = np.where(np.arange(3000) < 2900, "big", "small").astype(object)
    parts = performance.partitions({"site": site}, ["site"], [])
    figures = estimation.estimated_figures(
        reference, scores, (scores > 0.2).astype(int), targets=TARGETS, limits=LIMITS, parts=parts, replicates=50
    )
    by_key = {(f.segment, f.metric): f for f in figures}
    assert by_key[("site=big", "sensitivity")].status != "insufficient_data"
    assert by_key[("site=small", "sensitivity")].status == "insufficient_data"
    assert by_key[("site=small", "sensitivity")].details["expected"]["positives"] < 30
    assert all(f.estimated and f.method == "cbpe_isotonic" for f in figures)


def test_on_the_simulator_without_change_the_estimate_covers_the_realized_figure() -> None:
    simulation = Simulation(days=14, per_day=300, seed=21)
    reference_rows = simulation.reference(5000)
    reference = estimation.Reference.fit(
        np.array([r["score"] for r in reference_rows]), np.array([r["label"] for r in reference_rows]), resamples=30
    )
    frame = simulation.frame()
    window = frame[frame.day >= 7]
    estimated = overall(
        estimation.estimated_figures(
            reference, window.score.to_numpy(), window.prediction.to_numpy(), targets=TARGETS, limits=LIMITS
        )
    )
    realized = overall(
        performance.overall_figures(
            window.label.to_numpy(),
            window.score.to_numpy(),
            window.prediction.to_numpy(),
            targets=TARGETS,
            limits=LIMITS,
        )
    )
    for metric in ("sensitivity", "specificity", "auc"):
        assert estimated[metric].ci_low <= realized[metric].value <= estimated[metric].ci_high, metric


# ---------------------------------------------------------------------------------------------
# NannyML's CBPE on its own dataset (bench/estimation_vs_nannyml.py prints the full table)

NANNYML_DATA = os.environ.get("RADMON_NANNYML_DATA")
NANNYML_PYTHON = os.environ.get("RADMON_NANNYML_PYTHON")


@pytest.mark.skipif(
    not (NANNYML_DATA and (Path(NANNYML_DATA) / "synthetic_sample_reference.csv").exists()),
    reason="set RADMON_NANNYML_DATA to the folder of NannyML's synthetic_sample_*.csv (from its wheel; see bench/estimation_vs_nannyml.py)",
)
@pytest.mark.skipif(
    not NANNYML_PYTHON, reason="set RADMON_NANNYML_PYTHON to the python of a venv with nannyml installed"
)
def test_per_chunk_auc_error_is_no_worse_than_nannyml_cbpe() -> None:
    answer = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "estimation_vs_nannyml.py"),
            "--data",
            str(NANNYML_DATA),
            "--nannyml-python",
            str(NANNYML_PYTHON),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    summary = json.loads(answer.stdout)
    auc = summary["metrics"]["roc_auc"]
    assert summary["chunks"] == 10
    assert auc["radmon_mae"] <= auc["nannyml_mae"] + 1e-4
    assert auc["radmon_inside"] >= 9
