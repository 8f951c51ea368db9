"""One pipeline run in its own process, for the chaos harness to kill (`tests.chaos.driver`).

`--prefect` runs the real `portfolio_run` flow (needs a Prefect API: PREFECT_API_URL). Without
it, the same plain functions `portfolio_run` calls run in the same order with the same arguments
(sync every source, a failed source not stopping the others; analytics; write-back plan and apply
as each source's `writeback.apply` says; report), so a cycle costs no flow-engine start. Each step
prints `phase <name>` first, so the harness can kill the process inside a chosen step.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path


def plain_run(config_path: str, report_dir: str | None) -> int:
    """What `portfolio_run` does, without Prefect; exit 1 when a source failed. Without a
    `report_dir` the report step is left out (it reads the warehouse only and is the slowest
    step, so the harness runs it in some cycles)."""
    from flows import redaction
    from flows.sync import SyncFailed, sync_source
    from flows.writeback import apply_writeback, plan_writeback
    from mapping.config import load_config
    from warehouse.analytics import compute_analytics
    from warehouse.db import open_warehouse

    redaction.install()
    config = load_config(config_path, require_secrets=True)
    engine = open_warehouse(config.warehouse_url())
    failed = 0
    for source in config.sources:
        phase(f"sync {source.name}")
        try:
            sync_source(config, source.name, engine)
        except SyncFailed as failure:
            logging.getLogger("chaos").warning("%s", redaction.redact(str(failure)))
            failed += 1
    phase("rollup")
    compute_analytics(engine, config.portfolio, now=datetime.now(UTC))
    phase("writeback")
    plan = plan_writeback(config, engine)
    apply_writeback(config, engine, plan, only_configured=True)
    if report_dir is not None:
        phase("report")
        from flows.report import write_report

        write_report(engine, config, Path(report_dir))
    engine.dispose()
    return 1 if failed else 0


def prefect_run(config_path: str, report_dir: str | None) -> int:
    from flows.portfolio import portfolio_run

    phase("portfolio_run")
    portfolio_run(config_path, full=False, apply=None, report_dir=report_dir or "lpm-report")
    return 0


def phase(name: str) -> None:
    print(f"phase {name}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--report", help="Report directory (no report step without it).")
    parser.add_argument("--prefect", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    run = prefect_run if args.prefect else plain_run
    code = run(args.config, args.report)
    phase("done")
    sys.exit(code)


if __name__ == "__main__":
    main()
