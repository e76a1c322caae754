"""change requests, electronic signatures, signing lockout, deployment webhooks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import monitor.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signing_locked_until", monitor.db.UTCDateTime(timezone=True), nullable=True))

    op.create_table(
        "signing_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_signing_failures_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_failures")),
    )
    op.create_index(op.f("ix_signing_failures_user_id"), "signing_failures", ["user_id"], unique=False)

    op.create_table(
        "change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_version_id", sa.Integer(), nullable=False),
        sa.Column("target_version_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("executed_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["from_version_id"], ["model_versions.id"], name=op.f("fk_change_requests_from_version_id_model_versions")
        ),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_change_requests_model_id_models")),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_change_requests_requested_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["target_version_id"],
            ["model_versions.id"],
            name=op.f("fk_change_requests_target_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_requests")),
    )
    op.create_index(op.f("ix_change_requests_model_id"), "change_requests", ["model_id"], unique=False)
    op.create_index("ix_change_requests_status_expires_at", "change_requests", ["status", "expires_at"], unique=False)
    op.create_index(
        "uq_change_requests_pending_model",
        "change_requests",
        ["model_id"],
        unique=True,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )

    op.create_table(
        "change_request_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_request_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("meaning", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("signed_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_request_id"],
            ["change_requests.id"],
            name=op.f("fk_change_request_signatures_change_request_id_change_requests"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_change_request_signatures_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_request_signatures")),
        sa.UniqueConstraint(
            "change_request_id", "user_id", name=op.f("uq_change_request_signatures_change_request_id_user_id")
        ),
    )
    op.create_index(
        op.f("ix_change_request_signatures_change_request_id"),
        "change_request_signatures",
        ["change_request_id"],
        unique=False,
    )

    # SQLite cannot add a foreign key in place: batch mode copies the table.
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployments_change_request_id"), ["change_request_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deployments_change_request_id_change_requests"),
            "change_requests",
            ["change_request_id"],
            ["id"],
        )

    op.create_table(
        "deployment_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"], ["deployments.id"], name=op.f("fk_deployment_notifications_deployment_id_deployments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_notifications")),
    )
    op.create_index(
        op.f("ix_deployment_notifications_deployment_id"), "deployment_notifications", ["deployment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_deployment_notifications_deployment_id"), table_name="deployment_notifications")
    op.drop_table("deployment_notifications")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deployments_change_request_id_change_requests"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_deployments_change_request_id"))
    op.drop_index(op.f("ix_change_request_signatures_change_request_id"), table_name="change_request_signatures")
    op.drop_table("change_request_signatures")
    op.drop_index("uq_change_requests_pending_model", table_name="change_requests")
    op.drop_index("ix_change_requests_status_expires_at", table_name="change_requests")
    op.drop_index(op.f("ix_change_requests_model_id"), table_name="change_requests")
    op.drop_table("change_requests")
    op.drop_index(op.f("ix_signing_failures_user_id"), table_name="signing_failures")
    op.drop_table("signing_failures")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("signing_locked_until")
