"""The `lpm` command line. Each verb loads the config, then hands over to a flow or a query.

Exit codes: 0 success; 1 the run finished but something was skipped or quarantined; 2 bad config
or usage (nothing was called).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from mapping.config import ConfigError, LpmConfig, load_config
from warehouse.db import open_warehouse
from warehouse.status import source_status

app = typer.Typer(
    help="lpm-sync: trackers in, portfolio roll-ups and priorities out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="LPM_CONFIG", help="Path to lpm.yaml."),
]
DEFAULT_CONFIG = Path("lpm.yaml")


def read_config(path: Path, *, require_secrets: bool = False) -> LpmConfig:
    """The validated config, or every problem on stderr and exit 2."""
    try:
        return load_config(path, require_secrets=require_secrets)
    except ConfigError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None


@app.command()
def check(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Validate a config (keys, values, secret references) without calling any tracker."""
    loaded = read_config(config, require_secrets=True)
    names = ", ".join(f"{s.name} ({s.kind})" for s in loaded.sources) or "no sources"
    typer.echo(f"{config}: valid; portfolio {loaded.portfolio.name!r}; sources: {names}")


@app.command()
def sync(
    config: ConfigOption = DEFAULT_CONFIG,
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Sync only this source.")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Fetch everything, not only what changed.")
    ] = False,
) -> None:
    """Pull each source into the warehouse (incremental unless --full) and print its counts."""
    from connectors.base import DiscoveryError
    from flows.sync import SyncFailed, sync_source
    from flows.throttle import site_gate

    loaded = read_config(config, require_secrets=True)
    names = [s.name for s in loaded.sources]
    if source is not None and source not in names:
        typer.echo(f"--source: no source named {source!r} (known: {', '.join(names)})", err=True)
        raise typer.Exit(2)
    engine = open_warehouse(loaded.warehouse_url())
    code = 0
    for name in [source] if source else names:
        try:
            gate = site_gate(name)
        except ValueError as exc:  # a misconfigured global concurrency limit on the server
            typer.echo(str(exc), err=True)
            code = 2
            continue
        try:
            result = sync_source(loaded, name, engine, full=full, gate=gate)
        except SyncFailed as failure:
            problems = getattr(failure.cause, "problems", None) or [str(failure)]
            for problem in problems:
                typer.echo(problem, err=True)
            code = max(code, 2 if isinstance(failure.cause, DiscoveryError) else 1)
            continue
        mode = f"{result.mode}, resumed" if result.resumed else result.mode
        if result.caught_up_by is not None:
            mode += ", then caught up"
        typer.echo(
            f"{name}: fetched {result.fetched}, new {result.inserted}, changed {result.updated}, "
            f"unchanged {result.unchanged}, deleted {result.deleted}, "
            f"quarantined {result.quarantined} ({mode})"
        )
        if result.quarantined:
            typer.echo(
                f"{name}: {result.quarantined} item(s) could not be mapped and were quarantined "
                "(table `quarantine`)",
                err=True,
            )
            code = max(code, 1)
    engine.dispose()
    raise typer.Exit(code)


