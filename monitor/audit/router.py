"""HTTP routes for the audit trail: list, verify, CSV export."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from monitor.audit import service
from monitor.audit.schemas import AuditEventOut, AuditPage, VerificationOut
from monitor.auth.dependencies import ActorDep
from monitor.db import SessionDep

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
def list_events(
    session: SessionDep,
    actor: ActorDep,
    entity: str | None = None,
    entity_id: str | None = None,
    by: Annotated[str | None, Query(alias="actor", description="who acted")] = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_seq: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> AuditPage:
    """Newest first; pass next_before_seq as before_seq for the next page."""
    events = service.list_events(
        session=session,
        actor=actor,
        entity=entity,
        entity_id=entity_id,
        actor_name=by,
        action=action,
        since=since,
        until=until,
        limit=limit,
        before_seq=before_seq,
    )
    next_seq = events[-1].seq if len(events) == limit else None
    return AuditPage(events=[AuditEventOut.model_validate(e) for e in events], next_before_seq=next_seq)


@router.get("/verify", response_model=VerificationOut)
def verify(request: Request, session: SessionDep, actor: ActorDep) -> VerificationOut:
    """Recompute the keyed chain and compare it with the anchors outside the database; names the first broken link."""
    anchor_file = request.app.state.settings.audit_anchor_file
    return VerificationOut(**service.verify(session=session, actor=actor, anchor_file=anchor_file).as_dict())


@router.get("/export.csv", response_class=StreamingResponse)
def export_csv(
    session: SessionDep,
    actor: ActorDep,
    entity: str | None = None,
    entity_id: str | None = None,
    by: Annotated[str | None, Query(alias="actor")] = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """Every matching event, oldest first, as CSV (the same filters as the list)."""
    # Materialize inside the request's session: the stream outlives the dependency scope.
    lines = list(
        service.export_csv(
            session=session,
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            actor_name=by,
            action=action,
            since=since,
            until=until,
        )
    )
    return StreamingResponse(
        iter(lines),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="radmon-audit.csv"'},
    )
