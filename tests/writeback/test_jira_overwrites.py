"""Jira has no conditional edit: the changelog read after each batch of edits finds an edit of
ours that replaced a person's value, writes their value back and records `skipped_conflict`.

Over mocked HTTP, in Cloud (`changelog/bulkfetch`) and Data Center (search with the changelog
expanded) shapes. The epic was read holding WSJF 4; lpm-sync writes 5.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import Engine

from connectors.http import RetryPolicy
from connectors.jira import JiraConnector
from flows.writeback import WritebackResult, apply_writeback, plan_writeback, result_lines
from tests.writeback.mocked import (
    BOT,
    JIRA,
    JIRA_DC,
    PERSON,
    WSJF_FIELD,
    expands_changelog,
    history,
    jira_changelog,
    jira_config,
    jira_discovery,
    jira_read,
    warehouse,
)
from warehouse.db import open_warehouse
from warehouse.writeback import RESTORE_PENDING, ledger_rows

READ_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return READ_AT + timedelta(seconds=seconds)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    warehouse(engine, "jira", "jira", {"10001": {"wsjf": 4.0}})
    yield engine
    engine.dispose()


def apply(mock: responses.RequestsMock, engine: Engine, url: str = JIRA) -> WritebackResult:
    config = jira_config(url)
    plan = plan_writeback(config, engine)
    assert [(c.key, c.tracker_value, c.new_value) for c in plan.writes] == [("E-10001", "4", "5")]
    return apply_writeback(config, engine, plan)


def edit_url(url: str = JIRA) -> str:
    return f"{url}/rest/api/{'3' if url == JIRA else '2'}/issue/10001"


def sent(mock: responses.RequestsMock) -> list[float | None]:
    """The WSJF of every edit sent, in order."""
    return [
        json.loads(call.request.body)["fields"][WSJF_FIELD]
        for call in mock.calls
        if call.request.method == "PUT"
    ]


def row(engine: Engine, result: WritebackResult) -> Any:
    [found] = ledger_rows(engine, result.run_id)
    return found


@pytest.mark.parametrize("url", [JIRA, JIRA_DC], ids=["cloud", "datacenter"])
def test_a_persons_value_saved_between_read_and_edit_is_written_back(
    mock: responses.RequestsMock, engine: Engine, url: str
) -> None:
    jira_discovery(mock, url=url)
    jira_read(mock, "10001", 4.0, updated=READ_AT, url=url)
    mock.put(edit_url(url), status=204)
    # Data Center changelog items may lack `fieldId`: the field is then known by its name.
    field_id = WSJF_FIELD if url == JIRA else None
    person = history(at(1), PERSON, "4", "9", field_id=field_id)
    ours = history(at(2), BOT, "9", "5", field_id=field_id)
    jira_changelog(mock, "10001", person, ours, url=url)
    restored = history(at(3), BOT, "5", "9", field_id=field_id)
    jira_changelog(mock, "10001", ours, restored, url=url)

    result = apply(mock, engine, url)

    assert sent(mock) == [5.0, 9.0]
    assert result.counts() == {"applied": 0, "skipped_conflict": 1, "failed": 0}
    assert result.calls["jira"].restores == 1 and not result.clean
    found = row(engine, result)
    assert (found.status, found.tracker_value, found.new_value) == ("skipped_conflict", "9", "5")
    assert found.error == (
        "a person set 9 between lpm-sync's read and its edit to 5, which replaced it; "
        "their value was written back"
    )
    lines, problems = result_lines(result)
    assert "1 restoring a person's value" in lines[0]
    assert problems == [f"jira E-10001 wsjf: skipped_conflict: {found.error}"]


def test_the_ledger_says_skipped_conflict_before_the_persons_value_is_written_back(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    """A run killed while writing back leaves no `planned` row for the next sync to settle
    as `applied` from the tracker's history (which shows our edit), and no settled one either:
    the next apply writes the person's value back (test_leftover_overwrites.py)."""
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    jira_changelog(mock, "10001", *OVERWRITE)
    jira_changelog(mock, "10001", OURS, history(at(3), BOT, "5", "9"))
    seen: list[tuple[str, str | None]] = []

    def edit(request: Any) -> tuple[int, dict[str, str], str]:
        if json.loads(request.body)["fields"][WSJF_FIELD] == 9.0:
            with engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT status, error FROM writeback WHERE run_id != 'earlier'"
                ).all()
            seen.extend((status, error) for status, error in rows)
        return 204, {}, ""

    mock.add_callback(responses.PUT, edit_url(), callback=edit)

    apply(mock, engine)

    assert seen == [("skipped_conflict", RESTORE_PENDING)]


