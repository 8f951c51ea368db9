"""SAFe flow metrics per ART, PI and level, from the status history of live items.

The mappers record `status_category` transitions (todo/doing/done/removed) and `status` name
changes in `work_item_history`, each with its from- and to-value. An item completes at its last
entry into done (else at its `resolved_at`) and counts in the configured PI whose dates contain
that moment (of overlapping PIs, the latest to start); `art` is the item's inherited ART
(warehouse/hierarchy.py). Per (ART, PI, level):
  velocity     completed_items, and completed_estimate (summed estimate of those)
  time         flow time = first entry into doing (or creation, for an item created in doing)
               -> completion, in days; the median and 85th percentile over completed items
               that entered doing (flow_time_items of them), linearly interpolated between
               ranks like percentile_cont
  load         wip: items in doing at the end of the PI (at the run, for the running PI); an
               item's state at a moment is its creation state changed by every transition
               until then (its creation state is its current one undone by all transitions)
  efficiency   active / (active + waiting) time of the completed items, by status name
               (`flow.active_statuses`, `flow.waiting_statuses`; other statuses count in neither)
  distribution completed items by item type and by investment category (`flow_distribution`)
History is read in one pass, aggregated per item: a status's time is the sum of the moments it
was left minus the sum of the moments it was entered (entered at creation if it was the first,
left at the run if it is the current one), so no change needs to be paired with the next one.
Timestamps are taken in whole seconds, so both databases give identical figures.

Table `flow_metric`: id, computed_at, art, increment, level, completed_items,
completed_estimate, flow_time_items, flow_time_p50, flow_time_p85 (days), wip, active_days and
waiting_days (NULL without completed items), efficiency (NULL without time in a listed status).
Table `flow_distribution`: id, computed_at, art, increment, level, dimension
('item_type' | 'category'), value, items, share (of the completed items of the ART, PI, level).
Scratch table `tmp_done` (every live done item: when it completed, its flow and status times)
feeds the forecasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

from mapping.config import FlowOptions, Increment
from warehouse.scratch import Scratch

_KEY = "art, increment, level"


def _flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def _entered(value: str) -> str:
    """+1 for a change into `value` (an SQL condition on a status), -1 for one out of it."""
    return f"({_flag(value.format('to_value'))} - {_flag(value.format('from_value'))})"


_DOING = _entered("{} = 'doing'")
_ACTIVE = "{} IN (SELECT status FROM tmp_flow_status WHERE kind = 'active')"
_WAITING = "{} IN (SELECT status FROM tmp_flow_status WHERE kind = 'waiting')"


def compute_flow(
    scratch: Scratch, options: FlowOptions, increments: Sequence[Increment], now: datetime
) -> None:
    started = [pi for pi in increments if datetime.combine(pi.start, time(), UTC) <= now]
    _statuses(scratch, options)
    _history(scratch, started, now)
    _done(scratch, increments, now)
    _load(scratch, started, now)
    _metrics(scratch, now)
    _distribution(scratch, now)


def _statuses(scratch: Scratch, options: FlowOptions) -> None:
    scratch.declare("tmp_flow_status", "status VARCHAR(255), kind VARCHAR(8)")
    rows = [{"status": s, "kind": "active"} for s in options.active_statuses]
    rows += [{"status": s, "kind": "waiting"} for s in options.waiting_statuses]
    if rows:
        scratch.run_many("INSERT INTO tmp_flow_status (status, kind) VALUES (:status, :kind)", rows)


def _load_times(started: Sequence[Increment], now: datetime) -> dict[str, datetime]:
    """The moment each started PI's load is taken: its end, or the run if that is earlier."""
    return {
        f"load{number}": min(datetime.combine(pi.end + timedelta(days=1), time(), UTC), now)
        for number, pi in enumerate(started)
    }


