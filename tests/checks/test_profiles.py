"""A day's numeric histogram: every value lands in the bin of the reference's edges it belongs to."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.checks.profiles import NOVEL_CAP, numeric_column, numeric_hist


def _bin_of(value: float, edges: np.ndarray) -> int:
    """The layout, one value at a time: 2j strictly below edge j (above edge j-1), 2j+1 on edge j, 2K above the last."""
    for j, edge in enumerate(edges):
        if value < edge:
            return 2 * j
        if value == edge:
            return 2 * j + 1
    return 2 * len(edges)


@pytest.mark.parametrize(
    ("reference", "window"),
    [
        pytest.param(lambda rng: rng.normal(size=4000), lambda rng: rng.normal(0.4, 1.3, size=1500), id="continuous"),
        pytest.param(
            lambda rng: rng.integers(0, 8, 3000).astype(float),
            lambda rng: rng.integers(-2, 11, 900).astype(float),
            id="discrete, values off the reference",
        ),
        pytest.param(
            lambda rng: np.round(rng.normal(size=3000), 1),
            lambda rng: np.round(rng.normal(size=800), 1),
            id="ties on the edges",
        ),
        pytest.param(lambda rng: rng.normal(size=2000), lambda rng: np.array([np.nan, np.nan]), id="only missing"),
    ],
)
def test_values_land_in_their_bins_with_their_sums(reference, window) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    column = numeric_column(reference(rng))
    values = window(rng)
    values[rng.random(len(values)) < 0.05] = np.nan

    hist = numeric_hist(values, column)

    present = values[~np.isnan(values)]
    bins = np.array([_bin_of(v, column.edges) for v in present], dtype=np.int64)
    size = 2 * len(column.edges) + 1
    assert hist.counts.tolist() == np.bincount(bins, minlength=size).tolist()
    assert np.allclose(hist.sums, np.bincount(bins, weights=present, minlength=size), rtol=1e-12, atol=1e-9)
    assert hist.missing == int(np.isnan(values).sum())
    if len(present):
        assert (hist.vmin, hist.vmax) == (present.min(), present.max())
    if column.discrete:
        off_edge = present[bins % 2 == 0]
        expected = dict(zip(*np.unique(off_edge, return_counts=True), strict=True))
        assert hist.novel == ({float(k): int(v) for k, v in expected.items()} if len(expected) <= NOVEL_CAP else None)
