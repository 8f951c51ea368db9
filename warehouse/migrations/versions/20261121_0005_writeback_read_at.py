"""write-back ledger: when the tracker last changed an item read right before sending an edit

A run killed between an edit and its changelog check leaves the row being sent; the changelog
entries after this instant are what the edit did (flows/writeback.py, `settle_leftovers`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warehouse.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "tracker_updated_at", warehouse.models.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.drop_column("tracker_updated_at")
