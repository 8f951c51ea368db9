"""The Prefect flows and tasks: `.fn()` unit tests, and flows under `prefect_test_harness`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests
import yaml
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL
from prefect.states import Completed, Failed

from connectors.http import BadRequest, RetriesExhausted
from flows import redaction
from flows.portfolio import (
    finish_sync_task,
    rollup_flow,
    start_sync_task,
    sync_partition_task,
    sync_source_flow,
    transient_only,
)
from flows.sync import SyncFailed
from mapping.config import load_config
from sandbox.server import serve
from tests.flows.helpers import jira_config_file
from warehouse.db import open_warehouse

SENTINEL = "sentinel-token-7f3a9c"


@pytest.fixture
def sandbox_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    with serve("jira", items=300, seed=11) as sandbox:
        yield jira_config_file(tmp_path, monkeypatch, sandbox, "Flow tests"), sandbox


def _failed_with(exc: BaseException) -> Any:
    return Failed(data=exc)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (RetriesExhausted("429 Too Many Requests, 8 attempts", status=429), True),
        (requests.ConnectionError("connection reset"), True),
        (BadRequest("Error in the JQL Query", status=400), False),
        (SyncFailed("jira", 1, RetriesExhausted("503", status=503)), True),
        (SyncFailed("jira", 1, BadRequest("bad JQL", status=400)), False),
        (ValueError("not a tracker problem"), False),
    ],
)
def test_retry_condition_retries_transient_errors_only(error: BaseException, retried: bool) -> None:
    assert transient_only(None, None, _failed_with(error)) is retried  # type: ignore[arg-type]


def test_retry_condition_does_not_retry_success() -> None:
    assert transient_only(None, None, Completed(data=1)) is False  # type: ignore[arg-type]


@pytest.mark.integration
def test_sync_task_fns_sync_the_sandbox(sandbox_config: tuple[str, Any], harness: None) -> None:
    config_path, sandbox = sandbox_config
    config = load_config(config_path, require_secrets=True)
    engine = open_warehouse(config.warehouse_url())
    job = start_sync_task.fn(config, "jira", engine, full=True)
    try:
        loaded = [sync_partition_task.fn(job, key)["loaded"] for key in job.pending]
        counts = finish_sync_task.fn(job)
    finally:
        job.close()
        engine.dispose()
    assert len(loaded) == len(sandbox.portfolio.arts) + 1 and all(loaded)
    live = [t for t in sandbox.ground_truth() if not t.deleted and (t.level or t.objective)]
    assert counts.inserted == len(live)
    assert counts.quarantined == 0


@pytest.mark.integration
def test_sync_and_rollup_flows_complete(sandbox_config: tuple[str, Any], harness: None) -> None:
    config_path, _ = sandbox_config
    first = sync_source_flow(config_path, "jira", full=True)
    again = sync_source_flow(config_path, "jira")
    assert first["inserted"] > 0
    assert again["inserted"] == 0 and again["updated"] == 0
    analytics = rollup_flow(config_path)
    assert analytics["rolled_up"] > 0


@pytest.mark.integration
def test_secrets_never_reach_prefect_logs_or_database(
    sandbox_config: tuple[str, Any], harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sentinel token used for a real sync and even logged on purpose is stored nowhere."""
    config_path, sandbox = sandbox_config
    config = yaml.safe_load(Path(config_path).read_text())
    token_env = config["sources"][0]["auth"]["token"]["env"]
    sandbox_token = sandbox.env("jira")[token_env]
    sync_source_flow(config_path, "jira", full=True)

    @flow(name="leaky")
    def leaky() -> None:
        get_run_logger().warning("calling with Authorization: Bearer %s", sandbox_token)
        logging.getLogger("lpm.test").error("token=%s", SENTINEL)

    redaction.install()
    from mapping.secrets import _remember

    _remember(SENTINEL)
    leaky()

    async def stored_logs() -> list[str]:
        async with get_client() as client:
            return [log.message for log in await client.read_logs(limit=200)]

    APILogWorker.drain_all(timeout=30)
    deadline = time.monotonic() + 30
    messages = anyio.run(stored_logs)
    while not any("Bearer ****" in m for m in messages) and time.monotonic() < deadline:
        time.sleep(0.5)
        messages = anyio.run(stored_logs)
    assert any("Authorization: Bearer ****" in message for message in messages)
    assert all(sandbox_token not in message and SENTINEL not in message for message in messages)
    database = PREFECT_API_DATABASE_CONNECTION_URL.value().split("///", 1)[1]
    files = [Path(database), Path(database + "-wal")]
    stored = b"".join(path.read_bytes() for path in files if path.exists())
    assert sandbox_token.encode() not in stored
    assert SENTINEL.encode() not in stored
