"""The vocabulary of checks: one spec per check kind and one table of metrics.

Every kind name, label, default severity and page, and every metric label, unit and direction
used by the API's schemas, the alert rules, the emails and the dashboard is derived from these
two tables, so a kind or a metric is added here once (tests/checks/test_catalog.py fails when
something a run emits or a page shows has no entry). Imports nothing from radmon: any layer may
read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

Severity = Literal["critical", "warning", "info"]
Family = Literal["drift", "performance"]


@dataclass(frozen=True)
class KindSpec:
    """A check kind: what it is called and explained as, what its breach raises, where it is read."""

    name: str
    label: str  # "Input drift": sentence case; emails use it in lower case inside a sentence
    explanation: str  # one sentence for the adverse-event email
    default_severity: Severity  # DESIGN 7: the severity of a breach unless the policy overrides it
    needs_outcomes: bool  # judged on confirmed outcomes, so re-run when late labels arrive
    family: Family  # drift kinds compare with a reference (threshold); performance kinds with targets
    page: str  # the dashboard page where its runs are read


# In the contract's order (the API lists kinds in this order).
KIND_SPECS: tuple[KindSpec, ...] = (
    KindSpec(
        "input_drift",
        "Input drift",
        "The distribution of an input feature moved away from the reference data.",
        "warning",
        needs_outcomes=False,
        family="drift",
        page="/drift",
    ),
    KindSpec(
        "output_drift",
        "Output drift",
        "The distribution of the model's scores or positive-prediction rate moved away from the reference.",
        "warning",
        needs_outcomes=False,
        family="drift",
        page="/drift",
    ),
    KindSpec(
        "performance",
        "Performance",
        "Realized performance: confirmed outcomes joined to the model's inferences in the window.",
        "critical",
        needs_outcomes=True,
        family="performance",
        page="/performance",
    ),
    KindSpec(
        "subgroups",
        "Subgroup performance",
        "Realized performance in one subgroup, compared with the target and with the rest of the "
        "population (Benjamini-Hochberg FDR control across all subgroup tests of the run).",
        "critical",
        needs_outcomes=True,
        family="performance",
        page="/subgroups",
    ),
    KindSpec(
        "estimated_performance",
        "Estimated performance",
        "Estimated from the model's confidence scores before outcomes arrive: an early warning, "
        "to be confirmed by realized performance.",
        "warning",
        needs_outcomes=False,
        family="performance",
        page="/performance",
    ),
)
KINDS: dict[str, KindSpec] = {spec.name: spec for spec in KIND_SPECS}
CHECK_KINDS: tuple[str, ...] = tuple(KINDS)
if TYPE_CHECKING:
    CheckKind = str
else:  # pydantic validates against the names above: the Literal is built from the specs
    CheckKind = Literal[CHECK_KINDS]
LABELLED_KINDS = tuple(spec.name for spec in KIND_SPECS if spec.needs_outcomes)
DRIFT_KINDS = tuple(spec.name for spec in KIND_SPECS if spec.family == "drift")
PERFORMANCE_KINDS = tuple(spec.name for spec in KIND_SPECS if spec.family == "performance")


def kind_label(kind: str) -> str:
    """The kind's label; an unknown kind (a run recorded by a newer release) shows its name."""
    spec = KINDS.get(kind)
    return kind if spec is None else spec.label


Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric a run stores: its label, the unit its axis states, which way is better, and for
    proportions the confusion counts behind it (successes / trials, each a sum of counts)."""

    name: str
    label: str
    unit: str | None  # the axis title; None: a drift score, titled by its method
    direction: Direction | None  # None: judged against a threshold or not judged at all
    counts: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    target: bool = False  # a version may declare a target for it (registry's `targets`)


def _estimate_error(metric: str, label: str) -> MetricSpec:
    return MetricSpec(f"{metric}_estimate_error", f"{label} estimate error", None, None)


METRIC_SPECS: tuple[MetricSpec, ...] = (
    # Realized (and estimated) performance; the first nine may carry targets.
    MetricSpec("sensitivity", "Sensitivity", "Sensitivity (proportion, 0–1)", "higher", (("tp",), ("tp", "fn")), True),
    MetricSpec("specificity", "Specificity", "Specificity (proportion, 0–1)", "higher", (("tn",), ("tn", "fp")), True),
    MetricSpec("ppv", "PPV", "PPV (proportion, 0–1)", "higher", (("tp",), ("tp", "fp")), True),
    MetricSpec("npv", "NPV", "NPV (proportion, 0–1)", "higher", (("tn",), ("tn", "fn")), True),
    MetricSpec("f1", "F1", "F1 score (0–1)", "higher", target=True),
    MetricSpec(
        "accuracy", "Accuracy", "Accuracy (proportion, 0–1)", "higher", (("tp", "tn"), ("tp", "tn", "fp", "fn")), True
    ),
    MetricSpec("auc", "AUC", "AUC (0–1)", "higher", target=True),
    MetricSpec("brier", "Brier score", "Brier score (0–1, lower is better)", "lower", target=True),
    MetricSpec("ece", "ECE", "Expected calibration error (0–1)", "lower", target=True),
    MetricSpec("label_coverage", "Label coverage", "Label coverage (share of inferences, 0–1)", None),
    MetricSpec("sensitivity_cusum", "Sensitivity CUSUM", None, None),
    MetricSpec("specificity_cusum", "Specificity CUSUM", None, None),
    # The sequential decision (decision 0503): its value is the GLR statistic, its threshold the budget's.
    MetricSpec("sensitivity_sequential", "Sensitivity, accumulated evidence", None, None),
    MetricSpec("specificity_sequential", "Specificity, accumulated evidence", None, None),
    _estimate_error("sensitivity", "Sensitivity"),
    _estimate_error("specificity", "Specificity"),
    _estimate_error("ppv", "PPV"),
    _estimate_error("npv", "NPV"),
    _estimate_error("auc", "AUC"),
    MetricSpec("estimate_support", "Estimate support", None, "higher"),
    # Drift
    MetricSpec("drift_score", "Drift score", None, "lower"),
    MetricSpec("unified_drift", "Unified drift", None, "lower"),
    MetricSpec("unified_drift_contribution", "Share of the unified score", None, "lower"),
    MetricSpec("positive_rate", "Positive rate", "Positive-prediction rate (share, 0–1)", None),
    MetricSpec("missing_share", "Missing values", "Missing values (share of records, 0–1)", "lower"),
    MetricSpec("unseen_categories", "Unseen categories", "Unseen categories (share of records, 0–1)", "lower"),
    MetricSpec("dataset_drift_share", "Drifted features", "Drifted features (share, 0–1)", "lower"),
    # Sequential drift decisions (decision 0503): value = the GLR statistic, threshold = the warning budget's.
    MetricSpec("score_sequential", "Score shift, accumulated evidence", None, None),
    MetricSpec("positive_rate_sequential", "Positive rate, accumulated evidence", None, None),
    MetricSpec("drift_sequential", "Input drift, accumulated evidence", None, None),
)
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in METRIC_SPECS}
# The realized-performance metrics every performance run reports, in the order it reports them.
PERFORMANCE_METRICS = tuple(spec.name for spec in METRIC_SPECS if spec.target)
HIGHER_IS_BETTER = tuple(m for m in PERFORMANCE_METRICS if METRICS[m].direction == "higher")
LOWER_IS_BETTER = tuple(m for m in PERFORMANCE_METRICS if METRICS[m].direction == "lower")
PROPORTIONS = tuple(m for m in PERFORMANCE_METRICS if METRICS[m].counts is not None)
TARGET_METRICS = {m: "max" if METRICS[m].direction == "lower" else "min" for m in PERFORMANCE_METRICS}


def metric_label(metric: str) -> str:
    """The metric's label; an unknown metric shows its name."""
    spec = METRICS.get(metric)
    return metric if spec is None else spec.label


def kind_explanation(kind: str) -> str:
    """The kind's one-sentence explanation (empty for an unknown kind)."""
    spec = KINDS.get(kind)
    return "" if spec is None else spec.explanation


def is_drift(kind: str) -> bool:
    """Whether the kind compares with a reference (a threshold) rather than with targets."""
    spec = KINDS.get(kind)
    return spec is not None and spec.family == "drift"


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of the metric is better (its breach is "above target")."""
    spec = METRICS.get(metric)
    return spec is not None and spec.direction == "lower"
