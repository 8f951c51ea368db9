"""Flow metrics from histories that do not start in "To Do", and work that was reopened."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from mapping.model import WorkItem
from tests.analytics.builders import item, load, moves, rows
from tests.analytics.test_reference_portfolio import NOW, PORTFOLIO, at
from warehouse import models
from warehouse.analytics import compute_analytics


def test_items_created_in_progress_and_reopened(engine: Engine) -> None:
    """Three stories of ART 1 (PI 1 ends 09-24, so its load is taken 09-25 00:00).

    A: created 10-06 already In Progress, Done 10-09: flow 3 d, all of it active.
    B: created 09-20 In Progress, Done 10-08: in doing at PI 1's end; flow 18 d, active 18 d.
    C: In Progress 09-10, Done 09-15, reopened In Progress 09-20, Blocked 09-22, In Progress
       09-24, Done 10-06: in doing at PI 1's end; flow 09-10 -> 10-06 = 26 d; In Progress
       5 + 2 + 12 = 19 d, Blocked 2 d.
    PI 2 (all three completed): times 3, 18, 26 -> median 18, 85th at rank 1 + 0.85 * 2 = 2.7:
    18 + 0.7 * 8 = 23.6 d; active 3 + 18 + 19 = 40 d, waiting 2 d: efficiency 40/42.
    """
    started = {"start": "In Progress"}
    load(
        engine,
        "jira",
        [
            item("F", "feature", "done", art="ART 1"),
            item(
                "A",
                "story",
                "done",
                parent_external_id="F",
                created_at=at(10, 6),
                history=moves((at(10, 9), "Done"), **started),
            ),
            item(
                "B",
                "story",
                "done",
                parent_external_id="F",
                created_at=at(9, 20),
                history=moves((at(10, 8), "Done"), **started),
            ),
            item(
                "C",
                "story",
                "done",
                parent_external_id="F",
                created_at=at(9, 1),
                history=moves(
                    (at(9, 10), "In Progress"),
                    (at(9, 15), "Done"),
                    (at(9, 20), "In Progress"),
                    (at(9, 22), "Blocked"),
                    (at(9, 24), "In Progress"),
                    (at(10, 6), "Done"),
                ),
            ),
        ],
    )
    compute_analytics(engine, PORTFOLIO, now=NOW)
    found = {
        (row["increment"], row["level"]): (
            row["completed_items"],
            row["flow_time_items"],
            row["flow_time_p50"],
            row["flow_time_p85"],
            row["wip"],
            row["active_days"],
            row["waiting_days"],
            row["efficiency"],
        )
        for row in rows(engine, models.FlowMetric)
        if row["art"] == "ART 1"
    }
    assert found == {
        ("PI 1", "story"): (0, 0, None, None, 2, None, None, None),
        ("PI 2", "story"): (3, 3, 18.0, 23.6, 0, 40.0, 2.0, 40 / 42),
    }


def _finished(external_id: str, parent: str, started: datetime, days: int) -> WorkItem:
    """A story started at `started` and done `days` later."""
    return item(
        external_id,
        "story",
        "done",
        parent_external_id=parent,
        created_at=started - timedelta(days=1),
        history=moves((started, "In Progress"), (started + timedelta(days=days), "Done")),
    )


def test_percentiles_per_art_and_pi_are_taken_within_each_group(engine: Engine) -> None:
    """Flow time percentiles of several (ART, PI) groups, one without an ART, side by side:
    each group's ranks are counted within the group only (percentile_cont: position
    1 + p(n - 1), linearly interpolated).

    ART 1, PI 1: 6, 8, 9 d -> p50 8; p85 at 2.7: 8 + 0.7 * 1 = 8.7.
    ART 1, PI 2: 1, 2, 4, 10 d -> p50 at 2.5: 2 + 0.5 * 2 = 3; p85 at 3.55: 4 + 0.55 * 6 = 7.3.
    ART 2, PI 2: 5, 7 d -> p50 at 1.5: 6; p85 at 1.85: 5 + 0.85 * 2 = 6.7.
    no ART, PI 2: 3 d -> p50 = p85 = 3.
    """
    pi1, pi2 = at(7, 10), at(10, 6)
    items = [
        item("F1", "feature", "done", art="ART 1"),
        item("F2", "feature", "done", art="ART 2"),
        item("F3", "feature", "done"),
        *(_finished(f"A{days}", "F1", pi1, days) for days in (9, 6, 8)),
        *(_finished(f"B{days}", "F1", pi2, days) for days in (10, 1, 4, 2)),
        *(_finished(f"C{days}", "F2", pi2, days) for days in (7, 5)),
        _finished("D3", "F3", pi2, 3),
    ]
    load(engine, "jira", items)
    compute_analytics(engine, PORTFOLIO, now=NOW)
    found = {
        (row["art"], row["increment"]): (
            row["flow_time_items"],
            row["flow_time_p50"],
            row["flow_time_p85"],
        )
        for row in rows(engine, models.FlowMetric)
        if row["level"] == "story"
    }
    assert found == {
        ("ART 1", "PI 1"): (3, 8.0, pytest.approx(8.7)),
        ("ART 1", "PI 2"): (4, 3.0, pytest.approx(7.3)),
        ("ART 2", "PI 2"): (2, 6.0, pytest.approx(6.7)),
        (None, "PI 2"): (1, 3.0, 3.0),
    }
