"""Write-back: plan from the warehouse, apply through the connectors, audit every change.

plan_writeback  per source: settle the rows a killed apply left `planned` (an edit of theirs
                over a person's value is owed back), then one planning query
                (warehouse/writeback.py); nothing is sent, and no change of this plan is
                recorded (only the earlier runs' leftover rows are settled).
apply_writeback per source: record every change of the plan as a ledger row (`planned`, or
                `skipped_conflict`) -> discover the tracker -> write back the people's values
                owed (unless changed again since) -> read what the items hold before
                editing them, each batch while the one before is written (Jira: 100 items a
                bulk read; Azure DevOps: 25, each edit then guarded by `test /rev`, a stale
                revision re-read and re-planned once); a value that moved since the plan is
                re-planned once with the fresh value (a person's edit becomes
                `skipped_conflict`) -> write each item's changed fields in one edit (Jira
                `notifyUsers=false`) -> Jira, which has no conditional edit: read the batch's
                changelog; an edit of ours that replaced another value than the one read (a
                person saved in between, or before a PUT resent after a 5xx) is undone by
                writing the person's value back, and the change is `skipped_conflict` -> rank
                scopes: read the rank values, re-plan the minimal moves, apply them, read again
                and retry what failed once -> ledger rows settled.
A failure of one item or one move is recorded and the rest goes on. Retries, Retry-After and
rate limits are the shared HTTP client's (connectors/http.py): a 429 is waited out and the same
edit sent again, never a second edit.

Plain Python, no Prefect: the `lpm run` flow wraps these two calls.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, cast, runtime_checkable

from sqlalchemy import Engine

from connectors.base import Connector, DiscoveryError, RankMove, WriteOutcome
from connectors.http import (
    BadRequest,
    Conflict,
    NotFound,
    PermissionDenied,
    RetriesExhausted,
    TrackerError,
)
from connectors.jira import UPDATED, BulkOutcome, FieldEdit
from flows.sync import KINDS, SourceConfig
from flows.throttle import site_gate
from mapping.config import LpmConfig
from mapping.writeback import (
    RANK,
    Outcome,
    as_text,
    decide,
    landing,
    overwrote,
    same,
    shown,
    typed,
)
from warehouse.writeback import (
    APPLIED,
    FAILED,
    PLANNED,
    RESTORE_PENDING,
    SKIPPED_CONFLICT,
    LedgerEntry,
    PendingRestore,
    PlannedChange,
    RankScope,
    Sending,
    SourcePlan,
    mark_sending,
    plan_source,
    record,
    settle_leftovers,
    settle_restores,
)

log = logging.getLogger(__name__)

READ_BATCH = 25
"""Items read together when a revision guards their edits (Azure DevOps)."""
CHECK_BATCH = 100
"""Items read (one bulk read), edited, then checked in the changelog together where edits are
not conditional (Jira): the check, not the read, is what keeps a person's value."""
BULK_MIN = 5
"""Items setting the same values that go in one bulk edit rather than an edit each (Jira
Cloud, number fields): fewer requests for the site and the client (benchmarks/writeback.py)."""
RESTORE_ATTEMPTS = 3
"""Times a person's overwritten value is written back while people keep editing the field."""
RANK_ATTEMPTS = 2
RESTORE_NOTE = "a person's value an edit replaced (the run that made it ended before undoing it)"
SETTLE_BATCH = 100
"""Settled ledger rows written per transaction."""


@dataclass
class WritebackPlan:
    run_id: str
    planned_at: datetime
    force: bool
    sources: list[SourcePlan]

    @property
    def changes(self) -> list[PlannedChange]:
        return [change for plan in self.sources for change in plan.changes]

    @property
    def writes(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.outcome is Outcome.write]

    @property
    def conflicts(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.outcome is Outcome.conflict]


@dataclass(frozen=True)
class ChangeResult:
    source: str
    key: str
    field: str
    status: str
    tracker_value: str | None
    new_value: str | None
    note: str | None = None
    error: str | None = None


@dataclass
class SourceCalls:
    """What one source's apply cost: edits sent, rank calls made, HTTP requests in all."""

    field_writes: int = 0
    """Item edits sent (one per item, all its owned fields together)."""
    rank_calls: int = 0
    """Rank moves sent: one Agile rank call each on Jira; on Azure DevOps each moved item's
    StackRank is written, so `moved_items` is the number of writes there."""
    moved_items: int = 0
    restores: int = 0
    """Edits (among `field_writes`) that put back a person's value one of ours had replaced."""
    bulk_edits: int = 0
    """Bulk edits sent (Jira Cloud), each setting the same values on several items."""
    bulk_items: int = 0
    """Items changed by those bulk edits."""
    requests: int = 0
    http: dict[str, float] = field(default_factory=dict)


@dataclass
class WritebackResult:
    run_id: str
    results: list[ChangeResult] = field(default_factory=list)
    calls: dict[str, SourceCalls] = field(default_factory=dict)
    notices: set[str] = field(default_factory=set)
    """What trackers did otherwise than asked (e.g. watchers notified: no right to suppress)."""

    def counts(self) -> dict[str, int]:
        """Changes per final status (every status, zero included)."""
        found = Counter(result.status for result in self.results)
        return {status: found[status] for status in (APPLIED, SKIPPED_CONFLICT, FAILED)}

    @property
    def write_calls(self) -> int:
        return sum(c.field_writes + c.bulk_edits + c.rank_calls for c in self.calls.values())

    @property
    def clean(self) -> bool:
        """Nothing skipped or failed (exit code 0)."""
        return not any(r.status in (SKIPPED_CONFLICT, FAILED) for r in self.results)


