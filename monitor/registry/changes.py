"""Change requests (rollback, promotion): electronic signatures, quorum, execution, expiry."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM, Actor, Permission, authorize
from monitor.auth.models import User
from monitor.checks.policy import policy_for
from monitor.db import utcnow
from monitor.errors import Conflict, Forbidden, Invalid, MonitorError, NotFound
from monitor.ingest import phi
from monitor.registry import quorum, webhooks
from monitor.registry import service as registry_service
from monitor.registry.models import ChangeRequest, Deployment, Model, ModelVersion, Signature
from monitor.registry.schemas import ChangeRequestCreate, ChangeRequestOut, DecisionCreate, SignatureOut


@dataclass(frozen=True)
class DecisionResult:
    """What a decision did. When `refusal` is set nothing was signed, but something was
    recorded (a failed signature, an expiry): the caller commits, then raises the refusal."""

    change_request: ChangeRequestOut
    refusal: MonitorError | None = None
    notification_id: int | None = None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _newer(a: ModelVersion, b: ModelVersion) -> bool:
    """Whether a was registered after b (the id breaks a tie in registration time)."""
    return (a.created_at, a.id) > (b.created_at, b.id)


def request_content(
    change_request: ChangeRequest, model: Model, from_version: ModelVersion, target: ModelVersion
) -> dict[str, Any]:
    """What a signer signs: the request as displayed, with the artifacts' hashes."""
    return {
        "id": change_request.id,
        "model": model.name,
        "kind": change_request.kind,
        "from_version": {"version": from_version.version, "artifact_sha256": from_version.artifact_sha256},
        "target_version": {"version": target.version, "artifact_sha256": target.artifact_sha256},
        "reason": change_request.reason,
        "alert_id": change_request.alert_id,
        "approvals_required": change_request.approvals_required,
        "requested_by": change_request.requested_by,
        "requested_at": _iso(change_request.requested_at),
        "expires_at": _iso(change_request.expires_at),
    }


