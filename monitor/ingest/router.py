"""HTTP routes for inference and outcome batches."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from monitor.auth import service as auth_service
from monitor.auth.actors import Actor
from monitor.auth.dependencies import BearerKey
from monitor.errors import Invalid
from monitor.ingest import service
from monitor.ingest.group_commit import GroupCommit, ingest_commit
from monitor.ingest.schemas import (
    InferenceBatch,
    IngestResult,
    OutcomeBatch,
    Plausibility,
    records_of,
    request_body_schema,
)

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


# orjson reads an integer beyond 64 bits as a float, silently losing digits; a body with a run
# of 16 or more digits is read again by the standard library, whose integers are exact, so that
# the parsers can refuse what a float cannot hold (decision 0403).
_LONG_DIGIT_RUN = re.compile(rb"[0-9]{16}")


def _records(body: bytes) -> list[Any]:
    if not body.strip():
        raise Invalid('the body is empty: send {"records": [...]}')
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the body is not valid JSON: {exc}") from None
    if _LONG_DIGIT_RUN.search(body):
        payload = json.loads(body)
    return records_of(payload)


def _store(
    request: Request, body: bytes, key: str, group: GroupCommit, ingest: Callable[..., service.BatchResult]
) -> Response:
    """Parse the batch and have the ingest group authenticate the key and store it.

    The key is checked in the group's transaction, not in one of the request's own: a lone
    request then costs one connection checkout and one commit instead of two of each, and the
    key is valid in the very transaction that stores the records. The body is parsed here, in
    the request's thread; a malformed body is reported only once the key is known to be good
    (a bad key gets 401 whatever it sent)."""
    settings = request.app.state.settings
    try:
        records, malformed = _records(body), None
    except Invalid as exc:
        records, malformed = [], exc

    def work(group_session: Session) -> tuple[Actor, service.BatchResult]:
        actor = auth_service.authenticate_key(session=group_session, key=key)
        if malformed is not None:
            raise malformed
        return actor, ingest(
            session=group_session,
            actor=actor,
            records=records,
            pseudonym_key=settings.pseudonym_key,
            max_records=settings.max_batch_records,
            plausibility=Plausibility.from_settings(settings),
        )

    actor, result = group.run(work, records=len(records))
    request.state.actor = actor.username
    return Response(orjson.dumps(result.as_dict()), media_type="application/json")


@router.post(
    "/inferences",
    response_model=IngestResult,
    responses=_ERRORS,
    openapi_extra={"requestBody": request_body_schema(InferenceBatch)},
)
def post_inferences(request: Request, body: RawBody, key: BearerKey, group: IngestCommitDep) -> Response:
    """Store up to 10000 inference records: each is accepted, a duplicate or rejected with a reason."""
    return _store(request, body, key, group, service.ingest_inferences)


@router.post(
    "/outcomes",
    response_model=IngestResult,
    responses=_ERRORS,
    openapi_extra={"requestBody": request_body_schema(OutcomeBatch)},
)
def post_outcomes(request: Request, body: RawBody, key: BearerKey, group: IngestCommitDep) -> Response:
    """Store up to 10000 outcome records (by inference_id or study_key); a later outcome supersedes the earlier one."""
    return _store(request, body, key, group, service.ingest_outcomes)
