"""The collector policy of syncs: thresholds raised while any sync runs, restored after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flows.collector import SYNC_THRESHOLDS, RelaxedCollector


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_the_first_sync_raises_the_thresholds_and_the_last_restores_them() -> None:
    policy = RelaxedCollector()
    policy.acquire()
    assert gc.get_threshold() == SYNC_THRESHOLDS
    policy.acquire()
    policy.release()
    assert gc.get_threshold() == SYNC_THRESHOLDS, "another sync still runs"
    policy.release()
    assert gc.get_threshold() == (700, 10, 10)
    policy.release()  # one release too many changes nothing
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_already_higher_are_kept_and_a_disabled_collector_left_alone() -> None:
    gc.set_threshold(500_000, 5, 1000)
    policy = RelaxedCollector()
    policy.acquire()
    assert gc.get_threshold() == (500_000, SYNC_THRESHOLDS[1], 1000)
    policy.release()
    assert gc.get_threshold() == (500_000, 5, 1000)
    gc.set_threshold(0, 10, 10)
    policy.acquire()
    assert gc.get_threshold() == (0, 10, 10)
    policy.release()
    assert gc.get_threshold() == (0, 10, 10)
