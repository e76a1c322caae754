"""HTTP routes for user administration (admin)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from monitor.auth import service
from monitor.auth.dependencies import ActorDep
from monitor.db import SessionDep

router = APIRouter(tags=["users"])


class UnlockOut(BaseModel):
    username: str
    unlocked: bool


@router.post("/users/{username}/unlock", response_model=UnlockOut)
def unlock_user(username: str, session: SessionDep, actor: ActorDep) -> UnlockOut:
    """Lift a sign-in lockout and clear the user's failed sign-ins (admin); audited."""
    service.unlock_login(session=session, actor=actor, username=username)
    return UnlockOut(username=username, unlocked=True)
