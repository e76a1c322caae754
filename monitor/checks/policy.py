"""Monitoring policy per model: read with defaults (for services), read and replace (validated,
audited) for the API and the dashboard. Imports only models, schemas, the registry and the audit
trail, so every domain that needs a model's policy can import it without a cycle."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.checks.models import PolicyRecord
from monitor.checks.schemas import MonitoringPolicy, PolicyOut
from monitor.db import utcnow
from monitor.registry import quorum
from monitor.registry import service as registry_service


def policy_for(*, session: Session, model_id: int) -> MonitoringPolicy:
    """The model's policy, or the defaults when none was saved (no authorization: for services)."""
    record = session.execute(select(PolicyRecord).where(PolicyRecord.model_id == model_id)).scalar_one_or_none()
    return MonitoringPolicy() if record is None else MonitoringPolicy.model_validate(record.body)


def get_policy(*, session: Session, actor: Actor, model_name: str) -> PolicyOut:
    authorize(actor, Permission.MODELS_READ)
    model = registry_service.find_model(session=session, name=model_name)
    record = session.execute(select(PolicyRecord).where(PolicyRecord.model_id == model.id)).scalar_one_or_none()
    policy = MonitoringPolicy() if record is None else MonitoringPolicy.model_validate(record.body)
    return PolicyOut(
        **policy.model_dump(),
        model=model.name,
        updated_at=record.updated_at if record else None,
        updated_by=record.updated_by if record else None,
    )


def put_policy(*, session: Session, actor: Actor, model_name: str, policy: MonitoringPolicy) -> PolicyOut:
    """Replace the model's policy (qa, admin); the change is audited with before and after."""
    authorize(actor, Permission.POLICY_WRITE)
    model = registry_service.find_model(session=session, name=model_name)
    record = session.execute(select(PolicyRecord).where(PolicyRecord.model_id == model.id)).scalar_one_or_none()
    before = None if record is None else record.body
    body = policy.model_dump(mode="json")
    quorum.check_policy_change(session=session, actor=actor, model_name=model.name, before=before, after=body)
    if record is None:
        record = PolicyRecord(model_id=model.id, body=body, updated_at=utcnow(), updated_by=actor.username)
        session.add(record)
    else:
        record.body, record.updated_at, record.updated_by = body, utcnow(), actor.username
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="policy.update",
        entity="model",
        entity_id=model.name,
        before=before,
        after=body,
    )
    return PolicyOut(**policy.model_dump(), model=model.name, updated_at=record.updated_at, updated_by=actor.username)
