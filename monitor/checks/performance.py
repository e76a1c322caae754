"""Realized performance of a binary model on a window, overall and per segment, from plain arrays.

Input: one entry per inference of the window: label (1, 0, or -1 while no outcome is known),
score, prediction, and the segment attributes' values. Output: `Figure`s (what a metric point
stores), each with its interval, n, the counts behind it, a status against the version's target
and, per segment, the tests behind that status. No database here: monitor.checks.performance_checks
reads the window and writes the points.

Statuses (DESIGN section 6; docs/decisions/0420-performance-and-subgroup-statistics.md):
- insufficient_data: fewer positives / negatives than the policy minimum for that metric;
- breach: overall, the 95% interval lies entirely on the wrong side of the target; per segment,
  the test against the target is a Benjamini-Hochberg discovery (q <= fdr_q) with the estimate on
  the wrong side (for a lone test: the same as the overall rule);
- warn: only the point estimate misses the target, or the segment is a discovery against the
  rest of the population (significantly worse than the others, but not shown below target);
- ok otherwise (also for metrics without a target).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from monitor.checks import stats
from monitor.checks.catalog import LOWER_IS_BETTER, METRICS, PERFORMANCE_METRICS, PROPORTIONS

VERSUS_REST = ("sensitivity", "specificity")  # tested against the rest of the population
MISSING = "(missing)"
REPLICATES = 200
SEED = 20260104


@dataclass(frozen=True)
class Limits:
    """What a run needs: the policy's minimum counts and FDR level, and the bootstrap size."""

    min_positives: int = 30
    min_negatives: int = 30
    fdr_q: float = 0.05
    replicates: int = REPLICATES
    seed: int = SEED


@dataclass
class Figure:
    """One metric of one window (overall or one segment): what a metric point stores."""

    metric: str
    segment: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    threshold: float | None
    method: str
    status: str
    estimated: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Grouped:
    """Every metric for every group of one partition of the rows, as arrays indexed by group."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray
    rows: np.ndarray  # inferences in the group, labelled or not
    value: dict[str, np.ndarray]
    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    n: dict[str, np.ndarray]
    method: dict[str, str]
    auc_variance: np.ndarray
    reliability: dict[str, np.ndarray]  # per group x ECE bin: count, mean score, observed rate

    @property
    def positives(self) -> np.ndarray:
        return self.tp + self.fn

    @property
    def negatives(self) -> np.ndarray:
        return self.tn + self.fp


# ---------------------------------------------------------------------------------------------
# Metrics per group


def grouped_metrics(
    label: np.ndarray,
    score: np.ndarray,
    prediction: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    *,
    limits: Limits,
    score_order: np.ndarray | None = None,
) -> Grouped:
    """All metrics per group; rows with label -1 count toward coverage only.

    score_order: a stable argsort of the labelled rows' scores, shared by the partitions of a run."""
    label, score = np.asarray(label), np.asarray(score, dtype=np.float64)
    prediction, groups = np.asarray(prediction).astype(bool), np.asarray(groups, dtype=np.int64)
    rows = np.bincount(groups, minlength=n_groups)
    known = label >= 0
    y, s, p, g = label[known].astype(bool), score[known], prediction[known], groups[known]
    cell = np.bincount(g * 4 + y * 2 + p, minlength=n_groups * 4).reshape(n_groups, 4).astype(np.int64)
    tn, fp, fn, tp = cell[:, 0], cell[:, 1], cell[:, 2], cell[:, 3]
    counts = {
        "sensitivity": (tp, tp + fn),
        "specificity": (tn, tn + fp),
        "ppv": (tp, tp + fp),
        "npv": (tn, tn + fn),
        "accuracy": (tp + tn, tp + tn + fp + fn),
    }
    value, low, high, n, method = {}, {}, {}, {}, {}
    for metric, (successes, total) in counts.items():
        value[metric] = stats._ratio(successes, total)
        low[metric], high[metric] = stats.wilson_interval(successes, total)
        n[metric], method[metric] = total, "wilson"
    rng = np.random.default_rng(limits.seed)
    value["f1"] = stats._ratio(2 * tp, 2 * tp + fp + fn)
    boot = rng.poisson(np.broadcast_to(cell, (limits.replicates, *cell.shape)))
    low["f1"], high["f1"] = stats.percentile_interval(
        stats._ratio(2 * boot[..., 3], 2 * boot[..., 3] + boot[..., 1] + boot[..., 2])
    )
    n["f1"], method["f1"] = tp + fp + fn + tn, "poisson_bootstrap"
    auc = stats.delong_auc(y, s, g, n_groups, score_order=score_order)
    value["auc"] = auc.auc
    low["auc"], high["auc"] = auc.interval()
    n["auc"], method["auc"] = tp + fp + fn + tn, "delong"
    cells = stats.CalibrationCells.build(y, s, g, n_groups)
    value["brier"] = stats.brier_from_cells(cells.count, cells.brier_sum())
    value["ece"] = stats.ece_from_cells(cells.count, cells.score_sum)
    brier_boot, ece_boot = stats.calibration_bootstrap(cells, replicates=limits.replicates, seed=limits.seed + 1)
    low["brier"], high["brier"] = stats.percentile_interval(brier_boot)
    low["ece"], high["ece"] = stats.percentile_interval(ece_boot)
    for metric in ("brier", "ece"):
        n[metric], method[metric] = tp + fp + fn + tn, "poisson_bootstrap"
    return Grouped(tp, fp, fn, tn, rows, value, low, high, n, method, auc.variance, _reliability(cells))


