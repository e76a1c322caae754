"""HTTP routes for reference sets: JSON records, a CSV/Parquet file, or a baseline build."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from monitor.auth.dependencies import ActorDep
from monitor.db import SessionDep
from monitor.errors import Invalid
from monitor.reference import service
from monitor.reference.models import ReferenceSet
from monitor.reference.schemas import BaselineRequest, ReferenceRecords, ReferenceSetOut

router = APIRouter(prefix="/models", tags=["reference"])

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [ReferenceRecords.model_json_schema(), BaselineRequest.model_json_schema()]}
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": ".csv or .parquet"},
                        "format": {"type": "string", "enum": ["csv", "parquet"]},
                    },
                }
            },
        },
    }
}


def _out(reference_set: ReferenceSet, model: str, version: str) -> ReferenceSetOut:
    fields = {
        name: getattr(reference_set, name) for name in ReferenceSetOut.model_fields if name not in ("model", "version")
    }
    return ReferenceSetOut(model=model, version=version, **fields)


@router.post(
    "/{model}/versions/{version}/reference",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferenceSetOut,
    openapi_extra=_UPLOAD_BODY,
)
async def upload_reference(
    model: str, version: str, request: Request, session: SessionDep, actor: ActorDep
) -> ReferenceSetOut:
    """Replace the version's reference (qa, admin): {"records": [...]} (inference-shaped plus
    "label"), a multipart `file` (.csv or .parquet: feature columns, score, prediction, label,
    optional occurred_at), or {"source": "baseline"} to build it from the policy's baseline period."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("send the reference as a multipart field named 'file'")
        content = await upload.read()
        chosen = form.get("format")
        created = await run_in_threadpool(
            service.upload_file,
            session=session,
            actor=actor,
            model_name=model,
            version=version,
            content=content,
            filename=upload.filename,
            format=chosen if isinstance(chosen, str) else None,
        )
        return _out(created, model, version)
    try:
        body = await request.json()
    except ValueError:
        raise Invalid(
            'the body is not JSON; send {"records": [...]}, {"source": "baseline"} or a multipart \'file\''
        ) from None
    if isinstance(body, dict) and body.get("source") == "baseline":
        _parse(BaselineRequest, body)
        created = await run_in_threadpool(
            service.build_baseline, session=session, actor=actor, model_name=model, version=version
        )
    else:
        records = _parse(ReferenceRecords, body).records
        created = await run_in_threadpool(
            service.upload_records, session=session, actor=actor, model_name=model, version=version, records=records
        )
    return _out(created, model, version)


def _parse(schema: type[ReferenceRecords | BaselineRequest], body: Any) -> Any:
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]} for e in exc.errors()]
        raise Invalid("; ".join(f"{d['field']}: {d['reason']}" for d in details[:5]), details=details) from None


@router.get("/{model}/versions/{version}/reference", response_model=list[ReferenceSetOut])
def list_references(model: str, version: str, session: SessionDep, actor: ActorDep) -> list[ReferenceSetOut]:
    """The version's reference sets, newest first (one active, older ones superseded)."""
    return [
        _out(s, m, v) for s, m, v in service.list_sets(session=session, actor=actor, model_name=model, version=version)
    ]
