"""work_item: drop the index on updated_at, which no query reads and every upsert rewrites

Each changed item moves its entry from a scattered leaf to the newest one, so an incremental
sync dirtied about a page more per item for nothing (benchmarks/RESULTS.md, issue 4).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 03:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_work_item_updated_at"), table_name="work_item")


def downgrade() -> None:
    op.create_index(op.f("ix_work_item_updated_at"), "work_item", ["updated_at"], unique=False)
