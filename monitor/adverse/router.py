"""HTTP routes of the adverse-event clock: classify, deadlines, reported, the incident dossier."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from monitor.adverse import dossier, service
from monitor.adverse.schemas import AdverseEventOut, ClassifyCreate, JurisdictionOut, ReportedCreate
from monitor.auth.dependencies import ActorDep
from monitor.config import Settings
from monitor.db import SessionDep

router = APIRouter(tags=["adverse events"])

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
Code = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="jurisdiction code")]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


@router.get("/adverse-events/jurisdictions", response_model=list[JurisdictionOut])
def list_jurisdictions(request: Request, actor: ActorDep) -> list[JurisdictionOut]:
    """The jurisdictions configured for reporting, with their deadlines."""
    return service.list_jurisdictions(actor=actor, settings=_settings(request))


@router.get("/adverse-events", response_model=list[AdverseEventOut])
def list_adverse_events(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    open_only: Annotated[bool, Query(alias="open", description="only events with a report still to file")] = False,
) -> list[AdverseEventOut]:
    """Adverse events with their deadlines as a countdown, the nearest open deadline first."""
    return service.list_events(session=session, actor=actor, settings=_settings(request), open_only=open_only)


@router.post("/alerts/{alert_id}/adverse-event", status_code=201, response_model=AdverseEventOut)
def classify(
    alert_id: Id, body: ClassifyCreate, request: Request, session: SessionDep, actor: ActorDep
) -> AdverseEventOut:
    """Classify an incident as a reportable adverse event (qa, admin), signed with the password."""
    outcome = service.classify(session=session, actor=actor, alert_id=alert_id, data=body, settings=_settings(request))
    if outcome.refusal is not None:
        session.commit()  # the failed signature is on record (decision 0200)
        raise outcome.refusal
    assert outcome.event is not None
    return outcome.event


@router.get("/alerts/{alert_id}/adverse-event", response_model=AdverseEventOut)
def get_for_alert(alert_id: Id, request: Request, session: SessionDep, actor: ActorDep) -> AdverseEventOut:
    """The incident's adverse event and its deadlines; 404 when it is not classified."""
    return service.get_for_alert(session=session, actor=actor, alert_id=alert_id, settings=_settings(request))


@router.post("/adverse-events/{event_id}/deadlines/{jurisdiction}/reported", response_model=AdverseEventOut)
def mark_reported(
    event_id: Id, jurisdiction: Code, body: ReportedCreate, request: Request, session: SessionDep, actor: ActorDep
) -> AdverseEventOut:
    """Record the report to one jurisdiction as filed, with its reference (qa, admin), signed."""
    outcome = service.mark_reported(
        session=session,
        actor=actor,
        event_id=event_id,
        jurisdiction=jurisdiction,
        data=body,
        settings=_settings(request),
    )
    if outcome.refusal is not None:
        session.commit()
        raise outcome.refusal
    assert outcome.event is not None
    return outcome.event


@router.get(
    "/adverse-events/{event_id}/dossier.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the incident dossier"}},
)
def dossier_pdf(event_id: Id, request: Request, session: SessionDep, actor: ActorDep) -> Response:
    """The incident dossier (evidence, timeline, signatures) as PDF; the same bytes for the same records."""
    rendered = dossier.render(session=session, actor=actor, event_id=event_id, settings=_settings(request))
    return Response(
        rendered.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="adverse-event-{event_id}-dossier.pdf"',
            "X-Content-SHA256": rendered.sha256,
        },
    )
