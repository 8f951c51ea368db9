"""`lpm sandbox serve` and the ready-made lpm.yaml source entry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from sandbox.cli import app
from sandbox.server import serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("kind", "deployment"), [("jira", "cloud"), ("jira", "datacenter"), ("azure_devops", "cloud")]
)
def test_source_config_is_a_valid_lpm_source(kind: str, deployment: str) -> None:
    config = pytest.importorskip("mapping.config")
    with serve(kind, items=200, seed=51, deployment=deployment) as sb:  # type: ignore[arg-type]
        source = sb.source_config("sb-source")
        parsed = config.LpmConfig.model_validate(
            {"portfolio": {"name": "Sandbox"}, "sources": [source]}
        )
        assert parsed.sources[0].name == "sb-source"
        env = sb.env("sb-source")
        refs = [ref["env"] for ref in source["auth"].values()]
        assert sorted(env) == sorted(refs)
        assert all(env.values())
        levels = source["levels"]
        truth_types = {t.item_type for t in sb.ground_truth() if t.level}
        assert truth_types <= set(levels)


@pytest.mark.parametrize("tls", [False, True])
def test_python_m_sandbox_serves_until_sigterm(tls: bool) -> None:
    """With `--tls` it serves https with a certificate it prints and removes when it stops."""
    command = [sys.executable, "-m", "sandbox", "serve", "--kind", "jira", "--items", "150"]
    command += ["--seed", "3", "--latency", "1", *(["--tls"] if tls else [])]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        lines = {}
        for line in proc.stdout:
            if line.startswith("# source: "):
                break
            key, _, value = line.strip().partition("=")
            lines[key] = value
        expected = {"LPM_SANDBOX_URL", "LPM_SANDBOX_KIND", "JIRA_EMAIL", "JIRA_API_TOKEN"}
        assert set(lines) == expected | ({"LPM_SANDBOX_CA_BUNDLE"} if tls else set())
        url = lines["LPM_SANDBOX_URL"]
        assert url.startswith("https://" if tls else "http://")
        r = requests.get(
            f"{url}/rest/api/3/myself",
            auth=(lines["JIRA_EMAIL"], lines["JIRA_API_TOKEN"]),
            timeout=30,
            verify=lines.get("LPM_SANDBOX_CA_BUNDLE", True),
        )
        assert r.status_code == 200
        if tls:
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(f"{url}/rest/api/3/myself", timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    if tls:
        assert not Path(lines["LPM_SANDBOX_CA_BUNDLE"]).exists()


def test_cli_refuses_bad_sizes() -> None:
    result = CliRunner().invoke(app, ["serve", "--items", "5"])
    assert result.exit_code == 2
    help_text = CliRunner().invoke(app, ["serve", "--help"]).output
    for option in (
        "--kind",
        "--port",
        "--items",
        "--seed",
        "--fault-rate",
        "--rate-limit",
        "--latency",
        "--drop-rate",
        "--deployment",
        "--mutate-every",
        "--tls",
    ):
        assert option in help_text
