"""The monitored model: a logistic regression fitted on simulated development data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from monitor.simulate.scanners import site_profiles
from monitor.simulate.world import Cohort, draw, realize

INPUTS = ("hyperdense_volume_ml", "lesion_hu", "midline_shift_mm", "mean_hu", "noise_sd", "cnr", "ventricle_volume_ml")
TRAINING_ROWS = 20_000
TRAINING_PREVALENCE = 0.10
TARGET_SENSITIVITY = 0.92  # the operating point the threshold is chosen for on development data


def _log_volumes(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    for column in (
        INPUTS.index("hyperdense_volume_ml"),
        INPUTS.index("midline_shift_mm"),
        INPUTS.index("ventricle_volume_ml"),
    ):
        x[:, column] = np.log1p(x[:, column])
    return x


@dataclass(frozen=True)
class Classifier:
    pipeline: Pipeline
    threshold: float
    sha256: str

    def logit(self, cohort: Cohort) -> np.ndarray:
        """The model's log-odds; it sees only image-derived features."""
        return self.pipeline.decision_function(inputs(cohort))


def inputs(cohort: Cohort) -> np.ndarray:
    return np.column_stack([cohort.features[name] for name in INPUTS])


def training_seed(model: str, version: str) -> int:
    """A version is trained once: its seed depends on its name, not on the traffic's seed."""
    return int.from_bytes(hashlib.sha256(f"{model}:{version}".encode()).digest()[:8], "big")


@lru_cache(maxsize=8)
def fit(model: str, version: str) -> Classifier:
    """Fit on a development sample of the reference world; threshold for ~92% sensitivity."""
    rng = np.random.default_rng([training_seed(model, version), 3])
    cohort, _ = realize(
        draw(rng, TRAINING_ROWS), profiles=site_profiles(), prevalence=TRAINING_PREVALENCE, scenarios=()
    )
    pipeline = Pipeline(
        [
            ("log", FunctionTransformer(_log_volumes)),
            ("scale", StandardScaler()),
            ("logistic", LogisticRegression(C=1.0, max_iter=1000)),
        ]
    )
    pipeline.fit(inputs(cohort), cohort.label)
    positives = np.sort(pipeline.predict_proba(inputs(cohort)[cohort.label])[:, 1])
    threshold = float(np.floor(np.quantile(positives, 1 - TARGET_SENSITIVITY) * 1000) / 1000)
    return Classifier(pipeline, threshold, _artifact_hash(pipeline, threshold))


def _artifact_hash(pipeline: Pipeline, threshold: float) -> str:
    logistic, scale = pipeline.named_steps["logistic"], pipeline.named_steps["scale"]
    parameters = np.concatenate([logistic.coef_.ravel(), logistic.intercept_, scale.mean_, scale.scale_, [threshold]])
    return hashlib.sha256(np.round(parameters, 10).tobytes()).hexdigest()
