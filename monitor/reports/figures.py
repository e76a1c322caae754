"""The surveillance report's charts: plain data in, deterministic inline SVG out (decision 0602).

Printed in grayscale: series differ by line style and marker, not only by colour; the target is a dashed
black line, 95% intervals are light gray bands, windows that missed the target are marked. Every axis says
what it measures and in which unit, every chart has a title, dates are UTC window ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes

from monitor.checks.catalog import METRICS, metric_label
from monitor.documents.charts import figure_svg, new_figure
from monitor.reports.content import DayVolume, SegmentRow, SeriesPoint

INK = "#1a1a1a"
BAND = "#c8c8c8"
SECOND = "#6b6b6b"
WIDTH = 6.9  # inches: the A4 text width at the report's margins


def _unit(metric: str) -> str:
    spec = METRICS.get(metric)
    return spec.unit if spec is not None and spec.unit else metric_label(metric)


def _short_unit(metric: str) -> str:
    """A panel's axis title: the metric and its scale (a half-width panel has no room for the long unit)."""
    spec = METRICS.get(metric)
    scale = "0–1, lower is better" if spec is not None and spec.direction == "lower" else "0–1"
    return f"{metric_label(metric)} ({scale})"


def _date_axis(axes: Axes, *, label: str = "Window end (UTC)", ticks: int = 7) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=ticks)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))
    axes.set_xlabel(label)
    axes.grid(axis="y", color="#e5e5e5", linewidth=0.6)


def _values(points: Sequence[SeriesPoint], attr: str) -> np.ndarray:
    return np.array([np.nan if getattr(p, attr) is None else float(getattr(p, attr)) for p in points])


def _xs(points: Sequence[SeriesPoint]) -> np.ndarray:
    return np.asarray(mdates.date2num([p.window_end.replace(tzinfo=None) for p in points]))


def _series(axes: Axes, points: Sequence[SeriesPoint], *, label: str, style: str, marker: str, band: bool) -> None:
    xs = _xs(points)
    values, low, high = _values(points, "value"), _values(points, "ci_low"), _values(points, "ci_high")
    if band and np.isfinite(low).any():
        axes.fill_between(xs, low, high, color=BAND, alpha=0.6 if style == "-" else 0.35, linewidth=0,
                          label=f"{label}: 95% interval")  # fmt: skip
    axes.plot(xs, values, style, color=INK if style == "-" else SECOND, marker=marker, markersize=2.5,
              linewidth=1.2, label=label)  # fmt: skip


def _target(axes: Axes, points: Sequence[SeriesPoint], *, label: str = "target") -> None:
    xs, targets = _xs(points), _values(points, "threshold")
    if np.isfinite(targets).any():
        axes.step(xs, targets, "--", where="mid", color=INK, linewidth=1.0, label=label)


def _misses(axes: Axes, points: Sequence[SeriesPoint]) -> None:
    missed = [p for p in points if p.status in ("warn", "breach") and p.value is not None]
    if missed:
        axes.plot(_xs(missed), _values(missed, "value"), linestyle="none", marker="x", color=INK, markersize=5,
                  markeredgewidth=1.1, label="window missed the target")  # fmt: skip


def performance_chart(series: dict[str, list[SeriesPoint]]) -> str:
    """Realized performance per window with its 95% interval and target, one panel per metric."""
    metrics = list(series)
    rows = max(1, (len(metrics) + 1) // 2)
    figure, _ = new_figure(WIDTH, 2.3 * rows)
    figure.clear()
    axes_list = figure.subplots(rows, 2, squeeze=False).ravel()
    for axes, metric in zip(axes_list, metrics, strict=False):
        points = series[metric]
        _series(axes, points, label="realized", style="-", marker="o", band=True)
        _target(axes, points)
        _misses(axes, points)
        axes.set_title(f"{metric_label(metric)} per 7-day window")
        axes.set_ylabel(_short_unit(metric))
        _date_axis(axes, ticks=5)
        _ylim(axes, points)
    for axes in axes_list[len(metrics) :]:
        axes.set_visible(False)
    handles, labels = axes_list[0].get_legend_handles_labels()
    _legend_below(figure, handles, labels)
    return figure_svg(figure)


def _legend_below(figure: Any, handles: list[Any], labels: list[str]) -> None:
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)), frameon=False)


def _ylim(axes: Axes, points: Sequence[SeriesPoint]) -> None:
    values = np.concatenate([_values(points, a) for a in ("value", "ci_low", "ci_high", "threshold")])
    values = values[np.isfinite(values)]
    if values.size:
        low, high = float(values.min()), float(values.max())
        pad = max(0.02, (high - low) * 0.08)
        axes.set_ylim(max(0.0, low - pad), min(1.0, high + pad) if high <= 1.0 else high + pad)


def estimate_chart(metric: str, realized: Sequence[SeriesPoint], estimated: Sequence[SeriesPoint]) -> str:
    """The label-free estimate beside the realized figure of the same windows."""
    figure, axes = new_figure(WIDTH, 2.5)
    _series(axes, realized, label="realized", style="-", marker="o", band=True)
    _series(axes, estimated, label="estimated", style=":", marker="s", band=True)
    _target(axes, realized or estimated)
    axes.set_title(f"{metric_label(metric)}: label-free estimate and realized figure, per 7-day window")
    axes.set_ylabel(_unit(metric))
    _date_axis(axes)
    _ylim(axes, [*realized, *estimated])
    handles, labels = axes.get_legend_handles_labels()
    _legend_below(figure, handles, labels)
    return figure_svg(figure)


