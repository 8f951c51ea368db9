"""The real engine: a Prefect server on PostgreSQL, `prefect deploy --all`, a worker on the `lpm`
pool, and a sync deployment run against a sandbox tracker, end to end over HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml
from sqlalchemy import func, select

from sandbox.server import serve
from tests.conftest import ROOT, _admin_conninfo
from warehouse.db import open_warehouse
from warehouse.models import WorkItem

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]
BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_api(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A `prefect server` on loopback backed by a PostgreSQL database of its own."""
    database = f"lpm_prefect_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    port = _free_port()
    home = tmp_path_factory.mktemp("prefect-home")
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 300  # migrations on a loaded 2-core machine take long
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prefect server did not start: {(home / 'server.log').read_text()}")
            time.sleep(1)
        client_env = {
            **env,
            "PREFECT_API_URL": api,
            "PWD": str(ROOT),
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "30",
        }
        client_env.pop("PREFECT_API_DATABASE_CONNECTION_URL")
        yield {"api": api, "env": client_env, "home": home}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _prefect(env: dict, *args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [BIN / "prefect", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_sync_deployment_runs_on_a_worker(prefect_api: dict, tmp_path: Path) -> None:
    with serve("jira", items=400, seed=5) as sandbox:
        config = {
            "warehouse": {"url": f"sqlite:///{tmp_path / 'lpm.db'}"},
            "portfolio": {"name": "Engine test"},
            "sources": [sandbox.source_config("jira-cloud")],
        }
        config_path = tmp_path / "lpm.yaml"
        config_path.write_text(yaml.safe_dump(config))
        env = {**prefect_api["env"], **sandbox.env("jira-cloud")}

        _prefect(env, "work-pool", "create", "lpm", "--type", "process")
        deployed = _prefect(env, "--no-prompt", "deploy", "--all")
        assert "incremental-sync-jira-cloud" in deployed
        started = _prefect(
            env,
            "deployment",
            "run",
            "sync_source/incremental-sync-jira-cloud",
            "--param",
            f"config_path={config_path}",
        )
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", started)
        assert flow_run_id, started
        worker = subprocess.Popen(
            [BIN / "prefect", "worker", "start", "--pool", "lpm", "--type", "process"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            state = _wait_for(prefect_api["api"], flow_run_id.group(1), timeout=240)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        assert state == "COMPLETED", _logs(prefect_api["api"], flow_run_id.group(1))
        expected = sum(1 for item in sandbox.ground_truth() if not item.deleted and item.level)
    engine = open_warehouse(config["warehouse"]["url"])
    with engine.connect() as conn:
        stored = conn.execute(
            select(func.count()).select_from(WorkItem).where(WorkItem.deleted_at.is_(None))
        ).scalar()
    engine.dispose()
    assert stored == expected


def _logs(api: str, flow_run_id: str) -> str:
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200, "offset": 0}
    logs = httpx.post(f"{api}/logs/filter", json=body, timeout=10).json()
    return "\n".join(entry["message"] for entry in logs)


def _wait_for(api: str, flow_run_id: str, *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = "PENDING"
    while time.monotonic() < deadline:
        run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10).json()
        state = run["state"]["type"]
        if state in TERMINAL:
            return state
        time.sleep(2)
    return state
