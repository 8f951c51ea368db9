"""Races the long chaos runs (benchmarks/chaos.py) found, reproduced deterministically.

A race found but not fixed yet is pinned by a strict xfail: it fails as the run did, and turns
into an XPASS (a failure) once fixed, so the fix's author removes the mark and keeps the test.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from connectors.base import WriteOutcome
from connectors.jira import JiraConnector
from flows.writeback import _SourceApply, apply_writeback, plan_writeback
from mapping.jira import JiraFacts
from mapping.writeback import as_text
from sandbox.jira_site import Deployment
from sandbox.server import serve
from tests.chaos.invariants import NOT_YET_UNDONE, check
from tests.writeback.helpers import api_writes, person_sets, refresh, sandbox_config
from warehouse.db import open_warehouse
from warehouse.writeback import ledger_rows

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_a_person_editing_a_jira_field_between_read_and_write_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deployment: Deployment
) -> None:
    """Chaos runs: 'human edit overwritten' 176 and 320 ms after a person set the field. Jira
    has no conditional edit: the changelog read after the edit finds it, and the person's
    value is written back."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=200, seed=21, deployment=deployment) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=False)
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        change = next(c for c in plan.writes if c.field == "progress")
        theirs = 7.0 if as_text("progress", 7.0) != change.new_value else 9.0
        send = JiraConnector.write_values
        saved: list[float] = []

        def person_first(
            self: JiraConnector, facts: JiraFacts, external_id: str, values: Mapping[str, Any]
        ) -> WriteOutcome:
            """The person saves the item after lpm-sync read it, just before its edit lands."""
            if external_id == change.external_id and not saved:
                person_sets(sandbox, external_id, "progress", theirs)
                saved.append(theirs)
            return send(self, facts, external_id, values)

        monkeypatch.setattr(JiraConnector, "write_values", person_first)
        result = apply_writeback(config, engine, plan)
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        assert truth[change.external_id].progress == theirs
        # Ours landed over theirs, then theirs was written back: the invariants accept that.
        ours = [w["progress"] for w in api_writes(sandbox, change.external_id) if "progress" in w]
        assert [as_text("progress", v) for v in ours] == [
            change.new_value,
            as_text("progress", theirs),
        ]
        findings = check(engine, {"jira": sandbox})
        assert not findings.count(
            "human edit overwritten", NOT_YET_UNDONE, "write without ledger row"
        )
        assert result.calls["jira"].restores == 1
    [row] = [
        row
        for row in ledger_rows(engine, plan.run_id)
        if row.work_item_id == change.work_item_id and row.field == "progress"
    ]
    assert row.status == "skipped_conflict" and row.tracker_value == as_text("progress", theirs)
    assert row.error and "their value was written back" in row.error


class Killed(BaseException):
    """The process dying: nothing after it runs but `finally` blocks (SIGKILL runs not even
    those; the ledger rows of the batch being checked are left `planned` either way)."""


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_an_overwrite_a_killed_apply_did_not_check_is_undone_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deployment: Deployment
) -> None:
    """Chaos gap: killed between an edit that landed over a person's value and the changelog
    check of its batch, the next plan settled the row `applied` from the synced value, and the
    person's value was lost. The synced changelog shows our edit replaced another value than
    the one read: the next apply writes theirs back."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=200, seed=21, deployment=deployment) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=False)
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        change = next(c for c in plan.writes if c.field == "progress")
        theirs = 7.0 if as_text("progress", 7.0) != change.new_value else 9.0
        send = JiraConnector.write_values

        def person_first(
            self: JiraConnector, facts: JiraFacts, external_id: str, values: Mapping[str, Any]
        ) -> WriteOutcome:
            if external_id == change.external_id:
                person_sets(sandbox, external_id, "progress", theirs)
            return send(self, facts, external_id, values)

        def killed(*args: Any) -> Any:
            raise Killed

        with monkeypatch.context() as patched:
            patched.setattr(JiraConnector, "write_values", person_first)
            patched.setattr(_SourceApply, "_check", killed)
            with pytest.raises(Killed):
                apply_writeback(config, engine, plan)
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        assert as_text("progress", truth[change.external_id].progress) == change.new_value
        assert check(engine, {"jira": sandbox}).count(NOT_YET_UNDONE) == 1

        refresh(config, engine)
        again = plan_writeback(config, engine)
        assert [r.change.external_id for r in again.sources[0].restores] == [change.external_id]
        result = apply_writeback(config, engine, again)

        truth = {t.external_id: t for t in sandbox.ground_truth()}
        assert truth[change.external_id].progress == theirs
        assert result.calls["jira"].restores == 1
        refresh(config, engine)
        findings = check(engine, {"jira": sandbox})
        assert not findings.count("human edit overwritten", NOT_YET_UNDONE), findings.summary()
        assert findings.overwrites_undone == 1
        after = plan_writeback(config, engine)
        assert not after.sources[0].restores
        assert change.external_id not in {c.external_id for c in after.writes}
    [row] = [
        row
        for row in ledger_rows(engine, plan.run_id)
        if row.work_item_id == change.work_item_id and row.field == "progress"
    ]
    assert row.status == "skipped_conflict" and row.tracker_value == as_text("progress", theirs)
    assert row.error and row.error.endswith("their value was written back")
