"""Headline figures are the whole population's unless a segment is chosen (issue 12, deliverable 3).

A drift or performance run holds one point per segment beside the whole population's for the same
metric and feature; a tile that keys points by (metric, feature) shows whichever segment came last."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.dashboard import test_analytics_pages as seeded
from tests.dashboard.callbacks import find, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.dashboard.test_analytics_pages import Monitored, point

monitored = seeded.monitored  # the analytic pages' fixture: two weekly windows, every kind run on both


def _segment_points(run, metric: str, feature: str | None):  # type: ignore[no-untyped-def]
    return [p for p in run.metrics or [] if p.metric == metric and p.feature == feature and p.segment is not None]


def test_drift_tiles_show_the_whole_populations_output_figures(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    output = monitored.run("output_drift")
    score = point(output, "drift_score", feature="score")
    rate = point(output, "positive_rate", feature="prediction")
    last_segment_score = _segment_points(output, "drift_score", "score")[-1]
    last_segment_rate = _segment_points(output, "positive_rate", "prediction")[-1]
    # The segments' figures differ from the population's, so the tile shows which it read.
    assert f"{last_segment_score.value:.3f}" != f"{score.value:.3f}"
    assert f"{last_segment_rate.value:.1%}" != f"{rate.value:.1%}"

    page = render_page(dashboard_client, "/drift", "?model=ich-ct")

    score_tile = text_of(find(page, "drift-tile-score"))
    assert f"{score.value:.3f}" in score_tile and score.method in score_tile
    assert f"{rate.value:.1%}" in text_of(find(page, "drift-tile-rate"))
    # The verdict under the score distribution is the population's too.
    assert f"Score drift {score.value:.4g}" in text_of(find(page, "drift-score-card"))


def test_performance_tiles_show_the_whole_population_until_a_segment_is_chosen(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    overall = point(monitored.run("performance"), "sensitivity")
    north = point(monitored.run("subgroups"), "sensitivity", segment="site=north")

    whole = render_page(dashboard_client, "/performance", "?model=ich-ct")
    chosen = render_page(dashboard_client, "/performance", "?model=ich-ct&segment=site%3Dnorth")

    assert f"{overall.value:.1%}" in text_of(find(whole, "performance-tile-sensitivity"))
    assert "whole population" in text_of(find(whole, "performance-tiles"))
    assert f"{north.value:.1%}" in text_of(find(chosen, "performance-tile-sensitivity"))
    assert "segment site=north" in text_of(find(chosen, "performance-tiles"))


def test_subgroups_headline_states_the_whole_populations_figure_beside_the_segments(
    dashboard_client: TestClient, monitored: Monitored
) -> None:
    sign_in(dashboard_client, "vera")
    overall = point(monitored.run("performance"), "sensitivity")

    page = render_page(dashboard_client, "/subgroups", "?model=ich-ct")

    tile = text_of(find(page, "subgroups-tile-population"))
    assert "whole population" in tile and f"{overall.value:.1%}" in tile
