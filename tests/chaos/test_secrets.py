"""No secret leaves the process that uses it: not in logs, Prefect's database and artifacts,
reports, exception messages or the warehouse.

The whole pipeline (`lpm run`, the real Prefect flow, in a child process) runs against the two
sandbox trackers plus two sources bound to fail: one with a wrong token (401) and one behind a
self-signed certificate (TLS error). The sentinels are every token in play and the Basic auth
header values derived from them. Everything the run left behind is then searched for them.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine, String, Text, select
from sqlalchemy.types import JSON

from flows.demo import ADO_SOURCE, JIRA_SOURCE, demo_config
from flows.sync import SyncFailed, sync_source
from mapping.config import LpmConfig
from sandbox.server import Sandbox, serve
from tests.chaos.conftest import PrefectApi
from tests.chaos.harness import ROOT
from tests.chaos.tls import https_server
from warehouse import models
from warehouse.db import open_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WRONG_TOKEN = "lpm-sentinel-wrong-4b8e2f61d0"
TLS_TOKEN = "lpm-sentinel-tls-93a7c5e1"
EMAIL = "lpm-sync@example.com"
LPM = str(Path(sys.executable).with_name("lpm"))


@dataclass
class Run:
    directory: Path
    config: Path
    sandboxes: dict[str, Sandbox]
    sentinels: dict[str, str]
    env: dict[str, str]
    output: str = ""
    code: int | None = None


def basic(user: str, token: str) -> str:
    return base64.b64encode(f"{user}:{token}".encode()).decode()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory = tmp_path_factory.mktemp("secrets")
    with (
        serve("jira", items=200, seed=21) as jira,
        serve("azure_devops", items=100, seed=22) as ado,
        https_server(directory) as tls,
    ):
        config = demo_config(jira, ado, directory)
        wrong = jira.source_config("jira-wrong-token")
        wrong["auth"] = {"email": {"env": "WRONG_EMAIL"}, "token": {"env": "WRONG_TOKEN"}}
        untrusted = jira.source_config("jira-untrusted")
        untrusted["url"] = tls.url
        untrusted["auth"] = {"email": {"env": "WRONG_EMAIL"}, "token": {"env": "TLS_TOKEN"}}
        config["sources"] += [wrong, untrusted]
        path = directory / "lpm.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {
            **jira.env(JIRA_SOURCE),
            **ado.env(ADO_SOURCE),
            "WRONG_EMAIL": EMAIL,
            "WRONG_TOKEN": WRONG_TOKEN,
            "TLS_TOKEN": TLS_TOKEN,
        }
        sentinels = {
            "jira token": jira.token,
            "jira basic": basic(jira.email, jira.token),
            "ado pat": ado.pat,
            "ado basic": basic("", ado.pat),
            "wrong token": WRONG_TOKEN,
            "wrong basic": basic(EMAIL, WRONG_TOKEN),
            "tls token": TLS_TOKEN,
            "tls basic": basic(EMAIL, TLS_TOKEN),
        }
        yield Run(directory, path, {JIRA_SOURCE: jira, ADO_SOURCE: ado}, sentinels, env)


def leaks(haystack: bytes | str, sentinels: dict[str, str]) -> list[str]:
    data = haystack.encode() if isinstance(haystack, str) else haystack
    return [name for name, secret in sentinels.items() if secret.encode() in data]


def test_the_whole_pipeline_leaves_no_secret_anywhere(
    pipeline: Run, prefect_api: PrefectApi
) -> None:
    env = {**os.environ, **pipeline.env, "PREFECT_API_URL": prefect_api.url}
    env["PYTHONPATH"] = str(ROOT)
    report = pipeline.directory / "report"
    done = subprocess.run(
        [LPM, "run", "--config", str(pipeline.config), "--apply", "--out", str(report)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    # The run happened: both sandboxes synced and written, both bad sources failed clearly.
    assert done.returncode != 0, output.decode(errors="replace")[-3000:]
    text = output.decode(errors="replace")
    assert "authentication failed" in text and "TLS verification" in text, text[-3000:]
    jira_stats = pipeline.sandboxes[JIRA_SOURCE].stats()
    assert jira_stats["by_status"].get("401", 0) >= 1, "the wrong token was really sent"
    assert (report / "portfolio.html").exists()

    assert leaks(output, pipeline.sentinels) == []
    database = b"".join(path.read_bytes() for path in prefect_api.database_files())
    assert b"portfolio-run-summary" in database, "the run's artifacts are in this database"
    assert leaks(database, pipeline.sentinels) == []
    stored = _prefect_logs_and_artifacts(prefect_api.url)
    assert any("jira-wrong-token" in entry for entry in stored)
    assert leaks("\n".join(stored), pipeline.sentinels) == []
    for path in sorted(report.rglob("*")):
        if path.is_file():
            assert leaks(path.read_bytes(), pipeline.sentinels) == [], path
    assert leaks(pipeline.config.read_bytes(), pipeline.sentinels) == []
    warehouse = pipeline.directory / "lpm.db"
    files = [p for p in pipeline.directory.glob("lpm.db*") if p.is_file()]
    assert leaks(b"".join(p.read_bytes() for p in files), pipeline.sentinels) == []
    engine = open_warehouse(f"sqlite:///{warehouse}")
    try:
        texts = _warehouse_text(engine)
    finally:
        engine.dispose()
    assert len(texts) > 1000, "the warehouse holds the synced portfolio"
    assert leaks("\n".join(texts), pipeline.sentinels) == []


def _prefect_logs_and_artifacts(api: str) -> list[str]:
    with httpx.Client(base_url=api, timeout=30) as client:
        logs = client.post("/logs/filter", json={"limit": 200}).json()
        artifacts = client.post("/artifacts/filter", json={"limit": 200}).json()
        runs = client.post("/flow_runs/filter", json={"limit": 200}).json()
    return (
        [entry["message"] for entry in logs]
        + [str(artifact.get("data")) + str(artifact.get("description")) for artifact in artifacts]
        + [str(run.get("parameters")) + str(run.get("state")) for run in runs]
    )


def _warehouse_text(engine: Engine) -> list[str]:
    """Every text and JSON value of every warehouse table, as text."""
    found: list[str] = []
    with engine.connect() as conn:
        for table in models.Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
            if not columns:
                continue
            for row in conn.execute(select(*columns)):
                found += [str(value) for value in row if value is not None]
    return found


@pytest.mark.parametrize("source", ["jira-wrong-token", "jira-untrusted"])
def test_failures_name_the_problem_but_never_the_secret(
    pipeline: Run,
    source: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in pipeline.env.items():
        monkeypatch.setenv(name, value)
    config = LpmConfig.model_validate(yaml.safe_load(pipeline.config.read_text()))
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(SyncFailed) as failed:
            sync_source(config, source, engine)
        texts = _warehouse_text(engine)
    finally:
        engine.dispose()
    error: Any = failed.value
    shown = "".join(traceback.format_exception(error)) + repr(error) + repr(error.cause)
    expected = "authentication failed" if source == "jira-wrong-token" else "TLS verification"
    assert expected in shown
    assert leaks(shown, pipeline.sentinels) == []
    assert leaks(caplog.text, pipeline.sentinels) == []
    assert leaks("\n".join(texts), pipeline.sentinels) == []
