"""The histogram drift engine against Evidently 0.7 as the oracle, on the same data."""

from __future__ import annotations

import os
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitor.checks import drift, drift_checks, stats
from monitor.checks.profiles import Profile, reference_profile, sample_profile
from monitor.checks.schemas import FeatureSpec
from tests.checks.data import CATEGORICAL, NUMERIC, frame

os.environ.setdefault("DO_NOT_TRACK", "1")

SPECS = [FeatureSpec(name=n, type="numeric") for n in NUMERIC] + [
    FeatureSpec(name=c, type="categorical") for c in CATEGORICAL
]
EXACT = {"ks", "chisquare", "z"}
# Scores computed from bins: Wasserstein is exact unless the CDFs cross inside a bin; JS and
# PSI on continuous features are re-binned onto Evidently's Sturges bins.
TOLERANCE = {"wasserstein": 0.03, "jensenshannon": 0.06, "psi": 0.08}


def _table(data: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(data, preserve_index=False)


def ours(
    reference: pd.DataFrame, current: pd.DataFrame, pins: dict[str, str] | None = None
) -> dict[str, drift.ColumnDrift]:
    profile = reference_profile(_table(reference), SPECS)
    window = sample_profile(_table(current), profile)
    return {
        spec.name: drift.column_drift(
            profile.features[spec.name],
            window.features[spec.name],
            pinned_method=(pins or {}).get(spec.name),
            threshold=None,
            distance_threshold=0.1,
        )
        for spec in SPECS
    }


def evidently(
    reference: pd.DataFrame, current: pd.DataFrame, pins: dict[str, str] | None = None
) -> dict[str, tuple[float, str, bool]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(NUMERIC), categorical_columns=list(CATEGORICAL))
    columns = [s.name for s in SPECS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset(columns=columns, per_column_method=pins)], include_tests=True).run(
            Dataset.from_pandas(current[columns], data_definition=definition),
            Dataset.from_pandas(reference[columns], data_definition=definition),
        )
    body = snapshot.dict()
    values = {
        m["config"]["column"]: (m["value"], m["config"]["method"]) for m in body["metrics"] if "column" in m["config"]
    }
    drifted = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in body["tests"] if t["id"] == "drift"
    }
    return {name: (value, method, drifted[name]) for name, (value, method) in values.items()}


EVIDENTLY_NAMES = {
    "wasserstein": "Wasserstein distance (normed)",
    "jensenshannon": "Jensen-Shannon distance",
    "ks": "K-S p_value",
    "chisquare": "chi-square p_value",
    "z": "Z-test p_value",
    "psi": "PSI",
}

CASES = {
    # name: (reference rows, window rows, window options, features that must drift)
    "no drift, large reference": (3000, 2500, {}, set()),
    "clear drift, large reference": (3000, 2500, {"shift": 1.0}, {"age", "noise_sd", "mean_hu"}),
    "categorical shift": (3000, 2500, {"manufacturer_mix": [0.1, 0.2, 0.3, 0.4]}, {"manufacturer"}),
    "new category": (3000, 2500, {"new_manufacturer": 0.2}, {"manufacturer"}),
    "small reference, drift": (800, 900, {"shift": 0.5}, {"age", "noise_sd", "mean_hu"}),
    "small reference, new category": (800, 900, {"new_manufacturer": 0.1}, {"manufacturer"}),
    "small reference, no drift": (800, 900, {}, None),
}


@pytest.mark.parametrize(
    "pins", [None, {"age": "psi", "noise_sd": "jensenshannon", "mean_hu": "ks", "manufacturer": "psi"}]
)
@pytest.mark.parametrize("case", list(CASES))
def test_verdicts_methods_and_scores_match_evidently(case: str, pins: dict[str, str] | None) -> None:
    n_reference, n_window, options, expected = CASES[case]
    reference = frame(n_reference, seed=11)
    current = frame(n_window, seed=12, **options)
    mine, oracle = ours(reference, current, pins), evidently(reference, current, pins)

    assert {n for n, r in mine.items() if r.drifted} == {n for n, (_, _, d) in oracle.items() if d}
    if expected is not None and pins is None:
        assert {n for n, r in mine.items() if r.drifted} == expected
    for name, result in mine.items():
        value, method, _ = oracle[name]
        assert method in (result.method, EVIDENTLY_NAMES[result.method]), name
        if result.method in EXACT or (result.method in ("jensenshannon", "psi") and name in CATEGORICAL + ("kvp",)):
            assert result.score == pytest.approx(value, rel=1e-6, abs=1e-12), name
        else:
            assert result.score == pytest.approx(value, rel=TOLERANCE[result.method], abs=5e-3), name


def test_missing_values_are_dropped_like_evidently() -> None:
    reference = frame(3000, seed=1)
    current = frame(2000, seed=2, missing_noise=0.3, shift=0.3)
    mine, oracle = ours(reference, current), evidently(reference, current)
    assert mine["noise_sd"].n == current["noise_sd"].notna().sum()
    assert mine["noise_sd"].score == pytest.approx(oracle["noise_sd"][0], rel=0.03)
    assert mine["noise_sd"].drifted == oracle["noise_sd"][2]


