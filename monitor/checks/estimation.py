"""Label-free performance estimation (confidence-based, as NannyML's CBPE) and its reconciliation.

Method: an isotonic map from score to P(label = 1 | score) is fitted on the version's labelled
reference. On a window without labels, each inference i then contributes its calibrated
probability p_i to an expected confusion matrix (E[TP] = sum of p_i over predicted positives,
E[FP] = sum of 1 - p_i over them, and so on), from which sensitivity, specificity, PPV and NPV
follow; the expected AUC is the expected share of (positive, negative) pairs ranked correctly by
the raw score, sum_i sum_{j != i} p_i (1 - p_j) [s_j < s_i, ties 1/2] / sum_{i != j} p_i (1 - p_j).

Uncertainty: a Monte Carlo prediction interval for the figure the labels will show. Each
replicate refits the calibrator on a bootstrap resample of the reference (calibration error),
draws every label from Bernoulli(p_i) (label noise of a finite window) and computes the realized
metric; the interval is the replicates' 2.5-97.5 percentiles.

Assumptions (docs/decisions/0421-label-free-estimation.md):
1. No concept shift: P(label | score) in the window equals the reference's. Covariate shift
   that moves scores is fine; a change that alters what a score means (a scanner that makes
   bleeds look faint, so true positives now score like negatives did) is not detectable here.
2. The reference is labelled, representative of the intended population, and large enough
   for the calibrator (a few hundred positives).
3. Labels are independent given the scores.
When outcomes arrive, `reconcile` compares the estimate with the realized figure; a realized
figure outside the combined uncertainty is the product's evidence that assumption 1 broke.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from monitor.checks import stats
from monitor.checks.performance import Figure, Limits, Partition, interval_status

ESTIMATED_METRICS = ("sensitivity", "specificity", "ppv", "npv", "auc")
ESTIMATE_REPLICATES = 200
MAX_REPLICATE_CELLS = 20_000_000  # replicates x rows per block, to bound memory


@dataclass(frozen=True)
class Calibrator:
    """A monotone step-linear map score -> P(label = 1 | score), as sklearn's isotonic predict."""

    knots: np.ndarray
    values: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.knots, self.values)


def fit_calibrator(scores: np.ndarray, labels: np.ndarray) -> Calibrator:
    """Isotonic regression of the labels on the scores (clipped outside the reference's range)."""
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    model.fit(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64))
    return Calibrator(np.asarray(model.X_thresholds_), np.asarray(model.y_thresholds_))


@dataclass
class Reference:
    """The labelled reference: what the estimator is fitted on, and its bootstrap refits."""

    scores: np.ndarray
    labels: np.ndarray
    calibrator: Calibrator
    resamples: list[Calibrator] = field(default_factory=list)

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray, *, resamples: int = 50, seed: int = 11) -> Reference:
        scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
        if len(scores) == 0 or labels.min() == labels.max():
            raise ValueError("the reference needs labelled positives and negatives to calibrate the scores")
        rng = np.random.default_rng(seed)
        refits = []
        for _ in range(resamples):
            rows = rng.integers(0, len(scores), len(scores))
            refits.append(fit_calibrator(scores[rows], labels[rows]))
        return cls(scores, labels, fit_calibrator(scores, labels), refits)


# ---------------------------------------------------------------------------------------------
# Point estimates per group


