"""Jira Cloud bulk edit in write-back: items setting the same number values go in one bulk edit
(`POST /rest/api/3/bulk/issues/fields`, polled to the end) instead of an edit each; everything
else about an apply holds: the read before, the changelog check after, the ledger, the re-run.

Against the sandbox over HTTP, and over mocked HTTP for what the sandbox does not do (a site
that refuses the bulk edit, a task that fails)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import Engine

from connectors.jira import JiraConnector
from flows.writeback import BULK_MIN, _SourceApply, apply_writeback, plan_writeback
from mapping.jira import JiraFacts
from mapping.writeback import as_text
from sandbox.server import serve
from tests.chaos.invariants import NOT_YET_UNDONE, check
from tests.writeback.helpers import jira_snapshot, person_sets, refresh, sandbox_config
from tests.writeback.mocked import JIRA, WSJF_FIELD, jira_config, jira_discovery, warehouse
from warehouse.db import open_warehouse
from warehouse.writeback import ledger_rows

PROGRESS_ONLY = {"wsjf": None, "health": None, "rank": False, "first_write": "overwrite"}


@pytest.mark.integration
def test_items_setting_the_same_progress_are_bulk_edited_and_a_rerun_plans_nothing(
    tmp_path: Path,
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=3000, seed=21) as sandbox:
        config = sandbox_config(sandbox, "jira", **PROGRESS_ONLY)
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        by_value = Counter(c.new_value for c in plan.writes)
        assert {c.field for c in plan.writes} == {"progress"}
        assert max(by_value.values()) >= BULK_MIN, "the test needs groups to bulk edit"
        before = jira_snapshot(sandbox)

        result = apply_writeback(config, engine, plan)

        calls = result.calls["jira"]
        assert calls.bulk_edits > 0 and calls.bulk_items >= BULK_MIN * calls.bulk_edits
        assert calls.field_writes + calls.bulk_items == len(plan.writes)
        assert result.counts() == {"applied": len(plan.writes), "skipped_conflict": 0, "failed": 0}
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        for change in plan.writes:
            assert as_text("progress", truth[change.external_id].progress) == change.new_value
        progress = field_id(sandbox, "Portfolio Progress")
        after = jira_snapshot(sandbox)
        for key, issue in after.items():
            changed = {k for k, v in issue["fields"].items() if v != before[key]["fields"].get(k)}
            assert changed <= {"updated", progress}, key
        bulk_rows = [r for r in ledger_rows(engine, plan.run_id) if "bulk edit" in (r.note or "")]
        assert len(bulk_rows) == calls.bulk_items

        refresh(config, engine)
        again = plan_writeback(config, engine)
        assert again.writes == []
        assert apply_writeback(config, engine, again).write_calls == 0


def field_id(sandbox: Any, name: str) -> str:
    fields = requests.get(
        f"{sandbox.url}/rest/api/3/field", auth=(sandbox.email, sandbox.token), timeout=30
    ).json()
    return str(next(f["id"] for f in fields if f["name"] == name))


@pytest.mark.integration
def test_a_person_saving_before_the_bulk_edit_lands_gets_their_value_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=3000, seed=21) as sandbox:
        config = sandbox_config(sandbox, "jira", **PROGRESS_ONLY)
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        send = JiraConnector.bulk_write
        victims: dict[str, float] = {}

        def person_first(
            self: JiraConnector, facts: JiraFacts, ids: list[str], values: Mapping[str, Any]
        ) -> Any:
            if not victims:
                theirs = 3.0 if as_text("progress", values["progress"]) != "3" else 4.0
                person_sets(sandbox, ids[0], "progress", theirs)
                victims[ids[0]] = theirs
            return send(self, facts, ids, values)

        monkeypatch.setattr(JiraConnector, "bulk_write", person_first)
        result = apply_writeback(config, engine, plan)

        [(victim, theirs)] = victims.items()
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        assert truth[victim].progress == theirs
        assert result.calls["jira"].restores == 1
        refresh(config, engine)
        findings = check(engine, {"jira": sandbox})
        assert not findings.count("human edit overwritten", NOT_YET_UNDONE), findings.summary()
    [row] = [r for r in ledger_rows(engine, plan.run_id) if r.status == "skipped_conflict"]
    assert row.error and row.error.endswith("their value was written back")


# --- over mocked HTTP -------------------------------------------------------------------------


@pytest.fixture
def epics(engine: Engine) -> Engine:
    """Ten epics holding WSJF 4 (lpm-sync's last write), each to be set to 5."""
    warehouse(engine, "jira", "jira", {str(10001 + n): {"wsjf": 4.0} for n in range(10)})
    return engine


def read_all(mock: responses.RequestsMock) -> None:
    issues = [
        {
            "id": str(10001 + n),
            "fields": {WSJF_FIELD: 4.0, "updated": "2026-11-21T12:00:00.000+0000"},
        }
        for n in range(10)
    ]
    mock.post(f"{JIRA}/rest/api/3/issue/bulkfetch", json={"issues": issues})


def test_a_site_refusing_bulk_edits_gets_an_edit_each_and_the_run_says_so(
    mock: responses.RequestsMock, epics: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_SourceApply, "_check", lambda self, entries, fresh: list(entries))
    jira_discovery(mock)
    read_all(mock)
    refused = {"errors": [{"message": "You don't have the Bulk change global permission."}]}
    mock.post(f"{JIRA}/rest/api/3/bulk/issues/fields", status=403, json=refused)
    for n in range(10):
        mock.put(f"{JIRA}/rest/api/3/issue/{10001 + n}", status=204)
    config = jira_config()

    result = apply_writeback(config, epics, plan_writeback(config, epics))

    assert result.counts()["applied"] == 10
    assert result.calls["jira"].field_writes == 10 and result.calls["jira"].bulk_items == 0
    [notice] = result.notices
    assert notice.startswith("jira: bulk edit refused (") and "Bulk change" in notice
    assert notice.endswith("edits sent one by one")


def test_a_bulk_edit_is_submitted_as_the_spec_says_and_polled_to_its_end(
    mock: responses.RequestsMock, epics: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_SourceApply, "_check", lambda self, entries, fresh: list(entries))
    monkeypatch.setattr("connectors.jira.BULK_POLL_FIRST", 0.0)
    jira_discovery(mock)
    read_all(mock)
    submitted = mock.post(
        f"{JIRA}/rest/api/3/bulk/issues/fields", status=201, json={"taskId": "10641"}
    )
    running = {"taskId": "10641", "status": "RUNNING", "progressPercent": 65}
    complete = {
        "taskId": "10641",
        "status": "COMPLETE",
        "progressPercent": 100,
        "processedAccessibleIssues": [10001 + n for n in range(9)],
        "failedAccessibleIssues": {"10010": ["Field WSJF is not on the edit screen."]},
        "invalidOrInaccessibleIssueCount": 0,
        "totalIssueCount": 10,
    }
    mock.get(f"{JIRA}/rest/api/3/bulk/queue/10641", json=running)
    mock.get(f"{JIRA}/rest/api/3/bulk/queue/10641", json=complete)
    config = jira_config()

    result = apply_writeback(config, epics, plan_writeback(config, epics))

    body = json.loads(submitted.calls[0].request.body)
    assert body == {
        "selectedIssueIdsOrKeys": [str(10001 + n) for n in range(10)],
        "selectedActions": [WSJF_FIELD],
        "editedFieldsInput": {"clearableNumberFields": [{"fieldId": WSJF_FIELD, "value": 5.0}]},
        "sendBulkNotification": False,
    }
    assert result.counts() == {"applied": 9, "skipped_conflict": 0, "failed": 1}
    [failed] = [r for r in result.results if r.status == "failed"]
    assert (failed.key, failed.error) == ("E-10010", "Field WSJF is not on the edit screen.")
    assert result.calls["jira"].bulk_edits == 1 and result.calls["jira"].field_writes == 0


def test_a_bulk_task_that_fails_leaves_its_changes_to_the_changelog_check(
    mock: responses.RequestsMock, epics: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_SourceApply, "_check", lambda self, entries, fresh: list(entries))
    monkeypatch.setattr("connectors.jira.BULK_POLL_FIRST", 0.0)
    jira_discovery(mock)
    read_all(mock)
    mock.post(f"{JIRA}/rest/api/3/bulk/issues/fields", status=201, json={"taskId": "7"})
    mock.get(f"{JIRA}/rest/api/3/bulk/queue/7", json={"taskId": "7", "status": "DEAD"})
    config = jira_config()

    result = apply_writeback(config, epics, plan_writeback(config, epics))

    assert result.counts() == {"applied": 0, "skipped_conflict": 0, "failed": 10}
    assert {r.error for r in result.results} == {
        "bulk edit task 7 ended DEAD: some of its edits may have been made"
    }
