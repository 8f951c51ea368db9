"""Deterministic generation of a SAFe portfolio of any size from a seed.

Top-down: strategic themes, portfolio epics on the Kanban, capabilities (Jira), features of one
ART and PI, PI objectives, then stories, bugs and enablers in sprints. Status follows the plan
and the calendar (done features mostly have done stories, future sprints are mostly to do), and
every timestamp lies before the anchor ("now"). Rows are then renumbered in creation order, so
ids and keys grow with `created` as on a real site, and the real-site oddities are sprinkled
in: missing estimates, orphans, parents in another project, unicode and 255-character titles,
cancelled items, moved and deleted items.
"""

from __future__ import annotations

import math
import random
import unicodedata
from array import array
from bisect import bisect
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

from sandbox.hashing import mix
from sandbox.portfolio import (
    F_DELETED,
    F_DESCRIPTION,
    F_FLAGGED,
    F_LONG,
    F_UNCOMMITTED,
    F_UNICODE,
    MS_DAY,
    MS_HOUR,
    MS_MINUTE,
    NUMERIC_ATTRS,
    Art,
    Deletion,
    Increment,
    Portfolio,
    Sprint,
    Team,
    User,
)
from sandbox.process import (
    ADO_EPIC_STATE,
    ARTS,
    FIRST_NAMES,
    JIRA_EPIC_STATUS,
    LAST_NAMES,
    TEAM_NAMES,
    THEMES,
    Kind,
    Phase,
    Process,
    process_for,
)

MIN_ITEMS = 100
MAX_ITEMS = 1_000_000
FIB = (1, 2, 3, 5, 8, 13, 20)
POINTS = (1, 2, 3, 5, 8, 13)
POINT_WEIGHTS = tuple(accumulate((10, 20, 25, 22, 15, 8)))
BOT_EMAIL = "lpm-sync@example.com"
_PI_WEIGHT = {-4: 0.6, -3: 0.7, -2: 0.8, -1: 1.0, 0: 2.5, 1: 1.5}
"""Features lean towards the current PI, where the portfolio is busiest."""


def _first_monday(year: int, month: int) -> date:
    d = date(year, month, 1)
    return d + timedelta(days=(7 - d.weekday()) % 7)


def _day_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def increments_around(anchor: date) -> tuple[list[Increment], int]:
    """Quarterly PIs (first Monday of the quarter, 10 + 1 weeks): four past, current, next."""
    quarters: list[tuple[int, int]] = []
    year, q = anchor.year, (anchor.month - 1) // 3 + 1
    if _first_monday(year, 3 * q - 2) > anchor:
        year, q = (year, q - 1) if q > 1 else (year - 1, 4)
    current = (year, q)
    y, qq = current
    for _ in range(4):
        y, qq = (y, qq - 1) if qq > 1 else (y - 1, 4)
    for _ in range(6):
        quarters.append((y, qq))
        y, qq = (y, qq + 1) if qq < 4 else (y + 1, 1)
    out = []
    for index, (y, qq) in enumerate(quarters):
        start = _first_monday(y, 3 * qq - 2)
        end = start + timedelta(days=74)
        out.append(
            Increment(
                index,
                f"PI {y % 100:02d}.{qq}",
                start,
                end,
                _day_ms(start),
                _day_ms(end) + MS_DAY,
            )
        )
    return out, 4


