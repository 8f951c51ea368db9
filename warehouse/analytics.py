"""Portfolio analytics, recomputed as a whole: what `lpm rollup` runs.

`compute_analytics` rebuilds every result table from `work_item`, `work_item_history` and
`objective` in ONE transaction: readers see the previous results or the new ones, never a mix,
and a failed run leaves the previous results in place. With the same warehouse, config and
`now`, a second run writes identical rows. Deleted items are ignored everywhere, and items whose
status category is `removed` are left out of the tree (warehouse/hierarchy.py).

Result tables, each documented column by column in the module that fills it:
  rollup             per theme/epic/capability/feature: totals, progress (warehouse/rollup.py),
                     WSJF and rank (wsjf.py), health (health.py), forecast dates (forecast.py)
  rollup_breakdown   the same totals per ART, team and PI of the leaves (rollup.py)
  guardrail          capacity allocation per PI and investment category vs targets
                     (guardrails.py)
  flow_metric        velocity, flow time, load, efficiency per ART, PI and level (flow.py)
  flow_distribution  completed items by type and by category per ART, PI and level (flow.py)
  predictability     ART predictability per PI from PI objectives (predictability.py)
  hierarchy_issue    cycles and orphans found in the parent links (hierarchy.py)
"ART" is an item's own ART, else its nearest ancestor's, else its own team; "PI" is an
item's own increment, else its nearest ancestor's.

A run works in temporary tables (`tmp_*`, dropped before it commits) and reads one snapshot.
On PostgreSQL it holds the `rollup` table's lock from its start (syncs go on; a second run
waits). On SQLite it computes into temporary copies of the result tables and takes the
database's write lock only to replace the results from them at the end, so a sync waits
(up to its busy timeout) for that copy, not for the whole run; the results are those of the
snapshot read at the start, as on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, Date, Engine, create_engine
from sqlalchemy.pool import NullPool

from mapping.config import Increment, PortfolioConfig
from warehouse.flow import compute_flow
from warehouse.forecast import compute_forecasts
from warehouse.guardrails import compute_guardrails
from warehouse.hierarchy import HierarchyCounts, build_tree
from warehouse.models import UTCDateTime
from warehouse.predictability import compute_predictability
from warehouse.rollup import compute_rollups
from warehouse.scratch import Scratch

RESULT_TABLES = (
    "hierarchy_issue",
    "rollup_breakdown",
    "rollup",
    "guardrail",
    "flow_metric",
    "flow_distribution",
    "predictability",
)
SQLITE_CACHE_KIB = 262_144
"""Page cache for the run's connection on SQLite (restored after): the default 2 MiB thrashes."""
POSTGRES_SETTINGS = {"jit": "off", "work_mem": "256MB", "temp_buffers": "1GB"}
"""Session settings of a run on PostgreSQL (memory is taken only as the run needs it)."""


@dataclass(frozen=True)
class Breach:
    category: str
    share: float
    target: float


@dataclass(frozen=True)
class AnalyticsSummary:
    computed_at: datetime
    items: int
    """Live items in the tree (not deleted, not removed, within the depth limit)."""
    rolled_up: int
    ranked: int
    unranked: dict[str, int] = field(default_factory=dict)
    """Items that could be ranked but are not, by reason (done items excluded)."""
    done: int = 0
    health: dict[str, int] = field(default_factory=dict)
    current_increment: str | None = None
    breaches: list[Breach] = field(default_factory=list)
    """Guardrail breaches of the current PI."""
    cycles: int = 0
    orphans: int = 0
    too_deep: int = 0
    forecasts: int = 0


def current_increment(increments: list[Increment], today: date) -> Increment | None:
    """The PI containing `today`; of overlapping ones the latest to start."""
    running = [pi for pi in increments if pi.start <= today <= pi.end]
    return max(running, key=lambda pi: pi.start) if running else None


