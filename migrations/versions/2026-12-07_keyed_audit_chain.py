"""keyed audit chain and signed verification checkpoints

audit_events.key_id names the RADMON_AUDIT_KEY an event's hash is an HMAC under (NULL for the
plain SHA-256 links written before: the first keyed event covers the last of them, decision 0205);
audit_verifications.mac is an HMAC over the checkpoint, so one forged in the database is ignored.
Adding nullable columns rewrites no row, so the append-only triggers are not involved.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("key_id", sa.String(length=16), nullable=True))
    op.add_column("audit_verifications", sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_verifications", schema=None) as batch_op:
        batch_op.drop_column("mac")
    # A native DROP COLUMN (SQLite 3.35+), not batch mode: batch copies the table and deletes the
    # original, which the append-only triggers refuse.
    op.execute("ALTER TABLE audit_events DROP COLUMN key_id")
