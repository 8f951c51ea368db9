"""A sync runs with fewer collector passes (flows/collector.py) and gives the thresholds back."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import Engine

from flows.collector import SYNC_THRESHOLDS
from flows.sync import SyncFailed, SyncResult, sync_source
from sandbox.server import serve
from tests.integration.jira_truth import lpm_config

pytestmark = pytest.mark.integration


def test_a_sync_relaxes_the_collector_while_it_runs_only(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []

    def progress(_result: SyncResult) -> None:
        seen.append(gc.get_threshold())

    with serve("jira", items=300, seed=3) as sandbox:
        config = lpm_config(sandbox, monkeypatch)
        sync_source(config, "jira", engine, full=True, progress=progress)
        assert seen and all(t[0] >= SYNC_THRESHOLDS[0] for t in seen)
        assert gc.get_threshold() == before
        for name in sandbox.env("jira"):
            if "TOKEN" in name:
                monkeypatch.setenv(name, "revoked")  # 401: the sync fails at once
        with pytest.raises(SyncFailed):
            sync_source(config, "jira", engine, full=True)
    assert gc.get_threshold() == before
