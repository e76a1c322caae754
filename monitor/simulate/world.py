"""The hidden world: patients, scanners and images, drawn vectorized from named random streams."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtr

from monitor.simulate.scanners import SITE_WEIGHTS, SITES, ScannerProfile

if TYPE_CHECKING:
    from monitor.simulate.scenarios import Scenario

AGE_BANDS = ("20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90+")
AGE_BAND_PROBS = np.array([0.08, 0.09, 0.11, 0.15, 0.18, 0.19, 0.15, 0.05])
# Relative risk of intracranial hemorrhage by age band (older patients bleed more often).
AGE_RISK = np.array([0.50, 0.60, 0.75, 0.90, 1.05, 1.20, 1.35, 1.50])
FEMALE_SHARE = 0.48

HEADER_FEATURES = (
    "manufacturer",
    "scanner_model",
    "kernel",
    "kvp",
    "slice_thickness",
    "ctdi_vol",
    "patient_sex",
    "age_band",
)
IMAGE_FEATURES = (
    "mean_hu",
    "noise_sd",
    "cnr",
    "hyperdense_volume_ml",
    "lesion_hu",
    "midline_shift_mm",
    "ventricle_volume_ml",
)
CATEGORICAL = ("site", "manufacturer", "scanner_model", "kernel", "patient_sex", "age_band")
FEATURES = ("site", *HEADER_FEATURES, *IMAGE_FEATURES)
# Share of studies arriving without each header field (routers and old PACS drop tags).
BASELINE_MISSING = {
    "manufacturer": 0.002,
    "scanner_model": 0.005,
    "kernel": 0.01,
    "kvp": 0.005,
    "slice_thickness": 0.005,
    "ctdi_vol": 0.02,
    "patient_sex": 0.003,
    "age_band": 0.005,
}
LESION_MEDIAN_ML = 5.0
MIMIC_RATE = 0.15
IMAGE_FAILURE_RATE = 0.004  # feature extraction fails: every image feature is null

NORMALS = (
    "time", "volume", "blood", "noise", "head", "contrast", "fp", "calcification", "measure", "lesion",
    "mean", "shift", "shift_base", "ventricles", "ctdi", "latency", "delay", "mimic_volume", "mimic_hu",
)  # fmt: skip
UNIFORMS = (
    "time_mix", "time", "site", "sex", "age", "age_within", "population", "label", "scanner",
    "image_failure", "never", "source", "mimic", *(f"missing_{name}" for name in FEATURES[1:]),
)  # fmt: skip


@dataclass
class Draws:
    """Every random number a set of studies needs, in a fixed order whatever the scenarios."""

    day: np.ndarray
    seconds: np.ndarray
    normals: np.ndarray
    uniforms: np.ndarray
    tokens: bytes  # 2 x 20 per study, for opaque keys

    def z(self, name: str) -> np.ndarray:
        return self.normals[:, NORMALS.index(name)].astype(np.float64)

    def u(self, name: str) -> np.ndarray:
        return self.uniforms[:, UNIFORMS.index(name)].astype(np.float64)


def draw(rng: np.random.Generator, n: int, day: np.ndarray | int = 0) -> Draws:
    """n studies' random numbers, sorted by time of day within each day."""
    normals = rng.standard_normal((n, len(NORMALS)), dtype=np.float32)
    uniforms = rng.random((n, len(UNIFORMS)), dtype=np.float32)
    tokens = rng.bytes(40 * n)
    days = np.broadcast_to(np.asarray(day, dtype=np.int32), (n,)).copy()
    # Emergency head CT peaks in the afternoon; a third of studies come around the clock.
    daytime = (14 * 3600 + 4 * 3600 * normals[:, NORMALS.index("time")]) % 86400
    anytime = uniforms[:, UNIFORMS.index("time")] * 86400
    seconds = np.where(uniforms[:, UNIFORMS.index("time_mix")] < 0.35, anytime, daytime).astype(np.int64)
    order = np.lexsort((seconds, days))
    return Draws(days[order], seconds[order], normals[order], uniforms[order], tokens)


