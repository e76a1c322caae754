"""FastAPI dependencies that turn a request's credentials into an Actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.auth import service as auth_service
from monitor.auth.actors import Actor
from monitor.db import SessionDep
from monitor.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer rmk_...`")


async def bearer_key(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The API key the request presents, not yet checked; 401 when there is none.

    Async only so that FastAPI resolves it on the event loop rather than in a worker thread."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    return credentials.credentials


BearerKey = Annotated[str, Depends(bearer_key)]


def current_actor(request: Request, session: SessionDep, key: BearerKey) -> Actor:
    """The authenticated caller; 401 without valid credentials."""
    actor = auth_service.authenticate_key(session=session, key=key)
    request.state.actor = actor.username
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
