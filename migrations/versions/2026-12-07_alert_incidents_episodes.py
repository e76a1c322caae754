"""alert incidents and episodes

An alert can belong to an incident: `incident_id` points at the incident's primary alert (the
one that notifies) and `incident_role` says why it belongs there (`alias`: the same evidence under
another segment name; `evidence`: a related finding of another kind, e.g. the input drift that
explains a breach), with `incident_reason` in words. `episode_start` is the first window of the
current continuous episode ("breaching since"), `episode_onset` the change onset a sequential
detector estimated for it, when one did (decision 0303).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.db

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("incident_role", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("incident_reason", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("episode_start", monitor.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("episode_onset", monitor.db.UTCDateTime(timezone=True), nullable=True))
        batch.create_foreign_key(op.f("fk_alerts_incident_id_alerts"), "alerts", ["incident_id"], ["id"])
        batch.create_index(op.f("ix_alerts_incident_id"), ["incident_id"], unique=False)
    # Existing alerts: their episode is taken to start at first_seen (the best the old rows know).
    op.execute("UPDATE alerts SET episode_start = first_seen")


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index(op.f("ix_alerts_incident_id"))
        batch.drop_constraint(op.f("fk_alerts_incident_id_alerts"), type_="foreignkey")
        batch.drop_column("episode_onset")
        batch.drop_column("episode_start")
        batch.drop_column("incident_reason")
        batch.drop_column("incident_role")
        batch.drop_column("incident_id")
