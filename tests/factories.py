"""Small builders for mapped items, so tests state only what they are about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mapping.model import Level, StatusCategory, WorkItem

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def work_item(external_id: str, **overrides: Any) -> WorkItem:
    fields: dict[str, Any] = {
        "external_id": external_id,
        "key": f"ART-{external_id}",
        "level": Level.story,
        "item_type": "Story",
        "title": f"Item {external_id}",
        "status": "To Do",
        "status_category": StatusCategory.todo,
        "estimate": 3.0,
        "team": "Team A",
        "created_at": T0,
        "updated_at": T0 + timedelta(hours=1),
        "raw": {"id": external_id, "fields": {"summary": f"Item {external_id}"}},
    }
    fields.update(overrides)
    return WorkItem(**fields)
