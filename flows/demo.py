"""`lpm demo`: the whole product on one laptop, offline, with no account.

Starts a Jira sandbox and an Azure DevOps sandbox on 127.0.0.1, writes a config for them (the
secrets stay in this process's environment, never in the file), runs `portfolio_run` with
write-back applied to the sandboxes, and returns where the report is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.server import Sandbox, serve

JIRA_SOURCE = "jira-sandbox"
ADO_SOURCE = "ado-sandbox"


@dataclass(frozen=True)
class Demo:
    config_path: Path
    report_dir: Path
    sandboxes: dict[str, Sandbox]


def demo_config(jira: Sandbox, ado: Sandbox, directory: Path) -> dict[str, Any]:
    """A config for both sandboxes, with write-back applied, into SQLite in `directory`."""
    sources = []
    for sandbox, name in ((jira, JIRA_SOURCE), (ado, ADO_SOURCE)):
        source = sandbox.source_config(name)
        source["writeback"]["apply"] = True
        sources.append(source)
    increments = [
        {"name": pi.name, "start": pi.start.isoformat(), "end": pi.end.isoformat()}
        for pi in jira.portfolio.increments
    ]
    return {
        "warehouse": {"url": f"sqlite:///{(directory / 'lpm.db').resolve()}"},
        "portfolio": {
            "name": "Sandbox Portfolio",
            "increments": increments,
            "guardrails": {"business": 0.6, "enabler": 0.25, "maintenance": 0.15},
        },
        "sources": sources,
    }


@contextmanager
def demo_sandboxes(directory: Path, *, items: int, seed: int) -> Iterator[Demo]:
    """Both sandboxes running, their credentials in the environment, the config written."""
    directory.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        jira = stack.enter_context(serve("jira", items=items, seed=seed))
        ado = stack.enter_context(serve("azure_devops", items=max(100, items // 3), seed=seed + 1))
        config = demo_config(jira, ado, directory)
        os.environ.update(jira.env(JIRA_SOURCE))
        os.environ.update(ado.env(ADO_SOURCE))
        config_path = directory / "lpm.yaml"
        header = (
            "# Written by `lpm demo`: two sandbox trackers on 127.0.0.1 (gone after the demo).\n"
        )
        config_path.write_text(header + yaml.safe_dump(config, sort_keys=False))
        yield Demo(config_path, directory / "report", {JIRA_SOURCE: jira, ADO_SOURCE: ado})
