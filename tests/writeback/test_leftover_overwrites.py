"""An apply killed after its edit replaced a person's value, before its changelog check: the next
sync's history shows it, the next plan settles the row `skipped_conflict` and the next apply
writes the person's value back, recorded as an apply records its own undo.

Over mocked HTTP (Jira Cloud). The epic was synced holding WSJF 4, lpm-sync's last write; the
killed run read 4 and wrote 5 just after a person saved 9.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from sqlalchemy import Engine

from flows.writeback import RESTORE_NOTE, apply_writeback, plan_table, plan_writeback
from mapping.model import HistoryChange, Level
from tests.factories import work_item
from tests.writeback.mocked import (
    BOT,
    WSJF_FIELD,
    history,
    jira_changelog,
    jira_config,
    jira_discovery,
    jira_read,
    warehouse,
)
from warehouse.load import finish_run, load_batch, start_run
from warehouse.writeback import (
    PLANNED,
    RESTORE_PENDING,
    LedgerEntry,
    Sending,
    ledger_rows,
    mark_sending,
    record,
    source_id_of,
)

PLANNED_AT = datetime.now(UTC) - timedelta(minutes=5)


def at(seconds: float) -> datetime:
    return PLANNED_AT + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def killed(engine: Engine) -> None:
    """The warehouse (SQLite and PostgreSQL) as the killed run left it: its row, marked being
    sent with the value it read."""
    warehouse(engine, "jira", "jira", {"10001": {"wsjf": 4.0}})
    with engine.connect() as conn:
        item_id = int(conn.exec_driver_sql("SELECT id FROM work_item").scalar_one())
    record(engine, "killed", [LedgerEntry(item_id, "wsjf", PLANNED, "4", "5")], PLANNED_AT)
    mark_sending(engine, "killed", [Sending(item_id, "wsjf", "4", updated_at=at(0))])


def sync(engine: Engine, wsjf: float, *changes: tuple[float, str | None, str]) -> None:
    """An incremental sync bringing the epic with WSJF `wsjf` and these changelog entries
    (seconds after the plan, from, to)."""
    source_id = source_id_of(engine, "jira")
    assert source_id is not None
    run = start_run(engine, source_id, "incremental")
    history = tuple(
        HistoryChange(
            change_id=str(index), changed_at=at(s), field="wsjf", from_value=old, to_value=new
        )
        for index, (s, old, new) in enumerate(changes)
    )
    item = work_item(
        "10001",
        key="E-10001",
        level=Level.epic,
        item_type="Epic",
        updated_at=at(60),
        writeback_values={"wsjf": wsjf},
        history=history,
    )
    load_batch(engine, run, source_id, [item], watermark=at(61))
    finish_run(engine, run, "succeeded")


def killed_row(engine: Engine) -> Any:
    [row] = ledger_rows(engine, "killed")
    return row


def sent(mock: responses.RequestsMock) -> list[float | None]:
    return [
        json.loads(call.request.body)["fields"][WSJF_FIELD]
        for call in mock.calls
        if call.request.method == "PUT"
    ]


def test_the_next_plan_finds_the_overwrite_and_plans_the_persons_value_back(engine: Engine) -> None:
    sync(engine, 5.0, (1, "4", "9"), (2, "9", "5"))
    config = jira_config()

    plan = plan_writeback(config, engine)

    row = killed_row(engine)
    assert (row.status, row.tracker_value, row.new_value) == ("skipped_conflict", "9", "5")
    assert row.error == RESTORE_PENDING
    [restore] = plan.sources[0].restores
    assert (restore.change.key, restore.victim, restore.at) == ("E-10001", "9", at(2))
    assert plan.changes == [], "the field is not planned while the person's value is owed"
    summary, _header, line = plan_table(plan)
    assert (
        summary == "jira: 0 field change(s), 0 rank move(s), 0 conflict(s), 1 value(s) written back"
    )
    assert line.split() == ["E-10001", "wsjf", "5", "->", "9", "RESTORE:", *RESTORE_NOTE.split()]
    # A plan-only run sends nothing: the next plan still owes the person their value.
    assert [r.victim for r in plan_writeback(config, engine).sources[0].restores] == ["9"]


def test_the_next_apply_writes_the_persons_value_back_and_the_plan_after_is_a_conflict(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    sync(engine, 5.0, (1, "4", "9"), (2, "9", "5"))
    config = jira_config()
    jira_discovery(mock)
    jira_read(mock, "10001", 5.0, updated=at(2))
    mock.put("https://contoso.atlassian.net/rest/api/3/issue/10001", status=204)
    ours, back = history(at(2), BOT, "9", "5"), history(at(70), BOT, "5", "9")
    jira_changelog(mock, "10001", ours, back)

    result = apply_writeback(config, engine, plan_writeback(config, engine))

    assert sent(mock) == [9.0]
    assert result.counts() == {"applied": 0, "skipped_conflict": 1, "failed": 0}
    assert result.calls["jira"].restores == 1
    row = killed_row(engine)
    assert (row.status, row.tracker_value, row.new_value) == ("skipped_conflict", "9", "5")
    assert row.error == (
        "a person set 9 between lpm-sync's read and its edit to 5, which replaced it; "
        "their value was written back"
    )
    # The sync after: the person's 9 is theirs, lpm-sync's last write is still 4.
    sync(engine, 9.0, (1, "4", "9"), (2, "9", "5"), (70, "5", "9"))
    after = plan_writeback(config, engine)
    assert after.sources[0].restores == [] and after.writes == []
    assert [(c.tracker_value, c.new_value) for c in after.conflicts] == [("9", "5")]


def test_a_value_changed_again_before_the_apply_is_left_as_set(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    sync(engine, 5.0, (1, "4", "9"), (2, "9", "5"))
    config = jira_config()
    jira_discovery(mock)
    jira_read(mock, "10001", 7.0, updated=at(80))

    result = apply_writeback(config, engine, plan_writeback(config, engine))

    assert sent(mock) == []
    row = killed_row(engine)
    assert (row.status, row.tracker_value) == ("skipped_conflict", "7")
    assert row.error is not None and row.error.endswith("; left as set since")
    assert result.counts()["skipped_conflict"] == 1


def test_a_value_changed_again_before_the_sync_needs_no_writing_back(engine: Engine) -> None:
    sync(engine, 7.0, (1, "4", "9"), (2, "9", "5"), (30, "5", "7"))

    plan = plan_writeback(jira_config(), engine)

    assert plan.sources[0].restores == []
    row = killed_row(engine)
    assert (row.status, row.tracker_value) == ("skipped_conflict", "9")
    assert row.error == (
        "a person set 9 between lpm-sync's read and its edit to 5, which replaced it; "
        "they have changed it again since"
    )


def test_an_edit_that_replaced_the_value_read_is_applied(engine: Engine) -> None:
    sync(engine, 5.0, (-120, "3", "4"), (2, "4", "5"))

    plan_writeback(jira_config(), engine)

    row = killed_row(engine)
    assert (row.status, row.tracker_value, row.error) == ("applied", "4", None)


def test_the_value_read_right_before_sending_is_what_the_edit_must_replace(engine: Engine) -> None:
    """The plan saw 4; the apply read 3 (a person's, which the rules let it replace) and sent:
    the edit from 3 replaced no one's value."""
    item_id = killed_row(engine).work_item_id
    mark_sending(engine, "killed", [Sending(item_id, "wsjf", "3", updated_at=at(1))])
    sync(engine, 5.0, (1, "4", "3"), (2, "3", "5"))

    plan_writeback(jira_config(), engine)

    assert (killed_row(engine).status, killed_row(engine).tracker_value) == ("applied", "3")


def test_a_read_that_found_the_planned_value_was_never_sent(engine: Engine) -> None:
    """Found by a chaos run: a person saved 5 just before the apply's read, which found 5 and
    would have settled the change without an edit; the run died first. The person's edit, at
    the read's `updated` instant, is not ours over the 4 before it: nothing to write back."""
    item_id = killed_row(engine).work_item_id
    mark_sending(engine, "killed", [Sending(item_id, "wsjf", "5", updated_at=at(0))])
    sync(engine, 5.0, (0, "4", "5"))

    plan = plan_writeback(jira_config(), engine)

    assert plan.sources[0].restores == []
    row = killed_row(engine)
    assert (row.status, row.tracker_value, row.error) == ("skipped_conflict", "5", None)
    assert plan.sources[0].changes == []


def test_earlier_writes_of_the_same_value_are_not_taken_for_this_edit(engine: Engine) -> None:
    """Found by the CI chaos run: runs seconds apart. Ours set 5 at -28 s, then 4 at -14 s (the
    item's `updated` as read before sending); the killed run's edit set 5 over that 4. Read
    from a minute before the plan, the first 5 looked like this edit, over someone's value."""
    item_id = killed_row(engine).work_item_id
    mark_sending(engine, "killed", [Sending(item_id, "wsjf", "4", updated_at=at(-14))])
    sync(engine, 5.0, (-28, None, "5"), (-14, "5", "4"), (0.1, "4", "5"))

    plan = plan_writeback(jira_config(), engine)

    assert plan.sources[0].restores == []
    assert (killed_row(engine).status, killed_row(engine).error) == ("applied", None)


def test_where_edits_are_conditional_nothing_is_taken_for_an_overwrite(engine: Engine) -> None:
    """Azure DevOps edits carry `test /rev`: none can replace a value it did not read, and its
    reads give no `updated` instant to read the history from."""
    item_id = killed_row(engine).work_item_id
    mark_sending(engine, "killed", [Sending(item_id, "wsjf", "4")])
    sync(engine, 5.0, (1, "4", "9"), (2, "9", "5"))

    plan_writeback(jira_config(), engine)

    assert killed_row(engine).status == "applied"
