"""What must hold after any number of faulty, concurrent, killed runs — each from its own source.

Ground truth, the changelog and who made each change come from the sandbox trackers (their own
records of every edit: `Portfolio.history`, with the author of each entry; lpm-sync's API user is
author 0). Duplicates are counted by SQL GROUP BY. The warehouse and the `writeback` ledger are
only ever compared against those, never against themselves.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from mapping.writeback import RANK, as_text, same
from sandbox.jira_api import API_USER
from sandbox.portfolio import ChangeEntry, Portfolio
from sandbox.server import Sandbox
from warehouse import models

OWNED_VALUES = ("wsjf", "health", "progress")
"""Fields lpm-sync writes (sandbox attribute names equal the write-back field names)."""
SLACK_MS = 50
"""Clock slack between the warehouse's timestamps and the sandbox's (same machine)."""
TRUTH_FIELDS = ("key", "level", "item_type", "title", "status", "status_category")


@dataclass
class Findings:
    """Counts of what was checked and every violation found (none: all invariants hold)."""

    items: int = 0
    objectives: int = 0
    deleted: int = 0
    transitions_checked: int = 0
    human_edits: int = 0
    human_edits_to_owned_fields: int = 0
    lpm_writes: int = 0
    rank_moves: int = 0
    conflicts_recorded: int = 0
    aba_restores: int = 0
    """Human edits that put back exactly the value lpm-sync had written: indistinguishable from
    no edit by value, so lpm-sync may write over them (not an overwrite of a person's value)."""
    overwrites_undone: int = 0
    """lpm-sync edits (Jira) that replaced a value a person saved an instant before, found in
    the changelog and undone by writing the person's value back."""
    same_value_races: int = 0
    """`applied` rows whose write changed nothing because a person had just set the very same
    value (between lpm-sync's read and its write): the tracker records no write of lpm-sync."""
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, problem: str) -> None:
        self.violations[kind].append(problem)

    def count(self, *kinds: str) -> int:
        return sum(len(self.violations.get(kind, [])) for kind in kinds)

    @property
    def lost(self) -> int:
        return self.count(
            "missing item", "stale item", "missing transition", "write without ledger row"
        )

    @property
    def duplicated(self) -> int:
        return self.count("duplicate row", "duplicated transition")

    @property
    def overwritten(self) -> int:
        return self.count("human edit overwritten", NOT_YET_UNDONE)

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def summary(self, limit: int = 8) -> str:
        lines = []
        for kind, problems in sorted(self.violations.items()):
            if problems:
                lines.append(f"{kind}: {len(problems)}")
                lines += [f"  {problem}" for problem in problems[:limit]]
        return "\n".join(lines) or "all invariants hold"


UNTIL_SYNCED = frozenset({"missing item", "stale item", "phantom item", "missing transition"})
"""What a person's edit made since the last sync shows until the next sync: at rest only."""
NOT_YET_UNDONE = "human edit overwritten, not yet undone"
"""The latest change of a field is an edit of ours over a person's value: a cycle killed between
that edit and its check leaves it for the next complete cycle to write their value back."""
UNTIL_SETTLED = frozenset(
    {
        "unsettled ledger row",
        "sync_run ledger",
        "write without ledger row",
        "rank moves vs ledger",
        NOT_YET_UNDONE,
    }
)
"""What a killed cycle may leave (a run still `running`, a write sent but not yet recorded, an
overwrite not yet undone) for the next complete cycle to settle."""


def check_between(engine: Engine, sandboxes: Mapping[str, Sandbox], *, killed: bool) -> Findings:
    """The invariants that hold between two cycles while people keep editing the trackers."""
    return mid_run(check(engine, sandboxes), killed=killed)


def mid_run(findings: Findings, *, killed: bool) -> Findings:
    """`findings` without the kinds only a later sync can clear (UNTIL_SYNCED), and after a
    killed cycle also without those it leaves for the next complete cycle (UNTIL_SETTLED).
    Nothing may ever be duplicated, invented or overwritten, not even for one cycle."""
    for kind in UNTIL_SYNCED | (UNTIL_SETTLED if killed else frozenset()):
        findings.violations.pop(kind, None)
    return findings


