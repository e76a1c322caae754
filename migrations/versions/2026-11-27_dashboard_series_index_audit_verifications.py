"""dashboard series index and audit verifications

An index for the dashboard's series reads (one kind's metric for one segment over time: the
performance page's overall and per-segment series no longer read every segment and filter in
Python), and the audit_verifications table holding each verification of the hash chain with
the head it covered, so the audit page verifies only the events appended since (decision 0233).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_metric_points_kind_series",
        "metric_points",
        ["model_id", "kind", "metric", "segment", "window_end"],
        unique=False,
    )
    op.create_table(
        "audit_verifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("verified_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("verified_by", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("from_seq", sa.BigInteger(), nullable=False),
        sa.Column("through_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("events_checked", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("first_broken_seq", sa.BigInteger(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_verifications")),
    )


def downgrade() -> None:
    op.drop_table("audit_verifications")
    op.drop_index("ix_metric_points_kind_series", table_name="metric_points")
