"""Label-free estimates with their limit stated (issue 12, deliverable 6): where the outcomes have
come in and contradict the estimate beyond both uncertainties, the performance page and the
finding's text say the estimate has stopped being informative for that segment, and why."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import reads as checks_reads
from monitor.checks.schemas import CheckRunOut
from tests.dashboard import test_analytics_pages as seeded
from tests.dashboard.callbacks import find, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.dashboard.test_analytics_pages import Monitored, point

monitored = seeded.monitored  # half of north's bleeds scored 0.2 in the second week: a concept shift at north


@pytest.fixture
def reconciled(session: Session, monitored: Monitored) -> CheckRunOut:
    """The labelled kinds of the last window run again, as they are when late outcomes arrive: now
    that the window's estimate exists, each figure is set against it. The new subgroups run."""
    runs = checks_flows.run_checks(
        session=session,
        actor=SYSTEM,
        model_name="ich-ct",
        kinds=["performance", "subgroups"],
        window_end=monitored.last_end,
    )
    subgroups = next(run for run in runs if run.kind == "subgroups")
    return checks_reads.get_run(session=session, actor=SYSTEM, run_id=subgroups.id)


def test_a_contradicted_estimate_is_declared_uninformative_for_its_segment_with_the_reason(
    dashboard_client: TestClient, reconciled: CheckRunOut
) -> None:
    sign_in(dashboard_client, "vera")
    error = point(reconciled, "sensitivity_estimate_error", segment="site=north")
    assert error.status == "warn"

    page = render_page(dashboard_client, "/performance", "?model=ich-ct&segment=site%3Dnorth")

    caveat = text_of(find(page, "performance-estimate-caveat"))
    assert "stopped being informative for segment site=north" in caveat
    assert f"estimated {error.details['estimated']:.3f}, realized {error.details['realized']:.3f}" in caveat
    assert "what a score means" in caveat and "invisible" in caveat
    # The finding an alert carries says the same in words.
    reason = error.details["reason"]
    assert "stopped being informative for segment site=north" in reason and "concept shift" in reason
    assert f"it said {error.details['estimated']:.3f}" in reason


def test_estimates_are_explained_in_plain_words_and_agreeing_ones_carry_no_caveat(
    dashboard_client: TestClient, reconciled: CheckRunOut
) -> None:
    sign_in(dashboard_client, "vera")
    south = point(reconciled, "sensitivity_estimate_error", segment="site=south")

    page = render_page(dashboard_client, "/performance", "?model=ich-ct&segment=site%3Dsouth")

    note = text_of(find(page, "performance-estimate-note"))
    assert "early warning" not in note
    assert "'estimate support': the share of studies whose scanner, protocol and patient values" in note
    assert "of segment site=south had inputs the reference covered" in note
    if south.status == "ok":  # the caveat names only the metrics the outcomes contradicted
        caveat = text_of(find(page, "performance-estimate-caveat")) if "performance-estimate-caveat" in page else ""
        assert "Sensitivity:" not in caveat


def test_the_first_run_of_a_window_already_sets_the_outcomes_against_its_estimate(monitored: Monitored) -> None:
    """The estimate runs before the labelled kinds, so a backfill (the demo's) reconciles every window."""
    error = point(monitored.run("subgroups"), "sensitivity_estimate_error", segment="site=north")

    assert error.status == "warn" and "stopped being informative" in error.details["reason"]
