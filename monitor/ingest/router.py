"""HTTP routes for inference and outcome batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from monitor.auth.actors import Actor
from monitor.auth.dependencies import ActorDep
from monitor.db import SessionDep
from monitor.errors import Invalid
from monitor.ingest import service
from monitor.ingest.group_commit import GroupCommit, ingest_commit
from monitor.ingest.schemas import IngestResult, InferenceBatch, OutcomeBatch, records_of, request_body_schema

router = APIRouter(tags=["ingest"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid API key"},
    403: {"description": "the key's role may not post these records"},
    413: {"description": "more records than the batch limit (10000), or a body over 16 MiB"},
    422: {"description": 'the body is not JSON of the form {"records": [...]}'},
}


async def _raw_body(request: Request) -> bytes:
    # Read here, decoded in the (threadpool) endpoint: a 16 MiB batch is parsed with orjson
    # rather than by FastAPI's per-record pydantic validation, which is several times slower.
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]
IngestCommitDep = Annotated[GroupCommit, Depends(ingest_commit)]


def _records(body: bytes) -> list[Any]:
    if not body.strip():
        raise Invalid('the body is empty: send {"records": [...]}')
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the body is not valid JSON: {exc}") from None
    return records_of(payload)


def _end_request_transaction(session: Session) -> None:
    # The key is checked: the batch is stored by the ingest group's own transaction (and commit),
    # so the request's read transaction ends here rather than holding a connection, and on
    # SQLite the write lock, while the request waits for its group.
    session.commit()


def _store(
    request: Request, body: bytes, session: Session, actor: Actor, group: GroupCommit, ingest: Callable[..., service.BatchResult]
) -> Response:
    """Parse the batch, end the request's own transaction and have the ingest group store it."""
    settings = request.app.state.settings
    records = _records(body)
    _end_request_transaction(session)
    result = group.run(
        lambda group_session: ingest(
            session=group_session,
            actor=actor,
            records=records,
            pseudonym_key=settings.pseudonym_key,
            max_records=settings.max_batch_records,
        ),
        records=len(records),
    )
    return Response(orjson.dumps(result.as_dict()), media_type="application/json")


@router.post(
    "/inferences",
    response_model=IngestResult,
    responses=_ERRORS,
    openapi_extra={"requestBody": request_body_schema(InferenceBatch)},
)
def post_inferences(
    request: Request, body: RawBody, session: SessionDep, actor: ActorDep, group: IngestCommitDep
) -> Response:
    """Store up to 10000 inference records: each is accepted, a duplicate or rejected with a reason."""
    return _store(request, body, session, actor, group, service.ingest_inferences)


@router.post(
    "/outcomes",
    response_model=IngestResult,
    responses=_ERRORS,
    openapi_extra={"requestBody": request_body_schema(OutcomeBatch)},
)
def post_outcomes(
    request: Request, body: RawBody, session: SessionDep, actor: ActorDep, group: IngestCommitDep
) -> Response:
    """Store up to 10000 outcome records (by inference_id or study_key); a later outcome supersedes the earlier one."""
    return _store(request, body, session, actor, group, service.ingest_outcomes)
