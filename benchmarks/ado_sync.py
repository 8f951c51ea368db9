"""Azure DevOps sync speed and memory against the sandbox (issue 5), all figures from one run.

A full sync of `--items` work items into SQLite (and PostgreSQL with `--postgres`), beside a
plain `requests` loop making the same calls: the WIQL id listing (windows halved on VS402337
from the oldest change in scope, exactly as the connector does) and, per 200 ids,
`workitemsbatch` with the sync's field list plus `workitemsbatch` with `$expand=relations`,
sequential, responses decoded and dropped. The sync runs with `history: false`, so it makes the
same calls (its reconcile reuses the full fetch's listing) plus discovery.

History costs one `workItems/{id}/updates` call per changed item; `--history-items N` measures
that separately on an N-item sandbox: a sync with `history: true` beside the same plain loop
also fetching the updates of every item past revision 1. Then 1% of the big sandbox changes and
an incremental sync (with history) runs.

The sandbox runs in its own process (`python -m sandbox serve`), each sync in a child process
whose peak RSS and CPU time come from `os.wait4`; times are `time.perf_counter` around the work
(the child's interpreter start and imports are not counted). Beside each wall time, the CPU
seconds of the client (the loop's own `resource.getrusage`, or the sync child's) and of the
sandbox process (`/proc/PID/stat`) show where the time went: on a machine with no idle core
the two processes share the CPU, and the wall time is about their sum. One untimed plain
download runs first.

    .venv/bin/python benchmarks/ado_sync.py --items 100000 --history-items 2000 --postgres \\
        --json /tmp/ado_sync.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
from connectors.azure_devops import (  # noqa: E402
    BATCH_LIMIT,
    UPDATES_PAGE,
    WIQL_LIMIT_CODE,
    AzureDevOpsConnector,
)
from connectors.http import TimeWindow  # noqa: E402
from mapping.azure_devops import batch_fields  # noqa: E402
from mapping.config import AzureDevOpsSource  # noqa: E402

API_VERSION = {"api-version": "7.1"}


@contextmanager
def ado_sandbox(items: int, seed: int) -> Iterator[dict[str, Any]]:
    """The Azure DevOps sandbox, its source syncing in batches of the API's limit."""
    with sandbox("azure_devops", items, seed, name="ado") as site:
        site["source"]["sync"] = {"page_size": BATCH_LIMIT}
        yield site


def _history(site: dict[str, Any], history: bool) -> dict[str, Any]:
    """The sandbox's source entry with history on or off."""
    return {**site["source"], "history": history}


def _source(site: dict[str, Any], history: bool) -> AzureDevOpsSource:
    return AzureDevOpsSource.model_validate(_history(site, history))


def raw_download(site: dict[str, Any], *, history: bool) -> dict[str, int]:
    """The same calls as a sync, in one plain sequential loop; returns items and calls made."""
    source = _source(site, history)
    s = requests.Session()
    s.auth = ("", site["env"]["ADO_PAT"])
    api = f"{site['url']}/{source.project}/_apis/wit"
    # The connector only builds the query text here; every request is this loop's own.
    query = AzureDevOpsConnector.__new__(AzureDevOpsConnector)
    query.source = source
    fields = batch_fields(source)
    calls = 0
    ids: list[int] = []
    anchor: datetime | None = None
    todo = [TimeWindow(None, None)]
    while todo:
        window = todo.pop()
        calls += 1
        wiql = {**API_VERSION, "timePrecision": "true"}
        r = s.post(f"{api}/wiql", params=wiql, json={"query": query.wiql(window)}, timeout=120)
        if r.status_code == 400 and WIQL_LIMIT_CODE in r.text:
            if anchor is None:  # the oldest change in scope, as the connector asks for it
                oldest = s.post(
                    f"{api}/wiql",
                    params={**wiql, "$top": "1"},
                    json={"query": query.wiql(TimeWindow(None, None))},
                    timeout=120,
                ).json()["workItems"][0]["id"]
                item = s.post(
                    f"{api}/workitemsbatch",
                    params=API_VERSION,
                    json={"ids": [oldest], "fields": ["System.ChangedDate"]},
                    timeout=120,
                ).json()["value"][0]
                anchor = datetime.fromisoformat(item["fields"]["System.ChangedDate"])
                calls += 2
            first, second = window.halves(datetime.now(UTC), anchor)
            todo += [second, first]
            continue
        r.raise_for_status()
        ids += [ref["id"] for ref in r.json()["workItems"]]
    for start in range(0, len(ids), BATCH_LIMIT):
        chunk = ids[start : start + BATCH_LIMIT]
        items = s.post(
            f"{api}/workitemsbatch",
            params=API_VERSION,
            json={"ids": chunk, "fields": fields, "errorPolicy": "omit"},
            timeout=120,
        )
        items.raise_for_status()
        relations = s.post(
            f"{api}/workitemsbatch",
            params=API_VERSION,
            json={"ids": chunk, "$expand": "relations", "errorPolicy": "omit"},
            timeout=120,
        )
        relations.raise_for_status()
        relations.json()
        calls += 2
        if not history:
            continue
        for item in items.json()["value"]:
            if item is None or item["rev"] <= 1:
                continue
            skip = 0
            while True:
                calls += 1
                params = {"$top": str(UPDATES_PAGE), "$skip": str(skip), **API_VERSION}
                page = s.get(f"{api}/workItems/{item['id']}/updates", params=params, timeout=120)
                page.raise_for_status()
                got = len(page.json()["value"])
                if got < UPDATES_PAGE:
                    break
                skip += got
    return {"items": len(ids), "calls": calls}


