"""The whole pipeline under chaos, in CI: faults, 429 bursts, dropped connections, people editing
the trackers (fields lpm-sync writes included) and SIGKILL at random points of a third of the
cycles; afterwards every invariant of tests/chaos/invariants.py holds and no secret was left
anywhere.

Most cycles run the plain steps `portfolio_run` calls, in a child process (tests/chaos/driver.py),
because starting the flow engine per cycle would cost more than the cycle; two cycles run the
real `portfolio_run` flow against a Prefect server. The report step runs every fifth cycle and
in each cycle to be killed in it. benchmarks/chaos.py runs the same harness longer and larger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import PrefectApi
from tests.chaos.harness import Chaos, Outcome, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def assert_survived(outcome: Outcome, chaos: Chaos, *elsewhere: Path) -> None:
    figures = outcome.figures()
    injected = figures["faults_injected"]
    # The chaos was real: kills, faults, and people editing what lpm-sync writes.
    assert outcome.kills >= round(outcome.settings.cycles * outcome.settings.kill_share) - 1
    assert len({cycle.killed_in for cycle in outcome.cycles if cycle.killed_in}) >= 3
    assert min(injected.get(kind, 0) for kind in ("500", "503", "drop")) > 0, injected
    assert figures["human_edits_to_written_fields"] > 0 and figures["conflicts"] > 0
    assert figures["lpm_field_writes"] > 0
    assert outcome.findings.transitions_checked > 0 and outcome.findings.items > 0
    # Nothing lost, duplicated or overwritten; both ledgers agree with the trackers.
    assert outcome.findings.ok, outcome.findings.summary()
    assert (figures["lost"], figures["duplicated"], figures["overwritten"]) == (0, 0, 0)
    # Checked after every cycle, not only at the end.
    assert outcome.checks == outcome.settings.cycles + 1
    # Converged: the clean cycle after the clean cycle has nothing left to write.
    assert outcome.last_cycle_writes == []
    assert chaos.leaks(*elsewhere) == []


def test_twenty_cycles_with_kills_faults_and_human_edits_lose_nothing(
    tmp_path: Path, prefect_api: PrefectApi
) -> None:
    settings = Settings(cycles=20, prefect_cycles=2, report_every=5, seed=10)
    with Chaos(settings, tmp_path, prefect_api.url) as chaos:
        outcome = chaos.run()
    assert outcome.figures()["prefect_cycles"] == 2
    assert outcome.figures()["burst_cycles"] > 0 and outcome.figures()["faults_injected"]["429"]
    assert_survived(outcome, chaos, *prefect_api.database_files())


@pytest.mark.postgres
def test_kills_on_a_postgresql_warehouse_lose_nothing(tmp_path: Path, postgres_server: str) -> None:
    """A process killed mid-transaction on PostgreSQL (the server rolls it back) as on SQLite."""
    from tests.conftest import _reset_postgres

    _reset_postgres(postgres_server)
    settings = Settings(
        cycles=8, kill_share=0.5, report_every=8, seed=11, warehouse_url=postgres_server
    )
    with Chaos(settings, tmp_path) as chaos:
        outcome = chaos.run()
    assert_survived(outcome, chaos)
