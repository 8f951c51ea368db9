"""Properties of the roll-ups and ranks over generated portfolios (hypothesis, SQLite).

Trees are generated with up to five levels by depth (theme at the root, stories at depth 4),
random statuses, estimates (some missing, some zero), flags, WSJF inputs (some missing) and
ARTs; every node above story level gets a `rollup` row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from mapping.config import PortfolioConfig
from mapping.model import WorkItem
from tests.analytics.builders import by_item, item, load
from warehouse import models
from warehouse.analytics import RESULT_TABLES, compute_analytics
from warehouse.db import open_warehouse

LEVELS = ("theme", "epic", "capability", "feature", "story")
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
PORTFOLIO = PortfolioConfig(name="Generated", wsjf={"job_size_fallback": True})
ESTIMATES = st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0]))
INPUTS = st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.0, 5.0, 8.0]))
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Node:
    parent: int | None
    depth: int
    status: str
    estimate: float | None
    flagged: bool
    inputs: tuple[float | None, float | None, float | None, float | None]
    art: str | None
    age: int

    def work_item(self, index: int) -> WorkItem:
        bv, tc, rr, js = self.inputs
        return item(
            f"N{index}",
            LEVELS[self.depth],
            self.status,
            parent_external_id=None if self.parent is None else f"N{self.parent}",
            estimate=self.estimate,
            flagged=self.flagged,
            business_value=bv,
            time_criticality=tc,
            risk_reduction=rr,
            job_size=js,
            art=self.art,
            created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=self.age),
        )


@st.composite
def portfolios(draw: st.DrawFn) -> list[Node]:
    nodes: list[Node] = []
    for _ in range(draw(st.integers(1, 24))):
        open_parents = [i for i, node in enumerate(nodes) if node.depth < 4]
        parent = draw(st.one_of(st.none(), st.sampled_from(open_parents))) if open_parents else None
        nodes.append(
            Node(
                parent=parent,
                depth=0 if parent is None else nodes[parent].depth + 1,
                status=draw(st.sampled_from(["todo", "doing", "done"])),
                estimate=draw(ESTIMATES),
                flagged=draw(st.booleans()),
                inputs=(draw(INPUTS), draw(INPUTS), draw(INPUTS), draw(INPUTS)),
                art=draw(st.sampled_from([None, "ART 1", "ART 2"])),
                age=draw(st.integers(0, 3)),
            )
        )
    return nodes


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("properties") / "warehouse.db"
    engine = open_warehouse(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def analyse(engine: Engine, nodes: list[Node]) -> dict[str, dict[str, Any]]:
    """Load the nodes into an emptied warehouse, run the analytics, return `rollup` by node."""
    with engine.begin() as conn:
        for table in (*RESULT_TABLES, "work_item_history", "work_item", "sync_run", "source"):
            conn.execute(text(f"DELETE FROM {table}"))
    load(engine, "generated", [node.work_item(i) for i, node in enumerate(nodes)])
    compute_analytics(engine, PORTFOLIO, now=NOW)
    return by_item(engine, models.Rollup)


def own_totals(node: Node) -> tuple[int, int, int, float | None, float | None]:
    """What a leaf contributes: itself."""
    done = node.status == "done"
    estimated = node.estimate is not None
    done_estimate = (node.estimate if done else 0.0) if estimated else None
    return 1, int(done), int(estimated), node.estimate, done_estimate


def add(
    a: tuple[int, int, int, float | None, float | None],
    b: tuple[int, int, int, float | None, float | None],
) -> tuple[int, int, int, float | None, float | None]:
    def plus(x: float | None, y: float | None) -> float | None:
        return y if x is None else x if y is None else x + y

    return a[0] + b[0], a[1] + b[1], a[2] + b[2], plus(a[3], b[3]), plus(a[4], b[4])


TOTALS = ("total_items", "done_items", "estimated_items", "total_estimate", "done_estimate")


@PROPERTY_SETTINGS
@given(portfolios())
def test_progress_is_within_0_and_1(warehouse: Engine, nodes: list[Node]) -> None:
    rollup = analyse(warehouse, nodes)
    assert len(rollup) == sum(1 for node in nodes if node.depth < 4)
    assert all(0.0 <= row["progress"] <= 1.0 for row in rollup.values())


@PROPERTY_SETTINGS
@given(portfolios())
def test_parent_totals_are_the_sums_of_its_childrens(warehouse: Engine, nodes: list[Node]) -> None:
    rollup = analyse(warehouse, nodes)

    def totals(index: int) -> tuple[int, int, int, float | None, float | None]:
        key = f"N{index}"
        if key in rollup:
            return tuple(rollup[key][column] for column in TOTALS)  # type: ignore[return-value]
        return own_totals(nodes[index])

    for index, node in enumerate(nodes):
        children = [i for i, child in enumerate(nodes) if child.parent == index]
        if not children:
            assert totals(index) == own_totals(node)
            continue
        summed = totals(children[0])
        for child in children[1:]:
            summed = add(summed, totals(child))
        assert totals(index) == summed, f"N{index}"


@PROPERTY_SETTINGS
@given(portfolios())
def test_ranks_are_a_permutation_in_wsjf_order(warehouse: Engine, nodes: list[Node]) -> None:
    rollup = analyse(warehouse, nodes)
    scopes: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for key, row in rollup.items():
        if row["rank"] is not None:
            assert row["unranked_reason"] is None
            scopes.setdefault((nodes[int(key[1:])].depth, row["rank_scope"]), []).append(row)
        elif nodes[int(key[1:])].depth in (1, 2, 3):
            assert row["unranked_reason"], key
    for ranked in scopes.values():
        ranked.sort(key=lambda row: row["rank"])
        assert [row["rank"] for row in ranked] == list(range(1, len(ranked) + 1))
        order = [(row["wsjf"], row["cost_of_delay"]) for row in ranked]
        assert order == sorted(order, reverse=True)


@PROPERTY_SETTINGS
@given(portfolios(), st.data())
def test_adding_a_done_story_never_lowers_progress(
    warehouse: Engine, nodes: list[Node], data: st.DataObject
) -> None:
    """Under any item but a done leaf (a new child of a leaf replaces that leaf's own estimate,
    so a done leaf re-estimated lower is a re-estimate, not more work done)."""
    hosts = [
        index
        for index, node in enumerate(nodes)
        if node.status != "done" or any(child.parent == index for child in nodes)
    ]
    if not hosts:
        return
    host = data.draw(st.sampled_from(hosts))
    story = replace(
        nodes[host],
        parent=host,
        depth=4,
        status="done",
        estimate=data.draw(ESTIMATES),
        flagged=False,
    )
    before = analyse(warehouse, nodes)
    after = analyse(warehouse, [*nodes, story])
    for key, row in before.items():
        assert after[key]["progress"] >= row["progress"], key
