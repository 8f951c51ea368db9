"""Faults on demand: server errors, rate limiting, latency and dropped connections.

Real trackers fail in these ways and connectors must survive them: 500s, 503s that say when to
come back (Retry-After), 429s with the vendor's rate-limit headers (Jira's X-RateLimit-* with
X-RateLimit-NearLimit before the limit, Azure DevOps' X-RateLimit-Resource/Delay), slow answers
and connections closed half-way through a body. Everything can be changed while serving.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

NEAR_LIMIT = 0.2
"""Share of the bucket left below which Jira flags X-RateLimit-NearLimit."""


@dataclass(frozen=True, slots=True)
class FaultConfig:
    fault_rate: float = 0.0
    """Share of API calls answered 500 or 503 (half of the 503s with Retry-After), spread
    evenly over the calls."""
    rate_limit: float | None = None
    """Requests per second before 429s (a token bucket holding one second of requests)."""
    latency_ms: float = 0.0
    """Added to every API call; calls are served concurrently, so latency doesn't serialise."""
    drop_rate: float = 0.0
    """Share of API calls whose connection is closed half-way through the response body."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "fault_rate": self.fault_rate,
            "rate_limit": self.rate_limit,
            "latency_ms": self.latency_ms,
            "drop_rate": self.drop_rate,
        }


@dataclass(frozen=True, slots=True)
class Injected:
    """A response decided by the fault injector instead of the API."""

    status: int
    headers: dict[str, str]


class Faults:
    def __init__(self, config: FaultConfig, *, kind: str, seed: int = 0):
        self.config = config
        self.kind = kind
        self._rnd = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()
        self._tokens = config.rate_limit or 0.0
        self._last = time.monotonic()
        self._due = {"fault": 0.0, "drop": 0.0}
        self._gap = {"fault": self._rnd.uniform(0.5, 1.5), "drop": self._rnd.uniform(0.5, 1.5)}

    def _hit(self, kind: str, rate: float) -> bool:
        """Whether this call gets the fault: spread evenly (each after about 1/rate calls,
        jittered) rather than drawn independently, so a test making N calls sees about
        N x rate faults instead of, with small N, often none. Call with the lock held."""
        if rate >= 1.0:
            return True
        self._due[kind] += rate
        if self._due[kind] < self._gap[kind]:
            return False
        self._due[kind] -= self._gap[kind]
        self._gap[kind] = self._rnd.uniform(0.5, 1.5)
        return True

    def configure(self, **changes: Any) -> FaultConfig:
        unknown = set(changes) - set(FaultConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        with self._lock:
            self.config = replace(self.config, **changes)
            self._tokens = self.config.rate_limit or 0.0
            self._last = time.monotonic()
            return self.config

    def latency(self) -> float:
        return self.config.latency_ms / 1000.0

    def admit(self) -> tuple[Injected | None, dict[str, str]]:
        """Rate limiting and server errors for one call: (injected response, extra headers)."""
        cfg = self.config
        headers: dict[str, str] = {}
        if cfg.rate_limit:
            limited, headers = self._take_token(cfg.rate_limit)
            if limited is not None:
                return limited, {}
        if cfg.fault_rate:
            with self._lock:
                hit = self._hit("fault", cfg.fault_rate)
                kind = self._rnd.random()
            if hit:
                if kind < 0.5:
                    return Injected(500, {}), headers
                retry = {"Retry-After": "1"} if kind < 0.75 else {}
                return Injected(503, retry), headers
        return None, headers

    def drop(self) -> bool:
        rate = self.config.drop_rate
        if not rate:
            return False
        with self._lock:
            return self._hit("drop", rate)

    def _take_token(self, rps: float) -> tuple[Injected | None, dict[str, str]]:
        capacity = max(rps, 1.0)
        with self._lock:
            now = time.monotonic()
            self._tokens = min(capacity, self._tokens + (now - self._last) * rps)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                remaining = int(self._tokens)
                headers = self._limit_headers(capacity, remaining)
                if self._tokens < capacity * NEAR_LIMIT and self.kind == "jira":
                    headers["X-RateLimit-NearLimit"] = "true"
                return None, headers
            wait = (1.0 - self._tokens) / rps
        retry_after = max(1, math.ceil(wait))
        headers = self._limit_headers(capacity, 0)
        headers["Retry-After"] = str(retry_after)
        reset = datetime.fromtimestamp(time.time() + retry_after, UTC)
        if self.kind == "jira":
            headers["X-RateLimit-Reset"] = reset.strftime("%Y-%m-%dT%H:%MZ")
            headers["X-RateLimit-NearLimit"] = "true"
            headers["RateLimit-Reason"] = "jira-burst-based"
        else:
            headers["X-RateLimit-Resource"] = "Core"
            headers["X-RateLimit-Delay"] = f"{wait:.3f}"
            headers["X-RateLimit-Reset"] = str(int(reset.timestamp()))
        return Injected(429, headers), headers

    def _limit_headers(self, capacity: float, remaining: int) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(int(capacity)), "X-RateLimit-Remaining": str(remaining)}
