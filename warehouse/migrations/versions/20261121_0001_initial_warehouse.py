"""initial warehouse

Revision ID: 0001
Revises:
Create Date: 2026-11-21 14:06:18.540793
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import warehouse.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "source",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source")),
        sa.UniqueConstraint("name", name=op.f("uq_source_name")),
    )
    op.create_table(
        "objective",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("art", sa.String(length=255), nullable=True),
        sa.Column("increment", sa.String(length=255), nullable=True),
        sa.Column("committed", sa.Boolean(), nullable=False),
        sa.Column("planned_value", sa.Float(), nullable=True),
        sa.Column("actual_value", sa.Float(), nullable=True),
        sa.Column("status_category", sa.String(length=16), nullable=False),
        sa.Column("updated_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", warehouse.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.id"], name=op.f("fk_objective_source_id_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objective")),
        sa.UniqueConstraint(
            "source_id", "external_id", name=op.f("uq_objective_source_id_external_id")
        ),
    )
    op.create_table(
        "sync_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("started_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", warehouse.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("watermark", warehouse.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "cursor",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.id"], name=op.f("fk_sync_run_source_id_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_run")),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_run_source_id_started_at"),
            ["source_id", "started_at"],
            unique=False,
        )

    op.create_table(
        "work_item",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("item_type", sa.String(length=255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("status_category", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("parent_external_id", sa.String(length=64), nullable=True),
        sa.Column("estimate", sa.Float(), nullable=True),
        sa.Column("business_value", sa.Float(), nullable=True),
        sa.Column("time_criticality", sa.Float(), nullable=True),
        sa.Column("risk_reduction", sa.Float(), nullable=True),
        sa.Column("job_size", sa.Float(), nullable=True),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("art", sa.String(length=255), nullable=True),
        sa.Column("increment", sa.String(length=255), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("portfolio_state", sa.String(length=16), nullable=True),
        sa.Column("tracker_rank", sa.String(length=255), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("created_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", warehouse.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", warehouse.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "writeback_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.Column("synced_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["work_item.id"], name=op.f("fk_work_item_parent_id_work_item")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.id"], name=op.f("fk_work_item_source_id_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_item")),
        sa.UniqueConstraint(
            "source_id", "external_id", name=op.f("uq_work_item_source_id_external_id")
        ),
    )
    with op.batch_alter_table("work_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_work_item_level"), ["level"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_item_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_work_item_parent_external_id_source_id"),
            ["parent_external_id", "source_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_work_item_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "sync_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.id"], name=op.f("fk_quarantine_source_id_source")
        ),
        sa.ForeignKeyConstraint(
            ["sync_run_id"], ["sync_run.id"], name=op.f("fk_quarantine_sync_run_id_sync_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_source_id_external_id"),
            ["source_id", "external_id"],
            unique=False,
        )

    op.create_table(
        "rollup",
        sa.Column(
            "work_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("computed_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("total_items", sa.Integer(), nullable=False),
        sa.Column("done_items", sa.Integer(), nullable=False),
        sa.Column("total_estimate", sa.Float(), nullable=True),
        sa.Column("done_estimate", sa.Float(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("wsjf", sa.Float(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("health", sa.String(length=16), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["work_item_id"], ["work_item.id"], name=op.f("fk_rollup_work_item_id_work_item")
        ),
        sa.PrimaryKeyConstraint("work_item_id", name=op.f("pk_rollup")),
    )
    op.create_table(
        "work_item_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "work_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("change_id", sa.String(length=96), nullable=False),
        sa.Column("changed_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("from_value", sa.Text(), nullable=True),
        sa.Column("to_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_item.id"],
            name=op.f("fk_work_item_history_work_item_id_work_item"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_item_history")),
        sa.UniqueConstraint(
            "work_item_id",
            "change_id",
            "field",
            name=op.f("uq_work_item_history_work_item_id_change_id_field"),
        ),
    )
    with op.batch_alter_table("work_item_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_work_item_history_work_item_id_changed_at"),
            ["work_item_id", "changed_at"],
            unique=False,
        )

    op.create_table(
        "writeback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column(
            "work_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("tracker_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("planned_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied_at", warehouse.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["work_item_id"], ["work_item.id"], name=op.f("fk_writeback_work_item_id_work_item")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writeback")),
    )
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_writeback_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_writeback_work_item_id_field"), ["work_item_id", "field"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_writeback_work_item_id_field"))
        batch_op.drop_index(batch_op.f("ix_writeback_run_id"))

    op.drop_table("writeback")
    with op.batch_alter_table("work_item_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_item_history_work_item_id_changed_at"))

    op.drop_table("work_item_history")
    op.drop_table("rollup")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_source_id_external_id"))

    op.drop_table("quarantine")
    with op.batch_alter_table("work_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_item_updated_at"))
        batch_op.drop_index(batch_op.f("ix_work_item_parent_external_id_source_id"))
        batch_op.drop_index(batch_op.f("ix_work_item_parent_id"))
        batch_op.drop_index(batch_op.f("ix_work_item_level"))

    op.drop_table("work_item")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_run_source_id_started_at"))

    op.drop_table("sync_run")
    op.drop_table("objective")
    op.drop_table("source")
