"""Driving write-back against a sandbox: config, sync + roll-up, raw snapshots over HTTP."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import requests
from sqlalchemy import Engine

from flows.sync import sync_source
from mapping.config import LpmConfig
from sandbox.server import Sandbox
from warehouse.analytics import compute_analytics


def sandbox_config(sandbox: Sandbox, name: str, **writeback: Any) -> LpmConfig:
    """The sandbox's source with `writeback` overrides; its secrets put in the environment.

    The sandbox's health fields offer on-track / at-risk / off-track only: `blocked` is written
    as off-track."""
    source = sandbox.source_config(name)
    health_values = {"blocked": "off-track"}
    source["writeback"] = {**source["writeback"], "health_values": health_values, **writeback}
    os.environ.update(sandbox.env(name))
    increments = [
        {"name": pi.name, "start": pi.start, "end": pi.end} for pi in sandbox.portfolio.increments
    ]
    return LpmConfig.model_validate(
        {"portfolio": {"name": "Sandbox", "increments": increments}, "sources": [source]}
    )


def refresh(config: LpmConfig, engine: Engine, *, full: bool = False) -> None:
    """What runs before every write-back: sync each source, then the analytics."""
    for source in config.sources:
        sync_source(config, source.name, engine, full=full)
    compute_analytics(engine, config.portfolio, now=datetime.now(UTC))


def jira_snapshot(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Every live issue with all its fields, as the REST API returns it."""
    ids = [t.external_id for t in sandbox.ground_truth() if not t.deleted]
    found: dict[str, dict[str, Any]] = {}
    with requests.Session() as http:
        http.auth = (sandbox.email, sandbox.token)
        for start in range(0, len(ids), 100):
            body = {"issueIdsOrKeys": ids[start : start + 100], "fields": ["*all"]}
            answer = http.post(f"{sandbox.url}/rest/api/3/issue/bulkfetch", json=body, timeout=30)
            answer.raise_for_status()
            found.update({issue["id"]: issue for issue in answer.json()["issues"]})
    return found


def ado_snapshot(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Every live work item with all its fields, as `workitemsbatch` returns it."""
    ids = [int(t.external_id) for t in sandbox.ground_truth() if not t.deleted]
    found: dict[str, dict[str, Any]] = {}
    url = f"{sandbox.url}/{sandbox.project}/_apis/wit/workitemsbatch?api-version=7.1"
    with requests.Session() as http:
        http.auth = ("", sandbox.pat)
        for start in range(0, len(ids), 200):
            answer = http.post(url, json={"ids": ids[start : start + 200]}, timeout=30)
            answer.raise_for_status()
            found.update({str(item["id"]): item for item in answer.json()["value"]})
    return found


def api_writes(sandbox: Sandbox, external_id: str) -> list[dict[str, Any]]:
    """Changes the API user (lpm-sync) made to one item: one entry per accepted edit."""
    p = sandbox.portfolio
    index = p.find(external_id)
    assert index is not None
    return [
        {change.attr: change.new for change in entry.items}
        for entry in p.extra.get(index, [])
        if entry.author == 0
    ]


def person_sets(sandbox: Sandbox, external_id: str, attr: str, value: Any) -> None:
    """A person (not the API user) edits an item in the tracker."""
    p = sandbox.portfolio
    index = p.find(external_id)
    assert index is not None
    p.set_attr(index, attr, value, author=7)
