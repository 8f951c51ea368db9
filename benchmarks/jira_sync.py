"""Jira sync speed and memory against the sandbox (issues 4 and 11), all figures from one run.

Issue 4 (no added latency): a full sync of `--items` issues into SQLite and into PostgreSQL, beside
a plain `requests` loop downloading the same pages (the ceiling: the id pages and the 100-issue
`issue/bulkfetch` pages with the same field list, sequential, no parsing of issue pages), the
Singer `tap-jira` beside an lpm full sync on a second sandbox of the same portfolio that serves
https (the tap only speaks https; it runs unmodified, its sessions trusting the sandbox's
throwaway certificate), an incremental sync after 1% of the issues changed, and peak RSS of the
sync process at `--small` and at `--items` issues.

Issue 11 (`--latency 150`): a full sync beside the plain sequential loop over `search/jql` (100
issues a page, the same field list), at `--small` and `--items` issues, with the 429s counted.

The sandbox runs in its own process (`python -m sandbox serve`), each sync in a child process
whose peak RSS comes from `os.wait4`; times are `time.perf_counter` around the work (the child's
interpreter start and imports are not counted; they are shown separately). Each sandbox is warmed
with one untimed download first, so every timed pass reads from its render cache.

    .venv/bin/python benchmarks/jira_sync.py --items 100000 --small 10000 \
        --tap-jira /tmp/tapjira-venv/bin/tap-jira --json benchmarks/jira_sync.json
    .venv/bin/python benchmarks/jira_sync.py --latency 150 --items 100000 --small 10000

`tap-jira` lives in a throwaway virtualenv outside the repository:

    python3 -m venv /tmp/tapjira-venv && /tmp/tapjira-venv/bin/pip install tap-jira==2.6.0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    mutate,
    own_cpu,
    postgres_database,
    process_cpu,
    sandbox,
    sync_child,
)
from connectors.jira import BULK_ISSUES, ID_PAGE, resolve_fields, scope_jql  # noqa: E402
from mapping.config import JiraSource  # noqa: E402
from mapping.jira import JiraFacts  # noqa: E402


def session(site: dict[str, Any]) -> requests.Session:
    s = requests.Session()
    s.auth = (site["env"]["JIRA_EMAIL"], site["env"]["JIRA_API_TOKEN"])
    s.verify = site["env"].get("REQUESTS_CA_BUNDLE", True)
    return s


def fetch_fields(site: dict[str, Any]) -> tuple[str, list[str]]:
    """The scope JQL and the field list a sync requests (resolved the way the connector does)."""
    source = JiraSource.model_validate(site["source"])
    catalogue = session(site).get(f"{site['url']}/rest/api/3/field", timeout=60).json()
    fields, writeback, problems = resolve_fields(source.fields, source.writeback.fields, catalogue)
    assert not problems, problems
    facts = JiraFacts(deployment="cloud", time_zone="UTC", fields=fields, writeback=writeback)
    return scope_jql(source), facts.fetch_fields()


def raw_download(site: dict[str, Any]) -> int:
    """The ceiling: the same id pages and bulkfetch pages, one plain sequential loop."""
    jql, fields = fetch_fields(site)
    s = session(site)
    url = site["url"]
    body: dict[str, Any] = {"jql": jql + " ORDER BY created ASC, key ASC"}
    body.update(maxResults=ID_PAGE, fields=["id"])
    count = 0
    while True:
        page = s.post(f"{url}/rest/api/3/search/jql", json=body, timeout=60)
        page.raise_for_status()
        data = page.json()
        ids = [issue["id"] for issue in data["issues"]]
        for start in range(0, len(ids), BULK_ISSUES):
            chunk = ids[start : start + BULK_ISSUES]
            r = s.post(
                f"{url}/rest/api/3/issue/bulkfetch",
                json={"issueIdsOrKeys": chunk, "fields": fields},
                timeout=60,
            )
            r.raise_for_status()
            count += len(chunk)
        if data.get("isLast") or not data.get("nextPageToken"):
            return count
        body["nextPageToken"] = data["nextPageToken"]


def sequential_search(site: dict[str, Any]) -> int:
    """Issue 11's baseline: search/jql with the sync's fields, 100 a page, token by token."""
    jql, fields = fetch_fields(site)
    s = session(site)
    body: dict[str, Any] = {"jql": jql, "maxResults": 100, "fields": fields}
    count = 0
    while True:
        r = s.post(f"{site['url']}/rest/api/3/search/jql", json=body, timeout=60)
        r.raise_for_status()
        data = r.json()
        count += len(data["issues"])
        if data.get("isLast") or not data.get("nextPageToken"):
            return count
        body["nextPageToken"] = data["nextPageToken"]


def timed(label: str, work: Any, site: dict[str, Any] | None = None) -> dict[str, Any]:
    """Wall time of `work()`, with the CPU this process and (given `site`) the sandbox used:
    on a loaded machine CPU seconds compare better than wall times."""
    cpu, served = own_cpu(), process_cpu(site["pid"]) if site else 0.0
    start = time.perf_counter()
    count = work()
    seconds = time.perf_counter() - start
    cpu = own_cpu() - cpu
    served = process_cpu(site["pid"]) - served if site else 0.0
    print(
        f"  {label:<52} {count:>8,} items {seconds:>8.2f} s "
        f"(CPU: client {cpu:.1f} s, sandbox {served:.1f} s)",
        flush=True,
    )
    return {
        "items": count,
        "seconds": round(seconds, 3),
        "client_cpu_seconds": round(cpu, 2),
        "sandbox_cpu_seconds": round(served, 2),
    }


TAP_LAUNCHER = """
import os, sys
import requests
_init = requests.Session.__init__
def _trusting(self):
    _init(self)
    self.verify = os.environ["REQUESTS_CA_BUNDLE"]
