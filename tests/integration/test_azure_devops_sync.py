"""Azure DevOps sync against the sandbox over HTTP: the warehouse must equal its ground truth."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import RankMove
from connectors.http import Conflict
from flows.cli import app
from flows.sync import SyncResult, sync_source
from mapping.azure_devops import RANK_FIELDS
from mapping.config import AzureDevOpsSource, LpmConfig
from sandbox.server import Sandbox, serve
from tests.integration.jira_truth import ITEM_FIELDS, OBJECTIVE_FIELDS, environment, table_rows
from warehouse import models
from warehouse.db import open_warehouse

pytestmark = pytest.mark.integration


def ado_config(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, *, history: bool = True, **changes: Any
) -> LpmConfig:
    """The sandbox's own source entry (secrets put in the environment for the test)."""
    source = sandbox.source_config("ado")
    source["history"] = history
    source.update(changes)
    for name, value in sandbox.env("ado").items():
        monkeypatch.setenv(name, value)
    return LpmConfig.model_validate({"portfolio": {"name": "Sandbox"}, "sources": [source]})


def differences(engine: Engine, sandbox: Sandbox, *, levels: set[str] | None = None) -> list[str]:
    """Every way the warehouse differs from the sandbox's ground truth (empty: equal).

    `levels` limits the work item types expected in the warehouse (the rest must be absent).
    """
    with engine.connect() as conn:
        items = {r.external_id: r for r in conn.execute(select(models.WorkItem.__table__))}
        objectives = {r.external_id: r for r in conn.execute(select(models.Objective.__table__))}
    problems: list[str] = []
    expected: set[str] = set()
    for truth in sandbox.ground_truth():
        row = objectives.get(truth.external_id) if truth.objective else items.get(truth.external_id)
        live = row is not None and row.deleted_at is None
        in_scope = truth.objective or (
            truth.level is not None and (levels is None or truth.item_type in levels)
        )
        if truth.deleted or not in_scope:
            if live:
                problems.append(f"{truth.key}: deleted or out of scope, but live")
            continue
        expected.add(truth.external_id)
        if not live:
            problems.append(f"{truth.key}: missing (row {'deleted' if row else 'absent'})")
            continue
        for name in (*OBJECTIVE_FIELDS, "art") if truth.objective else ITEM_FIELDS:
            want, got = getattr(truth, name), getattr(row, name)
            if name == "category" and want is None:
                want = "business"  # no category field value, value area Business: the default
            if name == "resolved_at" and truth.status_category == "removed":
                # ADO clears Resolved/Closed dates outside those states: a Removed item is dated
                # by its state change (the sandbox keeps an earlier resolution, ADO cannot show it).
                fields = row.raw["fields"]
                if not {
                    "Microsoft.VSTS.Common.ResolvedDate",
                    "Microsoft.VSTS.Common.ClosedDate",
                } & set(fields):
                    want = datetime.fromisoformat(fields["Microsoft.VSTS.Common.StateChangeDate"])
            if want != got:
                problems.append(f"{truth.key}.{name}: warehouse {got!r}, tracker {want!r}")
        if truth.objective:
            continue
        values = dict(row.writeback_values)
        rev = values.pop("rev")
        wanted = {
            "wsjf": truth.wsjf,
            "health": truth.health,
            "progress": truth.progress,
            "rank": float(truth.rank),
            "rank_field": RANK_FIELDS[0],
        }
        if values != wanted or not (isinstance(rev, int) and rev >= 1):
            problems.append(f"{truth.key}.writeback_values: {row.writeback_values!r} != {wanted!r}")
        if float(row.tracker_rank) != float(truth.rank):
            problems.append(f"{truth.key}.tracker_rank: {row.tracker_rank!r} != {truth.rank!r}")
    problems += [
        f"{external_id}: live in the warehouse, not in the tracker"
        for external_id, row in [*items.items(), *objectives.items()]
        if row.deleted_at is None and external_id not in expected
    ]
    return problems


