"""`lpm sandbox serve`: run a fake tracker until Ctrl-C / SIGTERM.

Prints the URL and credentials as `NAME=value` lines (ready for `set -a; source`), then the
lpm.yaml source entry as a JSON comment line, then serves.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from sandbox.server import Sandbox
from sandbox.tls import self_signed, server_context

app = typer.Typer(
    help="Fake Jira / Azure DevOps servers serving a generated SAFe portfolio, for demos, "
    "integration tests and benchmarks.",
    no_args_is_help=True,
)


class KindOption(StrEnum):
    jira = "jira"
    azure_devops = "azure_devops"


class DeploymentOption(StrEnum):
    cloud = "cloud"
    datacenter = "datacenter"


@app.callback()
def main() -> None:
    """Fake trackers for lpm-sync."""


@app.command()
def serve(
    kind: Annotated[KindOption, typer.Option(help="Tracker to fake.")] = KindOption.jira,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    items: Annotated[int, typer.Option(help="Portfolio size, 100..1,000,000.")] = 1000,
    seed: Annotated[int, typer.Option(help="Generator seed: same seed, same portfolio.")] = 0,
    fault_rate: Annotated[float, typer.Option(help="Share of calls failing 500/503.")] = 0.0,
    rate_limit: Annotated[
        float | None, typer.Option(help="Requests per second before 429s.")
    ] = None,
    latency: Annotated[float, typer.Option(help="Milliseconds added to every call.")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="Share of calls cut off mid-body.")] = 0.0,
    deployment: Annotated[
        DeploymentOption, typer.Option(help="Jira Cloud or Data Center.")
    ] = DeploymentOption.cloud,
    mutate_every: Annotated[
        float | None, typer.Option(help="Seconds between simulated human edits.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Source name for the config and env var names.")
    ] = None,
    tls: Annotated[
        bool,
        typer.Option(
            help="Serve https with a throwaway self-signed certificate; its file is printed as"
            " LPM_SANDBOX_CA_BUNDLE (trust it with REQUESTS_CA_BUNDLE)."
        ),
    ] = False,
) -> None:
    """Serve a fake tracker until interrupted."""
    if not 100 <= items <= 1_000_000:
        typer.echo("--items must be between 100 and 1,000,000", err=True)
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="lpm-sandbox-tls-") as directory:
        cert, key = self_signed(Path(directory)) if tls else (None, None)
        sandbox = Sandbox(
            kind.value,
            items=items,
            seed=seed,
            port=port,
            fault_rate=fault_rate,
            rate_limit=rate_limit,
            latency_ms=latency,
            drop_rate=drop_rate,
            deployment=deployment.value,
            tls=server_context(cert, key) if cert and key else None,
        )
        _run(sandbox, name, mutate_every, cert)


def _run(sandbox: Sandbox, name: str | None, mutate_every: float | None, cert: Path | None) -> None:
    """Print the env lines and the source entry, then serve until SIGTERM or Ctrl-C."""
    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with sandbox:
        source = sandbox.source_config(name)
        lines = [f"LPM_SANDBOX_URL={sandbox.url}", f"LPM_SANDBOX_KIND={sandbox.kind}"]
        lines += [f"{k}={v}" for k, v in sandbox.env(source["name"]).items()]
        if cert is not None:
            lines.append(f"LPM_SANDBOX_CA_BUNDLE={cert}")
        lines.append("# source: " + orjson.dumps(source).decode())
        typer.echo("\n".join(lines))
        sys.stdout.flush()
        if mutate_every:
            sandbox.mutator.start(mutate_every)
        while not stop.wait(0.5):
            pass