def check(engine: Engine, sandboxes: Mapping[str, Sandbox]) -> Findings:
    """Every invariant over every source; `sandboxes` maps source name -> its sandbox."""
    findings = Findings()
    _duplicates(engine, findings)
    _sync_runs(engine, findings)
    for name, sandbox in sandboxes.items():
        source_id = _source_id(engine, name)
        if source_id is None:
            findings.add("missing item", f"{name}: the source was never synced")
            continue
        with sandbox.portfolio.lock:
            histories = {
                sandbox.portfolio.external_id(i): sandbox.portfolio.history(i)
                for i in range(sandbox.portfolio.n)
            }
        _ground_truth(engine, name, source_id, sandbox, findings)
        _history(engine, name, source_id, sandbox, histories, findings)
        _writes(engine, name, source_id, histories, findings)
    return findings


def _source_id(engine: Engine, name: str) -> int | None:
    table = models.Source.__table__
    with engine.connect() as conn:
        found: int | None = conn.execute(
            select(table.c.id).where(table.c.name == name)
        ).scalar_one_or_none()
    return found


# --- rows -------------------------------------------------------------------------------------


def _duplicates(engine: Engine, findings: Findings) -> None:
    keys: list[tuple[Any, tuple[str, ...]]] = [
        (models.WorkItem.__table__, ("source_id", "external_id")),
        (models.Objective.__table__, ("source_id", "external_id")),
        (models.WorkItemHistory.__table__, ("work_item_id", "change_id", "field")),
        (models.Writeback.__table__, ("run_id", "work_item_id", "field")),
        (models.Quarantine.__table__, ("sync_run_id", "external_id")),
    ]
    with engine.connect() as conn:
        for table, columns in keys:
            group = [table.c[name] for name in columns]
            rows = conn.execute(
                select(*group, func.count().label("n")).group_by(*group).having(func.count() > 1)
            ).all()
            for row in rows:
                findings.add("duplicate row", f"{table.name} {tuple(row)[:-1]}: {row.n} rows")


def _sync_runs(engine: Engine, findings: Findings) -> None:
    """The `sync_run` ledger: every run settled, its counters adding up to the rows it wrote."""
    run = models.SyncRun.__table__
    item, objective = models.WorkItem.__table__, models.Objective.__table__
    with engine.connect() as conn:
        runs = conn.execute(select(run)).all()
        rows: Counter[int] = Counter()
        deleted: Counter[int] = Counter()
        for table in (item, objective):
            for source_id, total, gone in conn.execute(
                select(
                    table.c.source_id,
                    func.count(),
                    func.count(table.c.deleted_at),
                ).group_by(table.c.source_id)
            ):
                rows[source_id] += total
                deleted[source_id] += gone
    inserted: Counter[int] = Counter()
    reconciled: Counter[int] = Counter()
    for r in runs:
        inserted[r.source_id] += r.inserted
        reconciled[r.source_id] += r.deleted
        if r.status not in ("succeeded", "failed", "abandoned"):
            findings.add("sync_run ledger", f"run {r.id} left {r.status!r}")
        if r.finished_at is None:
            findings.add("sync_run ledger", f"run {r.id} ({r.status}) has no finished_at")
        if r.status == "succeeded" and r.watermark is None:
            findings.add("sync_run ledger", f"run {r.id} succeeded without a watermark")
        if r.fetched < r.inserted + r.updated + r.unchanged + r.quarantined:
            findings.add("sync_run ledger", f"run {r.id}: counters exceed fetched ({r.fetched})")
    for source_id, total in rows.items():
        if inserted[source_id] != total:
            findings.add(
                "sync_run ledger",
                f"source {source_id}: runs say {inserted[source_id]} inserted, {total} rows exist",
            )
        if reconciled[source_id] != deleted[source_id]:
            findings.add(
                "sync_run ledger",
                f"source {source_id}: runs say {reconciled[source_id]} deleted, "
                f"{deleted[source_id]} rows are",
            )


