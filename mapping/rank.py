"""Re-ranking with as few moves as possible: keep a longest already-ordered run in place.

A backlog in tracker order and the order wanted (WSJF) share their items. The items whose
tracker positions, read in the wanted order, form a longest increasing subsequence (LIS) are
already in the right relative order: they stay put, and only the other n - LIS items move. No
fewer moves can do, since every item left in place must already be in order with the others.

Moved items are grouped into runs that are contiguous in the wanted order; each run goes right
after the item wanted just before it (already placed, or kept), or, for a run at the very top,
right before the first kept item. A run longer than the tracker's batch limit (Jira: 50 issues
per rank call) continues after the last item of the previous batch. Pure: no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Sequence
from dataclasses import dataclass

RANK_BATCH = 50
"""Issues per Jira Agile rank call."""


@dataclass(frozen=True)
class Move:
    """Put `items` (in this order) right before `before`, or right after `after`."""

    items: tuple[str, ...]
    before: str | None = None
    after: str | None = None

    def __post_init__(self) -> None:
        if (self.before is None) == (self.after is None):
            raise ValueError("a move needs exactly one of before / after")
        if not self.items:
            raise ValueError("a move needs at least one item")


def longest_increasing_run(values: Sequence[int]) -> list[int]:
    """Indexes of one longest strictly increasing subsequence of `values` (O(n log n))."""
    tails: list[int] = []
    """tails[k]: index of the smallest value ending an increasing run of length k + 1."""
    tail_values: list[int] = []
    previous: list[int] = [-1] * len(values)
    for index, value in enumerate(values):
        length = bisect_left(tail_values, value)
        if length:
            previous[index] = tails[length - 1]
        if length == len(tails):
            tails.append(index)
            tail_values.append(value)
        else:
            tails[length] = index
            tail_values[length] = value
    run: list[int] = []
    cursor = tails[-1] if tails else -1
    while cursor != -1:
        run.append(cursor)
        cursor = previous[cursor]
    return run[::-1]


def plan_moves(
    current: Sequence[str], wanted: Sequence[str], *, batch: int = RANK_BATCH
) -> list[Move]:
    """The moves that turn `current` into `wanted` while moving the fewest items.

    `current` lists the items with a known place in tracker order; items of `wanted` missing
    from it (no rank value yet) always move. With no item placed there is nothing to anchor a
    move on, and no moves are returned.
    """
    if len(set(current)) != len(current) or len(set(wanted)) != len(wanted):
        raise ValueError("rank orders must not repeat an item")
    if not set(current) <= set(wanted):
        raise ValueError("every item in the current order must be in the wanted order")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if not current:
        return []
    position = {item: index for index, item in enumerate(current)}
    placed = [item for item in wanted if item in position]
    run_indexes = longest_increasing_run([position[item] for item in placed])
    kept = {placed[index] for index in run_indexes}
    moves: list[Move] = []
    run: list[str] = []
    previous: str | None = None
    """The item wanted right before the current run (None at the top)."""
    for item in wanted:
        if item not in kept:
            run.append(item)
            continue
        if run:
            moves += _batches(run, previous, item, batch)
            run = []
        previous = item
    if run:
        moves += _batches(run, previous, None, batch)
    return moves


def plan_scope(
    current: Sequence[str], wanted: Sequence[str], claimed: Collection[str]
) -> tuple[list[Move], list[str]]:
    """Moves for one rank scope that leave the `claimed` items (moved by a person) in place.

    Returns the moves and the claimed items that would otherwise have moved (conflicts): they
    drop out of the ordering, and the rest is ordered around them.
    """
    skipped: list[str] = []
    members = list(wanted)
    while True:
        present = set(members)
        moves = plan_moves([item for item in current if item in present], members)
        hit = {item for move in moves for item in move.items} & set(claimed)
        if not hit:
            return moves, skipped
        skipped += [item for item in members if item in hit]
        members = [item for item in members if item not in hit]


def _batches(run: list[str], previous: str | None, following: str | None, batch: int) -> list[Move]:
    moves = []
    for start in range(0, len(run), batch):
        part = tuple(run[start : start + batch])
        if start:
            moves.append(Move(part, after=run[start - 1]))
        elif previous is not None:
            moves.append(Move(part, after=previous))
        else:
            assert following is not None, "a run at the top is followed by a kept item"
            moves.append(Move(part, before=following))
    return moves
