"""Jira sync against the sandbox over HTTP: the warehouse must equal the tracker's ground truth."""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from connectors.base import FetchPlan
from connectors.http import TrackerError
from connectors.jira import JiraConnector
from flows.cli import app
from flows.sync import SyncFailed, sync_source
from mapping.config import JiraSource
from sandbox.server import serve
from sandbox.tls import self_signed, server_context
from tests.integration.jira_truth import differences, environment, lpm_config, table_rows
from warehouse import models
from warehouse.db import open_warehouse

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_full_sync_of_5000_items_equals_ground_truth(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve("jira", items=5000, seed=11) as sandbox:
        result = sync_source(lpm_config(sandbox, monkeypatch), "jira", engine, full=True)
        assert differences(engine, sandbox) == []
        assert result.quarantined == 0 and result.mode == "full"
        # A second full sync changes nothing.
        again = sync_source(lpm_config(sandbox, monkeypatch), "jira", engine, full=True)
        assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    with engine.connect() as conn:
        runs = conn.execute(select(models.SyncRun.status, models.SyncRun.watermark)).all()
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert all(r.watermark is not None for r in runs)


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_a_site_with_a_private_certificate_syncs_whole_once_its_certificate_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deployment: Any
) -> None:
    """Sites behind a company's own CA: refused at the handshake until REQUESTS_CA_BUNDLE names
    the certificate, then the whole sync (concurrent fetch threads and pooled https
    connections included) equals ground truth."""
    cert, key = self_signed(tmp_path)
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = server_context(cert, key)
    with serve("jira", items=800, seed=31, deployment=deployment, tls=tls) as sandbox:
        assert sandbox.url.startswith("https://")
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        with pytest.raises(SyncFailed, match=r"^jira: TLS verification") as refused:
            sync_source(lpm_config(sandbox, monkeypatch), "jira", engine, full=True)
        assert isinstance(refused.value.cause, TrackerError)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        result = sync_source(lpm_config(sandbox, monkeypatch), "jira", engine, full=True)
        assert result.quarantined == 0 and result.fetched > 700
        assert differences(engine, sandbox) == []


def test_full_sync_of_data_center_equals_ground_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'dc.db'}")
    with serve("jira", items=3000, seed=12, deployment="datacenter") as sandbox:
        result = sync_source(lpm_config(sandbox, monkeypatch), "jira", engine, full=True)
        assert result.quarantined == 0
        assert differences(engine, sandbox) == []
        sandbox.mutator.step(40)
        sync_source(lpm_config(sandbox, monkeypatch), "jira", engine)
        assert differences(engine, sandbox) == []


def test_incremental_sync_fetches_only_changes_and_ends_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=3000, seed=13) as sandbox:
        config = lpm_config(sandbox, monkeypatch, overlap_minutes=0)
        full = sync_source(config, "jira", engine, full=True)
        with engine.connect() as conn:
            watermark = conn.execute(select(models.SyncRun.watermark)).scalar_one()
        mutations = sandbox.mutator.step(80)
        actions = {m.action for m in mutations}
        assert {"move", "delete", "transition"} <= actions
        incremental = sync_source(config, "jira", engine)
        assert incremental.mode == "incremental"
        assert differences(engine, sandbox) == []
        # Only what changed (plus what was updated in the minute the last sync started, which
        # the minute-precision JQL re-reads) was fetched.
        recent = {
            t.external_id
            for t in sandbox.ground_truth()
            if t.updated_at >= watermark.replace(second=0, microsecond=0) - timedelta(minutes=1)
        }
        changed = {m.external_id for m in mutations if m.action != "delete"}
        assert incremental.fetched <= len(recent | changed)
        assert incremental.fetched < full.fetched / 10
        assert incremental.deleted == len(
            {m.external_id for m in mutations if m.action == "delete"}
        )
        moved = [m for m in mutations if m.action == "move"]
        with engine.connect() as conn:
            keys = dict(
                conn.execute(select(models.WorkItem.external_id, models.WorkItem.key)).all()
            )
            history = conn.execute(select(models.WorkItemHistory.field).distinct()).scalars().all()
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        for move in moved:
            assert keys[move.external_id] == truth[move.external_id].key != move.key
        assert {"status", "status_category"} <= set(history)


