"""The numbers of the portfolio report: one set-based query per table the report shows.

Every table of `portfolio.html` and every CSV/JSON export is built from exactly the rows these
queries return, so what a reader sees can be checked against the warehouse. The queries read the
contract tables (work_item, sync_run, source, quarantine, writeback) and the analytics results
(rollup, guardrail, flow_metric, flow_distribution, predictability, hierarchy_issue; see
warehouse/analytics.py); they never write. They run in one read transaction, so every table
comes from one snapshot of the warehouse (a roll-up committed meanwhile is seen whole or not).

Live items are those not deleted in the tracker. "ART" and "PI" of a leaf follow the analytics'
rule (warehouse/hierarchy.py): the item's own value, else its nearest ancestor's, and for the ART
finally the item's own team.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    Integer,
    String,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.orm import aliased

from mapping.config import Increment, PortfolioConfig
from mapping.model import LEVEL_NAMES, STATUS_CATEGORY_NAMES
from warehouse import models

TREE_LEVELS = ("theme", "epic", "capability", "feature")
MAX_TREE_DEPTH = 64
"""Levels below a root the tree walk follows, like warehouse/hierarchy.py."""


@dataclass(frozen=True)
class LevelStatus:
    """Live items of one level by status category."""

    level: str
    todo: int
    doing: int
    done: int
    removed: int
    total: int


@dataclass(frozen=True)
class SourceFreshness:
    """A source's data freshness and its last sync."""

    source: str
    kind: str
    live_items: int
    last_status: str | None
    last_mode: str | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_fetched: int | None
    last_quarantined: int | None
    last_error: str | None
    last_success_at: datetime | None
    watermark: datetime | None
    hours_since_success: float | None


@dataclass(frozen=True)
class EpicRow:
    """A live epic with its WSJF, progress, health and forecast."""

    rank: int | None
    key: str
    title: str
    source: str
    status: str
    status_category: str
    portfolio_state: str | None
    art: str | None
    cost_of_delay: float | None
    job_size: float | None
    wsjf: float | None
    unranked_reason: str | None
    progress: float | None
    progress_basis: str
    done_items: int
    total_items: int
    done_estimate: float | None
    total_estimate: float | None
    health: str | None
    health_reason: str | None
    start_date: date | None
    end_date: date | None
    forecast_p50: date | None
    forecast_p85: date | None


@dataclass(frozen=True)
class TreeRow:
    """One node of the roll-up tree; `path` orders the rows depth-first, siblings by rank."""

    path: str
    depth: int
    key: str
    title: str
    level: str
    status_category: str
    art: str | None
    progress: float | None
    progress_basis: str
    done_items: int
    total_items: int
    health: str | None
    wsjf: float | None
    rank: int | None
    end_date: date | None


@dataclass(frozen=True)
class GuardrailRow:
    increment: str
    is_current: bool
    category: str
    items: int
    estimate: float | None
    share: float | None
    basis: str | None
    target_share: float
    deviation: float | None
    breach: bool


@dataclass(frozen=True)
class BurnupRow:
    """Cumulative scope and done work of an ART's leaves planned in the PI, at a day's end."""

    art: str | None
    day: date
    scope_items: int
    scope_estimate: float
    done_items: int
    done_estimate: float


@dataclass(frozen=True)
class PredictabilityRow:
    art: str | None
    increment: str | None
    committed_objectives: int
    uncommitted_objectives: int
    planned_value: float
    actual_value: float
    predictability: float | None
    in_range: bool | None


@dataclass(frozen=True)
class FlowMetricRow:
    art: str | None
    increment: str
    level: str
    completed_items: int
    completed_estimate: float | None
    flow_time_items: int
    flow_time_p50: float | None
    flow_time_p85: float | None
    wip: int
    active_days: float | None
    waiting_days: float | None
    efficiency: float | None


@dataclass(frozen=True)
class FlowDistributionRow:
    art: str | None
    increment: str
    level: str
    dimension: str
    value: str | None
    items: int
    share: float


