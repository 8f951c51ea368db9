"""Portfolio analytics speed: `compute_analytics` beside one aggregate scan of `work_item`.

For each size and database it generates a SAFe portfolio (themes > epics > capabilities >
features > stories, fan-out about 1:10:3:10:20, ~500-byte raw payloads, status history for
started and finished work, PI objectives, a few orphans and one parent cycle), bulk-inserts it
(not measured), refreshes planner statistics, then times in the same run:
  scan       SELECT level, status_category, count(*), sum(estimate) FROM work_item GROUP BY 1, 2
  analytics  compute_analytics: roll-ups, breakdowns, WSJF ranks, health, guardrails, flow
             metrics, predictability, forecasts, hierarchy checks (one transaction)
Each is timed `--repeat` times after one untimed warm-up; the median is reported. On SQLite
one more run has a writer beside it that takes the write lock every 20 ms, as a sync's batch
would: its longest wait is how long the run kept syncs waiting. Databases are created for the
run and dropped after. `--profile` prints, for one more run, the wall time of each statement
of `compute_analytics` (the slowest first).

`--floor` (after everything else, as it changes the data) times what an incremental run could
not avoid, for a 1% change; there is no incremental run yet (benchmarks/RESULTS.md, issue 6):
  detect     the changed items found by comparing (content_hash, parent_id, deleted_at) of every
             work item with a copy kept from the previous run, after 1% of the items changed
             (the loader writes a row, or its history, only with one of those)
  republish  replacing every row of the result tables, each of which carries `computed_at`
  history    the status-history aggregate of the changed items only

    .venv/bin/python benchmarks/analytics.py --items 100000 1000000
"""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, insert, text
from sqlalchemy.engine import make_url

from mapping.config import PortfolioConfig
from warehouse.analytics import RESULT_TABLES, compute_analytics
from warehouse.db import open_warehouse
from warehouse.load import ensure_source
from warehouse.models import Objective, WorkItem, WorkItemHistory, table_of
from warehouse.scratch import Scratch

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SCAN = "SELECT level, status_category, count(*), sum(estimate) FROM work_item GROUP BY 1, 2"
NOW = datetime(2026, 8, 20, 12, 0, tzinfo=UTC)
FIRST_PI = date(2025, 1, 6)
PI_COUNT = 8
FAN_OUT = {"epic": 10, "capability": 3, "feature": 10, "story": 20}
PER_THEME = 1 + 10 + 10 * 3 + 10 * 3 * 10 + 10 * 3 * 10 * 20
FIBONACCI = [1, 2, 3, 5, 8, 13]
CHUNK = 20_000


def increments() -> list[dict[str, Any]]:
    """Eight PIs of ten weeks plus an innovation week; NOW falls in the seventh."""
    return [
        {
            "name": f"PI {n + 1}",
            "start": FIRST_PI + timedelta(weeks=11 * n),
            "end": FIRST_PI + timedelta(weeks=11 * n + 10, days=-3),
        }
        for n in range(PI_COUNT)
    ]


PORTFOLIO = PortfolioConfig.model_validate(
    {"name": "Benchmark", "increments": increments(), "wsjf": {"job_size_fallback": True}}
)


@dataclass
class Rows:
    items: list[dict[str, Any]]
    history: list[dict[str, Any]]


