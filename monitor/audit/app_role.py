"""The least-privilege PostgreSQL role the servers connect as (decision 0205).

Migrations run as the schema's owner; the API, dashboard and scheduler connect as this role. It
can read and write the application's rows but owns nothing, so it cannot ALTER a table (no
DISABLE TRIGGER, no DROP), and it may only SELECT and INSERT audit_events and
audit_verifications: the append-only trail is append-only by privilege, not only by trigger.
Run it again after every migration (it is idempotent): new tables get their grants then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from monitor.errors import Invalid

# Tables the app may only read and append to: never UPDATE, DELETE or TRUNCATE.
APPEND_ONLY = ("audit_events", "audit_verifications")
# Read only: the servers check the schema revision, migrations (as the owner) write it.
READ_ONLY = ("alembic_version",)
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class RoleGrant:
    role: str
    created: bool
    tables: int
    public_may_create: bool  # PostgreSQL < 15 lets every role create in schema public


def _quoted(connection: Connection, name: str) -> str:
    return str(connection.execute(text("SELECT quote_ident(:name)"), {"name": name}).scalar_one())


def grant_app_role(*, connection: Connection, role: str, password: str) -> RoleGrant:
    """Create (or update) the role with login and DML grants only; run as the schema's owner."""
    if connection.dialect.name != "postgresql":
        raise Invalid("the app role is for PostgreSQL; SQLite has no roles (protect the file's permissions instead)")
    if not _ROLE_NAME.match(role):
        raise Invalid(f"role '{role}' must be lowercase letters, digits and underscores (at most 63)")
    if len(password) < 12:
        raise Invalid("the app role's password must be at least 12 characters")
    current = connection.execute(text("SELECT current_user")).scalar_one()
    if role == current:
        raise Invalid(f"role '{role}' is the role running the migrations: the app role must be a different one")
    existing = connection.execute(
        text("SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = :role"),
        {"role": role},
    ).first()
    if existing is not None and existing[0]:
        raise Invalid(f"role '{role}' is a superuser or may create roles or databases; choose another name")
    owned = connection.execute(
        text("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = :role"),
        {"role": role},
    ).scalar_one()
    if owned:
        raise Invalid(f"role '{role}' owns {owned} tables or sequences; the app role must own nothing")
    name = _quoted(connection, role)
    if existing is None:
        connection.execute(text(f"CREATE ROLE {name} LOGIN"))
    connection.execute(
        text(f"ALTER ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :pw"),
        {"pw": password},
    )
    database = _quoted(connection, connection.execute(text("SELECT current_database()")).scalar_one())
    statements = [
        f"GRANT CONNECT ON DATABASE {database} TO {name}",
        f"REVOKE CREATE ON SCHEMA public FROM {name}",
        f"GRANT USAGE ON SCHEMA public TO {name}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}",
    ]
    statements += [f"REVOKE UPDATE, DELETE ON {table} FROM {name}" for table in APPEND_ONLY]
    statements += [f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {name}" for table in READ_ONLY]
    for statement in statements:
        connection.execute(text(statement))
    tables = connection.execute(
        text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND has_table_privilege(:role, schemaname || '.' || tablename, 'SELECT')"
        ),
        {"role": role},
    ).scalar_one()
    public_may_create = connection.execute(
        text("SELECT has_schema_privilege(:role, 'public', 'CREATE')"), {"role": role}
    ).scalar_one()
    return RoleGrant(role, existing is None, int(tables), bool(public_may_create))
