"""How fast a plain `requests` loop pulls a whole portfolio from the sandbox (issue 3).

Starts `python -m sandbox serve` in its own process (so server and client each get a core, as
a connector and a remote tracker would), then pages through every item with one keep-alive
session and no retries: Jira enhanced search with all fields (100 a page) and ids only (5,000
a page), and Azure DevOps WIQL + workitemsbatch (200 a batch). Each pull runs twice: cold (items
rendered for the first time) and warm (served from the per-item render cache), and with two
JSON parsers on the client, requests' own `r.json()` and `orjson.loads(r.content)`: the client
loop's parsing is most of the time at these rates, so both are shown.

    .venv/bin/python benchmarks/sandbox_throughput.py --items 100000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import process_cpu, sandbox  # noqa: E402


def timed(label: str, pull: Callable[[], int], server_pid: int) -> dict[str, float]:
    """Wall-clock rate, plus CPU seconds spent by the server and by this client loop.

    CPU time depends far less than the wall clock on what else the machine runs, so these
    stay comparable under other load: `serial_rate` (items per CPU second of server + client:
    the loop's rate if nothing overlapped), `overlap_rate` (items per CPU second of the busier
    side: the rate when the server's read-ahead renders the next page while the client parses
    this one, each on its own idle core) and `server_only_rate`.
    """
    server_before, client_before = process_cpu(server_pid), time.process_time()
    start = time.perf_counter()
    count = pull()
    seconds = time.perf_counter() - start
    server = process_cpu(server_pid) - server_before
    client = time.process_time() - client_before
    rate = count / seconds
    out = {
        "items": count,
        "seconds": round(seconds, 3),
        "items_per_s": round(rate),
        "server_cpu_s": round(server, 2),
        "client_cpu_s": round(client, 2),
        "serial_rate": round(count / max(server + client, 1e-9)),
        "overlap_rate": round(count / max(server, client, 1e-9)),
        "server_only_rate": round(count / max(server, 1e-9)),
    }
    print(
        f"{label:<40} {count:>8,} {seconds:>6.1f} s {rate:>8,.0f}/s"
        f" | cpu server {server:5.2f} s client {client:5.2f} s: serial {out['serial_rate']:,}/s,"
        f" overlapped {out['overlap_rate']:,}/s, server alone {out['server_only_rate']:,}/s",
        flush=True,
    )
    return out


PARSERS: dict[str, Callable[[requests.Response], Any]] = {
    "r.json()": lambda r: r.json(),
    "orjson": lambda r: orjson.loads(r.content),
}


def jira_pull(url: str, auth: tuple[str, str], jql: str, fields: str, size: int, parse: str) -> int:
    session = requests.Session()
    session.auth = auth
    token: str | None = None
    count = 0
    while True:
        params: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": size}
        if token:
            params["nextPageToken"] = token
        r = session.get(f"{url}/rest/api/3/search/jql", params=params, timeout=60)
        r.raise_for_status()
        page = PARSERS[parse](r)
        count += len(page["issues"])
        token = page.get("nextPageToken")
        if page.get("isLast") or not token:
            return count


def ado_pull(url: str, pat: str, project: str, parse: str) -> int:
    session = requests.Session()
    session.auth = ("", pat)
    base = f"{url}/{project}/_apis/wit"
    last = 0
    count = 0
    while True:
        query = (
            "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
            f"AND [System.Id] > {last} ORDER BY [System.Id]"
        )
        wiql_params: dict[str, Any] = {"api-version": "7.1", "$top": 19_999}
        r = session.post(f"{base}/wiql", params=wiql_params, json={"query": query})
        r.raise_for_status()
        ids = [w["id"] for w in PARSERS[parse](r)["workItems"]]
        if not ids:
            return count
        for k in range(0, len(ids), 200):
            batch = session.post(
                f"{base}/workitemsbatch",
                params={"api-version": "7.1"},
                json={"ids": ids[k : k + 200], "$expand": "relations"},
            )
            batch.raise_for_status()
            count += len(PARSERS[parse](batch)["value"])
        last = ids[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default="jira,azure_devops")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    load = os.getloadavg()[0]
    print(
        f"sandbox throughput, {args.items:,} items, {os.cpu_count()} cores, "
        f"load average {load:.1f} at start",
        flush=True,
    )
    for parse in PARSERS:
        if "jira" in args.kinds:
            with sandbox("jira", args.items, args.seed) as site:
                url, env = site["url"], site["env"]
                auth = (env["JIRA_EMAIL"], env["JIRA_API_TOKEN"])
                jql = site["source"]["scope"]
                for run in ("cold", "warm"):
                    results[f"jira_all_fields_{run}_{parse}"] = timed(
                        f"jira search/jql *all x100 {run}, {parse}",
                        partial(jira_pull, url, auth, jql, "*all", 100, parse),
                        site["pid"],
                    )
                results[f"jira_ids_only_{parse}"] = timed(
                    f"jira search/jql id x5000, {parse}",
                    partial(jira_pull, url, auth, jql, "id", 5000, parse),
                    site["pid"],
                )
        if "azure_devops" in args.kinds:
            with sandbox("azure_devops", args.items, args.seed) as site:
                url, pat = site["url"], site["env"]["ADO_PAT"]
                for run in ("cold", "warm"):
                    results[f"ado_batch_{run}_{parse}"] = timed(
                        f"ado wiql + batch x200 relations {run}, {parse}",
                        partial(ado_pull, url, pat, "Fabrikam", parse),
                        site["pid"],
                    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