@dataclass(frozen=True)
class QuarantineRow:
    """The latest failure of a tracker item that has not loaded successfully since."""

    source: str
    external_id: str
    error: str
    quarantined_at: datetime
    sync_run_id: int


@dataclass(frozen=True)
class WritebackConflictRow:
    """The latest write-back of an item's field, where it was skipped or failed."""

    key: str
    title: str
    source: str
    field: str
    tracker_value: str | None
    new_value: str | None
    status: str
    error: str | None
    planned_at: datetime


@dataclass(frozen=True)
class HierarchyIssueRow:
    key: str
    title: str
    source: str
    level: str
    kind: str
    related_key: str | None
    detail: str | None


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, as of `now`."""

    portfolio: str
    now: datetime
    analytics_at: datetime | None
    increment: Increment | None
    """The PI the burn-up follows: the one running at `now`, else the last one started."""
    levels: list[LevelStatus]
    sources: list[SourceFreshness]
    epics: list[EpicRow]
    tree: list[TreeRow]
    guardrails: list[GuardrailRow]
    burnup: list[BurnupRow]
    predictability: list[PredictabilityRow]
    flow_metrics: list[FlowMetricRow]
    flow_distribution: list[FlowDistributionRow]
    quarantine: list[QuarantineRow]
    writeback_conflicts: list[WritebackConflictRow]
    hierarchy_issues: list[HierarchyIssueRow]

    def tables(self) -> dict[str, list[Any]]:
        """The exported tables by name, in report order."""
        return {name: getattr(self, name) for name in TABLE_NAMES}


TABLE_NAMES = (
    "levels",
    "sources",
    "epics",
    "tree",
    "guardrails",
    "burnup",
    "predictability",
    "flow_metrics",
    "flow_distribution",
    "quarantine",
    "writeback_conflicts",
    "hierarchy_issues",
)
TABLE_TYPES: dict[str, type] = {
    "levels": LevelStatus,
    "sources": SourceFreshness,
    "epics": EpicRow,
    "tree": TreeRow,
    "guardrails": GuardrailRow,
    "burnup": BurnupRow,
    "predictability": PredictabilityRow,
    "flow_metrics": FlowMetricRow,
    "flow_distribution": FlowDistributionRow,
    "quarantine": QuarantineRow,
    "writeback_conflicts": WritebackConflictRow,
    "hierarchy_issues": HierarchyIssueRow,
}


def columns(row_type: type) -> list[str]:
    return [f.name for f in dataclasses.fields(row_type)]


def report_increment(increments: Sequence[Increment], today: date) -> Increment | None:
    """The PI running on `today` (the latest to start of overlapping ones), else the last one
    started before it, else the first one."""
    started = [pi for pi in increments if pi.start <= today]
    if started:
        running = [pi for pi in started if today <= pi.end]
        return max(running or started, key=lambda pi: (pi.start, pi.end))
    return min(increments, key=lambda pi: pi.start) if increments else None


def load_report_data(engine: Engine, portfolio: PortfolioConfig, *, now: datetime) -> ReportData:
    """Run every report query in one read transaction."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    now = now.astimezone(UTC)
    increment = report_increment(portfolio.increments, now.date())
    order = {pi.name: position for position, pi in enumerate(portfolio.increments)}
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if conn.dialect.name == "sqlite":
                # pysqlite opens transactions lazily, at the first write: open one to read in.
                conn.exec_driver_sql("BEGIN")
            return ReportData(
                portfolio=portfolio.name,
                now=now,
                analytics_at=conn.execute(select(func.max(models.Rollup.computed_at))).scalar(),
                increment=increment,
                levels=level_status(conn),
                sources=source_freshness(conn, now),
                epics=epics(conn),
                tree=tree(conn),
                guardrails=_in_pi_order(guardrails(conn), order),
                burnup=burnup(conn, increment, now) if increment else [],
                predictability=_in_pi_order(predictability(conn), order),
                flow_metrics=_in_pi_order(flow_metrics(conn), order),
                flow_distribution=_in_pi_order(flow_distribution(conn), order),
                quarantine=quarantine(conn),
                writeback_conflicts=writeback_conflicts(conn),
                hierarchy_issues=hierarchy_issues(conn),
            )


