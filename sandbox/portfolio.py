"""The generated SAFe portfolio: a compact columnar store plus the edits people and APIs make.

One item is one row across `array` columns (about 100 bytes), so a million items fit in a few
hundred MB; titles, descriptions and changelogs are derived on demand from (seed, item) and only
edits are stored. `Portfolio.generate(...)` builds a deterministic portfolio from a seed (see
`sandbox.generator`); the fake servers render it as Jira or Azure DevOps JSON and change it only
through the mutation methods here, which keep history, `updated` and versions consistent.
"""

# Non-ASCII names and titles are deliberate: real sites have them.
# ruff: noqa: RUF001

from __future__ import annotations

import math
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sandbox.hashing import mix, pick
from sandbox.process import (
    CATEGORIES,
    HEALTH_VALUES,
    JIRA_EPIC_STATUS,
    PORTFOLIO_STATES,
    ItemType,
    Kind,
    Process,
    Status,
)

MS_MINUTE = 60_000
MS_HOUR = 3_600_000
MS_DAY = 86_400_000

F_DELETED = 1
F_UNICODE = 2
F_LONG = 4
F_FLAGGED = 8
F_UNCOMMITTED = 16
F_DESCRIPTION = 32
F_MOVED = 64

NUMERIC_ATTRS = (
    "estimate",
    "business_value",
    "time_criticality",
    "risk_reduction",
    "job_size",
    "wsjf",
    "progress",
    "planned_value",
    "actual_value",
)
"""Number-valued attributes, stored as float64 with NaN for "no value"."""
FIB_VALUES = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0)
"""The modified Fibonacci scale of estimates and WSJF inputs."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Increment:
    """A program increment: five two-week sprints and an innovation & planning week."""

    index: int
    name: str
    start: date
    end: date
    start_ms: int
    end_ms: int
    """Exclusive: midnight UTC after the last day."""


@dataclass(frozen=True, slots=True)
class Sprint:
    code: int
    art: int
    increment: int
    number: int
    name: str
    start_ms: int
    end_ms: int

    def state(self, at_ms: int) -> str:
        if at_ms >= self.end_ms:
            return "closed"
        return "active" if at_ms >= self.start_ms else "future"


@dataclass(frozen=True, slots=True)
class Art:
    code: int
    key: str
    """Jira project key of the ART's project."""
    name: str


@dataclass(frozen=True, slots=True)
class Team:
    code: int
    name: str
    art: int
    uuid: str


@dataclass(frozen=True, slots=True)
class User:
    code: int
    display_name: str
    email: str
    account_id: str
    team: int
    uuid: str


@dataclass(frozen=True, slots=True)
class ChangeItem:
    """One field change; values are canonical (status codes, floats, names), rendered per site."""

    attr: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class ChangeEntry:
    id: int
    at: int
    author: int
    items: tuple[ChangeItem, ...]


@dataclass(slots=True)
class Deletion:
    at: int
    author: int


