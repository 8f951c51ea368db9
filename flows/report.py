"""`portfolio.html` and its CSV/JSON exports, from the report queries (warehouse/report_data.py).

The page is self-contained: inline CSS, charts as inline SVG (flows/report_charts.py), no script,
and a Content-Security-Policy that forbids loading anything, so it works from a file:// URL with
no network. Every tracker text is escaped by Jinja's autoescape. Each table of the page is
exported as `data/<table>.csv` and `data/<table>.json` from the very rows the page shows.
Files are replaced atomically, so a second run leaves the same report in place.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from sqlalchemy import Engine

from flows.report_charts import build_charts
from mapping.config import LpmConfig
from warehouse.report_data import TABLE_TYPES, ReportData, columns, load_report_data

TEMPLATES = Path(__file__).with_name("templates")
HTML_NAME = "portfolio.html"
DATA_DIR = "data"
TOP_EPICS = 10
PAGE_ROWS = 1_000
"""Rows a table shows on the page at most; the exports always hold every row."""
TREE_ROWS = 6_000
"""Nodes the page's roll-up tree shows at most: past it, the lowest levels are left to the
exports (features first), so the page stays readable and well under 5 MB at 100,000 items."""
TREE_LEVELS = ("theme", "epic", "capability", "feature")


@dataclass(frozen=True)
class PageTable:
    """The rows of a table the page lists, and what it leaves to the exports."""

    rows: list[Any]
    total: int
    note: str = ""

    @property
    def omitted(self) -> int:
        return self.total - len(self.rows)


def page_tables(data: ReportData) -> dict[str, PageTable]:
    """What each table of the page lists (the burn-up is drawn, not listed)."""
    tables = {}
    for name, rows in data.tables().items():
        shown = rows[:PAGE_ROWS]
        tables[name] = PageTable(shown, len(rows), f"The first {len(shown):,} rows are listed.")
    tables["tree"] = _tree_table(data.tree)
    return tables


def _tree_table(rows: list[Any]) -> PageTable:
    levels = list(TREE_LEVELS)
    while len(levels) > 1 and sum(row.level in levels for row in rows) > TREE_ROWS:
        levels.pop()
    shown = [row for row in rows if row.level in levels][:TREE_ROWS]
    left_out = [level for level in TREE_LEVELS if level not in levels]
    note = f"Only the first {len(shown):,} nodes are listed."
    if left_out:
        note = f"This tree has {len(rows):,} nodes: {', '.join(left_out)} rows are not listed."
    return PageTable(shown, len(rows), note)


@dataclass(frozen=True)
class ReportResult:
    html: Path
    csv: dict[str, Path]
    json: dict[str, Path]
    data: ReportData
    """The rows behind every table, for summaries (e.g. Prefect artifacts)."""

    @property
    def html_bytes(self) -> int:
        return self.html.stat().st_size


def write_report(
    engine: Engine, config: LpmConfig, out_dir: Path, *, now: datetime | None = None
) -> ReportResult:
    """Query the warehouse and write `portfolio.html` plus `data/*.csv|json` into `out_dir`."""
    now = now or datetime.now(UTC)
    data = load_report_data(engine, config.portfolio, now=now)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DATA_DIR).mkdir(exist_ok=True)
    csv_paths, json_paths = {}, {}
    for name, rows in data.tables().items():
        csv_paths[name] = out_dir / DATA_DIR / f"{name}.csv"
        json_paths[name] = out_dir / DATA_DIR / f"{name}.json"
        _replace(csv_paths[name], to_csv(name, rows))
        _replace(json_paths[name], to_json(rows))
    html = out_dir / HTML_NAME
    _replace(html, render_html(data).encode())
    return ReportResult(html=html, csv=csv_paths, json=json_paths, data=data)


def _replace(path: Path, content: bytes) -> None:
    """Write to a temporary file beside `path`, then rename over it."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export_value(value: Any) -> Any:
    """A cell as CSV and JSON carry it: dates ISO 8601, numbers unrounded."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def to_csv(name: str, rows: Iterable[Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns(TABLE_TYPES[name]))
    for row in rows:
        writer.writerow(_csv_cell(value) for value in asdict(row).values())
    return buffer.getvalue().encode()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return export_value(value)


def to_json(rows: Iterable[Any]) -> bytes:
    return orjson.dumps(
        [{key: export_value(value) for key, value in asdict(row).items()} for row in rows],
        option=orjson.OPT_INDENT_2,
    )


# Display formats: the page rounds for reading; the exports keep full precision.

BLANK = "\N{EN DASH}"
"""Shown for a missing value."""


def fmt_number(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return BLANK
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def fmt_percent(value: float | None) -> str:
    return BLANK if value is None else f"{value * 100:.0f}%"


def fmt_date(value: date | None) -> str:
    return BLANK if value is None else value.isoformat()


def fmt_datetime(value: datetime | None) -> str:
    return BLANK if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_hours(value: float | None) -> str:
    if value is None:
        return "never"
    if value < 48:
        return f"{value:.1f} h ago"
    return f"{value / 24:.1f} days ago"


def fmt_text(value: object) -> str:
    return BLANK if value is None or value == "" else str(value)


def _progress_bar(value: float | None) -> Markup:
    """A progress bar; the width is a number we computed, never tracker text."""
    if value is None:
        return Markup('<b class="bar"></b>')
    width = max(0.0, min(1.0, value)) * 100
    return Markup('<b class="bar" style="--p:{:.1f}%"></b>').format(width)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=fmt_number,
        percent=fmt_percent,
        date=fmt_date,
        datetime=fmt_datetime,
        hours=fmt_hours,
        text=fmt_text,
        bar=_progress_bar,
    )
    return env


def render_html(data: ReportData) -> str:
    charts = build_charts(data)
    current = [row for row in data.guardrails if row.is_current]
    attention = len(data.quarantine) + len(data.writeback_conflicts) + len(data.hierarchy_issues)
    template = _environment().get_template("portfolio.html.j2")
    return template.render(
        data=data,
        page=page_tables(data),
        charts=charts,
        data_dir=DATA_DIR,
        live_items=sum(row.total for row in data.levels),
        breaches=[row for row in current if row.breach],
        epic_health=_count(row.health or "none" for row in data.epics),
        attention=attention,
        svg=lambda chart_id: Markup(charts[chart_id].svg or ""),
    )


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def publish_artifacts(result: ReportResult) -> None:
    """Inside a Prefect run: the summary as markdown, the top epics as a table, and a link."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    create_markdown_artifact(
        summary_markdown(result.data),
        key="portfolio-summary",
        description="Portfolio roll-up summary",
    )
    create_table_artifact(
        top_epics(result.data),
        key="portfolio-top-epics",
        description=f"The top {TOP_EPICS} epics by WSJF, with health and forecast",
    )
    create_link_artifact(
        result.html.resolve().as_uri(),
        link_text="Portfolio report (portfolio.html)",
        key="portfolio-report",
    )


