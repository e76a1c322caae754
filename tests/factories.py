"""Plain factory functions with keyword defaults."""

from __future__ import annotations

from sqlalchemy.orm import Session

from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM, Actor
from monitor.registry import service as registry_service
from monitor.registry.models import Model, ModelVersion
from monitor.registry.schemas import ModelCreate, VersionCreate

PASSWORD = "correct horse battery"
SHA = "ab" * 32


def make_user(
    session: Session, *, role: str = "viewer", username: str | None = None, full_name: str = ""
) -> tuple[Actor, str]:
    """A user of that role and a fresh API key for them."""
    username = username or f"{role}-user"
    user = auth_service.create_user(
        session=session,
        actor=SYSTEM,
        username=username,
        role=role,
        password=PASSWORD,
        full_name=full_name or username.replace("-", " ").title(),
    )
    _, key = auth_service.create_api_key(session=session, actor=SYSTEM, username=username, name="test")
    return auth_service.actor_for(user), key


def make_keys(session: Session) -> dict[str, str]:
    """One API key per role, keyed by role."""
    return {role: make_user(session, role=role)[1] for role in ("ingest", "viewer", "qa", "approver", "admin")}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_model(session: Session, *, name: str = "ich-ct", display_name: str = "ICH triage (head CT)") -> Model:
    return registry_service.create_model(
        session=session,
        actor=SYSTEM,
        data=ModelCreate(name=name, display_name=display_name, modality="CT", body_part="HEAD"),
    )


def make_version(
    session: Session,
    *,
    model: str = "ich-ct",
    version: str = "2.1.0",
    targets: dict[str, float] | None = None,
    decision_threshold: float = 0.5,
    activate: bool = False,
) -> ModelVersion:
    created = registry_service.create_version(
        session=session,
        actor=SYSTEM,
        model_name=model,
        data=VersionCreate(
            version=version,
            artifact_uri=f"s3://models/{model}/{version}.onnx",
            artifact_sha256=SHA,
            targets=targets if targets is not None else {"sensitivity": 0.9, "specificity": 0.8, "auc": 0.85},
            decision_threshold=decision_threshold,
        ),
    )
    if activate:
        registry_service.activate_first(
            session=session, actor=SYSTEM, model_name=model, version=version, reason="go-live"
        )
    return created
