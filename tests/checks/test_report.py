"""The Evidently drill-down of a run (issue 12): a report for every run that has one, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import policy as checks_policy
from monitor.checks.models import MetricPoint
from monitor.checks.schemas import MonitoringPolicy
from monitor.reference import service as reference_service
from tests.checks.data import POLICY, frame, insert_inferences, records
from tests.factories import auth, make_keys, make_model, make_version

END = datetime(2026, 11, 20, tzinfo=UTC)


def test_a_low_cardinality_numeric_feature_tested_by_chi_square_still_gets_its_report(
    client: TestClient, session: Session
) -> None:
    # 120 studies a day for 7 days against 800 reference rows: kvp (100/120/140 kV) is numeric
    # with three values, and the automatic choice for a reference this small is chi-square.
    make_model(session)
    version = make_version(session, activate=True)
    keys = make_keys(session)
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )
    reference_service.upload_records(
        session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(800, seed=1))
    )
    insert_inferences(session, version, frame(840, seed=2), start=END - timedelta(days=7), days=7)
    (run,) = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END
    )
    kvp = session.execute(
        select(MetricPoint.method).where(
            MetricPoint.run_id == run.id, MetricPoint.feature == "kvp", MetricPoint.metric == "drift_score"
        )
    ).scalar_one()
    assert kvp == "chisquare"

    answer = client.get(f"/api/v1/checks/{run.id}/report", headers=auth(keys["viewer"]))

    assert answer.status_code == 200, answer.text
    assert f"radmon check run {run.id}" in answer.text and '"kvp"' in answer.text
