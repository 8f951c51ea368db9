"""`lpm demo`, as the README's first command runs it: offline, ends with a report path, exit 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_lpm_demo_runs_the_whole_pipeline_and_prints_the_report(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    done = subprocess.run(
        [Path(sys.executable).parent / "lpm", "demo", "--dir", str(tmp_path), "--items", "600"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = re.search(r"^report: (.+portfolio\.html)$", done.stdout, re.MULTILINE)
    assert report, done.stdout
    html = Path(report.group(1))
    assert html.is_file() and html.stat().st_size > 10_000
    assert (tmp_path / "report" / "data").is_dir()
    assert re.search(r"^jira-sandbox: fetched \d+", done.stdout, re.MULTILINE)
    assert re.search(r"^ado-sandbox: fetched \d+", done.stdout, re.MULTILINE)
    config = (tmp_path / "lpm.yaml").read_text()
    assert "{env:" in config.replace("{'env':", "{env:") or "env:" in config
    for secret_line in (line for line in done.stdout.splitlines() if "TOKEN" in line):
        assert "=" not in secret_line, secret_line
