"""Mergeable histogram profiles of model inputs and outputs, binned on the reference's edges.

A reference profile fixes, per numeric feature, sorted unique edges e_0 < ... < e_K (every
distinct reference value when there are at most EXACT_EDGES of them, else quantiles). A value
falls in bin `2 * searchsorted(edges, v, "left") + (v == edge)`: even bins are the open
intervals between edges (plus the two open ends), odd bins are the edges themselves. Keeping
each edge as its own bin makes ties (kVp 120, slice thickness 2.5) exact, and keeping the sum
of the values per bin makes the integral of the CDF over each interval exact, which is what
the Wasserstein distance needs. Counts and sums add, so a window's profile is the sum of its
daily profiles and no check needs the raw window in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.checks.schemas import FeatureSpec

# A reference with at most this many distinct values of a feature gets one edge per value,
# so both CDFs are exact at every reference value (KS is then exact too).
EXACT_EDGES = 1000
QUANTILE_BINS = 100
GRID_EDGES = 121
# Evidently looks at the union of reference and current values when a feature has few distinct
# values (<= 5: chi-square/Z/Jensen-Shannon instead of KS/Wasserstein; <= 20: value counts
# instead of Sturges bins), so low-cardinality features also count values the reference lacks.
DISCRETE_MAX = 20
NOVEL_CAP = 64
UNSEEN_CAP = 200


def spec_hash(features: list[FeatureSpec]) -> str:
    """Identifies the feature list a profile was built for (name and type decide the binning)."""
    body = json.dumps([[f.name, f.type] for f in features])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Profiles of one sample (a day, a window, or the reference itself)


@dataclass
class NumericHist:
    counts: np.ndarray  # int64, 2K+3 bins
    sums: np.ndarray  # float64, sum of the values in each bin
    missing: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    vmin: float = math.inf
    vmax: float = -math.inf
    # Values outside the reference's edges, for low-cardinality features; None past NOVEL_CAP.
    novel: dict[float, int] | None = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def empty(cls, n_edges: int) -> NumericHist:
        return cls(np.zeros(2 * n_edges + 1, dtype=np.int64), np.zeros(2 * n_edges + 1))

    def add(self, other: NumericHist) -> None:
        self.counts += other.counts
        self.sums += other.sums
        self.missing += other.missing
        self.total += other.total
        self.total_sq += other.total_sq
        self.vmin = min(self.vmin, other.vmin)
        self.vmax = max(self.vmax, other.vmax)
        self.novel = _merge_capped(self.novel, other.novel, NOVEL_CAP)

    def to_json(self) -> dict[str, Any]:
        nonzero = np.flatnonzero(self.counts)
        return {
            "bins": nonzero.tolist(),
            "counts": self.counts[nonzero].tolist(),
            "sums": self.sums[nonzero].tolist(),
            "missing": self.missing,
            "sum": self.total,
            "sumsq": self.total_sq,
            "min": None if self.n == 0 else self.vmin,
            "max": None if self.n == 0 else self.vmax,
            "novel": None if self.novel is None else [[k, v] for k, v in self.novel.items()],
        }

    @classmethod
    def from_json(cls, body: dict[str, Any], n_edges: int) -> NumericHist:
        hist = cls.empty(n_edges)
        bins = np.asarray(body["bins"], dtype=np.int64)
        hist.counts[bins] = body["counts"]
        hist.sums[bins] = body["sums"]
        hist.missing = body["missing"]
        hist.total, hist.total_sq = body["sum"], body["sumsq"]
        hist.vmin = math.inf if body["min"] is None else body["min"]
        hist.vmax = -math.inf if body["max"] is None else body["max"]
        hist.novel = None if body["novel"] is None else {float(k): int(v) for k, v in body["novel"]}
        return hist


@dataclass
class CategoricalHist:
    counts: np.ndarray  # int64, aligned with the reference's categories
    unseen: dict[str, int] = field(default_factory=dict)
    unseen_overflow: int = 0  # rows in unseen categories beyond UNSEEN_CAP distinct ones
    missing: int = 0

    @property
    def n(self) -> int:
        return int(self.counts.sum()) + sum(self.unseen.values()) + self.unseen_overflow

    @property
    def unseen_rows(self) -> int:
        return sum(self.unseen.values()) + self.unseen_overflow

    @classmethod
    def empty(cls, n_categories: int) -> CategoricalHist:
        return cls(np.zeros(n_categories, dtype=np.int64))

    def add(self, other: CategoricalHist) -> None:
        self.counts += other.counts
        self.missing += other.missing
        merged = dict(self.unseen)
        for key, count in other.unseen.items():
            merged[key] = merged.get(key, 0) + count
        overflow = self.unseen_overflow + other.unseen_overflow
        if len(merged) > UNSEEN_CAP:
            kept = sorted(merged.items(), key=lambda kv: -kv[1])[:UNSEEN_CAP]
            overflow += sum(merged.values()) - sum(v for _, v in kept)
            merged = dict(kept)
        self.unseen, self.unseen_overflow = merged, overflow

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts.tolist(),
            "unseen": self.unseen,
            "unseen_overflow": self.unseen_overflow,
            "missing": self.missing,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CategoricalHist:
        return cls(
            np.asarray(body["counts"], dtype=np.int64),
            dict(body["unseen"]),
            body["unseen_overflow"],
            body["missing"],
        )


Hist = NumericHist | CategoricalHist


@dataclass
class Profile:
    """Histograms of one sample: features, score, and the prediction and label tallies."""

    rows: int
    features: dict[str, Hist]
    score: NumericHist
    predictions: int = 0
    positive_predictions: int = 0
    labels: int = 0
    positive_labels: int = 0

    def add(self, other: Profile) -> None:
        self.rows += other.rows
        for name, hist in other.features.items():
            self.features[name].add(hist)  # type: ignore[arg-type]
        self.score.add(other.score)
        self.predictions += other.predictions
        self.positive_predictions += other.positive_predictions
        self.labels += other.labels
        self.positive_labels += other.positive_labels

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "features": {name: hist.to_json() for name, hist in self.features.items()},
            "score": self.score.to_json(),
            "predictions": self.predictions,
            "positive_predictions": self.positive_predictions,
            "labels": self.labels,
            "positive_labels": self.positive_labels,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any], reference: ReferenceProfile) -> Profile:
        features: dict[str, Hist] = {}
        for name, column in reference.features.items():
            if name not in body["features"]:
                continue
            if isinstance(column, NumericColumn):
                features[name] = NumericHist.from_json(body["features"][name], len(column.edges))
            else:
                features[name] = CategoricalHist.from_json(body["features"][name])
        return cls(
            rows=body["rows"],
            features=features,
            score=NumericHist.from_json(body["score"], len(reference.score.edges)),
            predictions=body["predictions"],
            positive_predictions=body["positive_predictions"],
            labels=body.get("labels", 0),
            positive_labels=body.get("positive_labels", 0),
        )


# ---------------------------------------------------------------------------------------------
# The reference: edges and categories fixed once, plus the reference's own histograms


@dataclass
class NumericColumn:
    edges: np.ndarray
    hist: NumericHist
    std: float
    nunique: int
    kind: str = "numeric"

    @property
    def discrete(self) -> bool:
        return self.nunique <= DISCRETE_MAX

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "numeric",
            "edges": self.edges.tolist(),
            "std": self.std,
            "nunique": self.nunique,
            "hist": self.hist.to_json(),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NumericColumn:
        edges = np.asarray(body["edges"], dtype=np.float64)
        return cls(edges, NumericHist.from_json(body["hist"], len(edges)), body["std"], body["nunique"])


@dataclass
class CategoricalColumn:
    categories: list[str]
    hist: CategoricalHist
    kind: str = "categorical"

    @property
    def nunique(self) -> int:
        return int(np.count_nonzero(self.hist.counts))

    def to_json(self) -> dict[str, Any]:
        return {"type": "categorical", "categories": self.categories, "hist": self.hist.to_json()}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CategoricalColumn:
        return cls(list(body["categories"]), CategoricalHist.from_json(body["hist"]))


Column = NumericColumn | CategoricalColumn


@dataclass
class ReferenceProfile:
    spec: str
    rows: int
    features: dict[str, Column]
    score: NumericColumn
    predictions: int
    positive_predictions: int
    labels: int
    positive_labels: int

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "rows": self.rows,
            "features": {name: column.to_json() for name, column in self.features.items()},
            "score": self.score.to_json(),
            "predictions": self.predictions,
            "positive_predictions": self.positive_predictions,
            "labels": self.labels,
            "positive_labels": self.positive_labels,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ReferenceProfile:
        features: dict[str, Column] = {
            name: NumericColumn.from_json(column) if column["type"] == "numeric" else CategoricalColumn.from_json(column)
            for name, column in body["features"].items()
        }
        return cls(
            spec=body["spec"],
            rows=body["rows"],
            features=features,
            score=NumericColumn.from_json(body["score"]),
            predictions=body["predictions"],
            positive_predictions=body["positive_predictions"],
            labels=body["labels"],
            positive_labels=body["positive_labels"],
        )

    def empty_profile(self) -> Profile:
        features: dict[str, Hist] = {
            name: NumericHist.empty(len(c.edges)) if isinstance(c, NumericColumn) else CategoricalHist.empty(len(c.categories))
            for name, c in self.features.items()
        }
        return Profile(rows=0, features=features, score=NumericHist.empty(len(self.score.edges)))

    def as_profile(self) -> Profile:
        """The reference's own histograms, shaped like a window's."""
        features: dict[str, Hist] = {name: c.hist for name, c in self.features.items()}
        return Profile(
            rows=self.rows,
            features=features,
            score=self.score.hist,
            predictions=self.predictions,
            positive_predictions=self.positive_predictions,
            labels=self.labels,
            positive_labels=self.positive_labels,
        )


# ---------------------------------------------------------------------------------------------
# Building profiles from columns (a pyarrow Table: one column per feature, plus score,
# prediction and, for references, label)


def numeric_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """float64 with NaN for missing (and for non-finite values, which Evidently drops too)."""
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, np.nan)
    return values


def numeric_column(values: np.ndarray) -> NumericColumn:
    """Edges for one numeric reference feature and the reference's histogram on them."""
    present = values[~np.isnan(values)]
    distinct = np.unique(present)
    if len(distinct) <= EXACT_EDGES:
        edges = distinct
    else:
        edges = np.quantile(present, np.linspace(0.0, 1.0, QUANTILE_BINS + 1))
    if len(distinct) > DISCRETE_MAX:
        # Quantiles resolve the bulk; an even grid over the range and half a range beyond it
        # resolves the tails and shifted windows, where Sturges bins (PSI, Jensen-Shannon) fall.
        low, high = float(distinct[0]), float(distinct[-1])
        span = high - low
        edges = np.concatenate([edges, np.linspace(low - span / 2, high + span / 2, GRID_EDGES)])
    edges = np.unique(edges)
    column = NumericColumn(
        edges=edges,
        hist=NumericHist.empty(len(edges)),
        std=float(np.std(present)) if len(present) else 0.0,
        nunique=len(distinct),
    )
    column.hist = numeric_hist(values, column)
    return column


