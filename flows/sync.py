"""Syncing one source into the warehouse: plain Python orchestration, no business rules.

start (or resume) a run -> discover tracker facts -> fetch pages (the connector downloads the next
page while this one is mapped and loaded) -> map each raw item (failures are quarantined) ->
load each page with its cursor and watermark in one transaction -> reconcile deletes -> finish.

A killed sync leaves its run `running` with the cursor of its last committed page; the next sync
of the same source and mode continues that run from the cursor. One sync per source at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic

from sqlalchemy import Engine

from connectors.base import Connector, FactsT, FetchesByIds, FetchPlan, Page
from mapping.config import AzureDevOpsSource, JiraSource, LpmConfig
from mapping.mapper import Mapper, MappingError
from mapping.model import Objective, Quarantined, WorkItem
from warehouse.load import (
    BatchCounts,
    ensure_source,
    finish_run,
    last_watermark,
    load_batch,
    mark_missing_deleted,
    not_in_warehouse,
    resume_run,
    start_run,
    unfinished_run,
)

SourceConfig = JiraSource | AzureDevOpsSource


@dataclass(frozen=True)
class SourceKind(Generic[FactsT]):
    """How to reach one kind of tracker: its connector, and the mapper built from its facts."""

    connect: Callable[[Any], Connector[FactsT]]
    mapper: Callable[[Any, FactsT], Mapper]


def _jira() -> SourceKind[Any]:
    from connectors.jira import JiraConnector
    from mapping.jira import JiraMapper

    return SourceKind(JiraConnector.from_config, JiraMapper)


def _azure_devops() -> SourceKind[Any]:
    from connectors.azure_devops import AzureDevOpsConnector
    from mapping.azure_devops import AzureDevOpsMapper

    return SourceKind(AzureDevOpsConnector.from_config, AzureDevOpsMapper)


KINDS: dict[str, Callable[[], SourceKind[Any]]] = {"jira": _jira, "azure_devops": _azure_devops}
"""`kind` -> loader of its connector and mapper (imported only when a source of it syncs)."""


@dataclass
class SyncResult:
    source: str
    run_id: int
    mode: str
    resumed: bool = False
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    history: int = 0
    pages: int = 0
    expected: int | None = None
    """Items the fetch will deliver, when the tracker said: progress is fetched / expected."""
    http: dict[str, float] = field(default_factory=dict)

    def add(self, counts: BatchCounts) -> None:
        self.fetched += counts.fetched
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.quarantined += counts.quarantined
        self.history += counts.history
        self.pages += 1


class SyncFailed(RuntimeError):
    """A source's sync stopped; the batches before the failure stay committed."""

    def __init__(self, source: str, run_id: int | None, cause: BaseException) -> None:
        super().__init__(f"{source}: {cause}")
        self.source = source
        self.run_id = run_id
        self.cause = cause


Progress = Callable[[SyncResult], None]


def sync_source(
    config: LpmConfig,
    source_name: str,
    engine: Engine,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> SyncResult:
    """Sync one configured source; raises SyncFailed (with the run recorded as failed)."""
    source = config.source(source_name)
    kind = KINDS[source.kind]()
    source_id = ensure_source(engine, source.name, source.kind, source.base_url)
    connector = kind.connect(source)
    run_id: int | None = None
    try:
        facts = connector.discover()
        mapper = kind.mapper(source, facts)
        committed = last_watermark(engine, source_id)
        watermark = None if full else committed
        mode = "incremental" if watermark is not None else "full"
        overlap = timedelta(minutes=source.sync.overlap_minutes)
        since = watermark - overlap if watermark is not None else None
        delivered = committed - overlap if committed is not None else None
        plan = FetchPlan(full=mode == "full", since=since, delivered_before=delivered)
        previous = unfinished_run(engine, source_id)
        if previous is not None and previous.mode == mode and previous.cursor is not None:
            run_id = previous.id
            resume_run(engine, run_id)
            plan.cursor = previous.cursor
        else:
            if previous is not None:
                finish_run(engine, previous.id, "abandoned", error="superseded by a new run")
            run_id = start_run(engine, source_id, mode)
        result = SyncResult(
            source=source.name, run_id=run_id, mode=mode, resumed=plan.cursor is not None
        )

        def load(page: Page) -> None:
            if page.expected is not None:
                result.expected = page.expected
            items, objectives, quarantined = map_items(mapper, page.items)
            counts = load_batch(
                engine,
                run_id,
                source_id,
                items,
                objectives=objectives,
                quarantined=quarantined,
                watermark=page.watermark,
                cursor=page.cursor,
            )
            result.add(counts)
            if progress is not None:
                progress(result)

        for page in batched(connector.pages(facts, plan)):
            load(page)
        in_scope = connector.list_ids(facts)
        gaps = not_in_warehouse(engine, source_id, in_scope)
        if gaps and isinstance(connector, FetchesByIds):
            for page in batched(connector.fetch_ids(facts, gaps)):
                load(page)
        result.deleted = mark_missing_deleted(engine, run_id, source_id, in_scope)
        finish_run(engine, run_id, "succeeded")
        result.http = connector.stats.snapshot()
        return result
    except Exception as exc:
        if run_id is not None:
            finish_run(engine, run_id, "failed", error=str(exc))
        raise SyncFailed(source.name, run_id, exc) from exc
    finally:
        connector.close()


LOAD_BATCH = 1000
"""Items per warehouse transaction: pages are merged up to this, which spreads each
transaction's fixed cost (statements, commit) thin while keeping resume points close."""


def batched(pages: Iterable[Page], size: int = LOAD_BATCH) -> Iterator[Page]:
    """Consecutive pages merged into batches of at least `size` items; a batch carries the
    cursor of its last page (pages come in order, so that cursor covers all of them), and a page
    with a watermark ends its batch so the watermark commits with it."""
    items: list[dict[str, Any]] = []
    expected: int | None = None
    for page in pages:
        items.extend(page.items)
        expected = page.expected if page.expected is not None else expected
        if len(items) >= size or page.watermark is not None:
            yield Page(items, cursor=page.cursor, watermark=page.watermark, expected=expected)
            items = []
            continue
        last = page
    if items:
        yield Page(items, cursor=last.cursor, expected=expected)


def map_items(
    mapper: Mapper, raws: list[dict[str, Any]]
) -> tuple[list[WorkItem], list[Objective], list[Quarantined]]:
    """Map a page; an item that fails is quarantined with its error and whole payload."""
    items: list[WorkItem] = []
    objectives: list[Objective] = []
    quarantined: list[Quarantined] = []
    for raw in raws:
        try:
            mapped = mapper.map(raw)
        except MappingError as exc:
            quarantined.append(
                Quarantined(external_id=mapper.external_id(raw), error=str(exc), payload=raw)
            )
            continue
        if isinstance(mapped, Objective):
            objectives.append(mapped)
        else:
            items.append(mapped)
    return items, objectives, quarantined
