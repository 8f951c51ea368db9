"""Chaos, longer and larger than CI: the harness of tests/chaos/ for many cycles.

Both sandbox trackers inject 5xx, 429 bursts and dropped connections while people edit, move
and delete items and change the fields lpm-sync writes; the pipeline runs in a child process per
cycle and a third of the cycles are SIGKILLed inside a chosen step. After two clean cycles every
invariant is checked against the trackers' own records (tests/chaos/invariants.py). Prints the
figures (cycles, faults injected, kills, items, conflicts, lost / duplicated / overwritten) and
every violation; exit 1 when any invariant fails.

    .venv/bin/python -m benchmarks.chaos --cycles 100 --jira-items 1500 --ado-items 600
    .venv/bin/python -m benchmarks.chaos --cycles 40 --warehouse postgresql
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.chaos.harness import Chaos, Settings, prefect_server

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--jira-items", type=int, default=1500)
    parser.add_argument("--ado-items", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-share", type=float, default=1 / 3)
    parser.add_argument("--prefect-cycles", type=int, default=5, help="Cycles run as the flow.")
    parser.add_argument("--report-every", type=int, default=2)
    parser.add_argument("--mutation-interval", type=float, default=0.3)
    parser.add_argument("--owned-edit-interval", type=float, default=1.0)
    parser.add_argument("--warehouse", choices=("sqlite", "postgresql"), default="sqlite")
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
            outcome = chaos.run()
            leaks = chaos.leaks(*sorted((workdir / "prefect-home").glob("prefect.db*")))
    figures = {"warehouse": args.warehouse, **outcome.figures(), "secret_leaks": len(leaks)}
    steps: dict[str, list[float]] = {}
    for cycle in outcome.cycles:
        for step, seconds in cycle.steps.items():
            steps.setdefault(step, []).append(seconds)
    figures["median_step_seconds"] = {
        step: sorted(values)[len(values) // 2] for step, values in steps.items()
    }
    print(json.dumps(figures, indent=2))
    print(outcome.findings.summary(limit=20))
    for leak in leaks:
        print(f"secret leak: {leak}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    sys.exit(0 if outcome.findings.ok and not leaks else 1)


if __name__ == "__main__":
    main()
