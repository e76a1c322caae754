"""Static charts for reports: matplotlib to inline SVG, without a browser, the same bytes every time (0600)."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

# Element ids are derived from this salt instead of random numbers; text stays text (searchable, and
# WeasyPrint embeds the font once); no date in the SVG metadata.
STYLE: Any = {
    "svg.hashsalt": "radmon",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
}


def new_figure(width_in: float = 6.5, height_in: float = 2.4) -> tuple[Figure, plt.Axes]:
    with plt.rc_context(STYLE):
        figure = Figure(figsize=(width_in, height_in), layout="constrained")
        axes = figure.add_subplot()
    return figure, axes


def figure_svg(figure: Figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog), deterministic."""
    buffer = io.StringIO()
    with plt.rc_context(STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return scoped_ids(text[text.index("<svg") :])


_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(url\(#|href="#)([^)"]+)')


def scoped_ids(svg: str) -> str:
    """Every element id (and every reference to one) prefixed by a digest of the chart, so several charts inline
    in one document never define the same id: matplotlib numbers ids per figure ("line2d_17"), and a document
    with two figures would define each twice (invalid HTML; WeasyPrint warns once per id)."""
    scope = "c" + hashlib.sha256(svg.encode()).hexdigest()[:10] + "-"
    svg = _ID.sub(lambda match: f'id="{scope}{match[1]}"', svg)
    return _REFERENCE.sub(lambda match: f"{match[1]}{scope}{match[2]}", svg)