def _in_pi_order(rows: list[Any], order: dict[str, int]) -> list[Any]:
    """Rows in the configured PI order (PIs sort as names otherwise: 'PI 9' after 'PI 10')."""
    unknown = len(order)
    return sorted(rows, key=lambda row: order.get(row.increment, unknown))


def _rows(conn: Connection, statement: Any, row_type: Callable[..., Any]) -> list[Any]:
    return [row_type(**row) for row in conn.execute(statement).mappings()]


def _level_order(level: Any) -> Any:
    return case(
        {name: n for n, name in enumerate(LEVEL_NAMES)}, value=level, else_=len(LEVEL_NAMES)
    )


def level_status(conn: Connection) -> list[LevelStatus]:
    item = models.WorkItem
    counts = [
        func.coalesce(func.sum(case((item.status_category == name, 1), else_=0)), 0).label(name)
        for name in STATUS_CATEGORY_NAMES
    ]
    level_order = case(
        {name: n for n, name in enumerate(LEVEL_NAMES)}, value=item.level, else_=len(LEVEL_NAMES)
    )
    statement = (
        select(item.level, *counts, func.count().label("total"))
        .where(item.deleted_at.is_(None))
        .group_by(item.level)
        .order_by(func.min(level_order))
    )
    return _rows(conn, statement, LevelStatus)


def source_freshness(conn: Connection, now: datetime) -> list[SourceFreshness]:
    source, run, item = models.Source, models.SyncRun, models.WorkItem
    ordered = select(
        run,
        func.row_number()
        .over(partition_by=run.source_id, order_by=(run.started_at.desc(), run.id.desc()))
        .label("position"),
    ).subquery()
    last = select(ordered).where(ordered.c.position == 1).subquery()
    success = (
        select(
            run.source_id,
            func.max(run.finished_at).label("last_success_at"),
            func.max(run.watermark).label("watermark"),
        )
        .where(run.status == "succeeded")
        .group_by(run.source_id)
        .subquery()
    )
    live = (
        select(item.source_id, func.count().label("live_items"))
        .where(item.deleted_at.is_(None))
        .group_by(item.source_id)
        .subquery()
    )
    statement = (
        select(
            source.name.label("source"),
            source.kind,
            func.coalesce(live.c.live_items, 0).label("live_items"),
            last.c.status.label("last_status"),
            last.c.mode.label("last_mode"),
            last.c.started_at.label("last_started_at"),
            last.c.finished_at.label("last_finished_at"),
            last.c.fetched.label("last_fetched"),
            last.c.quarantined.label("last_quarantined"),
            last.c.error.label("last_error"),
            success.c.last_success_at,
            success.c.watermark,
        )
        .outerjoin(last, last.c.source_id == source.id)
        .outerjoin(success, success.c.source_id == source.id)
        .outerjoin(live, live.c.source_id == source.id)
        .order_by(source.name)
    )
    rows = []
    for row in conn.execute(statement).mappings():
        success_at = row["last_success_at"]
        age = None if success_at is None else max(0.0, (now - success_at).total_seconds() / 3600)
        rows.append(SourceFreshness(**row, hours_since_success=age))
    return rows


def epics(conn: Connection) -> list[EpicRow]:
    item, rollup, source = models.WorkItem, models.Rollup, models.Source
    statement = (
        select(
            rollup.rank,
            item.key,
            item.title,
            source.name.label("source"),
            item.status,
            item.status_category,
            item.portfolio_state,
            rollup.art,
            rollup.cost_of_delay,
            rollup.job_size,
            rollup.wsjf,
            rollup.unranked_reason,
            rollup.progress,
            rollup.progress_basis,
            rollup.done_items,
            rollup.total_items,
            rollup.done_estimate,
            rollup.total_estimate,
            rollup.health,
            rollup.health_reason,
            rollup.start_date,
            rollup.end_date,
            rollup.forecast_p50,
            rollup.forecast_p85,
        )
        .join(item, item.id == rollup.work_item_id)
        .join(source, source.id == item.source_id)
        .where(item.level == "epic", item.deleted_at.is_(None))
        .order_by(
            rollup.rank.is_(None),
            rollup.rank,
            rollup.wsjf.is_(None),
            rollup.wsjf.desc(),
            item.key,
            item.id,
        )
    )
    return _rows(conn, statement, EpicRow)