@dataclass
class Counts:
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray


def confusion_counts(label: np.ndarray, prediction: np.ndarray) -> Counts:
    """The labelled rows' confusion matrix (one group)."""
    known = label >= 0
    y, p = label[known] == 1, np.asarray(prediction)[known].astype(bool)
    return Counts(*(np.array([int(np.count_nonzero(mask))]) for mask in (y & p, ~y & p, y & ~p, ~y & ~p)))


def _reliability(cells: stats.CalibrationCells) -> dict[str, np.ndarray]:
    count, score_sum = stats.coarsen(cells.count), stats.coarsen(cells.score_sum)
    n_bin = count.sum(axis=-1)
    positives = count[..., 1]
    low, high = stats.wilson_interval(positives, n_bin)
    return {
        "n": n_bin,
        "mean_score": stats._ratio(score_sum.sum(axis=-1), n_bin),
        "observed": stats._ratio(positives, n_bin),
        "low": low,
        "high": high,
    }


def sufficient(metric: str, grouped: Grouped, limits: Limits) -> np.ndarray:
    """Whether each group has the counts the policy asks for before this metric is judged."""
    enough_pos = grouped.positives >= limits.min_positives
    enough_neg = grouped.negatives >= limits.min_negatives
    if metric == "sensitivity":
        return enough_pos
    if metric == "specificity":
        return enough_neg
    if metric == "ppv":
        return grouped.tp + grouped.fp >= limits.min_positives
    if metric == "npv":
        return grouped.tn + grouped.fn >= limits.min_negatives
    return enough_pos & enough_neg


def worse(metric: str, value: np.ndarray | float, target: float) -> np.ndarray:
    """Whether a value misses the target (below it, or above it for Brier and ECE)."""
    value = np.asarray(value, dtype=np.float64)
    return value > target if metric in LOWER_IS_BETTER else value < target


def interval_status(metric: str, value: float, low: float, high: float, target: float | None) -> str:
    """Overall status: breach when the whole 95% interval misses the target, warn when the estimate does."""
    if target is None or not np.isfinite(value):
        return "ok"
    if (low > target) if metric in LOWER_IS_BETTER else (high < target):
        return "breach"
    return "warn" if worse(metric, value, target) else "ok"


# ---------------------------------------------------------------------------------------------
# Overall figures


def overall_figures(
    label: np.ndarray, score: np.ndarray, prediction: np.ndarray, *, targets: dict[str, float], limits: Limits
) -> list[Figure]:
    """The window's metrics with intervals and statuses, plus label coverage."""
    grouped = grouped_metrics(label, score, prediction, np.zeros(len(label), dtype=np.int64), 1, limits=limits)
    return [_coverage_figure(grouped, 0, None), *_figures(grouped, 0, None, targets, limits)]