def content_hash(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def effective_status(change_request: ChangeRequest, now: datetime) -> str:
    """A pending request past its expiry reads as expired before housekeeping marks it."""
    if change_request.status == "pending" and now >= change_request.expires_at:
        return "expired"
    return change_request.status


def _check_direction(kind: str, model: Model, active: ModelVersion, target: ModelVersion) -> None:
    if target.id == active.id:
        raise Invalid(f"version '{target.version}' is already the active version of '{model.name}'")
    if kind == "rollback" and not _newer(active, target):
        raise Invalid(
            f"a rollback goes to a version older than the active one ('{active.version}'); "
            f"'{target.version}' is newer: request a promotion instead"
        )
    if kind == "promotion" and not _newer(target, active):
        raise Invalid(
            f"a promotion goes to a version newer than the active one ('{active.version}'); "
            f"'{target.version}' is older: request a rollback instead"
        )


def request_change(
    *, session: Session, actor: Actor, data: ChangeRequestCreate, now: datetime | None = None
) -> ChangeRequestOut:
    """File a rollback or promotion (qa, admin); it waits for signed approvals."""
    authorize(actor, Permission.CHANGES_REQUEST)
    phi.check_free_text(field="reason", value=data.reason, record="change request")
    now = now or utcnow()
    model = registry_service.find_model(session=session, name=data.model)
    target = registry_service.find_version(session=session, model=model, version=data.target_version)
    live = registry_service.version_active_at(session=session, model=model, at=None)
    if live is None:
        raise Conflict(f"model '{model.name}' has no active version yet; its first activation is an admin action")
    active = live[0]
    _check_direction(data.kind, model, active, target)
    for due in _pending(session, model_id=model.id, due_by=now):
        _expire(session, due)
    _refuse_second_pending(session, model)
    policy = policy_for(session=session, model_id=model.id)
    change_request = ChangeRequest(
        model_id=model.id,
        kind=data.kind,
        from_version_id=active.id,
        target_version_id=target.id,
        reason=data.reason,
        alert_id=data.alert_id,
        status="pending",
        approvals_required=quorum.required_approvals(policy.approvals_required),
        requested_by=actor.username,
        requested_by_id=actor.user_id,
        requested_at=now,
        expires_at=now + timedelta(hours=policy.change_request_ttl_hours),
    )
    try:
        with session.begin_nested():
            session.add(change_request)
            session.flush()
    except IntegrityError:
        # Another request for the model was filed concurrently and committed first.
        _refuse_second_pending(session, model)
        raise
    content = request_content(change_request, model, active, target)
    audit_service.record(
        session=session,
        actor=actor,
        action="change_request.create",
        entity="change_request",
        entity_id=change_request.id,
        after={**content, "status": "pending", "request_hash": content_hash(content)},
        reason=data.reason,
    )
    return _views(session, [change_request], now)[0]


def _refuse_second_pending(session: Session, model: Model) -> None:
    open_id = session.execute(
        select(ChangeRequest.id).where(ChangeRequest.model_id == model.id, ChangeRequest.status == "pending")
    ).scalar_one_or_none()
    if open_id is not None:
        raise Conflict(
            f"model '{model.name}' already has a pending change request (#{open_id}); "
            "it must be decided or expire before another is filed",
            details={"change_request_id": open_id},
        )


def _pending(session: Session, *, model_id: int | None = None, due_by: datetime | None = None) -> list[ChangeRequest]:
    query = select(ChangeRequest).where(ChangeRequest.status == "pending").order_by(ChangeRequest.id)
    if model_id is not None:
        query = query.where(ChangeRequest.model_id == model_id)
    if due_by is not None:
        query = query.where(ChangeRequest.expires_at <= due_by)
    # SKIP LOCKED: a request being decided right now is left to that decision.
    return list(session.execute(query.with_for_update(skip_locked=True)).scalars())


def _expire(session: Session, change_request: ChangeRequest, *, noticed_by: Actor | None = None) -> None:
    approvals = _approval_count(session, change_request.id)
    change_request.status = "expired"
    change_request.decided_at = change_request.expires_at
    session.flush()
    noticed = f"; noticed when {noticed_by.username} tried to sign" if noticed_by else ""
    audit_service.record(
        session=session,
        actor=SYSTEM,
        action="change_request.expire",
        entity="change_request",
        entity_id=change_request.id,
        before={"status": "pending", "approvals": approvals},
        after={"status": "expired", "approvals": approvals},
        reason=f"no decision by {_iso(change_request.expires_at)}{noticed}",
    )


def expire_due(*, session: Session, now: datetime | None = None) -> list[ChangeRequest]:
    """Mark every pending request past its expiry as expired, audited (housekeeping job)."""
    due = _pending(session, due_by=now or utcnow())
    for change_request in due:
        _expire(session, change_request)
    return due


def _approval_count(session: Session, change_request_id: int) -> int:
    return session.execute(
        select(func.count())
        .select_from(Signature)
        .where(Signature.change_request_id == change_request_id, Signature.decision == "approve")
    ).scalar_one()


def _lock(session: Session, change_request_id: int) -> ChangeRequest:
    """The request, locked until the transaction ends: concurrent decisions take turns, so the
    quorum is counted once and the deployment switches once (SQLite: BEGIN IMMEDIATE)."""
    change_request = session.get(ChangeRequest, change_request_id, with_for_update=True, populate_existing=True)
    if change_request is None:
        raise NotFound(f"no change request #{change_request_id}")
    return change_request


def _refuse_unfit_signer(session: Session, actor: Actor, change_request: ChangeRequest) -> None:
    if change_request.requested_by == actor.username or (
        actor.user_id is not None and change_request.requested_by_id == actor.user_id
    ):
        raise Forbidden(
            f"you requested change request #{change_request.id}; under the two-person rule "
            "someone else must approve or reject it",
            details={"requested_by": change_request.requested_by},
        )
    earlier = session.execute(
        select(Signature).where(Signature.change_request_id == change_request.id, Signature.user_id == actor.user_id)
    ).scalar_one_or_none()
    if earlier is not None:
        raise Conflict(
            f"you already signed change request #{change_request.id} ({earlier.decision}, "
            f"{earlier.signed_at:%Y-%m-%d %H:%M} UTC); each approver counts once",
        )


def decide(
    *,
    session: Session,
    actor: Actor,
    change_request_id: int,
    data: DecisionCreate,
    webhook_url: str = "",
    now: datetime | None = None,
) -> DecisionResult:
    """Approve or reject with an electronic signature; the quorum executes the change at once."""
    authorize(actor, Permission.CHANGES_DECIDE)
    phi.check_free_text(field="comment", value=data.comment, record=f"decision on change request #{change_request_id}")
    now = now or utcnow()
    change_request = _lock(session, change_request_id)
    _refuse_unfit_signer(session, actor, change_request)
    if effective_status(change_request, now) == "expired" and change_request.status == "pending":
        _expire(session, change_request, noticed_by=actor)
        refusal = Conflict(
            f"change request #{change_request.id} expired at {change_request.expires_at:%Y-%m-%d %H:%M} UTC "
            "without a decision; file a new request"
        )
        return DecisionResult(_views(session, [change_request], now)[0], refusal=refusal)
    if change_request.status != "pending":
        raise Conflict(
            f"change request #{change_request.id} is already {change_request.status}; only pending requests take decisions"
        )
    check = auth_service.reauthenticate(
        session=session,
        actor=actor,
        password=data.password.get_secret_value(),
        purpose=f"change_request:{change_request.id}",
        now=now,
    )
    if check.refusal is not None:
        return DecisionResult(_views(session, [change_request], now)[0], refusal=check.refusal)
    assert check.user is not None
    notification_id = _sign(session, change_request, check.user, data, now, webhook_url)
    return DecisionResult(_views(session, [change_request], now)[0], notification_id=notification_id)


def _sign(
    session: Session, change_request: ChangeRequest, signer: User, data: DecisionCreate, now: datetime, webhook_url: str
) -> int | None:
    model, from_version, target = _parts(session, change_request)
    approvals_before = _approval_count(session, change_request.id)
    signature = Signature(
        change_request_id=change_request.id,
        user_id=signer.id,
        username=signer.username,
        printed_name=signer.printed_name,
        decision=data.decision,
        meaning=data.meaning,
        comment=data.comment,
        signed_at=now,
        request_hash=content_hash(request_content(change_request, model, from_version, target)),
    )
    session.add(signature)
    approvals = approvals_before + (data.decision == "approve")
    if data.decision == "reject":
        change_request.status, change_request.decided_at = "rejected", now
    elif approvals >= change_request.approvals_required:
        change_request.status, change_request.decided_at = "approved", now
    session.flush()
    audit_service.record(
        session=session,
        actor=signer.username,
        action=f"change_request.{data.decision}",
        entity="change_request",
        entity_id=change_request.id,
        before={"status": "pending", "approvals": approvals_before},
        after={
            "status": change_request.status,
            "approvals": approvals,
            "approvals_required": change_request.approvals_required,
            "signature": {
                "username": signature.username,
                "printed_name": signature.printed_name,
                "meaning": signature.meaning,
                "signed_at": _iso(signature.signed_at),
                "request_hash": signature.request_hash,
            },
        },
        reason=data.comment or None,
    )
    if change_request.status != "approved":
        return None
    return _execute(session, change_request, signer, model, from_version, target, webhook_url)


def _execute(
    session: Session,
    change_request: ChangeRequest,
    signer: User,
    model: Model,
    from_version: ModelVersion,
    target: ModelVersion,
    webhook_url: str,
) -> int | None:
    """Switch the deployment in the approving transaction; returns the webhook outbox row id."""
    live = registry_service.version_active_at(session=session, model=model, at=None)
    if live is None or live[0].id != from_version.id:
        # Only change requests move a deployed model and only one is pending per model, so
        # this means the history was changed behind the service's back: refuse, loudly.
        raise Conflict(
            f"the active version of '{model.name}' is no longer '{from_version.version}'; "
            f"change request #{change_request.id} cannot be executed as signed"
        )
    actor = auth_service.actor_for(signer)
    deployment = registry_service.deploy(
        session=session,
        actor=actor,
        model=model,
        version=target,
        reason=f"change request #{change_request.id} ({change_request.kind}): {change_request.reason}",
        change_request_id=change_request.id,
    )
    change_request.status, change_request.executed_at = "executed", deployment.activated_at
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="change_request.execute",
        entity="change_request",
        entity_id=change_request.id,
        before={"status": "approved", "active_version": from_version.version},
        after={"status": "executed", "active_version": target.version, "deployment_id": deployment.id},
    )
    if not webhook_url:
        return None
    payload = {
        "event": "deployment.changed",
        "model": model.name,
        "version": target.version,
        "previous_version": from_version.version,
        "artifact_uri": target.artifact_uri,
        "artifact_sha256": target.artifact_sha256,
        "decision_threshold": target.decision_threshold,
        "deployment_id": deployment.id,
        "activated_at": _iso(deployment.activated_at),
        "change_request": {"id": change_request.id, "kind": change_request.kind, "reason": change_request.reason},
    }
    return webhooks.enqueue(session=session, url=webhook_url, deployment=deployment, payload=payload).id