def _sort_part(rank: Any, level: Any, item_id: Any) -> Any:
    """A fixed-width text sort key among siblings: by rank (unranked last), level, then id."""
    width = 10**9
    rank_part = cast(func.coalesce(rank, width - 1) + width, String)
    return rank_part + cast(_level_order(level), String) + cast(item_id + width, String)


def tree(conn: Connection) -> list[TreeRow]:
    """Theme -> epic -> capability -> feature; an item whose parent is not rolled up (an orphan,
    or an item on a parent cycle, whose link the analytics cut) heads its own subtree."""
    item, rollup, issue = models.WorkItem, models.Rollup, models.HierarchyIssue
    parent_rollup = aliased(rollup)
    on_cycle = exists().where(issue.work_item_id == item.id, issue.kind == "cycle")
    has_rolled_up_parent = exists().where(parent_rollup.work_item_id == item.parent_id)
    anchor = (
        select(
            item.id,
            literal(0).label("depth"),
            _sort_part(rollup.rank, item.level, item.id).label("path"),
        )
        .join(rollup, rollup.work_item_id == item.id)
        .where(or_(item.parent_id.is_(None), ~has_rolled_up_parent, on_cycle))
        .cte("walk", recursive=True)
    )
    child, child_rollup = aliased(item), aliased(rollup)
    child_on_cycle = exists().where(issue.work_item_id == child.id, issue.kind == "cycle")
    walk = anchor.union_all(
        select(
            child.id,
            (anchor.c.depth + 1).label("depth"),
            (
                anchor.c.path + literal("/") + _sort_part(child_rollup.rank, child.level, child.id)
            ).label("path"),
        )
        .join(child, child.parent_id == anchor.c.id)
        .join(child_rollup, child_rollup.work_item_id == child.id)
        .where(~child_on_cycle, anchor.c.depth < MAX_TREE_DEPTH)
    )
    statement = (
        select(
            walk.c.path,
            walk.c.depth,
            item.key,
            item.title,
            item.level,
            item.status_category,
            rollup.art,
            rollup.progress,
            rollup.progress_basis,
            rollup.done_items,
            rollup.total_items,
            rollup.health,
            rollup.wsjf,
            rollup.rank,
            rollup.end_date,
        )
        .join(item, item.id == walk.c.id)
        .join(rollup, rollup.work_item_id == walk.c.id)
        .order_by(walk.c.path)
    )
    return _rows(conn, statement, TreeRow)


def guardrails(conn: Connection) -> list[GuardrailRow]:
    guardrail = models.Guardrail
    category_order = case(
        {"business": 0, "enabler": 1, "maintenance": 2}, value=guardrail.category, else_=3
    )
    statement = select(*[getattr(guardrail, name) for name in columns(GuardrailRow)]).order_by(
        guardrail.increment, category_order
    )
    return _rows(conn, statement, GuardrailRow)


def predictability(conn: Connection) -> list[PredictabilityRow]:
    table = models.Predictability
    statement = select(*[getattr(table, name) for name in columns(PredictabilityRow)]).order_by(
        table.increment, table.art
    )
    return _rows(conn, statement, PredictabilityRow)


def flow_metrics(conn: Connection) -> list[FlowMetricRow]:
    table = models.FlowMetric
    level_order = case(
        {name: n for n, name in enumerate(LEVEL_NAMES)}, value=table.level, else_=len(LEVEL_NAMES)
    )
    statement = select(*[getattr(table, name) for name in columns(FlowMetricRow)]).order_by(
        table.increment, table.art, level_order
    )
    return _rows(conn, statement, FlowMetricRow)


