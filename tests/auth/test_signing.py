"""Re-authentication for electronic signatures and the signing lockout (service level)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM, Actor
from monitor.auth.models import SigningFailure
from monitor.errors import Conflict, Forbidden, Locked
from tests.factories import PASSWORD, make_user

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def signer(session: Session) -> Actor:
    return make_user(session, role="approver", username="approver-a", full_name="Dr. Ada Approver")[0]


def attempt(session: Session, signer: Actor, password: str, at: datetime) -> auth_service.Reauthentication:
    return auth_service.reauthenticate(session=session, actor=signer, password=password, purpose="test", now=at)


def failures_audited(session: Session) -> int:
    return session.execute(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "signature.failed")
    ).scalar_one()


def test_the_right_password_reauthenticates(session: Session, signer: Actor) -> None:
    result = attempt(session, signer, PASSWORD, T0)
    assert result.refusal is None and result.user is not None and result.user.printed_name == "Dr. Ada Approver"
    assert failures_audited(session) == 0


def test_a_wrong_password_is_refused_counted_and_audited(session: Session, signer: Actor) -> None:
    result = attempt(session, signer, "wrong password", T0)
    assert result.user is None and isinstance(result.refusal, Forbidden)
    assert result.refusal.details == {"failures": 1, "max_failures": 5}
    assert failures_audited(session) == 1


def test_the_fifth_failure_within_fifteen_minutes_locks_signing_for_fifteen_minutes(
    session: Session, signer: Actor
) -> None:
    for minute in range(4):
        assert not isinstance(attempt(session, signer, "nope", T0 + timedelta(minutes=minute * 3)).refusal, Locked)
    fifth_at = T0 + timedelta(minutes=14)
    fifth = attempt(session, signer, "nope", fifth_at)
    assert isinstance(fifth.refusal, Locked) and fifth.refusal.status_code == 423
    assert fifth.refusal.details == {"locked_until": (fifth_at + timedelta(minutes=15)).isoformat()}
    assert "09:29 UTC" in fifth.refusal.message

    during = attempt(session, signer, PASSWORD, fifth_at + timedelta(minutes=14, seconds=59))
    assert isinstance(during.refusal, Locked), "the right password does not lift the lockout"
    after = attempt(session, signer, PASSWORD, fifth_at + timedelta(minutes=15))
    assert after.refusal is None
    assert failures_audited(session) == 6  # five wrong passwords and one attempt while locked


def test_failures_older_than_the_window_do_not_count(session: Session, signer: Actor) -> None:
    # Four minutes apart, no fifteen-minute window ever holds five failures.
    counts = []
    for n in range(10):
        result = attempt(session, signer, "nope", T0 + timedelta(minutes=4 * n))
        assert not isinstance(result.refusal, Locked), n
        counts.append(result.refusal.details["failures"])  # type: ignore[union-attr]
    assert counts == [1, 2, 3, 4, 4, 4, 4, 4, 4, 4]
    assert session.execute(select(func.count()).select_from(SigningFailure)).scalar_one() == 4


def test_a_sliding_window_not_a_fixed_one(session: Session, signer: Actor) -> None:
    attempt(session, signer, "nope", T0)
    for minute in (14, 16, 17, 18):
        assert not isinstance(attempt(session, signer, "nope", T0 + timedelta(minutes=minute)).refusal, Locked)
    # Failures at 14, 16, 17, 18 and 19 are five within fifteen minutes, although the first
    # failure (minute 0) fell out of the window long ago.
    assert isinstance(attempt(session, signer, "nope", T0 + timedelta(minutes=19)).refusal, Locked)


def test_a_successful_signature_clears_earlier_failures(session: Session, signer: Actor) -> None:
    for minute in range(4):
        attempt(session, signer, "nope", T0 + timedelta(minutes=minute))
    assert attempt(session, signer, PASSWORD, T0 + timedelta(minutes=5)).refusal is None
    result = attempt(session, signer, "nope", T0 + timedelta(minutes=6))
    assert not isinstance(result.refusal, Locked) and result.refusal.details["failures"] == 1  # type: ignore[union-attr]


def test_an_administrator_can_lift_a_lockout(session: Session, signer: Actor) -> None:
    for minute in range(5):
        attempt(session, signer, "nope", T0 + timedelta(minutes=minute))
    assert isinstance(attempt(session, signer, PASSWORD, T0 + timedelta(minutes=6)).refusal, Locked)
    with pytest.raises(Forbidden):
        auth_service.unlock_signing(session=session, actor=signer, username="approver-a")
    auth_service.unlock_signing(session=session, actor=SYSTEM, username="approver-a")
    assert attempt(session, signer, PASSWORD, T0 + timedelta(minutes=7)).refusal is None
    with pytest.raises(Conflict):
        auth_service.unlock_signing(session=session, actor=SYSTEM, username="approver-a")
    (event,) = session.execute(select(AuditEvent).where(AuditEvent.action == "user.unlock_signing")).scalars()
    assert event.before["signing_locked_until"] is not None and event.after == {"signing_locked_until": None}


def test_a_disabled_user_cannot_sign(session: Session, signer: Actor) -> None:
    auth_service.disable_user(session=session, actor=SYSTEM, username="approver-a")
    with pytest.raises(Forbidden):
        attempt(session, signer, PASSWORD, T0)
