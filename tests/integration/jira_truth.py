"""Comparing a synced warehouse with the sandbox's ground truth, field by field."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, select

from mapping.config import LpmConfig
from sandbox.server import Sandbox
from warehouse import models

ITEM_FIELDS = (
    "key",
    "level",
    "item_type",
    "title",
    "status",
    "status_category",
    "parent_external_id",
    "estimate",
    "business_value",
    "time_criticality",
    "risk_reduction",
    "job_size",
    "team",
    "art",
    "increment",
    "category",
    "flagged",
    "start_date",
    "target_date",
    "created_at",
    "updated_at",
    "resolved_at",
    "portfolio_state",
)
OBJECTIVE_FIELDS = (
    "key",
    "title",
    "team",
    "increment",
    "committed",
    "planned_value",
    "actual_value",
    "status_category",
)


def lpm_config(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, **sync: Any) -> LpmConfig:
    """A config with the sandbox's source (its secrets put in the environment for the test)."""
    source = sandbox.source_config("jira")
    if sync:
        source["sync"] = sync
    for name, value in sandbox.env("jira").items():
        monkeypatch.setenv(name, value)
    return LpmConfig.model_validate({"portfolio": {"name": "Sandbox"}, "sources": [source]})


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def differences(engine: Engine, sandbox: Sandbox) -> list[str]:
    """Every way the warehouse differs from the sandbox's ground truth (empty: equal)."""
    categories = sandbox.source_config("jira")["categories"]
    with engine.connect() as conn:
        items = {r.external_id: r for r in conn.execute(select(models.WorkItem.__table__))}
        objectives = {r.external_id: r for r in conn.execute(select(models.Objective.__table__))}
    problems: list[str] = []
    expected: set[str] = set()
    for truth in sandbox.ground_truth():
        row = objectives.get(truth.external_id) if truth.objective else items.get(truth.external_id)
        live = row is not None and row.deleted_at is None
        if truth.deleted or (truth.level is None and not truth.objective):
            if live:
                problems.append(f"{truth.key}: deleted or out of scope, but live in the warehouse")
            continue
        expected.add(truth.external_id)
        if not live:
            problems.append(f"{truth.key}: missing (row {'deleted' if row else 'absent'})")
            continue
        for name in OBJECTIVE_FIELDS if truth.objective else ITEM_FIELDS:
            want, got = getattr(truth, name), getattr(row, name)
            if name == "category" and want is None:
                # The truth holds the category field's value; the config may also categorise
                # by issue type (`categories`), which the mapping applies after the field.
                want = categories.get(truth.item_type)
            if want != got:
                problems.append(f"{truth.key}.{name}: warehouse {got!r}, tracker {want!r}")
        if not truth.objective:
            wanted = {"wsjf": truth.wsjf, "health": truth.health, "progress": truth.progress}
            wanted["rank"] = truth.rank
            if row.writeback_values != wanted:
                problems.append(
                    f"{truth.key}.writeback_values: {row.writeback_values!r} != {wanted!r}"
                )
            if row.tracker_rank != truth.rank:
                problems.append(f"{truth.key}.tracker_rank: {row.tracker_rank!r} != {truth.rank!r}")
    extra = [
        external_id
        for external_id, row in [*items.items(), *objectives.items()]
        if row.deleted_at is None and external_id not in expected
    ]
    problems += [
        f"{external_id}: live in the warehouse, not in the tracker" for external_id in extra
    ]
    return problems


def table_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Warehouse content without surrogate keys and load times, for row-for-row comparisons."""
    item, objective, quarantine = models.WorkItem, models.Objective, models.Quarantine
    item_columns = [c for c in item.__table__.columns if c.name not in ("id", "synced_at")]
    item_columns.remove(item.__table__.c.parent_id)
    objective_columns = [c for c in objective.__table__.columns if c.name != "id"]
    parent = item.__table__.alias("parent")
    with engine.connect() as conn:
        return {
            "work_item": [
                tuple(row)
                for row in conn.execute(
                    select(*item_columns, parent.c.external_id)
                    .outerjoin(parent, parent.c.id == item.parent_id)
                    .order_by(item.external_id)
                )
            ],
            "objective": [
                tuple(row)
                for row in conn.execute(select(*objective_columns).order_by(objective.external_id))
            ],
            "quarantine": [
                tuple(row)
                for row in conn.execute(
                    select(quarantine.external_id, quarantine.error, quarantine.payload).order_by(
                        quarantine.external_id
                    )
                )
            ],
        }