def _history(scratch: Scratch, started: Sequence[Increment], now: datetime) -> None:
    """One row per item with history: first start, last finish, and the sums that give its
    state at each PI's end and its time in active and waiting statuses."""
    loads = _load_times(started, now)
    per_pi = "".join(
        f", SUM(h.doing) FILTER (WHERE h.doing <> 0 AND h.changed_at <= :{name}) AS doing{number}"
        for number, name in enumerate(loads)
    )
    seconds = scratch.seconds("h.changed_at")
    scratch.create(
        "tmp_history",
        f"""
        SELECT h.id,
               MIN(h.changed_at) FILTER (WHERE h.category = 1 AND h.to_value = 'doing')
                   AS started_at,
               MAX(h.changed_at) FILTER (WHERE h.category = 1 AND h.to_value = 'done')
                   AS done_at,
               SUM(h.doing) AS doing_balance {per_pi},
               SUM(h.active) AS active_balance,
               SUM(h.active * {seconds}) FILTER (WHERE h.active <> 0) AS active_entries,
               SUM(h.waiting) AS waiting_balance,
               SUM(h.waiting * {seconds}) FILTER (WHERE h.waiting <> 0) AS waiting_entries
        FROM (
            SELECT work_item_id AS id, changed_at, to_value,
                   {_flag("field = 'status_category'")} AS category,
                   CASE WHEN field = 'status_category' THEN {_DOING} ELSE 0 END AS doing,
                   CASE WHEN field = 'status' THEN {_entered(_ACTIVE)} ELSE 0 END AS active,
                   CASE WHEN field = 'status' THEN {_entered(_WAITING)} ELSE 0 END AS waiting
            FROM work_item_history WHERE field IN ('status', 'status_category')
            {scratch.materialise}
        ) h
        GROUP BY h.id
        """,
        times=loads,
        indexes=["id"],
    )
    scratch.analyze("tmp_history")


def _status_time(kind: str) -> str:
    """Seconds in the statuses of `kind`: left minus entered, the current one left at the run,
    the first one (current, undone by every change) entered at creation."""
    return (
        f"COALESCE(-d.{kind}_entries, 0) + d.{kind}_now * :now_seconds"
        f" - (d.{kind}_now - COALESCE(d.{kind}_balance, 0)) * d.created_seconds"
    )


def _done(scratch: Scratch, increments: Sequence[Increment], now: datetime) -> None:
    latest_first = sorted(increments, key=lambda pi: pi.start, reverse=True)
    bounds: dict[str, datetime] = {}
    names: dict[str, str] = {}
    whens = []
    for number, pi in enumerate(latest_first):
        bounds[f"pi_start{number}"] = datetime.combine(pi.start, time(), UTC)
        bounds[f"pi_end{number}"] = datetime.combine(pi.end + timedelta(days=1), time(), UTC)
        names[f"pi_name{number}"] = pi.name
        whens.append(
            f" WHEN d.completed_at >= :pi_start{number} AND d.completed_at < :pi_end{number}"
            f" THEN CAST(:pi_name{number} AS VARCHAR(255))"
        )
    increment = f"CASE{''.join(whens)} END" if whens else "CAST(NULL AS VARCHAR(255))"
    scratch.create(
        "tmp_done",
        f"""
        SELECT d.id, d.art, d.level, d.category, d.item_type, d.estimate, d.is_leaf,
               d.completed_at, {increment} AS increment,
               CASE WHEN d.started_at <= d.completed_at
                    THEN {scratch.seconds("d.completed_at")} - {scratch.seconds("d.started_at")}
               END AS flow_seconds,
               {_status_time("active")} AS active_seconds,
               {_status_time("waiting")} AS waiting_seconds
        FROM (
            SELECT n.id, n.art, n.level, n.category, n.item_type, n.estimate, n.is_leaf,
                   COALESCE(h.done_at, n.resolved_at) AS completed_at,
                   -- created in doing (its history starts by leaving doing): started then
                   CASE WHEN h.doing_balance = -1 THEN n.created_at ELSE h.started_at END
                       AS started_at,
                   {scratch.seconds("n.created_at")} AS created_seconds,
                   {_flag(_ACTIVE.format("n.status"))} AS active_now,
                   {_flag(_WAITING.format("n.status"))} AS waiting_now,
                   h.active_entries, h.active_balance, h.waiting_entries, h.waiting_balance
            FROM tmp_node n LEFT JOIN tmp_history h ON h.id = n.id
            WHERE n.status_category = 'done'
            {scratch.materialise}
        ) d
        """,
        {"now_seconds": int(now.timestamp()), **names},
        times=bounds,
    )