def test_status_category_history_follows_the_status_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Discovery reads `/status`, so every status transition in a changelog (the mutator's
    included, cancellations too) lands as a `status_category` row with both ends mapped."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    caplog.set_level(logging.WARNING, logger="connectors.jira")
    with serve("jira", items=600, seed=22) as sandbox:
        config = lpm_config(sandbox, monkeypatch, overlap_minutes=0)
        sync_source(config, "jira", engine, full=True)
        phases = {s.name: s.phase for s in sandbox.portfolio.process.statuses}
        transitions: list[Any] = []
        for _ in range(10):  # until some item is cancelled (seeded, so deterministic)
            batch = sandbox.mutator.step(60)
            transitions += [m for m in batch if m.action == "transition"]
            if any(phases[m.detail["to"]] == "removed" for m in transitions):
                break
        assert sync_source(config, "jira", engine).mode == "incremental"
        http = requests.Session()
        http.auth = (sandbox.email, sandbox.token)
        expected: dict[str, set[tuple[str, str | None, str | None]]] = {}
        for item_id in {m.external_id for m in transitions}:
            url = f"{sandbox.url}/rest/api/3/issue/{item_id}/changelog"
            entries = http.get(url, params={"maxResults": 1000}).json()["values"]
            expected[item_id] = {
                (str(e["id"]), phases.get(c["fromString"]), phases.get(c["toString"]))
                for e in entries
                for c in e["items"]
                if c.get("fieldId") == "status"
            }
        history = models.WorkItemHistory
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    models.WorkItem.external_id,
                    history.change_id,
                    history.from_value,
                    history.to_value,
                )
                .join(models.WorkItem, models.WorkItem.id == history.work_item_id)
                .where(history.field == "status_category")
                .where(models.WorkItem.external_id.in_(expected))
            ).all()
    got: dict[str, set[tuple[str, str | None, str | None]]] = {i: set() for i in expected}
    for row in rows:
        got[row.external_id].add((row.change_id, row.from_value, row.to_value))
    assert got == expected
    values = {v for changes in got.values() for _, *ends in changes for v in ends}
    assert values <= {"todo", "doing", "done", "removed"}
    assert {"todo", "doing", "done", "removed"} <= values
    for m in transitions:  # the mutator's own transitions are there, end to end
        assert (phases[m.detail["from"]], phases[m.detail["to"]]) in {
            (old, new) for _, old, new in got[m.external_id]
        }
    assert "no status catalogue" not in caplog.text


def test_items_in_scope_missing_from_the_warehouse_are_fetched_by_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item the warehouse lacks though it is in scope (restored from the trash, or missed while
    the tracker changed under a search) comes back on the next sync, even unchanged."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=600, seed=20) as sandbox:
        config = lpm_config(sandbox, monkeypatch, overlap_minutes=0)
        sync_source(config, "jira", engine, full=True)
        table = models.WorkItem.__table__
        with engine.begin() as conn:
            leaves = select(table.c.external_id).where(table.c.level == "story")
            oldest = leaves.order_by(table.c.updated_at).limit(3)  # no overlap re-reads them
            lost = conn.execute(oldest).scalars().all()
            conn.execute(table.delete().where(table.c.external_id.in_(lost)))
        result = sync_source(config, "jira", engine)
        assert result.inserted == 3
        assert differences(engine, sandbox) == []


def test_sync_under_server_faults_drops_and_429_bursts_ends_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve(
        "jira", items=2500, seed=14, fault_rate=0.05, drop_rate=0.02, rate_limit=4
    ) as sandbox:
        result = sync_source(lpm_config(sandbox, monkeypatch), "jira", engine, full=True)
        stats = sandbox.stats()
        assert differences(engine, sandbox) == []
        injected = stats["injected"]
        assert injected.get("429", 0) > 0 and injected.get("500", 0) + injected.get("503", 0) > 0
        assert result.http["retries"] >= injected.get("429", 0)
        # Polite: 429s are a small share of the calls, not a storm.
        assert injected.get("429", 0) < stats["requests"] / 3


