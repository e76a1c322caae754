"""Users, password hashing, API keys, and turning credentials into an Actor."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth.actors import ROLES, Actor, Permission, authorize
from monitor.auth.models import ApiKey, SigningFailure, User
from monitor.db import utcnow
from monitor.errors import Conflict, Forbidden, Invalid, Locked, MonitorError, NotFound, Unauthorized

_hasher = PasswordHasher()
KEY_PREFIX = "rmk_"
PREFIX_LENGTH = 12  # "rmk_" + 8 characters: enough to tell keys apart in a list
MIN_PASSWORD_LENGTH = 8
# Signing lockout: this many wrong passwords within the window lock signing for the lockout.
SIGNING_MAX_FAILURES = 5
SIGNING_FAILURE_WINDOW = timedelta(minutes=15)
SIGNING_LOCKOUT = timedelta(minutes=15)


class SignatureRefused(Forbidden):
    """The signer's re-entered password did not match: no signature was made."""

    code = "signature_refused"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def actor_for(user: User) -> Actor:
    return Actor(username=user.username, role=user.role, user_id=user.id, printed_name=user.printed_name)


def _user_snapshot(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
    }


def get_user(*, session: Session, username: str) -> User:
    """The user with that username, or NotFound."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named '{username}'")
    return user


def create_user(
    *,
    session: Session,
    actor: Actor,
    username: str,
    role: str,
    password: str | None,
    full_name: str = "",
    email: str | None = None,
) -> User:
    """Create a user; service accounts (role ingest) may have no password."""
    authorize(actor, Permission.USERS_MANAGE)
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}; got '{role}'")
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise Invalid("username must be letters, digits, '.', '-' or '_'")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if password is None and role != "ingest":
        raise Invalid(f"a {role} user needs a password (only ingest service accounts may have none)")
    if session.execute(select(User.id).where(User.username == username)).first():
        raise Conflict(f"user '{username}' already exists")
    user = User(
        username=username,
        role=role,
        full_name=full_name,
        email=email,
        password_hash=hash_password(password) if password else None,
        is_active=True,
    )
    session.add(user)
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="user.create",
        entity="user",
        entity_id=username,
        after=_user_snapshot(user),
    )
    return user


def list_users(*, session: Session, actor: Actor) -> list[User]:
    authorize(actor, Permission.USERS_MANAGE)
    return list(session.execute(select(User).order_by(User.username)).scalars())


def disable_user(*, session: Session, actor: Actor, username: str) -> User:
    """Disable a user: their password and keys stop working at once."""
    authorize(actor, Permission.USERS_MANAGE)
    user = get_user(session=session, username=username)
    before = _user_snapshot(user)
    user.is_active = False
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="user.disable",
        entity="user",
        entity_id=username,
        before=before,
        after=_user_snapshot(user),
    )
    return user


def create_api_key(*, session: Session, actor: Actor, username: str, name: str = "") -> tuple[ApiKey, str]:
    """A new key for the user; the plain key is returned once and only its hash is kept."""
    authorize(actor, Permission.USERS_MANAGE)
    user = get_user(session=session, username=username)
    if not user.is_active:
        raise Invalid(f"user '{username}' is disabled")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(user_id=user.id, name=name, prefix=plain[:PREFIX_LENGTH], key_hash=hash_key(plain))
    session.add(key)
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="api_key.create",
        entity="api_key",
        entity_id=key.prefix,
        after={"user": username, "name": name, "prefix": key.prefix},
    )
    return key, plain


def list_api_keys(*, session: Session, actor: Actor, username: str | None = None) -> list[tuple[ApiKey, str]]:
    """Keys with their owner's username (never the key itself)."""
    authorize(actor, Permission.USERS_MANAGE)
    query = select(ApiKey, User.username).join(User, User.id == ApiKey.user_id).order_by(ApiKey.id)
    if username:
        query = query.where(User.username == username)
    return [(key, owner) for key, owner in session.execute(query).all()]


def revoke_api_key(*, session: Session, actor: Actor, prefix: str) -> ApiKey:
    """Revoke a key by its shown prefix; it stops authenticating at once."""
    authorize(actor, Permission.USERS_MANAGE)
    key = session.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one_or_none()
    if key is None:
        raise NotFound(f"no API key with prefix '{prefix}'")
    if key.revoked_at is not None:
        raise Conflict(f"API key '{prefix}' was already revoked at {key.revoked_at.isoformat()}")
    key.revoked_at = utcnow()
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="api_key.revoke",
        entity="api_key",
        entity_id=prefix,
        before={"revoked": False},
        after={"revoked": True},
    )
    return key


