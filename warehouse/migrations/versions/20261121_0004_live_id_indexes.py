"""live-id indexes: the delete reconcile reads a source's live ids from an index alone

(`deleted_at` is a column too: SQLite covers a query only with every column it names.)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("work_item", "objective")
LIVE_ONLY = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(
            op.f(f"ix_{table}_source_id_external_id_id_deleted_at"),
            table,
            ["source_id", "external_id", "id", "deleted_at"],
            unique=False,
            sqlite_where=LIVE_ONLY,
            postgresql_where=LIVE_ONLY,
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(op.f(f"ix_{table}_source_id_external_id_id_deleted_at"), table_name=table)