class _Cols:
    """Row-wise appends into per-column lists during generation."""

    def __init__(self) -> None:
        self.type_: list[int] = []
        self.status: list[int] = []
        self.art: list[int] = []
        self.team: list[int] = []
        self.pi: list[int] = []
        self.sprint: list[int] = []
        self.parent: list[int] = []
        self.created: list[int] = []
        self.status_changed: list[int] = []
        self.resolved: list[int] = []
        self.updated: list[int] = []
        self.num: dict[str, list[float]] = {a: [] for a in NUMERIC_ATTRS}
        self.health: list[int] = []
        self.category: list[int] = []
        self.priority: list[int] = []
        self.assignee: list[int] = []
        self.flags: list[int] = []
        self.stage: list[int] = []
        self.theme: list[int] = []
        self.start_day: list[int] = []
        self.target_day: list[int] = []
        self.phase: list[str] = []
        self._other_nums = [self.num[a] for a in NUMERIC_ATTRS if a != "estimate"]

    def __len__(self) -> int:
        return len(self.type_)

    def add_story(
        self,
        type_: int,
        status: int,
        phase: str,
        art: int,
        team: int,
        pi: int,
        sprint: int,
        parent: int,
        created: int,
        changed: int,
        resolved: int,
        estimate: float,
        priority: int,
        assignee: int,
        flags: int,
    ) -> None:
        """The hot path of generation (most items are stories): positional, no dicts."""
        self.type_.append(type_)
        self.status.append(status)
        self.phase.append(phase)
        self.art.append(art)
        self.team.append(team)
        self.pi.append(pi)
        self.sprint.append(sprint)
        self.parent.append(parent)
        self.created.append(created)
        self.status_changed.append(changed)
        self.resolved.append(resolved)
        self.updated.append(changed)
        self.num["estimate"].append(estimate)
        for column in self._other_nums:
            column.append(math.nan)
        self.health.append(-1)
        self.category.append(-1)
        self.priority.append(priority)
        self.assignee.append(assignee)
        self.flags.append(flags)
        self.stage.append(-1)
        self.theme.append(-1)
        self.start_day.append(-1)
        self.target_day.append(-1)

    def add(
        self,
        *,
        type_: int,
        status: int,
        phase: str,
        art: int = -1,
        team: int = -1,
        pi: int = -1,
        sprint: int = -1,
        parent: int = -1,
        created: int,
        status_changed: int,
        resolved: int = -1,
        values: dict[str, float] | None = None,
        category: int = -1,
        priority: int = 2,
        assignee: int = -1,
        flags: int = 0,
        stage: int = -1,
        theme: int = -1,
        start_day: int = -1,
        target_day: int = -1,
    ) -> int:
        self.type_.append(type_)
        self.status.append(status)
        self.phase.append(phase)
        self.art.append(art)
        self.team.append(team)
        self.pi.append(pi)
        self.sprint.append(sprint)
        self.parent.append(parent)
        self.created.append(created)
        self.status_changed.append(status_changed)
        self.resolved.append(resolved)
        self.updated.append(status_changed)
        for attr in NUMERIC_ATTRS:
            self.num[attr].append(values.get(attr, math.nan) if values else math.nan)
        self.health.append(-1)
        self.category.append(category)
        self.priority.append(priority)
        self.assignee.append(assignee)
        self.flags.append(flags)
        self.stage.append(stage)
        self.theme.append(theme)
        self.start_day.append(start_day)
        self.target_day.append(target_day)
        return len(self.type_) - 1


