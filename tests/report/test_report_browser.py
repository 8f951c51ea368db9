"""The demo portfolio's report in headless Chromium.

The demo portfolio is the sandbox's: a Jira Cloud and an Azure DevOps sandbox on 127.0.0.1,
synced over HTTP into SQLite by `sync_source`, rolled up by `compute_analytics`, reported by
`write_report`. Chromium then loads portfolio.html from its file:// URL: no console error, no
request but the page itself, every chart drawn in the DOM (`--dump-dom`), every table showing
the rows of its query, and a full-page screenshot in test-artifacts/report/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from flows.report import ReportResult, export_value, write_report
from flows.sync import sync_source
from mapping.config import LpmConfig
from sandbox.server import serve
from tests.conftest import ROOT
from tests.report.chromium import chromium_path, dump_dom, load_page
from tests.report.html_tables import expected_rows, read_page
from tests.report.test_report_output import CHARTS, SHOWN_TABLES
from warehouse import models
from warehouse.analytics import compute_analytics
from warehouse.db import open_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ARTIFACTS = ROOT / "test-artifacts" / "report"


@dataclass(frozen=True)
class Demo:
    url: str
    report: ReportResult


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    chromium_path()  # skip (or fail in CI) before the sandboxes are built
    anchor = datetime.now(UTC).replace(second=0, microsecond=0)
    root = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{root / 'lpm.db'}"
    with (
        serve("jira", items=400, seed=9, anchor=anchor) as jira,
        serve("azure_devops", items=300, seed=9, anchor=anchor) as ado,
        pytest.MonkeyPatch.context() as patch,
    ):
        for name, value in {**jira.env(), **ado.env()}.items():
            patch.setenv(name, value)
        increments = [
            {"name": pi.name, "start": pi.start, "end": pi.end} for pi in ado.portfolio.increments
        ]
        config = LpmConfig.model_validate(
            {
                "warehouse": {"url": url},
                "portfolio": {"name": "Sandbox Digital", "increments": increments},
                "sources": [jira.source_config(), ado.source_config()],
            }
        )
        engine = open_warehouse(url)
        try:
            for source in config.sources:
                sync_source(config, source.name, engine)
            compute_analytics(engine, config.portfolio, now=anchor)
            report = write_report(engine, config, root / "report", now=anchor)
        finally:
            engine.dispose()
    yield Demo(url, report)


def test_the_harness_catches_console_errors_and_outside_requests(tmp_path: Path) -> None:
    """The page check must be able to fail: a page that logs an error, throws and loads an
    image from another address is caught on all three counts."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/logo.png">'
        '<script>console.error("broken"); throw new Error("boom")</script></body></html>'
    )
    load = load_page(page.as_uri())
    assert any("broken" in error for error in load.errors)
    assert any("boom" in error for error in load.errors)
    assert any("127.0.0.1:9/logo.png" in error for error in load.errors)
    assert "http://127.0.0.1:9/logo.png" in load.requests


def test_report_loads_without_errors_or_requests_and_is_screenshot(demo: Demo) -> None:
    uri = demo.report.html.resolve().as_uri()
    screenshot = ARTIFACTS / "portfolio.png"
    screenshot.unlink(missing_ok=True)
    load = load_page(uri, screenshot=screenshot)
    assert load.errors == []
    assert load.requests == [uri]
    assert screenshot.stat().st_size > 50_000
    assert load.height > 3000


def test_every_chart_is_drawn_in_the_dom(demo: Demo) -> None:
    dom = dump_dom(demo.report.html.resolve().as_uri())
    (ARTIFACTS / "portfolio.dom.html").parent.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "portfolio.dom.html").write_text(dom)
    for chart_id in CHARTS:
        start = dom.index(f'id="{chart_id}"')
        figure = dom[start : dom.index("</figure>", start)]
        assert "<svg" in figure, f"{chart_id} has no chart"
        assert re.search(r'class="mark-(rect|line|symbol|tick) role-mark', figure), chart_id


def test_dom_tables_show_the_query_rows_and_the_exports_match(demo: Demo) -> None:
    page = read_page(dump_dom(demo.report.html.resolve().as_uri()))
    tables = demo.report.data.tables()
    for name in SHOWN_TABLES:
        rows = tables[name]
        if rows:
            assert page.tables[name].rows == expected_rows(page.tables[name], rows), name
        exported = orjson.loads(demo.report.json[name].read_bytes())
        assert exported == [
            {key: export_value(value) for key, value in vars(row).items()} for row in rows
        ]
    assert len(tables["epics"]) > 0 and len(tables["tree"]) > 0 and len(tables["burnup"]) > 0


def test_report_numbers_are_the_warehouse_numbers(demo: Demo) -> None:
    levels = {row.level: row for row in demo.report.data.levels}
    item, rollup = models.WorkItem, models.Rollup
    engine = open_warehouse(demo.url)
    try:
        with engine.connect() as conn:
            counts = conn.execute(
                select(item.level, item.status_category, func.count())
                .where(item.deleted_at.is_(None))
                .group_by(item.level, item.status_category)
            ).all()
            wsjf = dict(
                conn.execute(
                    select(item.key, rollup.wsjf)
                    .join(rollup, rollup.work_item_id == item.id)
                    .where(item.level == "epic")
                ).all()
            )
            live = conn.execute(select(func.count()).where(item.deleted_at.is_(None))).scalar()
    finally:
        engine.dispose()
    for level, category, count in counts:
        assert getattr(levels[level], category) == count, (level, category)
    assert {epic.key: epic.wsjf for epic in demo.report.data.epics} == wsjf
    assert sum(source.live_items for source in demo.report.data.sources) == live
    assert demo.report.html_bytes < 5 * 1024 * 1024


def test_chromium_is_found_where_the_tests_expect_it() -> None:
    path = chromium_path()
    assert os.access(path, os.X_OK)
