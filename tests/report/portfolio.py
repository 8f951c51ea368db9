"""A small hand-built portfolio for the report tests, loaded through the real loader and analytics.

Two sources. `alpha`: theme T1 > epics E1 (WSJF 20/4 = 5) and E2 (30/3 = 10); E1 > C1 > F1 >
stories S1 (3 pts, done 10 Oct via history), S2 (5 pts, doing); E2 > F2 > S3 (2 pts, done
20 Oct by resolved_at only), S4 (8 pts, created 15 Oct, enabler); root epic E3 without a job size;
orphan story S5 (1 pt) naming a parent that does not exist; Q1 fails mapping; Q2 failed in the
first run but loaded in the second (removed). `beta`: done epic E9 > done feature F9 > a story
deleted in the tracker. PIs 26.3 and 26.4; the report runs on 2 Nov 2026, day 28 of PI 26.4.
Tracker text is hostile where a reader sees it (E1's title, E1's ART, a write-back error).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, insert

from mapping.config import LpmConfig
from mapping.model import HistoryChange, Level, Objective, Quarantined, StatusCategory, WorkItem
from warehouse import models
from warehouse.analytics import compute_analytics
from warehouse.load import ensure_source, finish_run, load_batch, mark_missing_deleted, start_run
from warehouse.models import table_of

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
CREATED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
HOSTILE_TITLE = '<script>alert("xss")</script> & "Payments" <img src=x onerror=alert(1)>'
HOSTILE_ART = "Payments <ART>"
HOSTILE_ERROR = "<b>409</b> field changed by a person"
PI_26_3 = {"name": "PI 26.3", "start": "2026-07-06", "end": "2026-09-18"}
PI_26_4 = {"name": "PI 26.4", "start": "2026-10-05", "end": "2026-12-18"}


def config(url: str = "sqlite:///unused.db") -> LpmConfig:
    return LpmConfig.model_validate(
        {
            "warehouse": {"url": url},
            "portfolio": {"name": "Contoso <Digital>", "increments": [PI_26_3, PI_26_4]},
        }
    )


def _item(source: str, external_id: str, level: Level, state: str, **fields: Any) -> WorkItem:
    names = {"todo": "To Do", "doing": "In Progress", "done": "Done", "removed": "Cancelled"}
    values: dict[str, Any] = {
        "external_id": external_id,
        "key": f"{source[0].upper()}-{external_id}",
        "level": level,
        "item_type": level.value.title(),
        "title": f"Item {external_id}",
        "status": names[state],
        "status_category": StatusCategory(state),
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    values.update(fields)
    return WorkItem(**values)


def _done_history(started: datetime, done: datetime) -> tuple[HistoryChange, ...]:
    return (
        HistoryChange(
            change_id="1",
            changed_at=started,
            field="status_category",
            from_value="todo",
            to_value="doing",
        ),
        HistoryChange(
            change_id="2",
            changed_at=done,
            field="status_category",
            from_value="doing",
            to_value="done",
        ),
    )


def alpha_items() -> list[WorkItem]:
    s1_done = datetime(2026, 10, 10, 10, 0, tzinfo=UTC)
    return [
        _item("alpha", "T1", Level.theme, "doing", title="Customer growth"),
        _item(
            "alpha",
            "E1",
            Level.epic,
            "doing",
            parent_external_id="T1",
            title=HOSTILE_TITLE,
            art=HOSTILE_ART,
            increment="PI 26.4",
            business_value=8,
            time_criticality=5,
            risk_reduction=7,
            job_size=4,
        ),
        _item(
            "alpha",
            "E2",
            Level.epic,
            "todo",
            parent_external_id="T1",
            art="Mobile",
            increment="PI 26.4",
            business_value=10,
            time_criticality=10,
            risk_reduction=10,
            job_size=3,
        ),
        _item("alpha", "E3", Level.epic, "todo", business_value=3, time_criticality=2),
        _item("alpha", "C1", Level.capability, "doing", parent_external_id="E1"),
        _item("alpha", "F1", Level.feature, "doing", parent_external_id="C1", team="Team A"),
        _item("alpha", "F2", Level.feature, "doing", parent_external_id="E2", team="Team B"),
        _item(
            "alpha",
            "S1",
            Level.story,
            "done",
            parent_external_id="F1",
            estimate=3,
            team="Team A",
            resolved_at=s1_done,
            history=_done_history(datetime(2026, 10, 6, 9, 0, tzinfo=UTC), s1_done),
        ),
        _item("alpha", "S2", Level.story, "doing", parent_external_id="F1", estimate=5),
        _item(
            "alpha",
            "S3",
            Level.story,
            "done",
            parent_external_id="F2",
            estimate=2,
            resolved_at=datetime(2026, 10, 20, 15, 0, tzinfo=UTC),
        ),
        _item(
            "alpha",
            "S4",
            Level.story,
            "todo",
            parent_external_id="F2",
            estimate=8,
            category="enabler",
            created_at=datetime(2026, 10, 15, 8, 0, tzinfo=UTC),
            updated_at=datetime(2026, 10, 15, 8, 0, tzinfo=UTC),
        ),
        _item(
            "alpha",
            "S5",
            Level.story,
            "todo",
            parent_external_id="999",
            estimate=1,
            team="Team A",
            increment="PI 26.4",
        ),
    ]


def alpha_objectives() -> list[Objective]:
    common: dict[str, Any] = {
        "art": "Mobile",
        "increment": "PI 26.3",
        "status_category": StatusCategory.done,
        "updated_at": CREATED,
    }
    return [
        Objective(
            external_id="O1",
            key="A-O1",
            title="Objective 1",
            committed=True,
            planned_value=10,
            actual_value=8,
            **common,
        ),
        Objective(
            external_id="O2",
            key="A-O2",
            title="Objective 2",
            committed=False,
            planned_value=5,
            actual_value=3,
            **common,
        ),
    ]


def beta_items() -> list[WorkItem]:
    resolved = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    return [
        _item("beta", "E9", Level.epic, "done", increment="PI 26.3", resolved_at=resolved),
        _item("beta", "F9", Level.feature, "done", parent_external_id="E9", resolved_at=resolved),
        _item("beta", "D1", Level.story, "todo", parent_external_id="F9", estimate=5),
    ]


def build(engine: Engine) -> None:
    """Load both sources (two runs of alpha), add write-back audit rows, run the analytics."""
    alpha = ensure_source(engine, "alpha", "jira", "https://alpha.example")
    first = start_run(engine, alpha, "full")
    load_batch(
        engine,
        first,
        alpha,
        alpha_items(),
        objectives=alpha_objectives(),
        quarantined=[
            Quarantined(external_id="Q1", error="unknown level 'Initiative'", payload={"id": "Q1"}),
            Quarantined(external_id="Q2", error="no status", payload={"id": "Q2"}),
        ],
    )
    finish_run(engine, first, "succeeded")
    second = start_run(engine, alpha, "incremental")
    load_batch(engine, second, alpha, [_item("alpha", "Q2", Level.story, "removed")])
    finish_run(engine, second, "succeeded")

    beta = ensure_source(engine, "beta", "azure_devops", "https://dev.azure.com/beta")
    run = start_run(engine, beta, "full")
    load_batch(engine, run, beta, beta_items())
    mark_missing_deleted(engine, run, beta, {"E9", "F9"})
    finish_run(engine, run, "failed", error="HTTP 503 from the tracker")

    _writebacks(engine)
    compute_analytics(engine, config().portfolio, now=NOW)


def _writebacks(engine: Engine) -> None:
    items = table_of(models.WorkItem)
    with engine.begin() as conn:
        ids = dict(conn.execute(items.select().with_only_columns(items.c.key, items.c.id)).all())
        early, late = datetime(2026, 11, 1, 8, tzinfo=UTC), datetime(2026, 11, 2, 8, tzinfo=UTC)
        rows = [
            ("r1", "A-E2", "wsjf", "9", "10", "planned", None, early),
            ("r2", "A-E2", "wsjf", "7", "10", "skipped_conflict", None, late),
            ("r1", "A-E1", "health", None, "at-risk", "failed", "timeout", early),
            ("r2", "A-E1", "health", None, "at-risk", "applied", None, late),
            ("r2", "A-E2", "progress", "0", "0.2", "failed", HOSTILE_ERROR, late),
        ]
        conn.execute(
            insert(table_of(models.Writeback)),
            [
                {
                    "run_id": run_id,
                    "work_item_id": ids[key],
                    "field": field,
                    "tracker_value": tracker_value,
                    "new_value": new_value,
                    "status": status,
                    "error": error,
                    "planned_at": at,
                    "applied_at": at if status == "applied" else None,
                }
                for run_id, key, field, tracker_value, new_value, status, error, at in rows
            ],
        )


PI_26_4_START = date(2026, 10, 5)
