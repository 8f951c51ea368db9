"""The generated portfolio: deterministic, realistic, consistent with its own history."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.history import base_history, base_history_length, status_events
from sandbox.portfolio import F_LONG, F_UNICODE, Portfolio
from sandbox.process import custom_field_ids
from sandbox.truth import ground_truth

ANCHOR = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def jira() -> Portfolio:
    return Portfolio.generate("jira", 3000, seed=7, anchor=ANCHOR)


@pytest.fixture(scope="module")
def ado() -> Portfolio:
    return Portfolio.generate("azure_devops", 2000, seed=7, anchor=ANCHOR)


def test_same_seed_same_portfolio_other_seed_other_site() -> None:
    a = ground_truth(Portfolio.generate("jira", 400, seed=3, anchor=ANCHOR))
    b = ground_truth(Portfolio.generate("jira", 400, seed=3, anchor=ANCHOR))
    c = ground_truth(Portfolio.generate("jira", 400, seed=4, anchor=ANCHOR))
    assert a == b
    assert a != c
    assert custom_field_ids(3) != custom_field_ids(4), "custom field ids differ per site"


@pytest.mark.parametrize("items", [99, 1_000_001])
def test_sizes_outside_the_range_are_refused(items: int) -> None:
    with pytest.raises(ValueError, match="between 100"):
        Portfolio.generate("jira", items)


def test_smallest_portfolio_has_every_level(jira: Portfolio) -> None:
    small = Portfolio.generate("jira", 100, seed=1, anchor=ANCHOR)
    assert small.n == 100
    levels = Counter(small.itype(i).level for i in range(small.n))
    assert {"theme", "epic", "capability", "feature", "story", "objective"} <= set(levels)


def test_safe_hierarchy_on_jira(jira: Portfolio) -> None:
    p = jira
    for i in range(p.n):
        parent = p.parent[i]
        if parent >= 0:
            assert p.itype(parent).hierarchy == p.itype(i).hierarchy + 1, p.key(i)
            assert parent < i, "parents are created before their children"
    assert len(p.arts) >= 3
    assert len({t.art for t in p.teams}) >= 3
    epics = [i for i in range(p.n) if p.itype(i).level == "epic"]
    states = {p.portfolio_state(i) for i in epics}
    assert {"funnel", "implementing", "done"} <= states
    categories = {p.category_of(i) for i in epics}
    assert {"business", "enabler", "maintenance"} <= categories
    assert all(p.value("job_size", i) is not None for i in epics[:2] if p.stage[i] != 0)


def test_done_features_mostly_have_done_stories(jira: Portfolio) -> None:
    p = jira
    done_children = total = 0
    for i in range(p.n):
        parent = p.parent[i]
        if (
            parent >= 0
            and p.itype(parent).level == "feature"
            and p.status_of(parent).phase == "done"
        ):
            total += 1
            done_children += p.status_of(i).phase == "done"
    assert total > 100
    assert done_children / total > 0.85


def test_real_site_oddities_are_present(jira: Portfolio) -> None:
    p = jira
    stories = [i for i in range(p.n) if p.itype(i).level == "story"]
    assert any(p.value("estimate", i) is None for i in stories), "items without estimates"
    assert any(p.parent[i] < 0 for i in stories), "orphans"
    assert any(
        p.parent[i] >= 0
        and p.project(i) != p.project(p.parent[i])
        and p.itype(p.parent[i]).level == "feature"
        for i in stories
    ), "a parent in another project"
    assert any(p.flags[i] & F_UNICODE and not p.summary(i).isascii() for i in range(p.n))
    longs = [i for i in range(p.n) if p.flags[i] & F_LONG]
    assert longs and all(len(p.summary(i)) == 255 for i in longs)
    assert {"Cancelled", "Won't Do"} <= {p.status_of(i).name for i in range(p.n)}
    assert p.deleted, "deleted items"
    moved = next(iter(p.moves))
    old_art, old_num, _, _ = p.moves[moved]
    old_key = f"{p.project_key(old_art + 1)}-{old_num}"
    assert old_key != p.key(moved)
    assert p.find(old_key) == moved == p.find(p.key(moved)), "old key still finds the issue"


def test_objectives_have_planned_and_actual_value(jira: Portfolio) -> None:
    p = jira
    objectives = [i for i in range(p.n) if p.itype(i).level == "objective"]
    past = [i for i in objectives if p.pi[i] < p.current_pi]
    assert past and all(p.value("actual_value", i) is not None for i in past)
    assert all(p.value("planned_value", i) for i in objectives)
    assert all(p.team[i] >= 0 and p.pi[i] >= 0 for i in objectives)


def test_timestamps_and_history_agree(jira: Portfolio, ado: Portfolio) -> None:
    for p in (jira, ado):
        for i in range(0, p.n, 7):
            assert p.created[i] <= p.status_changed[i] <= p.updated[i] < p.anchor_ms
            history = base_history(p, i)
            assert len(history) == base_history_length(p, i)
            assert all(a.at <= b.at for a, b in itertools.pairwise(history))
            if history:
                assert history[-1].at <= p.updated[i]
            events = status_events(p, i)
            if events:
                assert events[-1][2] == p.status[i], "the last transition ends in the status"
                assert events[-1][0] == p.status_changed[i]
            if p.resolved[i] >= 0:
                assert p.status_of(i).phase in ("done", "removed")
            assert p.revision(i) == 1 + len(p.history(i))


def test_ado_portfolio_uses_the_agile_process(ado: Portfolio) -> None:
    names = {ado.itype(i).name for i in range(ado.n)}
    assert names == {"Epic", "Feature", "User Story", "Bug", "PI Objective"}
    assert {ado.status_of(i).tracker_category for i in range(ado.n)} >= {
        "Proposed",
        "InProgress",
        "Completed",
        "Removed",
    }
    assert ado.key(0) == "1" and ado.external_id(0) == "1"


def test_edits_keep_the_generated_past(jira: Portfolio) -> None:
    p = Portfolio.generate("jira", 300, seed=2, anchor=ANCHOR)
    i = next(i for i in range(p.n) if p.itype(i).level == "story" and not p.is_deleted(i))
    before = base_history(p, i)
    updated = p.updated[i]
    target = next(c for c in p.itype(i).statuses if c != p.status[i])
    entry = p.transition(i, target, author=1)
    assert entry is not None and entry.at > updated
    assert base_history(p, i) == before, "edits append, the generated past stays"
    assert p.history(i)[-1] == entry
    assert p.updated[i] == entry.at and p.status_changed[i] == entry.at
    assert p.set_attrs(i, {"estimate": p.value("estimate", i)}, author=1) is None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["jira", "azure_devops"]),
    items=st.integers(min_value=100, max_value=700),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_invariants_hold_for_any_seed_and_size(kind: str, items: int, seed: int) -> None:
    p = Portfolio.generate(kind, items, seed, anchor=ANCHOR)  # type: ignore[arg-type]
    assert p.n == items
    keys = [p.key(i) for i in range(p.n)]
    assert len(set(keys)) == p.n, "keys are unique"
    for i in range(p.n):
        assert p.created[i] <= p.updated[i] < p.anchor_ms
        assert p.status[i] in p.itype(i).statuses
        parent = p.parent[i]
        assert parent < i
        assert len(p.summary(i)) <= 255
    truth = ground_truth(p)
    assert {t.status_category for t in truth} <= {"todo", "doing", "done", "removed"}
    assert sum(t.deleted for t in truth) == len(p.deleted)
