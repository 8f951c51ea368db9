"""Monte Carlo completion forecasts for in-flight epics and features, from past throughput.

An item is in flight when its status category is doing. What remains of it is the number of
its leaves not done (`rollup.total_items - rollup.done_items`). Its team's throughput is the
number of leaves completed per week (weeks counted back from the run) over the last
`forecast.history_weeks` weeks, for the item's ART (`rollup.art`), or for the whole portfolio
when the item has none. Each of `forecast.simulations` trials draws future weeks from those
samples (with replacement) until the remaining work is done; `forecast_p50` / `forecast_p85` are
the run day plus the weeks needed in 50% / 85% of trials (nearest rank). Throughput is summed in
SQL; only the simulation runs in Python, once per team. Trial t of a team draws from a generator
seeded with (forecast.seed, team, t), so a forecast depends on nothing but the seed, the team's
history and the remaining work: the same inputs give the same dates on every run and database.

Columns set in `rollup` for in-flight epics and features: forecast_p50, forecast_p85, and
forecast_reason when no date can be given ('no throughput in the last N weeks', 'beyond N
weeks').
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate

from sqlalchemy import Date

from mapping.config import ForecastOptions
from warehouse.scratch import Scratch

HORIZON_WEEKS = 520
"""Trials stop after ten years; a percentile beyond that is reported, not simulated further."""
_CHUNK_WEEKS = 26
_IN_FLIGHT = "n.level IN ('epic', 'feature') AND n.status_category = 'doing'"


@dataclass(frozen=True)
class Forecast:
    p50_weeks: int | None
    p85_weeks: int | None


def simulate(
    samples: Sequence[int], needs: Sequence[int], simulations: int, seed: str
) -> dict[int, Forecast]:
    """Weeks until cumulative throughput reaches each need, at the 50th and 85th percentile."""
    wanted = sorted(set(needs))
    top = wanted[-1] if wanted else 0
    weeks: dict[int, list[int]] = {need: [] for need in wanted}
    base = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
    for trial in range(simulations):
        rng = random.Random(base + trial)
        path: list[int] = [0]
        while path[-1] < top and len(path) <= HORIZON_WEEKS:
            offset = path[-1]
            path.extend(offset + done for done in accumulate(rng.choices(samples, k=_CHUNK_WEEKS)))
        for need in wanted:
            week = bisect_left(path, need)
            weeks[need].append(week if week <= HORIZON_WEEKS else HORIZON_WEEKS + 1)
    return {need: _percentiles(sorted(trials)) for need, trials in weeks.items()}


def _percentiles(trials: list[int]) -> Forecast:
    def rank(percent: int) -> int | None:
        week = trials[(percent * len(trials) + 99) // 100 - 1]
        return week if week <= HORIZON_WEEKS else None

    return Forecast(rank(50), rank(85))


def compute_forecasts(scratch: Scratch, options: ForecastOptions, now: datetime) -> int:
    """Set the forecast columns of in-flight items; returns how many got dates."""
    in_flight = scratch.run(
        f"""
        SELECT DISTINCT r.art, r.total_items - r.done_items
        FROM rollup r JOIN tmp_node n ON n.id = r.work_item_id WHERE {_IN_FLIGHT}
        """
    ).all()
    if not in_flight:
        return 0
    needs: dict[str | None, list[int]] = defaultdict(list)
    for art, remaining in in_flight:
        needs[art].append(int(remaining))
    history = _weekly_throughput(scratch, options.history_weeks, now)
    today = now.date()
    rows = []
    for art, wanted in sorted(needs.items(), key=lambda entry: entry[0] or ""):
        samples = history.get(art, [0] * options.history_weeks)
        if not any(samples):
            reason = f"no throughput in the last {options.history_weeks} weeks"
            rows += [_row(art, need, None, today, reason) for need in wanted]
            continue
        forecasts = simulate(samples, wanted, options.simulations, f"{options.seed}|{art!r}")
        rows += [_row(art, need, forecasts[need], today, None) for need in wanted]
    scratch.declare(
        "tmp_forecast",
        "art VARCHAR(255), remaining INTEGER, forecast_p50 DATE, forecast_p85 DATE,"
        " reason VARCHAR(255)",
    )
    scratch.run_many(
        "INSERT INTO tmp_forecast (art, remaining, forecast_p50, forecast_p85, reason)"
        " VALUES (:art, :remaining, :forecast_p50, :forecast_p85, :reason)",
        rows,
        {"forecast_p50": Date(), "forecast_p85": Date()},
    )
    scratch.analyze("tmp_forecast")
    scratch.run(
        f"""
        UPDATE rollup
        SET forecast_p50 = f.forecast_p50, forecast_p85 = f.forecast_p85,
            forecast_reason = f.reason
        FROM tmp_forecast f, tmp_node n
        WHERE n.id = rollup.work_item_id AND {_IN_FLIGHT}
          AND f.art IS NOT DISTINCT FROM rollup.art
          AND f.remaining = rollup.total_items - rollup.done_items
        """
    )
    return int(
        scratch.run("SELECT COUNT(*) FROM rollup WHERE forecast_p50 IS NOT NULL").scalar_one()
    )


def _row(
    art: str | None, need: int, forecast: Forecast | None, today: date, reason: str | None
) -> dict[str, object]:
    def when(weeks: int | None) -> date | None:
        return None if weeks is None else today + timedelta(weeks=weeks)

    p50 = when(forecast.p50_weeks) if forecast else None
    p85 = when(forecast.p85_weeks) if forecast else None
    if forecast and p85 is None:
        reason = f"beyond {HORIZON_WEEKS} weeks"
    return {
        "art": art,
        "remaining": need,
        "forecast_p50": p50,
        "forecast_p85": p85,
        "reason": reason,
    }


def _weekly_throughput(scratch: Scratch, weeks: int, now: datetime) -> dict[str | None, list[int]]:
    """Leaves completed per week, newest week first, per ART and (key None) portfolio-wide."""
    completed = scratch.seconds("c.completed_at")
    counts = scratch.run(
        f"""
        SELECT t.art, t.age / 604800 AS week, COUNT(*)
        FROM (SELECT c.art, :now_seconds - {completed} AS age
              FROM tmp_done c WHERE c.is_leaf = 1) t
        WHERE t.age >= 0 AND t.age < :window
        GROUP BY t.art, t.age / 604800
        """,
        {"now_seconds": int(now.timestamp()), "window": weeks * 604800},
    ).all()
    history: dict[str | None, list[int]] = defaultdict(lambda: [0] * weeks)
    for art, week, count in counts:
        if art is not None:
            history[art][week] += count
        history[None][week] += count
    return dict(history)
