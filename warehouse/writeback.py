"""Planning write-back from the warehouse, and the `writeback` ledger that audits it.

One query per source brings, for every owned field of every live rolled-up item, the desired
value (from `rollup`), the tracker's value (from `work_item.writeback_values`, as of the latest
sync) and the value lpm-sync last wrote (the newest `applied` ledger row, by window function).
When our write is newer than the item's last sync, the tracker holds what we wrote: that is the
tracker value used, so a second run right after the first finds nothing to do. The rules that
turn these three values into write / conflict / nothing are in mapping/writeback.py; rank
scopes are ordered by mapping/rank.py.

Ledger rows: an apply records one row per change of its plan before it sends anything
(`planned`, or `skipped_conflict` for a conflict), then updates each in place to `applied`,
`skipped_conflict` or `failed`, with `applied_at` the time the row was settled. A run killed in
between leaves `planned` rows; the next plan settles them from what the next sync saw
(`settle_leftovers`), so a write that landed counts as ours. For rank, `tracker_value` and
`new_value` are the tracker's rank value (LexoRank or StackRank) before and after the move;
`note` says why a change was planned and anything the tracker did otherwise than asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)

from mapping.rank import Move, plan_scope
from mapping.writeback import (
    RANK,
    VALUE_FIELDS,
    FirstWrite,
    Landing,
    Outcome,
    as_text,
    decide,
    desired_health,
    desired_progress,
    desired_wsjf,
    landing,
    overwrote,
    rank_conflict,
    same,
)
from warehouse import models
from warehouse.models import table_of

PLANNED = "planned"
APPLIED = "applied"
SKIPPED_CONFLICT = "skipped_conflict"
FAILED = "failed"
STATUSES = (PLANNED, APPLIED, SKIPPED_CONFLICT, FAILED)
LOOKUP_CHUNK = 500
"""Item ids per `IN (...)` when looking up ledger rows (well under SQLite's parameter limit)."""


@dataclass(frozen=True)
class PlannedChange:
    """One owned field of one item that the plan writes, or would but for a person's edit."""

    source: str
    work_item_id: int
    external_id: str
    key: str
    field: str
    outcome: Outcome
    reason: str
    tracker_value: str | None
    new_value: str | None
    """Canonical text; for rank None (the tracker picks the new rank value)."""
    last_value: str | None = None
    written: bool = False
    """Whether lpm-sync wrote this field of this item before (`last_value` is then its value)."""
    rev: int | None = None
    """Azure DevOps revision as synced (for `test /rev`); None on Jira."""
    position: tuple[int, int] | None = None
    """Rank only: (position now, position wanted), 1-based within the rank scope."""


@dataclass(frozen=True)
class RankItem:
    work_item_id: int
    external_id: str
    key: str
    wsjf_rank: int
    last_value: str | None
    written: bool


@dataclass
class RankScope:
    """The ranked items of one source at one level in one WSJF rank scope (portfolio or ART)."""

    level: str
    scope: str
    items: list[RankItem]
    """In WSJF order."""
    moves: list[Move] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """Items a person moved since lpm-sync ranked them, left where they are."""

    def plan(self, tracker: Mapping[str, str | None], *, force: bool) -> None:
        """Moves and conflicts for the given tracker rank values (synced, or read just now)."""
        claimed = set()
        if not force:
            claimed = {
                item.external_id
                for item in self.items
                if rank_conflict(
                    tracker=tracker.get(item.external_id),
                    last=item.last_value,
                    written=item.written,
                )
            }
        self.moves, self.conflicts = plan_scope(
            self.current(tracker), [item.external_id for item in self.items], claimed
        )

    def current(self, tracker: Mapping[str, str | None]) -> list[str]:
        """Items with a rank value, in tracker order (smaller rank values first)."""
        placed = [item for item in self.items if tracker.get(item.external_id) is not None]
        return [
            item.external_id
            for item in sorted(placed, key=lambda item: rank_key(tracker[item.external_id]))
        ]

    def changes(self, source: str, tracker: Mapping[str, str | None]) -> list[PlannedChange]:
        """One change per moved or conflicting item, in WSJF order."""
        now = {item: index + 1 for index, item in enumerate(self.current(tracker))}
        wanted = {item.external_id: index + 1 for index, item in enumerate(self.items)}
        anchors = {item: move for move in self.moves for item in move.items}
        conflicts = set(self.conflicts)
        keys = {item.external_id: item.key for item in self.items}
        out = []
        for item in self.items:
            move = anchors.get(item.external_id)
            if move is None and item.external_id not in conflicts:
                continue
            if move is not None:
                outcome = Outcome.write
                anchor = move.before or move.after
                where = "before" if move.before is not None else "after"
                reason = f"WSJF order: {where} {keys.get(anchor or '', anchor)}"
            else:
                outcome = Outcome.conflict
                reason = "moved in the tracker since lpm-sync ranked it"
            out.append(
                PlannedChange(
                    source=source,
                    work_item_id=item.work_item_id,
                    external_id=item.external_id,
                    key=item.key,
                    field=RANK,
                    outcome=outcome,
                    reason=reason,
                    tracker_value=tracker.get(item.external_id),
                    new_value=None,
                    last_value=item.last_value,
                    written=item.written,
                    position=(now.get(item.external_id, 0), wanted[item.external_id]),
                )
            )
        return out


@dataclass(frozen=True)
class PendingRestore:
    """A person's value an edit of ours replaced in a run killed before it could undo that
    (`settle_leftovers`): the next apply writes it back and settles the ledger row."""

    ledger_id: int
    change: PlannedChange
    """The change whose edit replaced the value (`new_value`: what we wrote)."""
    victim: str | None
    """The person's value, to be written back."""
    at: datetime | None
    """When our edit was made (the tracker's clock), from the synced changelog."""


@dataclass
class SourcePlan:
    source: str
    source_id: int | None
    changes: list[PlannedChange] = field(default_factory=list)
    """Field changes and rank changes (rank last), in item order."""
    scopes: list[RankScope] = field(default_factory=list)
    restores: list[PendingRestore] = field(default_factory=list)
    """People's values to write back first; their fields are not planned meanwhile."""


def rank_key(value: str | None) -> tuple[int, float, str]:
    """Order of tracker rank values: numbers (StackRank) numerically, LexoRank as text."""
    if value is None:
        return (2, 0.0, "")
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def source_id_of(engine: Engine, name: str) -> int | None:
    source = table_of(models.Source)
    with engine.connect() as conn:
        found: int | None = conn.execute(
            select(source.c.id).where(source.c.name == name)
        ).scalar_one_or_none()
    return found


def plan_source(
    engine: Engine,
    name: str,
    *,
    fields: Sequence[str],
    rank: bool,
    health_values: Mapping[str, str] | None = None,
    first_write: FirstWrite = "empty",
    force: bool = False,
) -> SourcePlan:
    """What write-back would change in one source; `fields` are the owned value fields."""
    unknown = [f for f in fields if f not in VALUE_FIELDS]
    if unknown:
        raise ValueError(f"not a write-back field: {', '.join(unknown)}")
    source_id = source_id_of(engine, name)
    plan = SourcePlan(name, source_id)
    owned = [*fields, *([RANK] if rank else [])]
    if source_id is None or not owned:
        return plan
    scopes: dict[tuple[str, str], RankScope] = {}
    tracker_ranks: dict[str, str | None] = {}
    plan.restores = pending_restores(engine, name, source_id)
    restoring = {(r.change.work_item_id, r.change.field) for r in plan.restores}
    for row in _owned_values(engine, source_id, owned):
        if (row.id, row.field) in restoring:
            continue
        values: dict[str, Any] = row.writeback_values or {}
        last = row.last_value
        written = row.last_at is not None
        ours_is_newer = written and row.synced_at is not None and row.last_at > row.synced_at
        if row.field == RANK:
            if row.rank is None or row.rank_scope is None:
                continue
            tracker = as_text(RANK, values.get(RANK, row.tracker_rank))
            tracker_ranks[row.external_id] = last if ours_is_newer else tracker
            scope = scopes.setdefault(
                (row.level, row.rank_scope), RankScope(row.level, row.rank_scope, [])
            )
            scope.items.append(RankItem(row.id, row.external_id, row.key, row.rank, last, written))
            continue
        desired = _desired(row, health_values or {})
        tracker = last if ours_is_newer else as_text(row.field, values.get(row.field))
        decision = decide(
            row.field,
            desired=desired,
            tracker=tracker,
            last=last,
            written=written,
            first_write=first_write,
            force=force,
        )
        if decision is None:
            continue
        rev = values.get("rev")
        plan.changes.append(
            PlannedChange(
                source=name,
                work_item_id=row.id,
                external_id=row.external_id,
                key=row.key,
                field=row.field,
                outcome=decision.outcome,
                reason=decision.reason,
                tracker_value=tracker,
                new_value=desired,
                last_value=last,
                written=written,
                rev=int(rev) if isinstance(rev, int | float) else None,
            )
        )
    for (_level, _scope), scope in sorted(scopes.items()):
        scope.items.sort(key=lambda item: (item.wsjf_rank, item.key))
        scope.plan(tracker_ranks, force=force)
        plan.scopes.append(scope)
        plan.changes += scope.changes(name, tracker_ranks)
    return plan


def _desired(row: Any, health_values: Mapping[str, str]) -> str | None:
    if row.field == "wsjf":
        return desired_wsjf(row.wsjf)
    if row.field == "progress":
        return desired_progress(row.progress)
    return desired_health(row.health, health_values)


def _owned_values(engine: Engine, source_id: int, owned: Sequence[str]) -> list[Any]:
    """Per live rolled-up item and owned field: roll-up, tracker values, our last write."""
    ledger = table_of(models.Writeback)
    item = table_of(models.WorkItem)
    rollup = table_of(models.Rollup)
    latest = (
        select(
            ledger.c.work_item_id,
            ledger.c.field,
            ledger.c.new_value,
            ledger.c.applied_at,
            func.row_number()
            .over(
                partition_by=(ledger.c.work_item_id, ledger.c.field),
                order_by=(ledger.c.applied_at.desc(), ledger.c.id.desc()),
            )
            .label("newest"),
        )
        .join(item, item.c.id == ledger.c.work_item_id)
        .where(ledger.c.status == APPLIED, item.c.source_id == source_id)
        .subquery("latest")
    )
    last = select(latest).where(latest.c.newest == 1).subquery("last")
    fields = union_all(
        *(select(literal(name, String(16)).label("field")) for name in owned)
    ).subquery("owned")
    query = (
        select(
            item.c.id,
            item.c.external_id,
            item.c.key,
            item.c.level,
            item.c.synced_at,
            item.c.writeback_values,
            item.c.tracker_rank,
            rollup.c.wsjf,
            rollup.c.progress,
            rollup.c.health,
            rollup.c.rank,
            rollup.c.rank_scope,
            fields.c.field,
            last.c.new_value.label("last_value"),
            last.c.applied_at.label("last_at"),
        )
        .select_from(rollup)
        .join(item, item.c.id == rollup.c.work_item_id)
        .join(fields, true())
        .outerjoin(last, and_(last.c.work_item_id == item.c.id, last.c.field == fields.c.field))
        .where(item.c.source_id == source_id, item.c.deleted_at.is_(None))
        .order_by(item.c.level, item.c.key, item.c.id, fields.c.field)
    )
    with engine.connect() as conn:
        return list(conn.execute(query))


# --- the ledger -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    """The state of one ledger row of a run (inserted, or updated in place when it exists)."""

    work_item_id: int
    field: str
    status: str
    tracker_value: str | None
    new_value: str | None
    note: str | None = None
    error: str | None = None
    applied_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown write-back status {self.status!r}")


def record(engine: Engine, run_id: str, entries: Sequence[LedgerEntry], at: datetime) -> None:
    """Insert or update the rows of `run_id` in one transaction (`at`: planned_at of new rows).

    Only the entries' own rows are looked up: an apply records a few rows at a time into a run
    that holds thousands, and reading them all each time made the ledger the apply's main cost.
    """
    if not entries:
        return
    ledger = table_of(models.Writeback)
    items = sorted({entry.work_item_id for entry in entries})
    with engine.begin() as conn:
        existing: set[tuple[int, str]] = set()
        for start in range(0, len(items), LOOKUP_CHUNK):
            existing.update(
                (row.work_item_id, row.field)
                for row in conn.execute(
                    select(ledger.c.work_item_id, ledger.c.field).where(
                        ledger.c.run_id == run_id,
                        ledger.c.work_item_id.in_(items[start : start + LOOKUP_CHUNK]),
                    )
                )
            )
        rows = [_row(entry) for entry in entries]
        updates = [row for row in rows if (row["work_item_id"], row["field"]) in existing]
        inserts = [
            {**row, "run_id": run_id, "planned_at": at}
            for row in rows
            if (row["work_item_id"], row["field"]) not in existing
        ]
        if inserts:
            conn.execute(ledger.insert(), inserts)
        if updates:
            conn.execute(
                update(ledger)
                .where(
                    ledger.c.run_id == run_id,
                    ledger.c.work_item_id == bindparam("b_item"),
                    ledger.c.field == bindparam("b_field"),
                )
                .values(
                    status=bindparam("status"),
                    tracker_value=bindparam("tracker_value"),
                    new_value=bindparam("new_value"),
                    note=bindparam("note"),
                    error=bindparam("error"),
                    applied_at=bindparam("applied_at"),
                ),
                [
                    {**row, "b_item": row["work_item_id"], "b_field": row["field"]}
                    for row in updates
                ],
            )


@dataclass(frozen=True)
class Sending:
    """A change about to be sent, with what the tracker held right before."""

    work_item_id: int
    field: str
    value: str | None
    """The value the edit replaces."""
    updated_at: datetime | None = None
    """When the tracker last changed the item, as read (Jira; None where edits are
    conditional, e.g. Azure DevOps `test /rev`, or nothing was read)."""


def mark_sending(engine: Engine, run_id: str, sending: Sequence[Sending]) -> None:
    """Mark the `planned` rows of these changes as about to be sent (`SENDING`), with what was
    read right before: a run that dies later leaves only these for the next plan to settle
    from the tracker (the rows never marked were certainly not sent), and an edit of ours in
    the changelog after that read which replaced another value replaced a person's."""
    if not sending:
        return
    ledger = table_of(models.Writeback)
    with engine.begin() as conn:
        conn.execute(
            update(ledger)
            .where(
                ledger.c.run_id == run_id,
                ledger.c.status == PLANNED,
                ledger.c.work_item_id == bindparam("b_item"),
                ledger.c.field == bindparam("b_field"),
            )
            .values(
                error=SENDING,
                tracker_value=bindparam("b_read"),
                tracker_updated_at=bindparam("b_updated"),
            ),
            [
                {
                    "b_item": s.work_item_id,
                    "b_field": s.field,
                    "b_read": s.value,
                    "b_updated": s.updated_at,
                }
                for s in sending
            ],
        )


def _row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "work_item_id": entry.work_item_id,
        "field": entry.field,
        "status": entry.status,
        "tracker_value": entry.tracker_value,
        "new_value": entry.new_value,
        "note": entry.note,
        "error": entry.error,
        "applied_at": entry.applied_at,
    }


