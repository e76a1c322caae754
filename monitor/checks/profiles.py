"""Mergeable histogram profiles of model inputs and outputs, binned on the reference's edges.

A reference profile fixes, per numeric feature, sorted unique edges e_0 < ... < e_K (every
distinct reference value when there are at most EXACT_EDGES of them, else quantiles). A value
falls in bin `2 * searchsorted(edges, v, "left") + (v == edge)`: even bins are the open
intervals between edges (plus the two open ends), odd bins are the edges themselves. Keeping
each edge as its own bin makes ties (kVp 120, slice thickness 2.5) exact, and keeping the sum
of the values per bin makes the integral of the CDF over each interval exact, which is what
the Wasserstein distance needs. Counts and sums add, so a window's profile is the sum of its
daily profiles and no check needs the raw window in memory.

Per value of each segment attribute of the policy (site=north, manufacturer=GE ...), a profile
also keeps what per-segment output drift compares: rows, the count, sum and sum of squares of
the scores' log-odds, and the prediction tallies (SegmentOutputs). They add like the rest.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
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
# Distinct values kept per segment attribute; rarer ones are pooled under OTHER_SEGMENT (a
# misconfigured attribute such as a study id must not grow a profile without bound).
SEGMENT_VALUES_CAP = 200
MISSING_SEGMENT = "(missing)"  # as the subgroup tables name rows without the attribute
OTHER_SEGMENT = "(other)"
# Scores are clipped to [LOGIT_EPS, 1 - LOGIT_EPS] before the log-odds (|logit| <= 13.8).
LOGIT_EPS = 1e-6
# Per segment, scores are also counted in bins between the reference's score quantiles (the
# whole reference's, so every segment shares them): enough for a rank test.
SEGMENT_SCORE_BINS = 50


def spec_hash(features: list[FeatureSpec], segments: list[str] | tuple[str, ...] = ()) -> str:
    """Identifies the feature list (name and type decide the binning) and segment attributes a
    profile was built for. Without segments the hash is what it was before segments existed."""
    listed: list[Any] = [[f.name, f.type] for f in features]
    if segments:
        listed.append(["segments:v1", *segments])
    body = json.dumps(listed)
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
class SegmentOutputs:
    """The outputs of one segment's rows: mergeable sums for per-segment output drift."""

    rows: int = 0
    scored: int = 0  # rows with a score
    logit_sum: float = 0.0  # sum of log(s / (1 - s)), s clipped to [LOGIT_EPS, 1 - LOGIT_EPS]
    logit_sumsq: float = 0.0
    predictions: int = 0
    positive_predictions: int = 0
    # scores per bin of ReferenceProfile.segment_edges (len(edges) + 1 bins; empty: none yet)
    bins: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, other: SegmentOutputs) -> None:
        if len(other.bins):
            self.bins = other.bins.copy() if not len(self.bins) else self.bins + other.bins
        self.rows += other.rows
        self.scored += other.scored
        self.logit_sum += other.logit_sum
        self.logit_sumsq += other.logit_sumsq
        self.predictions += other.predictions
        self.positive_predictions += other.positive_predictions

    @property
    def logit_mean(self) -> float:
        return self.logit_sum / self.scored if self.scored else math.nan

    @property
    def logit_var(self) -> float:
        """Sample variance (n - 1) of the log-odds."""
        if self.scored < 2:
            return math.nan
        return max(0.0, (self.logit_sumsq - self.logit_sum**2 / self.scored) / (self.scored - 1))

    def to_json(self) -> list[Any]:
        return [
            self.rows,
            self.scored,
            self.logit_sum,
            self.logit_sumsq,
            self.predictions,
            self.positive_predictions,
            self.bins.tolist(),
        ]

    @classmethod
    def from_json(cls, body: list[Any]) -> SegmentOutputs:
        rows, scored, total, total_sq, predictions, positives, bins = body
        return cls(
            int(rows),
            int(scored),
            float(total),
            float(total_sq),
            int(predictions),
            int(positives),
            np.asarray(bins, dtype=np.int64),
        )

    def copy(self) -> SegmentOutputs:
        return replace(self, bins=self.bins.copy())


# attribute -> value -> outputs of the rows with that value
Segments = dict[str, dict[str, SegmentOutputs]]


def merge_segments(into: Segments, other: Segments) -> None:
    for attribute, values in other.items():
        mine = into.setdefault(attribute, {})
        for value, outputs in values.items():
            if value in mine:
                mine[value].add(outputs)
            else:
                mine[value] = outputs.copy()
        if len(mine) > SEGMENT_VALUES_CAP:
            into[attribute] = _cap_values(mine)