class _RevisionGuarded(Protocol):
    def write_values(
        self,
        facts: Any,
        external_id: str,
        values: Mapping[str, Any],
        expected_rev: int | None = None,
    ) -> WriteOutcome: ...


@runtime_checkable
class _BulkEditing(Protocol):
    """A tracker that sets the same values on many items in one request (Jira Cloud)."""

    def bulk_editable(self, facts: Any, attributes: Sequence[str]) -> bool: ...

    def bulk_write(
        self, facts: Any, external_ids: Sequence[str], values: Mapping[str, Any]
    ) -> BulkOutcome: ...


@runtime_checkable
class _Changelogged(Protocol):
    """A tracker without conditional edits whose changelog says what each edit replaced."""

    def edits_since(
        self, facts: Any, since: Mapping[str, datetime | None], attributes: Sequence[str]
    ) -> dict[str, list[FieldEdit]]: ...


@dataclass(frozen=True)
class _Overwrite:
    """An edit of ours that replaced a person's value, to be undone."""

    index: int
    change: PlannedChange
    victim: str | None
    """The person's value, written back."""
    replaced: str | None
    """The value the restoring edit replaces (what we wrote last)."""
    at: datetime | None


# --- plan -------------------------------------------------------------------------------------


def plan_writeback(
    config: LpmConfig, engine: Engine, *, source: str | None = None, force: bool = False
) -> WritebackPlan:
    """What write-back would change, from the warehouse alone; nothing is sent, and the ledger
    gets no row for this plan.

    First the `planned` rows an earlier apply left behind (killed before it recorded their
    outcome) are settled from what the latest sync saw, so their writes count as ours, and an
    edit of theirs that replaced a person's value is owed back (`SourcePlan.restores`)."""
    sources = [config.source(source)] if source else list(config.sources)
    planned_at = datetime.now(UTC)
    plans = []
    for s in sources:
        settle_leftovers(engine, s.name)
        plans.append(
            plan_source(
                engine,
                s.name,
                fields=list(s.writeback.fields),
                rank=s.writeback.rank,
                health_values={str(k): v for k, v in s.writeback.health_values.items()},
                first_write=s.writeback.first_write,
                force=force,
            )
        )
    return WritebackPlan(str(uuid.uuid4()), planned_at, force, plans)


# --- apply ------------------------------------------------------------------------------------


def apply_writeback(
    config: LpmConfig,
    engine: Engine,
    plan: WritebackPlan,
    *,
    force: bool = False,
    only_configured: bool = False,
) -> WritebackResult:
    """Send the plan's writes; every change ends `applied`, `skipped_conflict` or `failed`.

    `only_configured` applies only the sources whose `writeback.apply` is on (what `lpm run`
    does); the changes of the others stay `planned`.
    """
    force = force or plan.force
    result = WritebackResult(plan.run_id)
    for source_plan in plan.sources:
        source = config.source(source_plan.source)
        if only_configured and not source.writeback.apply:
            continue
        apply = _SourceApply(source, source_plan, engine, plan.run_id, force, result)
        # Every change is a ledger row before anything is sent: a killed run leaves `planned`
        # rows, which the next plan settles (warehouse/writeback.py).
        record(
            engine, plan.run_id, [_planned(c, force) for c in source_plan.changes], plan.planned_at
        )
        for change in source_plan.changes:
            if change.outcome is Outcome.conflict and not force and not apply.settles(change):
                result.results.append(_result(change, SKIPPED_CONFLICT, note=change.reason))
        if apply.fields or apply.scopes or source_plan.restores:
            apply.run()
    return result


def _planned(change: PlannedChange, force: bool) -> LedgerEntry:
    skipped = change.outcome is Outcome.conflict and not force
    return LedgerEntry(
        work_item_id=change.work_item_id,
        field=change.field,
        status=SKIPPED_CONFLICT if skipped else PLANNED,
        tracker_value=change.tracker_value,
        new_value=change.new_value,
        note=change.reason,
        applied_at=datetime.now(UTC) if skipped else None,
    )