def volume_chart(daily: Sequence[DayVolume]) -> str:
    """Inferences per day, split into those with an outcome and those without."""
    figure, axes = new_figure(WIDTH, 2.4)
    xs = np.asarray(mdates.date2num([datetime.combine(d.day, datetime.min.time()) for d in daily]))
    labelled = np.array([d.labelled for d in daily])
    unlabelled = np.array([d.inferences - d.labelled for d in daily])
    axes.bar(xs, labelled, width=0.8, color=SECOND, label="with an outcome")
    axes.bar(xs, unlabelled, width=0.8, bottom=labelled, color="white", edgecolor=SECOND, hatch="////",
             linewidth=0.5, label="no outcome yet")  # fmt: skip
    axes.set_title("Inferences per day and label coverage")
    axes.set_ylabel("Inferences per day (count)")
    _date_axis(axes, label="Day (UTC)")
    axes.set_ylim(0, max(1, int((labelled + unlabelled).max(initial=0) * 1.1)))
    handles, labels = axes.get_legend_handles_labels()
    _legend_below(figure, handles, labels)
    return figure_svg(figure)


def subgroup_chart(rows: Sequence[SegmentRow], metric: str, target: float | None, window_end: datetime) -> str:
    """Forest plot: the metric per segment with its 95% interval, against the target."""
    shown = [r for r in rows if metric in r.figures and r.figures[metric].value is not None]
    height = max(1.6, 0.55 + 0.16 * len(shown))
    figure, axes = new_figure(WIDTH, height)
    ys = np.arange(len(shown))[::-1]
    for y, row in zip(ys, shown, strict=True):
        cell = row.figures[metric]
        if cell.ci_low is not None and cell.ci_high is not None:
            axes.plot([cell.ci_low, cell.ci_high], [y, y], color=SECOND, linewidth=2.2, solid_capstyle="butt")
        missed = cell.status in ("warn", "breach")
        axes.plot([float(cell.value or 0.0)], [y], marker="x" if missed else "o", color=INK, markersize=4.5 if missed else 3.5,
                  markeredgewidth=1.2)  # fmt: skip
    if target is not None:
        axes.axvline(target, linestyle="--", color=INK, linewidth=1.0, label=f"target {target:.3f}")
    axes.set_yticks(ys, [r.segment.replace("&", " & ") for r in shown])
    axes.set_xlabel(_unit(metric))
    # A figure title, centred on the page: over the axes it would run past the edge beside long subgroup names.
    figure.suptitle(f"{metric_label(metric)} per subgroup with 95% intervals, window ending {window_end:%Y-%m-%d}",
                    fontsize=9)  # fmt: skip
    axes.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    lows = [c for r in shown if (c := r.figures[metric].ci_low) is not None]
    axes.set_xlim(max(0.0, min([*lows, target if target is not None else 1.0]) - 0.05), 1.02)
    axes.plot([], [], marker="x", linestyle="none", color=INK, label="estimate misses the target")
    axes.plot([], [], color=SECOND, linewidth=2.2, label="95% interval")
    handles, labels = axes.get_legend_handles_labels()
    _legend_below(figure, handles, labels)
    if not shown:
        axes.text(0.5, 0.5, "no subgroup had enough outcomes", transform=axes.transAxes, ha="center")
    return figure_svg(figure)


def calibration_chart(bins: Sequence[dict[str, Any]], window_end: datetime) -> str:
    """Reliability diagram: observed positive rate against the mean score per score bin."""
    shown = [b for b in bins if b.get("mean_score") is not None and b.get("observed") is not None]
    figure, axes = new_figure(4.2, 3.4)
    axes.plot([0, 1], [0, 1], "--", color=SECOND, linewidth=1.0, label="perfect calibration")
    xs = np.array([b["mean_score"] for b in shown], dtype=float)
    ys = np.array([b["observed"] for b in shown], dtype=float)
    low = [b["observed"] - b["ci_low"] if b.get("ci_low") is not None else 0 for b in shown]
    high = [b["ci_high"] - b["observed"] if b.get("ci_high") is not None else 0 for b in shown]
    axes.errorbar(xs, ys, yerr=[low, high], fmt="-o", color=INK, ecolor=SECOND, markersize=3, linewidth=1.2,
                  capsize=2, label="observed rate (95% interval)")  # fmt: skip
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("Mean predicted score in bin (0–1)")
    axes.set_ylabel("Observed positive rate (0–1)")
    axes.set_title(f"Calibration, window ending {window_end:%Y-%m-%d}")
    axes.grid(color="#e5e5e5", linewidth=0.6)
    handles, labels = axes.get_legend_handles_labels()
    _legend_below(figure, handles, labels)
    return figure_svg(figure)


def drift_chart(points: Sequence[SeriesPoint]) -> str:
    """The unified input-drift score per window against its threshold."""
    figure, axes = new_figure(WIDTH, 2.3)
    _series(axes, points, label="unified input drift", style="-", marker="o", band=False)
    _target(axes, points, label="threshold")
    axes.set_title("Unified input drift per window (all features)")
    axes.set_ylabel("Unified drift (× noise)")
    _date_axis(axes)
    values = _values(points, "value")
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    axes.set_ylim(0, max(top, *(p.threshold or 0 for p in points)) * 1.1 or 1.0)
    handles, labels = axes.get_legend_handles_labels()
    _legend_below(figure, handles, labels)
    return figure_svg(figure)


def day_span(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
