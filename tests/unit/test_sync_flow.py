"""The generic sync orchestration's pure parts: batching pages and quarantining bad items."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import Page
from flows.sync import batched, map_items
from mapping.mapper import MappingError
from mapping.model import Objective, WorkItem
from tests.factories import work_item

WATERMARK = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _page(n: int, start: int, **extra: Any) -> Page:
    return Page(
        [{"id": str(i)} for i in range(start, start + n)], cursor={"at": start + n}, **extra
    )


def test_pages_merge_into_batches_carrying_the_last_cursor() -> None:
    pages = [_page(400, 0), _page(400, 400), _page(400, 800), _page(100, 1200)]
    pages.append(Page([], cursor={"at": 1300}, watermark=WATERMARK, expected=1300))
    batches = list(batched(pages, size=1000))
    assert [len(b.items) for b in batches] == [1200, 100]
    assert [b.cursor for b in batches] == [{"at": 1200}, {"at": 1300}]
    assert [b.watermark for b in batches] == [None, WATERMARK]
    assert batches[1].expected == 1300


def test_a_trailing_partial_batch_is_kept() -> None:
    batches = list(batched([_page(10, 0), _page(5, 10)], size=1000))
    assert [(len(b.items), b.cursor, b.watermark) for b in batches] == [(15, {"at": 15}, None)]


class _Mapper:
    def map(self, raw: dict[str, Any]) -> WorkItem | Objective:
        if raw["id"] == "bad":
            raise MappingError("estimate: expected a number, got 'x'", field="estimate")
        return work_item(raw["id"])

    def external_id(self, raw: dict[str, Any]) -> str:
        return str(raw["id"])


def test_an_item_that_fails_mapping_is_quarantined_whole_and_the_rest_mapped() -> None:
    bad = {"id": "bad", "fields": {"estimate": "x"}}
    items, objectives, quarantined = map_items(_Mapper(), [{"id": "1"}, bad, {"id": "2"}])
    assert [i.external_id for i in items] == ["1", "2"] and objectives == []
    assert [(q.external_id, q.error, q.payload) for q in quarantined] == [
        ("bad", "estimate: expected a number, got 'x'", bad)
    ]
