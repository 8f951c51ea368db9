"""One analytics run: idempotent, all-or-nothing, configurable; and `lpm rollup`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from flows.cli import app
from mapping.config import ConfigError, PortfolioConfig, WsjfOptions, parse_config
from tests.analytics.builders import by_item, item, load, moves, rows
from tests.analytics.test_reference_portfolio import NOW, PORTFOLIO, at, load_reference
from warehouse import analytics, models
from warehouse.analytics import RESULT_TABLES, compute_analytics, current_increment
from warehouse.models import table_of

RESULT_MODELS = [
    models.Rollup,
    models.RollupBreakdown,
    models.Guardrail,
    models.FlowMetric,
    models.FlowDistribution,
    models.Predictability,
    models.HierarchyIssue,
]


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    def key(row: dict[str, Any]) -> str:
        return repr(sorted(row.items(), key=lambda pair: pair[0]))

    return {table_of(model).name: sorted(rows(engine, model), key=key) for model in RESULT_MODELS}


def test_every_result_table_is_listed() -> None:
    assert set(RESULT_TABLES) == {table_of(model).name for model in RESULT_MODELS}


def test_a_second_run_writes_identical_tables(engine: Engine) -> None:
    load_reference(engine)
    compute_analytics(engine, PORTFOLIO, now=NOW)
    first = snapshot(engine)
    compute_analytics(engine, PORTFOLIO, now=NOW)
    assert snapshot(engine) == first
    assert all(first[name] for name in first)


def test_a_run_replaces_the_previous_results(engine: Engine) -> None:
    load(engine, "jira", [item("E1", "epic"), item("E2", "epic")])
    compute_analytics(engine, PORTFOLIO, now=NOW)
    load(engine, "jira", [item("E1", "epic")], deleted=["E2"])
    compute_analytics(engine, PORTFOLIO, now=datetime(2026, 11, 5, tzinfo=UTC))
    found = by_item(engine, models.Rollup)
    assert list(found) == ["E1"]
    assert found["E1"]["computed_at"] == datetime(2026, 11, 5, tzinfo=UTC)


def test_a_failed_run_leaves_the_previous_results(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_reference(engine)
    compute_analytics(engine, PORTFOLIO, now=NOW)
    before = snapshot(engine)

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("forecast failed")

    monkeypatch.setattr(analytics, "compute_forecasts", broken)
    with pytest.raises(RuntimeError, match="forecast failed"):
        compute_analytics(engine, PORTFOLIO, now=datetime(2026, 11, 20, tzinfo=UTC))
    assert snapshot(engine) == before
    monkeypatch.undo()
    compute_analytics(engine, PORTFOLIO, now=NOW)
    assert snapshot(engine) == before


def test_a_sync_during_a_run_does_not_wait_and_the_run_keeps_its_snapshot(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch loaded while a run computes commits at once (on SQLite the run takes the write
    lock only to publish its results); the run's results are those of the data it started
    from, and the next run sees the batch."""
    load(engine, "jira", [item("E1", "epic")])
    predictability = analytics.compute_predictability

    def with_a_sync(*args: Any, **kwargs: Any) -> None:
        load(engine, "jira", [item("E1", "epic"), item("E2", "epic")])
        predictability(*args, **kwargs)

    monkeypatch.setattr(analytics, "compute_predictability", with_a_sync)
    compute_analytics(engine, PORTFOLIO, now=NOW)
    assert list(by_item(engine, models.Rollup)) == ["E1"]
    monkeypatch.undo()
    compute_analytics(engine, PORTFOLIO, now=NOW)
    assert sorted(by_item(engine, models.Rollup)) == ["E1", "E2"]


def test_now_must_carry_a_time_zone(engine: Engine) -> None:
    with pytest.raises(ValueError, match="time zone"):
        compute_analytics(engine, PORTFOLIO, now=datetime(2026, 11, 4))


def test_an_empty_warehouse(engine: Engine) -> None:
    summary = compute_analytics(engine, PortfolioConfig(name="Empty"), now=NOW)
    assert (summary.items, summary.rolled_up, summary.ranked, summary.forecasts) == (0, 0, 0, 0)
    assert summary.current_increment is None and summary.breaches == []
    assert snapshot(engine) == {table_of(model).name: [] for model in RESULT_MODELS}


