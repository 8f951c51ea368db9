"""The unified LPM model every tracker is mapped into.

Connectors yield raw tracker JSON; mappers turn it into these models; the warehouse stores them.
Nothing here does I/O.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Level(StrEnum):
    """SAFe levels, highest first; the order is meaningful (a parent sits above its child)."""

    theme = "theme"
    epic = "epic"
    capability = "capability"
    feature = "feature"
    story = "story"


class StatusCategory(StrEnum):
    todo = "todo"
    doing = "doing"
    done = "done"
    removed = "removed"


class Category(StrEnum):
    """Investment category, the unit of portfolio guardrails."""

    business = "business"
    enabler = "enabler"
    maintenance = "maintenance"


class PortfolioState(StrEnum):
    """Portfolio Kanban states of an epic."""

    funnel = "funnel"
    reviewing = "reviewing"
    analyzing = "analyzing"
    backlog = "backlog"
    implementing = "implementing"
    done = "done"


LEVEL_NAMES: tuple[str, ...] = tuple(level.value for level in Level)
STATUS_CATEGORY_NAMES: tuple[str, ...] = tuple(c.value for c in StatusCategory)
CATEGORY_NAMES: tuple[str, ...] = tuple(c.value for c in Category)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return value


class HistoryChange(_Model):
    """One field transition, from the tracker's changelog or detected by the loader.

    `field` uses LPM attribute names (`status`, `status_category`, `estimate`, `parent`, ...), so
    flow metrics never need to know tracker field names. `change_id` is the tracker's id for the
    change (Jira changelog id, ADO revision) so reloading the same changelog adds nothing.
    """

    change_id: str
    changed_at: datetime
    field: str
    from_value: str | None = None
    to_value: str | None = None

    _aware = field_validator("changed_at")(_utc)


class WorkItem(_Model):
    """One tracker item at one level of the portfolio tree, as the warehouse stores it."""

    external_id: str = Field(min_length=1, max_length=64)
    key: str = Field(min_length=1, max_length=64)
    level: Level
    item_type: str = Field(max_length=255)
    title: str
    status: str = Field(max_length=255)
    status_category: StatusCategory
    parent_external_id: str | None = None
    estimate: float | None = None
    business_value: float | None = None
    time_criticality: float | None = None
    risk_reduction: float | None = None
    job_size: float | None = None
    team: str | None = None
    art: str | None = None
    increment: str | None = None
    category: Category | None = None
    portfolio_state: PortfolioState | None = None
    tracker_rank: str | None = None
    flagged: bool = False
    start_date: date | None = None
    target_date: date | None = None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    writeback_values: dict[str, Any] = Field(default_factory=dict)
    """Current tracker values of the fields lpm-sync may write (`wsjf`, `health`, ...)."""
    raw: dict[str, Any] = Field(default_factory=dict)
    history: tuple[HistoryChange, ...] = ()

    _aware = field_validator("created_at", "updated_at", "resolved_at")(_utc)


class Objective(_Model):
    """A PI objective of a team or ART, the input of ART predictability."""

    external_id: str = Field(min_length=1, max_length=64)
    key: str = Field(min_length=1, max_length=64)
    title: str
    team: str | None = None
    art: str | None = None
    increment: str | None = None
    committed: bool = True
    planned_value: float | None = None
    actual_value: float | None = None
    status_category: StatusCategory
    updated_at: datetime
    raw: dict[str, Any] = Field(default_factory=dict)

    _aware = field_validator("updated_at")(_utc)


class Quarantined(_Model):
    """A raw item that could not be mapped; kept whole so nothing is lost."""

    external_id: str
    error: str
    payload: Any
    """The item as received, whatever JSON it is (not always an object when it is malformed)."""
