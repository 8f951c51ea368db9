"""Write-back values and rules: canonical text, and write / conflict / nothing per field."""

from __future__ import annotations

import pytest

from mapping.writeback import (
    Outcome,
    as_text,
    decide,
    desired_health,
    desired_progress,
    desired_wsjf,
    rank_conflict,
    same,
    typed,
)


def test_numbers_compare_as_canonical_text() -> None:
    assert as_text("wsjf", 12.5) == as_text("wsjf", "12.50") == as_text("wsjf", " 12.5 ") == "12.5"
    assert as_text("wsjf", 12.0) == as_text("wsjf", 12) == "12"
    assert as_text("wsjf", 0.0) == as_text("wsjf", -0.0) == "0"
    assert as_text("wsjf", None) is None and as_text("wsjf", "  ") is None
    assert as_text("wsjf", "n/a") == "n/a"
    assert as_text("rank", 558891008.0) == "558891008"
    assert as_text("rank", "0|00000c300000:") == "0|00000c300000:"
    assert typed("wsjf", "12.5") == 12.5 and typed("health", "at-risk") == "at-risk"


def test_desired_values_are_rounded_the_way_people_read_them() -> None:
    assert desired_wsjf(17 / 3) == "5.67"
    assert desired_wsjf(24.0) == "24"
    assert desired_progress(0.996) == "99"
    assert desired_progress(1.0) == "100"
    assert desired_progress(0.29) == "29"  # 0.29 * 100 = 28.999999999999996
    assert desired_progress(0.0) == "0"
    assert desired_progress(None) is None
    assert desired_health("blocked", {"blocked": "Off Track"}) == "Off Track"
    assert desired_health("at-risk", {"blocked": "Off Track"}) == "at-risk"


def test_health_compares_ignoring_case() -> None:
    assert same("health", "On-Track", "on-track")
    assert not same("wsjf", "12.5", "12.50")  # canonical text is produced first
    assert same("wsjf", None, None) and not same("wsjf", None, "1")


CASES = [
    # desired, tracker, last, written, first_write, force -> outcome
    ("5", "5", None, False, "empty", False, None),
    ("5", None, None, False, "empty", False, Outcome.write),
    ("5", "3", None, False, "empty", False, Outcome.conflict),
    ("5", "3", None, False, "empty", True, Outcome.write),
    ("5", "3", None, False, "overwrite", False, Outcome.write),
    (None, "3", None, False, "empty", False, None),
    ("5", "4", "4", True, "empty", False, Outcome.write),
    ("5", "3", "4", True, "empty", False, Outcome.conflict),
    ("5", "3", "4", True, "overwrite", False, Outcome.conflict),
    ("5", "3", "4", True, "empty", True, Outcome.write),
    ("5", None, "4", True, "empty", False, Outcome.conflict),
    (None, "4", "4", True, "empty", False, Outcome.write),
    (None, "3", "4", True, "empty", True, None),
    ("5", "3", None, True, "empty", False, Outcome.conflict),
    ("5", None, None, True, "empty", False, Outcome.write),
]


@pytest.mark.parametrize(
    ("desired", "tracker", "last", "written", "policy", "force", "want"), CASES
)
def test_decide(
    desired: str | None,
    tracker: str | None,
    last: str | None,
    written: bool,
    policy: str,
    force: bool,
    want: Outcome | None,
) -> None:
    decision = decide(
        "wsjf",
        desired=desired,
        tracker=tracker,
        last=last,
        written=written,
        first_write=policy,  # type: ignore[arg-type]
        force=force,
    )
    assert (decision.outcome if decision else None) == want


def test_reasons_say_what_happened() -> None:
    conflict = decide("wsjf", desired="5", tracker="3", last="4", written=True)
    assert conflict is not None and "since lpm-sync wrote 4" in conflict.reason
    forced = decide("wsjf", desired="5", tracker="3", last="4", written=True, force=True)
    assert forced is not None and "--force" in forced.reason
    clearing = decide("wsjf", desired=None, tracker="4", last="4", written=True)
    assert clearing is not None and "clears" in clearing.reason


def test_a_rank_is_claimed_only_when_it_moved_since_our_move() -> None:
    assert not rank_conflict(tracker="0|a:", last=None, written=False)
    assert not rank_conflict(tracker="0|a:", last="0|a:", written=True)
    assert rank_conflict(tracker="0|b:", last="0|a:", written=True)


def test_write_back_options_are_validated_with_their_path() -> None:
    from mapping.config import ConfigError, parse_config

    text = """
portfolio: {name: P}
sources:
  - name: j
    kind: jira
    url: https://jira.example.com
    auth: {token: {env: T}}
    scope: project = P
    levels: {Epic: epic}
    writeback: {health: H, health_values: {late: Late}, first_write: always}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    problems = "\n".join(caught.value.problems)
    assert "sources.0.writeback.health_values.late.[key]" in problems
    assert "sources.0.writeback.first_write: Input should be 'empty' or 'overwrite'" in problems
