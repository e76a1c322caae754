"""Surveillance reports for the Reports page: list, generate, sign, correct, and the stored files.

Each function is one unit of work through monitor.reports.service, acting as the signed-in Actor.
A refusal the service put on record (an attempt on a signed report, a failed signature) is committed
before it is raised, as the API does. `base.transaction` is looked up at call time, so a test that
points the dashboard's unit of work at its session (tests/dashboard/conftest.py) covers this module."""

from __future__ import annotations

from datetime import date

from dashboard.data import base
from monitor.auth.actors import Actor
from monitor.config import Settings
from monitor.reports import service
from monitor.reports.schemas import ReportCreate, ReportOut, ReportSign, RevisionCreate


def _settled(result: service.ReportResult) -> ReportOut:
    if result.refusal is not None:
        raise result.refusal
    assert result.report is not None
    return result.report


def reports(*, actor: Actor, model_name: str, settings: Settings) -> list[ReportOut]:
    with base.transaction() as session:
        return service.list_reports(
            session=session, actor=actor, model_name=model_name, approval_required=settings.report_approval_required
        )


def report(*, actor: Actor, report_id: int, settings: Settings) -> ReportOut:
    with base.transaction() as session:
        return service.get_report(
            session=session, actor=actor, report_id=report_id, approval_required=settings.report_approval_required
        )


def generate_report(
    *, actor: Actor, model_name: str, period_start: date | str, period_end: date | str, settings: Settings
) -> ReportOut:
    data = base._validated(ReportCreate, {"model": model_name, "period_start": period_start, "period_end": period_end})
    with base.transaction() as session:
        result = service.generate(
            session=session, actor=actor, data=data, approval_required=settings.report_approval_required
        )
    return _settled(result)


def sign_report(*, actor: Actor, report_id: int, meaning: str, password: str, settings: Settings) -> ReportOut:
    data = base._validated(ReportSign, {"meaning": meaning, "password": password})
    with base.transaction() as session:
        result = service.sign(
            session=session,
            actor=actor,
            report_id=report_id,
            data=data,
            approval_required=settings.report_approval_required,
        )
    return _settled(result)


def revise_report(*, actor: Actor, report_id: int, reason: str, settings: Settings) -> ReportOut:
    data = base._validated(RevisionCreate, {"reason": reason})
    with base.transaction() as session:
        result = service.revise(
            session=session,
            actor=actor,
            report_id=report_id,
            data=data,
            approval_required=settings.report_approval_required,
        )
    return _settled(result)


def report_pdf(*, actor: Actor, report_id: int) -> service.ReportFile:
    with base.transaction() as session:
        return service.report_pdf(session=session, actor=actor, report_id=report_id)


def report_html(*, actor: Actor, report_id: int) -> str:
    with base.transaction() as session:
        return service.report_html(session=session, actor=actor, report_id=report_id)