class _SourceApply:
    def __init__(
        self,
        source: SourceConfig,
        plan: SourcePlan,
        engine: Engine,
        run_id: str,
        force: bool,
        result: WritebackResult,
    ) -> None:
        self.source = source
        self.plan = plan
        self.engine = engine
        self.run_id = run_id
        self.force = force
        self.result = result
        self.calls = result.calls.setdefault(source.name, SourceCalls())
        self.first_write = source.writeback.first_write
        self.connector: Connector[Any] | None = None
        self.facts: Any = None
        self._unrecorded: list[LedgerEntry] = []
        self.bulk = False
        """Whether this apply sends bulk edits (Jira Cloud, not refused)."""
        self.bulk_fields: set[str] = set()
        """Fields a bulk edit can set (number fields); items editing others are edited alone."""
        todo = [c for c in plan.changes if c.outcome is Outcome.write or force]
        self.fields = [c for c in todo if c.field != RANK]
        moving = {c.external_id for c in todo if c.field == RANK}
        self.scopes = [
            scope
            for scope in plan.scopes
            if any(item.external_id in moving for item in scope.items)
        ]
        """Scopes with a planned move; only these are read again and re-planned."""
        in_scopes = {item.external_id for scope in self.scopes for item in scope.items}
        self.ranks = {
            c.external_id: c for c in plan.changes if c.field == RANK and c.external_id in in_scopes
        }

    def settles(self, change: PlannedChange) -> bool:
        """Whether this apply decides the change's final status (else the plan's stands)."""
        return change.field == RANK and change.external_id in self.ranks

    def run(self) -> None:
        kind = KINDS[self.source.kind]()
        connector = kind.connect(self.source, gate=site_gate(self.source.name))
        self.connector = connector
        try:
            try:
                self.facts = connector.discover()
            except (TrackerError, DiscoveryError) as exc:
                changes = [*self.fields, *self.ranks.values()]
                self._settle([self._failed(c, str(exc)) for c in changes])
                return
            self._restore_leftovers(self.plan.restores)
            self._apply_fields(self.fields)
            self._apply_ranks()
        finally:
            self._flush()
            stats = connector.stats.snapshot()
            self.calls.requests = int(stats["requests"])
            self.calls.http = stats
            connector.close()

    # --- fields --------------------------------------------------------------------------

    def _apply_fields(self, changes: Sequence[PlannedChange]) -> None:
        """Items in batches: each batch read while the one before is written, then written;
        without conditional edits (Jira) each batch's changelog is then checked while the next
        batch is written."""
        by_item: dict[str, list[PlannedChange]] = {}
        for change in changes:
            by_item.setdefault(change.external_id, []).append(change)
        items = list(by_item)
        workers = max(1, self.source.sync.concurrency)
        guarded = any(c.rev is not None for c in changes)
        checked = not guarded and isinstance(self.connector, _Changelogged)
        if checked and self.source.writeback.bulk_edit and isinstance(self.connector, _BulkEditing):
            fields = sorted({c.field for c in changes})
            self.bulk_fields = {f for f in fields if self.connector.bulk_editable(self.facts, [f])}
        self.bulk = bool(self.bulk_fields)
        if self.bulk:
            # Items setting the same values side by side: a batch then holds groups to bulk edit.
            items.sort(key=lambda item: _values_of(by_item[item]))
        size = READ_BATCH if guarded else CHECK_BATCH if checked else workers
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        Settled = list[tuple[PlannedChange, LedgerEntry]]
        name = self.source.name
        with (
            ThreadPoolExecutor(workers, thread_name_prefix=f"{name}-write") as pool,
            ThreadPoolExecutor(1, thread_name_prefix=f"{name}-check") as checker,
        ):
            reads = [pool.submit(self._read_batch, batches[0], by_item)] if batches else []
            written: deque[tuple[list[Future[Settled]], Mapping[str, Any]]] = deque()
            checks: deque[Future[Settled]] = deque()

            def finish(jobs: list[Future[Settled]], fresh: Mapping[str, Any]) -> None:
                entries = [entry for job in jobs for entry in job.result()]
                if not checked:
                    self._settle(entries)
                    return
                checks.append(checker.submit(self._check, entries, fresh))
                while checks and (len(checks) > 1 or checks[0].done()):
                    self._settle(checks.popleft().result())

            for index, batch in enumerate(batches):
                fresh = reads[index].result()
                if index + 1 < len(batches):
                    reads.append(pool.submit(self._read_batch, batches[index + 1], by_item))
                if isinstance(fresh, TrackerError):
                    error = f"reading before the write failed: {fresh}"
                    failed = [self._failed(c, error) for item in batch for c in by_item[item]]
                    self._settle(failed)
                    continue
                self._sending([c for item in batch for c in by_item[item]], fresh)
                written.append((self._batch_jobs(pool, batch, by_item, fresh), fresh))
                while len(written) > 1:
                    finish(*written.popleft())
            while written:
                finish(*written.popleft())
            while checks:
                self._settle(checks.popleft().result())

    def _batch_jobs(
        self,
        pool: ThreadPoolExecutor,
        batch: Sequence[str],
        by_item: Mapping[str, list[PlannedChange]],
        fresh: Mapping[str, Any],
    ) -> list[Future[list[tuple[PlannedChange, LedgerEntry]]]]:
        """A batch's edits in flight: one per item, or one bulk edit per group of at least
        BULK_MIN items setting the same values."""
        groups: dict[tuple[tuple[str, bool, str], ...], list[str]] = {}
        for item in batch:
            bulk = self.bulk and all(c.field in self.bulk_fields for c in by_item[item])
            key = _values_of(by_item[item]) if bulk else (("", False, item),)
            groups.setdefault(key, []).append(item)
        jobs = []
        for items in groups.values():
            if len(items) >= BULK_MIN:
                changes = [(by_item[item], fresh.get(item)) for item in items]
                jobs.append(pool.submit(self._bulk_guarded, changes))
            else:
                jobs += [pool.submit(self._guarded, by_item[i], fresh.get(i)) for i in items]
        return jobs

    def _bulk_guarded(
        self, items: Sequence[tuple[list[PlannedChange], Mapping[str, Any] | None]]
    ) -> list[tuple[PlannedChange, LedgerEntry]]:
        """Items re-planned against what they hold now; those still setting the group's
        values in one bulk edit, the others one by one."""
        settled: list[tuple[PlannedChange, LedgerEntry]] = []
        together: list[list[tuple[PlannedChange, str | None]]] = []
        for changes, current in items:
            done, writes = self._against(changes, current)
            settled += done
            if len(writes) == len(changes):
                together.append(writes)
            elif writes:
                settled += self._guarded_writes(writes)
        if len(together) < BULK_MIN or not self.bulk:
            for writes in together:
                settled += self._guarded_writes(writes)
            return settled
        try:
            return settled + self._bulk(together)
        except Exception as exc:
            log.exception("%s: a bulk edit failed", self.source.name)
            error = f"{type(exc).__name__}: {exc}"
            return settled + [self._failed(c, error, value=t) for w in together for c, t in w]

    def _guarded_writes(
        self, writes: Sequence[tuple[PlannedChange, str | None]]
    ) -> list[tuple[PlannedChange, LedgerEntry]]:
        """One item's edit without a revision to guard it (Jira), whatever goes wrong recorded."""
        try:
            return self._attempt(writes, None) or [
                self._skipped(c, "changed while writing", value=t) for c, t in writes
            ]
        except Exception as exc:
            log.exception("%s: write-back of %s failed", self.source.name, writes[0][0].key)
            return [self._failed(c, f"{type(exc).__name__}: {exc}", value=t) for c, t in writes]

    def _bulk(
        self, together: Sequence[Sequence[tuple[PlannedChange, str | None]]]
    ) -> list[tuple[PlannedChange, LedgerEntry]]:
        """One bulk edit of items setting the same values. Refused (no Bulk change permission,
        or a site without the API): edits one by one from then on, and the run says so. Its
        outcome lost: `failed`, which the changelog check turns `applied` where it landed."""
        connector = cast(_BulkEditing, self.connector)
        values = {c.field: typed(c.field, c.new_value) for c, _ in together[0]}
        ids = [writes[0][0].external_id for writes in together]
        self.calls.bulk_edits += 1
        try:
            outcome = connector.bulk_write(self.facts, ids, values)
        except (BadRequest, PermissionDenied, NotFound) as exc:
            self.bulk = False
            self.result.notices.add(
                f"{self.source.name}: bulk edit refused ({exc}); edits sent one by one"
            )
            return [entry for writes in together for entry in self._guarded_writes(writes)]
        except TrackerError as exc:
            return [self._failed(c, str(exc), value=t) for w in together for c, t in w]
        self.calls.bulk_items += len(outcome.done)
        at = datetime.now(UTC)
        settled = []
        for writes in together:
            external_id = writes[0][0].external_id
            for change, tracker in writes:
                if external_id in outcome.failed:
                    settled.append(self._failed(change, outcome.failed[external_id], value=tracker))
                    continue
                entry = LedgerEntry(
                    change.work_item_id,
                    change.field,
                    APPLIED,
                    tracker,
                    change.new_value,
                    note=_join(change.reason, "bulk edit"),
                    applied_at=at,
                )
                settled.append((change, entry))
        return settled

    def _read_batch(
        self, batch: Sequence[str], by_item: Mapping[str, Sequence[PlannedChange]]
    ) -> dict[str, Any] | TrackerError:
        attributes = sorted({c.field for item in batch for c in by_item[item]})
        try:
            return self._read(batch, attributes)
        except TrackerError as exc:
            return exc

    def _guarded(
        self, changes: list[PlannedChange], current: Mapping[str, Any] | None
    ) -> list[tuple[PlannedChange, LedgerEntry]]:
        """One item's writes; whatever goes wrong is recorded on it and the rest goes on."""
        try:
            return self._item(changes, current)
        except Exception as exc:
            log.exception("%s: write-back of %s failed", self.source.name, changes[0].key)
            return [self._failed(c, f"{type(exc).__name__}: {exc}") for c in changes]

    def _item(
        self, changes: list[PlannedChange], current: Mapping[str, Any] | None
    ) -> list[tuple[PlannedChange, LedgerEntry]]:
        """Re-plan one item against what the tracker holds now, then write what remains."""
        settled, writes = self._against(changes, current)
        if not writes or current is None:
            return settled
        rev = current.get("rev")
        done = self._attempt(writes, rev)
        if done is not None:
            return settled + done
        # A stale revision: someone saved the item between our read and our write.
        more, writes, fresh = self._recheck(writes, "changed while writing")
        settled += more
        if not writes or fresh is None:
            return settled
        done = self._attempt(writes, fresh.get("rev"))
        if done is None:
            return settled + [
                self._skipped(c, "changed again while writing", value=t) for c, t in writes
            ]
        return settled + done

    def _recheck(
        self, writes: Sequence[tuple[PlannedChange, str | None]], note: str
    ) -> tuple[
        list[tuple[PlannedChange, LedgerEntry]],
        list[tuple[PlannedChange, str | None]],
        Mapping[str, Any] | None,
    ]:
        """Read one item again and re-plan its writes: (settled, still to write, what was read)."""
        external_id = writes[0][0].external_id
        try:
            fresh = self._read([external_id], [c.field for c, _ in writes]).get(external_id)
        except TrackerError as exc:
            return [self._failed(c, str(exc), value=t) for c, t in writes], [], None
        if fresh is None:
            gone = "the item is no longer in the tracker"
            return [self._failed(c, gone) for c, _ in writes], [], None
        settled, remaining = self._replan([c for c, _ in writes], fresh, stale_note=note)
        return settled, remaining, fresh

    def _attempt(
        self, writes: Sequence[tuple[PlannedChange, str | None]], rev: Any
    ) -> list[tuple[PlannedChange, LedgerEntry]] | None:
        """One item's edit, settled; None when its revision was stale (the caller re-reads)."""
        try:
            return self._write(writes, rev)
        except Conflict:
            return None
        except RetriesExhausted as exc:
            return self._verify(writes, str(exc))
        except BadRequest as exc:
            if len(writes) == 1:
                return [self._failed(c, str(exc), value=t) for c, t in writes]
        except TrackerError as exc:
            return [self._failed(c, str(exc), value=t) for c, t in writes]
        # One value the tracker rejects must not sink the others: each field on its own.
        settled: list[tuple[PlannedChange, LedgerEntry]] = []
        for change, tracker in writes:
            done = self._attempt([(change, tracker)], None)
            if done is None:
                done = [self._skipped(change, "changed while writing", value=tracker)]
            settled += done
        return settled

    def _against(
        self, changes: Sequence[PlannedChange], current: Mapping[str, Any] | None
    ) -> tuple[list[tuple[PlannedChange, LedgerEntry]], list[tuple[PlannedChange, str | None]]]:
        """An item's changes re-planned against what the read before the batch found."""
        if current is None:
            gone = "the item is no longer in the tracker"
            return [self._failed(c, gone) for c in changes], []
        return self._replan(changes, current, stale_note="changed since the plan")

    def _replan(
        self, changes: Sequence[PlannedChange], current: Mapping[str, Any], *, stale_note: str
    ) -> tuple[list[tuple[PlannedChange, LedgerEntry]], list[tuple[PlannedChange, str | None]]]:
        """Changes settled now, and those to write with the tracker value they replace."""
        settled: list[tuple[PlannedChange, LedgerEntry]] = []
        writes: list[tuple[PlannedChange, str | None]] = []
        for change in changes:
            tracker = as_text(change.field, current.get(change.field))
            if same(change.field, tracker, change.tracker_value):
                writes.append((change, tracker))
                continue
            decision = decide(
                change.field,
                desired=change.new_value,
                tracker=tracker,
                last=change.last_value,
                written=change.written,
                first_write=self.first_write,
                force=self.force,
            )
            if decision is None:
                note = f"{stale_note}; the tracker holds the planned value now"
                settled.append(self._skipped(change, note, value=tracker))
            elif decision.outcome is Outcome.conflict:
                settled.append(self._skipped(change, f"{stale_note}: {decision.reason}", tracker))
            else:
                writes.append((change, tracker))
        return settled, writes

    def _write(
        self, writes: Sequence[tuple[PlannedChange, str | None]], rev: Any
    ) -> list[tuple[PlannedChange, LedgerEntry]]:
        assert self.connector is not None
        external_id = writes[0][0].external_id
        values = {change.field: typed(change.field, change.new_value) for change, _ in writes}
        self.calls.field_writes += 1
        if isinstance(rev, int):
            guarded = cast(_RevisionGuarded, self.connector)
            outcome = guarded.write_values(self.facts, external_id, values, expected_rev=rev)
        else:
            outcome = self.connector.write_values(self.facts, external_id, values)
        if outcome.note:
            self.result.notices.add(f"{self.source.name}: {outcome.note}")
        at = datetime.now(UTC)
        return [
            (
                change,
                LedgerEntry(
                    change.work_item_id,
                    change.field,
                    APPLIED,
                    tracker,
                    change.new_value,
                    note=_join(change.reason, outcome.note),
                    applied_at=at,
                ),
            )
            for change, tracker in writes
        ]

    def _verify(
        self, writes: Sequence[tuple[PlannedChange, str | None]], error: str
    ) -> list[tuple[PlannedChange, LedgerEntry]]:
        """After a write whose answer was lost: applied if the tracker holds the new values."""
        external_id = writes[0][0].external_id
        try:
            now = self._read([external_id], [c.field for c, _ in writes]).get(external_id) or {}
        except TrackerError:
            now = {}
        landed = all(
            same(c.field, as_text(c.field, now.get(c.field)), c.new_value) for c, _ in writes
        )
        if not landed or not now:
            return [self._failed(c, error, value=t) for c, t in writes]
        at = datetime.now(UTC)
        note = "the answer was lost; re-reading showed the new value in the tracker"
        return [
            (
                c,
                LedgerEntry(
                    c.work_item_id,
                    c.field,
                    APPLIED,
                    t,
                    c.new_value,
                    note=_join(c.reason, note),
                    applied_at=at,
                ),
            )
            for c, t in writes
        ]

    def _read(self, external_ids: Sequence[str], attributes: Sequence[str]) -> dict[str, Any]:
        assert self.connector is not None
        return self.connector.read_values(self.facts, list(external_ids), list(attributes))

    # --- after the fact: the changelog (Jira) ---------------------------------------------

    def _check(
        self, entries: Sequence[tuple[PlannedChange, LedgerEntry]], fresh: Mapping[str, Any]
    ) -> list[tuple[PlannedChange, LedgerEntry]]:
        """A batch's outcomes as the changelog tells them. Jira has no conditional edit: a
        person who saved a field after our read (or before a PUT resent after a 5xx) had their
        value replaced by ours. Such a value is written back and the change is
        `skipped_conflict`, never retried; an edit whose answer was lost but which the
        changelog shows is `applied`."""
        out = list(entries)
        sent = [
            (index, change, entry)
            for index, (change, entry) in enumerate(entries)
            if entry.status in (APPLIED, FAILED) and fresh.get(change.external_id) is not None
        ]
        if not sent:
            return out
        since = {c.external_id: fresh[c.external_id].get(UPDATED) for _, c, _ in sent}
        try:
            edits = self._edits(since, [change.field for _, change, _ in sent])
        except TrackerError as exc:
            note = f"not checked for a person's edit at the same moment: {exc}"
            for index, change, entry in sent:
                if entry.status == APPLIED:
                    out[index] = (change, replace(entry, note=_join(entry.note, note)))
            return out
        undo: list[_Overwrite] = []
        for index, change, entry in sent:
            before = entry.tracker_value
            if entry.status != APPLIED:
                before = as_text(change.field, fresh[change.external_id].get(change.field))
            found = edits.get(change.external_id, [])
            seen = landing(found, change.field, before, change.new_value)
            if not seen.landed:
                if seen.theirs and entry.status == APPLIED:
                    # Not ours to claim: the next plan treats their value as a person's.
                    same_value = (
                        f"a person set {shown(change.new_value)}, the planned value, between "
                        "lpm-sync's read and its edit, which changed nothing"
                    )
                    out[index] = self._settled(
                        change, SKIPPED_CONFLICT, change.new_value, same_value
                    )
                continue
            if not seen.overwrote:
                if entry.status != APPLIED:
                    shows = "the answer was lost; the changelog shows the edit"
                    out[index] = (
                        change,
                        replace(
                            entry, status=APPLIED, error=None, note=_join(change.reason, shows)
                        ),
                    )
                continue
            if seen.ours_now:
                undo.append(_Overwrite(index, change, seen.victim, change.new_value, seen.at))
                continue
            error = f"{overwrote(seen.victim, change.new_value)}; they have changed it again since"
            out[index] = self._settled(change, SKIPPED_CONFLICT, seen.victim, error)
        if undo:
            # In the ledger before writing back: a run killed meanwhile must leave neither a
            # `planned` row, which the next sync would settle as `applied` (its history shows
            # our edit), nor a settled one: the next apply writes the person's value back.
            doing = [
                self._settled(o.change, SKIPPED_CONFLICT, o.victim, RESTORE_PENDING) for o in undo
            ]
            record(self.engine, self.run_id, [entry for _, entry in doing], datetime.now(UTC))
        for index, status, value, error in self._restore(undo):
            out[index] = self._settled(entries[index][0], status, value, error)
        return out

    def _restore_leftovers(self, restores: Sequence[PendingRestore]) -> None:
        """People's values that edits of a killed run replaced (found by the next plan in the
        synced changelog) are written back as `_check` writes back its own finds, unless the
        field no longer holds our value: then whoever changed it since has the last word."""
        if not restores:
            return
        changes = [r.change for r in restores]
        try:
            now = self._read(
                sorted({c.external_id for c in changes}), sorted({c.field for c in changes})
            )
        except TrackerError as exc:
            self.result.notices.add(
                f"{self.source.name}: {len(restores)} person's value(s) not written back yet "
                f"(reading them failed: {exc}); the next apply tries again"
            )
            return
        undo, done = [], []
        for index, restore in enumerate(restores):
            change = restore.change
            current = now.get(change.external_id)
            if current is None:
                gone = f"{overwrote(restore.victim, change.new_value)}; the item is gone"
                done.append((index, SKIPPED_CONFLICT, restore.victim, gone))
                continue
            value = as_text(change.field, current.get(change.field))
            if same(change.field, value, restore.victim):
                back = f"{overwrote(restore.victim, change.new_value)}; their value is back"
                done.append((index, SKIPPED_CONFLICT, value, back))
            elif same(change.field, value, change.new_value):
                undo.append(_Overwrite(index, change, restore.victim, change.new_value, restore.at))
            else:
                since = f"{overwrote(restore.victim, change.new_value)}; left as set since"
                done.append((index, SKIPPED_CONFLICT, value, since))
        done += self._restore(undo)
        settle_restores(
            self.engine,
            [(restores[i].ledger_id, status, value, error) for i, status, value, error in done],
        )
        for index, status, value, error in done:
            change = restores[index].change
            self.result.results.append(_result(change, status, tracker=value, error=error))

    def _restore(self, undo: Sequence[_Overwrite]) -> list[tuple[int, str, str | None, str]]:
        """Write each person's value back, then check in the changelog that this replaced our
        value and not yet another person's (if it did, that one is written back in turn).
        Returns (index, status, the value they set, what happened) per overwrite."""
        assert self.connector is not None
        done: list[tuple[int, str, str | None, str]] = []
        pending = list(undo)
        for _attempt in range(RESTORE_ATTEMPTS):
            if not pending:
                break
            by_item: dict[str, list[_Overwrite]] = {}
            for overwrite in pending:
                by_item.setdefault(overwrite.change.external_id, []).append(overwrite)
            sent: list[_Overwrite] = []
            for external_id, overwrites in by_item.items():
                values = {o.change.field: typed(o.change.field, o.victim) for o in overwrites}
                self.calls.field_writes += 1
                self.calls.restores += 1
                try:
                    self.connector.write_values(self.facts, external_id, values)
                except TrackerError as exc:
                    for o in overwrites:
                        error = f"{_overwrote(o)}; writing it back failed: {exc}"
                        done.append((o.index, FAILED, o.victim, error))
                    continue
                sent += overwrites
            if not isinstance(self.connector, _Changelogged):
                # Conditional edits (Azure DevOps): no person's value can be replaced by this.
                back = [(o.index, SKIPPED_CONFLICT, o.victim, _written_back(o)) for o in sent]
                return done + back
            since = {o.change.external_id: o.at for o in sent}
            try:
                edits = self._edits(since, [o.change.field for o in sent]) if sent else {}
            except TrackerError as exc:
                for o in sent:
                    error = f"{_overwrote(o)}; written back, not checked: {exc}"
                    done.append((o.index, SKIPPED_CONFLICT, o.victim, error))
                return done
            pending = []
            for o in sent:
                found = edits.get(o.change.external_id, [])
                seen = landing(found, o.change.field, o.replaced, o.victim)
                if seen.overwrote and seen.ours_now:
                    # Writing back replaced the value of a person who saved meanwhile: theirs too.
                    pending.append(replace(o, victim=seen.victim, replaced=o.victim, at=seen.at))
                elif seen.overwrote:
                    error = (
                        f"{overwrote(seen.victim, o.change.new_value)}; left as they set it since"
                    )
                    done.append((o.index, SKIPPED_CONFLICT, seen.victim, error))
                else:
                    done.append((o.index, SKIPPED_CONFLICT, o.victim, _written_back(o)))
        for o in pending:
            error = f"{_overwrote(o)}; people kept changing it: not written back"
            done.append((o.index, FAILED, o.victim, error))
        return done

    def _edits(
        self, since: Mapping[str, datetime | None], fields: Sequence[str]
    ) -> dict[str, list[FieldEdit]]:
        connector = cast(_Changelogged, self.connector)
        return connector.edits_since(self.facts, since, sorted(set(fields)))

    def _settled(
        self, change: PlannedChange, status: str, value: str | None, error: str
    ) -> tuple[PlannedChange, LedgerEntry]:
        entry = LedgerEntry(
            change.work_item_id,
            change.field,
            status,
            value,
            change.new_value,
            note=change.reason,
            error=error,
            applied_at=datetime.now(UTC),
        )
        return change, entry

    # --- rank ----------------------------------------------------------------------------

    def _apply_ranks(self) -> None:
        for scope in self.scopes:
            members = {item.external_id for item in scope.items}
            planned = {k: c for k, c in self.ranks.items() if k in members}
            try:
                self._apply_scope(scope, planned)
            except TrackerError as exc:
                self._settle([self._failed(c, f"ranking failed: {exc}") for c in planned.values()])

    def _apply_scope(self, scope: RankScope, planned: Mapping[str, PlannedChange]) -> None:
        assert self.connector is not None
        self._sending(list(planned.values()))
        ids = [item.external_id for item in scope.items]
        before = self._ranks(ids)
        scope.plan(before, force=self.force)
        reasons = {c.external_id: c for c in scope.changes(self.plan.source, before)}
        conflicts = set(scope.conflicts)
        moved: set[str] = set()
        errors: dict[str, str] = {}
        current = before
        for attempt in range(RANK_ATTEMPTS):
            if attempt:
                current = self._ranks(ids)
                scope.plan(current, force=self.force)
                conflicts |= set(scope.conflicts)
            if not scope.moves:
                break
            for move in scope.moves:
                self.calls.rank_calls += 1
                self.calls.moved_items += len(move.items)
                moved.update(move.items)
                try:
                    self.connector.rank(
                        self.facts, [RankMove(move.items, before=move.before, after=move.after)]
                    )
                except TrackerError as exc:
                    errors.update(dict.fromkeys(move.items, str(exc)))
        after = self._ranks(ids)
        scope.plan(after, force=self.force)
        unsettled = {item for move in scope.moves for item in move.items}
        items = {item.external_id: item for item in scope.items}
        at = datetime.now(UTC)
        involved = moved | unsettled | conflicts | set(planned)
        entries: list[tuple[PlannedChange, LedgerEntry]] = []
        for external_id in ids:
            if external_id not in involved:
                continue
            change = reasons.get(external_id) or planned.get(external_id)
            if change is None:
                change = _rank_change(self.plan.source, items[external_id], before)
            entry: tuple[PlannedChange, LedgerEntry]
            if external_id in conflicts and external_id not in moved:
                entry = self._skipped(change, change.reason, value=before.get(external_id))
            elif external_id in unsettled:
                error = errors.get(external_id, "still out of WSJF order after the moves")
                entry = self._failed(change, error, value=before.get(external_id))
            elif external_id in moved:
                entry = (
                    change,
                    LedgerEntry(
                        change.work_item_id,
                        RANK,
                        APPLIED,
                        before.get(external_id),
                        after.get(external_id),
                        note=_rank_note(change),
                        applied_at=at,
                    ),
                )
            else:
                note = "already in WSJF order when read before moving (the tracker changed)"
                entry = self._skipped(change, note, value=before.get(external_id))
            entries.append(entry)
        self._settle(entries)

    def _ranks(self, ids: Sequence[str]) -> dict[str, str | None]:
        found = self._read(ids, [RANK])
        return {item: as_text(RANK, (found.get(item) or {}).get(RANK)) for item in ids}

    # --- the ledger ----------------------------------------------------------------------

    def _failed(
        self, change: PlannedChange, error: str, *, value: str | None = None
    ) -> tuple[PlannedChange, LedgerEntry]:
        tracker = value if value is not None else change.tracker_value
        return self._settled(change, FAILED, tracker, error)

    def _skipped(
        self, change: PlannedChange, note: str, value: str | None = None
    ) -> tuple[PlannedChange, LedgerEntry]:
        entry = LedgerEntry(
            change.work_item_id,
            change.field,
            SKIPPED_CONFLICT,
            value,
            change.new_value,
            note=note,
            applied_at=datetime.now(UTC),
        )
        return change, entry

    def _flush(self) -> None:
        if self._unrecorded:
            record(self.engine, self.run_id, self._unrecorded, datetime.now(UTC))
            self._unrecorded = []

    def _sending(
        self, changes: Sequence[PlannedChange], fresh: Mapping[str, Any] | None = None
    ) -> None:
        """Mark rows about to be sent, with the value each write replaces (as read just now,
        `fresh`, else as planned): if the run dies, only these may have reached the tracker
        (the others are certainly not applied), which is what the next plan settles them by."""
        sending = []
        for c in changes:
            if fresh is None:
                sending.append(Sending(c.work_item_id, c.field, c.tracker_value))
                continue
            current = fresh.get(c.external_id) or {}
            read = as_text(c.field, current.get(c.field))
            sending.append(Sending(c.work_item_id, c.field, read, current.get(UPDATED)))
        mark_sending(self.engine, self.run_id, sending)

    def _settle(self, entries: Sequence[tuple[PlannedChange, LedgerEntry]]) -> None:
        """Outcomes into the result now, into the ledger by the hundred (a run killed before a
        flush leaves those rows `planned`, for the next plan to settle)."""
        self._unrecorded += [entry for _, entry in entries]
        if len(self._unrecorded) >= SETTLE_BATCH:
            self._flush()
        for change, entry in entries:
            self.result.results.append(
                _result(
                    change,
                    entry.status,
                    tracker=entry.tracker_value,
                    new=entry.new_value,
                    note=entry.note,
                    error=entry.error,
                )
            )


