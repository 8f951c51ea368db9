"""write-back ledger: a note per change; the last write per item and field found by index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_writeback_work_item_id_field"))
        batch_op.create_index(
            batch_op.f("ix_writeback_work_item_id_field_applied_at"),
            ["work_item_id", "field", "applied_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_writeback_work_item_id_field_applied_at"))
        batch_op.create_index(
            batch_op.f("ix_writeback_work_item_id_field"), ["work_item_id", "field"], unique=False
        )
        batch_op.drop_column("note")
