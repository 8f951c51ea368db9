"""Roll-ups of every theme, epic, capability and feature over all its descendants, across sources.

The work is counted at the leaves: a leaf (an item with no live child: a story, or a feature not
yet split into stories) stands for itself; an item above it sums its leaves, so a parent's totals
are exactly the sum of its children's and nothing is counted twice. Estimates are summed from
estimated leaves only. Progress is estimate-weighted (done estimate / total estimate) when the
leaves below carry a positive total estimate, and count-based (done leaves / leaves) otherwise;
`progress_basis` says which. Adding a done leaf never lowers progress (except below a done leaf,
whose own estimate its first child replaces: a re-estimate); an unestimated leaf moves only
count-based progress. Dates roll up over the item and all its descendants: each contributes
its start and target date, falling back to the dates of its (inherited) PI.

Sums are built bottom-up, one set-based statement per tree depth: each pass folds the own
contributions and the accumulated rows of one depth into the parents above, one row per parent
and (art, team, PI) group, into `tmp_acc`. The work is linear in the tree size however deep it
is, and only the folded rows are ever written.

Table `rollup` (one row per live theme, epic, capability and feature; the columns set here,
besides those of warehouse/wsjf.py, warehouse/health.py and warehouse/forecast.py):
  work_item_id, computed_at, art and increment (inherited values, see warehouse/hierarchy.py),
  total_items / done_items (leaves below, or the item itself when it is a leaf),
  estimated_items (of those, how many carry an estimate), total_estimate / done_estimate (NULL
  when no leaf below is estimated), progress in [0, 1], progress_basis 'estimate' | 'count',
  flagged_items (flagged items not done, the item included), start_date / end_date.
Table `rollup_breakdown` (the same figures per group of leaves; groups without leaves omitted):
  id (row number within the run), work_item_id, computed_at, art, team, increment,
  total_items, done_items, estimated_items, total_estimate, done_estimate, progress,
  progress_basis, start_date, end_date.
"""

from __future__ import annotations

from datetime import datetime

from mapping.config import PortfolioConfig
from warehouse.health import with_health
from warehouse.scratch import Scratch
from warehouse.wsjf import with_wsjf

ROLLUP_COLUMNS = (
    "work_item_id",
    "computed_at",
    "art",
    "increment",
    "total_items",
    "done_items",
    "estimated_items",
    "total_estimate",
    "done_estimate",
    "progress",
    "progress_basis",
    "flagged_items",
    "start_date",
    "end_date",
    "cost_of_delay",
    "job_size",
    "job_size_basis",
    "wsjf",
    "rank",
    "rank_scope",
    "unranked_reason",
    "elapsed",
    "schedule_health",
    "health",
    "health_reason",
)
ROLLED_UP_LEVELS = ("theme", "epic", "capability", "feature")
_LEVELS = ", ".join(f"'{level}'" for level in ROLLED_UP_LEVELS)
_GROUP = "art, team, increment"
_SUMS = "items, done_items, estimated_items, total_estimate, done_estimate, flagged_items"
_OWN = """
    SELECT n.id AS node_id, n.parent_id, n.art, n.team, n.increment,
           n.is_leaf AS items,
           CASE WHEN n.is_leaf = 1 AND n.status_category = 'done' THEN 1 ELSE 0 END
               AS done_items,
           CASE WHEN n.is_leaf = 1 AND n.estimate IS NOT NULL THEN 1 ELSE 0 END
               AS estimated_items,
           CASE WHEN n.is_leaf = 1 THEN n.estimate END AS total_estimate,
           CASE WHEN n.is_leaf = 1 AND n.status_category = 'done' THEN n.estimate
                WHEN n.is_leaf = 1 AND n.estimate IS NOT NULL THEN 0 END AS done_estimate,
           CASE WHEN n.flagged AND n.status_category <> 'done' THEN 1 ELSE 0 END
               AS flagged_items,
           COALESCE(n.start_date, pi.start_date) AS start_date,
           COALESCE(n.target_date, pi.end_date) AS end_date
    FROM tmp_node n LEFT JOIN tmp_increment pi ON pi.name = n.increment
"""
"""Each node's own share: a leaf its work, every node its dates and its flag."""
_FOLD = """
    SUM(x.items) AS items, SUM(x.done_items) AS done_items,
    SUM(x.estimated_items) AS estimated_items, SUM(x.total_estimate) AS total_estimate,
    SUM(x.done_estimate) AS done_estimate, SUM(x.flagged_items) AS flagged_items,
    MIN(x.start_date) AS start_date, MAX(x.end_date) AS end_date
"""


