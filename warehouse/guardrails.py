"""Guardrails: how a PI's capacity is allocated across investment categories, against targets.

Capacity is the leaf work planned in a PI (leaves whose inherited increment is the PI, any
status but removed), by inherited investment category. Shares are of the summed estimate when
that is positive, else of the number of leaves (`basis`). A category breaches its guardrail when
its share differs from the target by more than `guardrails.tolerance`. Every configured PI gets
a row per category; `is_current` marks the PI containing the day of the run, the one `lpm rollup`
reports.

Table `guardrail`: increment, category, computed_at, is_current, items, estimate (NULL when no
leaf is estimated), share (NULL when the PI has no planned work), basis 'estimate' | 'count',
target_share, deviation (share - target), breach.
"""

from __future__ import annotations

from datetime import datetime

from mapping.config import Guardrails
from warehouse.scratch import Scratch

_EPSILON = 1e-9
"""Shares exactly at the tolerance are within it, whatever the binary rounding of the inputs."""


def compute_guardrails(
    scratch: Scratch, guardrails: Guardrails, current: str | None, now: datetime
) -> None:
    scratch.run(
        """
        INSERT INTO guardrail (increment, category, computed_at, is_current, items, estimate,
                               share, basis, target_share, deviation, breach)
        WITH target(category, target_share) AS (
            VALUES ('business', CAST(:business AS FLOAT)),
                   ('enabler', CAST(:enabler AS FLOAT)),
                   ('maintenance', CAST(:maintenance AS FLOAT))
        ),
        planned AS (
            SELECT n.increment, n.category, COUNT(*) AS items, SUM(n.estimate) AS estimate
            FROM tmp_node n
            WHERE n.is_leaf = 1 AND n.increment IN (SELECT name FROM tmp_increment)
            GROUP BY n.increment, n.category
        ),
        grid AS (
            SELECT pi.name AS increment, t.category, t.target_share,
                   COALESCE(p.items, 0) AS items, p.estimate,
                   SUM(COALESCE(p.items, 0)) OVER (PARTITION BY pi.name) AS pi_items,
                   SUM(p.estimate) OVER (PARTITION BY pi.name) AS pi_estimate
            FROM tmp_increment pi CROSS JOIN target t
            LEFT JOIN planned p ON p.increment = pi.name AND p.category = t.category
        ),
        shared AS (
            SELECT g.*,
                   CASE WHEN g.pi_estimate > 0 THEN COALESCE(g.estimate, 0) / g.pi_estimate
                        WHEN g.pi_items > 0 THEN CAST(g.items AS FLOAT) / g.pi_items
                   END AS share,
                   CASE WHEN g.pi_estimate > 0 THEN 'estimate'
                        WHEN g.pi_items > 0 THEN 'count' END AS basis
            FROM grid g
        )
        SELECT s.increment, s.category, :now,
               CASE WHEN s.increment = :current THEN TRUE ELSE FALSE END,
               s.items, s.estimate, s.share, s.basis, s.target_share,
               s.share - s.target_share,
               CASE WHEN ABS(s.share - s.target_share) > :tolerance THEN TRUE ELSE FALSE END
        FROM shared s
        """,
        {
            "business": guardrails.business,
            "enabler": guardrails.enabler,
            "maintenance": guardrails.maintenance,
            "tolerance": guardrails.tolerance + _EPSILON,
            "current": current,
        },
        times={"now": now},
    )