def test_full_then_incremental_sync_equal_ground_truth(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve("azure_devops", items=400, seed=21) as sandbox:
        config = ado_config(sandbox, monkeypatch, sync={"overlap_minutes": 0})
        full = sync_source(config, "ado", engine, full=True)
        assert full.mode == "full" and full.quarantined == 0
        assert differences(engine, sandbox) == []
        assert full.history > 0

        mutations = sandbox.mutator.step(40)
        assert {"transition", "delete"} <= {m.action for m in mutations}
        incremental = sync_source(config, "ado", engine)
        assert incremental.mode == "incremental"
        assert differences(engine, sandbox) == []
        changed = {m.external_id for m in mutations if m.action != "delete"}
        assert 0 < incremental.fetched <= len(changed)
        assert incremental.deleted == len(
            {m.external_id for m in mutations if m.action == "delete"}
        )

        # A transition comes with its history from the updates API (update ids, not sync rows).
        moved = next(m for m in mutations if m.action == "transition")
        with engine.connect() as conn:
            rows = conn.execute(
                select(models.WorkItemHistory.change_id, models.WorkItemHistory.to_value)
                .join(models.WorkItem, models.WorkItem.id == models.WorkItemHistory.work_item_id)
                .where(
                    models.WorkItem.external_id == moved.external_id,
                    models.WorkItemHistory.field == "status",
                )
                .order_by(models.WorkItemHistory.changed_at)
            ).all()
        assert rows and rows[-1].change_id.isdigit()
        assert rows[-1].to_value == moved.detail["to"]

        # Run again: nothing new, nothing lost.
        again = sync_source(config, "ado", engine)
        assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
        # A full sync re-reads every item, but no history of items delivered before.
        refull = sync_source(config, "ado", engine, full=True)
        live = [t for t in sandbox.ground_truth() if not t.deleted]
        assert refull.fetched == len(live)
        assert (refull.inserted, refull.updated, refull.deleted) == (0, 0, 0)
        assert refull.http["requests"] < 40, "WIQL and batch calls, no updates"
        assert differences(engine, sandbox) == []


def test_a_killed_sync_resumes_and_ends_with_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Killed(BaseException):
        """Stands in for SIGKILL: nothing in the sync may catch it."""

    with serve("azure_devops", items=2500, seed=22) as sandbox:
        config = ado_config(sandbox, monkeypatch, history=False)
        killed = open_warehouse(f"sqlite:///{tmp_path / 'killed.db'}")

        def kill_after_first_batch(result: SyncResult) -> None:
            with killed.connect() as conn:  # partitions load in parallel: one of work items
                if conn.execute(select(func.count()).select_from(models.WorkItem)).scalar_one():
                    raise Killed

        with pytest.raises(Killed):
            sync_source(config, "ado", killed, full=True, progress=kill_after_first_batch)
        with killed.connect() as conn:
            loaded = conn.execute(select(models.WorkItem.external_id)).scalars().all()
        assert 0 < len(loaded) < 2000
        # People edit items the killed run had already loaded: the resumed run, which goes on
        # with the scope as listed before the kill, does not fetch them again.
        p = sandbox.portfolio
        edited = [p.find(external_id) for external_id in loaded[:5]]
        for i in edited:
            assert i is not None
            p.set_attr(i, "summary", f"{p.summary(i)} (renamed)", author=1)

        resumed = sync_source(config, "ado", killed, full=True)
        assert resumed.resumed and resumed.caught_up_by is not None
        assert resumed.fetched < 2500 - len(loaded) + 50
        assert differences(killed, sandbox) == [], "the catch-up run brought the edits"

        clean = open_warehouse(f"sqlite:///{tmp_path / 'clean.db'}")
        sync_source(config, "ado", clean, full=True)
        assert table_rows(killed) == table_rows(clean)
        with killed.connect() as conn:
            runs = conn.execute(select(models.SyncRun.mode, models.SyncRun.status)).all()
        assert [tuple(run) for run in runs] == [
            ("full", "succeeded"),  # the killed run, finished
            ("incremental", "succeeded"),  # the catch-up
        ]


def test_unmappable_items_are_quarantined_and_the_rest_loads(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve("azure_devops", items=300, seed=23) as sandbox:
        levels = {"Epic": "epic", "Feature": "feature", "User Story": "story"}
        config = ado_config(sandbox, monkeypatch, history=False, levels=levels)
        bugs = [t for t in sandbox.ground_truth() if t.item_type == "Bug" and not t.deleted]
        result = sync_source(config, "ado", engine, full=True)
        assert result.quarantined == len(bugs) > 0
        assert differences(engine, sandbox, levels=set(levels)) == []
        with engine.connect() as conn:
            quarantined = conn.execute(select(models.Quarantine.__table__)).all()
        assert {q.external_id for q in quarantined} == {t.external_id for t in bugs}
        first = quarantined[0]
        assert first.error.startswith("System.WorkItemType = 'Bug': work item type is not mapped")
        assert first.payload["fields"]["System.WorkItemType"] == "Bug", "the payload is kept whole"


def test_sync_under_faults_drops_and_rate_limits_ends_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve(
        "azure_devops", items=300, seed=24, fault_rate=0.05, drop_rate=0.03, rate_limit=10
    ) as sandbox:
        config = ado_config(sandbox, monkeypatch, history=False, sync={"page_size": 10})
        result = sync_source(config, "ado", engine, full=True)
        stats = sandbox.stats()
        assert differences(engine, sandbox) == []
        injected = stats["injected"]
        assert injected.get("500", 0) + injected.get("503", 0) + injected.get("drop", 0) > 0
        assert result.http["retries"] > 0
        assert result.http["near_limit"] + result.http["throttled"] > 0
        assert injected.get("429", 0) < stats["requests"] / 4, "polite, not a 429 storm"


def test_a_stale_rev_is_a_conflict_and_the_other_writers_value_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve("azure_devops", items=200, seed=25) as sandbox:
        config = ado_config(sandbox, monkeypatch)
        source = config.source("ado")
        assert isinstance(source, AzureDevOpsSource)
        connector = AzureDevOpsConnector.from_config(source)
        facts = connector.discover()
        target = next(t for t in sandbox.ground_truth() if t.level == "epic" and not t.deleted)
        before = connector.read_values(facts, [target.external_id], ["wsjf"])
        rev = before[target.external_id]["rev"]

        # Someone else saves the item first (their own client, the same revision test).
        other = requests.patch(
            f"{sandbox.url}/Fabrikam/_apis/wit/workitems/{target.external_id}",
            params={"api-version": "7.1"},
            json=[
                {"op": "test", "path": "/rev", "value": rev},
                {"op": "add", "path": "/fields/Custom.WSJF", "value": 99.0},
            ],
            headers={"Content-Type": "application/json-patch+json"},
            auth=("", sandbox.pat),
            timeout=10,
        )
        assert other.status_code == 200 and other.json()["rev"] == rev + 1

        requests_before = sandbox.stats()["requests"]
        with pytest.raises(Conflict) as caught:
            connector.write_values(facts, target.external_id, {"wsjf": 5.0})
        assert caught.value.status == 412
        assert sandbox.stats()["requests"] == requests_before + 1, "a conflict is never retried"
        after = connector.read_values(facts, [target.external_id], ["wsjf"])
        assert after[target.external_id] == {"wsjf": 99.0, "rev": rev + 1}
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        assert truth[target.external_id].wsjf == 99.0

        # With the current revision the write goes through.
        outcome = connector.write_values(facts, target.external_id, {"wsjf": 5.0})
        assert outcome.external_id == target.external_id
        assert {t.external_id: t for t in sandbox.ground_truth()}[target.external_id].wsjf == 5.0
        connector.close()


def test_rank_moves_write_the_backlog_order_and_move_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve("azure_devops", items=200, seed=29) as sandbox:
        source = ado_config(sandbox, monkeypatch).source("ado")
        assert isinstance(source, AzureDevOpsSource)
        connector = AzureDevOpsConnector.from_config(source)
        facts = connector.discover()
        before = {t.external_id: float(t.rank) for t in sandbox.ground_truth() if not t.deleted}
        order = sorted(before, key=before.__getitem__)
        anchor, moved = order[10], [order[40], order[30]]
        connector.rank(facts, [RankMove(items=moved, before=anchor)])
        after = {t.external_id: float(t.rank) for t in sandbox.ground_truth() if not t.deleted}
        assert sorted(after, key=after.__getitem__)[9:13] == [order[9], *moved, anchor]
        assert {k: v for k, v in after.items() if k not in moved} == {
            k: v for k, v in before.items() if k not in moved
        }, "only the moved items were written"
        connector.close()


def test_jira_and_azure_devops_load_into_one_warehouse_and_status_shows_both(
    tmp_path: Path,
) -> None:
    with (
        serve("jira", items=300, seed=26) as jira,
        serve("azure_devops", items=300, seed=27) as ado,
    ):
        ado_source = ado.source_config("ado")
        ado_source["history"] = False
        warehouse = tmp_path / "lpm.db"
        config_path = tmp_path / "lpm.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "warehouse": {"url": f"sqlite:///{warehouse}"},
                    "portfolio": {"name": "Two trackers"},
                    "sources": [jira.source_config("jira"), ado_source],
                }
            )
        )
        runner = CliRunner()
        with environment({**jira.env("jira"), **ado.env("ado")}):
            synced = runner.invoke(app, ["sync", "--config", str(config_path)])
            assert synced.exit_code == 0, synced.output
            status = runner.invoke(app, ["status", "--config", str(config_path)])
        assert status.exit_code == 0, status.output

    engine = open_warehouse(f"sqlite:///{warehouse}")
    with engine.connect() as conn:
        stored: dict[str, dict[str, int]] = {}
        for name, level, count in conn.execute(
            select(models.Source.name, models.WorkItem.level, func.count())
            .join(models.WorkItem, models.WorkItem.source_id == models.Source.id)
            .where(models.WorkItem.deleted_at.is_(None))
            .group_by(models.Source.name, models.WorkItem.level)
        ):
            stored.setdefault(name, {})[level] = count
    engine.dispose()
    assert set(stored) == {"jira", "ado"}
    assert {"epic", "feature", "story"} <= set(stored["ado"])
    assert _items_by_source(status.output) == stored


