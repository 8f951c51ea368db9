"""Chaos, longer and larger than CI: the harness of tests/chaos/ for many cycles.

Both sandbox trackers inject 5xx, 429 bursts and dropped connections while people edit, move
and delete items and change the fields lpm-sync writes; the pipeline runs in a child process per
cycle and a third of the cycles are SIGKILLed inside a chosen step. After every cycle the
invariants that hold mid-run are checked, and after two clean cycles at the end all of them,
against the trackers' own records (tests/chaos/invariants.py). Prints a table of the figures
(cycles, faults injected, kills by step, items, human edits, conflicts, lost / duplicated /
overwritten, writes applied twice) and every violation; exit 1 when any invariant fails or
the second clean cycle still writes.

    .venv/bin/python -m benchmarks.chaos --cycles 100 --jira-items 1500 --ado-items 600
    .venv/bin/python -m benchmarks.chaos --cycles 40 --database postgresql --json pg.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from tests.chaos.harness import Chaos, Cycle, Outcome, Settings, prefect_server

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A database of its own on the PostgreSQL server, dropped afterwards."""
    name = f"lpm_chaos_{uuid.uuid4().hex[:10]}"
    admin = make_url(admin_url)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def figures(outcome: Outcome, warehouse: str, leaks: list[str]) -> dict[str, Any]:
    """The run's figures, with the median time of each step and every cycle."""
    found = {"warehouse": warehouse, **outcome.figures(), "secret_leaks": len(leaks)}
    steps: dict[str, list[float]] = {}
    for cycle in outcome.cycles:
        for step, seconds in cycle.steps.items():
            steps.setdefault(step, []).append(seconds)
    found["median_step_seconds"] = {
        step: sorted(values)[len(values) // 2] for step, values in steps.items()
    }
    found["violations_by_kind"] = {
        kind: len(problems) for kind, problems in outcome.findings.violations.items() if problems
    }
    found["per_cycle"] = [
        {
            "cycle": c.number,
            "mode": c.mode,
            "killed_in": c.killed_in,
            "burst": c.burst,
            "seconds": round(c.seconds, 1),
            "new_violations": c.violations,
        }
        for c in outcome.cycles
    ]
    return found


def table(f: Mapping[str, Any]) -> str:
    """The figures a reader checks first, one per line."""
    faults = f["faults_injected"]
    server_errors = sum(n for kind, n in faults.items() if kind.startswith("5"))
    five = ", ".join(f"{kind} {n:,}" for kind, n in faults.items() if kind.startswith("5"))
    by_step = ", ".join(f"{step} {n}" for step, n in sorted(f["kills_by_step"].items()))
    ledger = ", ".join(f"{status} {n}" for status, n in sorted(f["ledger"].items()))
    violations = f["violations_by_kind"]
    rows = [
        ("warehouse", f["warehouse"]),
        (
            "cycles",
            f"{f['cycles']} ({f['cycles'] - 2} under chaos + 2 clean; "
            f"{f['prefect_cycles']} through the portfolio_run flow; {f['burst_cycles']} in a "
            f"429 burst)",
        ),
        ("SIGKILLs", f"{f['kills']} ({by_step})"),
        ("requests to the trackers", f"{f['requests']:,}"),
        (
            "faults injected",
            f"5xx {server_errors:,} ({five}), "
            f"429 {faults.get('429', 0):,}, dropped connections {faults.get('drop', 0):,}",
        ),
        (
            "items checked",
            f"{f['items']:,} live work items, {f['objectives']} objectives, {f['deleted']} deleted",
        ),
        ("status transitions checked", f"{f['transitions_checked']:,}"),
        (
            "human edits",
            f"{f['human_edits']:,} (to fields lpm-sync writes: "
            f"{f['human_edits_to_written_fields']:,})",
        ),
        (
            "lpm-sync writes",
            f"{f['lpm_field_writes']:,} field values, {f['lpm_rank_changes']} ranks",
        ),
        ("write-back ledger", ledger),
        ("conflicts recorded", f"{f['conflicts']:,} fields"),
        (
            "edits over a person's value",
            f"{f['overwrites_undone']} (each undone: their value written back, skipped_conflict)",
        ),
        ("writes in the last clean cycle", f["writes_in_last_clean_cycle"]),
        ("invariant checks", f"{f['invariant_checks']} (after every cycle and at the end)"),
        ("lost", f["lost"]),
        ("duplicated", f["duplicated"]),
        ("human edits overwritten", f["overwritten"]),
        # A tracker write of lpm-sync's beyond its one `applied` row: sent twice or unrecorded.
        ("writes applied twice or unrecorded", violations.get("write without ledger row", 0)),
        ("applied rows without a write", violations.get("ledger row without write", 0)),
        ("all violations", f["violations"]),
        ("secret leaks", f["secret_leaks"]),
        ("seconds", f["seconds"]),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def progress(cycle: Cycle) -> None:
    """One line per cycle, as it ends: a long run shows where it is and what it found."""
    killed = f"killed in {cycle.killed_in}" if cycle.killed_in else f"exit {cycle.exit_code}"
    print(
        f"cycle {cycle.number:3d} {cycle.mode:7s} {killed:28s} {cycle.seconds:6.1f} s"
        f"{'  429 burst' if cycle.burst else ''}  new violations: {len(cycle.violations)}",
        flush=True,
    )
    for problem in cycle.violations:
        print(f"    {problem}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--jira-items", type=int, default=1500)
    parser.add_argument("--ado-items", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-share", "--kill-fraction", type=float, default=1 / 3)
    parser.add_argument("--prefect-cycles", type=int, default=5, help="Cycles run as the flow.")
    parser.add_argument("--report-every", type=int, default=2)
    parser.add_argument("--mutation-interval", type=float, default=0.3)
    parser.add_argument("--owned-edit-interval", type=float, default=1.0)
    parser.add_argument(
        "--warehouse", "--database", choices=("sqlite", "postgresql"), default="sqlite"
    )
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN)
    parser.add_argument("--workdir", type=Path, help="Keep logs and warehouse here.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args()

    with ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = None
        if args.warehouse == "postgresql":
            url = stack.enter_context(postgres_database(args.postgres_admin_url))
        api = None
        if args.prefect_cycles:
            api = stack.enter_context(prefect_server(workdir / "prefect-home"))
        settings = Settings(
            cycles=args.cycles,
            jira_items=args.jira_items,
            ado_items=args.ado_items,
            seed=args.seed,
            kill_share=args.kill_share,
            prefect_cycles=args.prefect_cycles,
            report_every=args.report_every,
            mutation_interval=args.mutation_interval,
            owned_edit_interval=args.owned_edit_interval,
            warehouse_url=url,
        )
        with Chaos(settings, workdir / "run", api) as chaos:
            outcome = chaos.run(progress)
            leaks = chaos.leaks(*sorted((workdir / "prefect-home").glob("prefect.db*")))
    found = figures(outcome, args.warehouse, leaks)
    print(table(found))
    print(outcome.findings.summary(limit=20))
    for write in outcome.last_cycle_writes:
        print(f"written in the last clean cycle (not converged): {write}")
    for leak in leaks:
        print(f"secret leak: {leak}")
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    sys.exit(0 if outcome.findings.ok and not outcome.last_cycle_writes and not leaks else 1)


if __name__ == "__main__":
    main()