def numeric_hist(values: np.ndarray, column: NumericColumn) -> NumericHist:
    """Counts and sums of the values in the reference column's bins."""
    edges = column.edges
    missing = np.isnan(values)
    present = values[~missing] if missing.any() else values
    hist = NumericHist.empty(len(edges))
    hist.missing = int(missing.sum())
    if len(present) == 0:
        return hist
    position = np.searchsorted(edges, present, side="left")
    on_edge = edges[np.minimum(position, len(edges) - 1)] == present if len(edges) else np.zeros(len(present), bool)
    on_edge &= position < len(edges)
    bins = 2 * position + on_edge
    hist.counts = np.bincount(bins, minlength=2 * len(edges) + 1).astype(np.int64)
    hist.sums = np.bincount(bins, weights=present, minlength=2 * len(edges) + 1)
    hist.total = float(present.sum())
    hist.total_sq = float(np.square(present).sum())  # not np.dot: BLAS threads cost more than they save here
    hist.vmin, hist.vmax = float(present.min()), float(present.max())
    if column.discrete:
        novel, counts = np.unique(present[~on_edge], return_counts=True)
        hist.novel = None if len(novel) > NOVEL_CAP else dict(zip(novel.tolist(), counts.tolist(), strict=True))
    return hist


def category_column(values: pa.ChunkedArray | pa.Array) -> CategoricalColumn:
    counts = _value_counts(values)
    missing = counts.pop(None, 0)
    categories = sorted(counts)
    hist = CategoricalHist(np.asarray([counts[c] for c in categories], dtype=np.int64), missing=missing)
    return CategoricalColumn(categories, hist)


