"""Users, password hashing, API keys, and turning credentials into an Actor."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth import passwords
from monitor.auth.actors import ROLES, Actor, Permission, authorize
from monitor.auth.models import ApiKey, LoginThrottle, SigningFailure, User, UserSession
from monitor.config import Settings
from monitor.db import utcnow
from monitor.errors import Conflict, Forbidden, Invalid, Locked, MonitorError, NotFound, Unauthorized

_hasher = PasswordHasher()
KEY_PREFIX = "rmk_"
PREFIX_LENGTH = 12  # "rmk_" + 8 characters: enough to tell keys apart in a list
MIN_PASSWORD_LENGTH = passwords.MIN_LENGTH
# Column widths: longer input is refused with 400 before anything is stored or audited.
MAX_LENGTHS = {"username": 64, "full_name": 200, "email": 320, "password": passwords.MAX_LENGTH, "key_name": 100}
# Signing lockout: this many wrong passwords within the window lock signing for the lockout.
SIGNING_MAX_FAILURES = 5
SIGNING_FAILURE_WINDOW = timedelta(minutes=15)
SIGNING_LOCKOUT = timedelta(minutes=15)


class SignatureRefused(Forbidden):
    """The signer's re-entered password did not match: no signature was made."""

    code = "signature_refused"


class TooLong(MonitorError):
    """A field longer than its column: a client error (400), never a server one."""

    status_code = 400
    code = "too_long"


def check_lengths(**fields: str | None) -> None:
    """Raise TooLong naming the first field (a MAX_LENGTHS key) longer than its limit."""
    for name, value in fields.items():
        limit = MAX_LENGTHS[name]
        if value is not None and len(value) > limit:
            raise TooLong(f"{name.replace('_', ' ')} must be at most {limit} characters (got {len(value)})")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_dummy_hash: str | None = None


def _stand_in_hash() -> str:
    """A hash of a random password made with the current parameters, for names without a user:
    verifying against it costs what a real user's check costs, so timing does not tell them apart."""
    global _dummy_hash
    if _dummy_hash is None or _hasher.check_needs_rehash(_dummy_hash):
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(24))
    return _dummy_hash


def _verify(user: User | None, password: str) -> bool:
    """The same argon2 work whether or not the user exists, is active or has a password."""
    real = user.password_hash if user is not None and user.password_hash else None
    matched = password_matches(real or _stand_in_hash(), password)
    return matched and real is not None and user is not None and user.is_active


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
    check_lengths(username=username, full_name=full_name, email=email, password=password)
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}; got '{role}'")
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise Invalid("username must be letters, digits, '.', '-' or '_'")
    if password is not None:
        passwords.check_password(username=username, password=password)
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
    """Disable a user: their password, keys and open sessions stop working at once."""
    authorize(actor, Permission.USERS_MANAGE)
    check_lengths(username=username)
    user = get_user(session=session, username=username)
    before = _user_snapshot(user)
    user.is_active = False
    revoke_sessions(session=session, user_id=user.id, reason="user disabled")
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
    check_lengths(username=username, key_name=name)
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


# -- sign-in: throttling, lockout and server-side sessions (decision 0204) ----------------------


@dataclass(frozen=True)
class LoginLimits:
    """How failed sign-ins are slowed and locked, and how long a session lives (RADMON_ settings)."""

    lockout_failures: int = 10
    lockout: timedelta = timedelta(minutes=15)
    idle_timeout: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=8)

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            lockout_failures=settings.login_lockout_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            idle_timeout=timedelta(minutes=settings.session_idle_minutes),
        )


# The first failures are free (typos); after them each failure makes the next check wait
# 2, 4, 8 ... seconds, capped. An address (a hospital's proxy may front many users) gets more
# free failures and is never locked, only slowed.
ACCOUNT_FREE_FAILURES = 3
ADDRESS_FREE_FAILURES = 20
MAX_DELAY = timedelta(seconds=60)
# A quiet hour (and no running lockout) forgets earlier failures.
FAILURE_MEMORY = timedelta(hours=1)
# A session's last-seen time is written at most this often (Dash sends many requests a page).
SESSION_TOUCH_INTERVAL = timedelta(seconds=60)