def settle_leftovers(engine: Engine, source: str) -> int:
    """Settle `planned` rows an apply left behind (killed before recording their outcome).

    A row the apply never marked `SENDING` was never sent: `failed` once a later sync of the
    source succeeded, whatever the tracker holds (a person may have set the same value). A row
    being sent when the run died is settled once its item was synced after it was planned, or a
    sync of the source started later and succeeded: the tracker's value, as that sync left it,
    says
    what happened, even when the item did not change (an unchanged item's row is not rewritten,
    so its `synced_at` alone cannot tell; left `planned`, the row would later be credited with
    the next run's write of the same value). A field holding the planned value was written
    (`applied`), and so was one whose synced changelog shows the planned value set since the
    plan (a person may have changed it again before the sync); else `failed`. A row whose read
    before sending found the planned value was not sent: `skipped_conflict`, as the apply
    would have settled it (a person saved that value first). An edit of ours
    in that changelog that replaced another value than the one read right before sending (Jira
    has no conditional edit: a person saved in between, and the run died before its check) is
    `skipped_conflict`, the person's value owed back (`RESTORE_PENDING`, `pending_restores`)
    unless they changed it again since. A rank row is `applied` when the item's rank value
    moved since the plan. Returns the rows settled.
    """
    source_id = source_id_of(engine, source)
    if source_id is None:
        return 0
    ledger, item = table_of(models.Writeback), table_of(models.WorkItem)
    run = table_of(models.SyncRun)
    unsent = select(ledger.c.id).where(
        ledger.c.status == PLANNED,
        ledger.c.error.is_distinct_from(SENDING),
        ledger.c.work_item_id.in_(select(item.c.id).where(item.c.source_id == source_id)),
        select(run.c.id)
        .where(
            run.c.source_id == source_id,
            run.c.started_at > ledger.c.planned_at,
            run.c.status == "succeeded",
        )
        .exists(),
    )
    synced_since = (
        select(run.c.id)
        .where(
            run.c.source_id == source_id,
            run.c.status == "succeeded",
            run.c.started_at > ledger.c.planned_at,
        )
        .exists()
    )
    query = (
        select(*_sent_columns(ledger), item.c.writeback_values, item.c.tracker_rank)
        .join(item, item.c.id == ledger.c.work_item_id)
        .where(
            ledger.c.status == PLANNED,
            ledger.c.error == SENDING,
            item.c.source_id == source_id,
            or_(item.c.synced_at > ledger.c.planned_at, synced_since),
        )
    )
    updates = []
    with engine.begin() as conn:
        # Rows never sent (the run died before their batch) were certainly not applied,
        # whatever the tracker holds now: a person may have set the same value meanwhile.
        never_sent = conn.execute(
            update(ledger)
            .where(ledger.c.id.in_(unsent))
            .values(
                status=FAILED,
                note=LEFTOVER_NOTE,
                error=UNSENT_ERROR,
                applied_at=ledger.c.planned_at,
            )
        ).rowcount
        rows = list(conn.execute(query))
        history = _changes_since(conn, rows)
        for row in rows:
            values: dict[str, Any] = row.writeback_values or {}
            if row.field == RANK:
                now = as_text(RANK, values.get(RANK, row.tracker_rank))
                landed = now is not None and not same(RANK, now, row.tracker_value)
                new_value = now if landed else row.new_value
            elif same(row.field, row.tracker_value, row.new_value):
                updates.append(_held_when_read(row))
                continue
            else:
                seen = landing(
                    _edits_since(history, row), row.field, row.tracker_value, row.new_value
                )
                if seen.overwrote and row.tracker_updated_at is not None:
                    updates.append(_overwritten(row, seen))
                    continue
                now = as_text(row.field, values.get(row.field))
                landed = seen.landed or same(row.field, now, row.new_value)
                new_value = row.new_value
            updates.append(
                {
                    "b_id": row.id,
                    "status": APPLIED if landed else FAILED,
                    "tracker_value": row.tracker_value,
                    "new_value": new_value,
                    "note": LEFTOVER_NOTE,
                    "error": None if landed else LEFTOVER_ERROR,
                    "applied_at": row.planned_at,
                }
            )
        if updates:
            _update_by_id(conn, updates)
    return max(never_sent, 0) + len(updates)


