"""What the check between two chaos cycles lets pass, and what it never does."""

from __future__ import annotations

from tests.chaos.invariants import Findings, mid_run

KINDS = (
    "duplicate row",
    "duplicated transition",
    "invented transition",
    "human edit overwritten",
    "ledger row without write",
    "missing item",
    "stale item",
    "phantom item",
    "missing transition",
    "unsettled ledger row",
    "sync_run ledger",
    "write without ledger row",
    "rank moves vs ledger",
)
ALWAYS = {
    "duplicate row",
    "duplicated transition",
    "invented transition",
    "human edit overwritten",
    "ledger row without write",
}
SETTLED_BY_A_COMPLETE_CYCLE = {
    "unsettled ledger row",
    "sync_run ledger",
    "write without ledger row",
    "rank moves vs ledger",
}


def every_kind() -> Findings:
    findings = Findings()
    for kind in KINDS:
        findings.add(kind, f"one {kind}")
    return findings


def test_after_a_complete_cycle_only_what_awaits_a_sync_passes() -> None:
    kept = mid_run(every_kind(), killed=False)
    assert set(kept.violations) == ALWAYS | SETTLED_BY_A_COMPLETE_CYCLE
    assert not kept.ok


def test_after_a_killed_cycle_what_it_leaves_unsettled_passes_too() -> None:
    kept = mid_run(every_kind(), killed=True)
    assert set(kept.violations) == ALWAYS
    assert kept.duplicated == 2 and kept.overwritten == 1 and kept.lost == 0