def failure_delay(failures: int, *, free: int) -> timedelta:
    """The wait before the next check after `failures` consecutive failures."""
    if failures <= free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free, 16)), MAX_DELAY)


@dataclass(frozen=True)
class LoginAttempt:
    """The outcome of a password check. Refusals are audited in the session: the caller commits.

    `retry_after` (seconds) is set when the next check must wait; `locked_until` when the
    account is locked (an administrator may unlock it sooner)."""

    actor: Actor | None
    retry_after: float = 0.0
    locked_until: datetime | None = None


def _throttle(session: Session, scope: str, subject: str) -> LoginThrottle:
    """The account's or address's row, created when new, locked until the caller's transaction ends."""
    query = (
        select(LoginThrottle)
        .where(LoginThrottle.scope == scope, LoginThrottle.subject == subject)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.execute(query).scalar_one_or_none()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = LoginThrottle(scope=scope, subject=subject, failures=0, refused=0)
            session.add(row)
            session.flush()
        return row
    except IntegrityError:  # another process created it first
        return session.execute(query).scalar_one()


def _throttles(session: Session, username: str, address: str | None, now: datetime) -> list[LoginThrottle]:
    rows = [_throttle(session, "account", username)]
    if address:
        rows.append(_throttle(session, "address", address[:64]))
    for row in rows:
        running_lock = row.locked_until is not None and row.locked_until > now
        if row.last_failure_at is not None and now - row.last_failure_at > FAILURE_MEMORY and not running_lock:
            row.failures, row.refused, row.retry_at, row.locked_until = 0, 0, None, None
    return rows


def _blocked_until(rows: list[LoginThrottle], now: datetime) -> datetime | None:
    times = [t for row in rows for t in (row.retry_at, row.locked_until) if t is not None and t > now]
    return max(times, default=None)


def _running_lock(account: LoginThrottle, now: datetime) -> datetime | None:
    return account.locked_until if account.locked_until is not None and account.locked_until > now else None


def authenticate_password(
    *,
    session: Session,
    username: str,
    password: str,
    address: str | None = None,
    now: datetime | None = None,
    limits: LoginLimits = LoginLimits(),
) -> LoginAttempt:
    """Check a username and password under the throttle; every refusal is audited.

    While the account or the address must wait, the attempt is refused without reading the
    password. A name without a user costs the same argon2 work and counts the same failures."""
    check_lengths(username=username, password=password)
    now = now or utcnow()
    rows = _throttles(session, username, address, now)
    blocked_until = _blocked_until(rows, now)
    if blocked_until is not None:
        return _refuse_unread(session, rows, username=username, address=address, until=blocked_until, now=now)
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if _verify(user, password):
        assert user is not None
        account = rows[0]
        account.failures, account.refused, account.retry_at, account.locked_until = 0, 0, None, None
        session.flush()
        return LoginAttempt(actor=actor_for(user))
    return _count_login_failure(session, rows, user, username=username, address=address, now=now, limits=limits)


def _refuse_unread(
    session: Session, rows: list[LoginThrottle], *, username: str, address: str | None, until: datetime, now: datetime
) -> LoginAttempt:
    """Refuse an attempt that came before its wait ended. The first refusal of each wait is audited;
    later ones are counted on the waiting rows and reported with the next failure or unlock, so a
    flood of early attempts cannot flood the append-only audit trail."""
    waiting = [row for row in rows if _blocked_until([row], now) is not None]
    first = any(row.refused == 0 for row in waiting)
    for row in waiting:
        row.refused += 1
    locked = _running_lock(rows[0], now)
    if first:
        audit_service.record(
            session=session,
            actor=username or "anonymous",
            action="auth.login_throttled",
            entity="user",
            entity_id=username,
            after={"address": address, "retry_at": until.isoformat(), "locked": locked is not None},
            reason="account locked" if locked else "too many failed sign-ins",
        )
    session.flush()
    return LoginAttempt(actor=None, retry_after=(until - now).total_seconds(), locked_until=locked)


def _count_login_failure(
    session: Session,
    rows: list[LoginThrottle],
    user: User | None,
    *,
    username: str,
    address: str | None,
    now: datetime,
    limits: LoginLimits,
) -> LoginAttempt:
    refused_meanwhile = max(row.refused for row in rows)
    for row, free in zip(rows, (ACCOUNT_FREE_FAILURES, ADDRESS_FREE_FAILURES), strict=False):
        row.failures += 1
        row.refused = 0
        row.last_failure_at = now
        delay = failure_delay(row.failures, free=free)
        row.retry_at = now + delay if delay else None
    account = rows[0]
    if account.failures >= limits.lockout_failures:
        account.locked_until = now + limits.lockout
    session.flush()
    blocked_until = _blocked_until(rows, now)
    audit_service.record(
        session=session,
        actor=username or "anonymous",
        action="auth.login_failed",
        entity="user",
        entity_id=username,
        after={
            "address": address,
            "failures": account.failures,
            "refused_before_this": refused_meanwhile,
            "retry_at": blocked_until.isoformat() if blocked_until else None,
            "locked_until": account.locked_until.isoformat() if account.locked_until else None,
        },
        reason="unknown user" if user is None else ("disabled" if not user.is_active else "wrong password"),
    )
    return LoginAttempt(
        actor=None,
        retry_after=(blocked_until - now).total_seconds() if blocked_until else 0.0,
        locked_until=_running_lock(account, now),
    )


def sign_in_states(*, session: Session, actor: Actor, now: datetime | None = None) -> dict[str, str]:
    """For each account with failed sign-ins, a line for administrators: locked, slowed or counted."""
    authorize(actor, Permission.USERS_MANAGE)
    now = now or utcnow()
    rows = session.execute(
        select(LoginThrottle).where(LoginThrottle.scope == "account", LoginThrottle.failures > 0)
    ).scalars()
    states = {}
    for row in rows:
        if row.locked_until is not None and row.locked_until > now:
            states[row.subject] = f"locked until {row.locked_until:%Y-%m-%d %H:%M} UTC"
        elif row.last_failure_at is not None and now - row.last_failure_at <= FAILURE_MEMORY:
            states[row.subject] = f"{row.failures} failed"
    return states


def unlock_login(*, session: Session, actor: Actor, username: str) -> None:
    """Clear a user's failed sign-ins and lift their lockout (admin); audited."""
    authorize(actor, Permission.USERS_MANAGE)
    check_lengths(username=username)
    get_user(session=session, username=username)
    row = session.execute(
        select(LoginThrottle).where(LoginThrottle.scope == "account", LoginThrottle.subject == username)
    ).scalar_one_or_none()
    if row is None or (row.failures == 0 and row.locked_until is None):
        raise Conflict(f"sign-in is not locked or slowed for '{username}': there are no failed sign-ins to clear")
    before = {
        "failures": row.failures,
        "refused_while_waiting": row.refused,
        "locked_until": row.locked_until.isoformat() if row.locked_until else None,
    }
    row.failures, row.refused, row.retry_at, row.locked_until = 0, 0, None, None
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="user.unlock_login",
        entity="user",
        entity_id=username,
        before=before,
        after={"failures": 0, "locked_until": None},
    )