def _sent_columns(ledger: Any) -> tuple[Any, ...]:
    """What a row says of a change that was being sent: what it planned and what it read."""
    c = ledger.c
    return (
        c.id,
        c.work_item_id,
        c.field,
        c.tracker_value,
        c.new_value,
        c.planned_at,
        c.tracker_updated_at,
    )


def pending_restores(engine: Engine, source: str, source_id: int) -> list[PendingRestore]:
    """The people's values `settle_leftovers` found overwritten and not yet written back."""
    ledger, item = table_of(models.Writeback), table_of(models.WorkItem)
    query = (
        select(*_sent_columns(ledger), ledger.c.note, item.c.external_id, item.c.key)
        .join(item, item.c.id == ledger.c.work_item_id)
        .where(
            ledger.c.status == SKIPPED_CONFLICT,
            ledger.c.error == RESTORE_PENDING,
            item.c.source_id == source_id,
            item.c.deleted_at.is_(None),
        )
        .order_by(item.c.key, ledger.c.field)
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query))
        history = _changes_since(conn, rows)
    restores = []
    for row in rows:
        ours = [
            edit for edit in _edits_since(history, row) if same(row.field, edit.new, row.new_value)
        ]
        change = PlannedChange(
            source=source,
            work_item_id=row.work_item_id,
            external_id=row.external_id,
            key=row.key,
            field=row.field,
            outcome=Outcome.conflict,
            reason=row.note or LEFTOVER_NOTE,
            tracker_value=row.new_value,
            new_value=row.new_value,
        )
        at = ours[-1].at if ours else None
        restores.append(PendingRestore(row.id, change, row.tracker_value, at))
    return restores