def _cap_values(values: dict[str, SegmentOutputs]) -> dict[str, SegmentOutputs]:
    ranked = sorted(((v, o) for v, o in values.items() if v != OTHER_SEGMENT), key=lambda kv: -kv[1].rows)
    kept = dict(ranked[: SEGMENT_VALUES_CAP - 1])
    other = SegmentOutputs()
    if OTHER_SEGMENT in values:
        other.add(values[OTHER_SEGMENT])
    for _value, outputs in ranked[SEGMENT_VALUES_CAP - 1 :]:
        other.add(outputs)
    kept[OTHER_SEGMENT] = other
    return kept


def segments_to_json(segments: Segments) -> dict[str, dict[str, list[float]]]:
    return {attribute: {value: o.to_json() for value, o in values.items()} for attribute, values in segments.items()}


def segments_from_json(body: dict[str, dict[str, list[float]]] | None) -> Segments:
    return {
        attribute: {value: SegmentOutputs.from_json(o) for value, o in values.items()}
        for attribute, values in (body or {}).items()
    }


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
    segments: Segments = field(default_factory=dict)

    def add(self, other: Profile) -> None:
        self.rows += other.rows
        merge_segments(self.segments, other.segments)
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
            "segments": segments_to_json(self.segments),
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
            segments=segments_from_json(body.get("segments")),
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
    segments: Segments = field(default_factory=dict)
    segment_attributes: list[str] = field(default_factory=list)
    segment_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))  # score quantiles

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "segments": segments_to_json(self.segments),
            "segment_attributes": list(self.segment_attributes),
            "segment_edges": self.segment_edges.tolist(),
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
            name: NumericColumn.from_json(column)
            if column["type"] == "numeric"
            else CategoricalColumn.from_json(column)
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
            segments=segments_from_json(body.get("segments")),
            segment_attributes=list(body.get("segment_attributes", [])),
            segment_edges=np.asarray(body.get("segment_edges", []), dtype=np.float64),
        )

    def empty_profile(self) -> Profile:
        features: dict[str, Hist] = {
            name: NumericHist.empty(len(c.edges))
            if isinstance(c, NumericColumn)
            else CategoricalHist.empty(len(c.categories))
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
            segments=self.segments,
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
    """Counts and sums of the values in the reference column's bins.

    Bin 2j holds the values strictly between edge j-1 and edge j (below the first edge for j=0),
    bin 2j+1 the values equal to edge j, bin 2K those above the last edge. The values are sorted
    once and the edges looked up in them (2K searches, not one per value): a third of the time
    of placing each value, which mattered at 20 features x 1M rows."""
    edges = column.edges
    missing = np.isnan(values)
    present = values[~missing] if missing.any() else values
    hist = NumericHist.empty(len(edges))
    hist.missing = int(missing.sum())
    if len(present) == 0:
        return hist
    ordered = np.sort(present)
    starts = np.zeros(2 * len(edges) + 1, dtype=np.int64)
    starts[1::2] = np.searchsorted(ordered, edges, side="left")
    starts[2::2] = np.searchsorted(ordered, edges, side="right")
    hist.counts = np.diff(starts, append=len(ordered))
    # reduceat sums each bin's run of the sorted values; an empty run yields the value at its
    # start instead (masked out), and the appended 0 makes a start at the very end valid.
    hist.sums = np.where(hist.counts > 0, np.add.reduceat(np.append(ordered, 0.0), starts), 0.0)
    hist.total = float(present.sum())
    hist.total_sq = float(np.square(present).sum())  # not np.dot: BLAS threads cost more than they save here
    hist.vmin, hist.vmax = float(ordered[0]), float(ordered[-1])
    if column.discrete:
        on_edge = np.repeat(np.arange(len(starts)) % 2 == 1, hist.counts)
        novel, counts = np.unique(ordered[~on_edge], return_counts=True)
        hist.novel = None if len(novel) > NOVEL_CAP else dict(zip(novel.tolist(), counts.tolist(), strict=True))
    return hist


def category_column(values: pa.ChunkedArray | pa.Array) -> CategoricalColumn:
    counts = _value_counts(values)
    missing = counts.pop(None, 0)
    categories = sorted(c for c in counts if c is not None)
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
        elif value is not None:
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


def _segment_codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    """Codes per row and the value names (text as the subgroup tables write them; rows without
    the attribute under MISSING_SEGMENT)."""
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        values = numeric_values(column)
        text = [None if math.isnan(v) else str(int(v)) if float(v).is_integer() else str(v) for v in values.tolist()]
        column = pa.array(text, type=pa.string())
    elif (
        not pa.types.is_string(column.type)
        and not pa.types.is_large_string(column.type)
        and not pa.types.is_dictionary(column.type)
    ):
        column = pc.cast(column, pa.string())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    if encoded.null_count:
        codes = np.where(pc.is_null(encoded).to_numpy(zero_copy_only=False), len(names), codes)
        names.append(MISSING_SEGMENT)
    return np.asarray(codes, dtype=np.int64), names


def segment_specs(features: list[FeatureSpec], segments: list[str] | tuple[str, ...]) -> list[FeatureSpec]:
    """The columns a profile reads: the features, plus each segment attribute that is not one."""
    names = {f.name for f in features}
    return list(features) + [FeatureSpec(name=a, type="categorical") for a in segments if a not in names]


def segment_edges(score: np.ndarray) -> np.ndarray:
    """Inner edges between SEGMENT_SCORE_BINS quantile bins of the reference's scores."""
    present = score[~np.isnan(score)]
    if not len(present):
        return np.zeros(0)
    return np.unique(np.quantile(present, np.linspace(0.0, 1.0, SEGMENT_SCORE_BINS + 1)[1:-1]))


def segment_outputs(table: pa.Table, attributes: list[str] | tuple[str, ...], edges: np.ndarray) -> Segments:
    """Per value of each segment attribute: rows, log-odds sums of the score, prediction tallies,
    scores per bin of `edges` (a value equal to an edge goes above it)."""
    if not attributes:
        return {}
    score = numeric_values(table["score"])
    scored = ~np.isnan(score)
    score_bin = np.searchsorted(edges, np.where(scored, score, 0.0), side="right")
    n_bins = len(edges) + 1
    logit = np.zeros(len(score))
    clipped = np.clip(score[scored], LOGIT_EPS, 1 - LOGIT_EPS)
    logit[scored] = np.log(clipped) - np.log1p(-clipped)
    prediction = numeric_values(table["prediction"])
    predicted = ~np.isnan(prediction)
    positive = prediction == 1
    found: Segments = {}
    for attribute in attributes:
        if attribute not in table.column_names:
            continue
        codes, names = _segment_codes(table[attribute])
        k = len(names)
        rows = np.bincount(codes, minlength=k)
        counts = np.bincount(codes, weights=scored, minlength=k)
        sums = np.bincount(codes, weights=logit, minlength=k)
        squares = np.bincount(codes, weights=np.square(logit), minlength=k)
        predictions = np.bincount(codes, weights=predicted, minlength=k)
        positives = np.bincount(codes, weights=positive, minlength=k)
        binned = (
            np.bincount((codes * n_bins + score_bin)[scored], minlength=k * n_bins).reshape(k, n_bins).astype(np.int64)
        )
        values = {
            name: SegmentOutputs(
                int(rows[i]),
                int(counts[i]),
                float(sums[i]),
                float(squares[i]),
                int(predictions[i]),
                int(positives[i]),
                binned[i],
            )
            for i, name in enumerate(names)
            if rows[i]
        }
        found[attribute] = _cap_values(values) if len(values) > SEGMENT_VALUES_CAP else values
    return found


def reference_profile(
    table: pa.Table, features: list[FeatureSpec], segments: list[str] | tuple[str, ...] = ()
) -> ReferenceProfile:
    """Edges, categories and histograms of a reference sample (and its per-segment outputs)."""
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
    edges = segment_edges(numeric_values(table["score"])) if segments else np.zeros(0)
    return ReferenceProfile(
        spec=spec_hash(features, segments),
        rows=table.num_rows,
        features=columns,
        score=numeric_column(numeric_values(table["score"])),
        predictions=predictions,
        positive_predictions=positive_predictions,
        labels=labels,
        positive_labels=positive_labels,
        segments=segment_outputs(table, segments, edges),
        segment_attributes=list(segments),
        segment_edges=edges,
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
        segments=segment_outputs(table, reference.segment_attributes, reference.segment_edges),
    )


def _merge_capped(a: dict[float, int] | None, b: dict[float, int] | None, cap: int) -> dict[float, int] | None:
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, count in b.items():
        merged[key] = merged.get(key, 0) + count
    return None if len(merged) > cap else merged
