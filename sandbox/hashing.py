"""Stateless per-item randomness, so lazily rendered details (titles, histories) stay
deterministic without storing them: the same (seed, item, salt) always gives the same draw."""

from __future__ import annotations

_M64 = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit SplitMix-style hash of the parts."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = ((x ^ (p & _M64)) * 0xBF58476D1CE4E5B9) & _M64
        x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 29)


def pick(options: tuple[str, ...] | list[str], *parts: int) -> str:
    return options[mix(*parts) % len(options)]
