"""portfolio.html and its exports, written from the hand-built portfolio on SQLite: every table
shows exactly the rows of its query, the exports carry the same rows, tracker text is escaped,
nothing is loaded from outside, and a second run leaves the same files."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.report import BLANK, ReportResult, export_value, render_html, write_report
from tests.report import portfolio
from tests.report.html_tables import expected_rows, read_page
from warehouse.db import open_warehouse
from warehouse.report_data import TABLE_NAMES, TABLE_TYPES, columns

CHARTS = (
    "chart-status",
    "chart-guardrails",
    "chart-burnup",
    "chart-flow-velocity",
    "chart-flow-time",
    "chart-flow-load",
    "chart-flow-efficiency",
    "chart-flow-distribution",
    "chart-flow-predictability",
)
SHOWN_TABLES = [name for name in TABLE_NAMES if name != "burnup"]
"""The burn-up's rows are the chart's data: exported, drawn, not listed."""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'warehouse.db'}"
    engine = open_warehouse(url)
    portfolio.build(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def report(warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    engine = open_warehouse(warehouse)
    try:
        return write_report(
            engine, portfolio.config(warehouse), tmp_path_factory.mktemp("out"), now=portfolio.NOW
        )
    finally:
        engine.dispose()


def test_writes_the_page_and_csv_and_json_of_every_table(report: ReportResult) -> None:
    assert report.html.name == "portfolio.html" and report.html.is_file()
    assert set(report.csv) == set(report.json) == set(TABLE_NAMES)
    for name in TABLE_NAMES:
        assert report.csv[name] == report.html.parent / "data" / f"{name}.csv"
        assert report.json[name].is_file()


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_exports_hold_exactly_the_query_rows(report: ReportResult, name: str) -> None:
    rows = report.data.tables()[name]
    expected = [{key: export_value(value) for key, value in asdict(row).items()} for row in rows]
    assert orjson.loads(report.json[name].read_bytes()) == expected
    with report.csv[name].open(newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == columns(TABLE_TYPES[name])
    assert lines[1:] == [[_csv_text(value) for value in row.values()] for row in expected]
    assert rows, f"{name}: the test portfolio gives every table rows"


def _csv_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize("name", SHOWN_TABLES)
def test_page_tables_show_exactly_the_query_rows(report: ReportResult, name: str) -> None:
    page = read_page(report.html.read_text())
    table = page.tables[name]
    rows = report.data.tables()[name]
    assert table.columns and set(table.columns) <= set(columns(TABLE_TYPES[name]))
    if rows:
        assert table.rows == expected_rows(table, rows)
    else:
        assert len(table.rows) == 1 and len(table.rows[0]) == 1  # the "none" line


def test_page_numbers_are_the_warehouse_numbers(report: ReportResult) -> None:
    """Spot checks by hand: E1's WSJF 20/4, the theme's 5 of 18 points, the orphan's issue."""
    page = read_page(report.html.read_text())
    epics = page.tables["epics"]
    e1 = dict(zip(epics.columns, epics.rows[1], strict=True))
    assert (e1["key"], e1["wsjf"], e1["cost_of_delay"], e1["job_size"]) == ("A-E1", "5", "20", "4")
    assert e1["progress"] == "38%" and e1["title"] == portfolio.HOSTILE_TITLE
    tree = page.tables["tree"]
    theme = dict(zip(tree.columns, tree.rows[0], strict=True))
    assert (theme["key"], theme["progress"], theme["done_items"]) == ("A-T1", "28%", "2")
    issues = page.tables["hierarchy_issues"]
    assert issues.rows == [["A-S5", "Item S5", "alpha", "story", "parent_not_found", BLANK, "999"]]


def test_every_chart_is_in_the_page(report: ReportResult) -> None:
    html = report.html.read_text()
    assert set(CHARTS) <= read_page(html).ids
    drawn = [c for c in CHARTS if "<svg" in _figure(html, c)]
    undrawn = [c for c in CHARTS if c not in drawn]
    # S1's history records categories only, no status names: no efficiency to draw yet.
    assert undrawn == ["chart-flow-efficiency"]
    assert "No data for this chart yet." in _figure(html, "chart-flow-efficiency")
    for chart_id in drawn:
        assert 'class="marks"' in _figure(html, chart_id), chart_id


def _figure(html: str, chart_id: str) -> str:
    start = html.index(f'id="{chart_id}"')
    return html[start : html.index("</figure>", start)]