@app.command()
def rollup(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Recompute roll-ups, WSJF ranks, health, guardrails, flow metrics and forecasts.

    Exit 1 when parent links form cycles (they are cut and listed in `hierarchy_issue`).
    """
    from datetime import UTC, datetime

    from warehouse.analytics import compute_analytics

    loaded = read_config(config)
    engine = open_warehouse(loaded.warehouse_url())
    summary = compute_analytics(engine, loaded.portfolio, now=datetime.now(UTC))
    engine.dispose()
    typer.echo(f"rolled up {summary.rolled_up} items ({summary.items} live items in the tree)")
    unranked = ", ".join(f"{reason} {count}" for reason, count in summary.unranked.items())
    typer.echo(
        f"WSJF: {summary.ranked} ranked; unranked: {unranked or 'none'}; done {summary.done}"
    )
    typer.echo("health: " + ", ".join(f"{k} {v}" for k, v in summary.health.items()))
    if summary.current_increment is None:
        typer.echo("guardrails: no configured PI contains today")
    else:
        breaches = ", ".join(
            f"{b.category} {b.share:.0%} vs {b.target:.0%}" for b in summary.breaches
        )
        typer.echo(f"guardrails {summary.current_increment}: {breaches or 'within targets'}")
    typer.echo(f"forecasts: {summary.forecasts} in-flight items dated")
    typer.echo(
        f"hierarchy: {summary.cycles} on cycles, {summary.orphans} orphans, "
        f"{summary.too_deep} beyond the depth limit"
    )
    if summary.cycles:
        typer.echo(
            f"{summary.cycles} item(s) sit on parent cycles; those links were cut "
            "(table `hierarchy_issue`)",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def writeback(
    config: ConfigOption = DEFAULT_CONFIG,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the plan to the trackers (else only print it).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite values a person changed since our write.")
    ] = False,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
) -> None:
    """Plan WSJF, rank, progress and health write-back; with --apply, write and audit it.

    Exit 1 when a change was skipped (a person's edit) or failed; every change is a row of the
    `writeback` table.
    """
    from flows.writeback import apply_writeback, plan_table, plan_writeback, result_lines

    loaded = read_config(config, require_secrets=apply)
    names = [s.name for s in loaded.sources]
    if source is not None and source not in names:
        typer.echo(f"--source: no source named {source!r} (known: {', '.join(names)})", err=True)
        raise typer.Exit(2)
    engine = open_warehouse(loaded.warehouse_url())
    plan = plan_writeback(loaded, engine, source=source, force=force)
    for line in plan_table(plan):
        typer.echo(line)
    code = 0
    if not apply:
        if plan.conflicts:
            typer.echo(
                f"{len(plan.conflicts)} change(s) would be skipped: the field was changed by a "
                "person (see the reasons; --force overwrites)",
                err=True,
            )
            code = 1
        typer.echo("nothing was written (use --apply)")
    else:
        result = apply_writeback(loaded, engine, plan, force=force)
        lines, problems = result_lines(result)
        for line in lines:
            typer.echo(line)
        for problem in problems:
            typer.echo(problem, err=True)
        code = 0 if result.clean else 1
    engine.dispose()
    raise typer.Exit(code)


@app.command()
def status(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Per source: the last runs, the watermark and the warehouse's items by level."""
    loaded = read_config(config)
    engine = open_warehouse(loaded.warehouse_url())
    statuses = source_status(engine)
    if not statuses:
        typer.echo("no source has been synced yet (run `lpm sync`)")
    for entry in statuses:
        watermark = entry.watermark.isoformat() if entry.watermark else "none"
        typer.echo(f"{entry.name} ({entry.kind}) {entry.url}")
        typer.echo(f"  watermark: {watermark}")
        levels = ", ".join(
            f"{level} {count}" for level, count in sorted(entry.items_by_level.items())
        )
        typer.echo(f"  items: {levels or 'none'}; deleted {entry.deleted_items}")
        typer.echo(f"  objectives: {entry.objectives}")
        for run in entry.runs:
            finished = run.finished_at.isoformat(timespec="seconds") if run.finished_at else "-"
            typer.echo(
                f"  run {run.started_at.isoformat(timespec='seconds')} -> {finished} "
                f"{run.mode} {run.status}: fetched {run.fetched}, new {run.inserted}, "
                f"changed {run.updated}, unchanged {run.unchanged}, deleted {run.deleted}, "
                f"quarantined {run.quarantined}"
            )
    engine.dispose()


@app.command()
def report(
    config: ConfigOption = DEFAULT_CONFIG,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for portfolio.html and data/*.csv|json.")
    ] = Path("lpm-report"),
) -> None:
    """Write the self-contained portfolio.html (with charts) and CSV/JSON of its tables."""
    from flows.report import write_report

    loaded = read_config(config)
    engine = open_warehouse(loaded.warehouse_url())
    try:
        result = write_report(engine, loaded, out)
    finally:
        engine.dispose()
    typer.echo(str(result.html))


@app.command()
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    full: Annotated[bool, typer.Option("--full", help="Full syncs with delete reconcile.")] = False,
    apply: Annotated[
        bool | None,
        typer.Option(
            "--apply/--no-apply",
            help="Apply write-back for every source (default: each source's writeback.apply).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Report directory.")] = Path("lpm-report"),
) -> None:
    """The whole pipeline as one Prefect flow: sync, roll-up, write-back, report."""
    read_config(config, require_secrets=True)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    from flows.portfolio import portfolio_run

    summary = portfolio_run(str(config), full=full, apply=apply, report_dir=str(out))
    raise typer.Exit(_report_run(summary))


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo's config, warehouse and report go.")
    ] = Path("lpm-demo"),
    items: Annotated[int, typer.Option("--items", min=100, help="Jira sandbox size.")] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Portfolio generator seed.")] = 42,
) -> None:
    """Run everything against sandbox trackers on this machine: no network, no account."""
    prefect_home = (directory / ".prefect").resolve()
    prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.pop("PREFECT_API_URL", None)
    from flows.demo import demo_sandboxes
    from flows.portfolio import portfolio_run

    typer.echo(f"starting sandbox trackers ({items} Jira issues, Azure DevOps work items)")
    with demo_sandboxes(directory, items=items, seed=seed) as sandboxes:
        typer.echo(f"config: {sandboxes.config_path}")
        summary = portfolio_run(
            str(sandboxes.config_path),
            full=True,
            apply=True,
            report_dir=str(sandboxes.report_dir),
        )
    _report_run(summary)
    conflicts = summary["writeback"].get("skipped_conflict", 0)
    if conflicts:
        typer.echo(
            f"{conflicts} sandbox field(s) held a person's value, kept as conflicts "
            "(see `writeback` rows with status skipped_conflict)"
        )
    typer.echo(f"report: {summary['report']}")
    raise typer.Exit(1 if summary["writeback"].get("failed") else 0)


def _report_run(summary: dict[str, Any]) -> int:
    """Print a run's counts; the exit code: 1 when anything was quarantined or skipped."""
    code = 0
    for name, counts in summary["synced"].items():
        typer.echo(
            f"{name}: fetched {counts['fetched']}, new {counts['inserted']}, "
            f"changed {counts['updated']}, deleted {counts['deleted']}, "
            f"quarantined {counts['quarantined']}"
        )
        if counts["quarantined"]:
            code = 1
    analytics = summary["analytics"]
    typer.echo(
        f"roll-up: {analytics['rolled_up']} items, {analytics['ranked']} ranked, "
        f"health {analytics['health']}"
    )
    writeback = summary["writeback"]
    typer.echo("write-back: " + ", ".join(f"{key} {value}" for key, value in writeback.items()))
    if writeback.get("skipped_conflict") or writeback.get("failed"):
        code = 1
    return code


def _mount_sandbox() -> None:
    from sandbox.cli import app as sandbox_app

    app.add_typer(sandbox_app, name="sandbox", help="Run a fake Jira or Azure DevOps tracker.")


_mount_sandbox()


def main() -> None:
    app()
