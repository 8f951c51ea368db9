"""The Prefect flows: one per step (`sync_source`, `rollup`, `writeback`, `report`) and
`portfolio_run`, which calls them in order. They orchestrate only: every rule lives in the plain
functions they call (flows/sync.py, warehouse/analytics.py, flows/writeback.py, flows/report.py).

Parameters are plain values (a config path, flags), so the same flows run from `lpm run`, from a
deployment on a Prefect server (prefect.yaml) and in tests. Each flow reads the config and opens
the warehouse itself: a worker on another machine needs nothing but the config file.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import PrefectFuture, as_completed
from prefect.tasks import Task, exponential_backoff
from sqlalchemy import Engine

from connectors.http import is_transient
from flows import redaction
from flows.sync import SourceSync, SyncFailed, SyncResult
from flows.throttle import site_gate
from mapping.config import LpmConfig, load_config
from warehouse.analytics import AnalyticsSummary, compute_analytics
from warehouse.db import open_warehouse

redaction.install()


def transient_only(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry condition: retry network faults and 429/5xx, never a 4xx or a bad config."""
    try:
        state.result()
    except SyncFailed as failure:
        return is_transient(failure.cause)
    except Exception as exc:
        return is_transient(exc)
    return False


def _open(config_path: str, *, require_secrets: bool = False) -> tuple[LpmConfig, Engine]:
    config = load_config(config_path, require_secrets=require_secrets)
    return config, open_warehouse(config.warehouse_url())


class _SyncProgress:
    """Mirrors a sync into a Prefect progress artifact, at most once a second."""

    def __init__(self, source: str) -> None:
        self.artifact: UUID | None = None
        self.last = 0.0
        if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
            key = f"sync-{source}".lower().replace("_", "-").replace(".", "-")
            created = create_progress_artifact(
                0.0, key=key, description=f"Share of {source}'s items fetched"
            )
            self.artifact = created if isinstance(created, UUID) else None

    def __call__(self, result: SyncResult) -> None:
        now = time.monotonic()
        if self.artifact is None or not result.expected or now - self.last < 1:
            return
        self.last = now
        update_progress_artifact(
            self.artifact, min(100.0, 100.0 * result.fetched / result.expected)
        )


_RETRY: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": exponential_backoff(backoff_factor=5),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": transient_only,
    # Inputs are live objects (the run's connector and warehouse): nothing to cache or persist.
    "cache_policy": NO_CACHE,
    "persist_result": False,
}


@task(name="sync-start", **_RETRY)
def start_sync_task(
    config: LpmConfig, source: str, engine: Engine, full: bool = False
) -> SourceSync:
    """Discover the tracker and start the run, or resume the source's unfinished one."""
    return SourceSync.open(config, source, engine, full=full, gate=site_gate(source))


@task(name="sync-partition", **_RETRY)
def sync_partition_task(
    job: SourceSync, partition: str, progress: _SyncProgress | None = None
) -> dict[str, Any]:
    """Fetch, map and load one partition; a retry goes on from its last committed batch."""
    loaded = job.sync_partition(partition, progress)
    return {"source": job.source.name, "partition": partition, "loaded": loaded}


@task(name="sync-finish", **_RETRY)
def finish_sync_task(job: SourceSync, progress: _SyncProgress | None = None) -> SyncResult:
    """With every partition done: the source watermark, gap fill, delete reconcile."""
    return job.finish(progress)


def sync_partitions(
    job: SourceSync, progress: _SyncProgress | None = None
) -> dict[str, BaseException]:
    """Run the pending partitions as tasks, at most `sync.concurrency` at once; wait for all
    (a failure does not stop the others: what they load stays) and return the failures."""
    pending = job.pending
    failures: dict[str, BaseException] = {}
    running: dict[PrefectFuture[dict[str, Any]], str] = {}
    while pending or running:
        while pending and len(running) < job.source.sync.concurrency:
            key = pending.pop(0)
            named = sync_partition_task.with_options(task_run_name=f"{job.source.name}:{key}")
            running[named.submit(job, key, progress)] = key
        done = next(as_completed(list(running)))
        key = running.pop(done)
        outcome = done.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            failures[key] = outcome
    return failures


@flow(name="sync_source", log_prints=True)
def sync_source_flow(
    config_path: str = "lpm.yaml", source: str = "", full: bool = False
) -> dict[str, Any]:
    """Sync one source (incremental, or `full` with the delete reconcile), its partitions (Jira
    projects, Azure DevOps work item types) as concurrent tasks; the source's watermark and
    delete reconcile commit only once all of them finished, so a failed or killed partition
    resumes on the next run from its own cursor. A resumed run is followed by an incremental
    one, as in `flows.sync.sync_source`: what changed since the resumed run began comes too."""
    config, engine = _open(config_path, require_secrets=True)
    try:
        result = _sync_run(config, source, engine, full)
        if result.resumed:
            result = result.then(_sync_run(config, source, engine, False))
    finally:
        engine.dispose()
    get_run_logger().info(
        "%s: fetched %s, new %s, changed %s, unchanged %s, deleted %s, quarantined %s",
        source,
        result.fetched,
        result.inserted,
        result.updated,
        result.unchanged,
        result.deleted,
        result.quarantined,
    )
    return asdict(result)


