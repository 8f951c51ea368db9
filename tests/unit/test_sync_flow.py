"""The generic sync orchestration's pure parts: batching pages, quarantining bad items and
adding a catch-up run's counts to a resumed run's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import Page
from flows.sync import SyncResult, batched, map_items
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


def test_a_catch_up_run_adds_its_counts_to_the_resumed_run() -> None:
    resumed = SyncResult("jira", 7, "full", resumed=True, fetched=900, inserted=900, pages=9)
    resumed.expected = 900
    resumed.http = {"requests": 12.0, "waited_seconds": 1.5, "lowest_concurrency": 4.0}
    later = SyncResult("jira", 8, "incremental", fetched=30, updated=20, unchanged=10, deleted=2)
    later.http = {"requests": 3.0, "waited_seconds": 0.5, "lowest_concurrency": 2.0}
    both = resumed.then(later)
    assert (both.run_id, both.mode, both.resumed, both.caught_up_by) == (7, "full", True, 8)
    assert (both.fetched, both.inserted, both.updated, both.unchanged) == (930, 900, 20, 10)
    assert (both.deleted, both.pages, both.expected) == (2, 9, None)
    assert both.http == {"requests": 15.0, "waited_seconds": 2.0, "lowest_concurrency": 2.0}