def _items_by_source(output: str) -> dict[str, dict[str, int]]:
    """`lpm status` lines `NAME (KIND) URL` ... `  items: epic 3, story 9; deleted 0`, parsed."""
    shown: dict[str, dict[str, int]] = {}
    current = ""
    for line in output.splitlines():
        if not line.startswith(" "):
            current = line.split(" ", 1)[0]
        elif line.strip().startswith("items:"):
            listed = line.strip().removeprefix("items:").split(";")[0]
            pairs = (part.strip().rsplit(" ", 1) for part in listed.split(","))
            shown[current] = {level: int(count) for level, count in pairs}
    return shown


@pytest.mark.slow
def test_a_scope_over_20000_items_is_listed_in_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve("azure_devops", items=20_600, seed=28) as sandbox:
        config = ado_config(sandbox, monkeypatch, history=False)
        source = config.source("ado")
        assert isinstance(source, AzureDevOpsSource)
        connector = AzureDevOpsConnector.from_config(source)
        listed = connector.list_ids(connector.discover())
        live = {t.external_id for t in sandbox.ground_truth() if not t.deleted}
        assert len(live) > 20_000
        assert listed == live
        assert sandbox.stats()["by_status"].get("400", 0) >= 1, "the first query was refused"
        connector.close()
