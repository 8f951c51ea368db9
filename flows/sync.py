"""Syncing one source into the warehouse: plain Python orchestration, no business rules.

start (or resume) a run -> discover tracker facts -> per partition of the scope (a Jira project,
an Azure DevOps work item type; one when the scope does not split): fetch pages (the connector
downloads the next page while this one is mapped and loaded) -> map each raw item (failures are
quarantined) -> load each batch with the partition's cursor in one transaction -> once every
partition is done: the source watermark -> reconcile deletes -> finish.

A killed sync leaves its run `running` with the cursor of each partition's last committed batch;
the next sync of the same source and mode continues that run: finished partitions are skipped,
the others go on from their cursor. One sync per source at a time. `sync_source` runs partitions
on threads; flows/portfolio.py runs the same `SourceSync` steps with partitions as Prefect tasks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Generic

from sqlalchemy import Engine

from connectors.base import (
    WHOLE_SCOPE,
    Connector,
    FactsT,
    FetchesByIds,
    FetchPlan,
    Page,
    Partition,
)
from connectors.http import RequestGate
from flows.collector import relaxed_collector
from mapping.config import AzureDevOpsSource, JiraSource, LpmConfig
from mapping.mapper import Mapper, MappingError
from mapping.model import Objective, Quarantined, WorkItem
from warehouse.load import (
    BatchCounts,
    compare_scope,
    ensure_source,
    finish_run,
    last_watermark,
    load_batch,
    mark_deleted,
    resume_run,
    start_run,
    unfinished_run,
)

SourceConfig = JiraSource | AzureDevOpsSource


@dataclass(frozen=True)
class SourceKind(Generic[FactsT]):
    """How to reach one kind of tracker: its connector, and the mapper built from its facts."""

    connect: Callable[..., Connector[FactsT]]
    """`connect(source, gate=None)`: the connector of a source, its requests passing `gate`."""
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


COUNTS = ("fetched", "inserted", "updated", "unchanged", "deleted", "quarantined")
"""The per-item counts a sync reports."""


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
    caught_up_by: int | None = None
    """The run that followed a resumed one in the same sync (see `sync_source`); the counts are
    both runs'."""

    def add(self, counts: BatchCounts) -> None:
        self.fetched += counts.fetched
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.quarantined += counts.quarantined
        self.history += counts.history
        self.pages += 1

    def then(self, later: SyncResult) -> SyncResult:
        """This run's result followed by `later`'s, the catch-up run after it: counts summed."""
        summed = {
            name: getattr(self, name) + getattr(later, name)
            for name in (*COUNTS, "history", "pages")
        }
        http = {
            name: min(value, later.http[name])
            if name == "lowest_concurrency"
            else value + later.http[name]
            for name, value in self.http.items()
            if name in later.http
        }
        return replace(self, **summed, expected=None, http=http, caught_up_by=later.run_id)


class SyncFailed(RuntimeError):
    """A source's sync stopped; the batches before the failure stay committed."""

    def __init__(self, source: str, run_id: int | None, cause: BaseException) -> None:
        told = str(cause)  # HTTP errors already start with the source's name
        super().__init__(told if told.startswith(f"{source}: ") else f"{source}: {told}")
        self.source = source
        self.run_id = run_id
        self.cause = cause


class SyncStopped(RuntimeError):
    """A partition stopped because another one failed (its batches so far stay committed)."""


Progress = Callable[[SyncResult], None]


@dataclass(frozen=True)
class PartitionState:
    """Where one partition of a run stands: its connector cursor, and once its fetch ended,
    the watermark it reached. Kept in the run's ledger cursor, committed with each batch."""

    cursor: dict[str, Any] | None = None
    done: bool = False
    watermark: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "done": self.done,
            "watermark": self.watermark.isoformat() if self.watermark else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> PartitionState:
        """A stored state; anything unreadable starts the partition again (loading is an
        idempotent upsert, so that costs time, never correctness)."""
        if not isinstance(data, dict):
            return cls()
        try:
            mark = data.get("watermark")
            return cls(
                cursor=data.get("cursor") if isinstance(data.get("cursor"), dict) else None,
                done=bool(data.get("done")),
                watermark=datetime.fromisoformat(mark) if mark else None,
            )
        except (TypeError, ValueError):
            return cls()


def ledger_states(cursor: dict[str, Any] | None) -> dict[str, PartitionState]:
    """Partition states from a run's ledger cursor (a cursor of an unpartitioned run of an
    earlier version is the whole scope's)."""
    if not cursor:
        return {}
    if "partitions" not in cursor:
        return {WHOLE_SCOPE.key: PartitionState(cursor=cursor)}
    stored = cursor["partitions"]
    if not isinstance(stored, dict):
        return {}
    return {str(key): PartitionState.from_json(value) for key, value in stored.items()}


