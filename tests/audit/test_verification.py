"""Checkpointed chain verification (decision 0233): the audit page rehashes only the events appended
since the last verification, a full verification rehashes everything, and a break stays shown."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from monitor.audit import verification
from monitor.audit.service import GENESIS_HASH
from monitor.auth.actors import Actor
from monitor.db import Database
from monitor.errors import Forbidden
from tests.audit.test_trail import _drop_guard, _seed
from tests.factories import make_model

VIEWER = Actor(username="vera", role="viewer", printed_name="Vera Viewer")


def check(database: Database, *, full: bool = False) -> verification.ChainCheck:
    with database.transaction() as session:
        verify = verification.verify_full if full else verification.verify_since_checkpoint
        return verify(session=session, actor=VIEWER)


def test_the_first_check_is_full_and_later_ones_rehash_only_new_events(fresh_database: Database) -> None:
    _seed(fresh_database)  # events 1 to 5

    first = check(fresh_database)
    with fresh_database.transaction() as session:
        make_model(session, name="ptx-cxr")  # event 6
        make_model(session, name="pe-ct")  # event 7
    second = check(fresh_database)
    third = check(fresh_database)

    assert first.ok and first.scope == "full" and first.checked == 5 and first.through_seq == 5
    assert first.last_full_at == first.verified_at and first.last_full_by == "vera"
    assert (
        second.ok
        and second.scope == "incremental"
        and (second.from_seq, second.checked, second.through_seq) == (6, 2, 7)
    )
    assert second.last_full_at == first.verified_at  # the whole chain was not rehashed again
    assert third.ok and third.checked == 0 and third.through_seq == 7 and third.verified_at == second.verified_at


def test_an_edit_after_the_checkpoint_is_found_incrementally_and_the_break_stays(fresh_database: Database) -> None:
    _seed(fresh_database)
    check(fresh_database)
    with fresh_database.transaction() as session:
        make_model(session, name="ptx-cxr")  # event 6
        make_model(session, name="pe-ct")  # event 7
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET reason = 'nothing to see here' WHERE seq = 7"))

    found = check(fresh_database)
    later = check(fresh_database)

    assert not found.ok and found.first_broken_seq == 7 and "event 7 was altered" in (found.problem or "")
    assert found.scope == "incremental" and found.checked == 2 and found.through_seq == 6
    assert not later.ok and later.first_broken_seq == 7  # not hidden by the next page load


def test_an_edit_to_the_verified_head_is_found(fresh_database: Database) -> None:
    _seed(fresh_database)
    check(fresh_database)  # checkpoint at event 5
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET reason = 'edited' WHERE seq = 5"))

    head = check(fresh_database)

    assert not head.ok and head.first_broken_seq == 5 and "no longer matches" in (head.problem or "")


def test_an_edit_before_the_checkpoint_needs_the_full_check_which_then_stands(fresh_database: Database) -> None:
    _seed(fresh_database)
    check(fresh_database)  # checkpoint at event 5
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET reason = 'edited' WHERE seq = 2"))

    incremental = check(fresh_database)  # rehashes from the checkpoint on: event 2 is before it
    full = check(fresh_database, full=True)

    assert incremental.ok and incremental.checked == 0
    assert not full.ok and full.scope == "full" and full.first_broken_seq == 2 and full.last_full_ok is False
    assert not check(fresh_database).ok  # from then on every page load shows the break


def test_an_empty_chain_verifies_and_service_accounts_may_not(fresh_database: Database) -> None:
    empty = check(fresh_database, full=True)

    assert empty.ok and empty.through_seq == 0 and empty.head_hash == GENESIS_HASH
    with fresh_database.transaction() as session, pytest.raises(Forbidden):
        verification.verify_since_checkpoint(
            session=session, actor=Actor(username="svc", role="ingest", printed_name="svc")
        )
