"""What the monitor receives: scored studies as API records, and outcomes that arrive late."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from monitor.simulate.classifier import Classifier
from monitor.simulate.scanners import SITES
from monitor.simulate.scenarios import Scenario
from monitor.simulate.world import FEATURES, IMAGE_FEATURES, Cohort, missing_values

DECIMALS = {
    "slice_thickness": 3,
    "ctdi_vol": 1,
    "mean_hu": 1,
    "noise_sd": 2,
    "cnr": 2,
    "hyperdense_volume_ml": 2,
    "lesion_hu": 1,
    "midline_shift_mm": 1,
    "ventricle_volume_ml": 1,
}
# How outcomes are confirmed: share of confirmed outcomes, median delay and spread (log scale).
OUTCOME_SOURCES = ("report_nlp", "consensus_read", "follow_up")
SOURCE_SHARES = np.array([0.45, 0.35, 0.20])
SOURCE_MEDIAN_DAYS = np.array([1.5, 6.0, 21.0])
SOURCE_SPREAD = np.array([0.5, 0.5, 0.4])
# Verification bias: negatives are confirmed less often; depends on the label only, so
# sensitivity and specificity on confirmed studies stay unbiased (prevalence, PPV, NPV do not).
NEVER_CONFIRMED = {True: 0.08, False: 0.30}
ABSENT = object()  # header fields that never arrived are omitted from the record


@dataclass
class Traffic:
    """A cohort as observed: timestamps, opaque keys, scores, and when each outcome arrives."""

    cohort: Cohort
    occurred: np.ndarray  # epoch seconds
    keys: np.ndarray  # random bytes per study: [:, 0] inference id, [:, 1] study key
    score: np.ndarray
    prediction: np.ndarray
    latency_ms: np.ndarray
    source: np.ndarray  # index into OUTCOME_SOURCES, -1 when never confirmed
    confirmed: np.ndarray  # epoch seconds, meaningless where source is -1
    prefix: str  # of inference ids: "inf" for traffic, "ref" for reference rows

    def __len__(self) -> int:
        return len(self.occurred)

    def inference_ids(self, rows: slice | np.ndarray = slice(None)) -> list[str]:
        return tokens(self.keys[rows, 0, :16], f"{self.prefix}-")

    def study_keys(self, rows: slice | np.ndarray = slice(None)) -> list[str]:
        return tokens(self.keys[rows, 1, :20], "acc-")

    def rows_of_day(self, day: int) -> slice:
        lo, hi = np.searchsorted(self.cohort.day, [day, day + 1])
        return slice(int(lo), int(hi))


def observe(
    cohort: Cohort, *, classifier: Classifier, scenarios: Sequence[Scenario], epoch_start: int, prefix: str
) -> Traffic:
    """Score the cohort with the model, then lose features and delay outcomes on the way."""
    logit = classifier.logit(cohort)
    for scenario in scenarios:
        logit = scenario.scores(cohort, logit)
    score = np.round(expit(logit), 6)
    missing_values(cohort, scenarios)
    d = cohort.draws
    thickness = cohort.features["slice_thickness"]
    occurred = epoch_start + 86400 * d.day.astype(np.int64) + d.seconds
    source, confirmed = outcome_arrivals(cohort, occurred=occurred)
    return Traffic(
        cohort=cohort,
        occurred=occurred,
        keys=np.frombuffer(d.tokens, dtype=np.uint8).reshape(len(cohort), 2, 20),
        score=score,
        prediction=(score >= classifier.threshold).astype(np.int64),
        latency_ms=np.maximum(20, 250 * (5 / thickness) ** 0.3 * np.exp(0.3 * d.z("latency"))).astype(np.int64),
        source=source,
        confirmed=confirmed,
        prefix=prefix,
    )


def outcome_arrivals(cohort: Cohort, *, occurred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which source confirms each study and when: days to weeks later, some never."""
    d = cohort.draws
    source = np.minimum(
        np.searchsorted(np.cumsum(SOURCE_SHARES), d.u("source"), side="right"), len(OUTCOME_SOURCES) - 1
    )
    delay_days = SOURCE_MEDIAN_DAYS[source] * np.exp(SOURCE_SPREAD[source] * d.z("delay"))
    never = d.u("never") < np.where(cohort.label, NEVER_CONFIRMED[True], NEVER_CONFIRMED[False])
    confirmed = occurred + np.maximum(delay_days * 86400, 3600).astype(np.int64)
    return np.where(never, -1, source), confirmed


HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def tokens(raw: np.ndarray, prefix: str) -> list[str]:
    """Opaque keys from random bytes: nothing in them looks like an accession number or a name."""
    text = np.empty((len(raw), 2 * raw.shape[1]), dtype=np.uint8)
    text[:, 0::2], text[:, 1::2] = HEX[raw >> 4], HEX[raw & 15]
    return [prefix + key for key in text.view(f"S{text.shape[1]}").ravel().astype(f"U{text.shape[1]}").tolist()]


def iso(epoch_seconds: np.ndarray) -> list[str]:
    return np.datetime_as_string(epoch_seconds.astype("datetime64[s]"), unit="s", timezone="UTC").tolist()


def feature_columns(traffic: Traffic, rows: slice) -> list[list[Any]]:
    """Each feature's values for the rows, rounded as a client would send them."""
    cohort, columns = traffic.cohort, []
    site = np.array(SITES, dtype=object)[cohort.site[rows]].tolist()
    columns.append(site)
    for name in FEATURES[1:]:
        values = cohort.features[name][rows]
        values = (np.round(values, DECIMALS[name]) if name in DECIMALS else values).tolist()
        marker = None if name in IMAGE_FEATURES else ABSENT
        for i in np.flatnonzero(cohort.missing[name][rows]):
            values[i] = marker
        columns.append(values)
    return columns


def inference_records(
    traffic: Traffic, rows: slice, *, model: str, version: str, labels: bool = False
) -> list[dict[str, Any]]:
    """API inference records (DESIGN section 5); with labels=True, reference rows."""
    features = [dict(zip(FEATURES, row)) for row in zip(*feature_columns(traffic, rows))]
    header_lost = np.zeros(len(features), dtype=bool)
    for name in FEATURES[1:]:
        if name not in IMAGE_FEATURES:
            header_lost |= traffic.cohort.missing[name][rows]
    for i in np.flatnonzero(header_lost).tolist():
        features[i] = {k: v for k, v in features[i].items() if v is not ABSENT}
    records = [
        {
            "model": model,
            "version": version,
            "inference_id": inference_id,
            "occurred_at": occurred_at,
            "study_key": study_key,
            "score": score,
            "prediction": prediction,
            "latency_ms": latency,
            "features": row,
        }
        for inference_id, occurred_at, study_key, score, prediction, latency, row in zip(
            traffic.inference_ids(rows),
            iso(traffic.occurred[rows]),
            traffic.study_keys(rows),
            traffic.score[rows].tolist(),
            traffic.prediction[rows].tolist(),
            traffic.latency_ms[rows].tolist(),
            features,
        )
    ]
    if labels:
        for record, label in zip(records, traffic.cohort.label[rows].astype(int).tolist()):
            record["label"] = label
    return records


def outcome_records(traffic: Traffic, *, model: str, as_of: int | None) -> list[dict[str, Any]]:
    """Outcomes confirmed by as_of (epoch seconds; None: all that will ever arrive), in arrival order."""
    arrived = traffic.source >= 0
    if as_of is not None:
        arrived &= traffic.confirmed <= as_of
    rows = np.flatnonzero(arrived)
    rows = rows[np.argsort(traffic.confirmed[rows], kind="stable")]
    sources = np.array(OUTCOME_SOURCES, dtype=object)[traffic.source[rows]].tolist()
    return [
        {"model": model, "inference_id": inference_id, "label": label, "source": source, "confirmed_at": confirmed_at}
        for inference_id, label, source, confirmed_at in zip(
            traffic.inference_ids(rows),
            traffic.cohort.label[rows].astype(int).tolist(),
            sources,
            iso(traffic.confirmed[rows]),
        )
    ]


def batches(records: Sequence[dict[str, Any]], size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
    """Slices no longer than the API's batch limit."""
    for start in range(0, len(records), size):
        yield list(records[start : start + size])