def compute_analytics(
    engine: Engine, portfolio: PortfolioConfig, *, now: datetime
) -> AnalyticsSummary:
    """Recompute every analytic as of `now` (aware) and replace the previous results."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    now = now.astimezone(UTC)
    current = current_increment(portfolio.increments, now.date())
    with _session(engine) as conn, _exclusive(conn):
        scratch = Scratch(conn)
        for table in RESULT_TABLES:
            scratch.run(f"DELETE FROM {table}")
        _increments(scratch, portfolio.increments)
        tree = build_tree(scratch, now)
        rolled_up = compute_rollups(scratch, portfolio, now)
        compute_guardrails(scratch, portfolio.guardrails, current.name if current else None, now)
        compute_flow(scratch, portfolio.flow, portfolio.increments, now)
        compute_predictability(scratch, now)
        forecasts = compute_forecasts(scratch, portfolio.forecast, now)
        scratch.drop_all()
        return _summary(scratch, now, tree, rolled_up, current, forecasts)


@contextmanager
def _session(engine: Engine) -> Iterator[Connection]:
    """The connection of one run. On PostgreSQL a session of its own, opened with the settings
    of a batch job (JIT compiling would cost more than it saves on these one-off statements,
    and temporary tables need local buffers, which can only be sized before their first use).
    """
    if engine.dialect.name != "postgresql":
        with engine.connect() as conn:
            yield conn
        return
    settings = " ".join(f"-c {name}={value}" for name, value in POSTGRES_SETTINGS.items())
    own = create_engine(engine.url, poolclass=NullPool, connect_args={"options": settings})
    try:
        with own.connect() as conn:
            yield conn
    finally:
        own.dispose()


@contextmanager
def _exclusive(conn: Connection) -> Iterator[None]:
    """Compute from one snapshot, then publish every result table in one write.

    PostgreSQL: one REPEATABLE READ transaction holding the `rollup` table's lock, so a second
    run waits while syncs go on. SQLite (WAL): the run reads one snapshot in a read
    transaction and writes into temporary copies of the result tables, which shadow them by
    name; only then does it take the database's write lock, to replace the results from the
    copies. A sync is kept waiting for that copy only, not for the whole computation.
    """
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # Before any query, so the snapshot is taken once the lock is held.
            conn.exec_driver_sql("LOCK TABLE rollup IN SHARE ROW EXCLUSIVE MODE")
            yield
        return
    cache = {
        schema: conn.exec_driver_sql(f"PRAGMA {schema}.cache_size").scalar_one()
        for schema in ("main", "temp")
    }
    conn.commit()
    try:
        for schema in cache:
            conn.exec_driver_sql(f"PRAGMA {schema}.cache_size = -{SQLITE_CACHE_KIB}")
        conn.commit()
        with conn.begin():
            # pysqlite would run each read in a transaction of its own: one snapshot for all.
            conn.exec_driver_sql("BEGIN")
            _shadow_results(conn)
            yield
        with conn.begin():
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            for table in RESULT_TABLES:
                conn.exec_driver_sql(f"DELETE FROM main.{table}")
                conn.exec_driver_sql(f"INSERT INTO main.{table} SELECT * FROM temp.{table}")
                conn.exec_driver_sql(f"DROP TABLE temp.{table}")
    finally:
        conn.rollback()
        for table in RESULT_TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table}")
        for schema, size in cache.items():
            conn.exec_driver_sql(f"PRAGMA {schema}.cache_size = {size}")
        conn.commit()


def _shadow_results(conn: Connection) -> None:
    """Empty temporary tables named and declared like the result tables (same columns, types
    and keys), which unqualified names then resolve to (SQLite looks in temp first)."""
    for table in RESULT_TABLES:
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar_one()
        conn.exec_driver_sql(re.sub(r"^CREATE TABLE", "CREATE TEMPORARY TABLE", ddl))


def _increments(scratch: Scratch, increments: list[Increment]) -> None:
    """Scratch table `tmp_increment`: the configured PIs, as dates and as UTC instants."""
    scratch.declare(
        "tmp_increment",
        "name VARCHAR(255), start_date DATE, end_date DATE, start_at TIMESTAMP WITH TIME ZONE,"
        " end_at TIMESTAMP WITH TIME ZONE",
        indexes=["name"],
    )
    rows = [
        {
            "name": pi.name,
            "start_date": pi.start,
            "end_date": pi.end,
            "start_at": datetime.combine(pi.start, time(), UTC),
            "end_at": datetime.combine(pi.end + timedelta(days=1), time(), UTC),
        }
        for pi in increments
    ]
    if rows:
        scratch.run_many(
            "INSERT INTO tmp_increment (name, start_date, end_date, start_at, end_at)"
            " VALUES (:name, :start_date, :end_date, :start_at, :end_at)",
            rows,
            {
                "start_date": Date(),
                "end_date": Date(),
                "start_at": UTCDateTime(),
                "end_at": UTCDateTime(),
            },
        )


def _summary(
    scratch: Scratch,
    now: datetime,
    tree: HierarchyCounts,
    rolled_up: int,
    current: Increment | None,
    forecasts: int,
) -> AnalyticsSummary:
    reasons = dict(
        scratch.run(
            "SELECT unranked_reason, COUNT(*) FROM rollup WHERE unranked_reason IS NOT NULL"
            " GROUP BY unranked_reason"
        ).all()
    )
    health = dict(
        scratch.run(
            "SELECT COALESCE(health, 'none'), COUNT(*) FROM rollup"
            " GROUP BY COALESCE(health, 'none')"
        ).all()
    )
    breaches = [
        Breach(category, share, target)
        for category, share, target in scratch.run(
            "SELECT category, share, target_share FROM guardrail"
            " WHERE is_current = TRUE AND breach = TRUE ORDER BY category"
        )
    ]
    return AnalyticsSummary(
        computed_at=now,
        items=tree.items,
        rolled_up=rolled_up,
        ranked=int(scratch.run("SELECT COUNT(*) FROM rollup WHERE rank IS NOT NULL").scalar_one()),
        unranked={reason: count for reason, count in sorted(reasons.items()) if reason != "done"},
        done=reasons.get("done", 0),
        health=dict(sorted(health.items())),
        current_increment=current.name if current else None,
        breaches=breaches,
        cycles=tree.cycles,
        orphans=tree.orphans,
        too_deep=tree.too_deep,
        forecasts=forecasts,
    )
