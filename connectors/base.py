"""What a tracker connector offers, so sync and write-back orchestration stay tracker-agnostic.

A connector speaks HTTP (through `connectors.http`) and nothing else: it returns raw tracker JSON
and knows neither the LPM model nor the warehouse. Mapping raw items is the job of the mapper
registered for the same `kind` (see `flows.sync`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from connectors.http import HttpStats

FactsT = TypeVar("FactsT")


@dataclass(frozen=True)
class Page:
    """A page of raw items and what to commit with it.

    `cursor` is the resume state once this page is loaded: a run killed after committing it and
    started again passes the cursor back to `pages` and continues after it. `watermark` is set
    only on the last page of a fetch (possibly an empty page): everything in scope updated before
    it has then been delivered, so the next incremental fetch may start there (minus the overlap).
    """

    items: list[dict[str, Any]]
    cursor: dict[str, Any] | None = None
    watermark: datetime | None = None
    expected: int | None = None
    """How many items the whole fetch will deliver, when the tracker said (for progress)."""


@dataclass(frozen=True)
class WriteOutcome:
    """How a field edit went; `note` says what differed from the request (e.g. users notified)."""

    external_id: str
    notified: bool = False
    note: str | None = None


@dataclass(frozen=True)
class RankMove:
    """Put `items` (in this order) right before `before`, or right after `after`."""

    items: Sequence[str]
    before: str | None = None
    after: str | None = None

    def __post_init__(self) -> None:
        if (self.before is None) == (self.after is None):
            raise ValueError("a rank move needs exactly one of before / after")


@dataclass(frozen=True)
class Partition:
    """A disjoint slice of a source's scope that can be fetched, loaded and resumed on its own.

    `key` is stable between runs (it names the slice's resume cursor and its Prefect task);
    `clause` is a tracker query fragment (JQL, WIQL) the connector ANDs to its scope query, or
    None for the whole scope. A connector's partitions together cover its whole scope.
    """

    key: str
    clause: str | None = None


WHOLE_SCOPE = Partition("all")
"""The partition of a source that is not split."""


@dataclass
class FetchPlan:
    """Parameters of one fetch: full, or incremental from `since` (already minus the overlap)."""

    full: bool
    since: datetime | None = None
    cursor: Mapping[str, Any] | None = None
    """The cursor of a killed run to resume; None starts from the beginning."""
    delivered_before: datetime | None = None
    """The last committed watermark minus the overlap, known even for a full fetch: items last
    changed before it were delivered by an earlier sync, so per-item extras (Azure DevOps
    history, one call per item) need not be fetched for them again."""
    partition: Partition | None = None
    """Fetch only this slice of the scope (None: the whole scope)."""


class Connector(Protocol[FactsT]):
    """One tracker site. Instances are used by one sync at a time and closed after it."""

    kind: str

    def discover(self) -> FactsT:
        """Tracker facts the pure mapper needs (field ids, time zone, hierarchy, categories).

        Raises a `TrackerError` for unreachable or unauthorised sites, and `DiscoveryError` for a
        config that does not fit the tracker (e.g. a field name matching no field or several).
        """
        ...

    def partitions(self, facts: FactsT) -> Sequence[Partition]:
        """How the scope splits into disjoint slices (at least one; `[WHOLE_SCOPE]` when it
        does not split). Pure data, decided from the config and the facts, no call."""
        ...

    def pages(self, facts: FactsT, plan: FetchPlan) -> Iterator[Page]:
        """Raw items in scope (in `plan.partition` only, when given), in pages; the next page
        downloads while the caller handles one. Safe to call from several threads at once, one
        partition each: they share the site's rate and concurrency limits."""
        ...

    def list_ids(self, facts: FactsT) -> set[str]:
        """Every tracker id now in scope (for reconcile: the others were deleted or moved out)."""
        ...

    def read_values(
        self, facts: FactsT, external_ids: Sequence[str], attributes: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Current tracker values of write-back attributes (`wsjf`, `health`, ...) per item."""
        ...

    def write_values(
        self, facts: FactsT, external_id: str, values: Mapping[str, Any]
    ) -> WriteOutcome:
        """Set write-back attributes of one item, without notifying watchers when permitted."""
        ...

    def rank(self, facts: FactsT, moves: Sequence[RankMove]) -> None:
        """Apply rank moves in order (the tracker's batch limits are the connector's concern)."""
        ...

    @property
    def stats(self) -> HttpStats: ...

    def close(self) -> None: ...


@runtime_checkable
class FetchesByIds(Protocol):
    """Optional: a connector that can fetch given items, so reconcile can fill gaps (items in
    scope the warehouse lacks: restored, or missed while the tracker changed under a search)."""

    def fetch_ids(self, facts: Any, external_ids: Sequence[str]) -> Iterator[Page]: ...


class DiscoveryError(ValueError):
    """The configuration does not fit the tracker; `problems` are `path: message` lines."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))
