"""Fewer garbage-collector passes while a sync runs.

A sync allocates millions of short-lived objects (parsed JSON, models, rows) that reference
counting frees as soon as a batch is loaded; few of them form cycles. With CPython's default
thresholds the cyclic collector still runs every 700 allocations, and its older-generation passes
walk every live object (pages in flight, the batch being mapped and loaded): measured on a full
sync of 20,000 Jira issues into SQLite, that was 20-30% of the sync process's CPU (see
benchmarks/RESULTS.md, issue 4). While any sync runs, generation 0 is collected every 100,000
allocations instead; the thresholds in force before come back when the last running sync ends.
"""

from __future__ import annotations

import gc
import threading

SYNC_THRESHOLDS = (100_000, 20, 100)
"""Collector thresholds while a sync runs (never lower than the ones already in force)."""


class RelaxedCollector:
    """Counts the syncs running in this process: the first raises the thresholds, the last
    puts back what was there. Thread-safe, as partitions and sources sync on threads."""

    def __init__(self, thresholds: tuple[int, int, int] = SYNC_THRESHOLDS) -> None:
        self._thresholds = thresholds
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: tuple[int, int, int] | None = None

    def acquire(self) -> None:
        with self._lock:
            if self._holders == 0:
                saved = gc.get_threshold()
                # 0 means automatic collection is off: nothing to relax.
                if saved[0] != 0:
                    self._saved = saved
                    gc.set_threshold(
                        *(max(a, b) for a, b in zip(saved, self._thresholds, strict=True))
                    )
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            if self._holders == 0:
                return
            self._holders -= 1
            if self._holders == 0 and self._saved is not None:
                gc.set_threshold(*self._saved)
                self._saved = None


relaxed_collector = RelaxedCollector()
"""The process's one collector policy for syncs (`SourceSync` acquires and releases it)."""
