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


def current_actor(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The authenticated caller; 401 without valid credentials."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    actor = auth_service.authenticate_key(session=session, key=credentials.credentials)
    request.state.actor = actor.username
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