def _rank_change(source: str, item: Any, tracker: Mapping[str, str | None]) -> PlannedChange:
    return PlannedChange(
        source=source,
        work_item_id=item.work_item_id,
        external_id=item.external_id,
        key=item.key,
        field=RANK,
        outcome=Outcome.write,
        reason="WSJF order",
        tracker_value=tracker.get(item.external_id),
        new_value=None,
        last_value=item.last_value,
        written=item.written,
    )


def _rank_note(change: PlannedChange) -> str:
    if change.position is None:
        return change.reason
    now, wanted = change.position
    return f"{change.reason} (#{now} -> #{wanted})"


def _overwrote(overwrite: _Overwrite) -> str:
    return overwrote(overwrite.victim, overwrite.change.new_value)


def _values_of(changes: Sequence[PlannedChange]) -> tuple[tuple[str, bool, str], ...]:
    """What an item's edit sets: (field, cleared, value) per field, in field order."""
    return tuple(sorted((c.field, c.new_value is None, c.new_value or "") for c in changes))


def _written_back(overwrite: _Overwrite) -> str:
    return f"{_overwrote(overwrite)}; their value was written back"


def _join(*parts: str | None) -> str | None:
    text = "; ".join(part for part in parts if part)
    return text or None


def _result(
    change: PlannedChange,
    status: str,
    *,
    tracker: str | None = None,
    new: str | None = None,
    note: str | None = None,
    error: str | None = None,
) -> ChangeResult:
    return ChangeResult(
        source=change.source,
        key=change.key,
        field=change.field,
        status=status,
        tracker_value=tracker if tracker is not None else change.tracker_value,
        new_value=new if new is not None else change.new_value,
        note=note,
        error=error,
    )


