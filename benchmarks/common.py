"""What the benchmark scripts share: a sandbox in its own process, CPU clocks, a throwaway
PostgreSQL database, and one `sync_source` run in a child process (for its peak RSS).

`python -m benchmarks.common --child CONFIG_JSON --full|--inc` is that child.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("LPM_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def sandbox(
    kind: str,
    items: int,
    seed: int,
    *,
    latency: float = 0.0,
    name: str | None = None,
    tls: bool = False,
) -> Iterator[dict[str, Any]]:
    """`python -m sandbox serve` in its own process (server and client each get a core, as a
    connector and a remote tracker would); yields its URL, printed env, source entry and pid.
    With `tls` it serves https, and its env trusts the certificate (REQUESTS_CA_BUNDLE), so a
    sync child started with it does too."""
    cmd = [sys.executable, "-m", "sandbox", "serve", "--kind", kind, "--items", str(items)]
    cmd += ["--seed", str(seed), "--latency", str(latency)]
    if name is not None:
        cmd += ["--name", name]
    if tls:
        cmd.append("--tls")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    env: dict[str, str] = {}
    source: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("# source: "):
                source = json.loads(line.removeprefix("# source: "))
                break
            key, _, value = line.strip().partition("=")
            env[key] = value
        if tls:
            env["REQUESTS_CA_BUNDLE"] = env["LPM_SANDBOX_CA_BUNDLE"]
        yield {"url": env["LPM_SANDBOX_URL"], "env": env, "source": source, "pid": proc.pid}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def process_cpu(pid: int) -> float:
    """CPU seconds a process has used so far (user + system, from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def mutate(url: str, n: int) -> None:
    """Let the sandbox's mutator make `n` human edits, moves and deletes."""
    r = requests.post(f"{url}/_sandbox/mutate", json={"n": n}, timeout=600)
    r.raise_for_status()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database created for one benchmark and dropped after it."""
    name = f"lpm_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sync_child(
    site: dict[str, Any], source: dict[str, Any], url: str, *, full: bool, label: str
) -> dict[str, Any]:
    """One `sync_source` of `source` into `url` in a child process: the sync's own counts and
    seconds, plus the child's wall time, peak RSS and CPU, and the sandbox's CPU meanwhile."""
    config = {"portfolio": {"name": "bench"}, "sources": [source], "warehouse": {"url": url}}
    env = {**os.environ, **site["env"], "PYTHONPATH": str(ROOT)}
    served = process_cpu(site["pid"])
    started = time.perf_counter()
    mode = "--full" if full else "--inc"
    cmd = [sys.executable, "-m", "benchmarks.common", "--child", json.dumps(config), mode]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    served = process_cpu(site["pid"]) - served
    if status != 0:
        raise RuntimeError(f"{label}: child sync failed ({status})")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result.update(
        process_seconds=round(wall, 3),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        client_cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
        sandbox_cpu_seconds=round(served, 2),
    )
    print(
        f"  {label:<52} {result['fetched']:>8,} items {result['seconds']:>8.2f} s "
        f"(process {wall:.2f} s, {result['http']['requests']:,.0f} calls, peak RSS "
        f"{result['peak_rss_mb']} MB, CPU: client {result['client_cpu_seconds']} s, sandbox "
        f"{result['sandbox_cpu_seconds']} s, 429s {result['http'].get('throttled', 0):.0f})",
        flush=True,
    )
    return result


def _child(config_json: str, full: bool) -> None:
    """Inside the child: sync, then print one JSON line."""
    from flows.sync import sync_source
    from mapping.config import LpmConfig
    from warehouse.db import open_warehouse

    config = LpmConfig.model_validate(json.loads(config_json))
    engine = open_warehouse(config.warehouse_url())
    start = time.perf_counter()
    result = sync_source(config, config.sources[0].name, engine, full=full)
    seconds = time.perf_counter() - start
    out = {k: v for k, v in vars(result).items() if k != "source"}
    out["seconds"] = round(seconds, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one benchmark sync (a child process)")
    parser.add_argument("--child", required=True)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--inc", dest="full", action="store_false")
    args = parser.parse_args()
    _child(args.child, args.full)
