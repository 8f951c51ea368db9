"""A hand-built portfolio whose every metric is worked out by hand, on SQLite and PostgreSQL.

The portfolio (two sources; `now` = 2026-11-04 12:00 UTC, inside PI 2):

    jira  T1 theme (doing)
            E1 epic (doing) BV 8 TC 5 RR 3 JS 4
              C1 capability (doing) BV 2 TC 2 RR 2 JS 3
                F1 feature (doing) ART 1, PI 2, BV 5 TC 3 RR 2 JS 5
                  S1 story done   est 3  In Progress 10-07 -> Done 10-10
                  S2 story done   est 5  In Progress 10-13, Blocked 10-15, In Progress 10-17,
                                         Done 10-20
                  S3 story doing  est 8  In Progress 10-28, flagged
                  S4 story todo   no estimate
                F2 feature (doing) ART 1, PI 2, enabler, BV 3 TC 3 RR 4, no job size
                  S5 story done   est 2  In Progress 10-19 -> Done 10-22
                  S6 story todo   est 2
              F3 feature (todo) ART 2, PI 2, est 13, BV 1 TC 1 RR 1 JS 1 (a leaf)
            E2 epic (todo) BV 3 TC 2 (no RR), own dates 09-01 .. 11-01
              F4 feature done  ART 2, PI 1, est 5, resolved 09-10 (no history)
              F10 feature todo ART 2, est 5 (no PI, no dates)
          E4 epic (todo) BV 6 TC 6 RR 4 JS 8      E5 epic (todo) BV 4 TC 2 RR 2 JS 4
          S8 story (parent "GONE" never synced)   S9 story under F7 (removed)
          S10 story under X1 (deleted in the tracker)
    ado   E3 epic done BV 1 TC 1 RR 1 JS 1, resolved 08-20
            F5 feature done ART 1, PI 1, est 8, In Progress 08-03 -> Done 08-13
          F6 feature (doing) ART 1, PI 2, BV 4 TC 4 RR 2 JS 5, created a day after F1
            S7 bug done  est 2 maintenance  In Progress 10-28 -> Done 10-30
            S11 story doing est 3  In Progress 10-30      S12 story todo est 5 maintenance
          F8 feature, parent F9; F9 feature, parent F8 (a cycle)

Stories S1-S6 are team Alpha, S7/S11/S12 team Beta. All changes happen at 09:00 UTC. PI 1 runs
2026-07-06 .. 09-24, PI 2 2026-10-05 .. 12-24 (80 days, of which 30 have passed: elapsed 0.375).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine

from mapping.config import PortfolioConfig
from tests.analytics.builders import by_item, external_ids, item, load, moves, objective, rows
from warehouse import models
from warehouse.analytics import AnalyticsSummary, Breach, compute_analytics

NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
PI1 = (date(2026, 7, 6), date(2026, 9, 24))
PI2 = (date(2026, 10, 5), date(2026, 12, 24))
PORTFOLIO = PortfolioConfig.model_validate(
    {
        "name": "Reference",
        "increments": [
            {"name": "PI 1", "start": PI1[0], "end": PI1[1]},
            {"name": "PI 2", "start": PI2[0], "end": PI2[1]},
        ],
        "wsjf": {"job_size_fallback": True},
        "flow": {"active_statuses": ["In Progress"], "waiting_statuses": ["Blocked"]},
        "forecast": {"simulations": 200, "seed": 42, "history_weeks": 4},
    }
)


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def wsjf(bv: float, tc: float, rr: float | None, js: float | None = None) -> dict[str, object]:
    return {"business_value": bv, "time_criticality": tc, "risk_reduction": rr, "job_size": js}


def load_reference(engine: Engine) -> None:
    alpha = {"team": "Alpha"}
    pi2_art1 = {"art": "ART 1", "increment": "PI 2"}
    load(
        engine,
        "jira",
        [
            item("T1", "theme", "doing"),
            item("E1", "epic", "doing", parent_external_id="T1", **wsjf(8, 5, 3, 4)),
            item("C1", "capability", "doing", parent_external_id="E1", **wsjf(2, 2, 2, 3)),
            item("F1", "feature", "doing", parent_external_id="C1", **pi2_art1, **wsjf(5, 3, 2, 5)),
            item(
                "S1",
                "story",
                "done",
                parent_external_id="F1",
                estimate=3,
                **alpha,
                history=moves((at(10, 7), "In Progress"), (at(10, 10), "Done")),
            ),
            item(
                "S2",
                "story",
                "done",
                parent_external_id="F1",
                estimate=5,
                **alpha,
                history=moves(
                    (at(10, 13), "In Progress"),
                    (at(10, 15), "Blocked"),
                    (at(10, 17), "In Progress"),
                    (at(10, 20), "Done"),
                ),
            ),
            item(
                "S3",
                "story",
                "doing",
                parent_external_id="F1",
                estimate=8,
                flagged=True,
                **alpha,
                history=moves((at(10, 28), "In Progress")),
            ),
            item("S4", "story", parent_external_id="F1", **alpha),
            item(
                "F2",
                "feature",
                "doing",
                parent_external_id="C1",
                category="enabler",
                **pi2_art1,
                **wsjf(3, 3, 4),
            ),
            item(
                "S5",
                "story",
                "done",
                parent_external_id="F2",
                estimate=2,
                **alpha,
                history=moves((at(10, 19), "In Progress"), (at(10, 22), "Done")),
            ),
            item("S6", "story", parent_external_id="F2", estimate=2, **alpha),
            item(
                "F3",
                "feature",
                parent_external_id="E1",
                art="ART 2",
                increment="PI 2",
                estimate=13,
                **wsjf(1, 1, 1, 1),
            ),
            item(
                "E2",
                "epic",
                parent_external_id="T1",
                start_date=date(2026, 9, 1),
                target_date=date(2026, 11, 1),
                **wsjf(3, 2, None),
            ),
            item(
                "F4",
                "feature",
                "done",
                parent_external_id="E2",
                art="ART 2",
                increment="PI 1",
                estimate=5,
                resolved_at=at(9, 10, 12),
            ),
            item("F10", "feature", parent_external_id="E2", art="ART 2", estimate=5),
            item("E4", "epic", **wsjf(6, 6, 4, 8)),
            item("E5", "epic", **wsjf(4, 2, 2, 4)),
            item("S8", "story", parent_external_id="GONE", estimate=1, **alpha),
            item("F7", "feature", "removed", art="ART 1"),
            item("S9", "story", parent_external_id="F7", estimate=2, **alpha),
            item("X1", "feature"),
            item("S10", "story", parent_external_id="X1", estimate=2, **alpha),
        ],
        deleted=["X1"],
    )
    beta = {"team": "Beta"}
    load(
        engine,
        "ado",
        [
            item("E3", "epic", "done", resolved_at=at(8, 20, 12), **wsjf(1, 1, 1, 1)),
            item(
                "F5",
                "feature",
                "done",
                parent_external_id="E3",
                art="ART 1",
                increment="PI 1",
                estimate=8,
                history=moves((at(8, 3), "In Progress"), (at(8, 13), "Done")),
            ),
            item("F6", "feature", "doing", created_at=at(6, 2), **pi2_art1, **wsjf(4, 4, 2, 5)),
            item(
                "S7",
                "story",
                "done",
                item_type="Bug",
                parent_external_id="F6",
                estimate=2,
                category="maintenance",
                **beta,
                history=moves((at(10, 28), "In Progress"), (at(10, 30), "Done")),
            ),
            item(
                "S11",
                "story",
                "doing",
                parent_external_id="F6",
                estimate=3,
                **beta,
                history=moves(
                    (at(10, 30), "In Progress"),
                ),
            ),
            item(
                "S12", "story", parent_external_id="F6", estimate=5, category="maintenance", **beta
            ),
            item("F8", "feature", parent_external_id="F9"),
            item("F9", "feature", parent_external_id="F8"),
        ],
        objectives=[
            objective("O1", art="ART 1", increment="PI 1", planned_value=10, actual_value=8),
            objective("O2", art="ART 1", increment="PI 1", planned_value=10, actual_value=10),
            objective(
                "O3",
                art="ART 1",
                increment="PI 1",
                committed=False,
                planned_value=5,
                actual_value=4,
            ),
            objective("O4", team="Beta", increment="PI 2", planned_value=8),
            objective("O5", art="ART 2", increment="PI 1", planned_value=10, actual_value=9),
            objective(
                "O6",
                art="ART 2",
                increment="PI 1",
                planned_value=10,
                actual_value=0,
                status_category="removed",
            ),
            objective("O7", art="ART 2", increment="PI 1", planned_value=10, actual_value=0),
            objective(
                "O8",
                art="ART 3",
                increment="PI 2",
                committed=False,
                planned_value=5,
                actual_value=5,
            ),
        ],
        deleted=["O7"],
    )


@pytest.fixture
def reference(engine: Engine) -> tuple[Engine, AnalyticsSummary]:
    load_reference(engine)
    return engine, compute_analytics(engine, PORTFOLIO, now=NOW)


ROLLUP_COLUMNS = (
    "total_items",
    "done_items",
    "estimated_items",
    "total_estimate",
    "done_estimate",
    "progress",
    "progress_basis",
    "flagged_items",
    "start_date",
    "end_date",
    "art",
    "increment",
)
EXPECTED_ROLLUP = {
    "F1": (4, 2, 3, 16.0, 8.0, 0.5, "estimate", 1, *PI2, "ART 1", "PI 2"),
    "F2": (2, 1, 2, 4.0, 2.0, 0.5, "estimate", 0, *PI2, "ART 1", "PI 2"),
    "C1": (6, 3, 5, 20.0, 10.0, 0.5, "estimate", 1, *PI2, None, None),
    "F3": (1, 0, 1, 13.0, 0.0, 0.0, "estimate", 0, *PI2, "ART 2", "PI 2"),
    "E1": (7, 3, 6, 33.0, 10.0, 10 / 33, "estimate", 1, *PI2, None, None),
    "F4": (1, 1, 1, 5.0, 5.0, 1.0, "estimate", 0, *PI1, "ART 2", "PI 1"),
    "F10": (1, 0, 1, 5.0, 0.0, 0.0, "estimate", 0, None, None, "ART 2", None),
    "E2": (2, 1, 2, 10.0, 5.0, 0.5, "estimate", 0, PI1[0], date(2026, 11, 1), None, None),
    "T1": (9, 4, 8, 43.0, 15.0, 15 / 43, "estimate", 1, PI1[0], PI2[1], None, None),
    "E4": (1, 0, 0, None, None, 0.0, "count", 0, None, None, None, None),
    "E5": (1, 0, 0, None, None, 0.0, "count", 0, None, None, None, None),
    "F5": (1, 1, 1, 8.0, 8.0, 1.0, "estimate", 0, *PI1, "ART 1", "PI 1"),
    "E3": (1, 1, 1, 8.0, 8.0, 1.0, "estimate", 0, *PI1, None, None),
    "F6": (3, 1, 3, 10.0, 2.0, 0.2, "estimate", 0, *PI2, "ART 1", "PI 2"),
    "F8": (1, 0, 0, None, None, 0.0, "count", 0, None, None, None, None),
    "F9": (1, 0, 0, None, None, 0.0, "count", 0, None, None, None, None),
}


def test_rollups(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """Totals count the leaves below (a leaf counts itself); estimates sum the estimated ones.

    F1: S1-S4, done S1+S2; estimated S1-S3 = 3+5+8 = 16, done 3+5 = 8 -> 8/16 = 0.5; S3 flagged.
    F2: S5+S6 = 2+2, done 2 -> 0.5.  C1 = F1 + F2: 6 items, 3 done, 20 points, 10 done -> 0.5.
    F3 is a leaf: 1 item, 13 points, none done.  E1 = C1 + F3: 7, 3, 33, 10 -> 10/33.
    E2 = F4 (done, 5) + F10 (5): 10 points, 5 done -> 0.5; dates from its own 09-01..11-01 and
    F4's PI 1 (07-06..09-24): 07-06..11-01.  T1 = E1 + E2: 9 items, 4 done, 43 points, 15 done.
    E4, E5, F8, F9 are unestimated leaves: count-based 0/1.  F6: S7 (2, done), S11 (3), S12 (5):
    2/10 = 0.2.  Dates are those of the PIs below; ART and PI are inherited (F1's stories carry
    ART 1 and PI 2 from F1; E1 and C1 have neither).  The removed F7, the deleted X1 and the
    stories below them are not part of any roll-up.
    """
    engine, summary = reference
    found = by_item(engine, models.Rollup)
    assert {key: tuple(row[c] for c in ROLLUP_COLUMNS) for key, row in found.items()} == (
        EXPECTED_ROLLUP
    )
    assert {row["computed_at"] for row in found.values()} == {NOW}
    assert summary.items == 28 and summary.rolled_up == 16


def test_breakdown_by_art_team_and_pi(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """Each roll-up split by the (ART, team, PI) of its leaves; groups without leaves omitted.

    T1's leaves: S1-S6 (ART 1, Alpha, PI 2: 6 items, S1 S2 S5 done, 20 points, 10 done),
    F3 (ART 2, no team, PI 2), F4 (ART 2, PI 1, done) and F10 (ART 2, no PI).
    """
    engine, _ = reference
    breakdown = {row["id"]: row for row in rows(engine, models.RollupBreakdown)}
    keys = external_ids(engine)
    found = sorted(
        (
            keys[row["work_item_id"]],
            row["art"] or "",
            row["team"] or "",
            row["increment"] or "",
            row["total_items"],
            row["done_items"],
            row["estimated_items"],
            row["total_estimate"],
            row["done_estimate"],
            row["progress"],
            row["progress_basis"],
            row["start_date"],
            row["end_date"],
        )
        for row in breakdown.values()
    )
    alpha6 = ("ART 1", "Alpha", "PI 2", 6, 3, 5, 20.0, 10.0, 0.5, "estimate", *PI2)
    f3 = ("ART 2", "", "PI 2", 1, 0, 1, 13.0, 0.0, 0.0, "estimate", *PI2)
    f4 = ("ART 2", "", "PI 1", 1, 1, 1, 5.0, 5.0, 1.0, "estimate", *PI1)
    f10 = ("ART 2", "", "", 1, 0, 1, 5.0, 0.0, 0.0, "estimate", None, None)
    f5 = ("ART 1", "", "PI 1", 1, 1, 1, 8.0, 8.0, 1.0, "estimate", *PI1)
    bare = ("", "", "", 1, 0, 0, None, None, 0.0, "count", None, None)
    assert found == sorted(
        [
            ("T1", *alpha6),
            ("T1", *f3),
            ("T1", *f4),
            ("T1", *f10),
            ("E1", *alpha6),
            ("E1", *f3),
            ("C1", *alpha6),
            ("F1", "ART 1", "Alpha", "PI 2", 4, 2, 3, 16.0, 8.0, 0.5, "estimate", *PI2),
            ("F2", "ART 1", "Alpha", "PI 2", 2, 1, 2, 4.0, 2.0, 0.5, "estimate", *PI2),
            ("F3", *f3),
            ("E2", *f4),
            ("E2", *f10),
            ("F4", *f4),
            ("F10", *f10),
            ("E4", *bare),
            ("E5", *bare),
            ("F8", *bare),
            ("F9", *bare),
            ("E3", *f5),
            ("F5", *f5),
            ("F6", "ART 1", "Beta", "PI 2", 3, 1, 3, 10.0, 2.0, 0.2, "estimate", *PI2),
        ]
    )
    assert sorted(breakdown) == list(range(1, len(breakdown) + 1))


WSJF_COLUMNS = (
    "cost_of_delay",
    "job_size",
    "job_size_basis",
    "wsjf",
    "rank",
    "rank_scope",
    "unranked_reason",
)
EXPECTED_WSJF = {
    "E1": (16.0, 4.0, "job_size", 4.0, 1, "portfolio", None),
    "E4": (16.0, 8.0, "job_size", 2.0, 2, "portfolio", None),
    "E5": (8.0, 4.0, "job_size", 2.0, 3, "portfolio", None),
    "E2": (None, 10.0, "estimate", None, None, "portfolio", "missing risk_reduction"),
    "E3": (3.0, 1.0, "job_size", 3.0, None, "portfolio", "done"),
    "C1": (6.0, 3.0, "job_size", 2.0, 1, "portfolio", None),
    "F2": (10.0, 4.0, "estimate", 2.5, 1, "ART 1", None),
    "F1": (10.0, 5.0, "job_size", 2.0, 2, "ART 1", None),
    "F6": (10.0, 5.0, "job_size", 2.0, 3, "ART 1", None),
    "F5": (None, 8.0, "estimate", None, None, "ART 1", "done"),
    "F3": (3.0, 1.0, "job_size", 3.0, 1, "ART 2", None),
    "F4": (None, 5.0, "estimate", None, None, "ART 2", "done"),
    "F10": (
        None,
        5.0,
        "estimate",
        None,
        None,
        "ART 2",
        "missing business_value, time_criticality, risk_reduction",
    ),
    "F8": (None, None, None, None, None, None, "no ART or team"),
    "F9": (None, None, None, None, None, None, "no ART or team"),
    "T1": (None, None, None, None, None, None, None),
}


def test_wsjf_and_ranks(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """CoD = BV + TC + RR; WSJF = CoD / job size; ranks by WSJF, then CoD, then age.

    Epics: E1 16/4 = 4 (rank 1); E4 16/8 = 2 and E5 8/4 = 2 tie, E4 has the higher CoD (2, 3).
    E2 lacks RR (its job size falls back to its 10 points); E3 is done.  C1: 6/3 = 2, the only
    capability.  ART 1 features: F2 10/4 (fallback to S5+S6 = 4 points) = 2.5 first; F1 10/5
    and F6 10/5 tie on WSJF and CoD, F1 was created first (2, 3).  ART 2: F3 3/1 = 3.  F4 and F5
    are done; F10 has no CoD inputs (job size from its own 5 points); F8/F9 have no ART or team.
    """
    engine, summary = reference
    found = by_item(engine, models.Rollup)
    assert {key: tuple(row[c] for c in WSJF_COLUMNS) for key, row in found.items()} == (
        EXPECTED_WSJF
    )
    assert summary.ranked == 8 and summary.done == 3
    assert summary.unranked == {
        "missing business_value, time_criticality, risk_reduction": 1,
        "missing risk_reduction": 1,
        "no ART or team": 2,
    }


HEALTH_COLUMNS = ("elapsed", "schedule_health", "health", "health_reason")
EXPECTED_HEALTH = {
    "T1": (121 / 171, "off-track", "blocked", "flagged"),
    "E1": (0.375, "on-track", "blocked", "flagged"),
    "C1": (0.375, "on-track", "blocked", "flagged"),
    "F1": (0.375, "on-track", "blocked", "flagged"),
    "F2": (0.375, "on-track", "on-track", "on schedule"),
    "F3": (0.375, "off-track", "off-track", "behind schedule"),
    "F6": (0.375, "at-risk", "at-risk", "behind schedule"),
    "E2": (1.0, "off-track", "off-track", "past end date"),
    "F4": (1.0, None, None, "done"),
    "E3": (1.0, None, None, "done"),
    "F5": (1.0, None, None, "done"),
    "F10": (None, None, None, "no dates"),
    "E4": (None, None, None, "no dates"),
    "E5": (None, None, None, "no dates"),
    "F8": (None, None, None, "no dates"),
    "F9": (None, None, None, "no dates"),
}


def test_health(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """Elapsed share of the window vs progress (at-risk > 0.10 behind, off-track > 0.25).

    PI 2 is 30 of 80 days old: 0.375.  F2 (0.5) and C1 (0.5) are ahead; E1 (10/33 = 0.303) is
    0.072 behind: on-track.  F6 (0.2) is 0.175 behind: at-risk.  F3 (0) is 0.375 behind:
    off-track.  T1's window is its rolled-up 07-06..12-24: 121 of 171 days, 0.708 vs 15/43 =
    0.349: off-track.  E2's own window ended 11-01 at progress 0.5: off-track.  S3 is flagged
    and not done, so F1, C1, E1 and T1 are blocked.  Done items and items without any dates
    get no health.
    """
    engine, summary = reference
    found = by_item(engine, models.Rollup)
    assert {key: tuple(row[c] for c in HEALTH_COLUMNS) for key, row in found.items()} == (
        EXPECTED_HEALTH
    )
    assert summary.health == {"at-risk": 1, "blocked": 4, "none": 8, "off-track": 2, "on-track": 1}


def test_guardrails(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """Leaf work planned per PI by category, against 60/25/15% with a 5-point tolerance.

    PI 2 leaves: business S1 3, S2 5, S3 8, S4 -, F3 13, S11 3 (6 items, 32 points); enabler
    S5 2, S6 2 (F2's category; 4 points); maintenance S7 2, S12 5 (7).  Of 43 points: 32/43 =
    0.744 (breach), 4/43 = 0.093 (breach), 7/43 = 0.163 (within 0.05 of 0.15).  PI 1: F4 5 and
    F5 8, both business: 100/0/0%, all three breach.
    """
    engine, summary = reference
    found = {
        (row["increment"], row["category"]): (
            row["is_current"],
            row["items"],
            row["estimate"],
            row["share"],
            row["basis"],
            row["target_share"],
            row["deviation"],
            row["breach"],
        )
        for row in rows(engine, models.Guardrail)
    }
    assert found == {
        ("PI 1", "business"): (False, 2, 13.0, 1.0, "estimate", 0.6, 1.0 - 0.6, True),
        ("PI 1", "enabler"): (False, 0, None, 0.0, "estimate", 0.25, -0.25, True),
        ("PI 1", "maintenance"): (False, 0, None, 0.0, "estimate", 0.15, -0.15, True),
        ("PI 2", "business"): (True, 6, 32.0, 32 / 43, "estimate", 0.6, 32 / 43 - 0.6, True),
        ("PI 2", "enabler"): (True, 2, 4.0, 4 / 43, "estimate", 0.25, 4 / 43 - 0.25, True),
        ("PI 2", "maintenance"): (True, 2, 7.0, 7 / 43, "estimate", 0.15, 7 / 43 - 0.15, False),
    }
    assert summary.current_increment == "PI 2"
    assert summary.breaches == [Breach("business", 32 / 43, 0.6), Breach("enabler", 4 / 43, 0.25)]


def test_flow_metrics(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """Per (PI of completion, ART, level): velocity, flow time, WIP, efficiency.

    PI 2, ART 1 stories: S1 (10-07 -> 10-10, 3 d), S2 (7 d), S5 (3 d), S7 (2 d) completed:
    4 items, 3+5+2+2 = 12 points; times 2, 3, 3, 7: median at rank 1 + 0.5*3 = 2.5 -> 3 d,
    85th at 1 + 0.85*3 = 3.55 -> 3 + 0.55*(7-3) = 5.2 d.  In doing at the run: S3, S11 (2).
    Active In Progress time 3 + (2+3) + 3 + 2 = 13 d, Blocked 2 d: 13/15.
    F1, F2, F6 (ART 1), E1, C1, T1 have been doing since they were created (no history), so
    they are WIP at the end of PI 1 (09-25) and at the run.  PI 1: F5 completed in 10 d, all
    of it In Progress; F4 (resolved 09-10) and E3 (08-20) completed without history, so
    without time in any listed status (0 days, no efficiency).  Without completed items there
    is no status time at all (NULL).
    """
    engine, _ = reference
    found = {
        (row["increment"], row["art"], row["level"]): (
            row["completed_items"],
            row["completed_estimate"],
            row["flow_time_items"],
            row["flow_time_p50"],
            row["flow_time_p85"],
            row["wip"],
            row["active_days"],
            row["waiting_days"],
            row["efficiency"],
        )
        for row in rows(engine, models.FlowMetric)
    }
    nothing = (0, None, 0, None, None, 1, None, None, None)
    assert found == {
        ("PI 1", "ART 1", "feature"): (1, 8.0, 1, 10.0, 10.0, 3, 10.0, 0.0, 1.0),
        ("PI 1", "ART 2", "feature"): (1, 5.0, 0, None, None, 0, 0.0, 0.0, None),
        ("PI 1", None, "epic"): (1, None, 0, None, None, 1, 0.0, 0.0, None),
        ("PI 1", None, "capability"): nothing,
        ("PI 1", None, "theme"): nothing,
        ("PI 2", "ART 1", "story"): (4, 12.0, 4, 3.0, 5.2, 2, 13.0, 2.0, 13 / 15),
        ("PI 2", "ART 1", "feature"): (0, None, 0, None, None, 3, None, None, None),
        ("PI 2", None, "epic"): nothing,
        ("PI 2", None, "capability"): nothing,
        ("PI 2", None, "theme"): nothing,
    }


def test_flow_distribution(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """Completed items by type and by category: PI 2 ART 1 stories are S1, S2, S5 and bug S7."""
    engine, _ = reference
    found = {
        (row["increment"], row["art"], row["level"], row["dimension"], row["value"]): (
            row["items"],
            row["share"],
        )
        for row in rows(engine, models.FlowDistribution)
    }
    assert found == {
        ("PI 1", "ART 1", "feature", "item_type", "Feature"): (1, 1.0),
        ("PI 1", "ART 1", "feature", "category", "business"): (1, 1.0),
        ("PI 1", "ART 2", "feature", "item_type", "Feature"): (1, 1.0),
        ("PI 1", "ART 2", "feature", "category", "business"): (1, 1.0),
        ("PI 1", None, "epic", "item_type", "Epic"): (1, 1.0),
        ("PI 1", None, "epic", "category", "business"): (1, 1.0),
        ("PI 2", "ART 1", "story", "item_type", "Story"): (3, 0.75),
        ("PI 2", "ART 1", "story", "item_type", "Bug"): (1, 0.25),
        ("PI 2", "ART 1", "story", "category", "business"): (2, 0.5),
        ("PI 2", "ART 1", "story", "category", "enabler"): (1, 0.25),
        ("PI 2", "ART 1", "story", "category", "maintenance"): (1, 0.25),
    }


def test_predictability(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """Actual value of all objectives / planned value of committed ones.

    ART 1 PI 1: (8 + 10 + 4 uncommitted) / (10 + 10) = 1.1, above the 80-100% band.
    ART 2 PI 1: 9/10 = 0.9 (the removed O6 and the deleted O7 do not count).  Team Beta (no
    ART) PI 2: nothing achieved yet, 0/8.  ART 3 PI 2 committed nothing: no ratio.
    """
    engine, _ = reference
    found = {
        (row["art"], row["increment"]): (
            row["committed_objectives"],
            row["uncommitted_objectives"],
            row["planned_value"],
            row["actual_value"],
            row["predictability"],
            row["in_range"],
        )
        for row in rows(engine, models.Predictability)
    }
    assert found == {
        ("ART 1", "PI 1"): (2, 1, 20.0, 22.0, 1.1, False),
        ("ART 2", "PI 1"): (1, 0, 10.0, 9.0, 0.9, True),
        ("Beta", "PI 2"): (1, 0, 8.0, 0.0, 0.0, False),
        ("ART 3", "PI 2"): (0, 1, 0.0, 5.0, None, None),
    }


def test_forecasts(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """With one leaf completed in each of the last 4 weeks, every trial needs `remaining` weeks.

    ART 1 (and the whole portfolio) completed S7 (week 0), S5 (1), S2 (2), S1 (3): samples
    [1, 1, 1, 1].  F1 has 2 leaves left -> 2 weeks -> 11-18; F2 1 -> 11-11; F6 2 -> 11-18;
    E1 (no ART: portfolio throughput) 4 -> 12-02.  Only in-flight epics and features are dated.
    """
    engine, summary = reference
    found = {
        key: (row["forecast_p50"], row["forecast_p85"], row["forecast_reason"])
        for key, row in by_item(engine, models.Rollup).items()
        if row["forecast_p50"] or row["forecast_reason"]
    }
    assert found == {
        "F1": (date(2026, 11, 18), date(2026, 11, 18), None),
        "F2": (date(2026, 11, 11), date(2026, 11, 11), None),
        "F6": (date(2026, 11, 18), date(2026, 11, 18), None),
        "E1": (date(2026, 12, 2), date(2026, 12, 2), None),
    }
    assert summary.forecasts == 4


def test_hierarchy_issues(reference: tuple[Engine, AnalyticsSummary]) -> None:
    """S8 names a parent never synced, S9's parent is removed, S10's deleted; F8 <-> F9 loop."""
    engine, summary = reference
    names = external_ids(engine)
    found = {
        (names[row["work_item_id"]], row["kind"]): (
            names.get(row["related_id"]),
            row["detail"],
            row["computed_at"],
        )
        for row in rows(engine, models.HierarchyIssue)
    }
    assert found == {
        ("S8", "parent_not_found"): (None, "GONE", NOW),
        ("S9", "parent_removed"): ("F7", None, NOW),
        ("S10", "parent_deleted"): ("X1", None, NOW),
        ("F8", "cycle"): ("F9", None, NOW),
        ("F9", "cycle"): ("F8", None, NOW),
    }
    assert (summary.cycles, summary.orphans, summary.too_deep) == (2, 3, 0)