@dataclass(eq=False, repr=False)
class Portfolio:
    """Columnar store of every item of one generated site; index `i` is creation order."""

    kind: Kind
    seed: int
    anchor_ms: int
    process: Process
    increments: list[Increment]
    current_pi: int
    sprints: list[Sprint]
    arts: list[Art]
    teams: list[Team]
    users: list[User]
    themes: list[str]
    n: int
    type_: array[int]
    status: array[int]
    art: array[int]
    team: array[int]
    pi: array[int]
    sprint: array[int]
    keynum: array[int]
    parent: array[int]
    created: array[int]
    updated: array[int]
    status_changed: array[int]
    resolved: array[int]
    num: dict[str, array[float]]
    health: array[int]
    category: array[int]
    priority: array[int]
    assignee: array[int]
    flags: array[int]
    stage: array[int]
    """Portfolio Kanban stage of epics (index into PORTFOLIO_STATES, 6 = cancelled), else -1."""
    theme: array[int]
    """Strategic theme of epics (index into `themes`), else -1."""
    start_day: array[int]
    target_day: array[int]
    rank: array[float]
    ver: array[int]
    moves: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    """Generated moves: item -> (old art, old key number, old team, move time)."""
    summaries: dict[int, str] = field(default_factory=dict)
    labels_over: dict[int, tuple[str, ...]] = field(default_factory=dict)
    properties: dict[int, dict[str, Any]] = field(default_factory=dict)
    extra: dict[int, list[ChangeEntry]] = field(default_factory=dict)
    orig: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Generation-time values of attributes since edited, so the base history stays intact."""
    deleted: dict[int, Deletion] = field(default_factory=dict)
    key_index: list[array[int]] = field(default_factory=list)
    key_alias: dict[tuple[int, int], int] = field(default_factory=dict)
    next_keynum: list[int] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    version: int = 0
    """Bumped on every change; query caches key on it."""
    _next_change_id: int = 0
    _children: tuple[array[int], array[int]] | None = None

    def __repr__(self) -> str:
        return f"Portfolio(kind={self.kind!r}, items={self.n}, seed={self.seed})"

    # ------------------------------------------------------------------ construction
    @classmethod
    def generate(
        cls, kind: Kind = "jira", items: int = 1000, seed: int = 0, anchor: datetime | None = None
    ) -> Portfolio:
        """A deterministic portfolio of `items` items (100..1,000,000) for `seed`.

        `anchor` is "now" for the generated history (default: the current minute), so every
        timestamp lies in the past and relative JQL dates behave as on a live site.
        """
        from sandbox.generator import generate

        return generate(kind, items, seed, anchor)

    def finish(self) -> None:
        """Build the key index once the columns are filled."""
        n_projects = len(self.arts) + 1
        top = [0] * n_projects
        for i in range(self.n):
            p = self.project(i)
            top[p] = max(top[p], self.keynum[i])
        for old_art, old_num, _, _ in self.moves.values():
            top[old_art + 1] = max(top[old_art + 1], old_num)
        self.key_index = [array("i", [-1]) * (t + 1) for t in top]
        for i in range(self.n):
            self.key_index[self.project(i)][self.keynum[i]] = i
        for i, (old_art, old_num, _, _) in self.moves.items():
            self.key_alias[(old_art + 1, old_num)] = i
        self.next_keynum = [t + 1 for t in top]
        self._next_change_id = 10_000 + self.n * 10 + 1

    # ------------------------------------------------------------------ identity
    def external_id(self, i: int) -> str:
        return str(self.tracker_id(i))

    def tracker_id(self, i: int) -> int:
        return 10_000 + i if self.kind == "jira" else i + 1

    def index_of_id(self, tracker_id: int) -> int | None:
        i = tracker_id - 10_000 if self.kind == "jira" else tracker_id - 1
        return i if 0 <= i < self.n else None

    def project(self, i: int) -> int:
        """Jira project code: 0 is the portfolio project, ART projects follow."""
        return self.art[i] + 1

    def project_key(self, p: int) -> str:
        return "PORT" if p == 0 else self.arts[p - 1].key

    def key(self, i: int) -> str:
        """Jira issue key; Azure DevOps items have only their id."""
        if self.kind != "jira":
            return str(i + 1)
        return f"{self.project_key(self.project(i))}-{self.keynum[i]}"

    def find(self, id_or_key: str) -> int | None:
        """Index of a live or deleted item by tracker id or (current or former) key."""
        text = id_or_key.strip()
        if text.isdigit():
            return self.index_of_id(int(text))
        if "-" not in text:
            return None
        prefix, _, number = text.upper().rpartition("-")
        if not number.isdigit():
            return None
        num = int(number)
        for p in range(len(self.arts) + 1):
            if self.project_key(p) == prefix:
                index = self.key_index[p]
                if num < len(index) and index[num] >= 0:
                    return index[num]
                return self.key_alias.get((p, num))
        return None

    def is_deleted(self, i: int) -> bool:
        return bool(self.flags[i] & F_DELETED)

    def live(self) -> Iterator[int]:
        flags = self.flags
        return (i for i in range(self.n) if not flags[i] & F_DELETED)

    # ------------------------------------------------------------------ descriptive
    def itype(self, i: int) -> ItemType:
        return self.process.types[self.type_[i]]

    def status_of(self, i: int) -> Status:
        return self.process.statuses[self.status[i]]

    def portfolio_state(self, i: int) -> str | None:
        stage = self.stage[i]
        if stage < 0:
            return None
        return PORTFOLIO_STATES[stage] if stage < 6 else None

    def value(self, attr: str, i: int) -> float | None:
        v = self.num[attr][i]
        return None if math.isnan(v) else v

    def health_of(self, i: int) -> str | None:
        h = self.health[i]
        return HEALTH_VALUES[h] if h >= 0 else None

    def category_of(self, i: int) -> str | None:
        c = self.category[i]
        return CATEGORIES[c] if c >= 0 else None

    def team_name(self, i: int) -> str | None:
        t = self.team[i]
        return self.teams[t].name if t >= 0 else None

    def increment_name(self, i: int) -> str | None:
        p = self.pi[i]
        return self.increments[p].name if p >= 0 else None

    def summary(self, i: int) -> str:
        over = self.summaries.get(i)
        if over is not None:
            return over
        return _title(self, i)

    def labels(self, i: int) -> tuple[str, ...]:
        over = self.labels_over.get(i)
        if over is not None:
            return over
        return _labels(self, i)

    def description(self, i: int) -> str | None:
        if not self.flags[i] & F_DESCRIPTION:
            return None
        level = self.itype(i).level
        return pick(_DESCRIPTIONS[level], self.seed, i, 7)

    def rank_string(self, i: int) -> str:
        """A LexoRank-shaped string (bucket|fixed-width digits:) whose lexical order is the
        rank order; hex digits are a subset of LexoRank's base-36 alphabet."""
        return f"0|{int(self.rank[i]):012x}:"

    def children(self, i: int) -> list[int]:
        if self._children is None:
            self._children = self._build_children()
        starts, kids = self._children
        return [k for k in kids[starts[i] : starts[i + 1]] if not self.flags[k] & F_DELETED]

    def _build_children(self) -> tuple[array[int], array[int]]:
        counts = array("i", [0]) * (self.n + 1)
        for p in self.parent:
            if p >= 0:
                counts[p + 1] += 1
        for k in range(1, self.n + 1):
            counts[k] += counts[k - 1]
        fill = array("i", counts)
        kids = array("i", [0]) * (counts[self.n] or 1)
        for c, p in enumerate(self.parent):
            if p >= 0:
                kids[fill[p]] = c
                fill[p] += 1
        return counts, kids

    def history(self, i: int) -> list[ChangeEntry]:
        """Every change of the item, oldest first: generated past plus edits since."""
        from sandbox.history import base_history

        entries = base_history(self, i)
        entries.extend(self.extra.get(i, ()))
        return entries

    def revision(self, i: int) -> int:
        """Azure DevOps `rev`: one per saved change, starting at 1 for the creation."""
        from sandbox.history import base_history_length

        return 1 + base_history_length(self, i) + len(self.extra.get(i, ()))

    def original(self, i: int, attr: str, current: Any) -> Any:
        return self.orig.get(i, {}).get(attr, current)

    # ------------------------------------------------------------------ mutations
    def _remember(self, i: int, attr: str, value: Any) -> None:
        self.orig.setdefault(i, {}).setdefault(attr, value)

    def edit(
        self,
        i: int,
        *,
        author: int,
        at: int | None = None,
        attrs: dict[str, Any] | None = None,
        status: int | None = None,
        rank: float | None = None,
        move: tuple[int, int] | None = None,
    ) -> ChangeEntry | None:
        """Apply one edit as people and APIs make them: one changelog entry, one revision.

        `attrs` sets editable attributes, `status` transitions in the workflow (keeping the
        resolution consistent), `rank` stores a new rank value (smaller ranks higher) and
        `move=(art, team)` moves the item to another ART: on Jira a new key in that project
        with the same id, on Azure DevOps a new area path. Returns None when nothing changed.
        """
        with self.lock:
            if status is not None and status not in self.itype(i).statuses:
                raise ValueError(f"status {status} is not in the workflow of item {i}")
            items: list[ChangeItem] = []
            if move is not None and (move[0] != self.art[i] or move[1] != self.team[i]):
                items.extend(self._move(i, *move))
            for attr, value in (attrs or {}).items():
                old = self.get_attr(i, attr)
                if old == value or (attr == "labels" and tuple(old) == tuple(value)):
                    continue
                self._store(i, attr, value)
                items.append(ChangeItem(attr, old, value))
            if rank is not None and rank != self.rank[i]:
                items.append(ChangeItem("rank", self.rank[i], rank))
                self.rank[i] = rank
            old_status = self.status[i]
            if status is not None and status != old_status:
                for attr in ("status", "status_changed", "resolved", "stage"):
                    self._remember(i, attr, getattr(self, attr)[i])
                self.status[i] = status
                items.append(ChangeItem("status", old_status, status))
            if not items:
                return None
            when = max(at if at is not None else now_ms(), self.updated[i] + 1)
            self._remember(i, "updated", self.updated[i])
            if status is not None and status != old_status:
                self.status_changed[i] = when
                phase = self.process.statuses[status].phase
                closed = phase in ("done", "removed")
                if closed and self.resolved[i] < 0:
                    self.resolved[i] = when
                    items.append(ChangeItem("resolution", None, _resolution(phase)))
                elif not closed and self.resolved[i] >= 0:
                    self.resolved[i] = -1
                    items.append(ChangeItem("resolution", "Done", None))
                if self.stage[i] >= 0:
                    self.stage[i] = _stage_for(self, i, status)
            self._next_change_id += 1
            entry = ChangeEntry(self._next_change_id, when, author, tuple(items))
            self.extra.setdefault(i, []).append(entry)
            self.updated[i] = when
            self.ver[i] += 1
            self.version += 1
            return entry

    def set_attrs(
        self, i: int, values: dict[str, Any], *, author: int, at: int | None = None
    ) -> ChangeEntry | None:
        return self.edit(i, author=author, at=at, attrs=values)

    def set_attr(
        self, i: int, attr: str, value: Any, *, author: int, at: int | None = None
    ) -> ChangeEntry | None:
        return self.edit(i, author=author, at=at, attrs={attr: value})

    def transition(
        self, i: int, status_code: int, *, author: int, at: int | None = None
    ) -> ChangeEntry | None:
        return self.edit(i, author=author, at=at, status=status_code)

    def move(
        self, i: int, new_art: int, new_team: int, *, author: int, at: int | None = None
    ) -> ChangeEntry | None:
        return self.edit(i, author=author, at=at, move=(new_art, new_team))

    def set_rank(self, i: int, value: float, *, author: int) -> ChangeEntry | None:
        return self.edit(i, author=author, rank=value)

    def _store(self, i: int, attr: str, value: Any) -> None:
        if attr in NUMERIC_ATTRS:
            self._remember(i, attr, self.num[attr][i])
            self.num[attr][i] = math.nan if value is None else float(value)
        elif attr == "health":
            self.health[i] = -1 if value is None else HEALTH_VALUES.index(value)
        elif attr == "category":
            self.category[i] = -1 if value is None else CATEGORIES.index(value)
        elif attr == "priority":
            self._remember(i, "priority", self.priority[i])
            self.priority[i] = int(value)
        elif attr == "summary":
            self.summaries[i] = str(value)
        elif attr == "labels":
            self.labels_over[i] = tuple(value)
        elif attr == "flagged":
            if value:
                self.flags[i] |= F_FLAGGED
            else:
                self.flags[i] &= ~F_FLAGGED
        elif attr == "team":
            self._remember(i, "team", self.team[i])
            self.team[i] = -1 if value is None else int(value)
        elif attr == "increment":
            self.pi[i] = -1 if value is None else int(value)
        elif attr == "sprint":
            self.sprint[i] = -1 if value is None else int(value)
            if value is not None:
                self.pi[i] = self.sprints[int(value)].increment
        else:
            raise KeyError(attr)

    def get_attr(self, i: int, attr: str) -> Any:
        if attr in NUMERIC_ATTRS:
            return self.value(attr, i)
        if attr == "health":
            return self.health_of(i)
        if attr == "category":
            return self.category_of(i)
        if attr == "priority":
            return self.priority[i]
        if attr == "summary":
            return self.summary(i)
        if attr == "labels":
            return self.labels(i)
        if attr == "flagged":
            return bool(self.flags[i] & F_FLAGGED)
        if attr == "team":
            t = self.team[i]
            return None if t < 0 else t
        if attr == "increment":
            pi = self.pi[i]
            return None if pi < 0 else pi
        if attr == "sprint":
            sp = self.sprint[i]
            return None if sp < 0 else sp
        raise KeyError(attr)

    def _move(self, i: int, new_art: int, new_team: int) -> list[ChangeItem]:
        old_art, old_team = self.art[i], self.team[i]
        self._remember(i, "art", old_art)
        self._remember(i, "keynum", self.keynum[i])
        self._remember(i, "team", old_team)
        items = [
            ChangeItem(
                "team", old_team if old_team >= 0 else None, new_team if new_team >= 0 else None
            )
        ]
        if self.kind == "jira" and new_art != old_art:
            old_key = self.key(i)
            p_old, p_new = old_art + 1, new_art + 1
            num = self.next_keynum[p_new]
            self.next_keynum[p_new] += 1
            index = self.key_index[p_new]
            if num >= len(index):
                index.extend(array("i", [-1]) * max(num + 1 - len(index), 1024))
            index[num] = i
            self.key_index[p_old][self.keynum[i]] = -1
            self.key_alias[(p_old, self.keynum[i])] = i
            self.keynum[i] = num
            items = [
                ChangeItem("project", p_old, p_new),
                ChangeItem("key", old_key, f"{self.project_key(p_new)}-{num}"),
                ChangeItem("art", old_art, new_art),
                *items,
            ]
        elif new_art != old_art:
            items.insert(0, ChangeItem("art", old_art, new_art))
        self.art[i] = new_art
        self.team[i] = new_team
        if new_art != old_art:
            self.flags[i] |= F_MOVED
        return items

    def delete(self, i: int, *, author: int, at: int | None = None) -> None:
        with self.lock:
            if self.flags[i] & F_DELETED:
                return
            self.flags[i] |= F_DELETED
            self.deleted[i] = Deletion(at if at is not None else now_ms(), author)
            self.ver[i] += 1
            self.version += 1

    def restore(self, i: int, *, author: int) -> None:
        """Take an item out of the recycle bin (ADO)."""
        with self.lock:
            self.flags[i] &= ~F_DELETED
            self.deleted.pop(i, None)
            self.ver[i] += 1
            self.version += 1

    def rank_slots(self, anchor: int, before: bool, count: int) -> list[float]:
        """`count` increasing integral rank values right before (or after) `anchor`.

        The gap to the anchor's neighbour is split evenly; when it is too small the whole
        rank column is rebalanced first, as LexoRank does.
        """
        with self.lock:
            for _ in range(2):
                a = self.rank[anchor]
                if before:
                    lo = max((v for v in self.rank if v < a), default=a - (1 << 21))
                    lo_i, hi_i = math.floor(lo), math.floor(a)
                else:
                    hi = min((v for v in self.rank if v > a), default=a + (1 << 21))
                    lo_i, hi_i = math.ceil(a), math.ceil(hi)
                if hi_i - lo_i > count + 1:
                    step = (hi_i - lo_i) // (count + 1)
                    return [float(lo_i + step * (k + 1)) for k in range(count)]
                self._rebalance()
            raise RuntimeError("rank space exhausted")

    def _rebalance(self) -> None:
        order = sorted(range(self.n), key=self.rank.__getitem__)
        for pos, i in enumerate(order):
            self.rank[i] = float((pos + 1) << 20)
            self.ver[i] += 1
        self.version += 1

    def set_property(self, i: int, key: str, value: Any) -> bool:
        """Issue property; True when created. Properties don't touch `updated` (as in Jira)."""
        with self.lock:
            props = self.properties.setdefault(i, {})
            created = key not in props
            props[key] = value
            self.ver[i] += 1
            return created

    def delete_property(self, i: int, key: str) -> bool:
        with self.lock:
            props = self.properties.get(i, {})
            if key not in props:
                return False
            del props[key]
            self.ver[i] += 1
            return True


