"""Broken parent links: cycles of any length, items hanging below them, depth, late parents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from mapping.config import PortfolioConfig
from tests.analytics.builders import by_item, external_ids, item, load, rows
from warehouse import hierarchy, models
from warehouse.analytics import compute_analytics

NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
PORTFOLIO = PortfolioConfig(name="Hierarchy")


def issues(engine: Engine) -> dict[tuple[str, str], str | None]:
    names = external_ids(engine)
    return {
        (names[row["work_item_id"]], row["kind"]): names.get(row["related_id"])
        for row in rows(engine, models.HierarchyIssue)
    }


def test_a_long_cycle_with_a_subtree_below_is_reported_and_rolled_up(engine: Engine) -> None:
    """C0 -> C1 -> ... -> C39 -> C0, and under C7 a feature with two stories.

    Every item of the loop is reported with its parent in the loop; the links are cut, so each
    is a root; the feature hanging below C7 rolls up into C7 (not into the loop around it).
    """
    loop = [
        item(f"C{n}", "capability", parent_external_id=f"C{(n + 39) % 40}", estimate=1)
        for n in range(40)
    ]
    below = [
        item("F", "feature", parent_external_id="C7"),
        item("S1", "story", "done", parent_external_id="F", estimate=2),
        item("S2", "story", parent_external_id="F", estimate=6),
    ]
    load(engine, "jira", loop + below)
    summary = compute_analytics(engine, PORTFOLIO, now=NOW)
    assert issues(engine) == {(f"C{n}", "cycle"): f"C{(n + 39) % 40}" for n in range(40)}
    assert (summary.cycles, summary.items) == (40, 43)
    rollup = by_item(engine, models.Rollup)
    assert (rollup["C7"]["total_items"], rollup["C7"]["progress"]) == (2, 0.25)
    assert (rollup["C8"]["total_items"], rollup["C8"]["total_estimate"]) == (1, 1.0)


def test_an_item_that_is_its_own_parent(engine: Engine) -> None:
    load(engine, "jira", [item("E", "epic", parent_external_id="E")])
    summary = compute_analytics(engine, PORTFOLIO, now=NOW)
    assert issues(engine) == {("E", "cycle"): "E"}
    assert summary.cycles == 1
    assert by_item(engine, models.Rollup)["E"]["total_items"] == 1


def test_items_below_the_depth_limit_are_reported_and_left_out(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the guard at 2 levels, the 4th and 5th of a 5-item chain are too deep."""
    monkeypatch.setattr(hierarchy, "MAX_DEPTH", 2)
    chain = [item("L0", "theme")] + [
        item(f"L{n}", "feature", parent_external_id=f"L{n - 1}") for n in range(1, 5)
    ]
    load(engine, "jira", chain)
    summary = compute_analytics(engine, PORTFOLIO, now=NOW)
    assert issues(engine) == {("L3", "depth_limit"): "L2", ("L4", "depth_limit"): "L3"}
    assert (summary.too_deep, summary.items, summary.cycles) == (2, 3, 0)
    assert sorted(by_item(engine, models.Rollup)) == ["L0", "L1", "L2"]


def test_an_orphan_joins_the_tree_once_its_parent_arrives(engine: Engine) -> None:
    load(engine, "jira", [item("S", "story", "done", parent_external_id="F", estimate=3)])
    first = compute_analytics(engine, PORTFOLIO, now=NOW)
    assert issues(engine) == {("S", "parent_not_found"): None}
    assert first.orphans == 1
    load(engine, "jira", [item("F", "feature", art="ART 1")])
    second = compute_analytics(engine, PORTFOLIO, now=NOW)
    assert issues(engine) == {}
    assert second.orphans == 0
    assert by_item(engine, models.Rollup)["F"]["done_estimate"] == 3.0
