"""Minimal re-ranking: n - LIS moves, the wanted order reached, batches within Jira's limit."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapping.rank import Move, longest_increasing_run, plan_moves, plan_scope


def apply_moves(order: list[str], moves: list[Move]) -> list[str]:
    """The order after `moves`, as the tracker applies them."""
    result = list(order)
    for move in moves:
        moving = set(move.items)
        result = [item for item in result if item not in moving]
        anchor = move.before if move.before is not None else move.after
        if anchor in moving or anchor not in result:
            raise ValueError(f"rank anchor {anchor!r} is not in the backlog")
        at = result.index(anchor) + (0 if move.before is not None else 1)
        result[at:at] = move.items
    return result


def lis_length(values: list[int]) -> int:
    """Quadratic reference LIS, independent of the implementation under test."""
    best = [1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] < values[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


permutations = st.integers(min_value=0, max_value=120).flatmap(
    lambda n: st.permutations([f"I-{k}" for k in range(n)])
)


@settings(max_examples=300, deadline=None)
@given(current=permutations, seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 60))
def test_moves_are_n_minus_lis_and_reach_the_wanted_order(
    current: list[str], seed: int, batch: int
) -> None:
    wanted = list(current)
    random.Random(seed).shuffle(wanted)
    moves = plan_moves(current, wanted, batch=batch)
    position = {item: index for index, item in enumerate(current)}
    expected = len(wanted) - lis_length([position[item] for item in wanted])
    assert sum(len(move.items) for move in moves) == expected
    assert all(len(move.items) <= batch for move in moves)
    assert len({item for move in moves for item in move.items}) == expected
    assert apply_moves(current, moves) == wanted


@settings(max_examples=100, deadline=None)
@given(current=permutations, seed=st.integers(0, 2**32 - 1), unranked=st.integers(0, 10))
def test_items_without_a_rank_always_move_and_end_in_place(
    current: list[str], seed: int, unranked: int
) -> None:
    extra = [f"NEW-{k}" for k in range(unranked)]
    wanted = current + extra
    random.Random(seed).shuffle(wanted)
    moves = plan_moves(current, wanted)
    moved = {item for move in moves for item in move.items}
    assert set(extra) <= moved or not current
    if current:
        assert apply_moves(current + extra, moves) == wanted


def test_a_run_of_consecutive_items_is_one_move_per_50() -> None:
    current = [f"I-{k}" for k in range(130)]
    wanted = current[10:] + current[:10]
    moves = plan_moves(current, wanted)
    # Keeping the 120 in place and moving the 10 is optimal: one move after the last item.
    assert moves == [Move(tuple(current[:10]), after="I-129")]
    reversed_top = list(reversed(current[:60])) + current[60:]
    moves = plan_moves(current, reversed_top)
    assert [len(m.items) for m in moves] == [50, 9]
    # One of the 60 stays (the LIS takes one of them); the 59 others go in two calls.
    assert moves[0].before is not None and moves[1].after == moves[0].items[-1]
    assert apply_moves(current, moves) == reversed_top


def test_an_ordered_backlog_needs_no_move() -> None:
    items = [f"I-{k}" for k in range(1000)]
    assert plan_moves(items, items) == []
    assert plan_moves([], []) == []


def test_longest_increasing_run_is_strictly_increasing_and_longest() -> None:
    values = [5, 1, 6, 2, 7, 3, 8, 4]
    run = longest_increasing_run(values)
    assert [values[i] for i in run] == [1, 2, 3, 4]
    assert run == sorted(run)


def test_claimed_items_stay_put_and_the_rest_is_ordered_around_them() -> None:
    current = ["A", "B", "C", "D", "E"]
    wanted = ["E", "D", "C", "B", "A"]
    # A person moved D and B; they would have to move to reach the WSJF order: they don't.
    moves, conflicts = plan_scope(current, wanted, claimed={"D", "B", "Z"})
    assert set(conflicts) <= {"D", "B"} and conflicts
    moved = {item for move in moves for item in move.items}
    assert not moved & {"B", "D"}
    final = apply_moves(current, moves)
    others = [item for item in final if item not in conflicts]
    assert others == [item for item in wanted if item not in conflicts]
    # A claimed item that needs no move is no conflict.
    assert plan_scope(["A", "B"], ["A", "B"], claimed={"A"}) == ([], [])


def test_bad_orders_are_refused() -> None:
    with pytest.raises(ValueError, match="repeat"):
        plan_moves(["A", "A"], ["A"])
    with pytest.raises(ValueError, match="wanted order"):
        plan_moves(["A", "B"], ["A"])
    with pytest.raises(ValueError, match="before / after"):
        Move(("A",))