def _resolution(phase: str) -> str:
    return "Done" if phase == "done" else "Won't Do"


def _stage_for(p: Portfolio, i: int, status_code: int) -> int:
    """Portfolio Kanban stage after a transition: the status itself on Jira, derived on ADO."""
    name = p.process.statuses[status_code].name
    if p.kind == "jira":
        return JIRA_EPIC_STATUS.index(name) if name in JIRA_EPIC_STATUS else 0
    phase = p.process.statuses[status_code].phase
    if phase == "removed":
        return 6
    if phase == "done":
        return 5
    if phase == "doing":
        return 4
    return p.stage[i] if 0 <= p.stage[i] < 4 else 3


# ---------------------------------------------------------------------- derived text
_VERBS = ("Launch", "Modernise", "Automate", "Expand", "Simplify", "Secure", "Scale", "Rebuild")
_OBJECTS = (
    "instant payments",
    "customer onboarding",
    "card disputes",
    "loan origination",
    "fraud detection",
    "open banking APIs",
    "mobile wallet",
    "data lakehouse",
    "KYC checks",
    "merchant portal",
    "notification hub",
    "identity platform",
)
_AUDIENCES = ("for SME customers", "in the Nordics", "for private banking", "for partners", "")
_CAPS = (
    "Real-time risk scoring",
    "Self-service document upload",
    "Event streaming backbone",
    "Unified consent management",
    "Multi-currency ledger",
    "Observability platform",
    "Customer 360 profile",
    "Regulatory reporting pipeline",
)
_FEATURES = (
    "Pay-by-link checkout",
    "Biometric login",
    "Dispute status tracker",
    "Statement export to PDF",
    "Spending insights widget",
    "Partner sandbox keys",
    "Address verification",
    "Push notification preferences",
    "Audit trail search",
    "Bulk payment upload",
    "Card freeze toggle",
    "Savings goals",
)
_PERSONAS = ("customer", "advisor", "merchant", "auditor", "operator", "partner developer")
_ACTIONS = (
    "see my pending payments",
    "export the last 90 days",
    "reset my PIN in the app",
    "filter transactions by tag",
    "approve a batch in one step",
    "receive an alert on large debits",
    "download the API spec",
    "retry a failed transfer",
)
_BUGS = (
    "Timeout on statement download",
    "Wrong currency symbol in receipts",
    "Login loop after password reset",
    "Duplicate push notifications",
    "Rounding error in FX preview",
    "Crash when camera permission denied",
)
_ENABLERS = (
    "Upgrade TLS termination",
    "Migrate jobs to the event bus",
    "Add contract tests for the ledger API",
    "Spike: evaluate feature flags",
    "Split the customer service schema",
)
_OBJECTIVES = (
    "Release pay-by-link to 10% of merchants",
    "Cut onboarding drop-off by 15%",
    "Pass the PSD2 audit without findings",
    "Serve statements from the new platform",
    "Reduce P1 incidents to zero",
    "Enable partner self-service for sandbox keys",
)
_UNICODE = (
    "Größenabhängige Gebühren für Überweisungen – ½ Preis",
    "Ödeme onayı: müşteri bildirimi ✓",
    "Échéancier de prêt — aperçu mensuel",
    "日本語UIの支払い確認画面",
    "Zahlungsabgleich 🚀 für Großkunden (Phase ②)",
    "Støtte for ÆØÅ i kontonavn",
)
_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    level: (
        "Hypothesis: customers who can do this themselves call us less.",
        "Acceptance: works on iOS, Android and web; audit logged.",
        "Context: requested by three enterprise customers in the last PI.",
    )
    for level in ("theme", "epic", "capability", "feature", "story", "objective", "subtask")
}