def _ground_truth(
    engine: Engine, name: str, source_id: int, sandbox: Sandbox, findings: Findings
) -> None:
    """Items, levels, statuses, parents and deleted flags equal the tracker's."""
    item, objective = models.WorkItem.__table__, models.Objective.__table__
    with engine.connect() as conn:
        items = {
            r.external_id: r
            for r in conn.execute(select(item).where(item.c.source_id == source_id))
        }
        objectives = {
            r.external_id: r
            for r in conn.execute(select(objective).where(objective.c.source_id == source_id))
        }
    expected: set[str] = set()
    for truth in sandbox.ground_truth():
        rows = objectives if truth.objective else items
        row = rows.get(truth.external_id)
        live = row is not None and row.deleted_at is None
        if truth.deleted or (truth.level is None and not truth.objective):
            if live:
                findings.add("phantom item", f"{name} {truth.key}: deleted in the tracker, live")
            elif truth.deleted:
                findings.deleted += 1
            continue
        expected.add(truth.external_id)
        if row is None or not live:
            findings.add(
                "missing item", f"{name} {truth.key}: {'deleted' if row else 'absent'} in warehouse"
            )
            continue
        if truth.objective:
            findings.objectives += 1
            continue
        findings.items += 1
        for attr in TRUTH_FIELDS:
            want, got = getattr(truth, attr), getattr(row, attr)
            if want != got:
                findings.add(
                    "stale item", f"{name} {truth.key}.{attr}: {got!r} != tracker {want!r}"
                )
        if row.parent_external_id != truth.parent_external_id:
            findings.add(
                "stale item",
                f"{name} {truth.key}.parent: {row.parent_external_id!r} != "
                f"tracker {truth.parent_external_id!r}",
            )
        parent_row = items.get(truth.parent_external_id or "")
        if truth.parent_external_id and (parent_row is None or row.parent_id != parent_row.id):
            findings.add("stale item", f"{name} {truth.key}: parent_id not linked to its parent")
    for external_id, row in [*items.items(), *objectives.items()]:
        if row.deleted_at is None and external_id not in expected:
            findings.add("phantom item", f"{name} {external_id}: live, not in the tracker")


# --- history ----------------------------------------------------------------------------------


def _transitions(
    portfolio: Portfolio, entries: Iterable[ChangeEntry]
) -> list[tuple[int, str, str]]:
    statuses = portfolio.process.statuses
    return [
        (entry.at, statuses[change.old].name, statuses[change.new].name)
        for entry in entries
        for change in entry.items
        if change.attr == "status"
    ]


def _history(
    engine: Engine,
    name: str,
    source_id: int,
    sandbox: Sandbox,
    histories: Mapping[str, list[ChangeEntry]],
    findings: Findings,
) -> None:
    """Every status transition of the tracker's changelog is in work_item_history once.

    Azure DevOps items bring their updates on every fetch, so every item's whole history is
    required. A Jira full sync reads no changelog (incremental syncs do), so there the items
    changed since the first sync are required: each was fetched incrementally with its changelog.
    Rows that match no tracker transition are reported as invented.
    """
    history, item = models.WorkItemHistory.__table__, models.WorkItem.__table__
    run = models.SyncRun.__table__
    with engine.connect() as conn:
        first: datetime | None = conn.execute(
            select(func.min(run.c.started_at)).where(run.c.source_id == source_id)
        ).scalar()
        stored: dict[str, Counter[tuple[int, str | None, str | None]]] = defaultdict(Counter)
        for row in conn.execute(
            select(
                item.c.external_id, history.c.changed_at, history.c.from_value, history.c.to_value
            )
            .join(item, item.c.id == history.c.work_item_id)
            .where(item.c.source_id == source_id, history.c.field == "status")
        ):
            stored[row.external_id][(_ms(row.changed_at), row.from_value, row.to_value)] += 1
        live = set(
            conn.execute(
                select(item.c.external_id).where(
                    item.c.source_id == source_id, item.c.deleted_at.is_(None)
                )
            ).scalars()
        )
    since = _ms(first) if first is not None else 0
    portfolio = sandbox.portfolio
    for external_id, entries in histories.items():
        if external_id not in live:
            continue
        tracker = Counter(_transitions(portfolio, entries))
        required = sandbox.kind == "azure_devops" or any(e.at >= since for e in entries)
        found = stored.get(external_id, Counter())
        for transition, times in tracker.items():
            got = found.get(transition, 0)
            if required:
                findings.transitions_checked += times
                if got < times:
                    findings.add("missing transition", f"{name} {external_id}: {transition}")
            if got > times:
                findings.add("duplicated transition", f"{name} {external_id}: {transition} x{got}")
        for stored_transition, got in found.items():
            if stored_transition not in tracker:
                findings.add(
                    "invented transition", f"{name} {external_id}: {stored_transition} x{got}"
                )


