"""Report generation speed and size: `write_report` on a generated 100,000-item portfolio.

The portfolio is the analytics benchmark's (benchmarks/analytics.py: themes > epics >
capabilities > features > stories with status history, PI objectives, orphans and a parent
cycle), bulk-inserted and rolled up by `compute_analytics` (neither is measured). Then, per
database, `write_report` is timed `--repeat` times after one untimed warm-up (which also starts
the chart renderer); the median is reported with its parts: the report queries, the charts
(Vega-Lite to SVG) and the page + exports. `--long-titles` gives every item a 60-240 character
title, for a worst case of the page size; `--flat` uses benchmarks/load.py's portfolio instead
(a wider tree: 14% of the items are epics, capabilities or features). Goal: <= 15 s,
portfolio.html < 5 MB.

    .venv/bin/python -m benchmarks.report --items 100000
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from benchmarks.analytics import NOW, PORTFOLIO, PostgresDatabase, populate
from benchmarks.load import generate
from flows.report import render_html, write_report
from flows.report_charts import build_charts
from mapping.config import LpmConfig
from warehouse.analytics import compute_analytics
from warehouse.db import open_warehouse
from warehouse.load import ensure_source, load_batch, start_run
from warehouse.report_data import load_report_data

GOAL_SECONDS = 15.0
GOAL_BYTES = 5 * 1024 * 1024
WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit"]


def lengthen_titles(engine: Engine) -> None:
    """Give every item a long title (60-240 characters), for the worst case of the page size."""
    rng = random.Random(11)
    with engine.begin() as conn:
        ids = conn.execute(text("SELECT id FROM work_item")).scalars().all()
        conn.execute(
            text("UPDATE work_item SET title = :title WHERE id = :id"),
            [
                {"id": item_id, "title": " ".join(rng.choices(WORDS, k=rng.randint(10, 40)))[:240]}
                for item_id in ids
            ],
        )


def populate_flat(engine: Engine, items: int) -> int:
    """benchmarks/load.py's portfolio: 14% epics/capabilities/features (a tree row each, twice
    the SAFe shape's share) with titles of up to 250 characters, loaded by `load_batch`."""
    source_id = ensure_source(engine, "bench", "jira", "https://bench.example")
    run_id = start_run(engine, source_id, "full")
    generated = generate(items)
    for start in range(0, len(generated), 1000):
        load_batch(engine, run_id, source_id, generated[start : start + 1000])
    return len(generated)


def measure(url: str, items: int, repeat: int, long_titles: bool, flat: bool) -> dict[str, Any]:
    engine = open_warehouse(url)
    loaded = populate_flat(engine, items) if flat else populate(engine, items)[0]
    if long_titles:
        lengthen_titles(engine)
    # New connections, so the planner sees the statistics gathered after the bulk load.
    engine.dispose()
    engine = open_warehouse(url)
    compute_analytics(engine, PORTFOLIO, now=NOW)
    config = LpmConfig(portfolio=PORTFOLIO)
    with tempfile.TemporaryDirectory(prefix="lpm-bench-report-") as folder:
        out = Path(folder)
        write_report(engine, config, out, now=NOW)
        totals, queries, charts, pages = [], [], [], []
        for _ in range(repeat):
            started = time.perf_counter()
            result = write_report(engine, config, out, now=NOW)
            totals.append(time.perf_counter() - started)
            started = time.perf_counter()
            data = load_report_data(engine, PORTFOLIO, now=NOW)
            queries.append(time.perf_counter() - started)
            started = time.perf_counter()
            build_charts(data)
            charts.append(time.perf_counter() - started)
            started = time.perf_counter()
            render_html(data)
            pages.append(time.perf_counter() - started)
        html_bytes = result.html_bytes
        export_bytes = sum(p.stat().st_size for p in (out / "data").iterdir())
        rows = {name: len(rows) for name, rows in result.data.tables().items()}
    engine.dispose()
    return {
        "items": loaded,
        "total": statistics.median(totals),
        "totals": totals,
        "queries": statistics.median(queries),
        "charts": statistics.median(charts),
        "page": statistics.median(pages),
        "html_bytes": html_bytes,
        "export_bytes": export_bytes,
        "rows": rows,
    }


def report(database: str, figures: dict[str, Any]) -> None:
    runs = ", ".join(f"{run:.2f}" for run in figures["totals"])
    verdict = (
        "goal met"
        if figures["total"] <= GOAL_SECONDS and figures["html_bytes"] < GOAL_BYTES
        else "GOAL MISSED"
    )
    print(
        f"{database:10} {figures['items']:>9,} items  write_report {figures['total']:6.2f} s "
        f"(runs {runs}; queries {figures['queries']:.2f} s, charts {figures['charts']:.2f} s, "
        f"page render incl. charts {figures['page']:.2f} s)  portfolio.html "
        f"{figures['html_bytes'] / 1e6:.2f} MB, exports {figures['export_bytes'] / 1e6:.2f} MB  "
        f"{verdict}",
        flush=True,
    )
    print(f"{'':10} rows: {figures['rows']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--long-titles", action="store_true")
    parser.add_argument(
        "--flat", action="store_true", help="benchmarks/load.py's portfolio instead (see above)"
    )
    args = parser.parse_args()
    for database in args.databases:
        if database == "sqlite":
            with tempfile.TemporaryDirectory(prefix="lpm-bench-") as folder:
                url = f"sqlite:///{Path(folder) / 'warehouse.db'}"
                figures = measure(url, args.items, args.repeat, args.long_titles, args.flat)
        else:
            with PostgresDatabase() as url:
                figures = measure(url, args.items, args.repeat, args.long_titles, args.flat)
        report(database, figures)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
