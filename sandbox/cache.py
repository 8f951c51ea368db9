"""A byte-budgeted cache of rendered items: syncs re-read overlap windows and hot pages."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

_ENTRY_OVERHEAD = 400
"""Bytes per entry beyond the body: key tuple, bytes header, dict slot."""


class BytesLRU:
    """Oldest-first eviction within `limit_bytes` (for the sequential reads syncs make, the
    oldest entry is also the least recently used one)."""

    def __init__(self, limit_bytes: int = 768 * 1024 * 1024):
        self.limit = limit_bytes
        self._data: dict[Hashable, bytes] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get_or_render(
        self, key: Hashable, render: Callable[[], bytes], *, exact: bool = False
    ) -> bytes:
        """The cached body, or `render()` stored. orjson over-allocates its output buffer
        (kilobytes for a tiny body), so its results are stored as exact copies; `exact` says
        the result is already exact-size (built by `%` or `join`), saving the copy."""
        hit = self._data.get(key)
        if hit is not None:
            return hit
        body = render() if exact else bytes(memoryview(render()))
        with self._lock:
            if key not in self._data:
                self._data[key] = body
                self._size += len(body) + _ENTRY_OVERHEAD
            while self._size > self.limit and self._data:
                oldest = next(iter(self._data))
                self._size -= len(self._data.pop(oldest)) + _ENTRY_OVERHEAD
        return body

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0