def _parts(session: Session, change_request: ChangeRequest) -> tuple[Model, ModelVersion, ModelVersion]:
    model = session.get(Model, change_request.model_id)
    from_version = session.get(ModelVersion, change_request.from_version_id)
    target = session.get(ModelVersion, change_request.target_version_id)
    assert model is not None and from_version is not None and target is not None
    return model, from_version, target


def get_change_request(
    *, session: Session, actor: Actor, change_request_id: int, now: datetime | None = None
) -> ChangeRequestOut:
    """One request with its signatures."""
    authorize(actor, Permission.MODELS_READ)
    change_request = session.get(ChangeRequest, change_request_id)
    if change_request is None:
        raise NotFound(f"no change request #{change_request_id}")
    return _views(session, [change_request], now or utcnow())[0]


def list_change_requests(
    *,
    session: Session,
    actor: Actor,
    status: str | None = None,
    model_name: str | None = None,
    now: datetime | None = None,
) -> list[ChangeRequestOut]:
    """Newest first, filtered by (effective) status and model."""
    authorize(actor, Permission.MODELS_READ)
    now = now or utcnow()
    query = select(ChangeRequest).order_by(ChangeRequest.id.desc())
    if model_name:
        query = query.where(ChangeRequest.model_id == registry_service.find_model(session=session, name=model_name).id)
    if status == "pending":
        query = query.where(ChangeRequest.status == "pending", ChangeRequest.expires_at > now)
    elif status == "expired":
        query = query.where(
            or_(
                ChangeRequest.status == "expired",
                and_(ChangeRequest.status == "pending", ChangeRequest.expires_at <= now),
            )
        )
    elif status:
        query = query.where(ChangeRequest.status == status)
    return _views(session, list(session.execute(query).scalars()), now)


