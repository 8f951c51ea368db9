"""Inside a Prefect flow run, the report's summary is published as artifacts: a markdown summary,
a table of the top WSJF epics with health, and a link to portfolio.html."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.report import ReportResult, publish_artifacts, summary_markdown, top_epics, write_report
from tests.report import portfolio
from warehouse.db import open_warehouse


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    root = tmp_path_factory.mktemp("artifacts")
    url = f"sqlite:///{root / 'warehouse.db'}"
    engine = open_warehouse(url)
    try:
        portfolio.build(engine)
        return write_report(engine, portfolio.config(url), root / "report", now=portfolio.NOW)
    finally:
        engine.dispose()


def test_summary_markdown_states_the_portfolio_in_numbers(result: ReportResult) -> None:
    markdown = summary_markdown(result.data)
    assert markdown.startswith("# Portfolio Contoso \\<Digital\\>\n")
    assert "| epic | 2 | 1 | 1 | 0 | 4 |" in markdown
    assert "| alpha | " in markdown and "| failed | never | 2 |" in markdown
    assert "- Quarantined items: 1" in markdown
    assert "- Write-back conflicts or failures: 2" in markdown
    assert "- Guardrail breaches in the current PI: " in markdown


def test_top_epics_are_the_ranked_epics_in_rank_order(result: ReportResult) -> None:
    rows = top_epics(result.data)
    assert [(row["rank"], row["key"], row["wsjf"]) for row in rows] == [
        (1, "A-E2", 10.0),
        (2, "A-E1", 5.0),
    ]
    assert rows[1]["progress"] == "38%" and rows[1]["title"] == portfolio.HOSTILE_TITLE


@pytest.fixture(scope="module")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("prefect-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_HOME", str(home))
        patch.delenv("PREFECT_API_URL", raising=False)
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            yield


@pytest.mark.slow
@pytest.mark.integration
def test_publish_artifacts_inside_a_flow_run(result: ReportResult, prefect_harness: None) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    @flow
    def report_flow() -> None:
        publish_artifacts(result)

    report_flow()

    async def read() -> dict[str, object]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(
                        any_=["portfolio-summary", "portfolio-top-epics", "portfolio-report"]
                    )
                )
            )
        return {artifact.key: artifact for artifact in artifacts if artifact.key}

    artifacts = asyncio.run(read())
    summary, table, link = (
        artifacts["portfolio-summary"],
        artifacts["portfolio-top-epics"],
        artifacts["portfolio-report"],
    )
    assert summary.type == "markdown" and summary.data == summary_markdown(result.data)
    assert table.type == "table"
    data = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert data == top_epics(result.data)
    uri = Path(result.html).resolve().as_uri()
    assert (
        link.data == f"[Portfolio report (portfolio.html)]({uri})"
    )  # Prefect stores links as markdown
