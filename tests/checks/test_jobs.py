"""The scheduler: per-model cron jobs follow the policy; a window's checks are computed once,
even when two scheduler processes fire at the same moment."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from monitor import scheduler as scheduler_module
from monitor.auth.actors import SYSTEM
from monitor.checks import jobs
from monitor.checks import policy as checks_policy
from monitor.checks.kinds import implemented_kinds
from monitor.checks.models import CheckRun
from monitor.checks.schemas import MonitoringPolicy
from monitor.db import Database
from monitor.reference import service as reference_service
from tests.checks.data import POLICY, frame, insert_inferences, records
from tests.factories import make_model, make_version

END = datetime(2026, 11, 20, tzinfo=UTC)


def _seed(database: Database, schedule: str = "0 2 * * *") -> None:
    with database.transaction() as session:
        make_model(session)
        version = make_version(session, activate=True)
        policy = MonitoringPolicy.model_validate({**POLICY, "schedule": schedule})
        checks_policy.put_policy(session=session, actor=SYSTEM, model_name="ich-ct", policy=policy)
        reference_service.upload_records(
            session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(1500, seed=1))
        )
        insert_inferences(session, version, frame(900, seed=2), start=END - timedelta(days=7), days=7)


def _current_runs(database: Database) -> dict[str, int]:
    with database.transaction() as session:
        rows = session.execute(
            select(CheckRun.kind, func.count())
            .where(CheckRun.window_end == END, CheckRun.superseded_at.is_(None))
            .group_by(CheckRun.kind)
        ).all()
    return dict(rows)


def _all_runs(database: Database) -> int:
    with database.transaction() as session:
        return session.execute(select(func.count()).select_from(CheckRun)).scalar_one()


def test_a_scheduled_window_is_computed_once(fresh_database: Database) -> None:
    _seed(fresh_database)
    first = jobs.run_due_checks("ich-ct", END, database=fresh_database)
    assert len(first) == len(implemented_kinds())
    assert jobs.run_due_checks("ich-ct", END, database=fresh_database) == []
    assert _current_runs(fresh_database) == {kind: 1 for kind in implemented_kinds()}
    assert _all_runs(fresh_database) == len(first)


def _fire(url: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    database = Database(url)
    barrier.wait(timeout=60)
    results.put(len(jobs.run_due_checks("ich-ct", END, database=database)))
    database.dispose()


def test_two_scheduler_processes_compute_each_window_once(fresh_database: Database) -> None:
    _seed(fresh_database)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_fire, args=(fresh_database.url, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
        assert worker.exitcode == 0
    made = sorted(results.get(timeout=5) for _ in workers)
    assert made == [0, len(implemented_kinds())]
    assert _current_runs(fresh_database) == {kind: 1 for kind in implemented_kinds()}
    assert _all_runs(fresh_database) == len(implemented_kinds())


def test_check_jobs_follow_each_policy_schedule(fresh_database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(fresh_database, schedule="30 3 * * *")
    monkeypatch.setattr(jobs, "get_database", lambda: fresh_database)
    scheduler = scheduler_module.build_scheduler(database=fresh_database)
    scheduler.start(paused=True)
    try:
        scheduler_module.sync_check_jobs()
        job = scheduler.get_job("checks:model:ich-ct")
        assert job is not None and "hour='3'" in str(job.trigger) and "minute='30'" in str(job.trigger)
        housekeeping = {job_id for job_id, _, _ in scheduler_module.HOUSEKEEPING}
        assert housekeeping | {"checks:sync"} <= {j.id for j in scheduler.get_jobs()}

        with fresh_database.transaction() as session:
            policy = MonitoringPolicy.model_validate({**POLICY, "schedule": "0 6 * * 1"})
            checks_policy.put_policy(session=session, actor=SYSTEM, model_name="ich-ct", policy=policy)
        scheduler_module.sync_check_jobs()
        trigger = str(scheduler.get_job("checks:model:ich-ct").trigger)
        assert "hour='6'" in trigger and "day_of_week='1'" in trigger
    finally:
        scheduler.shutdown(wait=False)


def test_a_scheduled_run_with_drift_raises_alerts_and_queues_them_for_the_digest(fresh_database: Database) -> None:
    from monitor.alerts.models import Alert, DigestItem
    from monitor.checks.models import MetricPoint

    with fresh_database.transaction() as session:
        make_model(session)
        version = make_version(session, activate=True)
        policy = MonitoringPolicy.model_validate({**POLICY, "alert_recipients": ["qa@hospital.example"]})
        checks_policy.put_policy(session=session, actor=SYSTEM, model_name="ich-ct", policy=policy)
        reference_service.upload_records(
            session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(3000, seed=1))
        )
        insert_inferences(session, version, frame(2100, seed=2, shift=1.0), start=END - timedelta(days=7), days=7)

    jobs.run_due_checks("ich-ct", END, database=fresh_database)

    with fresh_database.transaction() as session:
        points = session.execute(
            select(MetricPoint.kind, MetricPoint.metric, MetricPoint.feature, MetricPoint.segment, MetricPoint.status)
        ).all()
        alerts = session.execute(select(Alert.kind, Alert.metric, Alert.feature, Alert.segment, Alert.severity)).all()
        queued = session.execute(select(func.count()).select_from(DigestItem)).scalar_one()
    breaches = {(p.kind, p.metric, p.feature, p.segment) for p in points if p.status == "breach"}
    warnings = {(p.kind, p.metric, p.feature, p.segment) for p in points if p.status == "warn"}
    raised = {(a.kind, a.metric, a.feature, a.segment) for a in alerts}
    assert breaches, "the shifted window must breach"
    assert breaches <= raised <= breaches | warnings  # every breach alerts; nothing else but warns
    assert len(alerts) == len(raised)  # one alert per fingerprint
    assert {a.severity for a in alerts if a.kind == "input_drift"} == {"warning"}
    assert queued >= 1  # drift warnings wait for the next digest email; none is lost


def test_a_started_scheduler_places_model_jobs_at_once_and_keeps_its_own(
    fresh_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(fresh_database)
    monkeypatch.setattr(jobs, "get_database", lambda: fresh_database)
    scheduler = scheduler_module.build_scheduler(database=fresh_database)
    scheduler_module.start(scheduler)
    try:
        ids = {job.id for job in scheduler.get_jobs()}
        assert "checks:model:ich-ct" in ids and "checks:sync" in ids
        scheduler_module.sync_check_jobs()
        assert "checks:sync" in {job.id for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