def _views(session: Session, requests: list[ChangeRequest], now: datetime) -> list[ChangeRequestOut]:
    """Responses for requests, with a handful of queries whatever their number."""
    if not requests:
        return []
    ids = [r.id for r in requests]
    version_ids = {r.from_version_id for r in requests} | {r.target_version_id for r in requests}
    versions = {
        v.id: v for v in session.execute(select(ModelVersion).where(ModelVersion.id.in_(version_ids))).scalars()
    }
    models = {
        m.id: m for m in session.execute(select(Model).where(Model.id.in_({r.model_id for r in requests}))).scalars()
    }
    signatures: dict[int, list[Signature]] = defaultdict(list)
    for signature in session.execute(
        select(Signature).where(Signature.change_request_id.in_(ids)).order_by(Signature.signed_at, Signature.id)
    ).scalars():
        signatures[signature.change_request_id].append(signature)
    deployments = dict(
        session.execute(
            select(Deployment.change_request_id, Deployment.id).where(Deployment.change_request_id.in_(ids))
        ).all()
    )
    views = []
    for r in requests:
        model, from_version, target = models[r.model_id], versions[r.from_version_id], versions[r.target_version_id]
        current_hash = content_hash(request_content(r, model, from_version, target))
        views.append(
            ChangeRequestOut(
                id=r.id,
                model=model.name,
                kind=r.kind,
                from_version=from_version.version,
                target_version=target.version,
                reason=r.reason,
                alert_id=r.alert_id,
                status=effective_status(r, now),
                approvals=sum(s.decision == "approve" for s in signatures[r.id]),
                approvals_required=r.approvals_required,
                requested_by=r.requested_by,
                requested_at=r.requested_at,
                expires_at=r.expires_at,
                decided_at=r.decided_at,
                executed_at=r.executed_at,
                deployment_id=deployments.get(r.id),
                request_hash=current_hash,
                signatures=[_signature_out(s, current_hash) for s in signatures[r.id]],
            )
        )
    return views


def _signature_out(signature: Signature, current_hash: str) -> SignatureOut:
    return SignatureOut(
        username=signature.username,
        printed_name=signature.printed_name,
        decision=signature.decision,
        meaning=signature.meaning,
        comment=signature.comment,
        signed_at=signature.signed_at,
        request_hash=signature.request_hash,
        bound=signature.request_hash == current_hash,
        manifestation=(
            f"Signed by {signature.printed_name} ({signature.username}) on "
            f"{signature.signed_at:%Y-%m-%d %H:%M:%S} UTC; meaning: {signature.meaning}"
        ),
    )
