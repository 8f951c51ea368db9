"""Health: is an item's progress keeping pace with the time it has used?

An item's window is its own start and target dates, else its PI's dates (`rollup.increment`),
else its rolled-up dates. `elapsed` is the share of the window passed on the day of the run
(0 before it starts, 1 from its last day on). With gap = elapsed - progress:
  off-track  the window has ended and progress < 1, or gap > `health.off_track`
  at-risk    gap > `health.at_risk`
  on-track   otherwise
That is `schedule_health`. `health` is the same, except 'blocked' when a flagged item that is not
done sits in the item's subtree (itself included), and NULL for done items and items without a
window. `health_reason` names the rule: done, flagged, no dates, past end date, behind schedule,
on schedule.

Columns of `rollup`: elapsed, schedule_health, health, health_reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from mapping.config import HealthThresholds
from warehouse.scratch import Scratch, epoch_day


def with_health(
    scratch: Scratch, source: str, thresholds: HealthThresholds, today: date
) -> tuple[str, dict[str, Any]]:
    """A query adding the health columns to the rows of `source`.

    `source` rows carry status_category, progress, flagged_items, the item's own own_start /
    own_target, its PI's pi_start / pi_end and its rolled-up start_date / end_date.
    """
    start = scratch.days("COALESCE(s.own_start, s.pi_start, s.start_date)")
    end = scratch.days("COALESCE(s.own_target, s.pi_end, s.end_date)")
    sql = f"""
        SELECT t.*,
               CASE WHEN t.done = 1 THEN NULL
                    WHEN t.flagged_items > 0 THEN 'blocked'
                    ELSE t.schedule_health END AS health,
               CASE WHEN t.done = 1 THEN 'done'
                    WHEN t.flagged_items > 0 THEN 'flagged'
                    WHEN t.elapsed IS NULL THEN 'no dates'
                    WHEN t.overdue = 1 THEN 'past end date'
                    WHEN t.schedule_health = 'on-track' THEN 'on schedule'
                    ELSE 'behind schedule' END AS health_reason
        FROM (
            SELECT e.*,
                   CASE WHEN e.done = 1 OR e.elapsed IS NULL THEN NULL
                        WHEN e.overdue = 1 THEN 'off-track'
                        WHEN e.elapsed - e.progress > :health_off_track THEN 'off-track'
                        WHEN e.elapsed - e.progress > :health_at_risk THEN 'at-risk'
                        ELSE 'on-track' END AS schedule_health
            FROM (
                SELECT d.*,
                       CASE WHEN d.start_day IS NULL OR d.end_day IS NULL THEN NULL
                            WHEN :health_today >= d.end_day THEN CAST(1 AS FLOAT)
                            WHEN :health_today <= d.start_day THEN CAST(0 AS FLOAT)
                            ELSE CAST(:health_today - d.start_day AS FLOAT)
                                 / (d.end_day - d.start_day)
                       END AS elapsed,
                       CASE WHEN :health_today > d.end_day AND d.progress < 1 THEN 1 ELSE 0 END
                           AS overdue
                FROM (
                    SELECT s.*, CASE WHEN s.status_category = 'done' THEN 1 ELSE 0 END AS done,
                           {start} AS start_day, {end} AS end_day
                    FROM ({source}) s
                ) d
            ) e
        ) t
    """
    params = {
        "health_today": epoch_day(today),
        "health_at_risk": thresholds.at_risk,
        "health_off_track": thresholds.off_track,
    }
    return sql, params