def _counts(grouped: Grouped, i: int) -> dict[str, int]:
    labelled = int(grouped.tp[i] + grouped.fp[i] + grouped.fn[i] + grouped.tn[i])
    return {
        "inferences": int(grouped.rows[i]),
        "labelled": labelled,
        "positives": int(grouped.positives[i]),
        "negatives": int(grouped.negatives[i]),
        "tp": int(grouped.tp[i]),
        "fp": int(grouped.fp[i]),
        "fn": int(grouped.fn[i]),
        "tn": int(grouped.tn[i]),
    }


def _coverage_figure(grouped: Grouped, i: int, segment: str | None) -> Figure:
    counts = _counts(grouped, i)
    coverage = counts["labelled"] / counts["inferences"] if counts["inferences"] else None
    return Figure(
        "label_coverage",
        segment,
        coverage,
        None,
        None,
        counts["inferences"],
        None,
        "count",
        "ok",
        details={"counts": counts},
    )


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _figures(grouped: Grouped, i: int, segment: str | None, targets: dict[str, float], limits: Limits) -> list[Figure]:
    figures = []
    counts = _counts(grouped, i)
    for metric in PERFORMANCE_METRICS:
        target = targets.get(metric)
        value, low, high = grouped.value[metric][i], grouped.low[metric][i], grouped.high[metric][i]
        details: dict[str, Any] = {
            "counts": counts,
            "coverage": counts["labelled"] / counts["inferences"] if counts["inferences"] else None,
        }
        if metric == "ece":
            details["reliability"] = _reliability_rows(grouped, i)
        if not sufficient(metric, grouped, limits)[i]:
            status = "insufficient_data"
            details["minimum"] = {"positives": limits.min_positives, "negatives": limits.min_negatives}
        else:
            status = interval_status(metric, value, low, high, target)
        figures.append(
            Figure(
                metric, segment, _number(value), _number(low), _number(high), int(grouped.n[metric][i]), target,
                grouped.method[metric], status, details=details,
            )
        )  # fmt: skip
    return figures


def _reliability_rows(grouped: Grouped, i: int) -> list[dict[str, Any]]:
    r = grouped.reliability
    bins = r["n"].shape[-1]
    return [
        {
            "low": b / bins,
            "high": (b + 1) / bins,
            "n": int(r["n"][i, b]),
            "mean_score": _number(r["mean_score"][i, b]),
            "observed": _number(r["observed"][i, b]),
            "ci_low": _number(r["low"][i, b]),
            "ci_high": _number(r["high"][i, b]),
        }
        for b in range(bins)
        if r["n"][i, b] > 0
    ]


# ---------------------------------------------------------------------------------------------
# Segments


