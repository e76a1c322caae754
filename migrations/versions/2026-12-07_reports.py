"""surveillance reports and their signatures

surveillance_reports keeps each revision of a model's periodic report as it was filed: the HTML
preview, the PDF bytes, their SHA-256 (and the unsigned draft's), the page count, who generated it
and when. surveillance_report_signatures holds the electronic signatures (printed name, role,
meaning, time, and the hash of the PDF signed). Once a revision carries a signature the database
refuses to change it too: a signed row is not updated, a signed or reviewed row is not deleted, a
signature is never changed or removed (decision 0604).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

GUARD_PG = """
CREATE OR REPLACE FUNCTION radmon_signed_report_immutable() RETURNS trigger AS $$
BEGIN
  IF TG_TABLE_NAME = 'surveillance_report_signatures' THEN
    RAISE EXCEPTION 'report signatures are permanent: % refused', TG_OP;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.status = 'signed' THEN
    RAISE EXCEPTION 'surveillance report % is signed and immutable: UPDATE refused', OLD.id;
  END IF;
  IF TG_OP = 'DELETE' AND OLD.status <> 'draft' THEN
    RAISE EXCEPTION 'surveillance report % is signed and immutable: DELETE refused', OLD.id;
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER surveillance_reports_immutable BEFORE UPDATE OR DELETE ON surveillance_reports
  FOR EACH ROW EXECUTE FUNCTION radmon_signed_report_immutable();
CREATE TRIGGER surveillance_report_signatures_permanent BEFORE UPDATE OR DELETE ON surveillance_report_signatures
  FOR EACH ROW EXECUTE FUNCTION radmon_signed_report_immutable();
"""

GUARD_SQLITE = (
    "CREATE TRIGGER surveillance_reports_no_update BEFORE UPDATE ON surveillance_reports "
    "WHEN OLD.status = 'signed' "
    "BEGIN SELECT RAISE(ABORT, 'surveillance report is signed and immutable: UPDATE refused'); END",
    "CREATE TRIGGER surveillance_reports_no_delete BEFORE DELETE ON surveillance_reports "
    "WHEN OLD.status <> 'draft' "
    "BEGIN SELECT RAISE(ABORT, 'surveillance report is signed and immutable: DELETE refused'); END",
    "CREATE TRIGGER surveillance_report_signatures_no_update BEFORE UPDATE ON surveillance_report_signatures "
    "BEGIN SELECT RAISE(ABORT, 'report signatures are permanent: UPDATE refused'); END",
    "CREATE TRIGGER surveillance_report_signatures_no_delete BEFORE DELETE ON surveillance_report_signatures "
    "BEGIN SELECT RAISE(ABORT, 'report signatures are permanent: DELETE refused'); END",
)


def upgrade() -> None:
    op.create_table(
        "surveillance_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("draft_sha256", sa.String(length=64), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("generated_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("generated_by", sa.String(length=64), nullable=False),
        sa.Column("signed_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_surveillance_reports_model_id_models")),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["surveillance_reports.id"],
            name=op.f("fk_surveillance_reports_supersedes_id_surveillance_reports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveillance_reports")),
        sa.UniqueConstraint(
            "model_id",
            "period_start",
            "period_end",
            "revision",
            name="uq_surveillance_reports_period_revision",
        ),
    )
    op.create_index(
        "ix_surveillance_reports_model_id_period_end",
        "surveillance_reports",
        ["model_id", "period_end"],
        unique=False,
    )
    op.create_table(
        "surveillance_report_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("meaning", sa.String(length=16), nullable=False),
        sa.Column("signed_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("signed_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["surveillance_reports.id"],
            name="fk_surveillance_report_signatures_report_id",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_surveillance_report_signatures_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveillance_report_signatures")),
        sa.UniqueConstraint("report_id", "meaning", name=op.f("uq_surveillance_report_signatures_report_id_meaning")),
    )
    op.create_index(
        op.f("ix_surveillance_report_signatures_report_id"),
        "surveillance_report_signatures",
        ["report_id"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GUARD_PG)
    else:
        for statement in GUARD_SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS surveillance_report_signatures_permanent ON surveillance_report_signatures")
        op.execute("DROP TRIGGER IF EXISTS surveillance_reports_immutable ON surveillance_reports")
        op.execute("DROP FUNCTION IF EXISTS radmon_signed_report_immutable()")
    op.drop_index(op.f("ix_surveillance_report_signatures_report_id"), table_name="surveillance_report_signatures")
    op.drop_table("surveillance_report_signatures")  # SQLite drops a table's triggers with it
    op.drop_index("ix_surveillance_reports_model_id_period_end", table_name="surveillance_reports")
    op.drop_table("surveillance_reports")