def category_hist(values: pa.ChunkedArray | pa.Array, column: CategoricalColumn) -> CategoricalHist:
    counts = _value_counts(values)
    missing = counts.pop(None, 0)
    index = {c: i for i, c in enumerate(column.categories)}
    hist = CategoricalHist.empty(len(column.categories))
    hist.missing = missing
    unseen: dict[str, int] = {}
    for value, count in counts.items():
        if value in index:
            hist.counts[index[value]] = count
        else:
            unseen[value] = count
    if len(unseen) > UNSEEN_CAP:
        kept = sorted(unseen.items(), key=lambda kv: -kv[1])[:UNSEEN_CAP]
        hist.unseen_overflow = sum(unseen.values()) - sum(v for _, v in kept)
        unseen = dict(kept)
    hist.unseen = unseen
    return hist


def _value_counts(values: pa.ChunkedArray | pa.Array) -> dict[str | None, int]:
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    counted = pc.value_counts(values)
    keys = counted.field("values").to_pylist()
    return dict(zip(keys, counted.field("counts").to_pylist(), strict=True))


def _binary_tally(column: pa.ChunkedArray | pa.Array | None) -> tuple[int, int]:
    """(non-missing count, count of 1) of a 0/1 column."""
    if column is None:
        return 0, 0
    values = numeric_values(column)
    present = values[~np.isnan(values)]
    return len(present), int((present == 1).sum())


