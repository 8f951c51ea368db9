"""The `lpm` command line. Each verb loads the config, then hands over to a flow or a query.

Exit codes: 0 success; 1 the run finished but something was skipped or quarantined; 2 bad config
or usage (nothing was called).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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


def main() -> None:
    app()