def _sync_run(config: LpmConfig, source: str, engine: Engine, full: bool) -> SyncResult:
    """One run of the source's sync as tasks: start or resume, the partitions, the finish."""
    job = start_sync_task(config, source, engine, full)
    try:
        failures = sync_partitions(job, _SyncProgress(source))
        if failures:
            get_run_logger().error(
                "%s: partitions failed (the next run resumes them): %s",
                source,
                "; ".join(f"{key}: {redaction.redact(str(e))}" for key, e in failures.items()),
            )
            cause = next(iter(failures.values()))
            raise job.fail(cause) from cause
        return finish_sync_task(job, None)
    except SyncFailed:
        raise
    except Exception as exc:
        raise job.fail(exc) from exc
    finally:
        job.close()


@flow(name="rollup")
def rollup_flow(config_path: str = "lpm.yaml") -> dict[str, Any]:
    """Recompute roll-ups, WSJF ranks, health, guardrails, flow metrics and forecasts."""
    config, engine = _open(config_path)
    try:
        summary = compute_analytics(engine, config.portfolio, now=datetime.now(UTC))
    finally:
        engine.dispose()
    return _analytics_dict(summary)


def _analytics_dict(summary: AnalyticsSummary) -> dict[str, Any]:
    result = asdict(summary)
    result["computed_at"] = summary.computed_at.isoformat()
    return result


@flow(name="writeback")
def writeback_flow(
    config_path: str = "lpm.yaml", apply: bool | None = None, force: bool = False
) -> dict[str, Any]:
    """Plan the write-back; apply it where `apply` (default: each source's `writeback.apply`)."""
    from flows.writeback import apply_writeback, plan_writeback

    config, engine = _open(config_path, require_secrets=True)
    try:
        plan = plan_writeback(config, engine, force=force)
        if apply is False:
            return {"planned": len(plan.writes), "conflicts": len(plan.conflicts)}
        result = apply_writeback(config, engine, plan, force=force, only_configured=apply is None)
    finally:
        engine.dispose()
    return result.counts()


@flow(name="rollup_and_writeback")
def rollup_and_writeback(
    config_path: str = "lpm.yaml", apply: bool | None = None
) -> dict[str, Any]:
    """What runs after every sync: fresh analytics, then the write-back they call for."""
    return {
        "analytics": rollup_flow(config_path),
        "writeback": writeback_flow(config_path, apply=apply),
    }


@flow(name="report")
def report_flow(config_path: str = "lpm.yaml", out_dir: str = "lpm-report") -> str:
    """Write portfolio.html with its CSV/JSON tables; publish the summary as artifacts."""
    from flows.report import publish_artifacts, write_report

    config, engine = _open(config_path)
    try:
        result = write_report(engine, config, Path(out_dir))
    finally:
        engine.dispose()
    publish_artifacts(result)
    return str(Path(result.html).resolve())


@flow(name="portfolio_run", log_prints=True)
def portfolio_run(
    config_path: str = "lpm.yaml",
    full: bool = False,
    apply: bool | None = None,
    report_dir: str = "lpm-report",
) -> dict[str, Any]:
    """The whole pipeline: sync every source, roll up, write back (as configured), report.

    A source whose sync fails does not stop the others; the run ends Failed only after the
    remaining steps ran on what was synced, so the report still shows the failure.
    """
    config = load_config(config_path, require_secrets=True)
    synced: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    for source in config.sources:
        try:
            synced[source.name] = sync_source_flow(config_path, source.name, full)
        except Exception as exc:
            failures[source.name] = redaction.redact(str(exc))
    analytics = rollup_flow(config_path)
    writeback = writeback_flow(config_path, apply=apply)
    report = report_flow(config_path, report_dir)
    summary = {
        "synced": synced,
        "failed": failures,
        "analytics": analytics,
        "writeback": writeback,
        "report": report,
    }
    create_markdown_artifact(_run_summary(summary), key="portfolio-run-summary")
    if failures:
        raise RuntimeError("; ".join(f"{name}: {error}" for name, error in failures.items()))
    return summary


def _run_summary(summary: dict[str, Any]) -> str:
    lines = ["# Portfolio run", "", "| source | fetched | new | changed | deleted | quarantined |"]
    lines.append("|---|---:|---:|---:|---:|---:|")
    for name, counts in summary["synced"].items():
        lines.append(
            f"| {name} | {counts['fetched']} | {counts['inserted']} | {counts['updated']} | "
            f"{counts['deleted']} | {counts['quarantined']} |"
        )
    for name, error in summary["failed"].items():
        lines.append(f"| {name} | failed: {error} | | | | |")
    analytics = summary["analytics"]
    lines += [
        "",
        f"Roll-ups: {analytics['rolled_up']} items, {analytics['ranked']} ranked, "
        f"health {analytics['health']}, cycles {analytics['cycles']}, "
        f"orphans {analytics['orphans']}.",
        f"Write-back: {summary['writeback']}.",
        f"Report: {summary['report']}",
    ]
    return "\n".join(lines)
