"""reference sets, daily profiles, check runs, check reports, metric points

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import monitor.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = monitor.db.UTCDateTime(timezone=True)
ACTIVE = sa.text("status = 'active'")
CURRENT = sa.text("superseded_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "reference_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("labelled_rows", sa.Integer(), nullable=False),
        sa.Column("columns", JSON, nullable=False),
        sa.Column("baseline_start", UTC, nullable=True),
        sa.Column("baseline_end", UTC, nullable=True),
        sa.Column("profile", JSON, nullable=True),
        sa.Column("profile_spec", sa.String(length=16), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("superseded_at", UTC, nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_reference_sets_model_id_models")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name=op.f("fk_reference_sets_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_sets")),
    )
    op.create_index("ix_reference_sets_model_version", "reference_sets", ["model_id", "version_id"], unique=False)
    op.create_index(
        "uq_reference_sets_active_version",
        "reference_sets",
        ["version_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )

    op.create_table(
        "reference_rows",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("reference_set_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("occurred_at", UTC, nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("prediction", sa.SmallInteger(), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=True),
        sa.Column("features", JSON, nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_reference_rows_model_id_models")),
        sa.ForeignKeyConstraint(
            ["reference_set_id"], ["reference_sets.id"], name=op.f("fk_reference_rows_reference_set_id_reference_sets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_rows")),
    )
    op.create_index("ix_reference_rows_set", "reference_rows", ["reference_set_id", "row_number"], unique=False)

    op.create_table(
        "daily_profiles",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("reference_set_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("spec", sa.String(length=16), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("max_inference_pk", sa.BigInteger(), nullable=False),
        sa.Column("built_at", UTC, nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_daily_profiles_model_id_models")),
        sa.ForeignKeyConstraint(
            ["reference_set_id"], ["reference_sets.id"], name=op.f("fk_daily_profiles_reference_set_id_reference_sets")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name=op.f("fk_daily_profiles_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_profiles")),
        sa.UniqueConstraint(
            "model_id",
            "version_id",
            "reference_set_id",
            "day",
            name=op.f("uq_daily_profiles_model_id_version_id_reference_set_id_day"),
        ),
    )

    op.create_table(
        "check_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("window_start", UTC, nullable=False),
        sa.Column("window_end", UTC, nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("summary", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reference_set_id", sa.Integer(), nullable=True),
        sa.Column("triggered_by", sa.String(length=64), nullable=False),
        sa.Column("superseded_at", UTC, nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_check_runs_model_id_models")),
        sa.ForeignKeyConstraint(
            ["reference_set_id"], ["reference_sets.id"], name=op.f("fk_check_runs_reference_set_id_reference_sets")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name=op.f("fk_check_runs_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_runs")),
    )
    op.create_index("ix_check_runs_model_kind_window", "check_runs", ["model_id", "kind", "window_end"], unique=False)
    op.create_index(
        "uq_check_runs_current",
        "check_runs",
        ["model_id", "version_id", "kind", "window_start", "window_end"],
        unique=True,
        postgresql_where=CURRENT,
        sqlite_where=CURRENT,
    )

    op.create_table(
        "check_reports",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("encoding", sa.String(length=16), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("window_rows", sa.Integer(), nullable=False),
        sa.Column("reference_rows", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["check_runs.id"], name=op.f("fk_check_reports_run_id_check_runs")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_check_reports")),
    )

    op.create_table(
        "metric_points",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("window_end", UTC, nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("feature", sa.String(length=64), nullable=True),
        sa.Column("segment", sa.String(length=255), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("details", JSON, nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_metric_points_model_id_models")),
        sa.ForeignKeyConstraint(["run_id"], ["check_runs.id"], name=op.f("fk_metric_points_run_id_check_runs")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name=op.f("fk_metric_points_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_points")),
    )
    op.create_index("ix_metric_points_series", "metric_points", ["model_id", "metric", "window_end"], unique=False)
    op.create_index("ix_metric_points_run", "metric_points", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_metric_points_run", table_name="metric_points")
    op.drop_index("ix_metric_points_series", table_name="metric_points")
    op.drop_table("metric_points")
    op.drop_table("check_reports")
    op.drop_index("uq_check_runs_current", table_name="check_runs")
    op.drop_index("ix_check_runs_model_kind_window", table_name="check_runs")
    op.drop_table("check_runs")
    op.drop_table("daily_profiles")
    op.drop_index("ix_reference_rows_set", table_name="reference_rows")
    op.drop_table("reference_rows")
    op.drop_index("uq_reference_sets_active_version", table_name="reference_sets")
    op.drop_index("ix_reference_sets_model_version", table_name="reference_sets")
    op.drop_table("reference_sets")
