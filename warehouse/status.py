"""What `lpm status` reports: per source its recent runs, watermark and live items by level."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select

from warehouse import models


@dataclass
class RunSummary:
    started_at: datetime
    finished_at: datetime | None
    status: str
    mode: str
    fetched: int
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    quarantined: int


@dataclass
class SourceStatus:
    name: str
    kind: str
    url: str
    watermark: datetime | None
    items_by_level: dict[str, int] = field(default_factory=dict)
    deleted_items: int = 0
    objectives: int = 0
    runs: list[RunSummary] = field(default_factory=list)


def source_status(engine: Engine, last_runs: int = 3) -> list[SourceStatus]:
    source, item, run = models.Source, models.WorkItem, models.SyncRun
    objective = models.Objective
    with engine.connect() as conn:
        statuses = {
            row.id: SourceStatus(row.name, row.kind, row.url, None)
            for row in conn.execute(select(source.id, source.name, source.kind, source.url))
        }
        for source_id, watermark in conn.execute(
            select(run.source_id, func.max(run.watermark)).group_by(run.source_id)
        ):
            statuses[source_id].watermark = watermark
        level_counts = select(item.source_id, item.level, func.count()).where(
            item.deleted_at.is_(None)
        )
        for source_id, level, count in conn.execute(
            level_counts.group_by(item.source_id, item.level)
        ):
            statuses[source_id].items_by_level[level] = count
        deleted = select(item.source_id, func.count()).where(item.deleted_at.is_not(None))
        for source_id, count in conn.execute(deleted.group_by(item.source_id)):
            statuses[source_id].deleted_items = count
        live_objectives = select(objective.source_id, func.count()).where(
            objective.deleted_at.is_(None)
        )
        for source_id, count in conn.execute(live_objectives.group_by(objective.source_id)):
            statuses[source_id].objectives = count
        ranked = select(
            run,
            func.row_number()
            .over(partition_by=run.source_id, order_by=run.started_at.desc())
            .label("position"),
        ).subquery()
        recent = select(ranked).where(ranked.c.position <= last_runs)
        for row in conn.execute(recent.order_by(ranked.c.started_at.desc())).mappings():
            statuses[row["source_id"]].runs.append(
                RunSummary(**{name: row[name] for name in RunSummary.__dataclass_fields__})
            )
    return sorted(statuses.values(), key=lambda status: status.name)