def test_a_put_resent_after_a_5xx_over_a_persons_edit_is_undone(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    """The first PUT landed but its answer was a 503; a person saved; the resent PUT landed."""
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    mock.put(edit_url(), status=503, headers={"Retry-After": "0"})
    mock.put(edit_url(), status=204)
    first, person, resent = (
        history(at(1), BOT, "4", "5"),
        history(at(2), PERSON, "5", "9"),
        history(at(3), BOT, "9", "5"),
    )
    jira_changelog(mock, "10001", first, person, resent)
    jira_changelog(mock, "10001", resent, history(at(4), BOT, "5", "9"))

    result = apply(mock, engine)

    assert sent(mock) == [5.0, 5.0, 9.0]
    found = row(engine, result)
    assert (found.status, found.tracker_value) == ("skipped_conflict", "9")
    assert result.calls["jira"].restores == 1


def test_an_edit_that_replaced_the_value_read_is_applied_whatever_came_before_or_after(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    """Changes before the read (even an earlier edit of ours to the same value) and a person's
    edit after ours are no overwrite: nothing is written back."""
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    mock.put(edit_url(), status=204)
    earlier = history(READ_AT - timedelta(days=3), BOT, "2", "5")
    undone = history(READ_AT, PERSON, "5", "4")
    ours, later = history(at(1), BOT, "4", "5"), history(at(2), PERSON, "5", "7")
    jira_changelog(mock, "10001", earlier, undone, ours, later)

    result = apply(mock, engine)

    assert sent(mock) == [5.0]
    assert result.clean and result.calls["jira"].restores == 0
    assert (row(engine, result).status, row(engine, result).error) == ("applied", None)


def test_a_person_who_set_the_planned_value_first_keeps_it_as_theirs(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    """Found by a chaos run: a person saved the very value planned between the read and the
    edit, so the edit changed nothing (Jira logs no change to the value already there).
    Recorded `applied`, the value became lpm-sync's, and its next change overwrote theirs."""
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    mock.put(edit_url(), status=204)
    jira_changelog(mock, "10001", history(at(1), PERSON, "4", "5"))

    result = apply(mock, engine)

    assert sent(mock) == [5.0] and result.calls["jira"].restores == 0
    found = row(engine, result)
    assert (found.status, found.tracker_value, found.new_value) == ("skipped_conflict", "5", "5")
    assert found.error == (
        "a person set 5, the planned value, between lpm-sync's read and its edit, which changed "
        "nothing"
    )


def test_a_person_who_changed_the_field_again_after_the_overwrite_keeps_their_value(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    mock.put(edit_url(), status=204)
    jira_changelog(
        mock,
        "10001",
        history(at(1), PERSON, "4", "9"),
        history(at(2), BOT, "9", "5"),
        history(at(3), PERSON, "5", "7"),
    )

    result = apply(mock, engine)

    assert sent(mock) == [5.0]
    found = row(engine, result)
    assert (found.status, found.tracker_value) == ("skipped_conflict", "9")
    assert found.error.endswith("they have changed it again since")
    assert result.calls["jira"].restores == 0


def test_writing_back_over_yet_another_persons_edit_writes_that_one_back(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    mock.put(edit_url(), status=204)
    ours = history(at(2), BOT, "9", "5")
    jira_changelog(mock, "10001", history(at(1), PERSON, "4", "9"), ours)
    back = history(at(4), BOT, "8", "9")  # a second person typed 8 just before
    jira_changelog(mock, "10001", ours, history(at(3), PERSON, "5", "8"), back)
    jira_changelog(mock, "10001", back, history(at(5), BOT, "9", "8"))

    result = apply(mock, engine)

    assert sent(mock) == [5.0, 9.0, 8.0]
    found = row(engine, result)
    assert (found.status, found.tracker_value) == ("skipped_conflict", "8")
    assert result.calls["jira"].restores == 2


def test_an_edit_whose_answer_was_lost_is_applied_when_the_changelog_shows_it(
    mock: responses.RequestsMock, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every attempt's connection dropped; re-reading finds a person's later value, but the
    changelog shows our edit landed before it: a write of ours, so `applied`."""
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt, rng: 0.0)
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    jira_read(mock, "10001", 7.0, updated=at(2))
    mock.put(edit_url(), body=requests.exceptions.ConnectionError("reset by peer"))
    jira_changelog(mock, "10001", history(at(1), BOT, "4", "5"), history(at(2), PERSON, "5", "7"))

    result = apply(mock, engine)

    found = row(engine, result)
    assert (found.status, found.error) == ("applied", None)
    assert found.note.endswith("the answer was lost; the changelog shows the edit")
    assert result.calls["jira"].restores == 0


def test_an_issue_changed_more_than_its_latest_changes_show_is_read_whole(
    mock: responses.RequestsMock,
) -> None:
    """Cloud: the issue read shows 40 changes, all after the instant asked: its whole
    changelog for the write-back fields is read (`changelog/bulkfetch`), page by page."""
    jira_discovery(mock)
    source = jira_config().sources[0]
    assert source.kind == "jira"
    connector = JiraConnector.from_config(source)
    facts = connector.discover()
    latest = [history(at(10 + n), PERSON, "9", "9") for n in range(40)]
    jira_changelog(mock, "10001", *latest, total=43)
    url = f"{JIRA}/rest/api/3/changelog/bulkfetch"
    page_one = [
        history(READ_AT - timedelta(hours=1), BOT, "1", "4"),
        history(at(1), PERSON, "4", "9"),
    ]
    mock.post(
        url,
        json={
            "issueChangeLogs": [{"issueId": "10001", "changeHistories": page_one}],
            "nextPageToken": "page-2",
        },
    )
    page_two = [history(at(2), BOT, "9", "5")]
    mock.post(url, json={"issueChangeLogs": [{"issueId": "10001", "changeHistories": page_two}]})

    found = connector.edits_since(facts, {"10001": READ_AT}, ["wsjf"])

    assert [(e.ours, e.old, e.new, e.at) for e in found["10001"]] == [
        (False, "4", "9", at(1)),
        (True, "9", "5", at(2)),
    ]
    bodies = [json.loads(c.request.body) for c in mock.calls if c.request.url == url]
    assert bodies[0] == {"issueIdsOrKeys": ["10001"], "fieldIds": [WSJF_FIELD], "maxResults": 10000}
    assert bodies[1]["nextPageToken"] == "page-2"
    connector.close()


def test_the_latest_changes_suffice_when_they_reach_back_to_the_read(
    mock: responses.RequestsMock,
) -> None:
    jira_discovery(mock)
    source = jira_config().sources[0]
    assert source.kind == "jira"
    connector = JiraConnector.from_config(source)
    facts = connector.discover()
    shown = [
        history(READ_AT - timedelta(seconds=1), PERSON, "3", "4"),
        history(at(1), BOT, "4", "5"),
    ]
    jira_changelog(mock, "10001", *shown, total=300)

    found = connector.edits_since(facts, {"10001": READ_AT}, ["wsjf"])

    assert [(e.ours, e.old, e.new) for e in found["10001"]] == [(True, "4", "5")]
    assert not [c for c in mock.calls if "changelog/bulkfetch" in c.request.url]
    connector.close()


def test_a_changelog_that_cannot_be_read_leaves_the_edit_applied_and_says_so(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    mock.put(edit_url(), status=204)
    mock.post(
        f"{JIRA}/rest/api/3/issue/bulkfetch",
        status=400,
        json={"errorMessages": ["expand is not allowed"], "errors": {}},
        match=[expands_changelog],
    )

    result = apply(mock, engine)

    found = row(engine, result)
    assert (found.status, found.error) == ("applied", None)
    assert "not checked for a person's edit at the same moment" in found.note
    assert "expand is not allowed" in found.note


OURS = history(at(2), BOT, "9", "5")
OVERWRITE = (history(at(1), PERSON, "4", "9"), OURS)


def restore_fails(mock: responses.RequestsMock) -> None:
    mock.put(edit_url(), status=400, json={"errorMessages": [], "errors": {WSJF_FIELD: "locked"}})


def check_fails(mock: responses.RequestsMock) -> None:
    mock.put(edit_url(), status=204)
    mock.post(
        f"{JIRA}/rest/api/3/issue/bulkfetch",
        status=400,
        json={"errorMessages": ["gone"], "errors": {}},
        match=[expands_changelog],
    )


def people_keep_saving(mock: responses.RequestsMock) -> None:
    """Each write-back lands over yet another person's value: 9 over 7, 7 over 6, 6 over 3."""
    mock.put(edit_url(), status=204)
    last, ours = OURS, "5"
    for n, (theirs, back) in enumerate([("7", "9"), ("6", "7"), ("3", "6")]):
        person = history(at(3 + 2 * n), PERSON, ours, theirs)
        undo = history(at(4 + 2 * n), BOT, theirs, back)
        jira_changelog(mock, "10001", last, person, undo)
        last, ours = undo, back


@pytest.mark.parametrize(
    ("after_ours", "status", "tracker", "says"),
    [
        (restore_fails, "failed", "9", "writing it back failed"),
        (check_fails, "skipped_conflict", "9", "written back, not checked"),
        (people_keep_saving, "failed", "3", "people kept changing it: not written back"),
    ],
    ids=["restore-fails", "check-fails", "people-keep-saving"],
)
def test_writing_back_that_cannot_be_completed_is_recorded_as_such(
    mock: responses.RequestsMock,
    engine: Engine,
    after_ours: Any,
    status: str,
    tracker: str,
    says: str,
) -> None:
    jira_discovery(mock)
    jira_read(mock, "10001", 4.0, updated=READ_AT)
    mock.put(edit_url(), status=204)
    jira_changelog(mock, "10001", *OVERWRITE)
    after_ours(mock)

    result = apply(mock, engine)

    found = row(engine, result)
    assert (found.status, found.tracker_value) == (status, tracker)
    assert found.error.startswith(f"a person set {tracker} between") and says in found.error
