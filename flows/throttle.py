"""Tracker API throttling shared by every worker: a Prefect global concurrency limit per site.

A connector's own token bucket (`sync.requests_per_second`) limits one process only. When a
Prefect API server is configured (`PREFECT_API_URL`) and holds a global concurrency limit named
`lpm-<source>-rps` with a slot decay, every request to that source's tracker first takes a slot
with `rate_limit(name, strict=True)`: the server then holds the site's request rate across all
flow runs, workers and machines, and the connector's bucket is bypassed. Create it once:

    prefect gcl create lpm-jira-cloud-rps --limit 10 --slot-decay-per-second 10

(at most 10 requests at once, and 10 a second on average). Without a server, or without that
limit, the connector's own limiter applies and nothing here calls Prefect.
"""

from __future__ import annotations

import logging
import re
import time

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from connectors.http import RequestGate

log = logging.getLogger(__name__)

ADMIT_TIMEOUT = 900.0
"""Seconds a request may wait for a slot before the sync fails (as for a long Retry-After)."""


def limit_name(source: str) -> str:
    """The global concurrency limit that throttles a source's tracker: `lpm-<source>-rps`."""
    slug = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")
    return f"lpm-{slug}-rps"


class PrefectRateGate:
    """Admits each request through `rate_limit` on a server-side global concurrency limit."""

    def __init__(self, name: str, *, timeout_seconds: float | None = ADMIT_TIMEOUT) -> None:
        self.name = name
        self.timeout_seconds = timeout_seconds

    def admit(self) -> float:
        started = time.monotonic()
        rate_limit(self.name, occupy=1, timeout_seconds=self.timeout_seconds, strict=True)
        return time.monotonic() - started

    def __repr__(self) -> str:
        return f"PrefectRateGate({self.name!r})"


def server_configured() -> bool:
    """Whether a Prefect API server is set (an ephemeral one is never started for this)."""
    return bool(PREFECT_API_URL.value())


def site_gate(source: str) -> RequestGate | None:
    """The gate for a source's requests: its global concurrency limit when a server holds an
    active one, else None (the connector's own limiter).

    Raises ValueError for a limit without slot decay: `rate_limit` never frees its slots, so
    the sync would stop after `limit` requests.
    """
    if not server_configured():
        return None
    name = limit_name(source)
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            log.info(
                "%s: no global concurrency limit %r on the Prefect server; the connector's own "
                "limiter applies (prefect gcl create %s --limit N --slot-decay-per-second R)",
                source,
                name,
                name,
            )
            return None
    if not limit.active:
        log.info("%s: global concurrency limit %r is inactive; own limiter applies", source, name)
        return None
    if not limit.slot_decay_per_second:
        raise ValueError(
            f"{source}: global concurrency limit {name!r} has no slot decay, so rate_limit would "
            f"never free its slots; recreate it with --slot-decay-per-second (requests/second)"
        )
    log.info("%s: tracker requests pass the global concurrency limit %r", source, name)
    return PrefectRateGate(name)