def ledger_cursor(states: dict[str, PartitionState]) -> dict[str, Any]:
    return {"partitions": {key: state.to_json() for key, state in states.items()}}


class SourceSync:
    """One run of one source's sync, split into the partitions its connector declares.

    `open` discovers the tracker and starts the run, or continues the source's unfinished run of
    the same mode (partitions it finished are not fetched again; the others go on from their
    cursor). `sync_partition` fetches, maps and loads one partition, committing every batch with
    that partition's cursor. `finish`, only once every partition is done, commits the source's
    watermark (the oldest partition's: all in scope changed before it is delivered), fills gaps,
    reconciles deletes and closes the run. A partition's own watermark is never the source's, so
    a run with a partition killed or failed resumes without losing anything.

    Partitions may run on several threads at once (Prefect tasks): they share the connector, so
    the site's rate and concurrency limits hold for all of them, and fetch and map in parallel,
    but take turns to load (one writer per source): parent links cross partitions, and two
    concurrent transactions would each miss the other's uncommitted parent or child.
    """

    def __init__(
        self,
        config: LpmConfig,
        source_name: str,
        engine: Engine,
        *,
        gate: RequestGate | None = None,
    ) -> None:
        self.source: SourceConfig = config.source(source_name)
        self.engine = engine
        self._kind = KINDS[self.source.kind]()
        self.source_id = ensure_source(
            engine, self.source.name, self.source.kind, self.source.base_url
        )
        self.connector = self._kind.connect(self.source, gate=gate)
        self.run_id: int | None = None
        self.partitions: dict[str, Partition] = {}
        self.result = SyncResult(source=self.source.name, run_id=0, mode="")
        self._states: dict[str, PartitionState] = {}
        self._expected: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._facts: Any = None
        self._mapper: Mapper | None = None
        self._plan = FetchPlan(full=True)
        self._relaxed = False
        """Whether this sync holds `relaxed_collector` (from `open` until `close`)."""

    @classmethod
    def open(
        cls,
        config: LpmConfig,
        source_name: str,
        engine: Engine,
        *,
        full: bool = False,
        gate: RequestGate | None = None,
    ) -> SourceSync:
        """Discover and start (or resume) the run; raises SyncFailed, the run recorded."""
        job = cls(config, source_name, engine, gate=gate)
        relaxed_collector.acquire()
        job._relaxed = True
        try:
            job._start(full)
        except Exception as exc:
            failure = job.fail(exc)
            job.close()
            raise failure from exc
        return job

    def _start(self, full: bool) -> None:
        source, engine = self.source, self.engine
        self._facts = self.connector.discover()
        self._mapper = self._kind.mapper(source, self._facts)
        committed = last_watermark(engine, self.source_id)
        watermark = None if full else committed
        mode = "incremental" if watermark is not None else "full"
        overlap = timedelta(minutes=source.sync.overlap_minutes)
        self._plan = FetchPlan(
            full=mode == "full",
            since=watermark - overlap if watermark is not None else None,
            delivered_before=committed - overlap if committed is not None else None,
        )
        self.partitions = {part.key: part for part in self.connector.partitions(self._facts)}
        previous = unfinished_run(engine, self.source_id)
        stored: dict[str, PartitionState] = {}
        if previous is not None and previous.mode == mode and previous.cursor is not None:
            self.run_id = previous.id
            resume_run(engine, self.run_id)
            stored = ledger_states(previous.cursor)
        else:
            if previous is not None:
                finish_run(engine, previous.id, "abandoned", error="superseded by a new run")
            self.run_id = start_run(engine, self.source_id, mode)
        self._states = {key: stored.get(key, PartitionState()) for key in self.partitions}
        self.result = SyncResult(
            source=source.name, run_id=self.run_id, mode=mode, resumed=bool(stored)
        )

    @property
    def pending(self) -> list[str]:
        """Keys of the partitions still to fetch, in the connector's order."""
        with self._lock:
            return [key for key, state in self._states.items() if not state.done]

    def sync_pending(self, progress: Progress | None = None) -> None:
        """The pending partitions, up to `sync.concurrency` at once on threads; the first
        failure stops the others at their next batch and is raised."""
        pending = self.pending
        if len(pending) <= 1:
            for key in pending:
                self.sync_partition(key, progress)
            return
        workers = min(self.source.sync.concurrency, len(pending))
        pool = ThreadPoolExecutor(workers, thread_name_prefix=f"{self.source.name}-partition")
        try:
            futures = [pool.submit(self.sync_partition, key, progress) for key in pending]
            for future in as_completed(futures):
                future.result()
        except BaseException:
            self._stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def sync_partition(self, key: str, progress: Progress | None = None) -> int:
        """Fetch, map and load one partition from its cursor; returns the items it loaded.

        Every batch commits with the partition's new cursor, so a retry or the next run goes on
        after the last committed batch; the partition's end commits it as done."""
        assert self._mapper is not None, "open() the sync first"
        with self._lock:
            start = self._states[key]
        if start.done:
            return 0
        plan = replace(self._plan, cursor=start.cursor, partition=self.partitions[key])
        loaded = 0
        for page in batched(self.connector.pages(self._facts, plan)):
            reached = PartitionState(page.cursor, page.watermark is not None, page.watermark)
            self._load(page, progress, (key, reached))
            loaded += len(page.items)
        with self._lock:
            ended = self._states[key]
        if not ended.done:  # the fetch ended without a watermark: done, with none to keep
            self._load(None, None, (key, replace(ended, done=True)))
        return loaded

    def _load(
        self,
        page: Page | None,
        progress: Progress | None,
        reached: tuple[str, PartitionState] | None = None,
    ) -> None:
        """Map and load a batch; with `reached`, the partition's new state commits with it."""
        assert self._mapper is not None and self.run_id is not None
        raws = page.items if page is not None else []
        items, objectives, quarantined = map_items(self._mapper, raws)
        with self._lock:
            if reached is not None and self._stop.is_set():
                raise SyncStopped(f"{self.source.name}: partition {reached[0]} stopped")
            states = self._states
            if reached is not None:
                states = {**states, reached[0]: reached[1]}
            counts = load_batch(
                self.engine,
                self.run_id,
                self.source_id,
                items,
                objectives=objectives,
                quarantined=quarantined,
                cursor=ledger_cursor(states) if reached is not None else None,
            )
            self._states = states
            if page is not None:
                self.result.add(counts)
            if page is not None and page.expected is not None and reached is not None:
                self._expected[reached[0]] = page.expected
                self.result.expected = sum(self._expected.values())
        if progress is not None and raws:
            progress(self.result)

    def finish(self, progress: Progress | None = None) -> SyncResult:
        """Once every partition is done: the source watermark, gaps, deletes, the run closed."""
        assert self.run_id is not None
        with self._lock:
            states = dict(self._states)
        unfinished = [key for key, state in states.items() if not state.done]
        if unfinished:
            raise RuntimeError(f"partitions not synced yet: {', '.join(unfinished)}")
        marks = [state.watermark for state in states.values()]
        if marks and all(mark is not None for mark in marks):
            watermark = min(mark for mark in marks if mark is not None)
            load_batch(self.engine, self.run_id, self.source_id, [], watermark=watermark)
        in_scope = self.connector.list_ids(self._facts)
        diff = compare_scope(self.engine, self.source_id, in_scope)
        if diff.gaps and isinstance(self.connector, FetchesByIds):
            for page in batched(self.connector.fetch_ids(self._facts, diff.gaps)):
                self._load(page, progress)
        self.result.deleted = mark_deleted(self.engine, self.run_id, diff.gone)
        finish_run(self.engine, self.run_id, "succeeded")
        self.result.http = self.connector.stats.snapshot()
        return self.result

    def fail(self, exc: BaseException) -> SyncFailed:
        """Record the run as failed (partitions keep their cursors for the next run)."""
        if self.run_id is not None:
            finish_run(self.engine, self.run_id, "failed", error=str(exc))
        return SyncFailed(self.source.name, self.run_id, exc)

    def close(self) -> None:
        self.connector.close()
        if self._relaxed:
            self._relaxed = False
            relaxed_collector.release()


def sync_source(
    config: LpmConfig,
    source_name: str,
    engine: Engine,
    *,
    full: bool = False,
    progress: Progress | None = None,
    gate: RequestGate | None = None,
) -> SyncResult:
    """Sync one configured source, its partitions on threads; raises SyncFailed (with the run
    recorded as failed). The Prefect flow runs the same steps with partitions as tasks.

    A resumed run stops at the scope as it was listed when that run began, which may be long
    ago: an incremental run then brings in what changed since, so a sync that succeeds always
    leaves the warehouse current."""
    result = _sync_once(config, source_name, engine, full=full, progress=progress, gate=gate)
    if result.resumed:
        later = _sync_once(config, source_name, engine, full=False, progress=progress, gate=gate)
        result = result.then(later)
    return result


def _sync_once(
    config: LpmConfig,
    source_name: str,
    engine: Engine,
    *,
    full: bool,
    progress: Progress | None,
    gate: RequestGate | None,
) -> SyncResult:
    job = SourceSync.open(config, source_name, engine, full=full, gate=gate)
    try:
        job.sync_pending(progress)
        return job.finish(progress)
    except Exception as exc:
        raise job.fail(exc) from exc
    finally:
        job.close()


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