def timed(site: dict[str, Any], label: str, work: Any) -> dict[str, Any]:
    cpu, served, start = own_cpu(), process_cpu(site["pid"]), time.perf_counter()
    out = work()
    seconds = time.perf_counter() - start
    cpu, served = own_cpu() - cpu, process_cpu(site["pid"]) - served
    print(
        f"  {label:<50} {out['items']:>7,} items {seconds:>7.2f} s ({out['calls']:,} calls; "
        f"CPU: client {cpu:.1f} s, sandbox {served:.1f} s)",
        flush=True,
    )
    return {
        **out,
        "seconds": round(seconds, 3),
        "client_cpu_seconds": round(cpu, 2),
        "sandbox_cpu_seconds": round(served, 2),
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    print(f"issue 5: {args.items:,} work items, {os.cpu_count()} cores", flush=True)
    with ado_sandbox(args.items, args.seed) as site:
        raw_download(site, history=False)  # untimed first pass
        raw = timed(
            site,
            "plain requests loop: WIQL + 2 batch passes",
            lambda: raw_download(site, history=False),
        )
        results["raw"] = raw
        big = f"sqlite:///{workdir / 'big.db'}"
        results["sqlite_full"] = sync_child(
            site,
            _history(site, False),
            big,
            full=True,
            label="lpm full sync -> SQLite (history off)",
        )
        if args.postgres:
            with postgres_database() as url:
                results["postgres_full"] = sync_child(
                    site, _history(site, False), url, full=True, label="lpm full sync -> PostgreSQL"
                )
        mutate(urlsplit(site["url"])._replace(path="").geturl(), max(1, args.items // 100))
        results["sqlite_incremental_1pct"] = sync_child(
            site,
            _history(site, True),
            big,
            full=False,
            label="lpm incremental, 1% changed (history on)",
        )
    if args.history_items:
        print(f"history: {args.history_items:,} work items", flush=True)
        with ado_sandbox(args.history_items, args.seed) as site:
            raw_download(site, history=True)
            results["raw_history"] = timed(
                site,
                "plain loop: WIQL + 2 batch passes + updates",
                lambda: raw_download(site, history=True),
            )
            results["sqlite_full_history"] = sync_child(
                site,
                _history(site, True),
                f"sqlite:///{workdir / 'history.db'}",
                full=True,
                label="lpm full sync -> SQLite (history on)",
            )
    full = results["sqlite_full"]["seconds"]
    ratios = {"sqlite_full_vs_raw": full / raw["seconds"]}
    if "postgres_full" in results:
        ratios["postgres_full_vs_raw"] = results["postgres_full"]["seconds"] / raw["seconds"]
    ratios["incremental_vs_full"] = results["sqlite_incremental_1pct"]["seconds"] / full
    if "raw_history" in results:
        ratios["history_full_vs_raw_history"] = (
            results["sqlite_full_history"]["seconds"] / results["raw_history"]["seconds"]
        )
    results["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    print("  ratios:", json.dumps(results["ratios"]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--history-items", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="also sync into PostgreSQL")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lpm-bench-ado-") as tmp:
        results = run(args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