def compute_rollups(scratch: Scratch, portfolio: PortfolioConfig, now: datetime) -> int:
    """Fill `rollup` (all but the forecasts) and `rollup_breakdown`; returns the roll-up count.

    The WSJF and health columns are computed in the same statement, by the queries of
    warehouse/wsjf.py and warehouse/health.py.
    """
    scratch.declare(
        "tmp_acc",
        """node_id BIGINT, depth INTEGER, art VARCHAR(255), team VARCHAR(255),
        increment VARCHAR(255), items INTEGER, done_items INTEGER, estimated_items INTEGER,
        total_estimate DOUBLE PRECISION, done_estimate DOUBLE PRECISION,
        flagged_items INTEGER, start_date DATE, end_date DATE""",
        indexes=["depth"],
    )
    deepest = scratch.run("SELECT MAX(depth) FROM tmp_node").scalar_one()
    for depth in range(deepest or 0, 0, -1):
        scratch.run(
            f"""
            INSERT INTO tmp_acc (node_id, depth, {_GROUP}, {_SUMS}, start_date, end_date)
            SELECT x.parent_id, :depth - 1, x.art, x.team, x.increment, {_FOLD}
            FROM (
                SELECT own.* FROM ({_OWN} WHERE n.depth = :depth) own
                WHERE own.parent_id IS NOT NULL
                UNION ALL
                SELECT n.parent_id AS node_id, n.parent_id, a.art, a.team, a.increment,
                       a.items, a.done_items, a.estimated_items, a.total_estimate,
                       a.done_estimate, a.flagged_items, a.start_date, a.end_date
                FROM tmp_acc a JOIN tmp_node n ON n.id = a.node_id
                WHERE a.depth = :depth AND n.parent_id IS NOT NULL
            ) x
            GROUP BY x.parent_id, x.art, x.team, x.increment
            """,
            {"depth": depth},
        )
    scratch.create(
        "tmp_group",
        f"""
        SELECT x.node_id, x.art, x.team, x.increment, {_FOLD}
        FROM (
            SELECT own.node_id, own.art, own.team, own.increment, own.items, own.done_items,
                   own.estimated_items, own.total_estimate, own.done_estimate,
                   own.flagged_items, own.start_date, own.end_date
            FROM ({_OWN} WHERE n.level IN ({_LEVELS})) own
            UNION ALL
            SELECT a.node_id, a.art, a.team, a.increment, a.items, a.done_items,
                   a.estimated_items, a.total_estimate, a.done_estimate, a.flagged_items,
                   a.start_date, a.end_date
            FROM tmp_acc a JOIN tmp_node n ON n.id = a.node_id
            WHERE n.level IN ({_LEVELS})
        ) x
        GROUP BY x.node_id, x.art, x.team, x.increment
        """,
        indexes=["node_id"],
    )
    scratch.create(
        "tmp_rollup",
        f"""
        SELECT t.node_id, n.level, n.status_category, n.created_at, n.art, n.increment,
               t.items AS total_items, t.done_items, t.estimated_items, t.total_estimate,
               t.done_estimate, {_progress("t")} AS progress,
               {_basis("t")} AS progress_basis, t.flagged_items, t.start_date, t.end_date,
               n.start_date AS own_start, n.target_date AS own_target,
               pi.start_date AS pi_start, pi.end_date AS pi_end, n.business_value,
               n.time_criticality, n.risk_reduction, n.job_size AS own_job_size
        FROM (SELECT x.node_id, {_FOLD} FROM tmp_group x GROUP BY x.node_id) t
        JOIN tmp_node n ON n.id = t.node_id
        LEFT JOIN tmp_increment pi ON pi.name = n.increment
        """,
    )
    ranked, ranked_params = with_wsjf("SELECT * FROM tmp_rollup", portfolio.wsjf)
    assessed, assessed_params = with_health(scratch, ranked, portfolio.health, now.date())
    scratch.run(
        f"""
        INSERT INTO rollup ({", ".join(ROLLUP_COLUMNS)})
        SELECT r.node_id, :now, {", ".join(f"r.{column}" for column in ROLLUP_COLUMNS[2:])}
        FROM ({assessed}) r
        """,
        {**ranked_params, **assessed_params},
        times={"now": now},
    )
    scratch.run(
        f"""
        INSERT INTO rollup_breakdown (id, work_item_id, computed_at, {_GROUP}, total_items,
                                      done_items, estimated_items, total_estimate,
                                      done_estimate, progress, progress_basis,
                                      start_date, end_date)
        SELECT ROW_NUMBER() OVER (ORDER BY g.node_id, g.art, g.team, g.increment),
               g.node_id, :now, g.art, g.team, g.increment, g.items, g.done_items,
               g.estimated_items, g.total_estimate, g.done_estimate,
               {_progress("g")}, {_basis("g")}, g.start_date, g.end_date
        FROM tmp_group g WHERE g.items > 0
        """,
        times={"now": now},
    )
    return int(scratch.run("SELECT COUNT(*) FROM rollup").scalar_one())


def _progress(alias: str) -> str:
    return (
        f"CASE WHEN {alias}.total_estimate > 0 THEN {alias}.done_estimate / {alias}.total_estimate"
        f" WHEN {alias}.items > 0 THEN CAST({alias}.done_items AS FLOAT) / {alias}.items END"
    )


def _basis(alias: str) -> str:
    return f"CASE WHEN {alias}.total_estimate > 0 THEN 'estimate' ELSE 'count' END"
