"""WSJF scores and ranks (SAFe): Cost of Delay = BV + TC + RR|OE; WSJF = CoD / job size.

The job size is the item's own (positive) job size; when `wsjf.job_size_fallback` is on and it
has none, the summed estimate of its leaves (`rollup.total_estimate`) stands in. Epics and
capabilities are ranked across the portfolio, features within their ART (`rollup.art`: the
feature's ART, inherited from above when it has none, else its team). Rank 1 is the highest
WSJF; ties go to the higher Cost of Delay, then to the older item, then to the lower id, so ranks
are a permutation of 1..n within each scope. Items not ranked say why, the first that applies:
'done', 'no ART or team' (a feature), or 'missing <inputs>' naming every missing input.

Columns of `rollup` (epics, capabilities, features; NULL for themes): cost_of_delay, job_size
(the one used), job_size_basis 'job_size' | 'estimate', wsjf, rank, rank_scope ('portfolio' or
the ART), unranked_reason.
"""

from __future__ import annotations

from typing import Any

from mapping.config import WsjfOptions

RANKED_LEVELS = ("epic", "capability", "feature")
_RANKED = "level IN ({})".format(", ".join(f"'{level}'" for level in RANKED_LEVELS))


def with_wsjf(source: str, options: WsjfOptions) -> tuple[str, dict[str, Any]]:
    """A query adding the WSJF columns to the rows of `source`.

    `source` rows carry node_id, level, status_category, created_at, art, total_estimate and
    the item's own business_value, time_criticality, risk_reduction and own_job_size.
    """
    fallback = "CASE WHEN :wsjf_fallback = 1 AND s.total_estimate > 0 THEN s.total_estimate END"
    missing = " || ".join(
        f"CASE WHEN i.{name} IS NULL THEN ', {label}' ELSE '' END"
        for name, label in (
            ("business_value", "business_value"),
            ("time_criticality", "time_criticality"),
            ("risk_reduction", "risk_reduction"),
            ("job_size", "job_size"),
        )
    )
    sql = f"""
        SELECT j.*,
               CASE WHEN j.{_RANKED} AND j.unranked_reason IS NULL THEN ROW_NUMBER() OVER (
                   PARTITION BY j.level, j.rank_scope, j.unranked_reason IS NULL
                   ORDER BY j.wsjf DESC, j.cost_of_delay DESC, j.created_at, j.node_id
               ) END AS rank
        FROM (
            SELECT i.*, i.cost_of_delay / i.job_size AS wsjf,
                   CASE WHEN NOT i.{_RANKED} THEN NULL
                        WHEN i.status_category = 'done' THEN 'done'
                        WHEN i.rank_scope IS NULL THEN 'no ART or team'
                        WHEN i.cost_of_delay IS NULL OR i.job_size IS NULL
                        THEN 'missing ' || SUBSTR({missing}, 3)
                   END AS unranked_reason
            FROM (
                SELECT s.*,
                       CASE WHEN s.{_RANKED}
                            THEN s.business_value + s.time_criticality + s.risk_reduction
                       END AS cost_of_delay,
                       CASE WHEN NOT s.{_RANKED} THEN NULL
                            WHEN s.own_job_size > 0 THEN s.own_job_size
                            ELSE {fallback} END AS job_size,
                       CASE WHEN NOT s.{_RANKED} THEN NULL
                            WHEN s.own_job_size > 0 THEN 'job_size'
                            WHEN {fallback} IS NOT NULL THEN 'estimate' END AS job_size_basis,
                       CASE WHEN s.level = 'feature' THEN s.art
                            WHEN s.{_RANKED} THEN 'portfolio' END AS rank_scope
                FROM ({source}) s
            ) i
        ) j
    """
    return sql, {"wsjf_fallback": int(options.job_size_fallback)}