@pytest.mark.slow
def test_a_sync_killed_at_a_random_page_resumes_to_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve("jira", items=4000, seed=15) as sandbox:
        config = lpm_config(sandbox, monkeypatch)
        source = sandbox.source_config("jira")
        killed_db = tmp_path / "killed.db"
        config_file = tmp_path / "lpm.yaml"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "warehouse": {"url": f"sqlite:///{killed_db}"},
                    "portfolio": {"name": "Sandbox"},
                    "sources": [source],
                }
            )
        )
        threshold = random.Random(15).randint(5, 30) * 100
        env = {**os.environ, **sandbox.env("jira"), "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from flows.cli import main; main()",
                "sync",
                "--config",
                str(config_file),
                "--full",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            fetched = _wait_for_fetched(killed_db, threshold, child)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, "the sync finished before it could be killed"
        assert 0 < fetched < 4000
        engine = open_warehouse(f"sqlite:///{killed_db}")
        resumed = sync_source(config, "jira", engine, full=True)
        assert resumed.resumed
        assert resumed.fetched < 4000 - fetched + 400  # went on from the cursor, not from zero
        clean = open_warehouse(f"sqlite:///{tmp_path / 'clean.db'}")
        sync_source(config, "jira", clean, full=True)
        assert table_rows(engine) == table_rows(clean)
        assert differences(engine, sandbox) == []


def _wait_for_fetched(path: Path, threshold: int, child: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if path.exists():
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
                    row = conn.execute("SELECT max(fetched) FROM sync_run").fetchone()
            except sqlite3.OperationalError:
                row = None
            if row and row[0] and row[0] >= threshold:
                return int(row[0])
        time.sleep(0.01)
    return 0


@pytest.mark.slow
def test_latency_bound_sync_is_exact_and_edits_during_it_are_caught_next_time(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=1500, seed=16, latency_ms=150) as sandbox:
        config = lpm_config(sandbox, monkeypatch)
        sync_source(config, "jira", engine, full=True)
        assert differences(engine, sandbox) == []
        sandbox.mutator.start(interval_s=0.05)
        try:
            sync_source(config, "jira", engine, full=True)
        finally:
            sandbox.mutator.stop()
        assert len(sandbox.mutator.log) > 10
        sync_source(config, "jira", engine)
        assert differences(engine, sandbox) == []


def test_on_429s_the_pool_shrinks_and_no_worker_sends_before_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve("jira", items=800, seed=19, rate_limit=6, latency_ms=10) as sandbox:
        config = lpm_config(sandbox, monkeypatch, concurrency=8)
        source = config.sources[0]
        assert isinstance(source, JiraSource)
        connector = JiraConnector.from_config(source)
        events: list[tuple[float, float, int, str | None]] = []

        def record(response: requests.Response, *args: object, **kwargs: object) -> None:
            arrived = time.monotonic()
            sent = arrived - response.elapsed.total_seconds()
            events.append(
                (sent, arrived, response.status_code, response.headers.get("Retry-After"))
            )

        connector.http.session.hooks["response"].append(record)
        facts = connector.discover()
        pages = list(connector.pages(facts, FetchPlan(full=True)))
        connector.close()
        assert sum(len(p.items) for p in pages) == sum(
            1 for t in sandbox.ground_truth() if not t.deleted and (t.level or t.objective)
        )
    throttled = [(arrived, float(wait)) for _, arrived, status, wait in events if status == 429]
    assert throttled, "the sandbox's rate limit never answered 429"
    assert connector.stats.lowest_concurrency < 8
    early = [
        (sent, arrived, wait)
        for arrived, wait in throttled
        for sent, _, _, _ in events
        if arrived + 0.1 < sent < arrived + wait - 0.1
    ]
    assert early == [], "a worker sent a request before Retry-After had passed"


# --- the command line ------------------------------------------------------------------------


def _config_file(tmp_path: Path, source: dict[str, object]) -> Path:
    path = tmp_path / "lpm.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": f"sqlite:///{tmp_path / 'cli.db'}"},
                "portfolio": {"name": "Sandbox"},
                "sources": [source],
            }
        )
    )
    return path


def test_lpm_sync_prints_counts_per_source(tmp_path: Path) -> None:
    with serve("jira", items=600, seed=17) as sandbox:
        path = _config_file(tmp_path, sandbox.source_config("jira"))
        with environment(sandbox.env("jira")):
            first = CliRunner().invoke(app, ["sync", "--config", str(path)])
            second = CliRunner().invoke(app, ["sync", "--config", str(path), "--source", "jira"])
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("jira: fetched ")
    assert ", new " in first.stdout and "quarantined 0 (full)" in first.stdout
    assert second.exit_code == 0
    assert "new 0, changed 0" in second.stdout and "(incremental)" in second.stdout


def test_lpm_sync_exit_codes(tmp_path: Path) -> None:
    with serve("jira", items=400, seed=18) as sandbox:
        source = sandbox.source_config("jira")
        with environment(sandbox.env("jira")):
            unknown = CliRunner().invoke(
                app, ["sync", "--config", str(_config_file(tmp_path, source)), "--source", "x"]
            )
            source["fields"] = {**source["fields"], "estimate": "Story Pointz"}  # type: ignore[dict-item]
            bad_field = CliRunner().invoke(
                app, ["sync", "--config", str(_config_file(tmp_path, source))]
            )
            source["fields"] = {**source["fields"], "estimate": "Team"}  # type: ignore[dict-item]
            quarantining = CliRunner().invoke(
                app, ["sync", "--config", str(_config_file(tmp_path, source))]
            )
        missing_secret = CliRunner().invoke(
            app, ["sync", "--config", str(_config_file(tmp_path, source))]
        )
    assert unknown.exit_code == 2 and "no source named 'x'" in unknown.stderr
    assert bad_field.exit_code == 2
    assert (
        "fields.estimate: no Jira field is named or has the id 'Story Pointz'" in bad_field.stderr
    )
    assert quarantining.exit_code == 1
    assert "quarantined" in quarantining.stderr and "Team" not in quarantining.stdout
    assert missing_secret.exit_code == 2 and "is not set" in missing_secret.stderr