@dataclass
class Partition:
    """One segment attribute (or intersection): a group code per row and each group's name."""

    attributes: tuple[str, ...]
    codes: np.ndarray
    names: list[str]


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _factorize(values: np.ndarray | pd.Categorical) -> tuple[np.ndarray, list[str]]:
    if isinstance(values, pd.Categorical):  # already dictionary-encoded (the database read)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    else:
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    names = [_text(u) for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names.append(MISSING)
    return codes.astype(np.int64), names


def partitions(
    columns: dict[str, np.ndarray], segments: Sequence[str], intersections: Iterable[Sequence[str]]
) -> list[Partition]:
    """Group codes per segment attribute and per declared intersection; names `a=v` and `a=v&b=w`."""
    single: dict[str, tuple[np.ndarray, list[str]]] = {
        attribute: _factorize(columns[attribute]) for attribute in segments
    }
    result = [Partition((a,), codes, [f"{a}={name}" for name in names]) for a, (codes, names) in single.items()]
    for combo in intersections:
        combined = np.zeros(len(next(iter(columns.values()))) if columns else 0, dtype=np.int64)
        for attribute in combo:
            codes, names = single[attribute]
            combined = combined * len(names) + codes
        codes, first = np.unique(combined, return_inverse=True)
        labels = []
        for value in codes:
            parts, remainder = [], int(value)
            for attribute in reversed(combo):
                names = single[attribute][1]
                parts.append(f"{attribute}={names[remainder % len(names)]}")
                remainder //= len(names)
            labels.append("&".join(reversed(parts)))
        result.append(Partition(tuple(combo), first.astype(np.int64), labels))
    return result


@dataclass
class SubgroupTable:
    figures: list[Figure]  # per segment: label_coverage and every metric
    ranking: list[dict[str, Any]]  # segments, worst first
    tests: int  # size of the BH family


def subgroup_table(
    label: np.ndarray,
    score: np.ndarray,
    prediction: np.ndarray,
    parts: list[Partition],
    *,
    targets: dict[str, float],
    limits: Limits,
) -> SubgroupTable:
    """Every metric per segment, tested against the target and the rest, BH across the run.

    Segments with exactly the same rows (site=north and manufacturer=GE when only that site has
    GE scanners, or their intersection) are one hypothesis: tested once, the result reported
    under every name (details["same_rows_as"]). Counting them separately would let one chance
    finding vote for itself in the BH step-up."""
    label, prediction, score = np.asarray(label), np.asarray(prediction), np.asarray(score, dtype=np.float64)
    score_order = np.argsort(score[label >= 0], kind="stable")
    overall = confusion_counts(label, prediction)  # the rest of the population = all minus the segment
    fingerprint_weights = np.random.default_rng(limits.seed).random(len(label))
    primary_of: dict[tuple[int, float], str] = {}
    figures: list[Figure] = []
    tests: list[tuple[Figure, str, float]] = []  # (figure, "target" | "rest", p-value of "worse")
    against_rest: list[tuple[Figure, int, int, int, int]] = []  # (figure, x, n, rest x, rest n)
    duplicates: list[tuple[Figure, str]] = []
    for k, part in enumerate(parts):
        n_groups = len(part.names)
        grouped = grouped_metrics(
            label,
            score,
            prediction,
            part.codes,
            n_groups,
            limits=replace(limits, seed=limits.seed + 7 * k),
            score_order=score_order,
        )
        # bincount adds in row order, so equal row sets give bit-identical sums.
        fingerprints = np.bincount(part.codes, weights=fingerprint_weights, minlength=n_groups)
        for i, name in enumerate(part.names):
            key = (int(grouped.rows[i]), float(fingerprints[i]))
            primary = primary_of.setdefault(key, name)
            figures.append(_coverage_figure(grouped, i, name))
            for figure in _figures(grouped, i, name, targets, limits):
                figure.details["attributes"] = list(part.attributes)
                figures.append(figure)
                if figure.status == "insufficient_data":
                    continue
                if primary != name:
                    figure.details["same_rows_as"] = primary
                    duplicates.append((figure, primary))
                    continue
                tests.extend(_target_test(figure, grouped, i))
                if figure.metric in VERSUS_REST:
                    successes, total = _proportion_counts(figure.metric, grouped, i)
                    all_successes, all_total = _proportion_counts(figure.metric, overall, 0)
                    if 0 < total < all_total:
                        against_rest.append((figure, successes, total, all_successes - successes, all_total - total))
    tests.extend(_rest_tests(against_rest))
    adjusted = stats.benjamini_hochberg(np.array([p for _, _, p in tests]))
    for (figure, against, p_value), q_value in zip(tests, adjusted, strict=True):
        figure.details[f"p_{against}"] = _number(p_value)
        figure.details[f"q_{against}"] = _number(q_value)
    by_key = {(f.segment, f.metric): f for f in figures}
    for figure, primary in duplicates:
        source = by_key[(primary, figure.metric)].details
        figure.details.update(
            {key: source[key] for key in ("p_target", "q_target", "p_rest", "q_rest", "rest") if key in source}
        )
    for figure in figures:
        if figure.metric != "label_coverage" and figure.status != "insufficient_data":
            figure.status = _segment_status(figure, limits.fdr_q)
    return SubgroupTable(figures, _rank(figures), len(tests))


def _target_test(figure: Figure, grouped: Grouped, i: int) -> list[tuple[Figure, str, float]]:
    """p-value of "this segment's metric is worse than the target" (none without a target)."""
    metric, target = figure.metric, figure.threshold
    if target is None or figure.value is None:
        return []
    if metric in PROPORTIONS:
        successes, total = _proportion_counts(metric, grouped, i)
        z = float(stats.score_test(successes, total, target))
    elif metric == "auc":
        variance = grouped.auc_variance[i]
        z = (grouped.value["auc"][i] - target) / np.sqrt(variance) if variance > 0 else np.nan
    else:  # F1, Brier, ECE: normal approximation with the bootstrap's spread
        se = (grouped.high[metric][i] - grouped.low[metric][i]) / (2 * stats.Z95)
        z = (grouped.value[metric][i] - target) / se if se > 0 else np.nan
    if metric in LOWER_IS_BETTER:
        z = -z
    return [(figure, "target", float(stats.worse_side(z)))] if np.isfinite(z) else []


def _rest_tests(requests: list[tuple[Figure, int, int, int, int]]) -> list[tuple[Figure, str, float]]:
    """p-values of "this segment is worse than the rest of the population" (Miettinen-Nurminen), all at once."""
    if not requests:
        return []
    x1, n1, x2, n2 = (np.array([r[j] for r in requests], dtype=np.float64) for j in range(1, 5))
    diff, low, high, _ = stats.mn_difference(x1, n1, x2, n2)
    p_values = stats.worse_side(stats.mn_statistic(x1, n1, x2, n2, 0.0))
    tests = []
    for j, (figure, *_counts) in enumerate(requests):
        figure.details["rest"] = {
            "value": _number(x2[j] / n2[j]),
            "n": int(n2[j]),
            "difference": _number(diff[j]),
            "difference_ci": [_number(low[j]), _number(high[j])],
            "method": "miettinen_nurminen",
        }
        tests.append((figure, "rest", float(p_values[j])))
    return tests


def _proportion_counts(metric: str, grouped: Grouped | Counts, i: int) -> tuple[int, int]:
    counts = {"tp": int(grouped.tp[i]), "fp": int(grouped.fp[i]), "fn": int(grouped.fn[i]), "tn": int(grouped.tn[i])}
    successes, trials = METRICS[metric].counts or ((), ())
    return sum(counts[c] for c in successes), sum(counts[c] for c in trials)


def _segment_status(figure: Figure, fdr_q: float) -> str:
    """breach: a BH discovery below target; warn: the estimate misses, or a discovery below the rest."""
    target, value, details = figure.threshold, figure.value, figure.details
    misses = target is not None and value is not None and bool(worse(figure.metric, value, target))
    below_target = misses and details.get("q_target") is not None and details["q_target"] <= fdr_q
    rest = details.get("rest")
    below_rest = bool(
        rest is not None
        and details.get("q_rest") is not None
        and details["q_rest"] <= fdr_q
        and rest["difference"] is not None
        and rest["difference"] < 0
    )
    details["discovery"] = {"target": bool(below_target), "rest": below_rest}
    if below_target:
        return "breach"
    return "warn" if misses or below_rest else "ok"


STATUS_ORDER = {"breach": 0, "warn": 1, "ok": 2, "insufficient_data": 3}


def _rank(figures: list[Figure]) -> list[dict[str, Any]]:
    """Segments ordered by their largest shortfall below target (judged metrics first)."""
    by_segment: dict[str, dict[str, Any]] = {}
    for figure in figures:
        if figure.metric == "label_coverage":
            continue
        entry = by_segment.setdefault(
            figure.segment or "",
            {"segment": figure.segment, "status": "insufficient_data", "shortfall": None, "metric": None},
        )
        if STATUS_ORDER[figure.status] < STATUS_ORDER[entry["status"]]:
            entry["status"] = figure.status
        if figure.status == "insufficient_data" or figure.threshold is None or figure.value is None:
            continue
        gap = figure.value - figure.threshold if figure.metric in LOWER_IS_BETTER else figure.threshold - figure.value
        if entry["shortfall"] is None or gap > entry["shortfall"]:
            entry["shortfall"], entry["metric"] = gap, figure.metric
    ranking = sorted(
        by_segment.values(),
        key=lambda e: (e["shortfall"] is None, -(e["shortfall"] or 0.0), e["segment"] or ""),
    )
    for position, entry in enumerate(ranking, start=1):
        entry["rank"] = position
    ranks = {entry["segment"]: entry["rank"] for entry in ranking}
    for figure in figures:
        figure.details["rank"] = ranks.get(figure.segment)
    return ranking
