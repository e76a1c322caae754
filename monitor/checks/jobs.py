"""Scheduled checks: each model's checks on its policy's cron, computed once per window."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from monitor.auth.actors import SYSTEM
from monitor.checks import flows
from monitor.checks.kinds import implemented_kinds, window_end_default
from monitor.checks.models import CheckRun
from monitor.checks.policy import policy_for
from monitor.db import Database, get_database, utcnow
from monitor.registry import service as registry_service

log = logging.getLogger("radmon.checks")

# Same namespace as checks.flows.run_checks' per-model lock: advisory locks are re-entrant
# within one PostgreSQL session, so holding it here and there costs nothing more.
_RUN_LOCK = 0x636B


def _lock_model(session: Session, model_id: int) -> None:
    """Serialize check runs of one model across scheduler replicas (PostgreSQL); SQLite's
    BEGIN IMMEDIATE already serializes every writer."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _RUN_LOCK, "b": model_id})


def kinds_done(*, session: Session, model_id: int, window_end: datetime) -> set[str]:
    """Kinds with a current (not superseded) run for the window ending at window_end."""
    rows = session.execute(
        select(CheckRun.kind).where(
            CheckRun.model_id == model_id,
            CheckRun.window_end == window_end,
            CheckRun.superseded_at.is_(None),
        )
    ).scalars()
    return set(rows)


def run_due_checks(
    model_name: str, window_end: datetime | None = None, *, database: Database | None = None
) -> list[int]:
    """The scheduled run: every implemented kind of the model for the window ending at window_end
    (default today 00:00 UTC) that has no current run yet. Two replicas firing together compute
    each (model, version, kind, window) once: the second waits for the first's lock, then finds
    the runs done. Returns the ids of the runs it made."""
    window_end = window_end or window_end_default(utcnow())
    with (database or get_database()).transaction() as session:
        model = registry_service.find_model(session=session, name=model_name)
        _lock_model(session, model.id)
        missing = [
            kind
            for kind in implemented_kinds()
            if kind not in kinds_done(session=session, model_id=model.id, window_end=window_end)
        ]
        if not missing:
            log.info("checks already done", extra={"model": model_name, "window_end": window_end.isoformat()})
            return []
        runs = flows.run_checks(
            session=session, actor=SYSTEM, model_name=model_name, kinds=missing, window_end=window_end
        )
        ids = [run.id for run in runs]
    log.info("scheduled checks ran", extra={"model": model_name, "window_end": window_end.isoformat(), "runs": ids})
    return ids


def backfill(
    model_name: str,
    window_ends: list[datetime],
    *,
    database: Database | None = None,
    on_window: Callable[[datetime, int], None] | None = None,
) -> int:
    """The scheduled run for each past window end, oldest first; windows already done are
    skipped, so an interrupted backfill resumes. Returns the number of runs made."""
    made = 0
    for window_end in sorted(window_ends):
        runs = len(run_due_checks(model_name, window_end, database=database))
        made += runs
        if on_window is not None:
            on_window(window_end, runs)
    return made


def recompute_labelled(*, database: Database | None = None, now: datetime | None = None) -> dict[str, int]:
    """Re-run the labelled kinds (performance, subgroups) of recent windows whose outcomes
    arrived after their run, for every model; returns runs made per model."""
    now = now or utcnow()
    made: dict[str, int] = {}
    for model_name in scheduled_models(database=database):
        with (database or get_database()).transaction() as session:
            model = registry_service.find_model(session=session, name=model_name)
            _lock_model(session, model.id)
            runs = flows.recompute_labelled_windows(session=session, actor=SYSTEM, model_name=model_name, now=now)
            made[model_name] = len(runs)
    if any(made.values()):
        log.info("labelled windows recomputed", extra={"runs": made})
    return made


def scheduled_models(*, database: Database | None = None) -> dict[str, str]:
    """Model name -> cron schedule (UTC) from each model's policy (defaults included)."""
    with (database or get_database()).transaction() as session:
        return {
            model.name: policy_for(session=session, model_id=model.id).schedule
            for model in registry_service.all_models(session=session)
        }