def flow_distribution(conn: Connection) -> list[FlowDistributionRow]:
    table = models.FlowDistribution
    level_order = case(
        {name: n for n, name in enumerate(LEVEL_NAMES)}, value=table.level, else_=len(LEVEL_NAMES)
    )
    statement = select(*[getattr(table, name) for name in columns(FlowDistributionRow)]).order_by(
        table.increment, table.art, level_order, table.dimension, table.value
    )
    return _rows(conn, statement, FlowDistributionRow)


def quarantine(conn: Connection) -> list[QuarantineRow]:
    q, source, item = models.Quarantine, models.Source, models.WorkItem
    ordered = select(
        q.source_id,
        q.external_id,
        q.error,
        q.created_at,
        q.sync_run_id,
        func.row_number()
        .over(
            partition_by=(q.source_id, q.external_id), order_by=(q.created_at.desc(), q.id.desc())
        )
        .label("position"),
    ).subquery()
    loaded_since = exists().where(
        item.source_id == ordered.c.source_id,
        item.external_id == ordered.c.external_id,
        item.synced_at >= ordered.c.created_at,
    )
    statement = (
        select(
            source.name.label("source"),
            ordered.c.external_id,
            ordered.c.error,
            ordered.c.created_at.label("quarantined_at"),
            ordered.c.sync_run_id,
        )
        .join(source, source.id == ordered.c.source_id)
        .where(ordered.c.position == 1, ~loaded_since)
        .order_by(source.name, ordered.c.external_id)
    )
    return _rows(conn, statement, QuarantineRow)


def writeback_conflicts(conn: Connection) -> list[WritebackConflictRow]:
    wb, item, source = models.Writeback, models.WorkItem, models.Source
    ordered = select(
        wb,
        func.row_number()
        .over(
            partition_by=(wb.work_item_id, wb.field), order_by=(wb.planned_at.desc(), wb.id.desc())
        )
        .label("position"),
    ).subquery()
    statement = (
        select(
            item.key,
            item.title,
            source.name.label("source"),
            ordered.c.field,
            ordered.c.tracker_value,
            ordered.c.new_value,
            ordered.c.status,
            ordered.c.error,
            ordered.c.planned_at,
        )
        .join(item, item.id == ordered.c.work_item_id)
        .join(source, source.id == item.source_id)
        .where(
            ordered.c.position == 1,
            ordered.c.status.in_(("skipped_conflict", "failed")),
            item.deleted_at.is_(None),
        )
        .order_by(source.name, item.key, ordered.c.field)
    )
    return _rows(conn, statement, WritebackConflictRow)


def hierarchy_issues(conn: Connection) -> list[HierarchyIssueRow]:
    issue, item, source = models.HierarchyIssue, models.WorkItem, models.Source
    related = aliased(item)
    statement = (
        select(
            item.key,
            item.title,
            source.name.label("source"),
            item.level,
            issue.kind,
            related.key.label("related_key"),
            issue.detail,
        )
        .join(item, item.id == issue.work_item_id)
        .join(source, source.id == item.source_id)
        .outerjoin(related, related.id == issue.related_id)
        .order_by(issue.kind, source.name, item.key, item.id)
    )
    return _rows(conn, statement, HierarchyIssueRow)


def _epoch_seconds(dialect: str, column: str) -> str:
    if dialect == "sqlite":
        return f"CAST(strftime('%s', {column}) AS INTEGER)"
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"


