"""Partitioned syncs against the sandbox: each partition fetches and resumes on its own, and the
source's watermark and delete reconcile wait for all of them (plain `sync_source` path; the
Prefect tasks are tested in tests/flows/test_partitions.py)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import flows.sync
from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import FetchPlan, Page
from connectors.http import BadRequest
from connectors.jira import JiraConnector
from flows.sync import SyncFailed, ledger_states, sync_source
from mapping.config import AzureDevOpsSource, JiraSource
from sandbox.server import serve
from tests.integration import test_azure_devops_sync as ado
from tests.integration.jira_truth import differences, lpm_config, table_rows
from warehouse import models
from warehouse.db import open_warehouse

pytestmark = pytest.mark.integration


def fail_partition(
    monkeypatch: pytest.MonkeyPatch, connector: type[Any], key: str, after_pages: int
) -> list[str]:
    """Make `connector.pages` of partition `key` raise a 400 after `after_pages` pages; returns
    the keys of the partitions that were fetched (while the patch is on)."""
    original = connector.pages
    fetched: list[str] = []

    def pages(self: Any, facts: Any, plan: FetchPlan) -> Iterator[Page]:
        part = plan.partition.key if plan.partition else "all"
        fetched.append(part)
        for number, page in enumerate(original(self, facts, plan)):
            if part == key and number >= after_pages:
                raise BadRequest(f"injected failure in partition {key}", status=400)
            yield page

    monkeypatch.setattr(connector, "pages", pages)
    return fetched


def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commit every ~50 items, so a partition has resume points inside it."""
    monkeypatch.setattr(flows.sync, "batched", functools.partial(flows.sync.batched, size=50))


def _runs(engine: Any) -> list[Any]:
    table = models.SyncRun.__table__
    with engine.connect() as conn:
        return conn.execute(select(table).order_by(table.c.id)).all()


def test_jira_partitions_are_the_scope_projects_and_together_fetch_the_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve("jira", items=800, seed=31) as sandbox:
        source = lpm_config(sandbox, monkeypatch).sources[0]
        assert isinstance(source, JiraSource)
        connector = JiraConnector.from_config(source)
        facts = connector.discover()
        parts = connector.partitions(facts)
        assert [p.key for p in parts] == ["PORT", *(a.key for a in sandbox.portfolio.arts)]
        by_partition = {
            part.key: [
                str(item["id"])
                for page in connector.pages(facts, FetchPlan(full=True, partition=part))
                for item in page.items
            ]
            for part in parts
        }
        whole = connector.list_ids(facts)
        connector.close()
    listed = [i for ids in by_partition.values() for i in ids]
    assert len(listed) == len(set(listed)), "partitions overlap"
    assert set(listed) == whole
    assert all(by_partition.values()), "a project partition came back empty"


def test_a_failed_partition_resumes_from_its_cursor_and_ends_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    small_batches(monkeypatch)
    with serve("jira", items=3000, seed=32) as sandbox:
        config = lpm_config(sandbox, monkeypatch, concurrency=1)  # partitions one at a time
        failing = sandbox.portfolio.arts[0].key
        with monkeypatch.context() as patch:
            fail_partition(patch, JiraConnector, failing, after_pages=3)
            with pytest.raises(SyncFailed, match="injected failure"):
                sync_source(config, "jira", engine, full=True)
        [run] = _runs(engine)
        assert run.status == "failed" and run.watermark is None, "no watermark before all done"
        states = ledger_states(run.cursor)
        assert states["PORT"].done, "the partition before the failing one finished"
        assert not states[failing].done and states[failing].cursor is not None
        unfinished = [key for key, state in states.items() if not state.done]
        with engine.connect() as conn:
            loaded = conn.execute(select(func.count()).select_from(models.WorkItem)).scalar_one()

        fetched = fail_partition(monkeypatch, JiraConnector, "none", after_pages=0)
        resumed = sync_source(config, "jira", engine, full=True)
        assert resumed.resumed and resumed.run_id == run.id
        assert fetched[: len(unfinished)] == unfinished, "finished partitions not fetched again"
        assert sorted(fetched[len(unfinished) :]) == sorted(states), "then the catch-up run"
        assert resumed.fetched < 3000 - loaded + 300  # from the partition's cursor, not zero
        assert differences(engine, sandbox) == []
        run, catch_up = _runs(engine)
        assert run.status == "succeeded" and run.watermark is not None
        assert (catch_up.mode, catch_up.status) == ("incremental", "succeeded")
        assert resumed.caught_up_by == catch_up.id

        clean = open_warehouse(f"sqlite:///{tmp_path / 'clean.db'}")
        sync_source(config, "jira", clean, full=True)
        assert table_rows(engine) == table_rows(clean)


