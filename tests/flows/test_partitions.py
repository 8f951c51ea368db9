"""Partitions as Prefect tasks, and tracker throttling through a global concurrency limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import pytest
import responses
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import select

from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import WHOLE_SCOPE
from connectors.http import HttpClient, RetryPolicy
from connectors.jira import JiraConnector, scope_projects
from flows import throttle
from flows.portfolio import sync_source_flow
from flows.sync import PartitionState, ledger_cursor, ledger_states
from flows.throttle import PrefectRateGate, limit_name, site_gate
from mapping.config import AzureDevOpsSource, LpmConfig
from sandbox.server import Sandbox, serve
from tests.flows.helpers import jira_config_file
from tests.integration.jira_truth import differences
from tests.integration.test_partitions import fail_partition
from warehouse import models
from warehouse.db import open_warehouse


@pytest.fixture
def jira_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Sandbox]]:
    with serve("jira", items=400, seed=41) as sandbox:
        yield jira_config_file(tmp_path, monkeypatch, sandbox, "Partition tests"), sandbox


def _warehouse(config_path: str) -> Any:
    url = yaml.safe_load(Path(config_path).read_text())["warehouse"]["url"]
    return open_warehouse(url)


def _task_runs(flow_run_id: UUID, expected: int) -> list[TaskRun]:
    """The flow run's task runs, once the server has recorded `expected` of them in a final
    state (task run states reach the server as events, a moment after the flow ends)."""

    async def read() -> list[TaskRun]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    deadline = time.monotonic() + 60
    runs = anyio.run(read)
    while time.monotonic() < deadline:
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        if len(final) >= expected:
            break
        time.sleep(0.5)
        runs = anyio.run(read)
    return runs


# --- partitions as data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "projects"),
    [
        ("project in (PORT, ART1, ART2)", ["PORT", "ART1", "ART2"]),
        ("project = PORT", ["PORT"]),
        ("project IN (A, b) AND issuetype = Story ORDER BY rank", ["A", "b"]),
        (
            "labels = x and project in (\"My Project\", 'Other', 10001)",
            ["My Project", "Other", "10001"],
        ),
        ("project in (A, a, B)", ["A", "B"]),
        ("project in (A, B) OR labels = x", []),
        ("labels = x AND (project = A OR project = B)", []),
        ("project in projectsLeadByUser()", []),
        ("project not in (A, B)", []),
        ('summary ~ "project in (X, Y)" AND project in (A, B)', ["A", "B"]),
    ],
)
def test_jira_scope_projects_only_from_a_top_level_project_clause(
    scope: str, projects: list[str]
) -> None:
    assert scope_projects(scope) == projects


def test_a_single_project_or_type_stays_one_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADO_PAT", "pat")
    ado = LpmConfig.model_validate(
        {
            "portfolio": {"name": "p"},
            "sources": [
                {
                    "name": "ado",
                    "kind": "azure_devops",
                    "url": "https://dev.azure.com/contoso",
                    "project": "Fabrikam",
                    "auth": {"token": {"env": "ADO_PAT"}},
                    "scope": "[System.AreaPath] UNDER 'Fabrikam'",
                    "levels": {"Epic": "epic"},
                }
            ],
        }
    ).sources[0]
    assert isinstance(ado, AzureDevOpsSource)
    connector = AzureDevOpsConnector(ado, HttpClient("https://dev.azure.com/contoso"))
    assert connector.partitions(None) == [WHOLE_SCOPE]  # type: ignore[arg-type]
    two = ado.model_copy(update={"levels": {"Epic": "epic", "User Story": "story"}})
    parts = AzureDevOpsConnector(two, HttpClient("https://x.test")).partitions(None)  # type: ignore[arg-type]
    assert [p.clause for p in parts] == [
        "[System.WorkItemType] = 'Epic'",
        "[System.WorkItemType] = 'User Story'",
        "[System.WorkItemType] NOT IN ('Epic', 'User Story')",
    ]


def test_partition_states_round_trip_through_the_run_ledger() -> None:
    mark = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    states = {
        "PORT": PartitionState({"v": 1, "resume_from": None}, True, mark),
        "ART1": PartitionState({"v": 1, "resume_from": "2026-01-01T00:00:00+00:00"}),
    }
    assert ledger_states(ledger_cursor(states)) == states
    # A cursor of an unpartitioned run (an earlier version) is the whole scope's.
    assert ledger_states({"v": 1, "mode": "full"}) == {
        WHOLE_SCOPE.key: PartitionState({"v": 1, "mode": "full"})
    }
    # An unreadable state starts its partition again rather than failing the sync.
    assert ledger_states({"partitions": {"ART2": {"watermark": "yesterday"}}}) == {
        "ART2": PartitionState()
    }
    assert ledger_states(None) == {}


# --- the gate ----------------------------------------------------------------------------------


class CountingGate:
    def __init__(self) -> None:
        self.admitted = 0

    def admit(self) -> float:
        self.admitted += 1
        return 0.25


@responses.activate
def test_every_request_and_every_retry_passes_the_gate_instead_of_the_bucket() -> None:
    site = "https://jira.example.test"
    responses.get(f"{site}/a", status=429, headers={"Retry-After": "0"})
    responses.get(f"{site}/a", json={"ok": 1})
    responses.post(f"{site}/b", json={"ok": 2})
    responses.get(f"{site}/c", status=503)
    responses.get(f"{site}/c", json={"ok": 3})
    gate = CountingGate()
    client = HttpClient(
        site,
        requests_per_second=0.001,  # the bucket would stall the test for ~1000 s per request
        gate=gate,
        policy=RetryPolicy(backoff_base=0.001, backoff_cap=0.001),
    )
    assert client.get_json("/a") == {"ok": 1}
    assert client.post_json("/b", {}) == {"ok": 2}
    assert client.get_json("/c") == {"ok": 3}
    assert gate.admitted == len(responses.calls) == 5
    assert client.stats.waited_seconds >= 5 * 0.25


def test_no_gate_without_a_prefect_server() -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert not throttle.server_configured()
        assert site_gate("jira") is None


def test_limit_names_are_per_site() -> None:
    assert limit_name("jira-cloud") == "lpm-jira-cloud-rps"
    assert limit_name("Jira Cloud_EU") == "lpm-jira-cloud-eu-rps"


# --- under a Prefect server ----------------------------------------------------------------


@pytest.mark.integration
def test_partitions_run_as_task_runs_and_the_warehouse_equals_the_truth(
    jira_site: tuple[str, Sandbox], harness: None
) -> None:
    config_path, sandbox = jira_site
    projects = ["PORT", *(art.key for art in sandbox.portfolio.arts)]
    state = sync_source_flow(config_path, "jira", full=True, return_state=True)
    assert state.is_completed()
    counts = state.result()
    assert counts["deleted"] == 0 and counts["quarantined"] == 0
    runs = _task_runs(state.state_details.flow_run_id, len(projects) + 2)
    partitions = sorted(r.name for r in runs if r.name.startswith("jira:"))
    assert partitions == sorted(f"jira:{key}" for key in projects)
    assert all(r.state is not None and r.state.is_completed() for r in runs)
    engine = _warehouse(config_path)
    assert differences(engine, sandbox) == []
    engine.dispose()


@pytest.mark.integration
def test_a_failed_partition_task_fails_the_run_and_the_next_run_resumes_it(
    jira_site: tuple[str, Sandbox], harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path, sandbox = jira_site
    failing = sandbox.portfolio.arts[1].key
    with monkeypatch.context() as patch:
        fail_partition(patch, JiraConnector, failing, after_pages=0)
        state = sync_source_flow(config_path, "jira", full=True, return_state=True)
    assert state.is_failed()
    runs = _task_runs(state.state_details.flow_run_id, len(sandbox.portfolio.arts) + 2)
    by_name = {r.name: r for r in runs}
    failed = by_name[f"jira:{failing}"]
    assert failed.state is not None and failed.state.is_failed()
    assert failed.run_count == 1, "a 400 is not retried"
    assert by_name["jira:PORT"].state is not None and by_name["jira:PORT"].state.is_completed()
    engine = _warehouse(config_path)
    table = models.SyncRun.__table__
    with engine.connect() as conn:
        [run] = conn.execute(select(table)).all()
    assert run.status == "failed" and run.watermark is None
    assert not run.cursor["partitions"][failing]["done"]

    # A person renames an item the failed run had loaded: the resumed run does not fetch it.
    with engine.connect() as conn:
        loaded = conn.execute(select(models.WorkItem.external_id).limit(1)).scalar_one()
    p = sandbox.portfolio
    renamed = p.find(loaded)
    assert renamed is not None
    p.set_attr(renamed, "summary", f"{p.summary(renamed)} (renamed)", author=1)

    fetched = fail_partition(monkeypatch, JiraConnector, "none", after_pages=0)
    counts = sync_source_flow(config_path, "jira", full=True)
    assert counts["resumed"] and counts["run_id"] == run.id
    projects = sorted(["PORT", *(art.key for art in sandbox.portfolio.arts)])
    assert fetched[0] == failing, "the resumed run fetches only the failed partition"
    assert sorted(fetched[1:]) == projects, "then the catch-up run fetches every partition"
    with engine.connect() as conn:
        resumed, catch_up = conn.execute(select(table).order_by(table.c.id)).all()
    assert resumed.id == run.id and resumed.status == "succeeded" and resumed.watermark
    assert counts["caught_up_by"] == catch_up.id and catch_up.mode == "incremental"
    assert catch_up.status == "succeeded"
    assert differences(engine, sandbox) == [], "the catch-up run brought the rename"
    engine.dispose()


@pytest.mark.integration
def test_a_global_concurrency_limit_throttles_every_tracker_request(
    jira_site: tuple[str, Sandbox], harness: None
) -> None:
    config_path, _ = jira_site
    name = limit_name("jira")

    async def create() -> None:
        async with get_client() as client:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=100_000, slot_decay_per_second=0.01)
            )

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_global_concurrency_limit_by_name(name)

    async def delete() -> None:
        async with get_client() as client:
            await client.delete_global_concurrency_limit_by_name(name)

    anyio.run(create)
    try:
        assert isinstance(site_gate("jira"), PrefectRateGate)
        counts = sync_source_flow(config_path, "jira", full=True)
        limit = anyio.run(read)
    finally:
        anyio.run(delete)
    requests = counts["http"]["requests"]
    assert requests > 10
    # Every request took a slot (a few may have decayed at 0.01 a second).
    assert requests - 5 <= limit.active_slots <= requests
    assert site_gate("jira") is None, "no limit: the connector's own limiter"


@pytest.mark.integration
def test_a_limit_without_slot_decay_is_refused(harness: None) -> None:
    name = limit_name("nodecay")

    async def create() -> None:
        async with get_client() as client:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=5)
            )

    async def delete() -> None:
        async with get_client() as client:
            await client.delete_global_concurrency_limit_by_name(name)

    anyio.run(create)
    try:
        with pytest.raises(ValueError, match="slot-decay-per-second"):
            site_gate("nodecay")
    finally:
        anyio.run(delete)