def _load(scratch: Scratch, started: Sequence[Increment], now: datetime) -> None:
    """WIP at each started PI's end, per ART and level, then one row per PI with any."""
    scratch.declare(
        "tmp_load", "art VARCHAR(255), increment VARCHAR(255), level VARCHAR(16), wip INTEGER"
    )
    if not started:
        return
    loads = _load_times(started, now)
    doing_now = _flag("n.status_category = 'doing'")
    initial = f"({doing_now} - COALESCE(h.doing_balance, 0))"
    columns = ", ".join(
        "SUM({}) AS wip{}".format(
            _flag(
                f"{_flag(f'n.created_at <= :{name}')} * {initial}"
                f" + COALESCE(h.doing{number}, 0) = 1"
            ),
            number,
        )
        for number, name in enumerate(loads)
    )
    scratch.create(
        "tmp_wip",
        f"SELECT n.art, n.level, {columns}"
        " FROM tmp_node n LEFT JOIN tmp_history h ON h.id = n.id GROUP BY n.art, n.level",
        times=loads,
    )
    scratch.run(
        "INSERT INTO tmp_load (art, increment, level, wip) "
        + " UNION ALL ".join(
            f"SELECT art, CAST(:pi{number} AS VARCHAR(255)), level, wip{number} FROM tmp_wip"
            f" WHERE wip{number} > 0"
            for number in range(len(started))
        ),
        {f"pi{number}": pi.name for number, pi in enumerate(started)},
    )


def _metrics(scratch: Scratch, now: datetime) -> None:
    """Velocity and status times summed per key; the percentiles looked up by position among
    the flow times sorted once; load from `tmp_load`; then one row per key."""
    scratch.create(
        "tmp_flow_key",
        f"""
        SELECT {_KEY}, COUNT(*) AS completed, SUM(estimate) AS estimate,
               COUNT(flow_seconds) AS timed, SUM(active_seconds) AS active_seconds,
               SUM(waiting_seconds) AS waiting_seconds
        FROM tmp_done WHERE increment IS NOT NULL GROUP BY {_KEY}
        """,
    )
    _flow_order(scratch)
    scratch.run(
        f"""
        INSERT INTO flow_metric (id, computed_at, {_KEY}, completed_items,
                                 completed_estimate, flow_time_items, flow_time_p50,
                                 flow_time_p85, wip, active_days, waiting_days, efficiency)
        SELECT ROW_NUMBER() OVER (ORDER BY m.increment, m.art, m.level), :now,
               m.art, m.increment, m.level, m.completed_items, m.completed_estimate,
               m.flow_time_items, m.p50 / 86400, m.p85 / 86400, m.wip,
               CAST(m.active_seconds AS FLOAT) / 86400,
               CAST(m.waiting_seconds AS FLOAT) / 86400,
               CASE WHEN m.active_seconds + m.waiting_seconds > 0
                    THEN CAST(m.active_seconds AS FLOAT)
                         / (m.active_seconds + m.waiting_seconds) END
        FROM (
            SELECT {_KEY}, SUM(x.completed) AS completed_items,
                   SUM(x.estimate) AS completed_estimate, SUM(x.timed) AS flow_time_items,
                   MAX(x.p50) AS p50, MAX(x.p85) AS p85, SUM(x.wip) AS wip,
                   SUM(x.active_seconds) AS active_seconds,
                   SUM(x.waiting_seconds) AS waiting_seconds
            FROM (
                SELECT {_KEY}, k.completed, k.estimate, k.timed, {_percentile(50)} AS p50,
                       {_percentile(85)} AS p85, 0 AS wip, k.active_seconds,
                       k.waiting_seconds
                FROM (
                    SELECT k.*, CAST(COALESCE(SUM(k.timed) OVER (
                        ORDER BY {_KEY} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                    ), 0) AS BIGINT) AS before
                    FROM tmp_flow_key k
                ) k
                UNION ALL
                SELECT {_KEY}, 0, NULL, 0, NULL, NULL, wip, NULL, NULL FROM tmp_load
            ) x
            GROUP BY {_KEY}
        ) m
        """,
        times={"now": now},
    )


