"""Write-back speed against the Jira sandbox (issue 7), all figures from one run.

  raw PUTs      `--changes` issue edits, one plain `requests` PUT after the other (the ceiling
                of a script that knows exactly what to send and checks nothing)
  field apply   `apply_writeback` of a plan holding `--changes` progress changes (one field on
                each of as many issues): discovery, a bulk read before each batch of 100 edits,
                the edits (the default `sync.concurrency` in flight), the changelog read after
                each batch (Jira has no conditional edit: that check is what finds an edit
                that replaced a person's value), the ledger rows. Items setting the same
                progress share one Jira Cloud bulk edit (`writeback.bulk_edit`, on by
                default); then the same number of changes again with `bulk_edit: false` (an
                edit each), and with `sync.concurrency: 1` (one request at a time).
                Raw and the three applies run in turn `--rounds` times (each round moves
                every desired progress by 30 points); figures are medians, since the machine
                is shared and a busy moment slows one pass, not all. CPU seconds of this
                process and of the sandbox's are taken around the raw and concurrent passes:
                what each costs whatever the load (on a starved machine, their sum is the time)
  re-run        a plan + apply right after, then again after an incremental sync: write calls
  naive re-rank every issue of a `--rank-items` scope ranked after the one before it, one
                rank call each (what a script without minimal moves does)
  re-rank       `apply_writeback` of a random WSJF order of the same issues: n - LIS moves in
                runs of <= 50, the read before and after, the ledger rows

The field plan is cut to exactly `--changes` items by clearing `rollup.progress` of the others;
the rank scope is made by giving `--rank-items` features a random WSJF rank and no other item a
rank (the sandbox's features carry no ART, so the analytics leaves them unranked). The sandbox
runs in its own process (`python -m sandbox serve`); API calls are counted by the sandbox
(`/_sandbox/stats`) and by the HTTP client; times are `time.perf_counter` around each step.

    .venv/bin/python -m benchmarks.writeback --items 15000 --changes 1000 --rank-items 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import requests
from sqlalchemy import Engine, case, select, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import own_cpu, process_cpu, sandbox  # noqa: E402
from flows.sync import sync_source  # noqa: E402
from flows.writeback import apply_writeback, plan_writeback  # noqa: E402
from mapping.config import LpmConfig  # noqa: E402
from mapping.rank import longest_increasing_run  # noqa: E402
from warehouse import models  # noqa: E402
from warehouse.analytics import compute_analytics  # noqa: E402
from warehouse.db import open_warehouse  # noqa: E402
from warehouse.models import table_of  # noqa: E402


def session(site: dict[str, Any]) -> requests.Session:
    s = requests.Session()
    s.auth = (site["env"]["JIRA_EMAIL"], site["env"]["JIRA_API_TOKEN"])
    return s


def sandbox_requests(site: dict[str, Any]) -> int:
    stats = requests.get(f"{site['server']}/_sandbox/stats", timeout=60).json()
    return int(stats["requests"])


def config(
    site: dict[str, Any], database: Path, writeback: dict[str, Any], concurrency: int | None = None
) -> LpmConfig:
    """The sandbox's source writing back `writeback`; `concurrency` None: the product default."""
    source = dict(site["source"], writeback=writeback)
    if concurrency is not None:
        source["sync"] = {"concurrency": concurrency}
    return LpmConfig.model_validate(
        {
            "warehouse": {"url": f"sqlite:///{database}"},
            "portfolio": {"name": "Benchmark"},
            "sources": [source],
        }
    )


def only_progress_of(engine: Engine, work_item_ids: list[int]) -> None:
    """Progress stays on these roll-ups only: the plan then holds exactly their changes."""
    rollup = table_of(models.Rollup)
    with engine.begin() as conn:
        conn.execute(
            update(rollup).where(rollup.c.work_item_id.not_in(work_item_ids)).values(progress=None)
        )


def shift_progress(engine: Engine) -> None:
    """Move every desired progress by 30 points, so the next plan holds the same edits again."""
    rollup = table_of(models.Rollup)
    shifted = case(
        (rollup.c.progress < 0.5, rollup.c.progress + 0.3), else_=rollup.c.progress - 0.3
    )
    with engine.begin() as conn:
        conn.execute(update(rollup).values(progress=shifted))


