"""Version continuity (issue 12, deliverable 5): after the live version changes, the analytic pages
show the live version and, on the same time axis, the windows of the version live before it, with
the switch marked; never "No results for version 2.0.0"."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.auth.actors import SYSTEM
from monitor.registry import service as registry_service
from tests.dashboard import test_analytics_pages as seeded
from tests.dashboard.callbacks import call, find, response_of, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.dashboard.test_analytics_pages import Monitored, figure_of, point
from tests.factories import make_user, make_version

monitored = seeded.monitored  # 2.1.0 live, two weekly windows with every kind of check run


def _roll_back(session: Session) -> None:
    """2.0.0 registered and made live after 2.1.0's windows, as an approved rollback does."""
    make_version(session, version="2.0.0", targets={"sensitivity": 0.88, "specificity": 0.8, "auc": 0.85})
    model = registry_service.find_model(session=session, name="ich-ct")
    older = registry_service.find_version(session=session, model=model, version="2.0.0")
    registry_service.deploy(session=session, actor=SYSTEM, model=model, version=older, reason="rollback after alert")


def _switch_labels(figure: dict) -> list[str]:
    return [a["text"] for a in figure["layout"].get("annotations", []) if a.get("name") == "version switch"]


def test_after_a_rollback_every_analytic_page_shows_the_previous_versions_history(
    dashboard_client: TestClient, session: Session, monitored: Monitored
) -> None:
    _roll_back(session)
    sign_in(dashboard_client, "vera")
    realized = point(monitored.run("performance"), "sensitivity")

    drift = render_page(dashboard_client, "/drift", "?model=ich-ct")
    performance = render_page(dashboard_client, "/performance", "?model=ich-ct")
    subgroups = render_page(dashboard_client, "/subgroups", "?model=ich-ct")

    for page, name in ((drift, "drift"), (performance, "performance"), (subgroups, "subgroups")):
        assert f"{name}-no-runs" not in page and "No results" not in page, name
        note = text_of(find(page, f"{name}-versions-note"))
        assert "Version 2.0.0 live since" in note and "after 2.1.0" in note and "2.1.0's figures" in note, name
    assert figure_of(drift, "drift-heatmap")["data"][0]["z"]
    assert _switch_labels(figure_of(drift, "drift-heatmap")) == ["2.0.0 live"]
    assert _switch_labels(figure_of(drift, "drift-unified-graph")) == ["2.0.0 live"]
    graph = figure_of(performance, "performance-sensitivity-graph")
    assert _switch_labels(graph) == ["2.0.0 live"]
    line = next(t for t in graph["data"] if t.get("name") == "realized (labelled outcomes)")
    assert line["y"][-1] == realized.value and len(line["y"]) == 2
    assert "version 2.1.0" in text_of(find(performance, "performance-tile-window"))
    assert f"{realized.value:.1%}" in text_of(find(performance, "performance-tile-sensitivity"))
    assert figure_of(subgroups, "subgroups-heatmap")["data"]
    picker = find(drift, "drift-version-select")
    assert picker["value"] == "live" and picker["options"][0]["label"] == "live version 2.0.0 and earlier"


def test_one_version_alone_says_it_has_no_results_and_links_back_to_the_history(
    dashboard_client: TestClient, session: Session, monitored: Monitored
) -> None:
    _roll_back(session)
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/performance", "?model=ich-ct&version=2.0.0")
    older = render_page(dashboard_client, "/performance", "?model=ich-ct&version=2.1.0")

    assert "performance-no-runs" in page and "performance-history-link" not in page  # 2.0.0 is the live one
    assert "Showing version 2.1.0 only; version 2.0.0 is live" in text_of(find(older, "performance-versions-note"))
    assert find(older, "performance-history-link")["href"].endswith("/performance?model=ich-ct")
    assert _switch_labels(figure_of(older, "performance-sensitivity-graph")) == []


def test_the_live_history_and_the_whole_population_leave_the_url_without_a_version_or_segment(
    dashboard_client: TestClient, session: Session
) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")
    values = {
        "performance-model-select.value": "ich-ct",
        "performance-version-select.value": "live",
        "performance-segment-select.value": "all",
        "performance-days-select.value": "30",
    }

    result = response_of(call(dashboard_client, "performance-segment-select.value", values))

    assert next(iter(result.values()))["href"] == "/dashboard/performance?model=ich-ct&days=30"
