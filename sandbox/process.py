"""The tracker process a generated site runs: item types, workflows and the names of things.

Jira and Azure DevOps sites model the same SAFe portfolio with different vocabularies (issue
types with `hierarchyLevel` and status categories vs. work item types with state categories), so
the generator works on logical levels and phases and asks the process for the concrete names.
Everything here is static data; nothing depends on the seed except `custom_field_ids`.
"""

# Non-ASCII names and titles are deliberate: real sites have them.
# ruff: noqa: RUF001

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Kind = Literal["jira", "azure_devops"]
Phase = Literal["todo", "doing", "done", "removed"]

JIRA_CATEGORY = {"todo": "new", "doing": "indeterminate", "done": "done", "removed": "done"}
"""Jira statusCategory key of each phase: cancelled statuses live in Jira's done category."""


@dataclass(frozen=True, slots=True)
class Status:
    code: int
    name: str
    phase: Phase
    """What the status means for LPM (todo|doing|done|removed)."""
    tracker_category: str
    """Jira statusCategory key (new|indeterminate|done) or ADO state category."""
    jira_id: str
    color: str


@dataclass(frozen=True, slots=True)
class ItemType:
    code: int
    name: str
    level: str
    """theme|epic|capability|feature|story|objective: the LPM level the demo config maps it to."""
    hierarchy: int
    """Jira `issuetype.hierarchyLevel`."""
    jira_id: str
    statuses: tuple[int, ...]
    """Status codes of the workflow, in workflow order."""
    happy_path: tuple[int, ...]
    """The path an item walks from creation to done."""
    description: str


@dataclass(frozen=True, slots=True)
class Process:
    kind: Kind
    types: tuple[ItemType, ...]
    statuses: tuple[Status, ...]

    def type_named(self, name: str) -> ItemType:
        for t in self.types:
            if t.name.lower() == name.lower():
                return t
        raise KeyError(name)

    def status_named(self, type_code: int, name: str) -> Status:
        for code in self.types[type_code].statuses:
            if self.statuses[code].name.lower() == name.lower():
                return self.statuses[code]
        raise KeyError(name)

    def types_at(self, level: str) -> list[ItemType]:
        return [t for t in self.types if t.level == level]

    def in_phase(self, type_code: int, phase: Phase) -> list[int]:
        return [c for c in self.types[type_code].statuses if self.statuses[c].phase == phase]


class _Builder:
    """Collects statuses once each (workflows share them) and item types."""

    def __init__(self, kind: Kind):
        self.kind = kind
        self.statuses: list[Status] = []
        self.types: list[ItemType] = []

    def status(self, name: str, phase: Phase, category: str, color: str) -> int:
        for s in self.statuses:
            if s.name == name:
                return s.code
        code = len(self.statuses)
        self.statuses.append(Status(code, name, phase, category, str(10000 + code), color))
        return code

    def add_type(
        self,
        name: str,
        level: str,
        hierarchy: int,
        workflow: list[tuple[str, Phase, str, str]],
        happy: list[str],
        description: str,
    ) -> None:
        codes = tuple(self.status(*s) for s in workflow)
        by_name = {self.statuses[c].name: c for c in codes}
        code = len(self.types)
        self.types.append(
            ItemType(
                code,
                name,
                level,
                hierarchy,
                str(10001 + code),
                codes,
                tuple(by_name[n] for n in happy),
                description,
            )
        )

    def build(self) -> Process:
        return Process(self.kind, tuple(self.types), tuple(self.statuses))


def _jira(name: str, phase: Phase) -> tuple[str, Phase, str, str]:
    colors = {"new": "blue-gray", "indeterminate": "yellow", "done": "green"}
    cat = JIRA_CATEGORY[phase]
    return (name, phase, cat, colors[cat])


