"""adverse events

An incident (its primary alert) classified as a reportable adverse event (`adverse_events`), its report
deadline per jurisdiction with the local due day and its end in UTC, the report's filing date and
reference (`adverse_event_deadlines`), the electronic signatures on the classification and each report
(`adverse_event_signatures`), and the reminder stages sent through the outbox, one per stage
(`adverse_event_reminders`) (decision 0601).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adverse_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("aware_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("remedial_action", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("classified_by", sa.String(length=64), nullable=False),
        sa.Column("classified_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_adverse_events_alert_id_alerts")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_adverse_events_model_id_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adverse_events")),
        sa.UniqueConstraint("alert_id", name=op.f("uq_adverse_events_alert_id")),
    )
    op.create_index(op.f("ix_adverse_events_model_id"), "adverse_events", ["model_id"], unique=False)
    op.create_table(
        "adverse_event_deadlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("adverse_event_id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("regulation", sa.String(length=200), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("due_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reported_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reported_on", sa.Date(), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("reported_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["adverse_event_id"],
            ["adverse_events.id"],
            name=op.f("fk_adverse_event_deadlines_adverse_event_id_adverse_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adverse_event_deadlines")),
        sa.UniqueConstraint(
            "adverse_event_id", "jurisdiction", name=op.f("uq_adverse_event_deadlines_adverse_event_id_jurisdiction")
        ),
    )
    op.create_index(
        op.f("ix_adverse_event_deadlines_adverse_event_id"), "adverse_event_deadlines", ["adverse_event_id"]
    )
    op.create_index(op.f("ix_adverse_event_deadlines_due_at"), "adverse_event_deadlines", ["due_at"])
    op.create_table(
        "adverse_event_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("adverse_event_id", sa.Integer(), nullable=False),
        sa.Column("deadline_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("meaning", sa.String(length=200), nullable=False),
        sa.Column("signed_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["adverse_event_id"],
            ["adverse_events.id"],
            name=op.f("fk_adverse_event_signatures_adverse_event_id_adverse_events"),
        ),
        sa.ForeignKeyConstraint(
            ["deadline_id"],
            ["adverse_event_deadlines.id"],
            name=op.f("fk_adverse_event_signatures_deadline_id_adverse_event_deadlines"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_adverse_event_signatures_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adverse_event_signatures")),
    )
    op.create_index(
        op.f("ix_adverse_event_signatures_adverse_event_id"), "adverse_event_signatures", ["adverse_event_id"]
    )
    op.create_table(
        "adverse_event_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deadline_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("group_key", sa.String(length=120), nullable=True),
        sa.Column("created_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deadline_id"],
            ["adverse_event_deadlines.id"],
            name=op.f("fk_adverse_event_reminders_deadline_id_adverse_event_deadlines"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adverse_event_reminders")),
        sa.UniqueConstraint("deadline_id", "stage", name=op.f("uq_adverse_event_reminders_deadline_id_stage")),
    )
    op.create_index(op.f("ix_adverse_event_reminders_deadline_id"), "adverse_event_reminders", ["deadline_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_adverse_event_reminders_deadline_id"), table_name="adverse_event_reminders")
    op.drop_table("adverse_event_reminders")
    op.drop_index(op.f("ix_adverse_event_signatures_adverse_event_id"), table_name="adverse_event_signatures")
    op.drop_table("adverse_event_signatures")
    op.drop_index(op.f("ix_adverse_event_deadlines_due_at"), table_name="adverse_event_deadlines")
    op.drop_index(op.f("ix_adverse_event_deadlines_adverse_event_id"), table_name="adverse_event_deadlines")
    op.drop_table("adverse_event_deadlines")
    op.drop_index(op.f("ix_adverse_events_model_id"), table_name="adverse_events")
    op.drop_table("adverse_events")