def test_tracker_text_is_escaped_everywhere(report: ReportResult) -> None:
    html = report.html.read_text()
    page = read_page(html)
    assert "<script" not in html.lower()
    assert not any(tag.name in ("script", "img", "iframe", "object", "embed") for tag in page.tags)
    assert not any(name.startswith("on") for tag in page.tags for name in tag.attrs)
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in html
    assert "Payments &lt;ART&gt;" in html  # in the tables
    assert "Payments &lt;ART&gt;</text>" in html  # in a chart's SVG legend
    assert "&lt;b&gt;409&lt;/b&gt;" in html and "<b>409</b>" not in html
    assert "Contoso &lt;Digital&gt;" in html


def test_page_loads_nothing_from_outside(report: ReportResult) -> None:
    html = report.html.read_text()
    page = read_page(html)
    policy = next(
        tag.attrs["content"]
        for tag in page.tags
        if tag.name == "meta" and tag.attrs.get("http-equiv") == "Content-Security-Policy"
    )
    assert policy.startswith("default-src 'none'")
    for tag in page.tags:
        for name in ("src", "href", "xlink:href", "action", "srcset"):
            value = tag.attrs.get(name)
            if value is not None:
                assert value.startswith(("#", "data/")), (tag.name, name, value)
    assert tag.name != "link"
    assert not re.search(r"url\((?!#)", html)
    assert not re.search(r"@import", html)


def test_a_second_run_leaves_the_same_files(warehouse: str, tmp_path: Path) -> None:
    engine = open_warehouse(warehouse)
    try:
        config = portfolio.config(warehouse)
        first = write_report(engine, config, tmp_path, now=portfolio.NOW)
        before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
        write_report(engine, config, tmp_path, now=portfolio.NOW)
        after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    finally:
        engine.dispose()
    assert before == after and first.html in before
    assert len(before) == 1 + 2 * len(TABLE_NAMES)  # no temporary files left behind


def test_an_empty_warehouse_gives_a_report_that_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = open_warehouse(url)
    try:
        result = write_report(engine, portfolio.config(url), tmp_path / "out", now=portfolio.NOW)
    finally:
        engine.dispose()
    html = result.html.read_text()
    assert html.count("No data for this chart yet.") == len(CHARTS)
    assert "No source has been synced yet." in html
    assert all(rows == [] for rows in result.data.tables().values())
    assert result.csv["epics"].read_text().splitlines() == [",".join(columns(TABLE_TYPES["epics"]))]


def test_lpm_report_writes_the_report_and_prints_its_path(warehouse: str, tmp_path: Path) -> None:
    config = tmp_path / "lpm.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": warehouse},
                "portfolio": {"name": "Contoso", "increments": [portfolio.PI_26_4]},
            }
        )
    )
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out / "portfolio.html")
    assert (out / "portfolio.html").is_file() and (out / "data" / "epics.json").is_file()


def test_lpm_report_with_a_bad_config_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "lpm.yaml"
    config.write_text("portfolio: {name: X, colour: blue}\n")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 2
    assert "portfolio.colour: unknown key 'colour'" in result.output
    assert not out.exists()


def test_exported_dates_are_iso_8601() -> None:
    assert export_value(date(2026, 11, 2)) == "2026-11-02"
    assert export_value(portfolio.NOW) == "2026-11-02T12:00:00+00:00"
    assert export_value(datetime(2026, 1, 1).date()) == "2026-01-01"
    assert export_value(1.5) == 1.5 and export_value(None) is None


def test_csv_round_trips_through_a_spreadsheet_reader(report: ReportResult) -> None:
    text = report.csv["epics"].read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[1]["title"] == portfolio.HOSTILE_TITLE
    assert float(rows[0]["wsjf"]) == 10.0


def test_long_tables_leave_rows_to_the_exports(
    report: ReportResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its row budget the tree drops its lowest levels (features, then capabilities) and
    other tables list their first rows; the page says where the rest is."""
    import flows.report

    monkeypatch.setattr(flows.report, "TREE_ROWS", 5)
    monkeypatch.setattr(flows.report, "PAGE_ROWS", 1)
    page = read_page(render_html(report.data))
    tree = page.tables["tree"]
    keys = [dict(zip(tree.columns, row, strict=True))["key"] for row in tree.rows]
    assert keys == ["A-T1", "A-E2", "A-E1", "A-E3", "B-E9"]
    assert len(page.tables["epics"].rows) == 1
    html = render_html(report.data)
    assert "This tree has 9 nodes: capability, feature rows are not listed." in html
    assert "The first 1 rows are listed. All 4 rows:" in html