def test_the_watermark_waits_for_every_partition_of_an_incremental_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=1500, seed=33) as sandbox:
        config = lpm_config(sandbox, monkeypatch, overlap_minutes=0)
        sync_source(config, "jira", engine, full=True)
        [first] = _runs(engine)
        sandbox.mutator.step(60)
        with monkeypatch.context() as patch:
            fail_partition(patch, JiraConnector, sandbox.portfolio.arts[-1].key, after_pages=0)
            with pytest.raises(SyncFailed):
                sync_source(config, "jira", engine)
        failed = _runs(engine)[-1]
        assert failed.mode == "incremental" and failed.status == "failed"
        assert failed.watermark is None and failed.deleted == 0
        resumed = sync_source(config, "jira", engine)
        # The failure may stop the other partitions before any of them commits a batch: the
        # next run then has no cursor to resume and starts afresh from the same watermark.
        assert resumed.mode == "incremental"
        assert resumed.run_id == failed.id or failed.cursor is None
        assert differences(engine, sandbox) == []
        assert _runs(engine)[-1].watermark > first.watermark


def test_azure_devops_partitions_per_work_item_type_cover_the_scope_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("azure_devops", items=1200, seed=34) as sandbox:
        config = ado.ado_config(sandbox, monkeypatch, history=False)
        source = config.source("ado")
        assert isinstance(source, AzureDevOpsSource)
        connector = AzureDevOpsConnector.from_config(source)
        facts = connector.discover()
        keys = [part.key for part in connector.partitions(facts)]
        assert keys == [*source.levels, *source.objective_types, "(other types)"]
        listed = [
            str(item["id"])
            for part in connector.partitions(facts)
            for page in connector.pages(facts, FetchPlan(full=True, partition=part))
            for item in page.items
        ]
        requests_before = connector.stats.requests
        scope = connector.list_ids(facts)
        assert connector.stats.requests == requests_before, "reconcile reuses the listings"
        connector.close()
        assert len(listed) == len(set(listed)) and set(listed) == scope

        result = sync_source(config, "ado", engine, full=True)
        assert result.quarantined == 0 and result.deleted == 0
        assert ado.differences(engine, sandbox) == []


def test_history_of_issues_changed_while_a_full_sync_was_resumed_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full sync reads no changelog. Issues changed after it started and fetched by its
    resumed run are stored in their latest state; the next incremental sync brings their
    changelogs with that same state, and every transition must be kept (chaos run, issue 8)."""
    from tests.chaos.invariants import check

    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=1500, seed=35) as sandbox:
        config = lpm_config(sandbox, monkeypatch, concurrency=1)
        with monkeypatch.context() as patch:
            fail_partition(patch, JiraConnector, sandbox.portfolio.arts[0].key, after_pages=0)
            with pytest.raises(SyncFailed):
                sync_source(config, "jira", engine, full=True)
        transitions = [m for m in sandbox.mutator.step(80) if m.action == "transition"]
        assert transitions
        assert sync_source(config, "jira", engine, full=True).resumed
        incremental = sync_source(config, "jira", engine)
        assert incremental.mode == "incremental" and incremental.unchanged > 0
        findings = check(engine, {"jira": sandbox})
    assert findings.transitions_checked > 0
    assert findings.ok, findings.summary()
