"""Write-back against the Azure DevOps sandbox: JSON Patch with `test /rev`, StackRank moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from flows.writeback import apply_writeback, plan_writeback
from mapping.rank import longest_increasing_run
from mapping.writeback import RANK, as_text, same
from sandbox.server import Sandbox, serve
from tests.writeback.helpers import (
    ado_snapshot,
    api_writes,
    person_sets,
    refresh,
    sandbox_config,
)
from warehouse import models
from warehouse.db import open_warehouse
from warehouse.models import table_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OWNED = {"Custom.WSJF", "Custom.PortfolioHealth", "Custom.PortfolioProgress"}
BOOKKEEPING = {"System.Rev", "System.ChangedDate", "System.ChangedBy"}
STACK_RANK = "Microsoft.VSTS.Common.StackRank"


def tracker_order(sandbox: Sandbox, items: list[str]) -> list[str]:
    ranks = {t.external_id: float(t.rank) for t in sandbox.ground_truth()}
    return sorted(items, key=ranks.__getitem__)


def test_azure_devops_plan_apply_conflicts_and_rank(tmp_path: Path) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("azure_devops", items=700, seed=31) as sandbox:
        config = sandbox_config(sandbox, "ado", first_write="overwrite")
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        assert not plan.conflicts and {c.field for c in plan.changes} == {
            "wsjf",
            "health",
            "progress",
            RANK,
        }
        orders = [[i.external_id for i in s.items] for s in plan.sources[0].scopes]
        expected_moves = 0
        for wanted in orders:
            position = {item: i for i, item in enumerate(tracker_order(sandbox, wanted))}
            run = longest_increasing_run([position[item] for item in wanted])
            expected_moves += len(wanted) - len(run)
        assert sum(1 for c in plan.changes if c.field == RANK) == expected_moves > 0

        before = ado_snapshot(sandbox)
        result = apply_writeback(config, engine, plan)
        assert result.clean and result.counts()["applied"] == len(plan.changes)
        assert result.calls["ado"].moved_items == expected_moves
        after = ado_snapshot(sandbox)
        written = {c.external_id for c in plan.changes if c.field != RANK}
        moved = {c.external_id for c in plan.changes if c.field == RANK}
        for item_id, item in before.items():
            if item_id not in written | moved:
                assert after[item_id] == item, f"work item {item_id} was not in the plan"
                continue
            allowed = BOOKKEEPING | (OWNED if item_id in written else set())
            allowed |= {STACK_RANK} if item_id in moved else set()
            old = {k: v for k, v in item["fields"].items() if k not in allowed}
            new = {k: v for k, v in after[item_id]["fields"].items() if k not in allowed}
            assert new == old
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        for change in plan.changes:
            if change.field != RANK:
                now = as_text(change.field, getattr(truth[change.external_id], change.field))
                assert same(change.field, now, change.new_value)
        for wanted in orders:
            assert tracker_order(sandbox, wanted) == wanted
        assert plan_writeback(config, engine).changes == []
        refresh(config, engine)
        assert plan_writeback(config, engine).changes == []

        # A person edits a field lpm-sync wrote: skipped, and the person's value survives.
        target = next(c for c in plan.changes if c.field == "progress")
        person_sets(sandbox, target.external_id, "progress", 5.0)
        refresh(config, engine)
        again = plan_writeback(config, engine)
        assert [(c.key, c.field, c.outcome.value) for c in again.changes] == [
            (target.key, "progress", "conflict")
        ]
        outcome = apply_writeback(config, engine, again)
        assert outcome.counts()["skipped_conflict"] == 1 and outcome.write_calls == 0
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        assert truth[target.external_id].progress == 5.0

        # A person edits between plan and apply: read right before the write, and skipped.
        other = next(
            c for c in plan.changes if c.field == "progress" and c.external_id != target.external_id
        )
        rollup = table_of(models.Rollup)
        with engine.begin() as conn:
            conn.execute(
                update(rollup)
                .where(rollup.c.work_item_id == other.work_item_id)
                .values(progress=0.33)
            )
        planned = plan_writeback(config, engine)
        assert [(c.key, c.outcome.value) for c in planned.writes] == [(other.key, "write")]
        person_sets(sandbox, other.external_id, "progress", 6.0)
        late = apply_writeback(config, engine, planned)
        late_row = next(r for r in late.results if r.key == other.key)
        assert late_row.status == "skipped_conflict" and late_row.tracker_value == "6"
        assert late_row.note and late_row.note.startswith("changed since the plan")
        writes = [w for w in api_writes(sandbox, other.external_id) if "progress" in w]
        assert len(writes) == 1  # the first apply's; none since
