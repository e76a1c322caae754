"""Simulation: seeded hospital traffic for one model version under composable scenarios."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from monitor.simulate import classifier as classifier_module
from monitor.simulate.classifier import Classifier
from monitor.simulate.records import OUTCOME_SOURCES, Traffic, inference_records, observe, outcome_records
from monitor.simulate.scanners import SITES, site_profiles
from monitor.simulate.scenarios import Scenario, parse_scenarios
from monitor.simulate.world import CATEGORICAL, FEATURES, concat, draw, realize

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
REFERENCE_DAYS = 90  # the reference set is drawn from the quarter before go-live
TRAFFIC_STREAM, REFERENCE_STREAM = 1, 2
TARGETS = {"sensitivity": 0.90, "specificity": 0.80, "auc": 0.85}


class Simulation:
    """Reference set, daily inferences and delayed outcomes of one model version at four sites.

    The same arguments give the same records. Random numbers are keyed by (seed, day), so a
    scenario changes only what it injects: before onset, every scenario's traffic is the null's.
    """

    def __init__(
        self,
        *,
        model: str = "ich-ct",
        version: str = "2.1.0",
        days: int = 90,
        per_day: int = 300,
        seed: int = 7,
        scenarios: Sequence[Scenario] | str = (),
        start: datetime | None = None,
        prevalence: float = 0.10,
    ) -> None:
        if days < 1 or per_day < 1:
            raise ValueError(f"days and per_day must be >= 1; got days={days}, per_day={per_day}")
        if not 0.0 < prevalence < 0.9:
            raise ValueError(f"prevalence must be between 0 and 0.9; got {prevalence}")
        start = start or DEFAULT_START
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        self.model, self.version, self.days, self.per_day, self.seed = model, version, days, per_day, seed
        self.prevalence = prevalence
        self.start = start.astimezone(UTC)
        self.scenarios: list[Scenario] = parse_scenarios(scenarios) if isinstance(scenarios, str) else list(scenarios)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    @cached_property
    def classifier(self) -> Classifier:
        return classifier_module.fit(self.model, self.version)

    @property
    def threshold(self) -> float:
        """The version's decision threshold: score >= threshold predicts hemorrhage."""
        return self.classifier.threshold

    @cached_property
    def traffic(self) -> Traffic:
        """Every study of the run (computed once, vectorized)."""
        parts = [
            draw(np.random.default_rng([self.seed, TRAFFIC_STREAM, day]), self.per_day, day) for day in range(self.days)
        ]
        return self._observe(concat(parts), scenarios=self.scenarios, epoch_start=self._epoch(self.start), prefix="inf")

    def _observe(self, draws: Any, *, scenarios: Sequence[Scenario], epoch_start: int, prefix: str) -> Traffic:
        cohort, _ = realize(draws, profiles=site_profiles(), prevalence=self.prevalence, scenarios=scenarios)
        return observe(cohort, classifier=self.classifier, scenarios=scenarios, epoch_start=epoch_start, prefix=prefix)

    @staticmethod
    def _epoch(moment: datetime) -> int:
        return int(moment.timestamp())

    def inferences(self, day: int | None = None) -> list[dict[str, Any]]:
        """Inference records of one day (0-based), or of the whole run in time order."""
        rows = slice(None) if day is None else self.traffic.rows_of_day(day)
        return inference_records(self.traffic, rows, model=self.model, version=self.version)

    def iter_days(self) -> Iterator[tuple[datetime, list[dict[str, Any]]]]:
        """(day start, that day's inference records) for each day: bounded memory for big runs."""
        for day in range(self.days):
            yield self.start + timedelta(days=day), self.inferences(day)

    def outcomes(self, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """Outcome records confirmed by as_of (default: every outcome that ever arrives)."""
        if as_of is not None and as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware (UTC)")
        cutoff = None if as_of is None else self._epoch(as_of)
        return outcome_records(self.traffic, model=self.model, as_of=cutoff)

    def truth(self) -> dict[str, int]:
        """Hidden label of every inference, confirmed or not (for tests and benchmarks)."""
        return dict(zip(self.traffic.inference_ids(), self.traffic.cohort.label.astype(int).tolist()))

    def reference(self, n: int = 5000) -> list[dict[str, Any]]:
        """n labelled rows from the pre-onset world, dated in the quarter before the run."""
        rng = np.random.default_rng([self.seed, REFERENCE_STREAM, n])
        days = np.sort(rng.integers(-REFERENCE_DAYS, 0, n))
        traffic = self._observe(draw(rng, n, days), scenarios=(), epoch_start=self._epoch(self.start), prefix="ref")
        return inference_records(traffic, slice(None), model=self.model, version=self.version, labels=True)

    def frame(self) -> pd.DataFrame:
        """The whole run as columns, hidden truth included (label, day, hemorrhage volume)."""
        t, cohort = self.traffic, self.traffic.cohort
        columns: dict[str, Any] = {
            "inference_id": t.inference_ids(),
            "study_key": t.study_keys(),
            "occurred_at": pd.to_datetime(t.occurred, unit="s", utc=True),
            "day": cohort.day,
            "site": np.array(SITES, dtype=object)[cohort.site],
        }
        for name in FEATURES[1:]:
            values = cohort.features[name]
            lost = cohort.missing[name]
            columns[name] = (
                np.where(lost, None, values)  # type: ignore[call-overload]  # None marks a missing category
                if name in CATEGORICAL
                else np.where(lost, np.nan, values.astype(float))
            )
        confirmed = pd.to_datetime(t.confirmed, unit="s", utc=True)
        columns |= {
            "score": t.score,
            "prediction": t.prediction,
            "latency_ms": t.latency_ms,
            "label": cohort.label.astype(int),
            "hemorrhage_ml": cohort.volume_ml,
            "outcome_source": np.where(
                t.source >= 0, np.array(OUTCOME_SOURCES, dtype=object)[np.maximum(t.source, 0)], None
            ),
            "confirmed_at": confirmed.where(t.source >= 0),
        }
        return pd.DataFrame(columns)

    def version_spec(self) -> dict[str, Any]:
        """Registration body for this version (POST /api/v1/models/{model}/versions)."""
        return {
            "version": self.version,
            "artifact_uri": f"sim://{self.model}/{self.version}/logistic-regression",
            "artifact_sha256": self.classifier.sha256,
            "training_data": f"simulated development set: {classifier_module.TRAINING_ROWS} head CTs, 4 sites, prevalence 10%",
            "validated_populations": [f"site={site}" for site in SITES] + ["adults 20+"],
            "targets": dict(TARGETS),
            "decision_threshold": self.threshold,
        }

    def summary(self) -> dict[str, Any]:
        """A few figures for a command line to print."""
        t = self.traffic
        return {
            "model": self.model,
            "version": self.version,
            "scenarios": [s.spec for s in self.scenarios],
            "start": self.start.isoformat(),
            "days": self.days,
            "inferences": len(t),
            "positives": int(t.cohort.label.sum()),
            "outcomes": int((t.source >= 0).sum()),
            "threshold": self.threshold,
        }


def default_policy() -> dict[str, Any]:
    """A monitoring policy (PUT /api/v1/models/{model}/policy body) for the simulator's features."""
    return {
        "features": [{"name": name, "type": "categorical" if name in CATEGORICAL else "numeric"} for name in FEATURES],
        "segments": ["site", "manufacturer", "patient_sex", "age_band"],
        "intersections": [["site", "manufacturer"]],
    }


def create_simulation(
    *,
    scenario: str = "null",
    days: int = 90,
    per_day: int = 300,
    seed: int = 7,
    model: str = "ich-ct",
    version: str = "2.1.0",
    start: datetime | None = None,
    prevalence: float = 0.10,
) -> Simulation:
    """The command line's entry: scenario text as parse_scenarios reads it; ValueError on bad input."""
    return Simulation(
        model=model,
        version=version,
        days=days,
        per_day=per_day,
        seed=seed,
        scenarios=parse_scenarios(scenario),
        start=start,
        prevalence=prevalence,
    )


def export(
    simulation: Simulation, directory: Path | str, *, as_of: datetime | None = None, reference_rows: int = 5000
) -> dict[str, Path]:
    """Write the run as files a client can replay: JSON lines of records, JSON of the rest."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        "version": _write_json(folder / "version.json", simulation.version_spec()),
        "policy": _write_json(folder / "policy.json", default_policy()),
        "summary": _write_json(folder / "summary.json", simulation.summary()),
        "reference": _write_lines(folder / "reference.jsonl", [simulation.reference(reference_rows)]),
        "inferences": _write_lines(folder / "inferences.jsonl", (records for _, records in simulation.iter_days())),
        "outcomes": _write_lines(folder / "outcomes.jsonl", [simulation.outcomes(as_of=as_of)]),
    }
    return written


def _write_json(path: Path, body: Any) -> Path:
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return path


def _write_lines(path: Path, chunks: Any) -> Path:
    with path.open("wb") as out:
        for records in chunks:
            out.writelines(orjson.dumps(record) + b"\n" for record in records)
    return path
