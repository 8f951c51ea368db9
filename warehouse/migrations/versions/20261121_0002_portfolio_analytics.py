"""portfolio analytics: rollup columns, breakdown, guardrail, flow, predictability, issues

`rollup` holds derived results only (`lpm rollup` rebuilds it whole), so its rows are cleared
before the new NOT NULL columns are added. The derived tables carry no foreign key to
`work_item` (warehouse/models.py, `Rollup`, says why), so the one `rollup` had is dropped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 14:24:01.083028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warehouse.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_distribution",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("computed_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("art", sa.String(length=255), nullable=True),
        sa.Column("increment", sa.String(length=255), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_distribution")),
    )
    op.create_table(
        "flow_metric",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("computed_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("art", sa.String(length=255), nullable=True),
        sa.Column("increment", sa.String(length=255), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("completed_items", sa.Integer(), nullable=False),
        sa.Column("completed_estimate", sa.Float(), nullable=True),
        sa.Column("flow_time_items", sa.Integer(), nullable=False),
        sa.Column("flow_time_p50", sa.Float(), nullable=True),
        sa.Column("flow_time_p85", sa.Float(), nullable=True),
        sa.Column("wip", sa.Integer(), nullable=False),
        sa.Column("active_days", sa.Float(), nullable=True),
        sa.Column("waiting_days", sa.Float(), nullable=True),
        sa.Column("efficiency", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_metric")),
    )
    op.create_table(
        "guardrail",
        sa.Column("increment", sa.String(length=255), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("computed_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("estimate", sa.Float(), nullable=True),
        sa.Column("share", sa.Float(), nullable=True),
        sa.Column("basis", sa.String(length=8), nullable=True),
        sa.Column("target_share", sa.Float(), nullable=False),
        sa.Column("deviation", sa.Float(), nullable=True),
        sa.Column("breach", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("increment", "category", name=op.f("pk_guardrail")),
    )
    op.create_table(
        "predictability",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("computed_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("art", sa.String(length=255), nullable=True),
        sa.Column("increment", sa.String(length=255), nullable=True),
        sa.Column("committed_objectives", sa.Integer(), nullable=False),
        sa.Column("uncommitted_objectives", sa.Integer(), nullable=False),
        sa.Column("planned_value", sa.Float(), nullable=False),
        sa.Column("actual_value", sa.Float(), nullable=False),
        sa.Column("predictability", sa.Float(), nullable=True),
        sa.Column("in_range", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictability")),
    )
    op.create_table(
        "hierarchy_issue",
        sa.Column(
            "work_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("computed_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "related_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("work_item_id", "kind", name=op.f("pk_hierarchy_issue")),
    )
    op.create_table(
        "rollup_breakdown",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "work_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("computed_at", warehouse.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("art", sa.String(length=255), nullable=True),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("increment", sa.String(length=255), nullable=True),
        sa.Column("total_items", sa.Integer(), nullable=False),
        sa.Column("done_items", sa.Integer(), nullable=False),
        sa.Column("estimated_items", sa.Integer(), nullable=False),
        sa.Column("total_estimate", sa.Float(), nullable=True),
        sa.Column("done_estimate", sa.Float(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("progress_basis", sa.String(length=8), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_breakdown")),
    )
    with op.batch_alter_table("rollup_breakdown", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rollup_breakdown_work_item_id"), ["work_item_id"], unique=False
        )

    op.execute("DELETE FROM rollup")
    with op.batch_alter_table("rollup", schema=None) as batch_op:
        batch_op.drop_constraint("fk_rollup_work_item_id_work_item", type_="foreignkey")
        batch_op.add_column(sa.Column("art", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("increment", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("estimated_items", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("progress_basis", sa.String(length=8), nullable=False))
        batch_op.add_column(sa.Column("flagged_items", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("cost_of_delay", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("job_size", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("job_size_basis", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("rank_scope", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("unranked_reason", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("elapsed", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("schedule_health", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("health_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("forecast_p50", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("forecast_p85", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("forecast_reason", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollup", schema=None) as batch_op:
        batch_op.drop_column("forecast_reason")
        batch_op.drop_column("forecast_p85")
        batch_op.drop_column("forecast_p50")
        batch_op.drop_column("health_reason")
        batch_op.drop_column("schedule_health")
        batch_op.drop_column("elapsed")
        batch_op.drop_column("unranked_reason")
        batch_op.drop_column("rank_scope")
        batch_op.drop_column("job_size_basis")
        batch_op.drop_column("job_size")
        batch_op.drop_column("cost_of_delay")
        batch_op.drop_column("flagged_items")
        batch_op.drop_column("progress_basis")
        batch_op.drop_column("estimated_items")
        batch_op.drop_column("increment")
        batch_op.drop_column("art")
        batch_op.create_foreign_key(
            batch_op.f("fk_rollup_work_item_id_work_item"), "work_item", ["work_item_id"], ["id"]
        )

    with op.batch_alter_table("rollup_breakdown", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollup_breakdown_work_item_id"))

    op.drop_table("rollup_breakdown")
    op.drop_table("hierarchy_issue")
    op.drop_table("predictability")
    op.drop_table("guardrail")
    op.drop_table("flow_metric")
    op.drop_table("flow_distribution")
