"""ART predictability (SAFe): actual business value / planned business value of PI objectives.

Per ART and PI, over live objectives (not deleted, not removed): the planned value counts
committed objectives only, the actual value counts every objective, committed or not, so
stretch objectives can lift an ART above 100%. An objective's ART is its `art`, else its team.
A value not yet entered counts as 0. 80-100% is the healthy range (`in_range`).

Table `predictability`: id, computed_at, art, increment, committed_objectives,
uncommitted_objectives, planned_value, actual_value, predictability (NULL when nothing committed
was planned), in_range.
"""

from __future__ import annotations

from datetime import datetime

from warehouse.scratch import Scratch

HEALTHY = (0.8, 1.0)


def compute_predictability(scratch: Scratch, now: datetime) -> None:
    scratch.run(
        """
        INSERT INTO predictability (id, computed_at, art, increment, committed_objectives,
                                    uncommitted_objectives, planned_value, actual_value,
                                    predictability, in_range)
        SELECT ROW_NUMBER() OVER (ORDER BY t.increment, t.art), :now, t.art, t.increment,
               t.committed_objectives, t.uncommitted_objectives, t.planned_value,
               t.actual_value, t.predictability,
               CASE WHEN t.predictability IS NULL THEN NULL
                    WHEN t.predictability >= :low AND t.predictability <= :high THEN TRUE
                    ELSE FALSE END
        FROM (
            SELECT p.*, CASE WHEN p.planned_value > 0
                             THEN p.actual_value / p.planned_value END AS predictability
            FROM (
                SELECT COALESCE(o.art, o.team) AS art, o.increment,
                       SUM(CASE WHEN o.committed THEN 1 ELSE 0 END) AS committed_objectives,
                       SUM(CASE WHEN o.committed THEN 0 ELSE 1 END) AS uncommitted_objectives,
                       SUM(CASE WHEN o.committed THEN COALESCE(o.planned_value, 0)
                                ELSE CAST(0 AS FLOAT) END) AS planned_value,
                       SUM(COALESCE(o.actual_value, 0)) AS actual_value
                FROM objective o
                WHERE o.deleted_at IS NULL AND o.status_category <> 'removed'
                GROUP BY COALESCE(o.art, o.team), o.increment
            ) p
        ) t
        """,
        {"low": HEALTHY[0], "high": HEALTHY[1]},
        times={"now": now},
    )
