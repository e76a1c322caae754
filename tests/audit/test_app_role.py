"""The least-privilege database role (issue 14 item 4, decision 0205) on PostgreSQL: the servers'
role cannot disable the audit triggers nor UPDATE, DELETE or TRUNCATE the trail, and radmon works
under it (ingest, a check run, verification, the anchor job). The rewrite the finding describes,
done by a superuser who drops the triggers and re-hashes the chain without the key, is named by
`radmon audit verify` against the anchor."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from monitor.alerts import audit_anchor as jobs
from monitor.audit import service as audit_service
from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import policy as checks_policy
from monitor.checks.models import CheckRun
from monitor.checks.schemas import MonitoringPolicy
from monitor.cli import app as cli_app
from monitor.config import get_settings, load_settings
from monitor.db import Database, set_database
from monitor.ingest.models import Inference
from monitor.main import create_app
from monitor.reference import service as reference_service
from tests.checks.data import POLICY, frame, records
from tests.conftest import BACKENDS, _pg_admin_connection
from tests.factories import auth, make_keys, make_model, make_version

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL is not among RADMON_TEST_BACKENDS")

runner = CliRunner()
PASSWORD = "app-role-password-0123456789"


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI's environment: the test's audit key and an anchor file of its own."""
    anchor_file = tmp_path / "radmon-audit-anchors.jsonl"
    monkeypatch.setenv("RADMON_AUDIT_ANCHOR_FILE", str(anchor_file))
    get_settings.cache_clear()
    yield anchor_file
    get_settings.cache_clear()


@pytest.fixture
def owner(fresh_database: Database, environment: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A migrated database, connected as the role that ran the migrations (its owner)."""
    if fresh_database.dialect != "postgresql":
        pytest.skip("SQLite has no roles")
    monkeypatch.setenv("RADMON_DATABASE_URL", fresh_database.url)
    previous = set_database(fresh_database)
    yield fresh_database
    set_database(previous)


@pytest.fixture
def app_database(owner: Database) -> Iterator[Database]:
    """The app role created by `radmon db create-app-role`, and the database as that role sees it."""
    role = f"radmon_app_{uuid.uuid4().hex[:8]}"
    created = runner.invoke(cli_app, ["db", "create-app-role", "--role", role, "--password-stdin"], input=PASSWORD)
    assert created.exit_code == 0, created.output
    assert f"created role {role}" in created.stdout and "append-only on audit_events" in created.stdout
    database = Database(make_url(owner.url).set(username=role, password=PASSWORD).render_as_string(False))
    try:
        yield database
    finally:
        database.dispose()
        with owner.engine.begin() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}"'))
        admin = _pg_admin_connection()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def _seed(owner: Database) -> dict[str, str]:
    with owner.transaction() as session:
        make_model(session)
        make_version(session, activate=True)
        checks_policy.put_policy(
            session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
        )
        reference_service.upload_records(
            session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(600, seed=1))
        )
        return make_keys(session)


REFUSED_REWRITES = {
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update": "must be owner of table audit_events",
    "ALTER TABLE audit_events DISABLE TRIGGER ALL": "must be owner of table audit_events",
    "DROP TRIGGER audit_events_no_update ON audit_events": "must be owner of relation audit_events",
    "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1": "permission denied for table audit_events",
    "DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)": "permission denied",
    "TRUNCATE audit_events": "permission denied for table audit_events",
    "DELETE FROM audit_verifications": "permission denied for table audit_verifications",
    "UPDATE alembic_version SET version_num = '0001'": "permission denied for table alembic_version",
    "CREATE TABLE shadow_audit (seq bigint)": "permission denied for schema public",
}


def test_the_app_role_cannot_rewrite_the_audit_trail(owner: Database, app_database: Database) -> None:
    _seed(owner)
    for statement, refusal in REFUSED_REWRITES.items():
        with pytest.raises(DBAPIError, match=refusal), app_database.engine.begin() as connection:
            connection.execute(text(statement))
    with owner.transaction() as session:
        assert audit_service.verify(session=session, actor=SYSTEM).ok


def test_radmon_works_under_the_app_role(owner: Database, app_database: Database, tmp_path: Path) -> None:
    keys = _seed(owner)
    now = datetime.now(UTC).replace(microsecond=0)
    batch = [
        {
            "model": "ich-ct",
            "version": "2.1.0",
            "inference_id": f"app-role-{i}",
            "occurred_at": (now - timedelta(days=1, minutes=i)).isoformat(),
            **row,
        }
        for i, row in enumerate(records(frame(300, seed=2)))
    ]
    for row in batch:
        row.pop("label")
    settings = load_settings(database_url=app_database.url, outbox_dir=str(tmp_path / "outbox"), log_format="text")
    previous = set_database(app_database)
    try:
        with TestClient(create_app(settings)) as client:
            answer = client.post("/api/v1/inferences", json={"records": batch}, headers=auth(keys["ingest"]))
            assert answer.status_code < 300, answer.text
            with app_database.transaction() as session:
                runs = checks_flows.run_checks(
                    session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=now
                )
            verified = client.get("/api/v1/audit/verify", headers=auth(keys["viewer"])).json()
        anchored = jobs.anchor_head(database=app_database, settings=settings)
    finally:
        set_database(previous)
    assert [run.status for run in runs] == ["completed"]
    assert verified["ok"] is True and anchored.ok
    with owner.transaction() as session:
        assert session.execute(select(Inference).limit(1)).first() is not None
        assert session.execute(select(CheckRun).limit(1)).first() is not None


def test_create_app_role_refuses_a_superuser_and_is_repeatable(owner: Database, app_database: Database) -> None:
    refused = runner.invoke(
        cli_app, ["db", "create-app-role", "--role", "postgres", "--password-stdin"], input=PASSWORD
    )
    assert refused.exit_code == 1 and "is the role running the migrations" in refused.stderr
    role = make_url(app_database.url).username
    again = runner.invoke(cli_app, ["db", "create-app-role", "--role", role, "--password-stdin"], input=PASSWORD)
    assert again.exit_code == 0 and f"updated role {role}" in again.stdout


def test_a_superuser_rewrite_rehashed_without_the_key_is_named_by_radmon_audit_verify(
    owner: Database, environment: Path
) -> None:
    """The must-show: triggers dropped, an event edited and every link re-hashed with plain SHA-256
    (as the unkeyed chain function did): the chain walks clean, the anchor tells."""
    _seed(owner)
    anchored = runner.invoke(cli_app, ["audit", "anchor"])
    assert anchored.exit_code == 0 and "anchored event" in anchored.stdout
    with owner.engine.begin() as connection:  # the test connects as the superuser
        connection.execute(text("DROP TRIGGER audit_events_no_update ON audit_events"))
        connection.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
        prev_hash = audit_service.GENESIS_HASH
        for event in connection.execute(select(AuditEvent.__table__).order_by(AuditEvent.seq)).all():
            plain = type("Event", (), {**event._asdict(), "key_id": None})()
            digest = hashlib.sha256((prev_hash + audit_service.canonical_json(plain)).encode()).hexdigest()
            connection.execute(
                text("UPDATE audit_events SET prev_hash = :p, hash = :h, key_id = NULL WHERE seq = :s"),
                {"p": prev_hash, "h": digest, "s": event.seq},
            )
            prev_hash = digest

    result = runner.invoke(cli_app, ["audit", "verify"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "does not match its anchor" in result.stderr and "the chain was rewritten" in result.stderr
