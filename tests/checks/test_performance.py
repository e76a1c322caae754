"""Realized performance per window and per segment, from arrays (no database)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, f1_score, roc_auc_score

from monitor.checks import performance as perf
from monitor.checks import stats

TARGETS = {"sensitivity": 0.9, "specificity": 0.8, "auc": 0.85}
LIMITS = perf.Limits(replicates=200)


def confusion(
    tp: int, fn: int, tn: int, fp: int, *, unlabelled: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with exactly these counts; scores separate the classes loosely; -1 labels appended."""
    rng = np.random.default_rng(seed)
    label = np.array([1] * (tp + fn) + [0] * (tn + fp) + [-1] * unlabelled)
    prediction = np.array([1] * tp + [0] * fn + [0] * tn + [1] * fp + [0] * unlabelled)
    score = np.clip(np.where(prediction == 1, 0.7, 0.2) + rng.normal(0, 0.15, len(label)), 0, 1)
    return label, score, prediction


def by_metric(figures: list[perf.Figure], segment: str | None = None) -> dict[str, perf.Figure]:
    return {f.metric: f for f in figures if f.segment == segment}


def test_overall_figures_count_the_confusion_matrix_with_wilson_intervals() -> None:
    label, score, prediction = confusion(90, 10, 160, 40, unlabelled=100)
    figures = by_metric(perf.overall_figures(label, score, prediction, targets=TARGETS, limits=LIMITS))
    sensitivity = figures["sensitivity"]
    assert (sensitivity.value, sensitivity.n, sensitivity.method) == (0.9, 100, "wilson")
    low, high = stats.wilson_interval(np.array([90]), np.array([100]))
    assert (sensitivity.ci_low, sensitivity.ci_high) == pytest.approx((low[0], high[0]))
    assert figures["specificity"].value == 0.8 and figures["specificity"].n == 200
    assert figures["ppv"].value == pytest.approx(90 / 130)
    assert figures["npv"].value == pytest.approx(160 / 170)
    assert figures["accuracy"].value == pytest.approx(250 / 300)
    assert figures["label_coverage"].value == pytest.approx(300 / 400)
    assert figures["label_coverage"].n == 400
    assert sensitivity.details["counts"] == {
        "inferences": 400, "labelled": 300, "positives": 100, "negatives": 200, "tp": 90, "fp": 40, "fn": 10, "tn": 160,
    }  # fmt: skip


def test_auc_f1_and_brier_agree_with_scikit_learn() -> None:
    label, score, prediction = confusion(70, 30, 150, 50, unlabelled=20, seed=3)
    figures = by_metric(perf.overall_figures(label, score, prediction, targets=TARGETS, limits=LIMITS))
    known = label >= 0
    assert figures["auc"].value == pytest.approx(roc_auc_score(label[known], score[known]))
    assert figures["auc"].method == "delong"
    assert figures["f1"].value == pytest.approx(f1_score(label[known], prediction[known]))
    assert figures["brier"].value == pytest.approx(brier_score_loss(label[known], score[known]))
    for metric in ("f1", "brier", "ece"):
        assert figures[metric].ci_low < figures[metric].value < figures[metric].ci_high


def test_ece_carries_the_reliability_curve() -> None:
    label, score, prediction = confusion(70, 30, 150, 50, seed=4)
    ece = by_metric(perf.overall_figures(label, score, prediction, targets=TARGETS, limits=LIMITS))["ece"]
    bins = ece.details["reliability"]
    assert sum(b["n"] for b in bins) == 300
    weighted_gap = sum(b["n"] * abs(b["mean_score"] - b["observed"]) for b in bins) / 300
    assert ece.value == pytest.approx(weighted_gap)
    assert all(b["ci_low"] <= b["observed"] <= b["ci_high"] for b in bins)


@pytest.mark.parametrize(
    ("tp", "fn", "status"),
    [
        (70, 30, "breach"),  # 0.70, upper bound 0.79 < 0.90
        (86, 14, "warn"),  # 0.86, upper bound 0.92: only the estimate misses
        (95, 5, "ok"),
    ],
)
def test_status_against_the_target(tp: int, fn: int, status: str) -> None:
    label, score, prediction = confusion(tp, fn, 160, 40)
    assert (
        by_metric(perf.overall_figures(label, score, prediction, targets=TARGETS, limits=LIMITS))["sensitivity"].status
        == status
    )