def _flow_order(scratch: Scratch) -> None:
    """Scratch table `tmp_flow_order`: the flow times of the completed items in (key, flow
    time) order, numbered by `seq` from 1, so a key's times are the `tmp_flow_key.timed`
    numbers after those of the keys before it (both orders are the same ORDER BY)."""
    rows = (
        f"SELECT flow_seconds FROM tmp_done"
        f" WHERE increment IS NOT NULL AND flow_seconds IS NOT NULL"
        f" ORDER BY {_KEY}, flow_seconds"
    )
    if scratch.dialect == "sqlite":
        # Rows inserted in order get rowids 1, 2, ...: numbered without a window pass.
        scratch.declare("tmp_flow_order", "seq INTEGER PRIMARY KEY, flow_seconds BIGINT")
        scratch.run(f"INSERT INTO tmp_flow_order (flow_seconds) {rows}")
        return
    scratch.create(
        "tmp_flow_order",
        f"SELECT ROW_NUMBER() OVER (ORDER BY {_KEY}, flow_seconds) AS seq, flow_seconds"
        " FROM tmp_done WHERE increment IS NOT NULL AND flow_seconds IS NOT NULL",
        indexes=["seq"],
    )


def _percentile(percent: int) -> str:
    """Seconds at the percentile of a key's flow times, linearly interpolated between the
    ranks around its position 1 + p(n-1) like percentile_cont (integer maths for the ranks,
    so both databases give the same double)."""
    rank = f"k.before + ({percent} * (k.timed - 1)) / 100"
    low = f"(SELECT o.flow_seconds FROM tmp_flow_order o WHERE o.seq = {rank} + 1)"
    high = (
        f"CASE WHEN ({percent} * (k.timed - 1)) / 100 + 2 <= k.timed"
        f" THEN (SELECT o.flow_seconds FROM tmp_flow_order o WHERE o.seq = {rank} + 2) END"
    )
    fraction = f"(({percent} * (k.timed - 1)) % 100)"
    return (
        f"CASE WHEN k.timed > 0 THEN"
        f" {low} + CAST(COALESCE({high}, {low}) - {low} AS FLOAT) * {fraction} / 100 END"
    )


def _distribution(scratch: Scratch, now: datetime) -> None:
    scratch.create(
        "tmp_mix",
        f"""
        SELECT {_KEY}, item_type, category, COUNT(*) AS items
        FROM tmp_done WHERE increment IS NOT NULL
        GROUP BY {_KEY}, item_type, category
        """,
    )
    scratch.run(
        f"""
        INSERT INTO flow_distribution (id, computed_at, {_KEY}, dimension, value, items,
                                       share)
        SELECT ROW_NUMBER() OVER (ORDER BY d.increment, d.art, d.level, d.dimension,
                                  d.value),
               :now, d.art, d.increment, d.level, d.dimension, d.value, d.items,
               CAST(d.items AS FLOAT)
               / SUM(d.items) OVER (PARTITION BY d.art, d.increment, d.level, d.dimension)
        FROM (
            SELECT {_KEY}, 'item_type' AS dimension, item_type AS value, SUM(items) AS items
            FROM tmp_mix GROUP BY {_KEY}, item_type
            UNION ALL
            SELECT {_KEY}, 'category', category, SUM(items) FROM tmp_mix
            GROUP BY {_KEY}, category
        ) d
        """,
        times={"now": now},
    )
