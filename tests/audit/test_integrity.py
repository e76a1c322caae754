"""Audit integrity that does not depend on the database (issue 14 item 4, decision 0205): the chain
is keyed by RADMON_AUDIT_KEY, its head is anchored outside the database, and checkpoints carry a
MAC. Each test plays what someone with full rights on the database (a superuser, or the owner who
dropped the triggers) can do, and shows that verification names it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from monitor.alerts import audit_anchor as jobs
from monitor.alerts.models import Notification
from monitor.audit import anchors, verification
from monitor.audit import service as audit_service
from monitor.audit.models import AuditEvent, AuditVerification
from monitor.auth.actors import SYSTEM
from monitor.cli import app as cli_app
from monitor.config import Settings, get_settings, load_settings
from monitor.db import Database
from tests.audit.test_trail import _drop_guard, _seed
from tests.audit.test_verification import VIEWER
from tests.factories import auth, make_model
from tests.registry.conftest import live_client  # noqa: F401  (fixture)

runner = CliRunner()


@pytest.fixture
def anchor_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The anchor file of this test, for the process settings (CLI, services) and the API alike."""
    path = tmp_path / "anchors" / "radmon-audit-anchors.jsonl"
    monkeypatch.setenv("RADMON_AUDIT_ANCHOR_FILE", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def job_settings(database: Database, tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(database_url=database.url, outbox_dir=str(tmp_path / "outbox"), **overrides)


def verify(database: Database) -> audit_service.Verification:
    with database.transaction() as session:
        return audit_service.verify(session=session, actor=SYSTEM)


def rehash_without_the_key(database: Database, *, first_seq: int, unkeyed_from: int, last_seq: int = 2**62) -> None:
    """What the old project's chain function lets a superuser do: rewrite the links from first_seq
    on with plain SHA-256 (key_id cleared from unkeyed_from on), as if the key were not needed."""
    with database.engine.begin() as connection:
        rows = connection.execute(
            select(*audit_service.HASHED_COLUMNS)
            .where(AuditEvent.seq >= first_seq - 1, AuditEvent.seq <= last_seq)
            .order_by(AuditEvent.seq)
        ).all()
        prev_hash = rows[0].hash if first_seq > 1 else audit_service.GENESIS_HASH
        for row in rows[1:] if first_seq > 1 else rows:
            event = row._asdict()
            if row.seq >= unkeyed_from:
                event["key_id"] = None
            body = audit_service.canonical_json(type("Event", (), event)())
            forged = hashlib.sha256((prev_hash + body).encode()).hexdigest()
            connection.execute(
                text("UPDATE audit_events SET prev_hash = :p, hash = :h, key_id = :k WHERE seq = :s"),
                {"p": prev_hash, "h": forged, "k": event["key_id"], "s": row.seq},
            )
            prev_hash = forged


def _drop_delete_guard(database: Database) -> None:
    with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(text("DROP TRIGGER audit_events_no_update ON audit_events"))
        else:
            connection.execute(text("DROP TRIGGER audit_events_no_delete"))


def test_events_are_hmac_links_under_the_audit_key(fresh_database: Database) -> None:
    _seed(fresh_database)
    key = get_settings().audit_key.encode()
    with fresh_database.transaction() as session:
        events = list(session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())
    assert {event.key_id for event in events} == {audit_service.key_id_of(key)}
    first = events[0]
    plain = hashlib.sha256((first.prev_hash + audit_service.canonical_json(first)).encode()).hexdigest()
    assert first.hash != plain  # the database's content alone does not give the hash
    result = verify(fresh_database)
    assert result.ok and result.events == 5 and result.keyed_from_seq == 1


def test_an_edit_rehashed_without_the_key_is_detected(fresh_database: Database) -> None:
    """The finding: edit an event, re-hash every later one with the chain function; verify said ok."""
    _seed(fresh_database)
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    rehash_without_the_key(fresh_database, first_seq=3, unkeyed_from=3)

    result = verify(fresh_database)
    assert not result.ok and result.first_broken_seq == 3
    assert "plain SHA-256 link after keyed events" in (result.problem or "")


def test_an_edit_rehashed_with_a_guessed_key_is_detected(fresh_database: Database) -> None:
    _seed(fresh_database)
    _drop_guard(fresh_database)
    guessed = b"not-the-audit-key-0123456789"
    with fresh_database.engine.begin() as connection:
        rows = connection.execute(
            select(*audit_service.HASHED_COLUMNS).where(AuditEvent.seq >= 2).order_by(AuditEvent.seq)
        ).all()
        prev_hash = rows[0].hash
        for row in rows[1:]:
            event = {**row._asdict(), "actor": "mallory" if row.seq == 3 else row.actor}
            forged = audit_service.chain_hash(prev_hash, type("Event", (), event)(), guessed)
            connection.execute(
                text("UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"a": event["actor"], "p": prev_hash, "h": forged, "s": row.seq},
            )
            prev_hash = forged

    result = verify(fresh_database)
    assert not result.ok and result.first_broken_seq == 3 and "event 3 was altered" in (result.problem or "")


def test_a_chain_under_another_key_is_named(fresh_database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(fresh_database)
    monkeypatch.setenv("RADMON_AUDIT_KEY", "a-different-audit-key-0123456789")
    get_settings.cache_clear()
    try:
        result = verify(fresh_database)
    finally:
        get_settings.cache_clear()
    assert not result.ok and result.first_broken_seq == 1 and "keyed with another key" in (result.problem or "")


def test_a_legacy_prefix_stays_verifiable_and_is_covered_by_the_first_keyed_event(fresh_database: Database) -> None:
    """Events from before the key keep their plain links; the first keyed event seals them."""
    _seed(fresh_database)
    _drop_guard(fresh_database)
    rehash_without_the_key(fresh_database, first_seq=1, unkeyed_from=1)  # as if written before 0205
    with fresh_database.transaction() as session:
        make_model(session, name="ptx-cxr")  # event 6, keyed
    result = verify(fresh_database)
    assert result.ok and result.keyed_from_seq == 6 and result.events == 6

    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    rehash_without_the_key(fresh_database, first_seq=2, unkeyed_from=2, last_seq=5)  # the plain part
    broken = verify(fresh_database)
    assert not broken.ok and broken.first_broken_seq == 6
    assert "does not point at the hash of event 5" in (broken.problem or "")


# ---------------------------------------------------------------------------- anchors


def _seed_with_recipients(database: Database, *recipients: str) -> None:
    """Events 1 to 6, the sixth registering a model whose alerts go to the recipients."""
    _seed(database)
    with database.transaction() as session:
        make_model(session, name="ptx-cxr").alert_recipients = list(recipients)


def test_the_anchor_job_appends_a_signed_head_and_sends_it(
    fresh_database: Database, tmp_path: Path, anchor_file: Path
) -> None:
    _seed_with_recipients(fresh_database, "qa@hospital.example", "cmio@hospital.example")
    settings = job_settings(
        fresh_database, tmp_path, webhook_url="https://siem.hospital.example/hook", webhook_secret="s" * 20
    )
    result = jobs.anchor_head(database=fresh_database, settings=settings)

    assert result.ok and result.seq == 6 and result.sent_to == "sent to 2 alert recipients and the webhook"
    (line,) = anchor_file.read_text().splitlines()
    body = json.loads(line)
    assert (body["seq"], body["hash"], body["keyed_from_seq"]) == (6, result.hash, 1)
    with fresh_database.transaction() as session:
        rows = session.execute(select(Notification).where(Notification.category == "audit_anchor")).scalars().all()
        assert {(row.channel, row.recipient) for row in rows} == {
            ("email", "qa@hospital.example"),
            ("email", "cmio@hospital.example"),
            ("webhook", "https://siem.hospital.example/hook"),
        }
        email = next(row for row in rows if row.channel == "email")
        assert result.hash in email.payload["text"] and "event 6" in email.payload["subject"]
        head = session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)).scalar()
    assert head == 6  # anchoring adds no event: the anchored head stays the newest

    later = verify(fresh_database)
    assert later.ok and later.anchors == 1 and later.anchored_seq == 6


def _anchor_then_delete(database: Database, tmp_path: Path, condition: str) -> audit_service.Verification:
    """Events 1 to 5 anchored, then the triggers bypassed and the matching events deleted."""
    _seed(database)
    jobs.anchor_head(database=database, settings=job_settings(database, tmp_path))
    _drop_delete_guard(database)
    with database.engine.begin() as connection:
        connection.execute(text(f"DELETE FROM audit_events WHERE {condition}"))
    return verify(database)


def test_deleting_the_newest_event_is_detected_against_the_anchor(
    fresh_database: Database, tmp_path: Path, anchor_file: Path
) -> None:
    result = _anchor_then_delete(fresh_database, tmp_path, "seq = 5")
    assert not result.ok and result.first_broken_seq == 5
    assert "event 5 was anchored on" in (result.problem or "") and "events 5 to 5 were deleted" in (
        result.problem or ""
    )


def test_a_truncated_trail_is_detected_against_the_anchor(
    fresh_database: Database, tmp_path: Path, anchor_file: Path
) -> None:
    result = _anchor_then_delete(fresh_database, tmp_path, "seq >= 3")
    assert not result.ok and result.first_broken_seq == 3 and "events 3 to 5 were deleted" in (result.problem or "")

    with fresh_database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events"))
    emptied = verify(fresh_database)
    assert not emptied.ok and "the chain now ends at event 0" in (emptied.problem or "")


def test_a_whole_chain_rehashed_without_the_key_is_caught_by_the_anchor_through_the_api(
    fresh_database: Database,
    tmp_path: Path,
    anchor_file: Path,
    live_client: Callable[..., TestClient],  # noqa: F811
) -> None:
    """Every link rewritten as a plain SHA-256 chain walks clean; only the anchor can tell."""
    key = _seed(fresh_database)
    jobs.anchor_head(database=fresh_database, settings=job_settings(fresh_database, tmp_path))
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    rehash_without_the_key(fresh_database, first_seq=1, unkeyed_from=1)

    answer = live_client(audit_anchor_file=str(anchor_file)).get("/api/v1/audit/verify", headers=auth(key)).json()
    assert answer["ok"] is False and answer["first_broken_seq"] == 5
    assert "event 5 does not match its anchor" in answer["problem"] and answer["anchors"] == 1


def test_an_edited_anchor_line_is_refused(fresh_database: Database, tmp_path: Path, anchor_file: Path) -> None:
    _seed(fresh_database)
    jobs.anchor_head(database=fresh_database, settings=job_settings(fresh_database, tmp_path))
    body = json.loads(anchor_file.read_text())
    body["seq"] = 3  # moved back, to cover a deletion of events 4 and 5
    anchor_file.write_text(json.dumps(body) + "\n")
    result = verify(fresh_database)
    assert not result.ok and "line 1 of the anchor file" in (result.problem or "")
    assert "not signed by RADMON_AUDIT_KEY" in (result.problem or "")


def test_a_broken_chain_is_not_anchored_and_the_recipients_are_told(
    fresh_database: Database, tmp_path: Path, anchor_file: Path
) -> None:
    _seed_with_recipients(fresh_database, "qa@hospital.example")
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET reason = 'edited' WHERE seq = 2"))

    result = jobs.anchor_head(database=fresh_database, settings=job_settings(fresh_database, tmp_path))

    assert not result.ok and result.first_broken_seq == 2 and not anchor_file.exists()
    with fresh_database.transaction() as session:
        (email,) = session.execute(select(Notification).where(Notification.category == "audit_anchor")).scalars()
        failed = session.execute(select(AuditEvent).where(AuditEvent.action == "audit.verify_failed")).scalar_one()
    assert "verification failed" in email.payload["subject"] and "event 2 was altered" in email.payload["text"]
    assert failed.entity_id == "2" and "event 2 was altered" in (failed.reason or "")


def test_the_anchor_job_is_scheduled_daily_on_a_fixed_clock() -> None:
    from monitor import scheduler

    job_id, function, trigger = scheduler.AUDIT_ANCHOR_JOB
    assert (job_id, function) == ("audit:anchor", "monitor.alerts.audit_anchor:anchor_head")
    assert str(trigger) == "cron[hour='2', minute='15']"


# ---------------------------------------------------------------------------- checkpoints


def test_a_forged_checkpoint_is_ignored(fresh_database: Database) -> None:
    """Rewrite the checkpoint's head event and insert a checkpoint vouching for the new hash:
    without the key's MAC the dashboard's check does not trust it."""
    _seed(fresh_database)
    with fresh_database.transaction() as session:
        verification.verify_full(session=session, actor=VIEWER)  # genuine checkpoint through event 5
    _drop_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5"))
    rehash_without_the_key(fresh_database, first_seq=5, unkeyed_from=99)  # keyed, rehashed with sha256
    with fresh_database.transaction() as session:
        forged_hash = session.execute(select(AuditEvent.hash).where(AuditEvent.seq == 5)).scalar_one()
        genuine = session.execute(select(AuditVerification)).scalar_one()
        session.add(
            AuditVerification(
                verified_at=genuine.verified_at,
                verified_by="vera",
                scope="full",
                from_seq=1,
                through_seq=5,
                head_hash=forged_hash,
                events_checked=5,
                ok=True,
                mac=genuine.mac,  # a MAC copied from another row does not fit this one
            )
        )

    found = verification.verify_since_checkpoint
    with fresh_database.transaction() as session:
        check = found(session=session, actor=VIEWER)
    assert not check.ok and check.first_broken_seq == 5 and "event 5 no longer matches" in (check.problem or "")


def test_checkpoints_carry_a_mac_over_their_content(fresh_database: Database) -> None:
    _seed(fresh_database)
    with fresh_database.transaction() as session:
        verification.verify_full(session=session, actor=VIEWER)
        row = session.execute(select(AuditVerification)).scalar_one()
        key = get_settings().audit_key.encode()
        assert verification.genuine(row, [key])
        row.events_checked = 4
        assert not verification.genuine(row, [key])
        session.rollback()


def test_reading_an_anchor_file_that_does_not_exist_gives_no_anchors(tmp_path: Path) -> None:
    assert anchors.read(tmp_path / "none.jsonl", keys=[b"k" * 16]) == []


# ---------------------------------------------------------------------------- the commands


def test_radmon_audit_anchor_then_verify_names_a_deleted_newest_event(
    fresh_database: Database, anchor_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADMON_DATABASE_URL", fresh_database.url)
    _seed(fresh_database)
    anchored = runner.invoke(cli_app, ["audit", "anchor"])
    assert anchored.exit_code == 0 and "anchored event 5" in anchored.stdout and str(anchor_file) in anchored.stdout
    verified = runner.invoke(cli_app, ["audit", "verify"])
    assert verified.exit_code == 0 and "keyed from event 1; matches 1 anchors through event 5" in verified.stdout

    _drop_delete_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE seq = 5"))
    broken = runner.invoke(cli_app, ["audit", "verify"])
    assert broken.exit_code == 1 and "Traceback" not in broken.output
    assert "broken at event 5" in broken.stderr and "events 5 to 5 were deleted" in broken.stderr
    refused = runner.invoke(cli_app, ["audit", "anchor"])
    assert refused.exit_code == 1 and "nothing anchored" in refused.stderr
    assert len(anchor_file.read_text().splitlines()) == 1


def test_create_app_role_on_sqlite_says_it_is_for_postgresql(
    fresh_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fresh_database.dialect != "sqlite":
        pytest.skip("PostgreSQL has roles: tests/audit/test_app_role.py")
    monkeypatch.setenv("RADMON_DATABASE_URL", fresh_database.url)
    result = runner.invoke(cli_app, ["db", "create-app-role", "--password-stdin"], input="x" * 20)
    assert result.exit_code == 1 and "the app role is for PostgreSQL" in result.stderr


# ---------------------------------------------------------------------------- key rotation


def test_a_rotated_key_keeps_old_events_and_anchors_verifiable_and_a_retired_key_cannot_append(
    fresh_database: Database, tmp_path: Path, anchor_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(fresh_database)  # events 1 to 5 under the first key
    jobs.anchor_head(database=fresh_database, settings=job_settings(fresh_database, tmp_path))
    retired = get_settings().audit_key
    monkeypatch.setenv("RADMON_AUDIT_KEY", "the-new-audit-key-0123456789")
    monkeypatch.setenv("RADMON_AUDIT_PREVIOUS_KEYS", retired)
    get_settings.cache_clear()
    with fresh_database.transaction() as session:
        make_model(session, name="ptx-cxr")  # event 6, under the new key
    rotated = verify(fresh_database)
    assert rotated.ok and rotated.events == 6 and rotated.keyed_from_seq == 1 and rotated.anchors == 1

    monkeypatch.setenv("RADMON_AUDIT_PREVIOUS_KEYS", "")
    get_settings.cache_clear()
    forgotten = verify(fresh_database)
    assert not forgotten.ok and forgotten.first_broken_seq == 1
    assert "RADMON_AUDIT_PREVIOUS_KEYS" in (forgotten.problem or "")

    monkeypatch.setenv("RADMON_AUDIT_PREVIOUS_KEYS", retired)
    get_settings.cache_clear()
    with fresh_database.engine.begin() as connection:  # someone holding the leaked retired key appends
        head = connection.execute(select(AuditEvent.__table__).where(AuditEvent.seq == 6)).one()
        forged = {**head._asdict(), "seq": 7, "actor": "mallory", "prev_hash": head.hash}
        forged["key_id"] = audit_service.key_id_of(retired.encode())
        forged["hash"] = audit_service.chain_hash(head.hash, type("Event", (), forged)(), retired.encode())
        connection.execute(AuditEvent.__table__.insert().values(**forged))
    result = verify(fresh_database)
    assert not result.ok and result.first_broken_seq == 7 and "forged with a retired key" in (result.problem or "")


def test_an_unwritable_anchor_file_is_one_line_naming_the_variable(
    fresh_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADMON_DATABASE_URL", fresh_database.url)
    (tmp_path / "not-a-directory").write_text("")
    monkeypatch.setenv("RADMON_AUDIT_ANCHOR_FILE", str(tmp_path / "not-a-directory" / "anchors.jsonl"))
    _seed(fresh_database)
    result = runner.invoke(cli_app, ["audit", "anchor"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot append to the anchor file" in result.stderr and "RADMON_AUDIT_ANCHOR_FILE" in result.stderr


def test_the_anchor_email_leaves_through_the_outbox(
    fresh_database: Database, tmp_path: Path, anchor_file: Path
) -> None:
    from monitor.alerts import jobs as alerts_jobs

    _seed_with_recipients(fresh_database, "qa@hospital.example")
    settings = job_settings(fresh_database, tmp_path)
    anchored = jobs.anchor_head(database=fresh_database, settings=settings)
    report = alerts_jobs.deliver_due(database=fresh_database, settings=settings)

    assert report.sent == 1 and len(report.files) == 1
    message = Path(report.files[0]).read_text()
    assert "Subject: [radmon] audit trail anchor: event 6" in message and anchored.hash in message


def test_the_audit_page_check_finds_a_deleted_newest_event_against_the_anchor(
    fresh_database: Database, tmp_path: Path, anchor_file: Path
) -> None:
    """The dashboard's incremental check, with nothing new to rehash, still compares the anchors."""
    _seed(fresh_database)
    with fresh_database.transaction() as session:
        verification.verify_full(session=session, actor=VIEWER)  # checkpoint through event 5
        make_model(session, name="ptx-cxr")  # event 6
    jobs.anchor_head(database=fresh_database, settings=job_settings(fresh_database, tmp_path))
    _drop_delete_guard(fresh_database)
    with fresh_database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE seq = 6"))
    with fresh_database.transaction() as session:
        check = verification.verify_since_checkpoint(session=session, actor=VIEWER)
    assert not check.ok and check.first_broken_seq == 6 and "events 6 to 6 were deleted" in (check.problem or "")
