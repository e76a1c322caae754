"""The traffic simulator: reproducible, shaped like the API, and each scenario does what it says."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from monitor.checks.schemas import MonitoringPolicy
from monitor.registry.schemas import VersionCreate
from monitor.simulate import (
    PRESETS,
    SCENARIOS,
    SITES,
    MissingSurge,
    NoiseDrift,
    PrevalenceShift,
    ScannerChange,
    Simulation,
    batches,
    catalog,
    create_simulation,
    default_policy,
    export,
    parse_scenarios,
    site_profiles,
)
from monitor.simulate.scanners import BUILTIN_PROFILES, header_profile
from monitor.simulate.world import CATEGORICAL, FEATURES, IMAGE_FEATURES

ONSET = 45
INFERENCE_FIELDS = {
    "model", "version", "inference_id", "occurred_at", "study_key", "score", "prediction", "latency_ms", "features",
}  # fmt: skip
NUMERIC = [name for name in FEATURES if name not in CATEGORICAL]


@lru_cache(maxsize=16)
def run(spec: str = "null", seed: int = 7, days: int = 90, per_day: int = 300) -> Simulation:
    return Simulation(days=days, per_day=per_day, seed=seed, scenarios=spec)


@lru_cache(maxsize=16)
def frame(spec: str = "null", seed: int = 7) -> pd.DataFrame:
    return run(spec, seed).frame()


def sensitivity(rows: pd.DataFrame) -> float:
    return float(rows.loc[rows.label == 1, "prediction"].mean())


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# Reproducibility


def test_same_seed_gives_the_same_records_and_another_seed_does_not() -> None:
    first, again, other = (Simulation(days=3, per_day=50, seed=s) for s in (7, 7, 8))
    assert first.inferences() == again.inferences()
    assert first.outcomes() == again.outcomes()
    assert first.reference(200) == again.reference(200)
    assert first.inferences() != other.inferences()
    assert {r["study_key"] for r in first.inferences()}.isdisjoint(r["study_key"] for r in other.inferences())
    assert [r["score"] for r in first.reference(200)] != [r["score"] for r in other.reference(200)]


def test_a_scenario_leaves_the_days_before_its_onset_as_the_null_run_has_them() -> None:
    null, changed = (
        run("null"),
        run(f"scanner_change:onset={ONSET}+missing_surge:onset={ONSET}+calibration_decay:onset={ONSET}"),
    )
    for day in (0, ONSET - 1):
        assert null.inferences(day) == changed.inferences(day)
    assert null.inferences(ONSET) != changed.inferences(ONSET)


def test_a_longer_run_extends_a_shorter_one() -> None:
    assert Simulation(days=2, per_day=40).inferences() == Simulation(days=4, per_day=40).inferences()[:80]


# Record shapes (DESIGN section 5)


def test_inference_records_carry_every_field_of_the_contract() -> None:
    sim = run()
    records = sim.inferences()
    assert len(records) == 90 * 300
    policy_types = {f["name"]: f["type"] for f in default_policy()["features"]}
    for record in records[:2000]:
        assert set(record) == INFERENCE_FIELDS
        assert (record["model"], record["version"]) == ("ich-ct", "2.1.0")
        assert sim.start <= parse_time(record["occurred_at"]) < sim.end
        assert isinstance(record["score"], float) and 0.0 <= record["score"] <= 1.0
        assert record["prediction"] == int(record["score"] >= sim.threshold)
        assert isinstance(record["latency_ms"], int) and record["latency_ms"] > 0
        features = record["features"]
        assert features["site"] in SITES and set(features) <= set(FEATURES)
        for name, value in features.items():
            if value is None:
                assert name in IMAGE_FEATURES
            elif policy_types[name] == "categorical":
                assert isinstance(value, str) and value
            else:
                assert isinstance(value, int | float) and not isinstance(value, bool)
    assert len({len(r["features"]) for r in records}) > 1, "baseline traffic has a few missing header fields"
    assert sum(len(r["features"]) == len(FEATURES) for r in records) / len(records) > 0.9
    times = [r["occurred_at"] for r in records]
    assert times == sorted(times)
    assert len({r["inference_id"] for r in records}) == len(records)


def test_each_day_of_the_run_is_one_day_of_records() -> None:
    sim = run()
    days = list(sim.iter_days())
    assert len(days) == 90 and all(len(records) == 300 for _, records in days)
    day_start, records = days[10]
    assert all(day_start <= parse_time(r["occurred_at"]) < day_start + timedelta(days=1) for r in records)
    assert records == sim.inferences(10)


def test_outcomes_arrive_days_to_weeks_later_and_some_never() -> None:
    sim = run()
    occurred = {r["inference_id"]: parse_time(r["occurred_at"]) for r in sim.inferences()}
    outcomes = sim.outcomes()
    for outcome in outcomes[:50]:
        assert set(outcome) == {"model", "inference_id", "label", "source", "confirmed_at"}
        assert outcome["source"] in ("report_nlp", "consensus_read", "follow_up") and outcome["label"] in (0, 1)
    delays = np.array(
        [(parse_time(o["confirmed_at"]) - occurred[o["inference_id"]]).total_seconds() / 86400 for o in outcomes]
    )
    assert delays.min() > 0
    assert 1 < np.median(delays) < 14 and np.quantile(delays, 0.95) > 14
    assert 0.1 < 1 - len(outcomes) / len(occurred) < 0.4, "a share of studies is never confirmed"
    truth = sim.truth()
    assert all(o["label"] == truth[o["inference_id"]] for o in outcomes)
    confirmed = {o["inference_id"] for o in outcomes}
    positives = [i for i, label in truth.items() if label == 1]
    negatives = [i for i, label in truth.items() if label == 0]
    assert np.mean([i in confirmed for i in positives]) > np.mean([i in confirmed for i in negatives])


def test_outcomes_as_of_a_date_are_only_those_confirmed_by_then() -> None:
    sim = run()
    cutoffs = [sim.start + timedelta(days=d) for d in (10, 45, 90)]
    counts = []
    for as_of in cutoffs:
        outcomes = sim.outcomes(as_of=as_of)
        assert all(parse_time(o["confirmed_at"]) <= as_of for o in outcomes)
        counts.append(len(outcomes))
    assert 0 < counts[0] < counts[1] < counts[2] < len(sim.outcomes())
    with pytest.raises(ValueError, match="timezone"):
        sim.outcomes(as_of=datetime(2026, 3, 1))


def test_reference_rows_are_labelled_inference_records_from_before_the_run() -> None:
    sim = run("scanner_change:onset=0")
    reference = sim.reference(5000)
    assert len(reference) == 5000
    assert all(set(r) == {*sim.inferences(0)[0], "label"} and r["label"] in (0, 1) for r in reference)
    assert all(parse_time(r["occurred_at"]) < sim.start for r in reference)
    assert 0.08 < np.mean([r["label"] for r in reference]) < 0.12
    # Drawn from the pre-onset world even when the change starts on day 0.
    assert "Revolution CT" not in {r["features"].get("scanner_model") for r in reference}
    assert "Revolution CT" in {r["features"].get("scanner_model") for r in sim.inferences(0)}


def test_study_keys_are_opaque_tokens_never_raw_accession_numbers() -> None:
    sim = run()
    keys = [r["study_key"] for r in sim.inferences()] + [r["study_key"] for r in sim.reference(500)]
    assert all(re.fullmatch(r"acc-[0-9a-f]{40}", key) for key in keys)
    assert len(set(keys)) == len(keys)
    assert all(
        re.fullmatch(r"(inf|ref)-[0-9a-f]{32}", r["inference_id"]) for r in sim.inferences(0) + sim.reference(50)
    )


def test_batches_respect_the_api_limit() -> None:
    chunks = list(batches(run().inferences(), size=10_000))
    assert [len(c) for c in chunks] == [10_000, 10_000, 7_000]


# The model


def test_scores_come_from_a_model_that_separates_the_classes_on_the_reference() -> None:
    reference = pd.DataFrame(run().reference(5000))
    auc = roc_auc_score(reference["label"], reference["score"])
    assert 0.85 < auc < 0.995, auc
    positives = reference[reference.label == 1]
    assert 0.88 < positives.prediction.mean() < 0.96, "threshold set for ~92% sensitivity"
    volume = reference.features.map(
        lambda f: f["hyperdense_volume_ml"] if f["hyperdense_volume_ml"] is not None else np.nan
    )
    assert stats.spearmanr(volume, reference.score, nan_policy="omit").statistic > 0.5


def test_version_spec_registers_as_a_version_with_the_model_threshold() -> None:
    sim = run()
    version = VersionCreate.model_validate(sim.version_spec())
    assert version.decision_threshold == sim.threshold and version.targets["sensitivity"] == 0.9
    assert Simulation(version="2.1.0").version_spec()["artifact_sha256"] == version.artifact_sha256
    assert Simulation(version="2.0.0").version_spec()["artifact_sha256"] != version.artifact_sha256


# Scenarios


@pytest.mark.parametrize("seed", [7, 11])
def test_scanner_change_lowers_sensitivity_at_that_site_and_less_overall(seed: int) -> None:
    rows = frame(f"scanner_change:site=north,onset={ONSET}", seed)
    before, after = rows[rows.day < ONSET], rows[rows.day >= ONSET]
    north_before, north_after = sensitivity(before[before.site == "north"]), sensitivity(after[after.site == "north"])
    assert north_before > 0.88 and north_after < 0.84, (north_before, north_after)
    for site in ("south", "east", "west"):
        assert abs(sensitivity(after[after.site == site]) - sensitivity(before[before.site == site])) < 0.04, site
        assert sensitivity(after[after.site == site]) > 0.86, site
    overall_drop = sensitivity(before) - sensitivity(after)
    assert 0 < overall_drop < (north_before - north_after) / 2
    north = after[after.site == "north"]
    assert set(north.kvp.dropna()) == {100} and set(north.scanner_model.dropna()) == {"Revolution CT"}
    assert set(before[before.site == "north"].scanner_model.dropna()) == {site_profiles()["north"].scanner_model}
    assert stats.ks_2samp(before[before.site == "north"].lesion_hu.dropna(), north.lesion_hu.dropna()).pvalue < 1e-6


def test_new_population_shifts_the_age_mix() -> None:
    rows = frame(f"new_population:onset={ONSET},mix=geriatric,share=0.6")
    old = rows.age_band.isin(["80-89", "90+"])
    assert old[rows.day >= ONSET].mean() > old[rows.day < ONSET].mean() + 0.1
    young = frame(f"new_population:onset={ONSET},mix=young").age_band.isin(["20-29", "30-39"])
    assert young[rows.day >= ONSET].mean() > young[rows.day < ONSET].mean() + 0.1


def test_prevalence_shift_changes_the_label_rate() -> None:
    rows = frame(f"prevalence_shift:onset={ONSET},to=0.2")
    assert 0.08 < rows.label[rows.day < ONSET].mean() < 0.12
    assert 0.17 < rows.label[rows.day >= ONSET].mean() < 0.23


def test_unseen_category_brings_a_manufacturer_absent_from_the_reference() -> None:
    sim = run(f"unseen_category:site=east,onset={ONSET}")
    rows = frame(f"unseen_category:site=east,onset={ONSET}")
    reference = {r["features"].get("manufacturer") for r in sim.reference(5000)}
    new = set(rows.manufacturer.dropna()) - reference
    assert new == {"UIH"}
    newcomers = rows[rows.manufacturer == "UIH"]
    assert newcomers.day.min() >= ONSET and set(newcomers.site) == {"east"}
    assert 0.3 < len(newcomers) / len(rows[(rows.site == "east") & (rows.day >= ONSET)]) < 0.7


def test_missing_surge_drops_header_fields_and_nulls_image_features() -> None:
    sim = run(f"missing_surge:onset={ONSET},rate=0.4,features=kvp|mean_hu")
    before = [r["features"] for d in range(ONSET) for r in sim.inferences(d)]
    after = [r["features"] for d in range(ONSET, 90) for r in sim.inferences(d)]
    assert np.mean(["kvp" not in f for f in before]) < 0.02 and np.mean(["kvp" not in f for f in after]) > 0.35
    assert (
        np.mean([f["mean_hu"] is None for f in before]) < 0.02 and np.mean([f["mean_hu"] is None for f in after]) > 0.35
    )
    assert all("mean_hu" in f for f in after), "image features are sent as null, not omitted"
    assert np.mean(["kernel" not in f for f in after]) < 0.03, "fields not named keep their baseline rate"


def test_noise_drift_grows_noise_over_time() -> None:
    rows = frame(f"noise_drift:onset={ONSET},per_day=0.01")
    weekly = rows.groupby(rows.day // 7).noise_sd.mean()
    before, after = weekly[weekly.index < ONSET // 7], weekly[weekly.index > ONSET // 7]
    assert after.is_monotonic_increasing and after.iloc[-1] > 1.3 * before.mean()
    assert before.max() / before.min() < 1.05
    assert rows.cnr[rows.day >= 80].mean() < rows.cnr[rows.day < ONSET].mean()


def test_calibration_decay_keeps_the_ranking_but_shifts_the_scores() -> None:
    null, decayed = frame("null"), frame(f"calibration_decay:onset={ONSET},shift=1.0,ramp_days=20")
    settled = null.day >= ONSET + 20
    assert decayed.score[settled].mean() > null.score[settled].mean() + 0.02
    assert roc_auc_score(decayed.label[settled], decayed.score[settled]) == pytest.approx(
        roc_auc_score(null.label[settled], null.score[settled]), abs=1e-3
    )
    assert stats.spearmanr(decayed.score[settled], null.score[settled]).statistic > 0.999
    assert decayed.prediction[settled].mean() > null.prediction[settled].mean() + 0.03
    early = null.day < ONSET
    assert (decayed.score[early] == null.score[early]).all()


def test_null_scenario_matches_the_reference_distribution() -> None:
    sim = run("null")
    reference = pd.DataFrame([r["features"] for r in sim.reference(5000)])
    traffic = frame("null")
    p_values = [
        stats.ks_2samp(reference[name].dropna(), traffic[name].dropna()).pvalue for name in NUMERIC if name != "kvp"
    ]
    assert sum(p < 0.01 for p in p_values) <= 1 and np.median(p_values) > 0.05, p_values
    for name in ("site", "manufacturer", "age_band", "patient_sex"):
        table = pd.crosstab(pd.concat([reference[name], traffic[name]]), [0] * len(reference) + [1] * len(traffic))
        assert stats.chi2_contingency(table).pvalue > 0.001, name
    changed = frame(f"scanner_change:onset={ONSET}")
    assert stats.ks_2samp(reference.lesion_hu.dropna(), changed.lesion_hu.dropna()).pvalue < 1e-6


def test_scenarios_compose() -> None:
    rows = frame(f"scanner_change:onset={ONSET}+prevalence_shift:onset=60,to=0.2")
    north = rows[rows.site == "north"]
    assert sensitivity(north[north.day >= ONSET]) < 0.84
    assert rows.label[rows.day >= 60].mean() > 0.17 and rows.label[rows.day < 60].mean() < 0.12


# Parsing and the registry


def test_parse_scenarios_reads_the_command_line_form() -> None:
    parsed = parse_scenarios(
        "scanner_change:site=south,onset=30,kvp=80,hu_shift=-6.5+prevalence_shift:onset=20,to=0.25"
    )
    assert parsed == [
        ScannerChange(site="south", onset_day=30, kvp=80, hu_shift=-6.5),
        PrevalenceShift(onset_day=20, to=0.25),
    ]
    assert parse_scenarios("missing_surge:features=kvp|kernel") == [MissingSurge(features=("kvp", "kernel"))]
    assert parse_scenarios("noise_drift") == [NoiseDrift()]
    assert [s.name for s in parse_scenarios("null")] == ["null"]
    assert [s.name for s in parse_scenarios("demo")] == ["scanner_change", "prevalence_shift", "new_population"]
    for scenario in parse_scenarios(PRESETS["demo"] + "+missing_surge:features=kvp|kernel,rate=0.5"):
        assert parse_scenarios(scenario.spec) == [scenario]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("scanner_swap", "unknown scenario 'scanner_swap'"),
        ("scanner_change:sight=north", "expected key=value"),
        ("scanner_change:site=mars", "unknown site 'mars'"),
        ("prevalence_shift:to=lots", "to must be float"),
        ("prevalence_shift:to=1.5", "between 0 and 0.9"),
        ("missing_surge:features=ssn", "features must be among"),
        ("calibration_decay:slope=-1", "slope must be > 0"),
        ("noise_drift:onset=-3", "onset_day must be >= 0"),
    ],
)
def test_parse_scenarios_rejects_bad_text_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_scenarios(spec)


def test_registry_names_every_scenario_with_working_defaults() -> None:
    expected = {
        "null",
        "scanner_change",
        "new_population",
        "prevalence_shift",
        "noise_drift",
        "unseen_category",
        "missing_surge",
        "calibration_decay",
    }
    assert set(SCENARIOS) == expected
    for name, factory in SCENARIOS.items():
        assert factory().name == name and factory().spec == name
        assert "onset_day" in catalog()[name]["parameters"]
    assert catalog()["scanner_change"]["parameters"]["site"] == "north"


def test_create_simulation_is_the_command_line_entry() -> None:
    sim = create_simulation(scenario="prevalence_shift:onset=5", days=10, per_day=20, seed=3)
    assert len(sim.inferences()) == 200 and sim.scenarios == [PrevalenceShift(onset_day=5)]
    assert sim.summary()["scenarios"] == ["prevalence_shift:onset_day=5"]
    with pytest.raises(ValueError, match="unknown scenario"):
        create_simulation(scenario="meteor")
    with pytest.raises(ValueError, match="timezone"):
        Simulation(start=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="days and per_day"):
        Simulation(days=0)


def test_export_writes_files_a_client_can_replay(tmp_path: Path) -> None:
    sim = Simulation(days=3, per_day=40, seed=5, scenarios="prevalence_shift:onset=1")
    files = export(sim, tmp_path / "run", as_of=sim.end, reference_rows=100)
    lines = {name: path.read_text().splitlines() for name, path in files.items() if path.suffix == ".jsonl"}
    assert [json.loads(line) for line in lines["inferences"]] == sim.inferences()
    assert [json.loads(line) for line in lines["outcomes"]] == sim.outcomes(as_of=sim.end)
    assert len(lines["reference"]) == 100
    assert json.loads(files["version"].read_text())["decision_threshold"] == sim.threshold
    assert MonitoringPolicy.model_validate_json(files["policy"].read_text()).segments[0] == "site"


def test_default_policy_is_a_valid_policy_over_the_simulated_features() -> None:
    policy = MonitoringPolicy.model_validate(default_policy())
    record_features = set().union(*(r["features"] for r in run().inferences(0)))
    assert {f.name for f in policy.features} == set(FEATURES) == record_features
    assert policy.segments == ["site", "manufacturer", "patient_sex", "age_band"]
    assert policy.intersections == [["site", "manufacturer"]]
    assert all(policy.feature(s).type == "categorical" for s in policy.segments)
    assert policy.feature("mean_hu").type == "numeric" and policy.feature("kvp").type == "numeric"


# Scanners


def test_site_scanners_come_from_real_ct_headers_or_an_identical_table() -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    header = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    north = site_profiles()["north"]
    assert (north.manufacturer, north.scanner_model, north.kernel) == (
        header.Manufacturer,
        header.ManufacturerModelName,
        header.ConvolutionKernel,
    )
    assert north.kvp == int(float(header.KVP)) and north.slice_thickness == float(header.SliceThickness)
    assert site_profiles() == BUILTIN_PROFILES, "runs must not depend on whether pydicom-data is installed"
    assert header_profile("no-such-file.dcm", BUILTIN_PROFILES["east"]) is BUILTIN_PROFILES["east"]
    manufacturers = {p.manufacturer for p in site_profiles().values()}
    assert len(manufacturers) == 4


def test_a_quarter_of_traffic_is_generated_well_within_a_second_or_two() -> None:
    _ = Simulation(days=1, per_day=10).classifier  # fitting the model is once per process
    started = time.perf_counter()
    sim = Simulation(days=90, per_day=300, seed=99, scenarios="demo")
    sim.inferences()
    sim.outcomes()
    # Generous for a shared two-core machine; per-row Python physics would take far longer.
    assert time.perf_counter() - started < 3.0
