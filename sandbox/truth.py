"""Ground truth: what a correct sync of the sandbox must end up with, item by item.

Tests compare the warehouse with this list, so it states facts in LPM terms (level, status
category, parent by tracker id, values of the configured fields) rather than tracker JSON.
Deleted items are listed too, with `deleted=True`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sandbox.ado_site import PROJECT
from sandbox.portfolio import F_FLAGGED, F_UNCOMMITTED, Portfolio, ms_to_dt

OBJECTIVE_LEVEL = "objective"


@dataclass(frozen=True, slots=True)
class TruthItem:
    external_id: str
    """Jira issue id / ADO work item id."""
    key: str
    item_type: str
    level: str | None
    """theme|epic|capability|feature|story under the sandbox's source_config levels; None for
    PI objectives (see `objective`) and types outside the levels."""
    objective: bool
    title: str
    status: str
    status_category: str
    portfolio_state: str | None
    parent_external_id: str | None
    estimate: float | None
    business_value: float | None
    time_criticality: float | None
    risk_reduction: float | None
    job_size: float | None
    planned_value: float | None
    actual_value: float | None
    committed: bool | None
    project: str
    art: str | None
    team: str | None
    increment: str | None
    category: str | None
    flagged: bool
    start_date: date | None
    target_date: date | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    deleted: bool
    wsjf: float | None
    health: str | None
    progress: float | None
    rank: str
    """Jira's LexoRank string or ADO's StackRank (as text); smaller ranks higher."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, datetime | date):
                out[k] = v.isoformat()
        return out


def ground_truth(p: Portfolio) -> list[TruthItem]:
    with p.lock:
        return [truth_of(p, i) for i in range(p.n)]


def truth_of(p: Portfolio, i: int) -> TruthItem:
    t = p.itype(i)
    status = p.status_of(i)
    parent = p.parent[i]
    if parent >= 0 and p.is_deleted(parent):
        parent = -1
    art = p.art[i]
    objective = t.level == OBJECTIVE_LEVEL
    level = None if objective or t.level == "subtask" else t.level

    def num(attr: str) -> float | None:
        v = p.num[attr][i]
        return None if math.isnan(v) else v

    rank = p.rank_string(i) if p.kind == "jira" else repr(float(p.rank[i]))
    return TruthItem(
        external_id=p.external_id(i),
        key=p.key(i),
        item_type=t.name,
        level=level,
        objective=objective,
        title=p.summary(i),
        status=status.name,
        status_category=status.phase,
        portfolio_state=p.portfolio_state(i),
        parent_external_id=p.external_id(parent) if parent >= 0 else None,
        estimate=num("estimate"),
        business_value=num("business_value"),
        time_criticality=num("time_criticality"),
        risk_reduction=num("risk_reduction"),
        job_size=num("job_size"),
        planned_value=num("planned_value"),
        actual_value=num("actual_value"),
        committed=(not p.flags[i] & F_UNCOMMITTED) if objective else None,
        project=p.project_key(p.project(i)) if p.kind == "jira" else PROJECT,
        art=p.arts[art].name if art >= 0 else None,
        team=p.team_name(i),
        increment=p.increment_name(i),
        category=p.category_of(i),
        flagged=bool(p.flags[i] & F_FLAGGED),
        start_date=_day(p.start_day[i]),
        target_date=_day(p.target_day[i]),
        created_at=ms_to_dt(p.created[i]),
        updated_at=ms_to_dt(p.updated[i]),
        resolved_at=ms_to_dt(p.resolved[i]) if p.resolved[i] >= 0 else None,
        deleted=p.is_deleted(i),
        wsjf=num("wsjf"),
        health=p.health_of(i),
        progress=num("progress"),
        rank=rank,
    )


def _day(day: int) -> date | None:
    return None if day < 0 else date.fromordinal(date(1970, 1, 1).toordinal() + day)
