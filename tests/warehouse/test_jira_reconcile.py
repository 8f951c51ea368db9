"""`compare_scope`: which tracker ids in scope the warehouse lacks and which live rows left the
scope, from one scan, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from mapping.model import Objective, StatusCategory
from tests.factories import T0, work_item
from warehouse import models
from warehouse.load import compare_scope, ensure_source, load_batch, start_run


def test_ids_without_a_live_row_are_reported_in_code_point_order(engine: Engine) -> None:
    source = ensure_source(engine, "jira", "jira", "https://jira.example")
    other = ensure_source(engine, "other", "jira", "https://other.example")
    run = start_run(engine, source, "full")
    ids = ["10", "9", "a-1", "A-2", "b_3", "ä"]
    objective = Objective(
        external_id="obj-1",
        key="O-1",
        title="Objective",
        status_category=StatusCategory.todo,
        updated_at=T0,
    )
    load_batch(engine, run, source, [work_item(i) for i in ids], objectives=[objective])
    load_batch(engine, start_run(engine, other, "full"), other, [work_item("x-9")])
    with engine.begin() as conn:
        table = models.WorkItem.__table__
        conn.execute(update(table).where(table.c.external_id == "b_3").values(deleted_at=T0))
    scope = [*ids, "obj-1", "x-9", "B-4", "100", "ä2"]
    diff = compare_scope(engine, source, scope)
    assert diff.gaps == ["100", "B-4", "b_3", "x-9", "ä2"]
    assert diff.gone == {"work_item": [], "objective": []}
    assert compare_scope(engine, source, []).gaps == []
    gone = compare_scope(engine, source, ["10", "A-2"]).gone
    with engine.connect() as conn:
        names = {
            row.id: row.external_id
            for table in (models.WorkItem.__table__, models.Objective.__table__)
            for row in conn.execute(select(table.c.id, table.c.external_id))
        }
    assert sorted(names[i] for i in gone["work_item"]) == ["9", "a-1", "ä"]
    assert [names[i] for i in gone["objective"]] == ["obj-1"]
