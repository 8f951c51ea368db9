"""How the loader writes rows: stable hashes, stored values equal to SQLAlchemy's own, big batches
in one read, history text made storable. On real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, func, insert, select

from mapping.model import Category, HistoryChange, Level, PortfolioState, Quarantined, WorkItem
from tests.factories import T0, work_item
from warehouse import models
from warehouse.load import (
    content_hash,
    ensure_source,
    load_batch,
    start_run,
    work_item_row,
)

BERLIN = timezone(timedelta(hours=2))


def _epic(external_id: str, **overrides: Any) -> WorkItem:
    """An item with a value in every kind of column: enums, dates, offsets, JSON, a flag."""
    fields: dict[str, Any] = {
        "level": Level.epic,
        "item_type": "Epic",
        "parent_external_id": "7",
        "business_value": 8.0,
        "category": Category.enabler,
        "portfolio_state": PortfolioState.implementing,
        "flagged": True,
        "start_date": date(2026, 10, 1),
        "target_date": date(2026, 12, 18),
        "updated_at": datetime(2026, 10, 6, 11, 30, 0, 250000, tzinfo=BERLIN),
        "resolved_at": datetime(2026, 10, 6, 11, 30, tzinfo=BERLIN),
        "writeback_values": {"wsjf": 4.5, "rank": "0|hzzzzz:"},
        "raw": {"id": external_id, "fields": {"summary": "Épic", "labels": ["a", "b"], "n": 1.5}},
    }
    fields.update(overrides)
    return work_item(external_id, **fields)


def test_content_hash_of_an_item_is_the_same_as_in_earlier_releases() -> None:
    """A changed hash recipe would make the next sync rewrite every stored item."""
    row = work_item_row(_epic("42"), 1, T0)
    assert row["content_hash"] == "ba81d58b95fad4e606c8831e83165bcc"
    assert content_hash({"b": 1, "a": "x"}) == content_hash({"a": "x", "b": 1})


def test_loaded_values_are_stored_exactly_as_a_core_insert_stores_them(engine: Engine) -> None:
    source_id = ensure_source(engine, "jira-cloud", "jira", "https://jira.example")
    change = HistoryChange(
        change_id="10042",
        changed_at=datetime(2026, 10, 6, 11, 30, 0, 250000, tzinfo=BERLIN),
        field="status",
        from_value="To Do",
        to_value="Doing",
    )
    run = start_run(engine, source_id, "full")
    load_batch(engine, run, source_id, [_epic("42", history=(change,))])
    table, history = models.WorkItem.__table__, models.WorkItemHistory.__table__
    with engine.begin() as conn:
        loaded_id = conn.execute(select(table.c.id).where(table.c.external_id == "42")).scalar()
        twin = _epic("42").model_copy(update={"external_id": "43"})
        row = work_item_row(twin, source_id, datetime.now(UTC))
        core_id = conn.execute(insert(table).values(**row, parent_id=None)).inserted_primary_key
        assert core_id is not None
        conn.execute(
            insert(history).values(work_item_id=core_id[0], **change.model_dump()),
        )
    with engine.connect() as conn:
        # The driver's own values: text on SQLite, exactly as stored.
        items = (
            conn.exec_driver_sql("SELECT * FROM work_item ORDER BY external_id").mappings().all()
        )
        changes = conn.exec_driver_sql(
            "SELECT change_id, changed_at, field, from_value, to_value"
            " FROM work_item_history ORDER BY work_item_id"
        ).all()
    skip = {"id", "external_id", "content_hash", "synced_at"}
    loaded, core = ({k: v for k, v in r.items() if k not in skip} for r in items)
    assert loaded == core
    assert items[0]["id"] == loaded_id
    assert changes[0] == changes[1]


def test_a_batch_of_thousands_with_children_before_parents_links_every_child(
    engine: Engine,
) -> None:
    """Keys sort children (`c…`) before their parents (`p…`): all arrive in one batch, past
    any IN-list or chunk size, and each child is linked once its parent is written."""
    source_id = ensure_source(engine, "jira-cloud", "jira", "https://jira.example")
    parents = [work_item(f"p{n:04}", level=Level.feature) for n in range(100)]
    opened = HistoryChange(
        change_id="1", changed_at=T0, field="status", from_value=None, to_value="To Do"
    )
    children = [
        work_item(f"c{n:04}", parent_external_id=f"p{n % 100:04}", history=(opened,))
        for n in range(1_400)
    ]
    batch = children + parents
    run = start_run(engine, source_id, "full")
    first = load_batch(engine, run, source_id, batch)
    second = load_batch(engine, run, source_id, batch)
    assert (first.inserted, first.history) == (1_500, 1_400)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 1_500)
    item = models.WorkItem.__table__
    parent = item.alias("parent")
    with engine.connect() as conn:
        links = conn.execute(
            select(item.c.parent_external_id, parent.c.external_id)
            .select_from(item)
            .join(parent, parent.c.id == item.c.parent_id)
        ).all()
        history = conn.execute(
            select(func.count()).select_from(models.WorkItemHistory.__table__)
        ).scalar()
    assert len(links) == 1_400
    assert all(named == linked for named, linked in links)
    assert history == 1_400


def test_nul_characters_in_a_changelog_are_stored_as_the_replacement_character(
    engine: Engine,
) -> None:
    source_id = ensure_source(engine, "jira-cloud", "jira", "https://jira.example")
    change = HistoryChange(
        change_id="9\x009",
        changed_at=T0,
        field="status",
        from_value="To\x00Do",
        to_value="Done",
    )
    item = work_item("1", history=(change,))
    load_batch(engine, start_run(engine, source_id, "full"), source_id, [item])
    history = models.WorkItemHistory.__table__
    with engine.connect() as conn:
        row = conn.execute(select(history.c.change_id, history.c.from_value)).one()
    assert tuple(row) == ("9\ufffd9", "To\ufffdDo")


def test_an_overlong_malformed_id_is_quarantined_cut_to_the_column(engine: Engine) -> None:
    """A payload whose id is garbage (a list, a script) is kept, its id cut to 64 characters
    ending in an ellipsis, instead of failing the whole batch on PostgreSQL."""
    source_id = ensure_source(engine, "jira-cloud", "jira", "https://jira.example")
    odd = str([None, "<script>alert('lpm')</script><img src=x onerror=alert(1)>"])
    bad = Quarantined(external_id=odd, error="id: missing or empty", payload={"id": [None]})
    run = start_run(engine, source_id, "full")
    first = load_batch(engine, run, source_id, [work_item("1")], quarantined=[bad])
    again = load_batch(engine, run, source_id, [], quarantined=[bad])
    table = models.Quarantine.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.external_id, table.c.payload)).all()
    assert (first.inserted, first.quarantined, again.quarantined) == (1, 1, 0)
    assert [tuple(row) for row in rows] == [(odd[:63] + "\u2026", {"id": [None]})]
