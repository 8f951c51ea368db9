"""The loading API on real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from mapping.model import HistoryChange, Level, Objective, Quarantined, StatusCategory
from tests.factories import T0, work_item
from warehouse import models
from warehouse.load import (
    ensure_source,
    finish_run,
    last_watermark,
    load_batch,
    mark_missing_deleted,
    start_run,
)


def _source(engine: Engine) -> int:
    return ensure_source(engine, "jira-cloud", "jira", "https://jira.example")


def _rows(engine: Engine) -> dict[str, models.WorkItem]:
    with engine.connect() as conn:
        rows = conn.execute(select(models.WorkItem.__table__)).all()
    return {row.external_id: row for row in rows}


def _history(engine: Engine) -> list[tuple[str, str, str | None, str | None]]:
    history, item = models.WorkItemHistory, models.WorkItem
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(item.external_id, history.field, history.from_value, history.to_value)
                .join(item, item.id == history.work_item_id)
                .order_by(history.id)
            )
        ]


def test_second_load_of_the_same_batch_is_all_unchanged(engine: Engine) -> None:
    source_id = _source(engine)
    batch = [work_item(str(n), parent_external_id="1" if n > 1 else None) for n in range(1, 51)]
    first = load_batch(engine, start_run(engine, source_id, "full"), source_id, batch)
    before = _rows(engine)
    second = load_batch(engine, start_run(engine, source_id, "full"), source_id, batch)
    assert (first.inserted, first.updated, first.unchanged) == (50, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 50)
    after = _rows(engine)
    assert {k: v.synced_at for k, v in before.items()} == {k: v.synced_at for k, v in after.items()}
    assert _history(engine) == []


def test_changed_status_writes_one_history_row(engine: Engine) -> None:
    source_id = _source(engine)
    load_batch(engine, start_run(engine, source_id, "full"), source_id, [work_item("7")])
    moved_on = work_item(
        "7",
        status="In Progress",
        status_category=StatusCategory.doing,
        updated_at=T0 + timedelta(days=2),
    )
    run = start_run(engine, source_id, "incremental")
    counts = load_batch(engine, run, source_id, [moved_on])
    load_batch(engine, start_run(engine, source_id, "incremental"), source_id, [moved_on])
    assert counts.updated == 1
    assert _history(engine) == [
        ("7", "status", "To Do", "In Progress"),
        ("7", "status_category", "todo", "doing"),
    ]
    assert _rows(engine)["7"].status == "In Progress"


def test_changelog_entries_are_kept_once_and_not_duplicated_by_diffing(engine: Engine) -> None:
    source_id = _source(engine)
    load_batch(engine, start_run(engine, source_id, "full"), source_id, [work_item("8")])
    changed_at = T0 + timedelta(days=1)
    change = HistoryChange(
        change_id="10042",
        changed_at=changed_at,
        field="status",
        from_value="To Do",
        to_value="Done",
    )
    done = work_item(
        "8",
        status="Done",
        status_category=StatusCategory.done,
        updated_at=changed_at,
        history=(change,),
    )
    for _ in range(2):
        load_batch(engine, start_run(engine, source_id, "incremental"), source_id, [done])
    assert _history(engine) == [
        ("8", "status", "To Do", "Done"),
        ("8", "status_category", "todo", "done"),
    ]


def test_changelog_of_an_item_already_stored_in_its_latest_state_is_kept(engine: Engine) -> None:
    """A Jira full sync reads no changelog: when it stored an issue's latest state, the next
    incremental fetch brings the same state with its changelog, the only record of its history."""
    source_id = _source(engine)
    changed_at = T0 + timedelta(days=1)
    done = work_item("9", status="Done", status_category=StatusCategory.done, updated_at=changed_at)
    load_batch(engine, start_run(engine, source_id, "full"), source_id, [done])
    with_changelog = done.model_copy(
        update={
            "history": (
                HistoryChange(
                    change_id="10043",
                    changed_at=changed_at,
                    field="status",
                    from_value="To Do",
                    to_value="Done",
                ),
            )
        }
    )
    counts = [
        load_batch(engine, start_run(engine, source_id, "incremental"), source_id, [with_changelog])
        for _ in range(2)
    ]
    assert [(c.unchanged, c.history) for c in counts] == [(1, 1), (1, 0)]
    assert _history(engine) == [("9", "status", "To Do", "Done")]


def test_child_loaded_before_its_parent_is_linked_when_the_parent_arrives(engine: Engine) -> None:
    source_id = _source(engine)
    run = start_run(engine, source_id, "full")
    load_batch(engine, run, source_id, [work_item("200", parent_external_id="100")])
    assert _rows(engine)["200"].parent_id is None
    epic = work_item("100", level=Level.feature, item_type="Feature")
    load_batch(engine, run, source_id, [epic])
    rows = _rows(engine)
    assert rows["200"].parent_id == rows["100"].id
    assert rows["200"].parent_external_id == "100"


def test_reparenting_updates_the_link(engine: Engine) -> None:
    source_id = _source(engine)
    run = start_run(engine, source_id, "full")
    features = [work_item(n, level=Level.feature) for n in ("100", "101")]
    load_batch(engine, run, source_id, [*features, work_item("200", parent_external_id="100")])
    moved = work_item("200", parent_external_id="101", updated_at=T0 + timedelta(days=3))
    load_batch(engine, run, source_id, [moved])
    rows = _rows(engine)
    assert rows["200"].parent_id == rows["101"].id
    assert ("200", "parent_external_id", "100", "101") in _history(engine)


def test_moved_issue_keeps_its_row_and_gets_the_new_key(engine: Engine) -> None:
    source_id = _source(engine)
    load_batch(engine, start_run(engine, source_id, "full"), source_id, [work_item("9")])
    row_id = _rows(engine)["9"].id
    moved = work_item("9", key="ART2-77", updated_at=T0 + timedelta(days=1))
    load_batch(engine, start_run(engine, source_id, "incremental"), source_id, [moved])
    rows = _rows(engine)
    assert (rows["9"].id, rows["9"].key, len(rows)) == (row_id, "ART2-77", 1)


def test_batch_counters_and_watermark_commit_with_the_batch(engine: Engine) -> None:
    source_id = _source(engine)
    run = start_run(engine, source_id, "full")
    watermark = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
    bad = Quarantined(external_id="666", error="estimate: not a number", payload={"id": "666"})
    objective = Objective(
        external_id="900",
        key="OBJ-1",
        title="Ship",
        team="Team A",
        increment="PI 26.4",
        planned_value=8,
        actual_value=6,
        status_category=StatusCategory.done,
        updated_at=T0,
    )
    load_batch(
        engine,
        run,
        source_id,
        [work_item("1"), work_item("2")],
        objectives=[objective],
        quarantined=[bad],
        watermark=watermark,
        cursor={"page": 1},
    )
    finish_run(engine, run, "succeeded")
    with engine.connect() as conn:
        runs = models.SyncRun.__table__
        row = conn.execute(select(runs).where(runs.c.id == run)).one()
        quarantine = conn.execute(select(models.Quarantine.__table__)).one()
        objectives = conn.execute(select(func.count()).select_from(models.Objective)).scalar()
    assert (row.fetched, row.inserted, row.quarantined, row.status) == (4, 3, 1, "succeeded")
    assert row.watermark == watermark
    assert row.cursor == {"page": 1}
    assert (quarantine.external_id, quarantine.payload) == ("666", {"id": "666"})
    assert objectives == 1
    assert last_watermark(engine, source_id) == watermark


def test_reconcile_marks_missing_items_deleted_and_a_return_undeletes(engine: Engine) -> None:
    source_id = _source(engine)
    run = start_run(engine, source_id, "full")
    load_batch(engine, run, source_id, [work_item(str(n)) for n in range(1, 6)])
    assert mark_missing_deleted(engine, run, source_id, {"1", "2", "3"}) == 2
    assert mark_missing_deleted(engine, run, source_id, {"1", "2", "3"}) == 0
    rows = _rows(engine)
    assert len(rows) == 5
    assert {k for k, v in rows.items() if v.deleted_at is not None} == {"4", "5"}
    counts = load_batch(engine, run, source_id, [work_item("4")])
    assert counts.updated == 1
    assert _rows(engine)["4"].deleted_at is None


def test_timestamps_come_back_aware_in_utc(engine: Engine) -> None:
    source_id = _source(engine)
    berlin = datetime(2026, 10, 5, 11, 0, tzinfo=UTC).astimezone()
    item = work_item("5", updated_at=berlin)
    load_batch(engine, start_run(engine, source_id, "full"), source_id, [item])
    stored = _rows(engine)["5"].updated_at
    assert stored == berlin and stored.tzinfo is not None


@pytest.mark.postgres
def test_concurrent_loads_of_the_same_batch_leave_no_duplicates(postgres_server: str) -> None:
    from tests.conftest import _reset_postgres
    from warehouse.db import open_warehouse

    _reset_postgres(postgres_server)
    engine = open_warehouse(postgres_server, pool_size=8)
    source_id = _source(engine)
    batch = [
        work_item(str(n), parent_external_id=str(n - 1) if n > 1 else None) for n in range(1, 301)
    ]
    changed = [item.model_copy(update={"status": "Doing"}) for item in batch]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def load(items: list) -> None:
        try:
            barrier.wait()
            load_batch(engine, start_run(engine, source_id, "full"), source_id, items)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    for round_ in (batch, changed):
        threads = [threading.Thread(target=load, args=(round_,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    with engine.connect() as conn:
        item = models.WorkItem
        assert conn.execute(select(func.count()).select_from(item)).scalar() == 300
        assert conn.execute(select(func.count(item.parent_id))).scalar() == 299
        history = models.WorkItemHistory
        duplicates = conn.execute(
            select(history.work_item_id, history.field, func.count())
            .group_by(history.work_item_id, history.field)
            .having(func.count() > 1)
        ).all()
    assert duplicates == []
    engine.dispose()