def burnup(conn: Connection, increment: Increment, now: datetime) -> list[BurnupRow]:
    """Per ART, day by day from the PI's start to its end (or today): the leaves planned in the
    PI that exist by then (scope) and those completed by then (done), with their estimates.

    A leaf is a live item without a live child; removed leaves are out of scope. It completes
    at its last entry into done (status history), else at its `resolved_at`; a done leaf
    without either counts as done from the first day. Work created or completed before the PI
    counts on its first day.
    """
    dialect = conn.dialect.name
    start_at = datetime.combine(increment.start, time(), UTC)
    last_day = (min(increment.end, now.date()) - increment.start).days
    if last_day < 0:
        return []
    live = "{0}.deleted_at IS NULL AND {0}.status_category <> 'removed'"
    offset = (
        f"CASE WHEN ({_epoch_seconds(dialect, '{0}')} - :start_s) / 86400 > :last_day"
        " THEN :last_day"
        f" WHEN {_epoch_seconds(dialect, '{0}')} < :start_s THEN 0"
        f" ELSE ({_epoch_seconds(dialect, '{0}')} - :start_s) / 86400 END"
    )
    done_at = (
        "(SELECT MAX(h.changed_at) FROM work_item_history h WHERE h.work_item_id = i.id"
        " AND h.field = 'status_category' AND h.to_value = 'done')"
    )
    statement = text(
        f"""
        WITH RECURSIVE walk(id, depth, art, increment) AS (
            SELECT w.id, 0, CAST(w.art AS TEXT), CAST(w.increment AS TEXT)
            FROM work_item w LEFT JOIN work_item p ON p.id = w.parent_id
            WHERE {live.format("w")}
              AND (p.id IS NULL OR NOT ({live.format("p")}))
            UNION ALL
            SELECT c.id, k.depth + 1, COALESCE(c.art, k.art), COALESCE(c.increment, k.increment)
            FROM walk k JOIN work_item c ON c.parent_id = k.id
            WHERE {live.format("c")} AND k.depth < :max_depth
        ),
        leaf AS (
            SELECT COALESCE(k.art, i.team) AS art, i.estimate,
                   {offset.format("i.created_at")} AS created_day,
                   CASE WHEN i.status_category = 'done'
                        THEN COALESCE({offset.format(f"COALESCE({done_at}, i.resolved_at)")}, 0)
                   END AS done_day
            FROM walk k JOIN work_item i ON i.id = k.id
            WHERE k.increment = :increment
              AND NOT EXISTS (SELECT 1 FROM work_item c
                              WHERE c.parent_id = i.id AND {live.format("c")})
        ),
        days(d) AS (
            SELECT 0 UNION ALL SELECT d + 1 FROM days WHERE d < :last_day
        ),
        arts AS (SELECT DISTINCT art FROM leaf),
        scope AS (
            SELECT art, created_day AS d, COUNT(*) AS items, SUM(estimate) AS estimate
            FROM leaf GROUP BY art, created_day
        ),
        done AS (
            SELECT art, done_day AS d, COUNT(*) AS items, SUM(estimate) AS estimate
            FROM leaf WHERE done_day IS NOT NULL GROUP BY art, done_day
        )
        SELECT a.art, days.d AS day_offset,
               CAST(SUM(COALESCE(s.items, 0)) OVER running AS INTEGER) AS scope_items,
               CAST(SUM(COALESCE(s.estimate, 0)) OVER running AS FLOAT) AS scope_estimate,
               CAST(SUM(COALESCE(x.items, 0)) OVER running AS INTEGER) AS done_items,
               CAST(SUM(COALESCE(x.estimate, 0)) OVER running AS FLOAT) AS done_estimate
        FROM arts a CROSS JOIN days
        LEFT JOIN scope s ON s.art IS NOT DISTINCT FROM a.art AND s.d = days.d
        LEFT JOIN done x ON x.art IS NOT DISTINCT FROM a.art AND x.d = days.d
        WINDOW running AS (PARTITION BY a.art ORDER BY days.d)
        ORDER BY a.art, days.d
        """
    ).columns(
        art=String(),
        day_offset=Integer(),
        scope_items=Integer(),
        scope_estimate=Float(),
        done_items=Integer(),
        done_estimate=Float(),
    )
    params = {
        "start_s": int(start_at.timestamp()),
        "last_day": last_day,
        "increment": increment.name,
        "max_depth": MAX_TREE_DEPTH,
    }
    return [
        BurnupRow(
            art=row.art,
            day=increment.start + timedelta(days=row.day_offset),
            scope_items=row.scope_items,
            scope_estimate=row.scope_estimate,
            done_items=row.done_items,
            done_estimate=row.done_estimate,
        )
        for row in conn.execute(statement, params)
    ]