def test_without_the_job_size_fallback_missing_job_sizes_are_named(engine: Engine) -> None:
    """The reference portfolio again, fallback off: F2, E2 and F10 lack a job size."""
    load_reference(engine)
    compute_analytics(
        engine, PORTFOLIO.model_copy(update={"wsjf": WsjfOptions(job_size_fallback=False)}), now=NOW
    )
    found = by_item(engine, models.Rollup)
    assert found["F2"]["unranked_reason"] == "missing job_size"
    assert found["E2"]["unranked_reason"] == "missing risk_reduction, job_size"
    assert found["F10"]["unranked_reason"] == (
        "missing business_value, time_criticality, risk_reduction, job_size"
    )
    assert [found[key]["rank"] for key in ("F1", "F6")] == [1, 2]


def test_an_in_flight_feature_without_throughput_gets_a_reason(engine: Engine) -> None:
    load(
        engine,
        "jira",
        [
            item("F", "feature", "doing", art="ART 9"),
            item("S", "story", parent_external_id="F", history=moves((at(10, 1), "In Progress"))),
        ],
    )
    summary = compute_analytics(engine, PORTFOLIO, now=NOW)
    found = by_item(engine, models.Rollup)["F"]
    assert (found["forecast_p50"], found["forecast_reason"]) == (
        None,
        "no throughput in the last 4 weeks",
    )
    assert summary.forecasts == 0


def test_the_current_increment_is_the_one_containing_today() -> None:
    config = parse_config(
        yaml.safe_dump(
            {
                "portfolio": {
                    "name": "x",
                    "increments": [
                        {"name": "A", "start": "2026-01-01", "end": "2026-03-31"},
                        {"name": "B", "start": "2026-03-15", "end": "2026-06-30"},
                    ],
                }
            }
        )
    ).portfolio
    assert current_increment(config.increments, date(2026, 2, 1)).name == "A"  # type: ignore[union-attr]
    assert current_increment(config.increments, date(2026, 3, 20)).name == "B"  # type: ignore[union-attr]
    assert current_increment(config.increments, date(2026, 7, 1)) is None


@pytest.mark.parametrize(
    ("portfolio", "problem"),
    [
        (
            {"health": {"at_risk": 0.3, "off_track": 0.2}},
            "portfolio.health: off_track (0.2) must not be below at_risk (0.3)",
        ),
        (
            {"flow": {"active_statuses": ["Doing"], "waiting_statuses": ["Doing"]}},
            "portfolio.flow: statuses both active and waiting: Doing",
        ),
        (
            {"forecast": {"simulations": 10}},
            "portfolio.forecast.simulations: Input should be greater than or equal to 100",
        ),
        (
            {
                "increments": [
                    {"name": "PI", "start": "2026-01-01", "end": "2026-02-01"},
                    {"name": "PI", "start": "2026-03-01", "end": "2026-04-01"},
                ]
            },
            "portfolio.increments: increment names must be unique: PI",
        ),
        ({"wsjf": {"fallback": True}}, "portfolio.wsjf.fallback: unknown key 'fallback'"),
    ],
)
def test_bad_analytics_settings_are_named(portfolio: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump({"portfolio": {"name": "x", **portfolio}}))
    assert caught.value.problems == [problem]


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "lpm.yaml"
    path.write_text(
        yaml.safe_dump({"warehouse": {"url": url}, "portfolio": {"name": "CLI"}}),
        encoding="utf-8",
    )
    return path


def test_lpm_rollup_prints_a_summary(
    tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    monkeypatch.delenv("LPM_WAREHOUSE_URL", raising=False)
    load(
        engine,
        "jira",
        [
            item("E", "epic", business_value=1, time_criticality=1, risk_reduction=1, job_size=1),
            item("O", "story", parent_external_id="gone"),
        ],
    )
    result = CliRunner().invoke(app, ["rollup", "--config", str(_config(tmp_path, warehouse_url))])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "rolled up 1 items (2 live items in the tree)",
        "WSJF: 1 ranked; unranked: none; done 0",
        "health: none 1",
        "guardrails: no configured PI contains today",
        "forecasts: 0 in-flight items dated",
        "hierarchy: 0 on cycles, 1 orphans, 0 beyond the depth limit",
    ]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table_of(models.Rollup))).scalar() == 1


def test_lpm_rollup_exits_1_when_parents_loop(
    tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    monkeypatch.delenv("LPM_WAREHOUSE_URL", raising=False)
    load(
        engine,
        "jira",
        [
            item("A", "feature", parent_external_id="B"),
            item("B", "feature", parent_external_id="A"),
        ],
    )
    result = CliRunner().invoke(app, ["rollup", "--config", str(_config(tmp_path, warehouse_url))])
    assert result.exit_code == 1
    assert "hierarchy: 2 on cycles" in result.stdout
    assert "2 item(s) sit on parent cycles" in result.stderr
