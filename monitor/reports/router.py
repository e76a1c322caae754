"""HTTP routes for surveillance reports: list, generate, read, download, preview, sign, correct, discard."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from monitor.auth.dependencies import ActorDep
from monitor.db import SessionDep
from monitor.errors import MonitorError
from monitor.reports import service
from monitor.reports.schemas import ReportCreate, ReportOut, ReportSign, RevisionCreate

router = APIRouter(prefix="/reports", tags=["reports"])
# Ids are 32-bit integer columns; a larger number cannot name a report.
ReportId = Annotated[int, Path(ge=1, le=2**31 - 1)]

# The preview is the report's own HTML (inline CSS and SVG, no script): it may draw and nothing else,
# in an opaque origin (no cookies, no requests to radmon), framed only by radmon (decision 0234).
PREVIEW_POLICY = (
    "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "connect-src 'none'; form-action 'none'; base-uri 'none'; sandbox; frame-ancestors 'self'"
)
PREVIEW_HEADERS = {
    "Content-Security-Policy": PREVIEW_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def pdf_headers(name: str, sha256: str) -> dict[str, str]:
    return {
        "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}",
        "X-Content-SHA256": sha256,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _approval_required(request: Request) -> bool:
    return bool(request.app.state.settings.report_approval_required)


def _done(session: SessionDep, result: service.ReportResult) -> ReportOut | None:
    if result.refusal is not None:
        # The refused attempt (or the failed signature) is on record: commit it, then refuse (decision 0200).
        session.commit()
        raise result.refusal
    return result.report


def _report(result: ReportOut | None) -> ReportOut:
    if result is None:  # pragma: no cover - the services return a report whenever they do not refuse
        raise MonitorError("no report")
    return result


@router.get("", response_model=list[ReportOut])
def list_reports(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    model: Annotated[str | None, Query(max_length=64, description="only this model's reports")] = None,
) -> list[ReportOut]:
    """Reports, newest period first, each revision with its status, hashes and signatures (every reader role)."""
    return service.list_reports(
        session=session, actor=actor, model_name=model, approval_required=_approval_required(request)
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReportOut)
def generate(body: ReportCreate, request: Request, session: SessionDep, actor: ActorDep) -> ReportOut:
    """Generate the draft of a period (qa, admin): `period` = YYYY-MM, or `period_start` and `period_end`
    (inclusive). A draft of the same period is replaced; a signed report is refused (409) and the attempt audited."""
    result = service.generate(session=session, actor=actor, data=body, approval_required=_approval_required(request))
    return _report(_done(session, result))


@router.get("/{report_id}", response_model=ReportOut)
def get_report(report_id: ReportId, request: Request, session: SessionDep, actor: ActorDep) -> ReportOut:
    """One report revision with its signatures (every reader role)."""
    return service.get_report(
        session=session, actor=actor, report_id=report_id, approval_required=_approval_required(request)
    )


@router.get(
    "/{report_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the PDF exactly as stored"}},
)
def download_pdf(report_id: ReportId, session: SessionDep, actor: ActorDep) -> Response:
    """The PDF as filed (every reader role, viewer included); its SHA-256 is in X-Content-SHA256."""
    found = service.report_pdf(session=session, actor=actor, report_id=report_id)
    return Response(found.content, media_type="application/pdf", headers=pdf_headers(found.name, found.sha256))


@router.get("/{report_id}/preview", response_class=HTMLResponse)
def preview(report_id: ReportId, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    """The report as HTML, sandboxed (no script, opaque origin, framable only by radmon)."""
    html = service.report_html(session=session, actor=actor, report_id=report_id)
    return HTMLResponse(html, headers=PREVIEW_HEADERS)


@router.post("/{report_id}/signatures", response_model=ReportOut)
def sign(report_id: ReportId, body: ReportSign, request: Request, session: SessionDep, actor: ActorDep) -> ReportOut:
    """Sign with your password: `reviewed` (qa), then `approved` (approver) when the policy requires it."""
    result = service.sign(
        session=session, actor=actor, report_id=report_id, data=body, approval_required=_approval_required(request)
    )
    return _report(_done(session, result))


@router.post("/{report_id}/revisions", status_code=status.HTTP_201_CREATED, response_model=ReportOut)
def revise(
    report_id: ReportId, body: RevisionCreate, request: Request, session: SessionDep, actor: ActorDep
) -> ReportOut:
    """Correct a signed report (qa, admin): a new draft revision that references it, to be signed again."""
    result = service.revise(
        session=session, actor=actor, report_id=report_id, data=body, approval_required=_approval_required(request)
    )
    return _report(_done(session, result))


@router.delete("/{report_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_draft(report_id: ReportId, session: SessionDep, actor: ActorDep) -> Response:
    """Discard a draft (qa, admin); a signed report is refused (409) and the attempt audited."""
    _done(session, service.delete_draft(session=session, actor=actor, report_id=report_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
