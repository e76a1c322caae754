"""A cold window on PostgreSQL is read over parallel connections only when that changes nothing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import policy as checks_policy
from monitor.checks import windows
from monitor.checks.models import DailyProfile
from monitor.checks.schemas import MonitoringPolicy
from monitor.db import Database
from monitor.reference import service as reference_service
from monitor.registry.models import ModelVersion
from tests.checks.data import POLICY, frame, insert_inferences, records
from tests.factories import make_model, make_version

os.environ.setdefault("DO_NOT_TRACK", "1")

END = datetime(2026, 11, 20, tzinfo=UTC)
START = END - timedelta(days=7)


def _stored_profiles(database: Database, *, parallel: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list, dict]:
    monkeypatch.setattr(windows, "PARALLEL_READS", parallel)
    reads: list[str] = []
    original = windows._profile_range
    monkeypatch.setattr(windows, "_profile_range", lambda *a, **k: reads.append("serial") or original(*a, **k))
    with database.transaction() as session:
        session.execute(DailyProfile.__table__.delete())
    with database.transaction() as session:
        run = checks_flows.run_checks(
            session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=END
        )[0]
        summary = dict(run.summary)
    with database.transaction() as session:
        bodies = [
            (p.day, p.row_count, p.body)
            for p in session.execute(select(DailyProfile).order_by(DailyProfile.day)).scalars()
        ]
    return bodies, {
        "serial_reads": len(reads),
        **{k: summary[k] for k in ("rows_read", "days_profiled_now", "segments_drifted")},
    }


def test_parallel_day_reads_give_the_same_profiles(
    fresh_database: Database, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("parallel reads are a PostgreSQL path")
    with fresh_database.transaction() as session:
        make_model(session)
        version = make_version(session, activate=True)
        checks_policy.put_policy(
            session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
        )
        reference_service.upload_records(
            session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(2000, seed=1))
        )
        insert_inferences(
            session, session.get(ModelVersion, version.id), frame(2100, seed=2, shift=0.5), start=START, days=7
        )
    serial, serial_run = _stored_profiles(fresh_database, parallel=1, monkeypatch=monkeypatch)
    parallel, parallel_run = _stored_profiles(fresh_database, parallel=2, monkeypatch=monkeypatch)
    assert serial_run["serial_reads"] == 7 and parallel_run["serial_reads"] == 0  # the parallel path did run
    assert len(serial) == 7 and parallel == serial
    assert {k: v for k, v in parallel_run.items() if k != "serial_reads"} == {
        k: v for k, v in serial_run.items() if k != "serial_reads"
    }


def test_a_transaction_with_its_own_writes_reads_in_its_session(
    fresh_database: Database, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other connections would not see the rows this transaction inserted: it must read them itself.
    if backend != "postgresql":
        pytest.skip("parallel reads are a PostgreSQL path")
    monkeypatch.setattr(windows, "PARALLEL_READS", 2)
    with fresh_database.transaction() as session:
        make_model(session)
        version = make_version(session, activate=True)
        checks_policy.put_policy(
            session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
        )
        reference_service.upload_records(
            session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(2000, seed=1))
        )
        insert_inferences(session, version, frame(2100, seed=2), start=START, days=7)
        page_cost = session.execute(text("SHOW random_page_cost")).scalar_one()
        run = checks_flows.run_checks(
            session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=END
        )[0]
        assert run.summary["rows"] == 2100 and run.summary["rows_read"] == 2100
        # The day reads lower the planner's page cost for themselves only, not for the rest of the check.
        assert session.execute(text("SHOW random_page_cost")).scalar_one() == page_cost