class Generator:
    """A deterministic portfolio, produced theme by theme so memory stays flat."""

    def __init__(self, items: int, source_id: int, seed: int = 7):
        self.themes = max(1, round(items / PER_THEME))
        self.arts = max(2, items // 50_000)
        self.source_id = source_id
        self.rng = random.Random(seed)
        self.next_id = 1
        self.now = NOW
        self.pis = increments()

    def chunks(self) -> Iterator[Rows]:
        for theme in range(self.themes):
            rows = Rows([], [])
            self._theme(theme, rows)
            yield rows

    def objectives(self) -> list[dict[str, Any]]:
        rows = []
        for art in range(self.arts):
            for pi in self.pis:
                for n in range(8):
                    planned = self.rng.choice([5, 8, 10])
                    rows.append(
                        {
                            "source_id": self.source_id,
                            "external_id": f"O{art}-{pi['name']}-{n}",
                            "key": f"OBJ-{art}-{n}",
                            "title": "Objective",
                            "team": f"Team {art}.{n}",
                            "art": f"ART {art}",
                            "increment": pi["name"],
                            "committed": n < 6,
                            "planned_value": planned,
                            "actual_value": planned * self.rng.random()
                            if pi["start"] < self.now.date()
                            else None,
                            "status_category": "done",
                            "updated_at": self.now,
                            "deleted_at": None,
                            "content_hash": "0" * 32,
                            "raw": {},
                        }
                    )
        return rows

    def _theme(self, theme: int, rows: Rows) -> None:
        theme_id = self._item(rows, "theme", None, status="doing")
        for _ in range(FAN_OUT["epic"]):
            epic_id = self._item(rows, "epic", theme_id, status="doing", wsjf=True)
            for _ in range(FAN_OUT["capability"]):
                capability_id = self._item(rows, "capability", epic_id, status="doing", wsjf=True)
                for _ in range(FAN_OUT["feature"]):
                    self._feature(rows, capability_id)
        if theme == 0:
            self._oddities(rows)

    def _feature(self, rows: Rows, parent: int) -> None:
        rng = self.rng
        pi_index = min(PI_COUNT - 1, int(rng.triangular(0, PI_COUNT, 6)))
        pi = self.pis[pi_index]
        art = f"ART {rng.randrange(self.arts)}"
        past = pi["end"] < self.now.date()
        running = pi["start"] <= self.now.date() <= pi["end"]
        category = rng.choices(["business", "enabler", "maintenance"], [6, 2.5, 1.5])[0]
        status = "done" if past and rng.random() < 0.9 else "doing" if running else "todo"
        feature_id = self._item(
            rows,
            "feature",
            parent,
            status=status,
            wsjf=True,
            art=art,
            increment=pi["name"],
            category=category,
        )
        team = f"Team {art[4:]}.{rng.randrange(8)}"
        for _ in range(rng.randint(15, 25)):
            if status == "done":
                story_status = "done"
            elif status == "doing":
                story_status = rng.choices(["done", "doing", "todo"], [5, 2, 3])[0]
            else:
                story_status = "todo"
            story_id = self._item(rows, "story", feature_id, status=story_status, team=team)
            if story_status != "todo":
                self._history(rows, story_id, story_status, pi)

    def _history(self, rows: Rows, item_id: int, status: str, pi: dict[str, Any]) -> None:
        rng = self.rng
        start = datetime.combine(pi["start"], datetime.min.time(), UTC)
        span = min((pi["end"] - pi["start"]).days, max(1, (self.now - start).days - 1))
        doing_at = start + timedelta(days=rng.uniform(0, span * 0.7), seconds=rng.randrange(86400))
        steps = [
            (doing_at, "status_category", "todo", "doing"),
            (doing_at, "status", "To Do", "In Progress"),
        ]
        at = doing_at
        if rng.random() < 0.2:
            at += timedelta(hours=rng.uniform(4, 72))
            steps.append((at, "status", "In Progress", "Blocked"))
            at += timedelta(hours=rng.uniform(4, 96))
            steps.append((at, "status", "Blocked", "In Progress"))
        if status == "done":
            at = min(self.now - timedelta(hours=1), at + timedelta(hours=rng.uniform(8, 240)))
            steps.append((at, "status_category", "doing", "done"))
            steps.append((at, "status", "In Progress", "Done"))
        for number, (when, field, before, after) in enumerate(steps):
            rows.history.append(
                {
                    "work_item_id": item_id,
                    "change_id": str(number),
                    "changed_at": when,
                    "field": field,
                    "from_value": before,
                    "to_value": after,
                }
            )

    def _oddities(self, rows: Rows) -> None:
        """A few items naming parents never synced, and one two-item parent cycle."""
        for _ in range(5):
            self._item(rows, "story", None, status="todo", parent_external_id="missing")
        first = self._item(rows, "feature", None, status="todo")
        second = self._item(rows, "feature", first, status="todo")
        for row in rows.items:
            if row["id"] == first:
                row["parent_id"] = second
                row["parent_external_id"] = str(second)

    def _item(
        self,
        rows: Rows,
        level: str,
        parent: int | None,
        *,
        status: str,
        wsjf: bool = False,
        parent_external_id: str | None = None,
        **fields: Any,
    ) -> int:
        rng = self.rng
        item_id = self.next_id
        self.next_id += 1
        created = self.now - timedelta(days=rng.uniform(30, 600))
        title = f"{level.title()} {item_id} " + "lorem ipsum " * rng.randint(2, 12)
        row = {
            "id": item_id,
            "source_id": self.source_id,
            "external_id": str(item_id),
            "key": f"P-{item_id}",
            "level": level,
            "item_type": level.title(),
            "title": title,
            "status": {"todo": "To Do", "doing": "In Progress", "done": "Done"}[status],
            "status_category": status,
            "parent_id": parent,
            "parent_external_id": parent_external_id or (str(parent) if parent else None),
            "estimate": rng.choice([None, *FIBONACCI, *FIBONACCI]) if level == "story" else None,
            "business_value": rng.choice(FIBONACCI) if wsjf else None,
            "time_criticality": rng.choice(FIBONACCI) if wsjf else None,
            "risk_reduction": rng.choice(FIBONACCI) if wsjf and rng.random() > 0.05 else None,
            "job_size": rng.choice(FIBONACCI) if wsjf and rng.random() > 0.2 else None,
            "team": None,
            "art": None,
            "increment": None,
            "category": None,
            "portfolio_state": None,
            "tracker_rank": None,
            "flagged": rng.random() < 0.02,
            "start_date": None,
            "target_date": None,
            "created_at": created,
            "updated_at": created + timedelta(days=rng.uniform(0, 20)),
            "resolved_at": None,
            "deleted_at": None,
            "writeback_values": {},
            "content_hash": "0" * 32,
            "synced_at": self.now,
            "raw": {
                "id": str(item_id),
                "fields": {
                    "summary": title,
                    "status": {"name": status},
                    "labels": ["lpm", level],
                    "description": "x" * rng.randint(150, 450),
                },
            },
        }
        row.update(fields)
        rows.items.append(row)
        return item_id


def populate(engine: Engine, items: int) -> tuple[int, int]:
    """Bulk-insert a generated portfolio; returns (work items, history rows)."""
    source_id = ensure_source(engine, "bench", "jira", "https://bench.example")
    generator = Generator(items, source_id)
    counts = [0, 0]
    for rows in generator.chunks():
        _bulk(engine, table_of(WorkItem).name, rows.items)
        _bulk(engine, table_of(WorkItemHistory).name, rows.history)
        counts[0] += len(rows.items)
        counts[1] += len(rows.history)
    _bulk(engine, table_of(Objective).name, generator.objectives())
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    return counts[0], counts[1]


def _bulk(engine: Engine, table_name: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if engine.dialect.name == "postgresql":
        columns = list(rows[0])
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            statement = f"COPY {table_name} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row([Jsonb(v) if isinstance(v, dict) else v for v in row.values()])
            raw.commit()
        finally:
            raw.close()
        return
    table = {
        t.name: t for t in (table_of(WorkItem), table_of(WorkItemHistory), table_of(Objective))
    }
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # the parent cycle
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(table[table_name]), rows[start : start + CHUNK])


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    action()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append(time.perf_counter() - started)
    return runs


def profile(engine: Engine, top: int = 20) -> None:
    """One more run, timing every statement it sends through its `Scratch`."""
    statements: list[tuple[float, str]] = []
    run = Scratch.run

    def timed_run(self: Scratch, sql: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return run(self, sql, *args, **kwargs)
        finally:
            statements.append((time.perf_counter() - started, " ".join(sql.split())))

    Scratch.run = timed_run  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        compute_analytics(engine, PORTFOLIO, now=NOW)
        total = time.perf_counter() - started
    finally:
        Scratch.run = run  # type: ignore[method-assign]
    print(f"  profiled run {total:.2f} s, {len(statements)} statements:")
    for seconds, sql in sorted(statements, reverse=True)[:top]:
        print(f"  {seconds:7.3f} s  {sql[:110]}")


def floor(engine: Engine, repeat: int) -> dict[str, Any]:
    """Median times of the parts an incremental run after a 1% change could not avoid."""
    postgres = engine.dialect.name == "postgresql"
    key = "BIGINT" if postgres else "INTEGER"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE bench_seen (id {key} PRIMARY KEY, content_hash VARCHAR(32),"
            " parent_id BIGINT, deleted_at TIMESTAMP WITH TIME ZONE)"
        )
        conn.exec_driver_sql(
            "INSERT INTO bench_seen SELECT id, content_hash, parent_id, deleted_at FROM work_item"
        )
        conn.exec_driver_sql("UPDATE work_item SET content_hash = 'changed' WHERE MOD(id, 100) = 7")
        for table in RESULT_TABLES:
            conn.exec_driver_sql(f"CREATE TABLE bench_copy_{table} AS SELECT * FROM {table}")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM ANALYZE" if postgres else "ANALYZE")
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    changed: list[int] = []

    def detect() -> None:
        with engine.connect() as conn:
            changed[:] = (
                conn.exec_driver_sql(
                    "SELECT w.id FROM work_item w LEFT JOIN bench_seen s ON s.id = w.id"
                    " WHERE s.id IS NULL OR s.content_hash <> w.content_hash"
                    f" OR s.parent_id {differs} w.parent_id OR s.deleted_at {differs} w.deleted_at"
                )
                .scalars()
                .all()
            )

    def republish() -> None:
        with engine.begin() as conn:
            for table in RESULT_TABLES:
                conn.exec_driver_sql(f"DELETE FROM {table}")
                conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM bench_copy_{table}")

    def history() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "SELECT work_item_id, COUNT(*), MIN(changed_at), MAX(changed_at)"
                " FROM work_item_history WHERE work_item_id IN"
                " (SELECT id FROM work_item WHERE content_hash = 'changed')"
                " GROUP BY work_item_id"
            ).all()

    detected = statistics.median(timed(detect, repeat))
    with engine.connect() as conn:
        rows = sum(
            conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
            for table in RESULT_TABLES
        )
    return {
        "changed": len(changed),
        "detect": detected,
        "republish": statistics.median(timed(republish, repeat)),
        "result_rows": rows,
        "history_of_changed": statistics.median(timed(history, repeat)),
    }


def measure(
    url: str, items: int, repeat: int, profiled: bool = False, floored: bool = False
) -> dict[str, Any]:
    engine = open_warehouse(url)
    started = time.perf_counter()
    loaded, history = populate(engine, items)
    generation = time.perf_counter() - started

    def scan() -> None:
        with engine.connect() as conn:
            conn.execute(text(SCAN)).all()

    scans = timed(scan, repeat)
    runs = timed(lambda: compute_analytics(engine, PORTFOLIO, now=NOW), repeat)
    summary = compute_analytics(engine, PORTFOLIO, now=NOW)
    if profiled:
        profile(engine)
    blocked = None
    if engine.dialect.name == "sqlite":
        database = engine.url.database or ""
        blocked = longest_writer_wait(
            database, lambda: compute_analytics(engine, PORTFOLIO, now=NOW)
        )
    floors = floor(engine, repeat) if floored else None
    engine.dispose()
    return {
        "floor": floors,
        "items": loaded,
        "history": history,
        "generation": generation,
        "scan": statistics.median(scans),
        "scans": scans,
        "analytics": statistics.median(runs),
        "runs": runs,
        "rolled_up": summary.rolled_up,
        "ranked": summary.ranked,
        "cycles": summary.cycles,
        "orphans": summary.orphans,
        "blocked": blocked,
    }


def longest_writer_wait(database: str, action: Callable[[], object]) -> float:
    """Seconds a writer taking the write lock every 20 ms waited at most while `action` ran."""
    done = threading.Event()
    waits: list[float] = []

    def writer() -> None:
        conn = sqlite3.connect(database, timeout=600, isolation_level=None)
        try:
            while not done.is_set():
                started = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                waits.append(time.perf_counter() - started)
                conn.execute("ROLLBACK")
                time.sleep(0.02)
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        action()
    finally:
        done.set()
        thread.join()
    return max(waits, default=0.0)


class PostgresDatabase:
    def __init__(self) -> None:
        self.name = f"lpm_bench_analytics_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> str:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return (
            make_url(POSTGRES_ADMIN)
            .set(drivername="postgresql+psycopg", database=self.name)
            .render_as_string(hide_password=False)
        )

    def __exit__(self, *_: object) -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def report(database: str, figures: dict[str, Any]) -> None:
    ratio = figures["analytics"] / figures["scan"]
    runs = ", ".join(f"{run:.2f}" for run in figures["runs"])
    scans = ", ".join(f"{run:.3f}" for run in figures["scans"])
    print(
        f"{database:10} {figures['items']:>9,} items {figures['history']:>9,} history  "
        f"scan {figures['scan']:7.3f} s  analytics {figures['analytics']:7.2f} s  "
        f"analytics/scan {ratio:5.1f}x  (runs {runs}; scans {scans}; "
        f"{figures['rolled_up']:,} roll-ups, {figures['ranked']:,} ranked, "
        f"{figures['cycles']} on cycles, {figures['orphans']} orphans; "
        f"generated in {figures['generation']:.0f} s)"
        + (
            f"  a writer waited at most {figures['blocked']:.2f} s"
            if figures["blocked"] is not None
            else ""
        ),
        flush=True,
    )
    floors = figures["floor"]
    if floors is not None:
        scan = figures["scan"]
        print(
            f"{database:10} floor of an incremental run (not an incremental run): after "
            f"{floors['changed']:,} items changed, detecting them {floors['detect']:.3f} s "
            f"({floors['detect'] / scan:.1f}x scan), rewriting all {floors['result_rows']:,} "
            f"result rows {floors['republish']:.3f} s ({floors['republish'] / scan:.1f}x), "
            f"their history {floors['history_of_changed']:.3f} s "
            f"({floors['history_of_changed'] / scan:.1f}x)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--profile", action="store_true", help="time each statement of a run")
    parser.add_argument(
        "--floor", action="store_true", help="time what an incremental run could not avoid"
    )
    args = parser.parse_args()
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for database in args.databases:
        for items in args.items:
            if database == "sqlite":
                with tempfile.TemporaryDirectory(prefix="lpm-bench-") as folder:
                    url = f"sqlite:///{Path(folder) / 'warehouse.db'}"
                    results[database, items] = measure(
                        url, items, args.repeat, args.profile, args.floor
                    )
            else:
                with PostgresDatabase() as url:
                    results[database, items] = measure(
                        url, items, args.repeat, args.profile, args.floor
                    )
            report(database, results[database, items])
    for database in args.databases:
        sizes = sorted(items for db, items in results if db == database)
        if len(sizes) > 1:
            small, large = results[database, sizes[0]], results[database, sizes[-1]]
            print(
                f"{database:10} analytics({sizes[-1]:,}) / analytics({sizes[0]:,}) = "
                f"{large['analytics'] / small['analytics']:.1f}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