def _md(value: object) -> str:
    """Tracker text inside a markdown table cell: no markup, no cell breaks."""
    text = fmt_text(value)
    for char in "\\|*_`[]<>#":
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


def summary_markdown(data: ReportData) -> str:
    increment = data.increment.name if data.increment else None
    lines = [
        f"# Portfolio {_md(data.portfolio)}",
        "",
        f"Generated {fmt_datetime(data.now)}; analytics computed "
        f"{fmt_datetime(data.analytics_at)}; PI {_md(increment)}.",
        "",
        "| Level | To do | Doing | Done | Removed | Total |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {row.level} | {row.todo} | {row.doing} | {row.done} | {row.removed} | {row.total} |"
        for row in data.levels
    ]
    lines += [
        "",
        "| Source | Last sync | Status | Last success | Live items |",
        "| --- | --- | --- | --- | ---: |",
    ]
    lines += [
        f"| {_md(row.source)} | {fmt_datetime(row.last_started_at)} | {_md(row.last_status)} "
        f"| {fmt_hours(row.hours_since_success)} | {row.live_items} |"
        for row in data.sources
    ]
    breaches = [row for row in data.guardrails if row.is_current and row.breach]
    lines += [
        "",
        f"- Guardrail breaches in the current PI: {len(breaches)}"
        + "".join(
            f"; {row.category} {fmt_percent(row.share)} (target {fmt_percent(row.target_share)})"
            for row in breaches
        ),
        f"- Quarantined items: {len(data.quarantine)}",
        f"- Write-back conflicts or failures: {len(data.writeback_conflicts)}",
        f"- Hierarchy issues (cycles, orphans): {len(data.hierarchy_issues)}",
    ]
    return "\n".join(lines) + "\n"


def top_epics(data: ReportData, limit: int = TOP_EPICS) -> list[dict[str, Any]]:
    ranked = [row for row in data.epics if row.rank is not None][:limit]
    return [
        {
            "rank": row.rank,
            "key": row.key,
            "title": row.title,
            "wsjf": None if row.wsjf is None else round(row.wsjf, 2),
            "progress": fmt_percent(row.progress),
            "health": row.health or BLANK,
            "forecast_p85": fmt_date(row.forecast_p85),
        }
        for row in ranked
    ]