requests.Session.__init__ = _trusting
from tap_jira import main
sys.exit(main())
"""
"""Runs tap-jira as it is, its sessions trusting the sandbox's certificate: it builds requests
with `Session.send`, which ignores REQUESTS_CA_BUNDLE."""


def tap_jira(site: dict[str, Any], executable: str, workdir: Path) -> dict[str, Any]:
    """The Singer tap against a TLS sandbox (it rewrites every base URL to https://), issues
    stream only, its RECORD lines counted; run by its own virtualenv's Python."""
    python = str(Path(executable).with_name("python"))
    launcher = workdir / "tap_launcher.py"
    launcher.write_text(TAP_LAUNCHER)
    config = {
        "base_url": site["url"],
        "username": site["env"]["JIRA_EMAIL"],
        "password": site["env"]["JIRA_API_TOKEN"],
        "start_date": "2000-01-01T00:00:00Z",
        "user_agent": "lpm-sync-benchmark",
    }
    config_path = workdir / "tap-config.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "REQUESTS_CA_BUNDLE": site["env"]["REQUESTS_CA_BUNDLE"]}
    tap = [python, str(launcher), "--config", str(config_path)]
    discovered = subprocess.run(
        [*tap, "--discover"], capture_output=True, text=True, timeout=600, env=env
    )
    if discovered.returncode != 0:
        return {"error": f"discovery failed: {discovered.stderr.strip()[-2000:]}"}
    catalog = json.loads(discovered.stdout)
    for stream in catalog["streams"]:
        selected = stream["tap_stream_id"] == "issues"
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = selected
    catalog_path = workdir / "tap-catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    log = workdir / "tap-stderr.log"  # a log line per request: a pipe would fill and block it
    served, start = process_cpu(site["pid"]), time.perf_counter()
    with (
        log.open("wb") as stderr,
        subprocess.Popen(
            [*tap, "--properties", str(catalog_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
        ) as run,
    ):
        assert run.stdout is not None
        records = sum(1 for line in run.stdout if line.startswith(b'{"type": "RECORD"'))
        _, status, usage = os.wait4(run.pid, 0)
        run.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    errors = log.read_text(errors="replace")
    served = process_cpu(site["pid"]) - served
    out: dict[str, Any] = {
        "items": records,
        "seconds": round(seconds, 3),
        "rc": run.returncode,
        "client_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "sandbox_cpu_seconds": round(served, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    if run.returncode != 0 or records == 0:
        out["error"] = errors.strip()[-3000:]
    print(
        f"  {'tap-jira 2.6.0, issues stream (https)':<52} {records:>8,} items {seconds:>8.2f} s "
        f"(CPU: client {out['client_cpu_seconds']} s, sandbox {out['sandbox_cpu_seconds']} s, "
        f"peak RSS {out['peak_rss_mb']} MB)",
        flush=True,
    )
    return out


def _cpu(result: dict[str, Any]) -> float:
    return float(result["client_cpu_seconds"]) + float(result["sandbox_cpu_seconds"] or 0)


def issue4(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    print(f"issue 4: {args.items:,} issues, no added latency, {os.cpu_count()} cores", flush=True)
    with sandbox("jira", args.items, args.seed) as site:
        raw_download(site)  # warm the sandbox's render cache
        results["raw_download"] = timed(
            "plain requests loop, same pages (ceiling)", lambda: raw_download(site), site
        )
        results["sqlite_full"] = sync_child(
            site,
            site["source"],
            f"sqlite:///{workdir / 'big.db'}",
            full=True,
            label="lpm full sync -> SQLite",
        )
        with postgres_database() as url:
            results["postgres_full"] = sync_child(
                site, site["source"], url, full=True, label="lpm full sync -> PostgreSQL"
            )
        mutate(site["url"], max(1, args.items // 100))
        results["sqlite_incremental_1pct"] = sync_child(
            site,
            site["source"],
            f"sqlite:///{workdir / 'big.db'}",
            full=False,
            label="lpm incremental, 1% changed",
        )
        # The sandbox's portfolio was generated moments before, so a tenth of its issues were
        # updated in the 10 minutes the default overlap re-reads; a second round with a 1-minute
        # overlap shows the cost of the changes alone.
        mutate(site["url"], max(1, args.items // 100))
        results["sqlite_incremental_1pct_overlap_1min"] = sync_child(
            site,
            {**site["source"], "sync": {"overlap_minutes": 1}},
            f"sqlite:///{workdir / 'big.db'}",
            full=False,
            label="lpm incremental, 1% changed, 1-min overlap",
        )
    if args.tap_jira:
        # tap-jira speaks only https: both read the same TLS sandbox, each cold for its pages.
        with sandbox("jira", args.items, args.seed, tls=True) as site:
            results["tap_jira"] = tap_jira(site, args.tap_jira, workdir)
            results["sqlite_full_https"] = sync_child(
                site,
                site["source"],
                f"sqlite:///{workdir / 'https.db'}",
                full=True,
                label="lpm full sync -> SQLite (https)",
            )
    with sandbox("jira", args.small, args.seed) as site:
        raw_download(site)
        results["sqlite_full_small"] = sync_child(
            site,
            site["source"],
            f"sqlite:///{workdir / 'small.db'}",
            full=True,
            label=f"lpm full sync {args.small:,} -> SQLite",
        )
    full = results["sqlite_full"]["seconds"]
    ratios = {
        "sqlite_full_vs_raw": full / results["raw_download"]["seconds"],
        "postgres_full_vs_raw": results["postgres_full"]["seconds"]
        / results["raw_download"]["seconds"],
        "incremental_vs_full": results["sqlite_incremental_1pct"]["seconds"] / full,
        "incremental_overlap_1min_vs_full": (
            results["sqlite_incremental_1pct_overlap_1min"]["seconds"] / full
        ),
        "rss_big_vs_small": results["sqlite_full"]["peak_rss_mb"]
        / results["sqlite_full_small"]["peak_rss_mb"],
        # CPU seconds (client + sandbox) hold up better than wall times on a loaded machine.
        "sqlite_full_vs_raw_cpu": _cpu(results["sqlite_full"]) / _cpu(results["raw_download"]),
        "postgres_full_vs_raw_cpu": _cpu(results["postgres_full"]) / _cpu(results["raw_download"]),
        "incremental_vs_full_cpu": _cpu(results["sqlite_incremental_1pct"])
        / _cpu(results["sqlite_full"]),
    }
    tap = results.get("tap_jira", {})
    if tap.get("items"):
        # Both whole processes (interpreter start and imports in either), then the sync alone.
        https = results["sqlite_full_https"]
        ratios["tap_jira_vs_lpm_https_process"] = tap["seconds"] / https["process_seconds"]
        ratios["tap_jira_vs_lpm_https"] = tap["seconds"] / https["seconds"]
    results["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    print("  ratios:", json.dumps(results["ratios"]), flush=True)
    return results


def warm(site: dict[str, Any], workers: int = 8) -> None:
    """Fill the sandbox's render cache: the id pages, then every bulkfetch page, `workers` at a
    time (at site latency one after another would take as long as the baseline itself)."""
    jql, fields = fetch_fields(site)
    s = session(site)
    body: dict[str, Any] = {"jql": jql, "maxResults": ID_PAGE, "fields": ["id"]}
    ids: list[str] = []
    while True:
        data = s.post(f"{site['url']}/rest/api/3/search/jql", json=body, timeout=60).json()
        ids += [issue["id"] for issue in data["issues"]]
        if data.get("isLast") or not data.get("nextPageToken"):
            break
        body["nextPageToken"] = data["nextPageToken"]

    def fetch(chunk: list[str]) -> None:
        body = {"issueIdsOrKeys": chunk, "fields": fields}
        s.post(
            f"{site['url']}/rest/api/3/issue/bulkfetch", json=body, timeout=60
        ).raise_for_status()

    chunks = [ids[i : i + BULK_ISSUES] for i in range(0, len(ids), BULK_ISSUES)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fetch, chunks))


def issue11(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """`--small 0` or `--items 0` leaves that size out (the same size twice runs once)."""
    results: dict[str, Any] = {}
    for items in [n for n in dict.fromkeys((args.small, args.items)) if n]:
        print(f"issue 11: {items:,} issues at --latency {args.latency:g} ms", flush=True)
        with sandbox("jira", items, args.seed, latency=args.latency) as site:
            warm(site)
            baseline = timed(
                "sequential search/jql loop, 100 a page", lambda: sequential_search(site)
            )
            sync = sync_child(
                site,
                site["source"],
                f"sqlite:///{workdir / f'lat{items}.db'}",
                full=True,
                label="lpm full sync -> SQLite",
            )
            results[str(items)] = {
                "sequential": baseline,
                "sync": sync,
                "ratio": round(sync["seconds"] / baseline["seconds"], 3),
                "throttled_429": sync["http"].get("throttled", 0),
            }
            print(f"  ratio {results[str(items)]['ratio']}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--tap-jira", help="path of the tap-jira executable (throwaway venv)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lpm-bench-") as tmp:
        workdir = Path(tmp)
        results = issue11(args, workdir) if args.latency else issue4(args, workdir)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
