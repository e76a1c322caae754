"""The migrations build exactly the schema the models declare, and 0003 downgrades cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import monitor.models_registry  # noqa: F401  (fills Base.metadata)
from monitor import migrate
from monitor.db import Base, Database

CHANGE_TABLES = {"change_requests", "change_request_signatures", "signing_failures", "deployment_notifications"}


def schema_diff(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_upgraded_schema_matches_the_models(fresh_database: Database) -> None:
    assert schema_diff(fresh_database) == []


def test_change_request_tables_go_down_and_come_back(fresh_database: Database) -> None:
    migrate.downgrade(fresh_database.engine, "0002")
    tables = set(inspect(fresh_database.engine).get_table_names())
    assert not tables & CHANGE_TABLES
    assert "signing_locked_until" not in {c["name"] for c in inspect(fresh_database.engine).get_columns("users")}
    migrate.upgrade(fresh_database.engine)
    assert CHANGE_TABLES <= set(inspect(fresh_database.engine).get_table_names())
    assert schema_diff(fresh_database) == []