def jira_process() -> Process:
    """A Jira Premium site with a SAFe hierarchy above Epic."""
    b = _Builder("jira")
    epic_flow = [
        _jira("Funnel", "todo"),
        _jira("Reviewing", "todo"),
        _jira("Analyzing", "todo"),
        _jira("Portfolio Backlog", "todo"),
        _jira("Implementing", "doing"),
        _jira("Done", "done"),
        _jira("Cancelled", "removed"),
    ]
    feature_flow = [
        _jira("Backlog", "todo"),
        _jira("Implementing", "doing"),
        _jira("Validating", "doing"),
        _jira("Done", "done"),
        _jira("Cancelled", "removed"),
    ]
    story_flow = [
        _jira("To Do", "todo"),
        _jira("In Progress", "doing"),
        _jira("In Review", "doing"),
        _jira("Done", "done"),
        _jira("Won't Do", "removed"),
    ]
    b.add_type(
        "Strategic Theme",
        "theme",
        4,
        [
            _jira("Proposed", "todo"),
            _jira("Active", "doing"),
            _jira("Achieved", "done"),
            _jira("Retired", "removed"),
        ],
        ["Proposed", "Active", "Achieved"],
        "A differentiating business objective of the portfolio.",
    )
    b.add_type(
        "Portfolio Epic",
        "epic",
        3,
        epic_flow,
        ["Funnel", "Reviewing", "Analyzing", "Portfolio Backlog", "Implementing", "Done"],
        "A significant solution development initiative on the portfolio Kanban.",
    )
    happy_feature = ["Backlog", "Implementing", "Validating", "Done"]
    b.add_type("Capability", "capability", 2, feature_flow, happy_feature, "Spans several ARTs.")
    b.add_type("Feature", "feature", 1, feature_flow, happy_feature, "Fits in one PI and ART.")
    happy_story = ["To Do", "In Progress", "In Review", "Done"]
    b.add_type("Story", "story", 0, story_flow, happy_story, "A small piece of user value.")
    b.add_type("Bug", "story", 0, story_flow, happy_story, "A problem to fix.")
    b.add_type("Enabler", "story", 0, story_flow, happy_story, "Technical work for the runway.")
    b.add_type(
        "PI Objective",
        "objective",
        0,
        [_jira("To Do", "todo"), _jira("In Progress", "doing"), _jira("Done", "done")],
        ["To Do", "In Progress", "Done"],
        "A team's business or technical goal for one PI.",
    )
    b.add_type("Sub-task", "subtask", -1, story_flow, happy_story, "Part of a story.")
    return b.build()


_ADO_COLORS = {
    "New": "b2b2b2",
    "Active": "007acc",
    "Resolved": "ff9d00",
    "Closed": "339933",
    "Removed": "ffffff",
}


def _ado(name: str, phase: Phase, category: str) -> tuple[str, Phase, str, str]:
    return (name, phase, category, _ADO_COLORS[name])


def ado_process() -> Process:
    """An inherited Agile process with a custom PI Objective type."""
    b = _Builder("azure_devops")
    full = [
        _ado("New", "todo", "Proposed"),
        _ado("Active", "doing", "InProgress"),
        _ado("Resolved", "done", "Resolved"),
        _ado("Closed", "done", "Completed"),
        _ado("Removed", "removed", "Removed"),
    ]
    happy = ["New", "Active", "Resolved", "Closed"]
    b.add_type("Epic", "epic", 3, full, happy, "Portfolio epic.")
    b.add_type("Feature", "feature", 1, full, happy, "Feature of one ART.")
    b.add_type("User Story", "story", 0, full, happy, "Story of one team.")
    b.add_type("Bug", "story", 0, full[:4], happy, "Defect.")
    b.add_type(
        "PI Objective",
        "objective",
        0,
        [full[0], full[1], full[3], full[4]],
        ["New", "Active", "Closed"],
        "PI objective of a team.",
    )
    return b.build()


def process_for(kind: Kind) -> Process:
    return jira_process() if kind == "jira" else ado_process()


PORTFOLIO_STATES = ("funnel", "reviewing", "analyzing", "backlog", "implementing", "done")
"""Portfolio Kanban stages; index 6 in the generator means cancelled."""
JIRA_EPIC_STATUS = (
    "Funnel",
    "Reviewing",
    "Analyzing",
    "Portfolio Backlog",
    "Implementing",
    "Done",
    "Cancelled",
)
ADO_BOARD_COLUMN = (
    "Funnel",
    "Reviewing",
    "Analyzing",
    "Portfolio Backlog",
    "Implementing",
    "Done",
    "Done",
)
ADO_EPIC_STATE = ("New", "New", "New", "New", "Active", "Closed", "Removed")

