"""HTTP routes for the monitoring policy, check runs, their reports and metric series."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from monitor.auth.dependencies import ActorDep
from monitor.checks import flows, policy, reads, report
from monitor.checks.schemas import (
    CheckRunOut,
    MonitoringPolicy,
    PolicyOut,
    RunRequest,
    SeriesPointOut,
    SubgroupTableOut,
)
from monitor.db import SessionDep

router = APIRouter(tags=["checks"])
# Ids are 32-bit in the database: a larger one is refused (422) instead of reaching the driver.
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _utc(value: datetime | None) -> datetime | None:
    """Query filters without a timezone (e.g. since=2026-11-01) are read as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.get("/models/{model}/policy", response_model=PolicyOut)
def get_policy(model: str, session: SessionDep, actor: ActorDep) -> PolicyOut:
    """The model's monitoring policy (defaults until one is saved)."""
    return policy.get_policy(session=session, actor=actor, model_name=model)


@router.put("/models/{model}/policy", response_model=PolicyOut)
def put_policy(model: str, body: MonitoringPolicy, session: SessionDep, actor: ActorDep) -> PolicyOut:
    """Replace the monitoring policy (qa, admin)."""
    return policy.put_policy(session=session, actor=actor, model_name=model, policy=body)


@router.post("/checks/run", response_model=list[CheckRunOut])
def run_checks(body: RunRequest, session: SessionDep, actor: ActorDep) -> list[CheckRunOut]:
    """Run checks now (qa, admin) on every version with inferences in the window; answers the runs made."""
    runs = flows.run_checks(
        session=session, actor=actor, model_name=body.model, kinds=body.kinds, window_end=body.window_end
    )
    return [reads.run_out(session=session, run=run) for run in runs]


@router.get("/checks", response_model=list[CheckRunOut])
def list_checks(
    session: SessionDep,
    actor: ActorDep,
    model: str | None = None,
    kind: str | None = None,
    since: Annotated[datetime | None, Query(description="window_end at or after (UTC if no zone)")] = None,
    until: Annotated[datetime | None, Query(description="window_end before (UTC if no zone)")] = None,
    include_superseded: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CheckRunOut]:
    """Runs, newest window first, without their metric points."""
    return reads.list_runs(
        session=session,
        actor=actor,
        model_name=model,
        kind=kind,
        since=_utc(since),
        until=_utc(until),
        include_superseded=include_superseded,
        limit=limit,
    )


@router.get("/checks/{run_id}", response_model=CheckRunOut)
def get_check(run_id: RunId, session: SessionDep, actor: ActorDep) -> CheckRunOut:
    """One run: summary and metric points."""
    return reads.get_run(session=session, actor=actor, run_id=run_id)


@router.get("/checks/{run_id}/report", response_class=HTMLResponse)
async def get_report(run_id: RunId, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    """Evidently HTML drill-down on a sample of the window and the reference (text/html)."""
    html = await run_in_threadpool(reads.report_html, session=session, actor=actor, run_id=run_id)
    return HTMLResponse(html, headers=report.headers(html))


@router.get("/models/{model}/metrics", response_model=list[SeriesPointOut])
def metric_series(
    model: str,
    session: SessionDep,
    actor: ActorDep,
    metric: str | None = None,
    feature: str | None = None,
    segment: str | None = None,
    kind: str | None = None,
    version: str | None = None,
    since: Annotated[datetime | None, Query(description="window_end at or after (UTC if no zone)")] = None,
    until: Annotated[datetime | None, Query(description="window_end before (UTC if no zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[SeriesPointOut]:
    """Time series of metric points from current (non-superseded) runs, oldest first."""
    return reads.metric_series(
        session=session,
        actor=actor,
        model_name=model,
        metric=metric,
        feature=feature,
        segment=segment,
        kind=kind,
        version=version,
        since=_utc(since),
        until=_utc(until),
        limit=limit,
    )


@router.get("/models/{model}/subgroups", response_model=SubgroupTableOut)
def subgroups(
    model: str,
    session: SessionDep,
    actor: ActorDep,
    window_end: Annotated[
        datetime | None, Query(description="the run's window end (UTC if no zone); default: the latest")
    ] = None,
    version: str | None = None,
) -> SubgroupTableOut:
    """The segment table of a subgroups run: every segment worst first, with intervals, tests and estimates."""
    table = reads.subgroup_report(
        session=session, actor=actor, model_name=model, window_end=_utc(window_end), version=version
    )
    return SubgroupTableOut.model_validate(table)
