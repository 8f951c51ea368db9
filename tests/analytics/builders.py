"""Test portfolios for the analytics: items built from a few words, loaded the real way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from mapping.model import HistoryChange, Level, Objective, StatusCategory, WorkItem
from warehouse import models
from warehouse.load import ensure_source, load_batch, mark_missing_deleted, start_run
from warehouse.models import table_of

CREATED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
STATUS_NAMES = {"todo": "To Do", "doing": "In Progress", "done": "Done", "removed": "Cancelled"}


def item(external_id: str, level: str, status_category: str = "todo", **fields: Any) -> WorkItem:
    """A mapped item; its status name follows its category unless given."""
    values: dict[str, Any] = {
        "external_id": external_id,
        "key": f"K-{external_id}",
        "level": Level(level),
        "item_type": level.title(),
        "title": f"Item {external_id}",
        "status": STATUS_NAMES[status_category],
        "status_category": StatusCategory(status_category),
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(days=1),
    }
    values.update(fields)
    return WorkItem(**values)


def moves(*steps: tuple[datetime, str], start: str = "To Do") -> tuple[HistoryChange, ...]:
    """Changelog entries for status names entered in order (categories follow the names).

    Each step is (when, status name); the first leaves `start`, the status the item was
    created in. A name maps to its category as in STATUS_NAMES, "Blocked" counting as doing.
    """
    category = {name: key for key, name in STATUS_NAMES.items()} | {"Blocked": "doing"}
    changes: list[HistoryChange] = []
    before = start
    for number, (when, status) in enumerate(steps):
        change_id = f"c{number}"
        changes.append(
            HistoryChange(
                change_id=change_id,
                changed_at=when,
                field="status",
                from_value=before,
                to_value=status,
            )
        )
        if category[status] != category[before]:
            changes.append(
                HistoryChange(
                    change_id=change_id,
                    changed_at=when,
                    field="status_category",
                    from_value=category[before],
                    to_value=category[status],
                )
            )
        before = status
    return tuple(changes)


def objective(external_id: str, **fields: Any) -> Objective:
    values: dict[str, Any] = {
        "external_id": external_id,
        "key": f"OBJ-{external_id}",
        "title": f"Objective {external_id}",
        "status_category": StatusCategory.doing,
        "updated_at": CREATED,
    }
    values.update(fields)
    return Objective(**values)


def load(
    engine: Engine,
    source: str,
    items: Sequence[WorkItem],
    *,
    objectives: Sequence[Objective] = (),
    deleted: Iterable[str] = (),
) -> int:
    """Load through the real loader; ids in `deleted` are then reconciled away."""
    source_id = ensure_source(engine, source, "jira", f"https://{source}.example")
    run = start_run(engine, source_id, "full")
    load_batch(engine, run, source_id, items, objectives=objectives)
    gone = set(deleted)
    if gone:
        present = [i.external_id for i in items] + [o.external_id for o in objectives]
        mark_missing_deleted(engine, run, source_id, [x for x in present if x not in gone])
    return source_id


def external_ids(engine: Engine) -> dict[int, str]:
    table = table_of(models.WorkItem)
    with engine.connect() as conn:
        return dict(conn.execute(select(table.c.id, table.c.external_id)).all())


def rows(engine: Engine, model: type[models.Base]) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(table_of(model))).mappings()]


def by_item(engine: Engine, model: type[models.Base]) -> dict[str, dict[str, Any]]:
    """Rows keyed by the external id of their work item (`work_item_id` replaced by it)."""
    names = external_ids(engine)
    keyed: dict[str, dict[str, Any]] = {}
    for row in rows(engine, model):
        row = dict(row)
        keyed[names[row.pop("work_item_id")]] = row
    return keyed