def _title(p: Portfolio, i: int) -> str:
    h = mix(p.seed, i, 1)
    t = p.process.types[p.type_[i]]
    level = t.level
    # draw k of the title picks bits 10k.. of the hash
    h1 = h >> 10
    if level == "theme":
        theme = p.theme[i]
        base = p.themes[theme] if theme >= 0 else _OBJECTS[h % len(_OBJECTS)]
    elif level == "epic":
        audience = _AUDIENCES[(h >> 20) % len(_AUDIENCES)]
        base = f"{_VERBS[h % len(_VERBS)]} {_OBJECTS[h1 % len(_OBJECTS)]}" + (
            f" {audience}" if audience else ""
        )
    elif level == "capability":
        base = f"{_CAPS[h % len(_CAPS)]} ({_OBJECTS[h1 % len(_OBJECTS)]})"
    elif level == "feature":
        base = f"{_FEATURES[h % len(_FEATURES)]} – {_OBJECTS[h1 % len(_OBJECTS)]}"
    elif level == "objective":
        base = _OBJECTIVES[h % len(_OBJECTIVES)]
    elif t.name == "Bug":
        base = f"{_BUGS[h % len(_BUGS)]} ({_OBJECTS[h1 % len(_OBJECTS)]})"
    elif t.name == "Enabler":
        base = _ENABLERS[h % len(_ENABLERS)]
    else:
        persona = _PERSONAS[h % len(_PERSONAS)]
        article = "an" if persona[0] in "aeiou" else "a"
        base = f"As {article} {persona} I can {_ACTIONS[h1 % len(_ACTIONS)]}"
    flags = p.flags[i]
    if flags & F_UNICODE:
        base = f"{_UNICODE[(h >> 30) % len(_UNICODE)]}: {base}"
    if flags & F_LONG:
        filler = " – " + _UNICODE[(h >> 40) % len(_UNICODE)] + " · detail"
        while len(base) < 255:
            base += filler
        base = base[:255]
    return base