class _Generator:
    def __init__(self, kind: Kind, items: int, seed: int, anchor: datetime):
        self.kind = kind
        self.items = items
        self.seed = seed
        self.rnd = random.Random(f"portfolio:{kind}:{seed}")
        self.process: Process = process_for(kind)
        self.anchor_ms = int(anchor.timestamp() * 1000)
        self.latest = self.anchor_ms - MS_MINUTE
        self.increments, self.current = increments_around(anchor.date())
        self.c = _Cols()
        self.span: dict[int, tuple[int, int]] = {}
        self._org()

    # ------------------------------------------------------------------ organisation
    def _org(self) -> None:
        rnd, items = self.rnd, self.items
        n_arts = 3 if items < 50_000 else min(len(ARTS), 3 + items // 200_000)
        self.arts = [Art(k, key, name) for k, (key, name) in enumerate(ARTS[:n_arts])]
        per_art = min(8, max(3, items // (n_arts * 12_000)))
        self.teams: list[Team] = []
        for a in self.arts:
            for _ in range(per_art):
                code = len(self.teams)
                base = TEAM_NAMES[code % len(TEAM_NAMES)]
                name = f"Team {base}" + (f" {code // len(TEAM_NAMES) + 1}" if code >= 42 else "")
                self.teams.append(Team(code, name, a.code, _uuid(self.seed, 900 + code)))
        self.users = [
            User(0, "LPM Sync", BOT_EMAIL, _account(self.seed, 0), -1, _uuid(self.seed, 0))
        ]
        team_members: list[list[int]] = [[] for _ in self.teams]
        for t in self.teams:
            for _ in range(6):
                team_members[t.code].append(self._user(t.code))
        self.portfolio_people = [self._user(-1) for _ in range(6)]
        self.team_members = team_members
        self.team_by_art = [[t.code for t in self.teams if t.art == a.code] for a in self.arts]
        themes = list(THEMES)
        rnd.shuffle(themes)
        self.themes = themes
        self.sprints: list[Sprint] = []
        self.sprint_index: dict[tuple[int, int, int], int] = {}
        for pi in self.increments:
            yyq = pi.name.removeprefix("PI ")
            for a in self.arts:
                for k in range(1, 7):
                    start = pi.start_ms + (k - 1) * 14 * MS_DAY
                    end = min(start + 14 * MS_DAY, pi.end_ms) if k < 6 else pi.end_ms
                    name = f"{a.key} Sprint {yyq}.{k}" if k < 6 else f"{a.key} IP {yyq}"
                    code = len(self.sprints)
                    self.sprints.append(Sprint(code, a.code, pi.index, k, name, start, end))
                    self.sprint_index[(a.code, pi.index, k)] = code

    def _user(self, team: int) -> int:
        code = len(self.users)
        h = mix(self.seed, 77, code)
        first = FIRST_NAMES[h % len(FIRST_NAMES)]
        last = LAST_NAMES[(h >> 16) % len(LAST_NAMES)]
        email = f"{_ascii(first)}.{_ascii(last)}{code}@example.com".lower()
        self.users.append(
            User(
                code,
                f"{first} {last}",
                email,
                _account(self.seed, code),
                team,
                _uuid(self.seed, code),
            )
        )
        return code

    # ------------------------------------------------------------------ helpers
    def clamp(self, t: int, lo: int | None = None, hi: int | None = None) -> int:
        """`t` when it lies before `hi` (default: now), else a random moment in [lo, hi).

        Plans reaching past "now" (future sprints, next PI) become events of the recent past,
        spread out rather than piled up at the anchor, as on a live site.
        """
        hi = self.latest if hi is None else hi
        if t <= hi:
            return t
        lo = hi - 14 * MS_DAY if lo is None else min(lo, hi - MS_MINUTE)
        return lo + int(self.rnd.random() * (hi - lo))

    def jitter(self) -> int:
        """A time of day in office hours (07:00-18:00 UTC), so timestamps aren't midnights."""
        return 7 * MS_HOUR + int(self.rnd.random() * 11 * MS_HOUR)

    def status_for(self, type_code: int, phase: Phase, doing_alt: float = 0.3) -> int:
        """A status of the workflow in the phase; ADO has no removed state for bugs."""
        options = self.process.in_phase(type_code, phase)
        if not options:
            options = self.process.in_phase(type_code, "done")
        if len(options) == 1:
            return options[0]
        if phase == "done" and self.kind == "azure_devops":
            closed = [o for o in options if self.process.statuses[o].name == "Closed"]
            return closed[0] if self.rnd.random() > 0.15 or not closed else options[0]
        return options[0] if self.rnd.random() > doing_alt else options[1]

    def fib(self, missing: float) -> float:
        return math.nan if self.rnd.random() < missing else float(self.rnd.choice(FIB))

    def wsjf_inputs(self, missing: float) -> dict[str, float]:
        if self.rnd.random() < missing:
            return {}
        return {
            "business_value": self.fib(0.02),
            "time_criticality": self.fib(0.04),
            "risk_reduction": self.fib(0.06),
            "job_size": self.fib(0.05),
        }

    def category(self) -> int:
        r = self.rnd.random()
        return 0 if r < 0.6 else (1 if r < 0.85 else 2)

    def priority(self) -> int:
        r = self.rnd.random()
        return 2 if r < 0.6 else (1 if r < 0.8 else (3 if r < 0.92 else (0 if r < 0.96 else 4)))

    def day(self, ms: int) -> int:
        return ms // MS_DAY

    # ------------------------------------------------------------------ levels
    def run(self) -> Portfolio:
        items = self.items
        jira = self.kind == "jira"
        n_theme = min(12, 3 + items // 100_000) if jira else 0
        n_epic = max(4, items // 100)
        n_cap = max(4, items // 50) if jira else 0
        n_feat = max(10, items // 12)
        n_obj = min(len(self.teams) * 6 * 4, max(6, items // 100))
        n_low = items - n_theme - n_epic - n_cap - n_feat - n_obj
        themes = self.gen_themes(n_theme)
        epics = self.gen_epics(n_epic, themes)
        caps = self.gen_capabilities(n_cap, epics) if jira else epics
        feats = self.gen_features(n_feat, caps)
        self.gen_objectives(n_obj)
        self.gen_stories(n_low, feats)
        self.edge_cases()
        return self.assemble()

    def gen_themes(self, n: int) -> list[int]:
        c, t = self.c, self.process.type_named("Strategic Theme").code if n else 0
        out = []
        for k in range(n):
            phase: Phase = "doing" if k != 3 else "done"
            created = self.anchor_ms - (400 + self.rnd.randint(0, 300)) * MS_DAY + self.jitter()
            changed = created + self.rnd.randint(5, 60) * MS_DAY + self.jitter()
            out.append(
                c.add(
                    type_=t,
                    status=self.status_for(t, phase, 0.0),
                    phase=phase,
                    created=created,
                    status_changed=changed,
                    resolved=changed if phase == "done" else -1,
                    assignee=self.rnd.choice(self.portfolio_people),
                    theme=k % len(self.themes),
                )
            )
        return out

    def gen_epics(self, n: int, themes: list[int]) -> list[int]:
        c, rnd, incs, cur = self.c, self.rnd, self.increments, self.current
        t = self.process.types_at("epic")[0].code
        forced = [4, 5, 0, 6, 3, 1, 2]
        weights = tuple(accumulate((10, 8, 10, 12, 40, 15, 5)))
        out = []
        for k in range(n):
            stage = forced[k] if k < len(forced) else bisect(weights, rnd.random() * weights[-1])
            span = (-1, -1)
            if stage == 4:
                s = rnd.randint(0, cur)
                span = (s, rnd.randint(max(s, cur), cur + 1))
            elif stage == 5:
                s = rnd.randint(0, cur - 1)
                span = (s, rnd.randint(s, cur - 1))
            elif stage == 6:
                s = rnd.randint(0, cur - 1)
                span = (s, min(s + rnd.randint(0, 1), cur))
            elif stage == 3:
                span = (cur + 1, cur + 1)
            if span[0] >= 0:
                created = incs[span[0]].start_ms - rnd.randint(14, 120) * MS_DAY
            else:
                created = self.anchor_ms - rnd.randint(2, 200) * MS_DAY
            created = self.clamp(created + self.jitter(), hi=self.latest - 8 * MS_HOUR)
            if stage == 4:
                changed = incs[span[0]].start_ms + rnd.randint(0, 14) * MS_DAY
            elif stage in (5, 6):
                end = incs[span[1]]
                changed = end.end_ms - rnd.randint(1, 10) * MS_DAY
            elif stage == 0:
                changed = created
            else:
                changed = created + rnd.randint(1, 30) * MS_DAY
            changed = self.clamp(max(changed + self.jitter(), created + MS_HOUR), created + MS_HOUR)
            if stage == 0:
                changed = created
            phase: Phase = "todo" if stage < 4 else ("doing" if stage == 4 else "done")
            if stage == 6:
                phase = "removed"
            if self.kind == "jira":
                status = self.process.status_named(t, JIRA_EPIC_STATUS[stage]).code
            else:
                status = self.process.status_named(t, ADO_EPIC_STATE[stage]).code
            theme = rnd.randrange(len(self.themes))
            parent = themes[theme % len(themes)] if themes and rnd.random() > 0.1 else -1
            if parent >= 0 and created <= c.created[parent]:
                created = c.created[parent] + MS_HOUR
                changed = max(changed, created) if stage else created
            out.append(
                c.add(
                    type_=t,
                    status=status,
                    phase=phase,
                    parent=parent,
                    created=created,
                    status_changed=changed,
                    resolved=changed if phase in ("done", "removed") else -1,
                    values=self.wsjf_inputs(0.5 if stage == 0 else 0.05),
                    category=self.category() if rnd.random() > 0.03 else -1,
                    priority=self.priority(),
                    assignee=rnd.choice(self.portfolio_people),
                    stage=stage,
                    theme=theme,
                    start_day=self.day(incs[span[0]].start_ms) if span[0] >= 0 else -1,
                    target_day=self.day(incs[span[1]].end_ms - MS_DAY) if span[1] >= 0 else -1,
                    flags=F_DESCRIPTION if rnd.random() < 0.6 else 0,
                )
            )
            self.span[out[-1]] = span
        return out

    def _child_phase(self, parent_phase: str, start: int, end: int) -> Phase:
        rnd, cur = self.rnd, self.current
        if parent_phase == "removed":
            return "removed" if rnd.random() < 0.5 else "done"
        if parent_phase == "done":
            return "done" if rnd.random() < 0.93 else "removed"
        if end < cur:
            return "done" if rnd.random() < 0.85 else ("doing" if rnd.random() < 0.7 else "removed")
        if start > cur:
            return "todo"
        return "doing" if rnd.random() < 0.8 else "todo"

    def _times(self, phase: str, start_pi: int, end_pi: int, created: int) -> tuple[int, int]:
        """(status_changed, resolved) for a planned item spanning PIs."""
        rnd, incs = self.rnd, self.increments
        if phase == "todo":
            return created, -1
        if phase == "doing":
            t = incs[start_pi].start_ms + rnd.randint(0, 20) * MS_DAY + self.jitter()
            return self.clamp(max(t, created + MS_HOUR), created + MS_HOUR), -1
        end = incs[end_pi]
        lo = max(created + MS_HOUR, incs[start_pi].start_ms)
        hi = min(end.end_ms - MS_HOUR, self.latest)
        if phase == "done":
            t = hi - rnd.randint(0, 10) * MS_DAY - self.jitter()
        else:
            t = lo + int(rnd.random() * max(hi - lo, MS_HOUR))
        t = self.clamp(max(t, lo), lo)
        return t, t

    def gen_capabilities(self, n: int, epics: list[int]) -> list[int]:
        c, rnd, incs = self.c, self.rnd, self.increments
        t = self.process.type_named("Capability").code
        parents = [e for e in epics if self.span[e][0] >= 0] or epics
        out = []
        for k in range(n):
            orphan = rnd.random() < 0.03 and k > 0
            parent = (
                -1
                if orphan
                else parents[k % len(parents)]
                if k < len(parents)
                else rnd.choice(parents)
            )
            if parent >= 0 and self.span[parent][0] >= 0:
                ps, pe = self.span[parent]
            else:
                ps = rnd.randint(0, self.current)
                pe = rnd.randint(ps, self.current + 1)
            start = rnd.randint(ps, pe)
            end = rnd.randint(start, pe)
            parent_phase = c.phase[parent] if parent >= 0 else "doing"
            phase = self._child_phase(parent_phase, start, end)
            created = self.clamp(
                max(
                    incs[start].start_ms - rnd.randint(7, 60) * MS_DAY + self.jitter(),
                    c.created[parent] + MS_HOUR if parent >= 0 else 0,
                ),
                c.created[parent] + MS_HOUR if parent >= 0 else None,
                hi=self.latest - 6 * MS_HOUR,
            )
            changed, resolved = self._times(phase, start, end, created)
            idx = c.add(
                type_=t,
                status=self.status_for(t, phase),
                phase=phase,
                parent=parent,
                created=created,
                status_changed=changed,
                resolved=resolved,
                values=self.wsjf_inputs(0.1),
                category=c.category[parent]
                if parent >= 0 and rnd.random() < 0.9
                else self.category(),
                priority=self.priority(),
                assignee=rnd.choice(self.portfolio_people),
                start_day=self.day(incs[start].start_ms),
                target_day=self.day(incs[end].end_ms - MS_DAY),
                flags=F_DESCRIPTION if rnd.random() < 0.4 else 0,
            )
            self.span[idx] = (start, end)
            out.append(idx)
        return out

    def gen_features(self, n: int, parents_all: list[int]) -> list[int]:
        c, rnd, incs = self.c, self.rnd, self.increments
        t = self.process.type_named("Feature").code
        parents = [p for p in parents_all if self.span.get(p, (-1, -1))[0] >= 0] or parents_all
        out = []
        n_arts = len(self.arts)
        for k in range(n):
            orphan = rnd.random() < 0.04 and k > 1
            parent = (
                -1
                if orphan
                else parents[k % len(parents)]
                if k < len(parents)
                else rnd.choice(parents)
            )
            if parent >= 0:
                ps, pe = self.span[parent]
            else:
                ps, pe = 0, self.current + 1
            pis = range(ps, pe + 1)
            pi = rnd.choices(pis, weights=[_PI_WEIGHT[p - self.current] for p in pis])[0]
            parent_phase = c.phase[parent] if parent >= 0 else "doing"
            if parent_phase in ("done", "removed"):
                phase = self._child_phase(parent_phase, pi, pi)
            elif pi < self.current:
                r = rnd.random()
                phase = (
                    "done"
                    if r < 0.85
                    else ("doing" if r < 0.93 else ("removed" if r < 0.97 else "todo"))
                )
            elif pi == self.current:
                r = rnd.random()
                phase = "doing" if r < 0.6 else ("todo" if r < 0.85 else "done")
            else:
                phase = "todo"
            art = k % n_arts if k < n_arts else rnd.randrange(n_arts)
            base = incs[pi].start_ms - rnd.randint(7, 60) * MS_DAY + self.jitter()
            created = self.clamp(
                max(base, c.created[parent] + MS_HOUR if parent >= 0 else 0),
                c.created[parent] + MS_HOUR if parent >= 0 else None,
                hi=self.latest - 4 * MS_HOUR,
            )
            changed, resolved = self._times(phase, pi, pi, created)
            if phase == "done" and pi == self.current:
                changed = resolved = self.clamp(
                    max(created + MS_HOUR, incs[pi].start_ms + rnd.randint(1, 40) * MS_DAY),
                    created + MS_HOUR,
                )
            flags = F_DESCRIPTION if rnd.random() < 0.3 else 0
            if phase == "doing" and rnd.random() < 0.03:
                flags |= F_FLAGGED
            idx = c.add(
                type_=t,
                status=self.status_for(t, phase),
                phase=phase,
                parent=parent,
                art=art,
                pi=pi,
                created=created,
                status_changed=changed,
                resolved=resolved,
                values=self.wsjf_inputs(0.12),
                category=c.category[parent]
                if parent >= 0 and rnd.random() < 0.85
                else self.category(),
                priority=self.priority(),
                assignee=rnd.choice(self.team_members[rnd.choice(self.team_by_art[art])]),
                start_day=self.day(incs[pi].start_ms),
                target_day=self.day(incs[pi].end_ms - MS_DAY),
                flags=flags,
            )
            self.span[idx] = (pi, pi)
            out.append(idx)
        return out

    def gen_objectives(self, n: int) -> None:
        c, rnd, incs, cur = self.c, self.rnd, self.increments, self.current
        t = self.process.type_named("PI Objective").code
        teams = self.teams
        for k in range(n):
            team = teams[k % len(teams)]
            pi = (cur + 1 - (k // len(teams)) % 6) % 6
            planned = float(rnd.choice((3, 5, 7, 8, 8, 10, 10, 10)))
            uncommitted = rnd.random() < 0.2
            phase: Phase = "done" if pi < cur else ("doing" if pi == cur else "todo")
            values = {"planned_value": planned}
            if pi < cur:
                achieved = planned * (0.45 + 0.6 * rnd.random())
                values["actual_value"] = float(max(0, min(10, round(achieved))))
            created = self.clamp(
                incs[pi].start_ms - 3 * MS_DAY + rnd.randint(0, 10) * MS_HOUR,
                hi=self.latest - 2 * MS_HOUR,
            )
            if phase == "done":
                changed = self.clamp(
                    incs[pi].end_ms - MS_DAY + rnd.randint(0, 8) * MS_HOUR, created
                )
            elif phase == "doing":
                changed = self.clamp(incs[pi].start_ms + rnd.randint(0, 48) * MS_HOUR, created)
            else:
                changed = created
            c.add(
                type_=t,
                status=self.status_for(t, phase, 0.0),
                phase=phase,
                art=team.art,
                team=team.code,
                pi=pi,
                created=created,
                status_changed=max(changed, created),
                resolved=max(changed, created) if phase == "done" else -1,
                values=values,
                assignee=rnd.choice(self.team_members[team.code]),
                flags=F_UNCOMMITTED if uncommitted else 0,
            )

    def gen_stories(self, n: int, feats: list[int]) -> None:
        c, rnd, cur = self.c, self.rnd, self.current
        proc = self.process
        kinds = proc.types_at("story")
        story_t = kinds[0].code
        bug_t = next(k.code for k in kinds if k.name == "Bug")
        enabler_t = next((k.code for k in kinds if k.name == "Enabler"), story_t)
        weights = [(0.5 if c.phase[f] == "todo" else 1.0) * (0.5 + rnd.random()) for f in feats]
        assigned = rnd.choices(feats, weights=weights, k=n)
        anchor = self.anchor_ms
        n_arts = len(self.arts)
        status_cache: dict[tuple[int, str, int], int] = {}

        def status(tc: int, phase: str, alt: int) -> int:
            key = (tc, phase, alt)
            code = status_cache.get(key)
            if code is None:
                options = proc.in_phase(tc, phase)  # type: ignore[arg-type]
                if not options:
                    options = proc.in_phase(tc, "done")
                code = options[min(alt, len(options) - 1)]
                status_cache[key] = code
            return code

        latest = self.latest
        rand = rnd.random
        team_by_art, team_members = self.team_by_art, self.team_members
        sprint_index, sprints = self.sprint_index, self.sprints
        ado = self.kind == "azure_devops"
        add = c.add_story
        c_art, c_pi, c_phase, c_created = c.art, c.pi, c.phase, c.created
        for k in range(n):
            r = rand()
            tc = story_t if r < 0.75 else (bug_t if r < 0.9 else enabler_t)
            if rand() < 0.06 and k > 2:
                parent, art = -1, int(rand() * n_arts)
                pi = max(0, cur - 2) + int(rand() * (cur - max(0, cur - 2) + 1))
                fphase = "doing"
            else:
                parent = assigned[k]
                art, pi, fphase = c_art[parent], c_pi[parent], c_phase[parent]
            teams = team_by_art[art]
            team = teams[int(rand() * len(teams))]
            number = 6 if rand() < 0.03 else 1 + int(rand() * 5)
            sp = sprint_index[(art, pi, number)]
            sprint = sprints[sp]
            state = sprint.state(anchor)
            r = rand()
            if fphase == "done":
                phase = "done" if r < 0.95 else ("removed" if r < 0.98 else "todo")
            elif fphase == "removed":
                phase = "removed" if r < 0.6 else ("done" if r < 0.9 else "todo")
            elif fphase == "todo":
                phase = "todo" if r < 0.97 else "doing"
            elif pi < cur:
                phase = "done" if r < 0.6 else ("doing" if r < 0.8 else "todo")
            elif state == "closed":
                phase = "done" if r < 0.85 else ("doing" if r < 0.95 else "todo")
            elif state == "active":
                phase = "done" if r < 0.3 else ("doing" if r < 0.8 else "todo")
            else:
                phase = "todo" if r < 0.95 else "doing"
            start = sprint.start_ms
            length = sprint.end_ms - start
            created = start - int(rand() * 21 * MS_DAY)
            if created > latest - MS_HOUR:  # planned for a future sprint, written down lately
                created = latest - MS_HOUR - int(rand() * 14 * MS_DAY)
            if parent >= 0 and created <= c_created[parent]:
                created = c_created[parent] + MS_MINUTE
            if phase == "todo":
                changed, resolved = created, -1
            else:
                if phase == "doing":
                    t = max(start + int(rand() * 0.6 * length), created + MS_HOUR)
                else:
                    t = max(start + int((0.2 + 0.8 * rand()) * length), created + MS_HOUR)
                if t > latest:
                    t = created + int(rand() * (latest - created))
                changed = t
                resolved = t if phase != "doing" else -1
            alt = 1 if (phase == "doing" and rand() < 0.35) else 0
            if phase == "done" and ado:
                alt = 0 if rand() < 0.15 else 1
            est_missing = 0.07 if tc == story_t else (0.35 if tc == bug_t else 0.1)
            est = (
                math.nan
                if rand() < est_missing
                else float(POINTS[bisect(POINT_WEIGHTS, rand() * POINT_WEIGHTS[-1])])
            )
            flags = F_DESCRIPTION if rand() < 0.25 else 0
            if phase == "doing" and rand() < 0.02:
                flags |= F_FLAGGED
            if phase == "todo" and rand() < 0.5:
                assignee = -1
            else:
                members = team_members[team]
                assignee = members[int(rand() * len(members))]
            if phase == "todo" and state == "future" and rand() >= 0.7:
                sp = -1
            r = rand()
            priority = (
                2 if r < 0.6 else (1 if r < 0.8 else (3 if r < 0.92 else (0 if r < 0.96 else 4)))
            )
            add(
                tc,
                status(tc, phase, alt),
                phase,
                art,
                team,
                pi,
                sp,
                parent,
                created,
                changed,
                resolved,
                est,
                priority,
                assignee,
                flags,
            )

    # ------------------------------------------------------------------ oddities
    def edge_cases(self) -> None:
        c, rnd = self.c, self.rnd
        n = len(c)
        level = [self.process.types[t].level for t in c.type_]
        stories = [i for i in range(n) if level[i] == "story"]
        has_child = set(p for p in c.parent if p >= 0)
        leaves = [i for i in stories if i not in has_child]
        # a parent in another project: the story's ART differs from its feature's
        with_parent = [i for i in stories if c.parent[i] >= 0]
        for i in rnd.sample(with_parent, min(len(with_parent), max(1, n // 300))):
            other = (c.art[c.parent[i]] + 1 + rnd.randrange(len(self.arts) - 1)) % len(self.arts)
            c.art[i] = other
            c.team[i] = rnd.choice(self.team_by_art[other])
            c.sprint[i] = (
                self.sprint_index[(other, c.pi[i], self.sprints[c.sprint[i]].number)]
                if c.sprint[i] >= 0
                else -1
            )
        for i in rnd.sample(range(n), max(2, n // 200)):
            c.flags[i] |= F_UNICODE
        longs = [i for i in range(n) if level[i] in ("epic", "feature", "story")]
        for i in rnd.sample(longs, max(2, n // 1000)):
            c.flags[i] |= F_LONG
        # updates after the last transition: comments, re-estimates, priority changes
        for i in range(n):
            base = c.status_changed[i]
            if rnd.random() < (0.1 if c.resolved[i] >= 0 else 0.3):
                c.updated[i] = min(base + int(rnd.random() * (self.latest - base)), self.latest)
            else:
                c.updated[i] = base
        # a handful of stale human values in the write-back fields
        for i in range(n):
            if level[i] in ("epic", "feature") and rnd.random() < 0.03:
                c.num["wsjf"][i] = float(round(rnd.uniform(0.5, 12.0), 1))
                c.health[i] = rnd.randrange(3)
        # moved between projects (new key, same id), keep the list for key assignment
        candidates = [i for i in leaves if c.parent[i] >= 0]
        self.moved: dict[int, tuple[int, int, int]] = {}
        for i in rnd.sample(candidates, min(len(candidates), max(1, n // 1000))):
            old_art, old_team = c.art[i], c.team[i]
            new_art = (old_art + 1 + rnd.randrange(len(self.arts) - 1)) % len(self.arts)
            lo, hi = c.created[i] + MS_HOUR, max(c.updated[i], c.created[i] + 2 * MS_HOUR)
            when = min(lo + int(rnd.random() * (hi - lo)), self.latest)
            c.updated[i] = max(c.updated[i], when)
            c.art[i] = new_art
            c.team[i] = rnd.choice(self.team_by_art[new_art])
            c.sprint[i] = -1
            self.moved[i] = (old_art, old_team, when)
        # deleted items (gone from Jira, in the ADO recycle bin)
        pool = [i for i in leaves if i not in self.moved]
        self.deleted = set(rnd.sample(pool, min(len(pool), max(2, n // 500))))
        for i in self.deleted:
            c.flags[i] |= F_DELETED

    # ------------------------------------------------------------------ assembly
    def assemble(self) -> Portfolio:
        c = self.c
        n = len(c)
        order = sorted(range(n), key=c.created.__getitem__)
        pos = array("i", [0]) * n
        for new, old in enumerate(order):
            pos[old] = new

        def col(typecode: str, values: list[int]) -> array[int]:
            return array(typecode, map(values.__getitem__, order))

        parents = c.parent
        parent = array("i", [pos[parents[o]] if parents[o] >= 0 else -1 for o in order])
        ranks = list(range(n))
        self.rnd.shuffle(ranks)
        rank = array("d", [float((ranks[k] + 1) << 20) for k in range(n)])
        p = Portfolio(
            kind=self.kind,
            seed=self.seed,
            anchor_ms=self.anchor_ms,
            process=self.process,
            increments=self.increments,
            current_pi=self.current,
            sprints=self.sprints,
            arts=self.arts,
            teams=self.teams,
            users=self.users,
            themes=self.themes,
            n=n,
            type_=col("B", c.type_),
            status=col("B", c.status),
            art=col("b", c.art),
            team=col("h", c.team),
            pi=col("b", c.pi),
            sprint=col("i", c.sprint),
            keynum=array("i", [0]) * n,
            parent=parent,
            created=col("q", c.created),
            updated=col("q", c.updated),
            status_changed=col("q", c.status_changed),
            resolved=col("q", c.resolved),
            num={a: array("d", map(c.num[a].__getitem__, order)) for a in NUMERIC_ATTRS},
            health=col("b", c.health),
            category=col("b", c.category),
            priority=col("B", c.priority),
            assignee=col("h", c.assignee),
            flags=col("B", c.flags),
            stage=col("b", c.stage),
            theme=col("b", c.theme),
            start_day=col("i", c.start_day),
            target_day=col("i", c.target_day),
            rank=rank,
            ver=array("I", [0]) * n,
        )
        self._keys(p, pos)
        for old in self.deleted:
            i = pos[old]
            when = min(p.updated[i] + int(self.rnd.random() * 5 * MS_DAY), self.latest)
            p.deleted[i] = Deletion(when, p.assignee[i] if p.assignee[i] >= 0 else 1)
        p.finish()
        return p

    def _keys(self, p: Portfolio, pos: array[int]) -> None:
        """Key numbers per project in creation order; a moved item gets a second key later."""
        counters = [0] * (len(self.arts) + 1)
        moves = sorted(
            (when, pos[old], old_art, old_team)
            for old, (old_art, old_team, when) in self.moved.items()
        )
        moved_now = {i: (old_art, old_team, when) for when, i, old_art, old_team in moves}
        m = 0
        for i in range(p.n):
            created = p.created[i]
            while m < len(moves) and moves[m][0] <= created:
                self._assign_move(p, counters, moves[m][1], moved_now)
                m += 1
            if i in moved_now:
                old_art = moved_now[i][0]
                counters[old_art + 1] += 1
                p.keynum[i] = counters[old_art + 1]
            else:
                counters[p.art[i] + 1] += 1
                p.keynum[i] = counters[p.art[i] + 1]
        while m < len(moves):
            self._assign_move(p, counters, moves[m][1], moved_now)
            m += 1

    def _assign_move(
        self, p: Portfolio, counters: list[int], i: int, moved_now: dict[int, tuple[int, int, int]]
    ) -> None:
        old_art, old_team, when = moved_now[i]
        old_num = p.keynum[i]
        counters[p.art[i] + 1] += 1
        p.keynum[i] = counters[p.art[i] + 1]
        p.moves[i] = (old_art, old_num, old_team, when)


def _uuid(seed: int, n: int) -> str:
    h = f"{mix(seed, 5, n):016x}{mix(seed, 6, n):016x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _account(seed: int, n: int) -> str:
    return f"712020:{_uuid(seed, 1000 + n)}"


_NON_DECOMPOSING = {ord("ø"): "o", ord("ł"): "l", 0x131: "i"}


_NON_DECOMPOSING = {0xF8: "o", 0xD8: "O", 0x142: "l", 0x141: "L", 0x131: "i"}
"""Letters NFKD keeps whole (ø, ł, dotless i), for ASCII e-mail addresses."""


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.translate(_NON_DECOMPOSING))
    return "".join(ch for ch in plain if ch.isascii() and ch.isalnum())


def generate(kind: Kind, items: int, seed: int, anchor: datetime | None) -> Portfolio:
    if not MIN_ITEMS <= items <= MAX_ITEMS:
        raise ValueError(f"items must be between {MIN_ITEMS} and {MAX_ITEMS:,}, not {items}")
    when = (anchor or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    return _Generator(kind, items, seed, when).run()
