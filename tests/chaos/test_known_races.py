"""Defects the long chaos runs (benchmarks/chaos.py) found and nobody has fixed yet.

Each is pinned by a strict xfail: it fails today as the run did, and turns into an XPASS (a
failure) once fixed, so the fix's author removes the mark and keeps the test.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from connectors.base import WriteOutcome
from connectors.jira import JiraConnector
from flows.writeback import apply_writeback, plan_writeback
from mapping.jira import JiraFacts
from mapping.writeback import as_text
from sandbox.server import serve
from tests.writeback.helpers import person_sets, refresh, sandbox_config
from warehouse.db import open_warehouse
from warehouse.writeback import ledger_rows

pytestmark = pytest.mark.integration


@pytest.mark.xfail(
    strict=True,
    reason="Jira has no conditional edit: a person's edit between lpm-sync's read of the item "
    "and its PUT is overwritten (chaos runs: 'human edit overwritten', 176 and 320 ms)",
)
def test_a_person_editing_a_jira_field_between_read_and_write_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=200, seed=21) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=False)
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        change = next(c for c in plan.writes if c.field == "progress")
        theirs = 7.0 if as_text("progress", 7.0) != change.new_value else 9.0
        send = JiraConnector.write_values

        def person_first(
            self: JiraConnector, facts: JiraFacts, external_id: str, values: Mapping[str, Any]
        ) -> WriteOutcome:
            """The person saves the item after lpm-sync read it, just before its edit lands."""
            if external_id == change.external_id:
                person_sets(sandbox, external_id, "progress", theirs)
            return send(self, facts, external_id, values)

        monkeypatch.setattr(JiraConnector, "write_values", person_first)
        apply_writeback(config, engine, plan)
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        assert truth[change.external_id].progress == theirs
    statuses = {
        row.status
        for row in ledger_rows(engine, plan.run_id)
        if row.work_item_id == change.work_item_id and row.field == "progress"
    }
    assert statuses == {"skipped_conflict"}