def reference_profile(table: pa.Table, features: list[FeatureSpec]) -> ReferenceProfile:
    """Edges, categories and histograms of a reference sample."""
    columns: dict[str, Column] = {}
    for spec in features:
        if spec.name not in table.column_names:
            continue
        if spec.type == "numeric":
            columns[spec.name] = numeric_column(numeric_values(table[spec.name]))
        else:
            columns[spec.name] = category_column(table[spec.name])
    predictions, positive_predictions = _binary_tally(table["prediction"])
    labels, positive_labels = _binary_tally(table["label"] if "label" in table.column_names else None)
    return ReferenceProfile(
        spec=spec_hash(features),
        rows=table.num_rows,
        features=columns,
        score=numeric_column(numeric_values(table["score"])),
        predictions=predictions,
        positive_predictions=positive_predictions,
        labels=labels,
        positive_labels=positive_labels,
    )


def sample_profile(table: pa.Table, reference: ReferenceProfile) -> Profile:
    """A day's (or any sample's) histograms on the reference's edges and categories."""
    features: dict[str, Hist] = {}
    for name, column in reference.features.items():
        if name not in table.column_names:
            continue
        if isinstance(column, NumericColumn):
            features[name] = numeric_hist(numeric_values(table[name]), column)
        else:
            features[name] = category_hist(table[name], column)
    predictions, positive_predictions = _binary_tally(table["prediction"])
    labels, positive_labels = _binary_tally(table["label"] if "label" in table.column_names else None)
    return Profile(
        rows=table.num_rows,
        features=features,
        score=numeric_hist(numeric_values(table["score"]), reference.score),
        predictions=predictions,
        positive_predictions=positive_predictions,
        labels=labels,
        positive_labels=positive_labels,
    )


def _merge_capped(a: dict[float, int] | None, b: dict[float, int] | None, cap: int) -> dict[float, int] | None:
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, count in b.items():
        merged[key] = merged.get(key, 0) + count
    return None if len(merged) > cap else merged