def settle_restores(engine: Engine, outcomes: Sequence[tuple[int, str, str | None, str]]) -> None:
    """Ledger rows of `PendingRestore`s, settled as the write-back went: (ledger id, status,
    the person's value, what happened), the same account an apply gives of its own undo."""
    if not outcomes:
        return
    at = datetime.now(UTC)
    with engine.begin() as conn:
        _update_by_id(
            conn,
            [
                {
                    "b_id": ledger_id,
                    "status": status,
                    "tracker_value": value,
                    "error": error,
                    "applied_at": at,
                }
                for ledger_id, status, value, error in outcomes
            ],
        )


def _update_by_id(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Ledger rows updated by id (`b_id`), each with the columns the rows name."""
    ledger = table_of(models.Writeback)
    columns = [name for name in rows[0] if name != "b_id"]
    conn.execute(
        update(ledger)
        .where(ledger.c.id == bindparam("b_id"))
        .values({name: bindparam(name) for name in columns}),
        rows,
    )


CLOCK_SLACK = timedelta(minutes=1)
"""How far the tracker's clock (changelog times) may be behind lpm-sync's (plan times)."""


@dataclass(frozen=True)
class _HistoryEdit:
    """A synced change of an owned field, as `landing` reads it. The warehouse keeps no author:
    a change to the value a row planned is taken for lpm-sync's edit."""

    attribute: str
    at: datetime
    old: str | None
    new: str | None
    ours: bool = True


def _changes_since(
    conn: Connection, rows: Sequence[Any]
) -> dict[tuple[int, str], list[_HistoryEdit]]:
    """Synced changelog entries of the rows' fields, oldest first: (item, field) -> changes."""
    wanted = {(row.work_item_id, row.field) for row in rows if row.field != RANK}
    if not wanted:
        return {}
    history = table_of(models.WorkItemHistory)
    found: dict[tuple[int, str], list[_HistoryEdit]] = {}
    items = sorted({item_id for item_id, _ in wanted})
    for start in range(0, len(items), LOOKUP_CHUNK):
        for item_id, field_name, at, old, new in conn.execute(
            select(
                history.c.work_item_id,
                history.c.field,
                history.c.changed_at,
                history.c.from_value,
                history.c.to_value,
            )
            .where(
                history.c.work_item_id.in_(items[start : start + LOOKUP_CHUNK]),
                history.c.field.in_(VALUE_FIELDS),
            )
            .order_by(history.c.changed_at, history.c.id)
        ):
            if (item_id, field_name) in wanted:
                edit = _HistoryEdit(
                    field_name, at, as_text(field_name, old), as_text(field_name, new)
                )
                found.setdefault((item_id, field_name), []).append(edit)
    return found


def _edits_since(
    history: Mapping[tuple[int, str], Sequence[_HistoryEdit]], row: Any
) -> list[_HistoryEdit]:
    """The changes of a row's field since the tracker's state read right before sending (its
    `updated`, the tracker's clock), else since shortly before the plan (our clock, which
    the tracker's may be behind): what the edit did, not earlier writes of the same value."""
    since = row.tracker_updated_at or row.planned_at - CLOCK_SLACK
    return [edit for edit in history.get((row.work_item_id, row.field), ()) if edit.at >= since]


def _held_when_read(row: Any) -> dict[str, Any]:
    """A leftover row whose read right before sending found the planned value (a person had
    just saved it): the apply settles such a change without an edit, so none was sent. Taken
    from the history instead, the person's edit would pass for ours over the value before it."""
    return {
        "b_id": row.id,
        "status": SKIPPED_CONFLICT,
        "tracker_value": row.tracker_value,
        "new_value": row.new_value,
        "note": f"{LEFTOVER_NOTE}; {HELD_WHEN_READ}",
        "error": None,
        "applied_at": row.planned_at,
    }


def _overwritten(row: Any, seen: Landing) -> dict[str, Any]:
    """A leftover row whose edit replaced a person's value: `skipped_conflict`, and the value
    is to be written back by the next apply (`RESTORE_PENDING`) unless they changed it again."""
    error = RESTORE_PENDING
    if not seen.ours_now:
        error = f"{overwrote(seen.victim, row.new_value)}; they have changed it again since"
    return {
        "b_id": row.id,
        "status": SKIPPED_CONFLICT,
        "tracker_value": seen.victim,
        "new_value": row.new_value,
        "note": LEFTOVER_NOTE,
        "error": error,
        "applied_at": row.planned_at,
    }


SENDING = "being sent when the run ended; settled from the tracker by the next sync"
"""The `error` of a `planned` row whose write was about to be sent (flows/writeback.py)."""
UNSENT_ERROR = "the run ended before sending this change"
LEFTOVER_NOTE = "settled by a later run: the run that planned it ended before recording it"
LEFTOVER_ERROR = "the run ended before recording this change, and the tracker does not hold it"
HELD_WHEN_READ = "the tracker held the planned value when read before sending"
RESTORE_PENDING = (
    "this edit replaced a person's value, which is to be written back "
    "(by the next apply if the run ends first)"
)
"""The `error` of a `skipped_conflict` row whose person's value the next apply writes back."""


def ledger_rows(engine: Engine, run_id: str) -> list[Any]:
    """The rows of one run, for reports and tests."""
    ledger = table_of(models.Writeback)
    with engine.connect() as conn:
        return list(
            conn.execute(select(ledger).where(ledger.c.run_id == run_id).order_by(ledger.c.id))
        )
