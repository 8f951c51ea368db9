"""The generated past of an item, derived on demand instead of stored.

An item's changelog before the sandbox started is a pure function of (seed, item) and of the
values the generator gave it: the workflow path from the first status to the generated status,
with the last transition at `status_changed`, a few re-estimates or priority changes (the last
one at `updated` when the item changed after its last transition) and a move between projects
where one happened. Edits made later are appended by `Portfolio` and keep these intact.
"""

from __future__ import annotations

import math

from sandbox.hashing import mix
from sandbox.portfolio import MS_MINUTE, ChangeEntry, ChangeItem, Portfolio

POINTS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0)


def status_path(p: Portfolio, i: int) -> list[int]:
    """Statuses from creation to the generated status, in order."""
    t = p.itype(i)
    final = p.original(i, "status", p.status[i])
    happy = t.happy_path
    if final in happy:
        return list(happy[: happy.index(final) + 1])
    path = [happy[0]]
    if len(happy) > 1 and mix(p.seed, i, 21) % 2:
        path.append(happy[1])
    path.append(final)
    return path


def _edit_kinds(p: Portfolio, i: int) -> list[str]:
    h = mix(p.seed, i, 22)
    kinds = []
    if h % 4 in (1, 3):
        kinds.append("priority")
    estimate = p.original(i, "estimate", p.num["estimate"][i])
    if h % 4 in (2, 3) and not math.isnan(estimate):
        kinds.append("estimate")
    updated = p.original(i, "updated", p.updated[i])
    changed = p.original(i, "status_changed", p.status_changed[i])
    moved = p.moves.get(i)
    last_known = max(changed, moved[3] if moved else 0)
    if updated > last_known and not kinds:
        kinds.append("priority")
    return kinds


def base_history_length(p: Portfolio, i: int) -> int:
    return len(status_path(p, i)) - 1 + len(_edit_kinds(p, i)) + (1 if i in p.moves else 0)


def initial_values(p: Portfolio, i: int) -> dict[str, object]:
    """Values at creation of the attributes the generated history changes."""
    values: dict[str, object] = {"status": status_path(p, i)[0]}
    kinds = _edit_kinds(p, i)
    priority = p.original(i, "priority", p.priority[i])
    estimate = p.original(i, "estimate", p.num["estimate"][i])
    h = mix(p.seed, i, 23)
    values["priority"] = (priority + 1 + h % 4) % 5 if "priority" in kinds else priority
    if "estimate" in kinds:
        others = [v for v in POINTS if v != estimate]
        values["estimate"] = others[h % len(others)]
    else:
        values["estimate"] = None if math.isnan(estimate) else estimate
    if i in p.moves:
        old_art, _, old_team, _ = p.moves[i]
        values["art"] = old_art
        values["team"] = old_team if old_team >= 0 else None
    return values


def base_author(p: Portfolio, i: int) -> int:
    """Who made the generated changes: the assignee, else a stable colleague."""
    return p.assignee[i] if p.assignee[i] > 0 else 1 + mix(p.seed, i, 24) % (len(p.users) - 1)


def status_events(p: Portfolio, i: int) -> list[tuple[int, int, int]]:
    """Generated transitions (time, from status, to status), the last at `status_changed`."""
    seed = p.seed
    created = p.created[i]
    changed = p.original(i, "status_changed", p.status_changed[i])
    path = status_path(p, i)
    steps = len(path) - 1
    if not steps:
        return []
    span = max(changed - created, steps * 1000)
    cuts = sorted(mix(seed, i, 30 + k) % span for k in range(steps - 1))
    times = [created + max(c, 1000) for c in cuts] + [created + span]
    out = []
    last = created
    for k in range(steps):
        at = max(times[k], last + 1000)
        last = at
        out.append((at, path[k], path[k + 1]))
    return out


def activated_at(p: Portfolio, i: int) -> int | None:
    """When the item first entered a doing status (ADO's ActivatedDate)."""
    statuses = p.process.statuses
    for at, _, new in status_events(p, i):
        if statuses[new].phase == "doing":
            return at
    for entry in p.extra.get(i, ()):
        for c in entry.items:
            if c.attr == "status" and statuses[c.new].phase == "doing":
                return entry.at
    return None


def base_history(p: Portfolio, i: int) -> list[ChangeEntry]:
    """The generated changelog of item `i`, oldest first."""
    seed = p.seed
    created = p.created[i]
    changed = p.original(i, "status_changed", p.status_changed[i])
    updated = p.original(i, "updated", p.updated[i])
    author = base_author(p, i)
    events: list[tuple[int, list[ChangeItem]]] = []
    statuses = p.process.statuses
    for at, old, new in status_events(p, i):
        items = [ChangeItem("status", old, new)]
        phase, before = statuses[new].phase, statuses[old].phase
        if phase in ("done", "removed") and before not in ("done", "removed"):
            items.append(ChangeItem("resolution", None, "Done" if phase == "done" else "Won't Do"))
        events.append((at, items))
    initial = initial_values(p, i)
    kinds = _edit_kinds(p, i)
    for k, kind in enumerate(kinds):
        if k == len(kinds) - 1 and updated > changed:
            at = updated
        else:
            offset = mix(seed, i, 40 + k) % max(updated - created, MS_MINUTE)
            at = min(created + MS_MINUTE + offset, updated)
        if kind == "priority":
            items = [
                ChangeItem(
                    "priority", initial["priority"], p.original(i, "priority", p.priority[i])
                )
            ]
        else:
            items = [
                ChangeItem(
                    "estimate", initial["estimate"], p.original(i, "estimate", p.num["estimate"][i])
                )
            ]
        events.append((at, items))
    move = p.moves.get(i)
    if move is not None:
        old_art, old_num, old_team, when = move
        new_art = p.original(i, "art", p.art[i])
        new_team = p.original(i, "team", p.team[i])
        items = [ChangeItem("team", old_team if old_team >= 0 else None, new_team)]
        if p.kind == "jira":
            new_num = p.original(i, "keynum", p.keynum[i])
            old_key = f"{p.project_key(old_art + 1)}-{old_num}"
            new_key = f"{p.project_key(new_art + 1)}-{new_num}"
            items = [
                ChangeItem("project", old_art + 1, new_art + 1),
                ChangeItem("key", old_key, new_key),
                ChangeItem("art", old_art, new_art),
                *items,
            ]
        else:
            items.insert(0, ChangeItem("art", old_art, new_art))
        events.append((when, items))
    events.sort(key=lambda e: e[0])
    base = 10_000 + i * 10
    return [ChangeEntry(base + k, at, author, tuple(items)) for k, (at, items) in enumerate(events)]
