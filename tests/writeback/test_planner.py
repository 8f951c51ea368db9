"""The planner on real SQLite and PostgreSQL: desired vs tracker vs our last write, per field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from flows.writeback import plan_table, plan_writeback
from mapping.config import LpmConfig
from mapping.model import Level, WorkItem
from mapping.writeback import Outcome
from tests.factories import T0, work_item
from warehouse import models
from warehouse.load import ensure_source, load_batch, mark_missing_deleted, start_run
from warehouse.models import table_of
from warehouse.writeback import (
    APPLIED,
    SENDING,
    LedgerEntry,
    Sending,
    ledger_rows,
    mark_sending,
    record,
)


def config(**writeback: Any) -> LpmConfig:
    return LpmConfig.model_validate(
        {
            "portfolio": {"name": "P"},
            "sources": [
                {
                    "name": "jira",
                    "kind": "jira",
                    "url": "https://jira.example.com",
                    "auth": {"token": {"env": "LPM_TEST_UNUSED_TOKEN"}},
                    "scope": "project = P",
                    "levels": {"Epic": "epic", "Story": "story"},
                    "writeback": writeback,
                }
            ],
        }
    )


def epic(external_id: str, updated: int = 1, **values: Any) -> WorkItem:
    return work_item(
        external_id,
        key=f"P-{external_id}",
        level=Level.epic,
        item_type="Epic",
        updated_at=T0 + timedelta(hours=updated),
        writeback_values=values,
        tracker_rank=values.get("rank"),
    )


class Warehouse:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.source_id = ensure_source(engine, "jira", "jira", "https://jira.example.com")

    def load(self, *items: WorkItem) -> dict[str, int]:
        run = start_run(self.engine, self.source_id, "full")
        load_batch(self.engine, run, self.source_id, list(items))
        return self.ids()

    def ids(self) -> dict[str, int]:
        table = table_of(models.WorkItem)
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.external_id, table.c.id))
            return {external_id: id_ for external_id, id_ in rows}

    def rollup(self, external_id: str, **values: Any) -> None:
        table = table_of(models.Rollup)
        row = {
            "work_item_id": self.ids()[external_id],
            "computed_at": datetime.now(UTC),
            "total_items": 1,
            "done_items": 0,
            "estimated_items": 0,
            "progress_basis": "count",
            "flagged_items": 0,
            **values,
        }
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.work_item_id == row["work_item_id"]))
            conn.execute(insert(table), [row])

    def synced_at(self, external_id: str) -> datetime:
        table = table_of(models.WorkItem)
        with self.engine.connect() as conn:
            found: datetime = conn.execute(
                select(table.c.synced_at).where(table.c.external_id == external_id)
            ).scalar_one()
        return found

    def wrote(self, external_id: str, field: str, value: str | None, at: datetime) -> None:
        """A ledger row as an earlier apply leaves it."""
        entry = LedgerEntry(self.ids()[external_id], field, APPLIED, None, value, applied_at=at)
        record(self.engine, f"earlier-{external_id}-{field}-{at.timestamp()}", [entry], at)


def outcomes(plan: Any) -> dict[tuple[str, str], Outcome]:
    return {(c.key, c.field): c.outcome for c in plan.changes}


def test_first_plan_fills_empty_fields_respects_people_and_ignores_unowned_fields(
    engine: Engine,
) -> None:
    wh = Warehouse(engine)
    wh.load(
        epic("1", wsjf=None, health=None, progress=None),
        epic("2", wsjf=12.5, health="On-Track", progress=None),
        epic("3", wsjf="3", health="at-risk", progress=10.0),
        work_item("4", key="P-4", writeback_values={"wsjf": None}),  # a story: no roll-up
    )
    for key in ("1", "2", "3"):
        wh.rollup(key, wsjf=12.5, health="on-track", progress=0.5, rank=None)
    plan = plan_writeback(config(wsjf="WSJF", health="Portfolio Health"), engine)
    assert outcomes(plan) == {
        ("P-1", "wsjf"): Outcome.write,
        ("P-1", "health"): Outcome.write,
        ("P-3", "wsjf"): Outcome.conflict,
        ("P-3", "health"): Outcome.conflict,
    }
    first = next(c for c in plan.changes if c.key == "P-1" and c.field == "wsjf")
    assert (first.tracker_value, first.new_value) == (None, "12.5")
    assert ledger_rows(engine, plan.run_id) == []  # a plan alone records nothing
    table = "\n".join(plan_table(plan))
    assert "(empty) -> 12.5" in table and "CONFLICT" in table and "progress" not in table


def test_first_write_overwrite_and_force_replace_unowned_values(engine: Engine) -> None:
    wh = Warehouse(engine)
    wh.load(epic("3", wsjf=3.0))
    wh.rollup("3", wsjf=5.0)
    overwrite = plan_writeback(config(wsjf="WSJF", first_write="overwrite"), engine)
    assert outcomes(overwrite) == {("P-3", "wsjf"): Outcome.write}
    forced = plan_writeback(config(wsjf="WSJF"), engine, force=True)
    assert outcomes(forced) == {("P-3", "wsjf"): Outcome.write}
    assert "--force" in forced.changes[0].reason


def test_our_own_write_is_never_a_change_and_a_persons_edit_is_a_conflict(
    engine: Engine,
) -> None:
    wh = Warehouse(engine)
    wh.load(epic("1", wsjf=None))
    wh.rollup("1", wsjf=5.0)
    cfg = config(wsjf="WSJF")
    # Applied after the last sync: the tracker holds our value; a run right after plans nothing.
    wh.wrote("1", "wsjf", "5", wh.synced_at("1") + timedelta(microseconds=1))
    assert plan_writeback(cfg, engine).changes == []
    # The next sync brings our write back (updated moved on): still nothing.
    wh.load(epic("1", updated=2, wsjf=5.0))
    assert plan_writeback(cfg, engine).changes == []
    # The roll-up moves: our own value is replaced, no conflict.
    wh.rollup("1", wsjf=6.0)
    assert outcomes(plan_writeback(cfg, engine)) == {("P-1", "wsjf"): Outcome.write}
    # A person types 7 over our 5: conflict, unless --force.
    wh.load(epic("1", updated=3, wsjf=7.0))
    plan = plan_writeback(cfg, engine)
    assert outcomes(plan) == {("P-1", "wsjf"): Outcome.conflict}
    assert plan.changes[0].tracker_value == "7" and plan.changes[0].last_value == "5"
    assert outcomes(plan_writeback(cfg, engine, force=True)) == {("P-1", "wsjf"): Outcome.write}
    # A ledger row older than the sync does not hide what the sync saw.
    assert plan.changes[0].written


def test_a_cleared_value_is_removed_only_when_it_is_ours(engine: Engine) -> None:
    wh = Warehouse(engine)
    wh.load(epic("1", health="at-risk"), epic("2", health="at-risk"))
    wh.rollup("1", health=None)
    wh.rollup("2", health=None)
    wh.wrote("1", "health", "at-risk", wh.synced_at("1") - timedelta(minutes=1))
    plan = plan_writeback(config(health="Portfolio Health"), engine)
    assert outcomes(plan) == {("P-1", "health"): Outcome.write}
    assert plan.changes[0].new_value is None


def test_deleted_items_and_items_without_roll_up_are_never_planned(engine: Engine) -> None:
    wh = Warehouse(engine)
    wh.load(epic("1"), epic("2"))
    wh.rollup("1", wsjf=5.0)
    wh.rollup("2", wsjf=5.0)
    run = start_run(engine, wh.source_id, "full")
    mark_missing_deleted(engine, run, wh.source_id, {"1"})
    assert [c.key for c in plan_writeback(config(wsjf="WSJF"), engine).changes] == ["P-1"]


def test_rank_moves_the_fewest_items_and_leaves_what_a_person_moved(engine: Engine) -> None:
    wh = Warehouse(engine)
    # Tracker order A..F (LexoRank), WSJF order F, A, B, C, D, E: only F has to move.
    names = "ABCDEF"
    wh.load(*(epic(n, rank=f"0|{i:06d}:") for i, n in enumerate(names)))
    for wsjf_rank, name in enumerate("FABCDE", start=1):
        wh.rollup(name, wsjf=10.0 - wsjf_rank, rank=wsjf_rank, rank_scope="portfolio")
    cfg = config(rank=True)
    plan = plan_writeback(cfg, engine)
    assert [(c.key, c.field, c.outcome, c.position) for c in plan.changes] == [
        ("P-F", "rank", Outcome.write, (6, 1))
    ]
    assert plan.changes[0].reason == "WSJF order: before P-A"
    assert [m.items for m in plan.sources[0].scopes[0].moves] == [("F",)]
    # We ranked F once before and a person moved it since: it stays, and nothing else moves.
    wh.wrote("F", "rank", "0|999999:", wh.synced_at("F") - timedelta(minutes=1))
    plan = plan_writeback(cfg, engine)
    assert [(c.key, c.outcome) for c in plan.changes] == [("P-F", Outcome.conflict)]
    forced = plan_writeback(cfg, engine, force=True)
    assert [(c.key, c.outcome) for c in forced.changes] == [("P-F", Outcome.write)]
    # Items in other scopes or unranked are not ordered with these.
    with engine.begin() as conn:
        conn.execute(
            update(table_of(models.Rollup))
            .where(table_of(models.Rollup).c.work_item_id == wh.ids()["F"])
            .values(rank=None, rank_scope="portfolio")
        )
    assert plan_writeback(cfg, engine).changes == []


def test_ledger_rows_are_settled_in_place(engine: Engine) -> None:
    wh = Warehouse(engine)
    ids = wh.load(epic("1"))
    at = datetime.now(UTC)
    record(engine, "run-1", [LedgerEntry(ids["1"], "wsjf", "planned", None, "5")], at)
    record(
        engine,
        "run-1",
        [LedgerEntry(ids["1"], "wsjf", "failed", None, "5", error="boom", applied_at=at)],
        at,
    )
    rows = ledger_rows(engine, "run-1")
    assert [(r.status, r.error, r.planned_at, r.applied_at) for r in rows] == [
        ("failed", "boom", at, at)
    ]


def test_recording_into_a_large_run_touches_only_the_rows_named(engine: Engine) -> None:
    """`record` looks up only its entries' rows (the apply records a few at a time into a run of
    thousands): the others keep their state, and a row of another run is never updated."""
    wh = Warehouse(engine)
    ids = wh.load(*(epic(str(n)) for n in range(1, 1202)))
    at = datetime.now(UTC)
    planned = [LedgerEntry(ids[str(n)], "wsjf", "planned", None, "5") for n in range(1, 1202)]
    record(engine, "run-1", planned, at)
    record(engine, "run-2", [LedgerEntry(ids["7"], "wsjf", "planned", None, "6")], at)
    settled = [
        LedgerEntry(ids[str(n)], "wsjf", "applied", None, "5", applied_at=at) for n in (7, 1201)
    ]
    added = LedgerEntry(ids["7"], "health", "failed", None, "at-risk", error="x", applied_at=at)
    record(engine, "run-1", [*settled, added], at)
    rows = ledger_rows(engine, "run-1")
    assert len(rows) == 1202
    by_key = {(r.work_item_id, r.field): r.status for r in rows}
    assert by_key[(ids["7"], "wsjf")] == "applied" and by_key[(ids["1201"], "wsjf")] == "applied"
    assert by_key[(ids["7"], "health")] == "failed"
    assert sum(status == "planned" for status in by_key.values()) == 1199
    assert [r.status for r in ledger_rows(engine, "run-2")] == ["planned"]


def test_only_planned_rows_named_are_marked_sending_with_the_value_read(
    engine: Engine,
) -> None:
    wh = Warehouse(engine)
    ids = wh.load(epic("1"), epic("2"), epic("3"))
    at = datetime.now(UTC)
    entries = [
        LedgerEntry(ids["1"], "wsjf", "planned", None, "5"),
        LedgerEntry(ids["1"], "rank", "planned", None, None),
        LedgerEntry(ids["2"], "wsjf", "skipped_conflict", "9", "5", applied_at=at),
        LedgerEntry(ids["3"], "wsjf", "planned", None, "5"),
    ]
    record(engine, "run-1", entries, at)
    record(engine, "run-2", [LedgerEntry(ids["1"], "wsjf", "planned", None, "5")], at)
    mark_sending(engine, "run-1", [Sending(ids["1"], "wsjf", "4"), Sending(ids["2"], "wsjf", "9")])
    rows = {
        (r.work_item_id, r.field): (r.status, r.error, r.tracker_value)
        for r in ledger_rows(engine, "run-1")
    }
    assert rows == {
        (ids["1"], "wsjf"): ("planned", SENDING, "4"),
        (ids["1"], "rank"): ("planned", None, None),
        (ids["2"], "wsjf"): ("skipped_conflict", None, "9"),
        (ids["3"], "wsjf"): ("planned", None, None),
    }
    assert [r.error for r in ledger_rows(engine, "run-2")] == [None]


def test_rows_a_killed_apply_left_planned_are_settled_from_the_next_sync(engine: Engine) -> None:
    wh = Warehouse(engine)
    ids = wh.load(epic("1", wsjf=4.0), epic("2", wsjf=4.0), epic("3", wsjf=4.0))
    for key in ("1", "2", "3"):
        wh.rollup(key, wsjf=5.0)
    before_sync = wh.synced_at("1") + timedelta(microseconds=1)
    killed = [
        LedgerEntry(ids[k], "wsjf", "planned", "4", "5", error=SENDING) for k in ("1", "2", "3")
    ]
    record(engine, "killed-run", killed, before_sync)
    # The next sync: item 1 holds the value the killed run wrote, item 2 does not; item 3 was
    # not synced again, so nothing can be said about it yet.
    wh.load(epic("1", updated=2, wsjf=5.0), epic("2", updated=2, wsjf=4.0))
    plan = plan_writeback(config(wsjf="WSJF"), engine)
    rows = {r.work_item_id: r for r in ledger_rows(engine, "killed-run")}
    assert rows[ids["1"]].status == "applied" and rows[ids["1"]].applied_at == before_sync
    assert rows[ids["2"]].status == "failed" and rows[ids["2"]].error
    assert rows[ids["3"]].status == "planned"
    # Item 1's value is ours now: nothing to do now, and a later change is no conflict. Items
    # 2 and 3 still differ (conflicts here: no write of lpm-sync put their 4 there).
    assert sorted(c.key for c in plan.changes) == ["P-2", "P-3"]
    wh.rollup("1", wsjf=6.0)
    assert outcomes(plan_writeback(config(wsjf="WSJF"), engine))[("P-1", "wsjf")] == Outcome.write