def test_a_window_is_the_sum_of_its_days() -> None:
    reference = reference_profile(_table(frame(3000, seed=3)), SPECS)
    window = frame(3500, seed=4, shift=0.4, new_manufacturer=0.05)
    whole = sample_profile(_table(window), reference)
    summed = reference.empty_profile()
    for part in np.array_split(np.arange(len(window)), 7):
        day = sample_profile(_table(window.iloc[part]), reference)
        summed.add(Profile.from_json(day.to_json(), reference))  # through storage, as the checks do
    for spec in SPECS:
        a, b = whole.features[spec.name], summed.features[spec.name]
        assert np.array_equal(a.counts, b.counts)
        one = drift.column_drift(
            reference.features[spec.name], a, pinned_method=None, threshold=None, distance_threshold=0.1
        )
        other = drift.column_drift(
            reference.features[spec.name], b, pinned_method=None, threshold=None, distance_threshold=0.1
        )
        assert one.score == pytest.approx(other.score, rel=1e-9)
    assert summed.features["manufacturer"].unseen == whole.features["manufacturer"].unseen
    assert (summed.rows, summed.positive_predictions) == (whole.rows, whole.positive_predictions)


def test_missing_share_is_judged_with_the_continuity_corrected_wilson_interval() -> None:
    """29 missing of 400 against a clean reference: plain Wilson's lower bound (0.0510) clears the
    5% tolerance, the corrected one (0.0499, decision 0420) does not, so it is a warning, not a breach."""
    reference = SimpleNamespace(hist=SimpleNamespace(n=1000, missing=0))
    window = SimpleNamespace(n=371, missing=29)

    finding = drift_checks._missing_finding("kvp", reference, window)  # type: ignore[arg-type]

    assert finding.status == "warn"
    assert finding.ci_low == pytest.approx(0.04991, abs=1e-5)
    assert (finding.ci_low, finding.ci_high) == stats.wilson(29, 400)


def _unified(current: pd.DataFrame, seed: int = 0) -> drift.UnifiedDrift:
    reference = reference_profile(_table(frame(5000, seed=21)), SPECS)
    window = sample_profile(_table(current), reference)
    rng = np.random.default_rng(seed)
    inputs = {s.name: drift.noise(reference.features[s.name], window.features[s.name], rng) for s in SPECS}
    outputs = {
        "score": drift.noise(reference.score, window.score, rng),
        "prediction": drift.rate_noise(
            (reference.positive_predictions, reference.predictions),
            (window.positive_predictions, window.predictions),
            rng,
        ),
    }
    return drift.unified_drift(inputs, outputs)


def test_unified_drift_stays_low_without_drift_and_names_the_drifted_feature() -> None:
    quiet = [_unified(frame(2100, seed=100 + i)).value for i in range(8)]
    assert max(quiet) < drift.UNIFIED_WARN
    assert abs(float(np.mean(quiet))) < 0.5  # standardized: centred near 0 when nothing changed
    shifted = frame(2100, seed=200)
    shifted["noise_sd"] = shifted["noise_sd"] * 1.5
    loud = _unified(shifted)
    assert loud.value >= drift.UNIFIED_BREACH
    top = max(loud.components, key=lambda c: c.contribution)
    assert top.name == "noise_sd"
    assert sum(c.contribution for c in loud.components) == pytest.approx(loud.value)
    assert sum(c.weight for c in loud.components) == pytest.approx(1.0)


def test_sampling_noise_separates_a_small_window_from_real_drift() -> None:
    reference = reference_profile(_table(frame(5000, seed=31)), SPECS)
    small = sample_profile(_table(frame(120, seed=32)), reference)
    large = sample_profile(_table(frame(3000, seed=33, shift=0.5)), reference)
    rng = np.random.default_rng(1)
    quiet, loud = (drift.noise(reference.features["age"], p.features["age"], rng) for p in (small, large))
    assert quiet.p_value > drift.NOISE_ALPHA and loud.p_value <= drift.NOISE_ALPHA
    assert quiet.mean > loud.mean  # smaller windows scatter more
    assert drift.significance(reference.features["age"], small.features["age"])[1] > drift.SIGNIFICANCE_ALPHA
    assert drift.significance(reference.features["age"], large.features["age"])[1] <= drift.SIGNIFICANCE_ALPHA
    shifted = sample_profile(_table(frame(3000, seed=34, manufacturer_mix=[0.1, 0.2, 0.3, 0.4])), reference)
    assert (
        drift.significance(reference.features["manufacturer"], shifted.features["manufacturer"])[1]
        <= drift.SIGNIFICANCE_ALPHA
    )


def test_a_few_extreme_values_do_not_make_a_breach() -> None:
    """Normed Wasserstein crosses 0.1 on a few implausible values; the KS guard does not."""
    reference = reference_profile(_table(frame(5000, seed=41)), SPECS)
    window = frame(2000, seed=42)
    window.loc[:3, "noise_sd"] = 900.0  # four absurd values, 100x the reference's range
    profile = sample_profile(_table(window), reference)
    column, hist = reference.features["noise_sd"], profile.features["noise_sd"]
    assert drift.column_drift(column, hist, pinned_method=None, threshold=None, distance_threshold=0.1).drifted
    assert drift.significance(column, hist)[1] > drift.SIGNIFICANCE_ALPHA
    assert drift.outside_reference_range(hist) == 4


def test_pinning_a_method_to_the_wrong_type_is_refused() -> None:
    with pytest.raises(ValueError, match="applies to numeric"):
        FeatureSpec(name="manufacturer", type="categorical", drift_method="wasserstein")
    with pytest.raises(ValueError, match="inference field"):
        FeatureSpec(name="score", type="numeric")