@dataclass(frozen=True)
class SignIn:
    """A dashboard sign-in: the actor and the new session's token, or why not."""

    actor: Actor | None
    token: str | None = None
    retry_after: float = 0.0
    locked_until: datetime | None = None


def sign_in(
    *,
    session: Session,
    username: str,
    password: str,
    address: str | None,
    limits: LoginLimits = LoginLimits(),
    now: datetime | None = None,
) -> SignIn:
    """Check a dashboard sign-in and open a session; every outcome is audited (the caller commits)."""
    now = now or utcnow()
    attempt = authenticate_password(
        session=session, username=username, password=password, address=address, now=now, limits=limits
    )
    actor = attempt.actor
    if actor is None:
        return SignIn(actor=None, retry_after=attempt.retry_after, locked_until=attempt.locked_until)
    if not actor.can(Permission.MODELS_READ):
        audit_service.record(
            session=session,
            actor=actor,
            action="auth.login_failed",
            entity="user",
            entity_id=username,
            reason=f"role '{actor.role}' has no dashboard access",
        )
        return SignIn(actor=None)
    token = secrets.token_urlsafe(32)
    assert actor.user_id is not None
    session.add(UserSession(token_hash=hash_key(token), user_id=actor.user_id, created_at=now, last_seen_at=now))
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="auth.login",
        entity="user",
        entity_id=username,
        after={"via": "dashboard", "address": address},
    )
    return SignIn(actor=actor, token=token)


