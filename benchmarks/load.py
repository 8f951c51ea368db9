"""Warehouse loading speed: upsert vs a plain bulk INSERT of the same rows, in one run.

For SQLite and PostgreSQL it measures, on N generated work items in sync-sized batches:
  first load   - `load_batch` into an empty warehouse (upsert, hashes, parent links, counters)
  re-load      - `load_batch` of the same, unchanged items (hash check, no writes)
  plain INSERT - the same prepared rows bulk-inserted into an empty `work_item` table
The first two include building rows from the models; the plain INSERT gets prebuilt rows.

    .venv/bin/python benchmarks/load.py --items 100000
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from mapping.model import Category, Level, StatusCategory, WorkItem
from warehouse.db import open_warehouse
from warehouse.load import ensure_source, load_batch, start_run, work_item_row
from warehouse.models import WorkItem as WorkItemTable
from warehouse.models import table_of

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LEVELS = [Level.epic, Level.capability, Level.feature, Level.story]
STATUSES = [
    ("To Do", StatusCategory.todo),
    ("In Progress", StatusCategory.doing),
    ("Done", StatusCategory.done),
]


def generate(count: int, seed: int = 7) -> list[WorkItem]:
    """A tree: ~1% epics, 3% capabilities, 10% features, the rest stories; raw payload ~1 KB."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    items: list[WorkItem] = []
    parents: dict[Level, list[str]] = {level: [] for level in LEVELS}
    for n in range(count):
        roll = rng.random()
        level = (
            Level.epic
            if roll < 0.01 or n == 0
            else Level.capability
            if roll < 0.04
            else Level.feature
            if roll < 0.14
            else Level.story
        )
        above = LEVELS[LEVELS.index(level) - 1] if level != Level.epic else None
        parent = rng.choice(parents[above]) if above and parents[above] else None
        external_id = str(10000 + n)
        parents[level].append(external_id)
        status, category = rng.choice(STATUSES)
        created = start + timedelta(minutes=n)
        summary = f"Item {n} " + "lorem ipsum " * rng.randint(2, 20)
        items.append(
            WorkItem(
                external_id=external_id,
                key=f"ART{n % 3 + 1}-{n}",
                level=level,
                item_type=level.value.title(),
                title=summary,
                status=status,
                status_category=category,
                parent_external_id=parent,
                estimate=rng.choice([None, 1, 2, 3, 5, 8, 13]),
                business_value=rng.randint(1, 20) if level == Level.epic else None,
                team=f"Team {n % 9}",
                art=f"ART {n % 3 + 1}",
                increment=f"PI 26.{n % 4 + 1}",
                category=rng.choice(list(Category)),
                created_at=created,
                updated_at=created + timedelta(days=rng.randint(0, 90)),
                raw={
                    "id": external_id,
                    "key": f"ART{n % 3 + 1}-{n}",
                    "fields": {
                        "summary": summary,
                        "status": {"name": status, "statusCategory": {"key": category.value}},
                        "labels": ["lpm", f"team-{n % 9}"],
                        "description": "x" * rng.randint(100, 600),
                    },
                },
            )
        )
    return items


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(
    url_for: Callable[[str], str], items: list[WorkItem], batch_size: int
) -> dict[str, float]:
    chunks = batches(items, batch_size)

    upsert_engine = open_warehouse(url_for("upsert"))
    source_id = ensure_source(upsert_engine, "bench", "jira", "https://bench.example")

    def load_all() -> None:
        run = start_run(upsert_engine, source_id, "full")
        for chunk in chunks:
            load_batch(upsert_engine, run, source_id, chunk)

    first = timed(load_all)
    reload = timed(load_all)

    plain_engine = open_warehouse(url_for("plain"))
    plain_source = ensure_source(plain_engine, "bench", "jira", "https://bench.example")
    now = datetime.now(UTC)
    rows = [[work_item_row(item, plain_source, now) for item in chunk] for chunk in chunks]
    statement = insert(table_of(WorkItemTable))

    def insert_all() -> None:
        for chunk_rows in rows:
            with plain_engine.begin() as conn:
                conn.execute(statement, chunk_rows)

    plain = timed(insert_all)
    for engine in (upsert_engine, plain_engine):
        engine.dispose()
    return {"first": first, "reload": reload, "plain": plain}


def sqlite_urls(tag: str) -> Callable[[str], str]:
    return lambda name: f"sqlite:////tmp/lpm-bench-{tag}-{name}.db"


class PostgresDatabases:
    def __init__(self) -> None:
        self.created: list[str] = []

    def __call__(self, name: str) -> str:
        database = f"lpm_bench_{name}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        self.created.append(database)
        return (
            make_url(POSTGRES_ADMIN)
            .set(drivername="postgresql+psycopg", database=database)
            .render_as_string(hide_password=False)
        )

    def drop(self) -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            for database in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(name: str, count: int, figures: dict[str, float]) -> None:
    rate = {key: count / seconds for key, seconds in figures.items()}
    print(
        f"{name:10} first load {rate['first']:>9,.0f}/s ({figures['first']:.2f} s)  "
        f"re-load {rate['reload']:>9,.0f}/s ({figures['reload']:.2f} s)  "
        f"plain INSERT {rate['plain']:>9,.0f}/s ({figures['plain']:.2f} s)  "
        f"first/plain {rate['first'] / rate['plain']:.2f}x  "
        f"reload/plain {rate['reload'] / rate['plain']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    items = generate(args.items)
    print(f"{args.items:,} work items, batches of {args.batch:,}")
    tag = uuid.uuid4().hex[:8]
    try:
        report("sqlite", args.items, measure(sqlite_urls(tag), items, args.batch))
    finally:
        for leftover in Path("/tmp").glob(f"lpm-bench-{tag}-*.db*"):
            leftover.unlink()
    if not args.skip_postgres:
        databases = PostgresDatabases()
        try:
            report("postgresql", args.items, measure(databases, items, args.batch))
        finally:
            databases.drop()


if __name__ == "__main__":
    main()
