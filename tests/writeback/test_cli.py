"""`lpm writeback [--apply] [--force] [--source]` against the Jira sandbox: table and exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from mapping.config import load_config
from sandbox.server import serve
from tests.writeback.helpers import api_writes, person_sets, refresh
from warehouse.db import open_warehouse

pytestmark = pytest.mark.integration


def test_writeback_prints_the_plan_applies_it_and_exits_1_on_a_skipped_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve("jira", items=800, seed=26) as sandbox:
        source = sandbox.source_config("jira")
        source["writeback"].update(rank=False, health_values={"blocked": "off-track"})
        path = tmp_path / "lpm.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "warehouse": {"url": f"sqlite:///{tmp_path / 'w.db'}"},
                    "portfolio": {"name": "Sandbox"},
                    "sources": [source],
                }
            )
        )
        # A person's WSJF on an epic lpm-sync never wrote: a conflict under first_write: empty.
        epic = next(
            t
            for t in sandbox.ground_truth()
            if t.level == "epic"
            and t.status_category in ("todo", "doing")
            and None not in (t.business_value, t.time_criticality, t.risk_reduction, t.job_size)
        )
        person_sets(sandbox, epic.external_id, "wsjf", 42.0)
        env = sandbox.env("jira")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config = load_config(path)
        engine = open_warehouse(config.warehouse_url())
        refresh(config, engine, full=True)
        engine.dispose()
        runner = CliRunner()
        args = ["writeback", "--config", str(path)]

        dry = runner.invoke(app, args, env=env)
        assert dry.exit_code == 1, dry.output
        assert "ITEM" in dry.stdout and "TRACKER -> NEW" in dry.stdout
        assert "(empty) -> " in dry.stdout
        assert re.search(rf"{epic.key}\s+wsjf\s+42 -> \S+\s+CONFLICT: holds a value", dry.stdout)
        found = re.search(
            r"jira: \d+ field change\(s\), 0 rank move\(s\), (\d+) conflict", dry.stdout
        )
        assert found, dry.stdout
        conflicts = int(found.group(1))
        assert "nothing was written" in dry.stdout and "would be skipped" in dry.stderr
        assert sandbox.stats()["by_status"].get("204", 0) == 0

        applied = runner.invoke(app, [*args, "--apply"], env=env)
        assert applied.exit_code == 1, applied.output
        assert f"skipped_conflict {conflicts}, failed 0" in applied.stdout
        assert f"jira {epic.key} wsjf: skipped_conflict" in applied.stderr
        assert all("wsjf" not in w for w in api_writes(sandbox, epic.external_id))

        forced = runner.invoke(app, [*args, "--apply", "--force"], env=env)
        assert forced.exit_code == 0, forced.output
        assert f"applied {conflicts}, skipped_conflict 0, failed 0" in forced.stdout

        again = runner.invoke(app, [*args, "--apply", "--source", "jira"], env=env)
        assert again.exit_code == 0, again.output
        assert "jira: 0 field change(s), 0 rank move(s), 0 conflict(s)" in again.stdout

        unknown = runner.invoke(app, [*args, "--source", "nope"], env=env)
        assert unknown.exit_code == 2 and "no source named 'nope'" in unknown.stderr
