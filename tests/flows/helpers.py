"""A config file for a sandbox's Jira site, as the flows read it (path, not object)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox.server import Sandbox


def jira_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, portfolio: str
) -> str:
    """`lpm.yaml` in `tmp_path` with the sandbox's source and a SQLite warehouse beside it; the
    source's secrets are put in the environment for the test."""
    config = {
        "warehouse": {"url": f"sqlite:///{tmp_path / 'lpm.db'}"},
        "portfolio": {"name": portfolio},
        "sources": [sandbox.source_config("jira")],
    }
    path = tmp_path / "lpm.yaml"
    path.write_text(yaml.safe_dump(config))
    for name, value in sandbox.env("jira").items():
        monkeypatch.setenv(name, value)
    return str(path)