_LABELS = ("frontend", "backend", "api", "ux", "tech-debt", "compliance", "mobile", "data")
_NO_LABELS: tuple[str, ...] = ()
_UNCOMMITTED = ("uncommitted",)


def _label_set(count: int, first: int, second: int, escalated: bool) -> tuple[str, ...]:
    out = {_LABELS[k] for k in (first, second)[:count]}
    if escalated:
        out.add("customer-escalation")
    return tuple(sorted(out)) if out else _NO_LABELS


_LABEL_SETS = [
    _label_set(count, first, second, escalated)
    for escalated in (False, True)
    for second in range(8)
    for first in range(8)
    for count in range(4)
]
"""Every label set a story or feature can draw, by the bits of its hash (see `_labels`)."""


def _labels(p: Portfolio, i: int) -> tuple[str, ...]:
    level = p.process.types[p.type_[i]].level
    if level not in ("story", "feature"):
        return _UNCOMMITTED if p.flags[i] & F_UNCOMMITTED else _NO_LABELS
    h = mix(p.seed, i, 11)
    # count h % 3, labels from bits 8-10 and 12-14, an escalation one time in 50
    return _LABEL_SETS[h % 3 | (h >> 6) & 0x1C | (h >> 7) & 0xE0 | ((h >> 40) % 50 == 0) << 8]
