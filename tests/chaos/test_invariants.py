"""What the check between two chaos cycles lets pass, and what it never does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from sandbox.jira_api import API_USER
from sandbox.portfolio import ChangeEntry, ChangeItem
from tests.chaos.invariants import Findings, _writes, mid_run
from tests.factories import work_item
from warehouse import models
from warehouse.load import ensure_source, load_batch, start_run
from warehouse.writeback import LedgerEntry, record

KINDS = (
    "duplicate row",
    "duplicated transition",
    "invented transition",
    "human edit overwritten",
    "ledger row without write",
    "missing item",
    "stale item",
    "phantom item",
    "missing transition",
    "unsettled ledger row",
    "sync_run ledger",
    "write without ledger row",
    "rank moves vs ledger",
)
ALWAYS = {
    "duplicate row",
    "duplicated transition",
    "invented transition",
    "human edit overwritten",
    "ledger row without write",
}
SETTLED_BY_A_COMPLETE_CYCLE = {
    "unsettled ledger row",
    "sync_run ledger",
    "write without ledger row",
    "rank moves vs ledger",
}


def every_kind() -> Findings:
    findings = Findings()
    for kind in KINDS:
        findings.add(kind, f"one {kind}")
    return findings


def test_after_a_complete_cycle_only_what_awaits_a_sync_passes() -> None:
    kept = mid_run(every_kind(), killed=False)
    assert set(kept.violations) == ALWAYS | SETTLED_BY_A_COMPLETE_CYCLE
    assert not kept.ok


def test_after_a_killed_cycle_what_it_leaves_unsettled_passes_too() -> None:
    kept = mid_run(every_kind(), killed=True)
    assert set(kept.violations) == ALWAYS
    assert kept.duplicated == 2 and kept.overwritten == 1 and kept.lost == 0


# --- write-back: an overwrite of a person's value is accepted only when undone and recorded ---

PERSON = 7
ITEM = "10001"


def edit(at: int, author: int, old: float | None, new: float | None) -> ChangeEntry:
    return ChangeEntry(at, at, author, (ChangeItem("progress", old, new),))


def ledger(engine: Engine, *rows: tuple[str, str | None, str | None, str | None]) -> int:
    """One synced Jira item and its progress rows: (status, tracker value, new value, error)."""
    source_id = ensure_source(engine, "jira", "jira", "https://example.com")
    load_batch(engine, start_run(engine, source_id, "full"), source_id, [work_item(ITEM)])
    with engine.connect() as conn:
        item_id = conn.execute(select(models.WorkItem.__table__.c.id)).scalar_one()
    at = datetime.now(UTC)
    for n, (status, tracker, new, error) in enumerate(rows):
        entry = LedgerEntry(item_id, "progress", status, tracker, new, error=error, applied_at=at)
        record(engine, f"run-{n}", [entry], at)
    return source_id


def writes(engine: Engine, source_id: int, *entries: ChangeEntry) -> Findings:
    findings = Findings()
    _writes(engine, "jira", source_id, {ITEM: list(entries)}, findings)
    return findings


FIRST = edit(1, API_USER, None, 40.0)
"""lpm-sync's first write (applied): 40."""
APPLIED_40 = ("applied", None, "40", None)
UNDONE_50 = ("skipped_conflict", "10", "50", "a person set 10 ...; their value was written back")


def test_an_overwrite_undone_at_once_and_recorded_as_skipped_conflict_passes(
    engine: Engine,
) -> None:
    source_id = ledger(engine, APPLIED_40, UNDONE_50)
    found = writes(
        engine,
        source_id,
        FIRST,
        edit(2, PERSON, 40.0, 10.0),
        edit(3, API_USER, 10.0, 50.0),
        edit(4, API_USER, 50.0, 10.0),
    )
    assert found.ok, found.summary()
    assert found.overwrites_undone == 1


def test_an_undo_that_replaced_a_second_persons_edit_passes_once_that_is_undone_too(
    engine: Engine,
) -> None:
    source_id = ledger(engine, APPLIED_40, UNDONE_50)
    history = [FIRST, edit(2, PERSON, 40.0, 10.0), edit(3, API_USER, 10.0, 50.0)]
    history += [edit(4, PERSON, 50.0, 20.0), edit(5, API_USER, 20.0, 10.0)]
    assert writes(engine, source_id, *history).overwritten
    found = writes(engine, source_id, *history, edit(6, API_USER, 10.0, 20.0))
    assert found.ok, found.summary()


def test_a_persons_newer_edit_after_the_overwrite_stands_for_the_undo(engine: Engine) -> None:
    source_id = ledger(engine, APPLIED_40, UNDONE_50)
    found = writes(
        engine,
        source_id,
        FIRST,
        edit(2, PERSON, 40.0, 10.0),
        edit(3, API_USER, 10.0, 50.0),
        edit(4, PERSON, 50.0, 30.0),
    )
    assert found.ok, found.summary()


@pytest.mark.parametrize(
    ("rows", "after"),
    [
        pytest.param((APPLIED_40, UNDONE_50), (), id="never-undone"),
        pytest.param((APPLIED_40, UNDONE_50), ((5, 60.0),), id="written-over-again"),
        pytest.param(
            (APPLIED_40, ("skipped_conflict", "10", "50", None)),
            ((4, 10.0),),
            id="ledger-row-without-error",
        ),
        pytest.param((APPLIED_40, ("applied", "10", "50", None)), ((4, 10.0),), id="applied"),
    ],
)
def test_an_overwrite_fails_unless_undone_and_recorded_as_skipped_with_its_error(
    engine: Engine,
    rows: tuple[tuple[str, str | None, str | None, str | None], ...],
    after: tuple[tuple[int, float], ...],
) -> None:
    source_id = ledger(engine, *rows)
    history = [FIRST, edit(2, PERSON, 40.0, 10.0), edit(3, API_USER, 10.0, 50.0)]
    value = 50.0
    for at, new in after:
        history.append(edit(at, API_USER, value, new))
        value = new
    found = writes(engine, source_id, *history)
    assert found.overwritten, found.summary()


def test_writing_over_a_value_a_person_cleared_is_an_overwrite(engine: Engine) -> None:
    source_id = ledger(engine, APPLIED_40, ("applied", None, "50", None))
    found = writes(
        engine, source_id, FIRST, edit(2, PERSON, 40.0, None), edit(3, API_USER, None, 50.0)
    )
    assert found.overwritten, found.summary()


def test_an_overwrite_not_yet_undone_may_wait_for_the_next_cycle_only_after_a_kill(
    engine: Engine,
) -> None:
    """Killed between an edit over a person's value and its check, a cycle leaves the undo to
    the next complete cycle; a complete cycle may not, and neither may the final check."""
    source_id = ledger(engine, APPLIED_40, UNDONE_50)
    history = [FIRST, edit(2, PERSON, 40.0, 10.0), edit(3, API_USER, 10.0, 50.0)]
    assert mid_run(writes(engine, source_id, *history), killed=True).overwritten == 0
    assert mid_run(writes(engine, source_id, *history), killed=False).overwritten == 1
    assert writes(engine, source_id, *history).overwritten == 1