@dataclass
class Expected:
    """Expected confusion matrix per group, and the expected AUC."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray
    auc: np.ndarray
    rows: np.ndarray

    def value(self, metric: str) -> np.ndarray:
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        return {
            "sensitivity": stats._ratio(tp, tp + fn),
            "specificity": stats._ratio(tn, tn + fp),
            "ppv": stats._ratio(tp, tp + fp),
            "npv": stats._ratio(tn, tn + fn),
            "auc": self.auc,
        }[metric]


def expected_confusion(
    probability: np.ndarray, prediction: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, ...]:
    predicted = np.asarray(prediction).astype(bool)
    cell = np.asarray(groups, dtype=np.int64) * 2 + predicted
    positive = np.bincount(cell, weights=probability, minlength=2 * n_groups).reshape(n_groups, 2)
    total = np.bincount(cell, minlength=2 * n_groups).reshape(n_groups, 2)
    negative = total - positive
    return positive[:, 1], negative[:, 1], positive[:, 0], negative[:, 0]  # tp, fp, fn, tn


def expected_auc(probability: np.ndarray, scores: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Expected AUC per group: pairs (i, j), i != j, weighted p_i (1 - p_j), ranked by the raw score."""
    order = np.lexsort((scores, groups))
    g, s, p = groups[order], np.asarray(scores, dtype=np.float64)[order], probability[order]
    q = 1.0 - p
    n = len(g)
    if n == 0:
        return np.full(n_groups, np.nan)
    change = np.ones(n, dtype=bool)
    change[1:] = (g[1:] != g[:-1]) | (s[1:] != s[:-1])
    run = np.cumsum(change) - 1
    run_q = np.bincount(run, weights=q)
    # Sum of q over rows of the same group with a strictly lower score: group cumsum before the run.
    group_change = np.ones(n, dtype=bool)
    group_change[1:] = g[1:] != g[:-1]
    cumulative = np.cumsum(q)
    group_offset = np.maximum.accumulate(np.where(group_change, cumulative - q, 0.0))
    run_start_cumulative = (cumulative - q)[change][run]
    below = run_start_cumulative - group_offset
    ties = run_q[run] - q  # other rows tied with i
    numerator = np.bincount(g, weights=p * (below + 0.5 * ties), minlength=n_groups)
    sum_p = np.bincount(g, weights=p, minlength=n_groups)
    sum_q = np.bincount(g, weights=q, minlength=n_groups)
    denominator = sum_p * sum_q - np.bincount(g, weights=p * q, minlength=n_groups)
    return stats._ratio(numerator, denominator)


def expected(
    probability: np.ndarray, scores: np.ndarray, prediction: np.ndarray, groups: np.ndarray, n_groups: int
) -> Expected:
    tp, fp, fn, tn = expected_confusion(probability, prediction, groups, n_groups)
    auc = expected_auc(probability, np.asarray(scores, dtype=np.float64), groups, n_groups)
    return Expected(tp, fp, fn, tn, auc, np.bincount(groups, minlength=n_groups))


# ---------------------------------------------------------------------------------------------
# Monte Carlo prediction intervals


