"""The schema: migrations from empty to head, and models and migrations that agree."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from warehouse.db import create_warehouse_engine, current_revision, head_revision, open_warehouse
from warehouse.models import Base

CONTRACT = {
    "source": {"id", "name", "kind", "url"},
    "work_item": {
        "id",
        "source_id",
        "external_id",
        "key",
        "level",
        "item_type",
        "title",
        "status",
        "status_category",
        "parent_id",
        "parent_external_id",
        "estimate",
        "business_value",
        "time_criticality",
        "risk_reduction",
        "job_size",
        "team",
        "increment",
        "category",
        "created_at",
        "updated_at",
        "resolved_at",
        "deleted_at",
        "raw",
    },
    "work_item_history": {"work_item_id", "changed_at", "field", "from_value", "to_value"},
    "rollup": {
        "work_item_id",
        "computed_at",
        "total_items",
        "done_items",
        "total_estimate",
        "done_estimate",
        "progress",
        "wsjf",
        "rank",
        "health",
        "start_date",
        "end_date",
    },
    "sync_run": {
        "id",
        "source_id",
        "started_at",
        "finished_at",
        "status",
        "mode",
        "fetched",
        "inserted",
        "updated",
        "unchanged",
        "deleted",
        "quarantined",
        "watermark",
    },
    "quarantine": {"id", "sync_run_id", "source_id", "external_id", "error", "payload"},
    "writeback": {
        "id",
        "run_id",
        "work_item_id",
        "field",
        "tracker_value",
        "new_value",
        "status",
        "error",
        "applied_at",
    },
}


def test_upgrade_from_empty_to_head_creates_the_contract(warehouse_url: str) -> None:
    engine = create_warehouse_engine(warehouse_url)
    assert current_revision(engine) is None
    engine = open_warehouse(warehouse_url)
    assert current_revision(engine) == head_revision()
    inspector = inspect(engine)
    for table, columns in CONTRACT.items():
        assert columns <= {c["name"] for c in inspector.get_columns(table)}, table
    unique = inspector.get_unique_constraints("work_item")
    assert any(set(u["column_names"]) == {"source_id", "external_id"} for u in unique)
    indexed = {tuple(i["column_names"]) for i in inspector.get_indexes("work_item")}
    assert {("parent_id",), ("level",)} <= indexed
    # No query reads it and every upsert rewrote it (migration 0006).
    assert ("updated_at",) not in indexed
    engine.dispose()


def test_models_and_migrations_agree(warehouse_url: str) -> None:
    """What `alembic check` verifies: autogenerate finds nothing left to migrate."""
    engine = open_warehouse(warehouse_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_upgrade_is_idempotent(warehouse_url: str) -> None:
    open_warehouse(warehouse_url).dispose()
    engine = open_warehouse(warehouse_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