def authenticate_key(*, session: Session, key: str) -> Actor:
    """The actor behind a bearer key, or Unauthorized."""
    row = session.execute(
        select(User)
        .join(ApiKey, ApiKey.user_id == User.id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    if row is None or not row.is_active:
        raise Unauthorized("invalid or revoked API key")
    return actor_for(row)


def authenticate_password(*, session: Session, username: str, password: str) -> Actor | None:
    """The actor for a username and password, or None after auditing the failure.

    Returns rather than raises on failure so the caller can commit the audit event."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.is_active or not password_matches(user.password_hash, password):
        audit_service.record(
            session=session,
            actor=username or "anonymous",
            action="auth.login_failed",
            entity="user",
            entity_id=username,
            reason="unknown user" if user is None else ("disabled" if not user.is_active else "wrong password"),
        )
        return None
    return actor_for(user)


@dataclass(frozen=True)
class Reauthentication:
    """The outcome of a signer re-entering their password.

    On refusal the failure has been audited in the session: the caller commits, then raises
    `refusal` (raising first would roll the audit event back with the request)."""

    user: User | None
    refusal: MonitorError | None = None


def reauthenticate(
    *, session: Session, actor: Actor, password: str, purpose: str, now: datetime | None = None
) -> Reauthentication:
    """Check the signer's password again before an electronic signature (21 CFR 11.200)."""
    now = now or utcnow()
    # The row lock serializes a user's concurrent attempts, so the failure count is exact.
    user = session.execute(
        select(User).where(User.id == actor.user_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if user is None or not user.is_active:
        raise Forbidden(f"'{actor.username}' is not an active user and cannot sign")
    if user.signing_locked_until is not None and now < user.signing_locked_until:
        return _refuse(session, user, purpose, "signing locked", _locked(user), failures=None)
    if password_matches(user.password_hash, password):
        session.execute(delete(SigningFailure).where(SigningFailure.user_id == user.id))
        return Reauthentication(user=user)
    return _count_failure(session, user, purpose, now)


def _count_failure(session: Session, user: User, purpose: str, now: datetime) -> Reauthentication:
    window_start = now - SIGNING_FAILURE_WINDOW
    session.execute(delete(SigningFailure).where(SigningFailure.user_id == user.id, SigningFailure.at <= window_start))
    session.add(SigningFailure(user_id=user.id, at=now))
    session.flush()
    failures = session.execute(
        select(func.count()).select_from(SigningFailure).where(SigningFailure.user_id == user.id)
    ).scalar_one()
    if failures >= SIGNING_MAX_FAILURES:
        user.signing_locked_until = now + SIGNING_LOCKOUT
        session.execute(delete(SigningFailure).where(SigningFailure.user_id == user.id))
        session.flush()
        return _refuse(session, user, purpose, "wrong password", _locked(user, after_failure=True), failures=failures)
    left = SIGNING_MAX_FAILURES - failures
    refusal = SignatureRefused(
        f"the password does not match the account of '{user.username}'; nothing was signed "
        f"({left} more wrong {'password locks' if left == 1 else 'passwords lock'} signing for "
        f"{int(SIGNING_LOCKOUT.total_seconds() // 60)} minutes)",
        details={"failures": failures, "max_failures": SIGNING_MAX_FAILURES},
    )
    return _refuse(session, user, purpose, "wrong password", refusal, failures=failures)


def _locked(user: User, *, after_failure: bool = False) -> Locked:
    until = user.signing_locked_until
    assert until is not None
    cause = "wrong password; " if after_failure else ""
    return Locked(
        f"{cause}signing is locked for '{user.username}' until {until:%Y-%m-%d %H:%M} UTC after "
        f"{SIGNING_MAX_FAILURES} wrong passwords within {int(SIGNING_FAILURE_WINDOW.total_seconds() // 60)} minutes; "
        "try again then, or ask an administrator to unlock it",
        details={"locked_until": until.isoformat()},
    )


def _refuse(
    session: Session, user: User, purpose: str, reason: str, refusal: MonitorError, *, failures: int | None
) -> Reauthentication:
    audit_service.record(
        session=session,
        actor=user.username,
        action="signature.failed",
        entity="user",
        entity_id=user.username,
        after={
            "purpose": purpose,
            "failures_in_window": failures,
            "locked_until": user.signing_locked_until.isoformat() if user.signing_locked_until else None,
        },
        reason=reason,
    )
    return Reauthentication(user=None, refusal=refusal)


def unlock_signing(*, session: Session, actor: Actor, username: str) -> User:
    """Lift a signing lockout before it ends (admin); audited."""
    authorize(actor, Permission.USERS_MANAGE)
    user = get_user(session=session, username=username)
    if user.signing_locked_until is None:
        raise Conflict(f"signing is not locked for '{username}'")
    before = {"signing_locked_until": user.signing_locked_until.isoformat()}
    user.signing_locked_until = None
    session.execute(delete(SigningFailure).where(SigningFailure.user_id == user.id))
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="user.unlock_signing",
        entity="user",
        entity_id=username,
        before=before,
        after={"signing_locked_until": None},
    )
    return user