def _ms(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return round(aware.timestamp() * 1000)


# --- write-back -------------------------------------------------------------------------------


def _writes(
    engine: Engine,
    name: str,
    source_id: int,
    histories: Mapping[str, list[ChangeEntry]],
    findings: Findings,
) -> None:
    """Human edits survive; every tracker write of lpm-sync has exactly one `applied` row.

    Jira has no conditional edit, so an edit of lpm-sync may land over a value a person saved
    an instant before; lpm-sync then writes their value back. That pair is accepted only as
    such: the next change of the field is lpm-sync's write of exactly the person's value over
    its own (or a person's newer edit, which stands), and the ledger has a `skipped_conflict`
    row saying so (with its error) for the value that replaced theirs. Neither write of the
    pair is an `applied` write."""
    ledger, item = models.Writeback.__table__, models.WorkItem.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                item.c.external_id,
                ledger.c.field,
                ledger.c.status,
                ledger.c.tracker_value,
                ledger.c.new_value,
                ledger.c.error,
                ledger.c.run_id,
                ledger.c.planned_at,
                ledger.c.applied_at,
            )
            .join(item, item.c.id == ledger.c.work_item_id)
            .where(item.c.source_id == source_id)
        ).all()
    applied: Counter[tuple[str, str, str | None]] = Counter()
    windows: dict[tuple[str, str, str | None], list[tuple[int, int]]] = defaultdict(list)
    applied_ranks: Counter[str] = Counter()
    conflicts: set[tuple[str, str]] = set()
    undone_in_ledger: Counter[tuple[str, str, str | None]] = Counter()
    for row in rows:
        if row.status == "planned":
            findings.add(
                "unsettled ledger row",
                f"{name} {row.external_id}.{row.field} run {row.run_id} still planned",
            )
        if row.status == "skipped_conflict":
            conflicts.add((row.external_id, row.field))
            if row.error:
                key = (row.external_id, row.field, _canonical(row.field, row.new_value))
                undone_in_ledger[key] += 1
        if row.status != "applied":
            continue
        if row.field == RANK:
            applied_ranks[row.external_id] += 1
        elif not same(row.field, row.tracker_value, row.new_value):
            key = (row.external_id, row.field, _canonical(row.field, row.new_value))
            applied[key] += 1
            windows[key].append((_ms(row.planned_at), _ms(row.applied_at)))
    findings.conflicts_recorded += len(conflicts)
    written: Counter[tuple[str, str, str | None]] = Counter()
    undone: Counter[tuple[str, str, str | None]] = Counter()
    """lpm-sync writes that replaced a person's value, then undone: (item, field, our value)."""
    set_by_people: dict[tuple[str, str, str | None], list[int]] = defaultdict(list)
    changes: dict[tuple[str, str], list[str]] = defaultdict(list)
    """Every change of an owned field, for the messages: `author@ms:value`."""
    ranked: Counter[str] = Counter()
    for external_id, entries in histories.items():
        last_written: dict[str, str | None] = {}
        humans_since: dict[str, bool] = {}
        set_at: dict[str, int] = {}
        undoing: dict[str, _Undo] = {}
        """Per field, an overwrite of a person's value waiting for its undo (the next change)."""
        superseded: dict[str, _Undo] = {}
        """Per field, an overwrite a person changed again before the undo: theirs stands,
        unless the undo lands right after it (then it is an overwrite of theirs, undone next)."""
        for entry in entries:
            for change in entry.items:
                if change.attr == RANK and entry.author == API_USER:
                    ranked[external_id] += 1
                if change.attr not in OWNED_VALUES:
                    continue
                old = _canonical(change.attr, change.old)
                new = _canonical(change.attr, change.new)
                changes[(external_id, change.attr)].append(f"{entry.author}@{entry.at}:{new}")
                pending = undoing.pop(change.attr, None)
                late = superseded.pop(change.attr, None)
                if (
                    late is not None
                    and entry.author == API_USER
                    and same(change.attr, new, late.theirs)
                ):
                    undoing[change.attr] = _Undo(old, new, late.ours, late.problem)
                    findings.lpm_writes += 1
                    continue
                if late is not None:
                    undone[(external_id, change.attr, late.ours)] += 1
                if entry.author != API_USER:
                    if pending is not None:
                        superseded[change.attr] = pending
                    set_by_people[(external_id, change.attr, new)].append(entry.at)
                    findings.human_edits_to_owned_fields += 1
                    humans_since[change.attr] = True
                    set_at[change.attr] = entry.at
                    continue
                findings.lpm_writes += 1
                if pending is not None and same(change.attr, new, pending.theirs):
                    if same(change.attr, old, pending.replaced):
                        undone[(external_id, change.attr, pending.ours)] += 1
                    else:  # a person saved again just before the undo: theirs is undone next
                        undoing[change.attr] = _Undo(old, new, pending.ours, pending.problem)
                    continue
                if pending is not None:
                    findings.add("human edit overwritten", f"{pending.problem}; never undone")
                ours = last_written.get(change.attr)
                by_a_person = old is not None or humans_since.get(change.attr, False)
                if not same(change.attr, old, ours) and by_a_person:
                    undoing[change.attr] = _Undo(
                        old,
                        new,
                        new,
                        f"{name} {external_id}.{change.attr}: {old!r} (not lpm-sync's {ours!r}) "
                        f"overwritten with {new!r} "
                        f"{entry.at - set_at.get(change.attr, 0)} ms after a person set it",
                    )
                    continue
                if old is not None and humans_since.get(change.attr):
                    findings.aba_restores += 1
                written[(external_id, change.attr, new)] += 1
                last_written[change.attr] = new
                humans_since[change.attr] = False
        for pending in undoing.values():
            findings.add(NOT_YET_UNDONE, f"{pending.problem}; not undone")
        for attr, late in superseded.items():
            undone[(external_id, attr, late.ours)] += 1
    findings.overwrites_undone += sum(undone.values())
    for key, times in (undone - undone_in_ledger).items():
        findings.add(
            "human edit overwritten",
            f"{name} {key}: {times} overwrite(s) of a person's value undone without a "
            "skipped_conflict ledger row saying so",
        )
    findings.human_edits += sum(
        1 for entries in histories.values() for e in entries if e.author != API_USER
    )
    findings.rank_moves += sum(ranked.values())
    for key, times in (written - applied).items():
        findings.add("write without ledger row", f"{name} {key}: {times} tracker write(s)")
    for key, times in (applied - written).items():
        raced = [
            (start, end)
            for start, end in windows[key]
            if any(start - SLACK_MS <= at <= end + SLACK_MS for at in set_by_people[key])
        ]
        findings.same_value_races += min(times, len(raced))
        if times > len(raced):
            findings.add(
                "ledger row without write",
                f"{name} {key}: {times} applied row(s); applied in {windows[key]}, tracker "
                f"changes (author@ms:value) {changes[key[:2]][-8:]}",
            )
    for external_id in set(ranked) | set(applied_ranks):
        if ranked[external_id] != applied_ranks[external_id]:
            findings.add(
                "rank moves vs ledger",
                f"{name} {external_id}: {ranked[external_id]} tracker rank change(s), "
                f"{applied_ranks[external_id]} applied rank row(s)",
            )


@dataclass(frozen=True)
class _Undo:
    """lpm-sync's write `replaced` that replaced a person's value `theirs`, to be undone."""

    theirs: str | None
    replaced: str | None
    ours: str | None
    """The value of the write-back change whose edit replaced theirs (its ledger row's)."""
    problem: str


def _canonical(field_name: str, value: Any) -> str | None:
    text = as_text(field_name, value)
    return text.casefold() if text is not None and field_name == "health" else text