CATEGORIES = ("business", "enabler", "maintenance")
CATEGORY_LABELS = ("Business", "Enabler", "Maintenance")
HEALTH_VALUES = ("on-track", "at-risk", "off-track")
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")

ARTS: tuple[tuple[str, str], ...] = (
    ("PAY", "Payments ART"),
    ("MOB", "Mobile ART"),
    ("DATA", "Data Platform ART"),
    ("CORE", "Core Banking ART"),
    ("WEB", "Web Experience ART"),
    ("SEC", "Security ART"),
    ("OPS", "Operations ART"),
    ("AI", "Intelligence ART"),
)
TEAM_NAMES = (
    "Falcon",
    "Heron",
    "Kestrel",
    "Osprey",
    "Puffin",
    "Wren",
    "Magpie",
    "Condor",
    "Ibis",
    "Swift",
    "Lark",
    "Robin",
    "Plover",
    "Tern",
    "Egret",
    "Finch",
    "Raven",
    "Stork",
    "Crane",
    "Owl",
    "Kite",
    "Gannet",
    "Merlin",
    "Dipper",
    "Avocet",
    "Bittern",
    "Curlew",
    "Dunlin",
    "Eider",
    "Godwit",
    "Hobby",
    "Jay",
    "Knot",
    "Linnet",
    "Martin",
    "Nightjar",
    "Ouzel",
    "Pipit",
    "Quail",
    "Rail",
    "Shrike",
    "Twite",
)
THEMES = (
    "Digital-first customer experience",
    "Open banking platform",
    "Operational resilience",
    "Data-driven decisions",
    "Sustainable finance",
    "Cost-efficient operations",
    "Trusted security & compliance",
    "New markets: Nordics & DACH",
    "Partner ecosystem",
    "AI-assisted service",
    "Cloud-native core",
    "Employee productivity",
)
FIRST_NAMES = (
    "Anna",
    "Ben",
    "Chiara",
    "Dmitri",
    "Emma",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
    "Marco",
    "Nadia",
    "Olu",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tomás",
    "Zoë",
    "Łukasz",
    "Søren",
    "Ayşe",
    "José",
    "Mei",
)
LAST_NAMES = (
    "Schmidt",
    "Okafor",
    "Rossi",
    "Ivanov",
    "Dubois",
    "Haddad",
    "Kim",
    "Tanaka",
    "García",
    "Berg",
    "Yılmaz",
    "Müller",
    "Novak",
    "Sato",
    "Ødegård",
    "Wójcik",
    "Núñez",
    "Lindqvist",
    "Chen",
    "O'Brien",
)

JIRA_CUSTOM_FIELDS: tuple[tuple[str, str], ...] = (
    # (name, kind) ; kind decides the schema and how values render
    ("Story point estimate", "number"),
    ("Story Points", "number"),
    ("Business Value", "number"),
    ("Time Criticality", "number"),
    ("Risk Reduction", "number"),
    ("Job Size", "number"),
    ("WSJF", "number"),
    ("Portfolio Progress", "number"),
    ("Portfolio Health", "select"),
    ("Investment Category", "select"),
    ("Program Increment", "select"),
    ("Planned Business Value", "number"),
    ("Actual Business Value", "number"),
    ("Team", "team"),
    ("Flagged", "flag"),
    ("Sprint", "sprint"),
    ("Rank", "rank"),
    ("Start date", "date"),
    ("Target end", "date"),
    ("Agile Release Train", "select"),  # last: earlier fields keep their ids
)


def custom_field_ids(seed: int) -> dict[str, str]:
    """`customfield_NNNNN` per field name; differs by seed as it does from one site to the next."""
    rnd = random.Random(f"fields:{seed}")
    numbers = rnd.sample(range(10014, 10400), len(JIRA_CUSTOM_FIELDS))
    return {
        name: f"customfield_{n}" for (name, _), n in zip(JIRA_CUSTOM_FIELDS, numbers, strict=True)
    }