def concat(parts: Sequence[Draws]) -> Draws:
    return Draws(
        day=np.concatenate([p.day for p in parts]),
        seconds=np.concatenate([p.seconds for p in parts]),
        normals=np.concatenate([p.normals for p in parts]),
        uniforms=np.concatenate([p.uniforms for p in parts]),
        tokens=b"".join(p.tokens for p in parts),
    )


@dataclass
class Fleet:
    """The scanner profiles in use; scenarios append new ones and point studies at them."""

    profiles: list[ScannerProfile]

    def add(self, profile: ScannerProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def attribute(self, name: str, scanner: np.ndarray) -> np.ndarray:
        values = [getattr(p, name) for p in self.profiles]
        table = np.array(values, dtype=object if isinstance(values[0], str) else np.float64)
        return table[scanner]


@dataclass
class Cohort:
    """Per-study arrays of the hidden truth and what was measured; scenarios edit them in place."""

    draws: Draws
    site: np.ndarray
    female: np.ndarray = field(init=False)
    age_band: np.ndarray = field(init=False)
    age: np.ndarray = field(init=False)
    risk: np.ndarray = field(init=False)  # probability of hemorrhage
    label: np.ndarray = field(init=False)
    scanner: np.ndarray = field(init=False)
    noise_factor: np.ndarray = field(init=False)
    volume_ml: np.ndarray = field(init=False)  # true hemorrhage volume (0 for negatives)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    missing: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def day(self) -> np.ndarray:
        return self.draws.day

    def __len__(self) -> int:
        return len(self.site)

    def at_site(self, site: str | None) -> np.ndarray:
        return np.ones(len(self), dtype=bool) if site is None else self.site == SITES.index(site)


def age_bands(u_age: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(np.cumsum(probs), u_age, side="right"), len(probs) - 1)


def realize(
    draws: Draws, *, profiles: dict[str, ScannerProfile], prevalence: float, scenarios: Sequence[Scenario]
) -> tuple[Cohort, Fleet]:
    """Studies with demographics, labels, scanners and image features under the scenarios."""
    site = np.searchsorted(np.cumsum(SITE_WEIGHTS), draws.u("site"), side="right")
    cohort = Cohort(draws, site=np.minimum(site, len(SITES) - 1))
    cohort.female = draws.u("sex") < FEMALE_SHARE
    cohort.age_band = age_bands(draws.u("age"), AGE_BAND_PROBS)
    for scenario in scenarios:
        scenario.population(cohort)
    cohort.age = 20 + 10 * cohort.age_band + 10 * draws.u("age_within")
    baseline_risk = AGE_RISK @ AGE_BAND_PROBS
    cohort.risk = prevalence * AGE_RISK[cohort.age_band] / baseline_risk
    for scenario in scenarios:
        scenario.prevalence(cohort, base=prevalence)
    cohort.label = draws.u("label") < np.clip(cohort.risk, 0.0, 0.95)

    fleet = Fleet([profiles[site] for site in SITES])
    cohort.scanner = cohort.site.copy()
    cohort.noise_factor = np.ones(len(cohort))
    for scenario in scenarios:
        scenario.scanners(cohort, fleet)
        scenario.noise(cohort)
    measure_images(cohort, fleet)
    return cohort, fleet


def measure_images(cohort: Cohort, fleet: Fleet) -> None:
    """Header fields and image-derived features from the hidden lesion and the scanner's physics."""
    d, f = cohort.draws, cohort.features
    kvp = fleet.attribute("kvp", cohort.scanner)
    thickness = fleet.attribute("slice_thickness", cohort.scanner)
    bias = fleet.attribute("hu_bias", cohort.scanner)
    for name in ("manufacturer", "scanner_model", "kernel"):
        f[name] = fleet.attribute(name, cohort.scanner)
    f["kvp"], f["slice_thickness"] = kvp.astype(np.int64), thickness
    f["ctdi_vol"] = fleet.attribute("ctdi_ref", cohort.scanner) * (kvp / 120) ** 2.5 * np.exp(0.08 * d.z("ctdi"))
    f["patient_sex"] = np.where(cohort.female, "F", "M").astype(object)
    f["age_band"] = np.array(AGE_BANDS, dtype=object)[cohort.age_band]

    noise = fleet.attribute("noise_base", cohort.scanner) * (120 / kvp) ** 1.5 * np.sqrt(5 / thickness)
    noise = noise * cohort.noise_factor * np.exp(0.12 * d.z("noise") + 0.05 * d.z("head"))
    f["noise_sd"] = noise
    f["cnr"] = 7.0 * (120 / kvp) ** 0.3 * np.exp(0.08 * d.z("contrast")) / noise
    # Segmentation runs on 5 mm resampled volumes, so thin slices add little noise there.
    measure_lesion(cohort, noise=noise * np.sqrt(thickness / 5), bias=bias)


def measure_lesion(cohort: Cohort, *, noise: np.ndarray, bias: np.ndarray) -> None:
    """What a fixed 50-90 HU threshold segmentation finds: blood seen through bias and noise."""
    d, f, positive = cohort.draws, cohort.features, cohort.label
    cohort.volume_ml = np.where(positive, np.exp(np.log(LESION_MEDIAN_ML) + 1.3 * d.z("volume")), 0.0)
    blood_hu = 62 + 5 * d.z("blood") + bias
    # Smoothing halves the voxel noise; clot heterogeneity adds about 4 HU.
    detected = ndtr((blood_hu - 50) / np.sqrt((noise / 2) ** 2 + 16))
    # Mimics: calcifications, dense sinuses, beam hardening near the skull base.
    mimic = ~positive & (d.u("mimic") < MIMIC_RATE)
    mimic_ml = np.where(mimic, np.exp(np.log(1.2) + 0.9 * d.z("mimic_volume")), 0.0)
    noise_specks = 0.3 * (noise / 4) ** 2 * np.exp(0.6 * d.z("fp"))
    calcification = 0.15 * np.exp(0.03 * (cohort.age - 60) + 0.8 * d.z("calcification"))
    background = noise_specks + calcification
    seen = cohort.volume_ml * detected
    f["hyperdense_volume_ml"] = (seen + mimic_ml) * np.exp(0.3 * d.z("measure")) + background
    negative_hu = np.where(mimic, 60 + 6 * d.z("mimic_hu"), 53 + 3 * np.abs(d.z("lesion"))) + 0.5 * bias
    f["lesion_hu"] = np.where(positive, blood_hu + 2 * d.z("lesion"), negative_hu)
    f["mean_hu"] = 33.5 + bias - 0.04 * (cohort.age - 60) + 0.015 * seen + d.z("mean")
    mass_effect = 0.2 * cohort.volume_ml**0.85 * np.exp(0.4 * d.z("shift"))
    f["midline_shift_mm"] = mass_effect + 0.7 * np.abs(d.z("shift_base"))
    f["ventricle_volume_ml"] = 18 * np.exp(0.022 * (cohort.age - 20) + 0.25 * d.z("ventricles"))


def missing_values(cohort: Cohort, scenarios: Sequence[Scenario]) -> None:
    """Which features never reach the monitor; the model itself saw the whole image."""
    d = cohort.draws
    rates = {name: np.full(len(cohort), BASELINE_MISSING.get(name, 0.0)) for name in FEATURES[1:]}
    for scenario in scenarios:
        scenario.missing(cohort, rates)
    failed = d.u("image_failure") < IMAGE_FAILURE_RATE
    for name, rate in rates.items():
        lost = d.u(f"missing_{name}") < rate
        cohort.missing[name] = lost | failed if name in IMAGE_FEATURES else lost