# --- what the command line prints -------------------------------------------------------------


def plan_table(plan: WritebackPlan) -> list[str]:
    """Per source a summary line, then item, field, tracker value -> new value, reason."""
    lines: list[str] = []
    for source in plan.sources:
        if source.source_id is None:
            lines.append(f"{source.source}: not synced yet (run `lpm sync`); nothing planned")
            continue
        writes = [c for c in source.changes if c.outcome is Outcome.write]
        moves = sum(1 for c in writes if c.field == RANK)
        conflicts = len(source.changes) - len(writes)
        restores = f", {len(source.restores)} value(s) written back" if source.restores else ""
        lines.append(
            f"{source.source}: {len(writes) - moves} field change(s), {moves} rank move(s), "
            f"{conflicts} conflict(s){restores}"
        )
        if not source.changes and not source.restores:
            continue
        rows = [
            (
                r.change.key,
                r.change.field,
                f"{shown(r.change.new_value)} -> {shown(r.victim)}",
                f"RESTORE: {RESTORE_NOTE}",
            )
            for r in source.restores
        ] + [
            (
                c.key,
                c.field,
                f"{_from(c)} -> {_to(c)}",
                c.reason if c.outcome is Outcome.write else f"CONFLICT: {c.reason}",
            )
            for c in source.changes
        ]
        header = ("ITEM", "FIELD", "TRACKER -> NEW", "REASON")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
            lines.append("  " + "  ".join([*cells, row[3]]).rstrip())
    return lines


