"""Peak memory of a sandbox serving a large portfolio (issue 3: 1,000,000 items in <= 4 GB RSS).

Starts `python -m sandbox serve --items N` in its own process, then loads it the way a sync
would: every id through enhanced search (5,000 a page), a run of full-field pages (100 a page,
filling the render cache), a few hundred human edits through the control API and an
incremental query. Reads the server's resident set (VmRSS) and peak (VmHWM) from
/proc/<pid>/status after each phase.

    .venv/bin/python benchmarks/sandbox_memory.py --items 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in MiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


def pull(session: requests.Session, url: str, jql: str, fields: str, size: int, pages: int) -> int:
    token: str | None = None
    count = 0
    for _ in range(pages):
        params: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": size}
        if token:
            params["nextPageToken"] = token
        r = session.get(f"{url}/rest/api/3/search/jql", params=params, timeout=600)
        r.raise_for_status()
        page = r.json()
        count += len(page["issues"])
        token = page.get("nextPageToken")
        if not token:
            break
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--full-pages", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    cmd = [sys.executable, "-m", "sandbox", "serve", "--kind", "jira"]
    cmd += ["--items", str(args.items), "--seed", str(args.seed)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    env: dict[str, str] = {}
    results: dict[str, Any] = {"items": args.items}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("# source: "):
                env["SOURCE"] = line.removeprefix("# source: ")
                break
            key, _, value = line.strip().partition("=")
            env[key] = value
        ready = time.perf_counter() - started
        results["startup_s"] = round(ready, 1)
        results["after_start"] = memory(proc.pid)
        print(
            f"generated and serving {args.items:,} items in {ready:.1f} s: {results['after_start']}"
        )
        url = env["LPM_SANDBOX_URL"]
        session = requests.Session()
        session.auth = (env["JIRA_EMAIL"], env["JIRA_API_TOKEN"])
        jql = json.loads(env["SOURCE"])["scope"]
        t = time.perf_counter()
        ids = pull(session, url, jql, "id", 5000, 10**6)
        results["ids_pulled"] = ids
        results["after_id_pull"] = memory(proc.pid)
        print(f"pulled {ids:,} ids in {time.perf_counter() - t:.1f} s: {results['after_id_pull']}")
        t = time.perf_counter()
        full = pull(session, url, jql + " ORDER BY key", "*all", 100, args.full_pages)
        results["after_full_pages"] = memory(proc.pid)
        took = time.perf_counter() - t
        print(f"pulled {full:,} full issues in {took:.1f} s: {results['after_full_pages']}")
        base = url.rstrip("/")
        requests.post(f"{base}/_sandbox/mutate", json={"n": 500}, timeout=600).raise_for_status()
        since = time.strftime("%Y/%m/%d %H:%M", time.localtime(time.time() - 3600))
        changed = pull(session, url, f'{jql} AND updated >= "{since}"', "id", 5000, 10**6)
        results["after_mutations"] = memory(proc.pid)
        print(f"500 edits, incremental query found {changed:,}: {results['after_mutations']}")
        peak = max(v["VmHWM"] for k, v in results.items() if k.startswith("after_"))
        results["peak_rss_mib"] = peak
        print(f"peak RSS {peak:,} MiB ({peak / 1024:.2f} GiB)")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