def test_metrics_without_a_target_are_ok_and_lower_is_better_metrics_breach_upward() -> None:
    label, score, prediction = confusion(70, 30, 150, 50, seed=5)
    figures = by_metric(perf.overall_figures(label, score, prediction, targets={"brier": 0.01}, limits=LIMITS))
    assert figures["brier"].status == "breach"  # far above the 0.01 ceiling
    assert figures["ppv"].status == "ok" and figures["ppv"].threshold is None


def test_below_the_minimum_counts_a_metric_is_insufficient_data_with_its_counts() -> None:
    label, score, prediction = confusion(20, 5, 400, 60)
    figures = by_metric(perf.overall_figures(label, score, prediction, targets=TARGETS, limits=LIMITS))
    for metric in ("sensitivity", "auc", "f1", "brier"):
        assert figures[metric].status == "insufficient_data"
        assert figures[metric].details["counts"]["positives"] == 25
        assert figures[metric].details["minimum"] == {"positives": 30, "negatives": 30}
    assert figures["specificity"].status != "insufficient_data"
    lenient = by_metric(
        perf.overall_figures(label, score, prediction, targets=TARGETS, limits=perf.Limits(min_positives=20))
    )
    assert lenient["sensitivity"].status != "insufficient_data"


# ---------------------------------------------------------------------------------------------
# Segments


def segment_frame(seed: int = 0, rows: int = 4000) -> dict[str, np.ndarray]:
    """Four sites, one with sensitivity 0.78; the others 0.93; specificity 0.88 everywhere."""
    rng = np.random.default_rng(seed)
    site = rng.choice(np.array(["north", "south", "east", "west"], dtype=object), rows)
    manufacturer = np.where(
        site == "north",
        "GE",
        np.where(site == "south", "SIEMENS", rng.choice(np.array(["Philips", "Canon"], dtype=object), rows)),
    )
    sex = rng.choice(np.array(["F", "M", None], dtype=object), rows, p=[0.49, 0.49, 0.02])
    label = (rng.random(rows) < 0.15).astype(int)
    prediction = np.zeros(rows, dtype=int)
    for name in ("north", "south", "east", "west"):  # exact rates, so the test does not hinge on a draw
        for cls, rate in ((1, 0.78 if name == "north" else 0.93), (0, 0.12)):
            rows_of = rng.permutation(np.flatnonzero((site == name) & (label == cls)))
            prediction[rows_of[: round(rate * len(rows_of))]] = 1
    score = np.clip(0.5 * prediction + 0.3 * label + rng.normal(0.1, 0.1, rows), 0, 1)
    return {
        "site": site,
        "manufacturer": manufacturer.astype(object),
        "patient_sex": sex,
        "label": label,
        "score": score,
        "prediction": prediction,
    }


def test_partitions_name_segments_and_intersections() -> None:
    frame = segment_frame()
    parts = perf.partitions(frame, ["site", "patient_sex"], [["site", "patient_sex"]])
    assert [p.attributes for p in parts] == [("site",), ("patient_sex",), ("site", "patient_sex")]
    assert "patient_sex=(missing)" in parts[1].names
    assert "site=north&patient_sex=F" in parts[2].names
    i = parts[2].names.index("site=north&patient_sex=F")
    assert (parts[2].codes == i).sum() == ((frame["site"] == "north") & (frame["patient_sex"] == "F")).sum()


def subgroups(frame: dict[str, np.ndarray], **limits: object) -> perf.SubgroupTable:
    parts = perf.partitions(frame, ["site", "manufacturer", "patient_sex"], [["site", "manufacturer"]])
    return perf.subgroup_table(
        frame["label"],
        frame["score"],
        frame["prediction"],
        parts,
        targets=TARGETS,
        limits=perf.Limits(replicates=100, **limits),
    )  # type: ignore[arg-type]


