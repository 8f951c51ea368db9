"""The report's queries on the hand-built portfolio (tests/report/portfolio.py), on SQLite and
PostgreSQL: hand-counted figures, and every analytics table passed through unchanged."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from tests.report import portfolio
from warehouse import models
from warehouse.models import table_of
from warehouse.report_data import (
    TABLE_NAMES,
    TABLE_TYPES,
    BurnupRow,
    LevelStatus,
    ReportData,
    columns,
    load_report_data,
    report_increment,
    source_freshness,
)


@pytest.fixture
def data(engine: Engine) -> ReportData:
    portfolio.build(engine)
    return load_report_data(engine, portfolio.config().portfolio, now=portfolio.NOW)


def test_items_by_level_and_status_count_live_items(data: ReportData) -> None:
    assert data.levels == [
        LevelStatus("theme", todo=0, doing=1, done=0, removed=0, total=1),
        LevelStatus("epic", todo=2, doing=1, done=1, removed=0, total=4),
        LevelStatus("capability", todo=0, doing=1, done=0, removed=0, total=1),
        LevelStatus("feature", todo=0, doing=2, done=1, removed=0, total=3),
        LevelStatus("story", todo=2, doing=1, done=2, removed=1, total=6),
    ]


def test_sources_show_freshness_and_the_last_run(engine: Engine, data: ReportData) -> None:
    runs = table_of(models.SyncRun)
    with engine.connect() as conn:
        alpha_runs = conn.execute(
            select(runs).where(runs.c.source_id == 1).order_by(runs.c.id)
        ).all()
    alpha, beta = data.sources
    assert (alpha.source, alpha.kind, alpha.live_items) == ("alpha", "jira", 13)
    assert (alpha.last_status, alpha.last_mode, alpha.last_fetched) == (
        "succeeded",
        "incremental",
        1,
    )
    assert alpha.last_started_at == alpha_runs[-1].started_at
    assert alpha.last_success_at == alpha_runs[-1].finished_at
    assert alpha.hours_since_success == 0.0  # the report's `now` predates the run: not negative
    later = alpha_runs[-1].finished_at + timedelta(hours=30)
    with engine.connect() as conn:
        assert source_freshness(conn, later)[0].hours_since_success == pytest.approx(30.0)
    assert (beta.source, beta.live_items, beta.last_status) == ("beta", 2, "failed")
    assert beta.last_error == "HTTP 503 from the tracker"
    assert beta.last_success_at is None and beta.hours_since_success is None


def test_epics_are_ranked_by_wsjf_with_unranked_last(data: ReportData) -> None:
    assert [(e.key, e.rank, e.wsjf) for e in data.epics] == [
        ("A-E2", 1, 10.0),
        ("A-E1", 2, 5.0),
        ("A-E3", None, None),
        ("B-E9", None, None),
    ]
    _, e1, e3, e9 = data.epics
    assert e1.title == portfolio.HOSTILE_TITLE and e1.art == portfolio.HOSTILE_ART
    assert (e1.cost_of_delay, e1.job_size, e1.done_items, e1.total_items) == (20.0, 4.0, 1, 2)
    assert e1.progress == pytest.approx(3 / 8) and e1.progress_basis == "estimate"
    assert e3.unranked_reason is not None and "job_size" in e3.unranked_reason
    assert e9.unranked_reason == "done"


def test_epic_rows_are_the_rollup_rows(engine: Engine, data: ReportData) -> None:
    item, rollup = table_of(models.WorkItem), table_of(models.Rollup)
    with engine.connect() as conn:
        stored = {
            row.key: row
            for row in conn.execute(
                select(item.c.key, rollup).join(rollup, rollup.c.work_item_id == item.c.id)
            ).mappings()
        }
    for epic in data.epics:
        for name, value in asdict(epic).items():
            if name in rollup.c:
                assert value == stored[epic.key][name], (epic.key, name)


def test_tree_walks_theme_epic_capability_feature_in_rank_order(data: ReportData) -> None:
    assert [(row.key, row.depth) for row in data.tree] == [
        ("A-T1", 0),
        ("A-E2", 1),
        ("A-F2", 2),
        ("A-E1", 1),
        ("A-C1", 2),
        ("A-F1", 3),
        ("A-E3", 0),
        ("B-E9", 0),
        ("B-F9", 1),
    ]
    assert [row.path for row in data.tree] == sorted(row.path for row in data.tree)
    theme = data.tree[0]
    assert (theme.done_items, theme.total_items) == (2, 4)
    assert theme.progress == pytest.approx(5 / 18)


def test_tree_holds_every_rollup_row_once(engine: Engine, data: ReportData) -> None:
    with engine.connect() as conn:
        rolled_up = conn.execute(select(models.Rollup.work_item_id)).scalars().all()
    assert len(data.tree) == len(rolled_up) == len({row.key for row in data.tree})


def test_tree_shows_items_on_a_parent_cycle_as_roots(engine: Engine) -> None:
    from tests.report.portfolio import _item
    from warehouse.analytics import compute_analytics
    from warehouse.load import ensure_source, load_batch, start_run
    from warehouse.report_data import tree

    source = ensure_source(engine, "loop", "jira", "https://loop.example")
    run = start_run(engine, source, "full")
    level = portfolio.Level
    load_batch(
        engine,
        run,
        source,
        [
            _item("loop", "X", level.epic, "todo", parent_external_id="Y"),
            _item("loop", "Y", level.capability, "todo", parent_external_id="X"),
            _item("loop", "Z", level.feature, "todo", parent_external_id="Y"),
        ],
    )
    compute_analytics(engine, portfolio.config().portfolio, now=portfolio.NOW)
    with engine.connect() as conn:
        rows = tree(conn)
    assert sorted((row.key, row.depth) for row in rows) == [("L-X", 0), ("L-Y", 0), ("L-Z", 1)]


def test_burnup_accumulates_scope_and_done_per_art_day_by_day(data: ReportData) -> None:
    assert data.increment is not None and data.increment.name == "PI 26.4"
    days = 29  # 5 Oct .. 2 Nov
    by_art: dict[str | None, list[BurnupRow]] = {}
    for row in data.burnup:
        by_art.setdefault(row.art, []).append(row)
    assert sorted(by_art, key=str) == sorted([portfolio.HOSTILE_ART, "Mobile", "Team A"])
    for rows in by_art.values():
        assert [row.day for row in rows] == [
            portfolio.PI_26_4_START + timedelta(days=n) for n in range(days)
        ]

    def at(art: str, day: date) -> tuple[int, float, int, float]:
        row = next(r for r in by_art[art] if r.day == day)
        return row.scope_items, row.scope_estimate, row.done_items, row.done_estimate

    payments = portfolio.HOSTILE_ART
    assert at(payments, date(2026, 10, 5)) == (2, 8.0, 0, 0.0)
    assert at(payments, date(2026, 10, 9)) == (2, 8.0, 0, 0.0)
    assert at(payments, date(2026, 10, 10)) == (2, 8.0, 1, 3.0)  # S1 done 10 Oct (history)
    assert at("Mobile", date(2026, 10, 14)) == (1, 2.0, 0, 0.0)
    assert at("Mobile", date(2026, 10, 15)) == (2, 10.0, 0, 0.0)  # S4 created 15 Oct
    assert at("Mobile", date(2026, 10, 20)) == (2, 10.0, 1, 2.0)  # S3 resolved 20 Oct
    assert at("Team A", date(2026, 11, 2)) == (1, 1.0, 0, 0.0)  # the orphan S5, its own team


def test_report_pi_is_the_running_one_else_the_last_started() -> None:
    pis = portfolio.config().portfolio.increments
    assert report_increment(pis, date(2026, 10, 5)) == pis[1]
    assert report_increment(pis, date(2026, 9, 30)) == pis[0]
    assert report_increment(pis, date(2026, 1, 1)) == pis[0]
    assert report_increment([], date(2026, 1, 1)) is None


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("guardrails", models.Guardrail),
        ("predictability", models.Predictability),
        ("flow_metrics", models.FlowMetric),
        ("flow_distribution", models.FlowDistribution),
    ],
)
def test_analytics_tables_pass_through_unchanged(
    engine: Engine, data: ReportData, name: str, model: type[models.Base]
) -> None:
    table = table_of(model)
    names = columns(type(getattr(data, name)[0]))
    with engine.connect() as conn:
        stored = [tuple(row) for row in conn.execute(select(*[table.c[n] for n in names]))]
    shown = [tuple(asdict(row).values()) for row in getattr(data, name)]
    assert sorted(shown, key=repr) == sorted(stored, key=repr)


def test_predictability_counts_stretch_objectives_over_committed_plan(data: ReportData) -> None:
    (row,) = data.predictability
    assert (row.art, row.increment, row.planned_value, row.actual_value) == (
        "Mobile",
        "PI 26.3",
        10.0,
        11.0,
    )
    assert row.predictability == pytest.approx(1.1)


def test_quarantine_lists_items_not_loaded_since(data: ReportData) -> None:
    assert [(q.source, q.external_id, q.error) for q in data.quarantine] == [
        ("alpha", "Q1", "unknown level 'Initiative'")
    ]


def test_writeback_attention_is_the_latest_conflict_or_failure_per_field(
    data: ReportData,
) -> None:
    assert [(w.key, w.field, w.status, w.error) for w in data.writeback_conflicts] == [
        ("A-E2", "progress", "failed", portfolio.HOSTILE_ERROR),
        ("A-E2", "wsjf", "skipped_conflict", None),
    ]
    assert data.writeback_conflicts[1].tracker_value == "7"


def test_hierarchy_issues_name_the_orphan(data: ReportData) -> None:
    assert [(h.key, h.kind, h.detail) for h in data.hierarchy_issues] == [
        ("A-S5", "parent_not_found", "999")
    ]


def test_every_table_is_exported_with_plain_values(data: ReportData) -> None:
    """Both drivers give the same Python types (no Decimal from PostgreSQL sums)."""
    assert list(data.tables()) == list(TABLE_NAMES)
    plain = (int, float, str, bool, date, datetime, type(None))
    for name, rows in data.tables().items():
        for row in rows:
            for column, value in asdict(row).items():
                assert type(value) in plain, (name, column, type(value))
                hint = str(TABLE_TYPES[name].__annotations__[column])
                if isinstance(value, int) and not isinstance(value, bool):
                    assert "int" in hint, (name, column)
                if isinstance(value, float):
                    assert "float" in hint, (name, column)