def raw_puts(site: dict[str, Any], issue_ids: list[str], field_id: str, offset: int) -> float:
    """One plain PUT per issue, sequential, on a field the plan does not touch."""
    s = session(site)
    started = time.perf_counter()
    for n, issue_id in enumerate(issue_ids):
        r = s.put(
            f"{site['url']}/rest/api/3/issue/{issue_id}",
            params={"notifyUsers": "false"},
            json={"fields": {field_id: float(n % 40) / 2 + offset}},
            timeout=60,
        )
        r.raise_for_status()
    return time.perf_counter() - started


def spent(before: tuple[float, float], site: dict[str, Any]) -> tuple[float, float]:
    """CPU seconds this process and the sandbox's used since `before` (both taken together)."""
    return own_cpu() - before[0], process_cpu(site["pid"]) - before[1]


def truth_ranks(site: dict[str, Any]) -> dict[str, str]:
    truth = requests.get(f"{site['server']}/_sandbox/truth", timeout=120).json()
    return {t["external_id"]: t["rank"] for t in truth}


def naive_rerank(site: dict[str, Any], order: list[str]) -> tuple[float, int]:
    """Rank each issue right after the one before it: n - 1 single-issue calls."""
    s = session(site)
    started = time.perf_counter()
    calls = 0
    for before, issue in itertools.pairwise(order):
        r = s.put(
            f"{site['url']}/rest/agile/1.0/issue/rank",
            json={"issues": [issue], "rankAfterIssue": before},
            timeout=60,
        )
        r.raise_for_status()
        calls += 1
    return time.perf_counter() - started, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=15_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rank-items", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.0, help="ms added to every call")
    parser.add_argument("--rounds", type=int, default=3, help="raw / apply rounds (medians)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"items": args.items, "latency_ms": args.latency}
    with (
        tempfile.TemporaryDirectory() as tmp,
        sandbox("jira", args.items, args.seed, latency=args.latency) as site,
    ):
        site["server"] = site["url"]
        os.environ.update(site["env"])
        database = Path(tmp) / "bench.db"
        fields_config = config(
            site, database, {"progress": "Portfolio Progress", "first_write": "overwrite"}
        )
        engine = open_warehouse(fields_config.warehouse_url())
        started = time.perf_counter()
        sync_source(fields_config, "jira", engine, full=True)
        compute_analytics(engine, fields_config.portfolio, now=datetime.now(UTC))
        figures["sync_and_rollup_s"] = round(time.perf_counter() - started, 2)

        # --- 1,000 field changes beside 1,000 raw PUTs --------------------------------------
        rollup, item = table_of(models.Rollup), table_of(models.WorkItem)
        with engine.connect() as conn:
            rows = conn.execute(
                select(item.c.id, item.c.external_id)
                .join(rollup, rollup.c.work_item_id == item.c.id)
                .where(rollup.c.progress.is_not(None))
                .order_by(item.c.id)
                .limit(args.changes)
            ).all()
        assert len(rows) == args.changes, f"only {len(rows)} roll-ups; raise --items"
        only_progress_of(engine, [r.id for r in rows])
        catalogue = session(site).get(f"{site['url']}/rest/api/3/field", timeout=60).json()
        wsjf_field = next(f["id"] for f in catalogue if f["name"] == "WSJF")
        issues = [r.external_id for r in rows]
        owned = {"progress": "Portfolio Progress", "first_write": "overwrite"}
        sequential_config = config(site, database, owned, concurrency=1)
        single_config = config(site, database, {**owned, "bulk_edit": False})
        raw: list[float] = []
        concurrent: list[float] = []
        single: list[float] = []
        sequential: list[float] = []
        cpu: dict[str, list[tuple[float, float]]] = {"raw_put": [], "field_apply": []}
        """(client, sandbox) CPU seconds per pass: what the passes cost, whatever the load."""
        for round_ in range(args.rounds):
            before = own_cpu(), process_cpu(site["pid"])
            raw.append(raw_puts(site, issues, wsjf_field, 100 * (round_ + 1)))
            cpu["raw_put"].append(spent(before, site))
            passes = (
                (fields_config, concurrent),
                (single_config, single),
                (sequential_config, sequential),
            )
            for settings, times in passes:
                first = round_ == 0 and settings is fields_config
                if not first:
                    shift_progress(engine)
                started = time.perf_counter()
                plan = plan_writeback(settings, engine)
                planned = time.perf_counter() - started
                assert len(plan.writes) == args.changes, len(plan.writes)
                calls_before = sandbox_requests(site)
                before = own_cpu(), process_cpu(site["pid"])
                started = time.perf_counter()
                result = apply_writeback(settings, engine, plan)
                times.append(time.perf_counter() - started)
                if settings is fields_config:
                    cpu["field_apply"].append(spent(before, site))
                assert result.clean, result.counts()
                if first:
                    figures["field_plan_s"] = round(planned, 3)
                    figures["field_apply_calls"] = sandbox_requests(site) - calls_before
                    figures["field_apply_edits"] = result.calls["jira"].field_writes
                    figures["field_apply_bulk_edits"] = result.calls["jira"].bulk_edits
                    figures["field_apply_bulk_items"] = result.calls["jira"].bulk_items
                    rerun = apply_writeback(settings, engine, plan_writeback(settings, engine))
                    figures["rerun_write_calls"] = rerun.write_calls
                    sync_source(settings, "jira", engine)
                    again = apply_writeback(settings, engine, plan_writeback(settings, engine))
                    figures["rerun_after_sync_write_calls"] = again.write_calls
        figures["raw_put_runs_s"] = [round(t, 3) for t in raw]
        figures["field_apply_runs_s"] = [round(t, 3) for t in concurrent]
        figures["field_apply_single_edits_runs_s"] = [round(t, 3) for t in single]
        figures["field_apply_sequential_runs_s"] = [round(t, 3) for t in sequential]
        figures["raw_put_s"] = round(median(raw), 3)
        figures["field_apply_s"] = round(median(concurrent), 3)
        figures["field_apply_single_edits_s"] = round(median(single), 3)
        figures["field_apply_sequential_s"] = round(median(sequential), 3)
        figures["field_apply_vs_raw"] = round(median(concurrent) / median(raw), 3)
        figures["field_apply_single_edits_vs_raw"] = round(median(single) / median(raw), 3)
        figures["field_apply_sequential_vs_raw"] = round(median(sequential) / median(raw), 3)
        for name, runs in cpu.items():
            figures[f"{name}_client_cpu_s"] = round(median(c for c, _ in runs), 3)
            figures[f"{name}_sandbox_cpu_s"] = round(median(s for _, s in runs), 3)

        # --- a 1,000-item re-rank -------------------------------------------------------------
        rank_config = config(site, database, {"rank": True})
        with engine.connect() as conn:
            features = conn.execute(
                select(item.c.id, item.c.external_id)
                .join(rollup, rollup.c.work_item_id == item.c.id)
                .where(item.c.level == "feature")
                .order_by(item.c.id)
                .limit(args.rank_items)
            ).all()
        assert len(features) == args.rank_items, f"only {len(features)} features; raise --items"
        ids = [f.external_id for f in features]
        rng = random.Random(args.seed)
        naive_order = rng.sample(ids, len(ids))
        naive_s, naive_calls = naive_rerank(site, naive_order)
        ranks = truth_ranks(site)
        assert sorted(ids, key=ranks.__getitem__) == naive_order
        figures["naive_rerank_s"] = round(naive_s, 3)
        figures["naive_rerank_calls"] = naive_calls

        wanted = rng.sample(ids, len(ids))
        work_item_ids = {f.external_id: f.id for f in features}
        with engine.begin() as conn:
            conn.execute(update(rollup).values(rank=None, rank_scope=None))
            for n, feature in enumerate(wanted, start=1):
                conn.execute(
                    update(rollup)
                    .where(rollup.c.work_item_id == work_item_ids[feature])
                    .values(rank=n, rank_scope="benchmark")
                )
        sync_source(rank_config, "jira", engine)  # the naive re-rank's new rank values
        position = {issue: n for n, issue in enumerate(naive_order)}
        expected = len(ids) - len(longest_increasing_run([position[i] for i in wanted]))
        plan = plan_writeback(rank_config, engine)
        assert len(plan.writes) == expected, (len(plan.writes), expected)
        calls_before = sandbox_requests(site)
        started = time.perf_counter()
        result = apply_writeback(rank_config, engine, plan)
        figures["rerank_s"] = round(time.perf_counter() - started, 3)
        assert result.clean, result.counts()
        figures["rerank_moved_items"] = result.calls["jira"].moved_items
        figures["rerank_expected_n_minus_lis"] = expected
        figures["rerank_rank_calls"] = result.calls["jira"].rank_calls
        figures["rerank_all_calls"] = sandbox_requests(site) - calls_before
        ranks = truth_ranks(site)
        figures["rerank_final_order_is_wsjf"] = sorted(ids, key=ranks.__getitem__) == wanted
        rerun = apply_writeback(rank_config, engine, plan_writeback(rank_config, engine))
        figures["rerank_rerun_write_calls"] = rerun.write_calls
        engine.dispose()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
