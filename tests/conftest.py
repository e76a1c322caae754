"""Test databases built by the migrations, one transaction per test, and an API client.

Every test that uses `session` or `client` runs once per backend (SQLite and PostgreSQL).
PostgreSQL is skipped when unreachable, except with CI=true where that fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import make_url
from sqlalchemy.orm import Session

from monitor import migrate
from monitor.auth import service as auth_service
from monitor.config import Settings, load_settings
from monitor.db import Database, get_session, set_database
from monitor.main import create_app

PG_ADMIN_URL = os.environ.get("RADMON_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b.strip() for b in os.environ.get("RADMON_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()]
IN_CI = os.environ.get("CI", "").lower() == "true"

os.environ.setdefault("DO_NOT_TRACK", "1")

# Production argon2 parameters cost ~0.1 s of CPU per hash and the suite creates thousands of
# users; hashes made with cheaper parameters still verify through the same code path.
auth_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# Code paths without an explicit Settings (scheduled jobs, the check runner's alerts) read the
# environment like production does.
os.environ.setdefault("RADMON_SECRET_KEY", "test-secret-key-0123456789")
os.environ.setdefault("RADMON_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")
os.environ.setdefault("RADMON_AUDIT_KEY", "test-audit-key-0123456789")


def _pg_admin_connection():  # type: ignore[no-untyped-def]
    url = make_url(PG_ADMIN_URL)
    connection = psycopg2.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
        connect_timeout=5,
    )
    connection.autocommit = True
    return connection


def create_database_url(backend: str, tmp_dir: Path) -> str:
    """A new, empty database on the backend; fails (CI) or skips when PostgreSQL is down."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / f'radmon-{uuid.uuid4().hex[:8]}.db'}"
    try:
        admin = _pg_admin_connection()
    except psycopg2.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    name = f"radmon_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database_url(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = make_url(url).database
    admin = _pg_admin_connection()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One migrated database per backend for the whole run."""
    url = create_database_url(backend, tmp_path_factory.mktemp(backend))
    db = Database(url)
    migrate.upgrade(db.engine)
    yield db
    db.dispose()
    drop_database_url(url)


@pytest.fixture
def fresh_database(backend: str, tmp_path: Path) -> Iterator[Database]:
    """A migrated database of its own, for tests that need real commits (concurrency, crashes)."""
    url = create_database_url(backend, tmp_path)
    db = Database(url)
    migrate.upgrade(db.engine)
    yield db
    db.dispose()
    drop_database_url(url)


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=database.url,
        secret_key="test-secret-key-0123456789",
        pseudonym_key="test-pseudonym-key-0123456789",
        outbox_dir=str(tmp_path / "outbox"),
        log_format="text",
    )


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test.

    Commits made by the code under test only release savepoints."""
    connection = database.engine.connect()
    outer = connection.begin()
    test_session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    previous = set_database(database)
    try:
        yield test_session
    finally:
        test_session.close()
        outer.rollback()
        connection.close()
        set_database(previous)


@pytest.fixture
def client(session: Session, settings: Settings) -> Iterator[TestClient]:
    """The API bound to the test's session; each request commits or rolls back like production."""
    app = create_app(settings)

    def request_session() -> Iterator[Session]:
        session.commit()  # what the test set up before the request counts as committed
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    app.dependency_overrides[get_session] = request_session
    with TestClient(app) as test_client:
        yield test_client