def result_lines(result: WritebackResult) -> tuple[list[str], list[str]]:
    """Summary lines per source, and one problem line per skipped or failed change."""
    lines: list[str] = []
    for name, calls in result.calls.items():
        counts = Counter(r.status for r in result.results if r.source == name)
        restoring = f" ({calls.restores} restoring a person's value)" if calls.restores else ""
        if calls.bulk_edits:
            restoring += f", {calls.bulk_edits} bulk edit(s) of {calls.bulk_items} item(s)"
        lines.append(
            f"{name}: applied {counts[APPLIED]}, skipped_conflict {counts[SKIPPED_CONFLICT]}, "
            f"failed {counts[FAILED]}; {calls.field_writes} edit(s){restoring}, "
            f"{calls.rank_calls} rank call(s) moving {calls.moved_items} item(s), "
            f"{calls.requests} HTTP request(s)"
        )
    for notice in sorted(result.notices):
        lines.append(f"note: {notice}")
    lines.append(f"run {result.run_id}: every change is in the `writeback` table")
    problems = [
        f"{r.source} {r.key} {r.field}: {r.status}: {r.error or r.note or ''}".rstrip(": ")
        for r in result.results
        if r.status in (SKIPPED_CONFLICT, FAILED)
    ]
    return lines, problems


def _from(change: PlannedChange) -> str:
    if change.position is not None:
        return f"#{change.position[0]}" if change.position[0] else "(unranked)"
    return shown(change.tracker_value)


def _to(change: PlannedChange) -> str:
    if change.position is not None:
        return f"#{change.position[1]}"
    return shown(change.new_value)