def test_degraded_site_is_a_breach_ranked_first_while_the_overall_figure_does_not_breach() -> None:
    frame = segment_frame()
    table = subgroups(frame)
    north = by_metric(table.figures, "site=north")["sensitivity"]
    assert north.status == "breach"
    assert north.details["q_target"] <= 0.05 and north.details["discovery"]["target"]
    assert north.details["rest"]["difference"] < 0
    low, high = north.details["rest"]["difference_ci"]
    assert low < north.details["rest"]["difference"] < high < 0
    assert table.ranking[0]["segment"] in {"site=north", "manufacturer=GE", "site=north&manufacturer=GE"}
    assert table.ranking[0]["metric"] == "sensitivity"
    south = by_metric(table.figures, "site=south")["sensitivity"]
    assert south.status == "ok"
    overall = by_metric(
        perf.overall_figures(frame["label"], frame["score"], frame["prediction"], targets=TARGETS, limits=LIMITS)
    )
    assert overall["sensitivity"].status != "breach"


def test_segments_with_the_same_rows_are_tested_once_and_reported_under_every_name() -> None:
    table = subgroups(segment_frame())
    north = by_metric(table.figures, "site=north")["sensitivity"]
    for alias in ("manufacturer=GE", "site=north&manufacturer=GE"):
        twin = by_metric(table.figures, alias)["sensitivity"]
        assert twin.details["same_rows_as"] == "site=north"
        assert (twin.status, twin.details["q_target"]) == (north.status, north.details["q_target"])
    tested = {
        (f.segment, f.metric) for f in table.figures if "p_target" in f.details and "same_rows_as" not in f.details
    }
    rest_tests = sum(1 for f in table.figures if "p_rest" in f.details and "same_rows_as" not in f.details)
    assert table.tests == len(tested) + rest_tests


def test_small_segments_are_insufficient_data_never_ok() -> None:
    table = subgroups(segment_frame())
    missing_sex = by_metric(table.figures, "patient_sex=(missing)")
    assert missing_sex["sensitivity"].status == "insufficient_data"
    assert missing_sex["sensitivity"].details["counts"]["positives"] < 30
    assert "p_target" not in missing_sex["sensitivity"].details
    assert missing_sex["label_coverage"].value == 1.0
    assert all(
        f.status == "insufficient_data"
        for f in table.figures
        if f.details.get("counts", {}).get("positives", 99) < 30 and f.metric == "auc"
    )


def test_min_positives_is_configurable() -> None:
    table = subgroups(segment_frame(), min_positives=500)
    assert all(f.status == "insufficient_data" for f in table.figures if f.metric == "sensitivity")


def test_a_segment_worse_than_the_rest_but_meeting_the_target_is_a_warning() -> None:
    rng = np.random.default_rng(2)
    rows = 20_000
    site = rng.choice(np.array(["a", "b"], dtype=object), rows)
    label = (rng.random(rows) < 0.2).astype(int)
    sensitivity = np.where(site == "a", 0.93, 0.99)
    prediction = np.where(label == 1, rng.random(rows) < sensitivity, rng.random(rows) > 0.9).astype(int)
    parts = perf.partitions({"site": site}, ["site"], [])
    table = perf.subgroup_table(
        label, prediction * 0.8 + 0.1, prediction, parts, targets=TARGETS, limits=perf.Limits(replicates=50)
    )
    a = by_metric(table.figures, "site=a")["sensitivity"]
    assert a.details["discovery"] == {"target": False, "rest": True}
    assert a.status == "warn"


def test_every_segment_metric_test_of_a_run_is_in_one_bh_family() -> None:
    table = subgroups(segment_frame())
    p_values, q_values = [], []
    for figure in table.figures:
        if "same_rows_as" in figure.details:
            continue
        for against in ("target", "rest"):
            if f"p_{against}" in figure.details:
                p_values.append(figure.details[f"p_{against}"])
                q_values.append(figure.details[f"q_{against}"])
    assert len(p_values) == table.tests
    np.testing.assert_allclose(q_values, stats.benjamini_hochberg(np.array(p_values)))
