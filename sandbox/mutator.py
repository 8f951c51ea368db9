"""People working in the tracker while a sync runs: edits, transitions, moves and deletes.

Each step is one plausible human change made through the same mutation path the APIs use, so
`updated`, changelogs, revisions and ground truth stay consistent; every change is also logged
as a `Mutation` for tests that assert what a sync must have noticed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from sandbox.portfolio import FIB_VALUES, Portfolio, now_ms
from sandbox.process import HEALTH_VALUES

ACTIONS = (
    ("transition", 30),
    ("estimate", 15),
    ("wsjf_inputs", 15),
    ("writeback", 15),
    ("summary", 5),
    ("flag", 5),
    ("move", 8),
    ("delete", 7),
)


@dataclass(frozen=True, slots=True)
class Mutation:
    at_ms: int
    action: str
    external_id: str
    key: str
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "at_ms": self.at_ms,
            "action": self.action,
            "external_id": self.external_id,
            "key": self.key,
            "detail": self.detail,
        }


class Mutator:
    def __init__(self, portfolio: Portfolio, seed: int = 0):
        self.p = portfolio
        self._rnd = random.Random(f"mutator:{seed}")
        self.log: list[Mutation] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ driving
    def step(self, n: int = 1) -> list[Mutation]:
        """Make `n` human changes now; returns them (also appended to `log`)."""
        done: list[Mutation] = []
        with self._lock:
            for _ in range(n):
                for _attempt in range(20):
                    m = self._one()
                    if m is not None:
                        done.append(m)
                        break
            self.log.extend(done)
        return done

    def start(self, interval_s: float = 1.0) -> None:
        """Keep making one change every `interval_s` seconds in a background thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="sandbox-mutator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.step(1)

    # ------------------------------------------------------------------ actions
    def _one(self) -> Mutation | None:
        rnd, p = self._rnd, self.p
        action = rnd.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS])[0]
        i = rnd.randrange(p.n)
        if p.is_deleted(i):
            return None
        level = p.itype(i).level
        author = rnd.randrange(1, len(p.users))
        with p.lock:
            before_key = p.key(i)
            detail = getattr(self, f"_{action}")(i, level, author)
            if detail is None:
                return None
            return Mutation(now_ms(), action, p.external_id(i), before_key, detail)

    def _transition(self, i: int, level: str, author: int) -> dict[str, Any] | None:
        p, rnd = self.p, self._rnd
        t = p.itype(i)
        current = p.status[i]
        happy = list(t.happy_path)
        r = rnd.random()
        if r < 0.07:
            removed = p.process.in_phase(t.code, "removed")
            target = removed[0] if removed else None
        elif current in happy and happy.index(current) + 1 < len(happy) and r < 0.9:
            target = happy[happy.index(current) + 1]
        elif current in happy and happy.index(current) > 0:
            target = happy[happy.index(current) - 1]
        else:
            target = happy[0]
        if target is None or target == current:
            return None
        old = p.status_of(i).name
        p.transition(i, target, author=author)
        return {"field": "status", "from": old, "to": p.status_of(i).name}

    def _estimate(self, i: int, level: str, author: int) -> dict[str, Any] | None:
        if level != "story":
            return None
        p, rnd = self.p, self._rnd
        old = p.value("estimate", i)
        new = None if rnd.random() < 0.1 else float(rnd.choice(FIB_VALUES[:6]))
        if new == old:
            return None
        p.set_attr(i, "estimate", new, author=author)
        return {"field": "estimate", "from": old, "to": new}

    def _wsjf_inputs(self, i: int, level: str, author: int) -> dict[str, Any] | None:
        if level not in ("epic", "capability", "feature"):
            return None
        p, rnd = self.p, self._rnd
        attr = rnd.choice(("business_value", "time_criticality", "risk_reduction", "job_size"))
        old = p.value(attr, i)
        new = float(rnd.choice(FIB_VALUES))
        if new == old:
            return None
        p.set_attr(i, attr, new, author=author)
        return {"field": attr, "from": old, "to": new}

    def _writeback(self, i: int, level: str, author: int) -> dict[str, Any] | None:
        """A person overwrites a field lpm-sync owns (the conflict write-back must respect)."""
        if level not in ("epic", "capability", "feature"):
            return None
        p, rnd = self.p, self._rnd
        attr = rnd.choice(("wsjf", "health", "progress"))
        old = p.get_attr(i, attr)
        if attr == "wsjf":
            new: Any = round(rnd.uniform(0.5, 15.0), 1)
        elif attr == "health":
            new = rnd.choice(HEALTH_VALUES)
        else:
            new = float(rnd.randrange(0, 101, 5))
        if new == old:
            return None
        p.set_attr(i, attr, new, author=author)
        return {"field": attr, "from": old, "to": new}

    def _summary(self, i: int, level: str, author: int) -> dict[str, Any] | None:
        p = self.p
        old = p.summary(i)
        new = (old[:240] + " (updated)") if not old.endswith("(updated)") else old[:-10].rstrip()
        p.set_attr(i, "summary", new, author=author)
        return {"field": "summary", "from": old, "to": new}

    def _flag(self, i: int, level: str, author: int) -> dict[str, Any] | None:
        p = self.p
        old = bool(p.get_attr(i, "flagged"))
        p.set_attr(i, "flagged", not old, author=author)
        return {"field": "flagged", "from": old, "to": not old}

    def _move(self, i: int, level: str, author: int) -> dict[str, Any] | None:
        p, rnd = self.p, self._rnd
        if level not in ("story", "feature") or p.art[i] < 0 or len(p.arts) < 2:
            return None
        new_art = rnd.choice([a.code for a in p.arts if a.code != p.art[i]])
        teams = [t.code for t in p.teams if t.art == new_art]
        new_team = rnd.choice(teams) if level == "story" else -1
        old_key = p.key(i)
        old_art = p.arts[p.art[i]].name
        p.move(i, new_art, new_team, author=author)
        return {
            "field": "project",
            "from": old_art,
            "to": p.arts[new_art].name,
            "old_key": old_key,
            "new_key": p.key(i),
        }

    def _delete(self, i: int, level: str, author: int) -> dict[str, Any] | None:
        p = self.p
        if level != "story" or p.children(i):
            return None
        p.delete(i, author=author)
        return {"field": "deleted", "from": False, "to": True}
