"""The catalog of check kinds and metrics is complete wherever a kind or metric is used, and a new
kind is its runner, its spec and its tests: the example kind below reaches the run, the alert, the
adverse-event email and the dashboard through them alone."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard import data as dashboard_data
from monitor.alerts import emails
from monitor.alerts.models import Alert, Notification
from monitor.alerts.schemas import Finding as AlertFinding
from monitor.alerts.service import severity_for
from monitor.auth.actors import SYSTEM
from monitor.checks import catalog, estimation, flows, kinds, performance_checks
from monitor.checks import policy as checks_policy
from monitor.checks.catalog import KIND_SPECS, KINDS, METRICS, KindSpec, MetricSpec
from monitor.checks.kinds import Finding, KindContext, KindResult, window_end_default
from monitor.checks.models import MetricPoint
from monitor.checks.reads import SERIES_FIELDS, SeriesRow
from monitor.checks.schemas import MetricPointOut, MonitoringPolicy, SeriesPointOut
from monitor.db import utcnow
from monitor.ingest.models import Inference
from monitor.simulate import Simulation
from tests.checks.test_performance_runs import load
from tests.dashboard.conftest import dashboard_client, render_page, sign_in  # noqa: F401  (the fixture)
from tests.factories import make_model, make_user, make_version

PAGES = Path(__file__).parents[2] / "dashboard" / "pages"


def dashboard_paths() -> set[str]:
    return {
        m.group(1)
        for p in PAGES.glob("*.py")
        for m in re.finditer(r'register_page\([^)]*path="([^"]+)"', p.read_text())
    }


def test_every_kind_has_a_runner_a_severity_a_page_and_a_label() -> None:
    assert kinds.implemented_kinds() == list(KINDS)  # a spec without a runner, or a runner without a spec
    assert list(MonitoringPolicy.model_fields["alert_severities"].annotation.__args__[0].__args__) == list(KINDS)
    for spec in KIND_SPECS:
        assert spec.page in dashboard_paths(), spec
        assert spec.default_severity in ("critical", "warning", "info")
        assert spec.label and spec.explanation.endswith(".")
        breach = AlertFinding(
            model="m", version="1", kind=spec.name, metric="sensitivity", status="breach", window_end=utcnow()
        )
        assert severity_for(breach, MonitoringPolicy()) == spec.default_severity  # never a silent "info"


def test_every_metric_a_page_or_a_check_names_has_an_entry() -> None:
    named = {
        *dashboard_data.PERFORMANCE_METRICS,
        *estimation.ESTIMATED_METRICS,
        *performance_checks.CUSUM_METRICS,
        *catalog.TARGET_METRICS,
    }
    assert named <= set(METRICS), named - set(METRICS)
    for spec in METRICS.values():
        assert spec.label
        if spec.counts is not None:
            successes, trials = spec.counts
            assert set(successes) <= set(trials) <= {"tp", "fp", "fn", "tn"}


def test_every_metric_a_run_stores_has_an_entry(session: Session) -> None:
    simulation = Simulation(days=16, per_day=120, seed=3, scenarios="scanner_change:site=north,onset=8")
    load(session, simulation, window_days=14)

    runs = flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", window_end=simulation.start + timedelta(days=16)
    )

    assert sorted(run.kind for run in runs) == sorted(KINDS) and all(run.status != "failed" for run in runs)
    stored = set(session.execute(select(MetricPoint.metric).distinct()).scalars())
    assert {"sensitivity", "drift_score", "label_coverage", "positive_rate"} <= stored
    assert stored <= set(METRICS), stored - set(METRICS)


def test_the_metric_point_shapes_stay_in_step() -> None:
    """The table, the runner's Finding, the API's points, the charts' rows and alerting's Finding
    name the same fields the same way (decision 0203 keeps the shapes, not their vocabulary)."""
    stored = set(MetricPoint.__table__.columns.keys())
    point = set(MetricPointOut.model_fields)
    assert {f.name for f in dataclasses.fields(Finding)} <= stored
    assert point <= stored
    assert set(SeriesRow._fields) == set(SeriesPointOut.model_fields)
    assert set(SERIES_FIELDS) == point - {"details"}
    assert {f.name for f in dataclasses.fields(AlertFinding)} - {"model", "version"} <= stored


# ---------------------------------------------------------------------------------------------
# Adding a kind: the runner (here, in place of monitor/checks/feed_checks.py) and its spec
# (in place of an entry in catalog.KIND_SPECS and catalog.METRIC_SPECS). Nothing else changes.

FEED_VOLUME = KindSpec(
    "feed_volume",
    "Feed volume",
    "The model received fewer studies per day than expected: its results may not reach radiologists.",
    "critical",
    needs_outcomes=False,
    family="drift",
    page="/drift",
)
STUDIES_PER_DAY = MetricSpec("studies_per_day", "Studies per day", "Studies per day (count)", "higher")


def feed_volume(context: KindContext) -> KindResult:
    """Breach when the window averages fewer than one study a day."""
    window = context.window
    count = context.session.execute(
        select(func.count()).where(
            Inference.model_id == context.model.id,
            Inference.version_id == context.version.id,
            Inference.occurred_at >= window.start,
            Inference.occurred_at < window.end,
        )
    ).scalar_one()
    per_day = count / context.policy.window_days
    status = "breach" if per_day < 1 else "ok"
    finding = Finding(metric="studies_per_day", status=status, value=per_day, n=count, threshold=1.0, method="count")
    return KindResult("completed", {"breaches": int(status == "breach")}, [finding])


@pytest.fixture
def example_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, FEED_VOLUME.name, FEED_VOLUME)
    monkeypatch.setitem(METRICS, STUDIES_PER_DAY.name, STUDIES_PER_DAY)
    monkeypatch.setitem(kinds.RUNNERS, FEED_VOLUME.name, kinds.RUNNERS.get(FEED_VOLUME.name))
    kinds.register(FEED_VOLUME.name)(feed_volume)


def test_an_example_kind_reaches_the_run_the_alert_the_email_and_the_dashboard(
    example_kind: None,
    session: Session,
    dashboard_client: TestClient,  # noqa: F811
) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    make_version(session, activate=True)
    checks_policy.put_policy(
        session=session,
        actor=SYSTEM,
        model_name="ich-ct",
        policy=MonitoringPolicy(alert_recipients=["ai-committee@hospital.example"]),
    )

    tomorrow = window_end_default(utcnow()) + timedelta(days=1)  # the version went live today

    [run] = flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["feed_volume"], window_end=tomorrow
    )

    assert (run.kind, run.status, run.summary) == ("feed_volume", "completed", {"breaches": 1})
    alert = session.execute(select(Alert)).scalar_one()
    assert (alert.kind, alert.metric, alert.severity) == ("feed_volume", "studies_per_day", "critical")
    email = session.execute(select(Notification).where(Notification.category == "adverse_event")).scalar_one()
    assert "feed volume" in str(email.payload)
    assert emails.headline(
        kind="feed_volume", metric="studies_per_day", feature=None, segment=None, value=0.0, threshold=1.0,
        estimated=False,
    ) == "feed volume (studies_per_day)"  # fmt: skip
    sign_in(dashboard_client, "vera")
    page = render_page(dashboard_client, "/alerts")
    assert "Feed volume" in page and "Studies per day" in page


def test_a_kind_without_a_spec_cannot_be_registered() -> None:
    with pytest.raises(ValueError, match="unknown check kind 'feed_volume'"):
        kinds.register("feed_volume")(feed_volume)