def _live_session(session: Session, token: str) -> tuple[UserSession, User] | None:
    """The unrevoked session a cookie's token names, with its user."""
    found = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == hash_key(token), UserSession.revoked_at.is_(None))
    ).one_or_none()
    return None if found is None else (found[0], found[1])


def _end_reason(user_session: UserSession, user: User, limits: LoginLimits, now: datetime) -> str | None:
    if not user.is_active:
        return "user disabled"
    if now - user_session.last_seen_at > limits.idle_timeout:
        return "idle timeout"
    if now - user_session.created_at > limits.session_lifetime:
        return "expired"
    return None


def session_actor(
    *, session: Session, token: str, limits: LoginLimits = LoginLimits(), now: datetime | None = None
) -> Actor | None:
    """The actor of a live session (its last-seen time refreshed); None once the session was
    revoked, sat idle too long, outlived its lifetime or its user was disabled (it is then ended)."""
    now = now or utcnow()
    live = _live_session(session, token)
    if live is None:
        return None
    user_session, user = live
    ended = _end_reason(user_session, user, limits, now)
    if ended is not None:
        user_session.revoked_at, user_session.revoked_reason = now, ended
    elif now - user_session.last_seen_at >= SESSION_TOUCH_INTERVAL:
        user_session.last_seen_at = now
    session.flush()
    return None if ended else actor_for(user)


def end_session(*, session: Session, token: str, now: datetime | None = None) -> None:
    """Sign out: the session is revoked, so its cookie is worthless even if replayed; audited."""
    live = _live_session(session, token)
    if live is None:
        return
    user_session, user = live
    user_session.revoked_at, user_session.revoked_reason = now or utcnow(), "logout"
    session.flush()
    audit_service.record(
        session=session, actor=user.username, action="auth.logout", entity="user", entity_id=user.username
    )


def revoke_sessions(*, session: Session, user_id: int, reason: str, now: datetime | None = None) -> int:
    """End every open session of a user (password change, disable); how many there were."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def change_password(*, session: Session, actor: Actor, username: str, password: str) -> User:
    """Set a user's password (admin) under the password policy; the user's open sessions end."""
    authorize(actor, Permission.USERS_MANAGE)
    check_lengths(username=username, password=password)
    user = get_user(session=session, username=username)
    passwords.check_password(username=username, password=password)
    user.password_hash = hash_password(password)
    ended = revoke_sessions(session=session, user_id=user.id, reason="password changed")
    session.flush()
    audit_service.record(
        session=session,
        actor=actor,
        action="user.password_change",
        entity="user",
        entity_id=username,
        after={"sessions_ended": ended},
    )
    return user


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