def _group_ranks(scores: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Midrank of each row's score within its group (1-based), in the original row order."""
    order = np.lexsort((scores, groups))
    counts = np.bincount(groups, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ranks = np.empty(len(scores))
    ranks[order] = stats.midranks_in_runs((groups[order], scores[order]), start[groups[order]])
    return ranks


def simulate(
    reference: Reference,
    scores: np.ndarray,
    prediction: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    *,
    replicates: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Replicates (replicates x groups) of each metric as the labels might turn out."""
    rng = np.random.default_rng(seed)
    scores = np.asarray(scores, dtype=np.float64)
    predicted = np.asarray(prediction).astype(np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    ranks = _group_ranks(scores, groups, n_groups)
    rows = np.bincount(groups, minlength=n_groups).astype(np.float64)
    calibrators = reference.resamples or [reference.calibrator]
    out = {metric: np.empty((replicates, n_groups)) for metric in ESTIMATED_METRICS}
    block = max(1, min(replicates, MAX_REPLICATE_CELLS // max(len(scores), 1)))
    indicator = np.zeros((len(scores), n_groups))
    indicator[np.arange(len(scores)), groups] = 1.0
    predicted_count = indicator.T @ predicted
    for first in range(0, replicates, block):
        size = min(block, replicates - first)
        probability = np.stack([calibrators[(first + b) % len(calibrators)](scores) for b in range(size)])
        labels = (rng.random(probability.shape) < probability).astype(np.float64)
        positives = labels @ indicator
        tp = (labels * predicted) @ indicator
        rank_sum = (labels * ranks) @ indicator
        negatives = rows - positives
        fn, fp = positives - tp, predicted_count - tp
        tn = negatives - fp
        window = slice(first, first + size)
        out["sensitivity"][window] = stats._ratio(tp, positives)
        out["specificity"][window] = stats._ratio(tn, negatives)
        out["ppv"][window] = stats._ratio(tp, tp + fp)
        out["npv"][window] = stats._ratio(tn, tn + fn)
        out["auc"][window] = stats._ratio(rank_sum - positives * (positives + 1) / 2, positives * negatives)
    return out


# ---------------------------------------------------------------------------------------------
# Figures


def estimated_figures(
    reference: Reference,
    scores: np.ndarray,
    prediction: np.ndarray,
    *,
    targets: dict[str, float],
    limits: Limits,
    parts: list[Partition] = (),  # type: ignore[assignment]
    replicates: int = ESTIMATE_REPLICATES,
) -> list[Figure]:
    """Estimated metrics overall (segment None) and per segment, with prediction intervals."""
    scores = np.asarray(scores, dtype=np.float64)
    probability = reference.calibrator(scores)
    figures = _figures_for(
        reference,
        probability,
        scores,
        prediction,
        np.zeros(len(scores), dtype=np.int64),
        [None],
        (),
        targets,
        limits,
        replicates,
        0,
    )
    for k, part in enumerate(parts):
        figures += _figures_for(
            reference,
            probability,
            scores,
            prediction,
            part.codes,
            part.names,
            part.attributes,
            targets,
            limits,
            replicates,
            k + 1,
        )
    return figures


def _figures_for(
    reference: Reference,
    probability: np.ndarray,
    scores: np.ndarray,
    prediction: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str | None],
    attributes: tuple[str, ...],
    targets: dict[str, float],
    limits: Limits,
    replicates: int,
    offset: int,
) -> list[Figure]:
    n_groups = len(names)
    point = expected(probability, scores, prediction, groups, n_groups)
    draws = simulate(
        reference, scores, prediction, groups, n_groups, replicates=replicates, seed=limits.seed + 101 * offset
    )
    figures = []
    for metric in ESTIMATED_METRICS:
        value = point.value(metric)
        low, high = stats.percentile_interval(draws[metric])
        enough = _enough(metric, point, limits)
        for i, name in enumerate(names):
            target = targets.get(metric)
            details: dict[str, Any] = {
                "expected": {
                    "positives": float(point.tp[i] + point.fn[i]),
                    "negatives": float(point.tn[i] + point.fp[i]),
                    "tp": float(point.tp[i]),
                    "fp": float(point.fp[i]),
                    "fn": float(point.fn[i]),
                    "tn": float(point.tn[i]),
                },
                "inferences": int(point.rows[i]),
                "interval": "prediction interval of the realized figure (Monte Carlo)",
            }
            if attributes:
                details["attributes"] = list(attributes)
            if not enough[i]:
                status = "insufficient_data"
                details["minimum"] = {"positives": limits.min_positives, "negatives": limits.min_negatives}
            else:
                status = interval_status(metric, value[i], low[i], high[i], target)
            figures.append(
                Figure(
                    metric, name, _number(value[i]), _number(low[i]), _number(high[i]), int(point.rows[i]), target,
                    "cbpe_isotonic", status, estimated=True, details=details,
                )
            )  # fmt: skip
    return figures


def _enough(metric: str, point: Expected, limits: Limits) -> np.ndarray:
    positives, negatives = point.tp + point.fn, point.tn + point.fp
    if metric == "sensitivity":
        return positives >= limits.min_positives
    if metric == "specificity":
        return negatives >= limits.min_negatives
    if metric == "ppv":
        return point.tp + point.fp >= limits.min_positives
    if metric == "npv":
        return point.tn + point.fn >= limits.min_negatives
    return (positives >= limits.min_positives) & (negatives >= limits.min_negatives)


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# Reconciliation with the realized figures


# What the finding texts say (an alert and the performance page show them; decision 0421, 0235).
SUPPORT_MEANING = (
    "estimate support is the share of the window's studies whose inputs (scanner, protocol, patient) lie inside "
    "what the labelled reference covered; the label-free estimate is informative for those studies only"
)
BLIND_SPOT = (
    "the estimate reads each score as the reference did, so a change in what a score means (a new scanner or "
    "reconstruction hiding bleeds: a concept shift) is invisible to it"
)


def uninformative_reason(metric: str, segment: str | None, estimated: float, realized: float | None) -> str:
    """Why an estimate that labels contradicted has stopped being informative, in plain words."""
    where = f"segment {segment}" if segment else "the whole population"
    realized_text = "-" if realized is None else f"{realized:.3f}"
    return (
        f"the label-free {metric} estimate has stopped being informative for {where}: it said {estimated:.3f}, the "
        f"confirmed outcomes give {realized_text}, further apart than both uncertainties allow; {BLIND_SPOT}. "
        "Judge this segment by its realized figures until the estimate agrees with them again"
    )


def support_reason(share_outside: float, features: list[str]) -> str:
    """Why a segment's estimate is not to be trusted before any label: its inputs leave the reference's."""
    named = f" ({', '.join(features[:3])})" if features else ""
    return (
        f"{share_outside:.0%} of these studies have inputs the labelled reference never had{named}, so the label-free "
        f"estimate extrapolates for them; {SUPPORT_MEANING}. Low support also means {BLIND_SPOT}"
    )


def reconcile(estimated: list[Figure], realized: list[Figure]) -> list[Figure]:
    """One `<metric>_estimate_error` figure per estimated figure whose realized counterpart is judged.

    value = estimate - realized. Status `warn` when the difference exceeds 1.96 times the combined
    standard error of the two (each read off its 95% interval): the estimate missed by more than
    its own uncertainty allows, the signature of a concept shift (assumption 1 broken)."""
    by_key = {(f.metric, f.segment): f for f in realized}
    errors = []
    for guess in estimated:
        truth = by_key.get((guess.metric, guess.segment))
        if truth is None or guess.value is None:
            continue
        name = f"{guess.metric}_estimate_error"
        details: dict[str, Any] = {
            "estimated": guess.value,
            "estimated_interval": [guess.ci_low, guess.ci_high],
            "realized": truth.value,
            "realized_interval": [truth.ci_low, truth.ci_high],
            "coverage": truth.details.get("coverage"),
        }
        if truth.status == "insufficient_data" or truth.value is None:
            errors.append(
                Figure(
                    name,
                    guess.segment,
                    None,
                    None,
                    None,
                    truth.n,
                    None,
                    "reconciliation",
                    "insufficient_data",
                    details=details,
                )
            )
            continue
        error = guess.value - truth.value
        spread = np.sqrt(_se(guess) ** 2 + _se(truth) ** 2)
        z = error / spread if spread > 0 else 0.0
        details["z"] = float(z)
        outside = abs(z) > stats.Z95
        if outside:
            details["reason"] = uninformative_reason(guess.metric, guess.segment, guess.value, truth.value)
        errors.append(
            Figure(
                name, guess.segment, float(error), float(error - stats.Z95 * spread), float(error + stats.Z95 * spread),
                truth.n, None, "reconciliation", "warn" if outside else "ok", details=details,
            )
        )  # fmt: skip
    return errors


def _se(figure: Figure) -> float:
    if figure.ci_low is None or figure.ci_high is None:
        return 0.0
    return (figure.ci_high - figure.ci_low) / (2 * stats.Z95)
