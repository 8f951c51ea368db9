"""Azure DevOps Boards: read work items of a project, write the fields write-back owns.

Reading is WIQL for ids, then `workitemsbatch` (<= 200 ids) twice per chunk: once with the fields
the mapping needs, once with `$expand=relations` (the API refuses both in one call), plus the
`updates` of each item that changed since the last delivery (its history; one call per item, so
`history: false` leaves it out). The connector merges the three into one raw item per work item
and knows nothing of the LPM model; `mapping.azure_devops` reads it.

WIQL returns at most 20,000 ids and has no paging: a query that would return more fails with
VS402337, so the id listing splits the `System.ChangedDate` range in halves until each window
fits. Windows run oldest first and ids come ordered by `System.ChangedDate`, which makes the
resume cursor a single instant: every item changed before it has been delivered.

Writes are JSON Patch documents that start with `{"op": "test", "path": "/rev", "value": REV}`;
a stale revision comes back as 412 and surfaces as the shared `Conflict`, never retried.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from connectors.base import (
    WHOLE_SCOPE,
    DiscoveryError,
    FetchPlan,
    Page,
    Partition,
    RankMove,
    WriteOutcome,
)
from connectors.http import (
    BadRequest,
    HttpClient,
    HttpStats,
    KeyBatches,
    NotFound,
    OffsetPaginator,
    PermissionDenied,
    Pipeline,
    RequestGate,
    TimeWindow,
    TokenAuth,
    TooManyResults,
    TrackerError,
    WindowSplitter,
    read_ahead,
)
from mapping.azure_devops import (
    RANK_FIELDS,
    UPDATES_KEY,
    AzureDevOpsFacts,
    batch_fields,
    state_categories,
)
from mapping.config import AzureDevOpsSource

log = logging.getLogger(__name__)

API_VERSION = "7.1"
BATCH_LIMIT = 200
"""`workitemsbatch` takes at most 200 ids."""
UPDATES_PAGE = 200
"""`$top` of one updates page (the service's maximum)."""
WIQL_LIMIT_CODE = "VS402337"
"""The error a WIQL query answers when it would return more than 20,000 work items."""
PROJECT_MISSING = "TF200016"
"""The error code of a project that does not exist (or the PAT cannot see)."""
SPLIT_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
"""Where halving starts when a window has no lower bound (no ADO item is older)."""
CHANGED = "System.ChangedDate"


Paginator = WindowSplitter | KeyBatches | OffsetPaginator | None


@dataclass(frozen=True)
class Stream:
    """One kind of request, declared as data: where it goes, how it is keyed and paged."""

    name: str
    method: str
    path: str
    """Relative to `{organization}/{project}/_apis/wit/`; `{...}` are filled per call."""
    primary_keys: tuple[str, ...] = ("id",)
    replication_key: str | None = None
    paginator: Paginator = None
    body: Mapping[str, Any] = field(default_factory=dict)
    """Constant part of a POST body."""
    params: Mapping[str, Any] = field(default_factory=dict)


WORK_ITEM_IDS = Stream(
    "work_item_ids",
    "POST",
    "wiql",
    replication_key=CHANGED,
    paginator=WindowSplitter(anchor=SPLIT_ANCHOR),
    params={"timePrecision": "true"},
)
WORK_ITEMS = Stream(
    "work_items",
    "POST",
    "workitemsbatch",
    paginator=KeyBatches(BATCH_LIMIT),
    body={"errorPolicy": "omit"},
)
RELATIONS = Stream(
    "relations",
    "POST",
    "workitemsbatch",
    paginator=KeyBatches(BATCH_LIMIT),
    body={"$expand": "relations", "errorPolicy": "omit"},
)
UPDATES = Stream(
    "updates",
    "GET",
    "workItems/{id}/updates",
    primary_keys=("workItemId", "id"),
    paginator=OffsetPaginator(UPDATES_PAGE, limit_param="$top", offset_param="$skip"),
)
TYPE_STATES = Stream("type_states", "GET", "workitemtypes/{type}/states", primary_keys=("name",))
WORK_ITEM = Stream("work_item", "PATCH", "workitems/{id}")


class AzureDevOpsConnector:
    """One Azure DevOps project, read and written through the shared HTTP client."""

    kind = "azure_devops"

    def __init__(self, source: AzureDevOpsSource, client: HttpClient) -> None:
        self.source = source
        self.client = client
        self.project = quote(source.project, safe="")
        self.page_size = min(source.sync.page_size, BATCH_LIMIT)
        self.workers = source.sync.concurrency
        self._revisions: dict[str, int] = {}
        self._listed: dict[str, set[str]] = {}
        """Ids listed by the full fetch of each partition, for the reconcile right after them."""
        self._suppress_notifications = True
        self._one_query = threading.Lock()

    @classmethod
    def from_config(
        cls, source: AzureDevOpsSource, gate: RequestGate | None = None
    ) -> AzureDevOpsConnector:
        """A connector with a PAT (basic auth, empty user name); the token is read only here.
        `gate`, when given, admits every request instead of the client's own token bucket."""
        token = source.auth.token.resolve()
        client = HttpClient(
            source.base_url,
            auth=TokenAuth.basic("", token),
            verify_tls=source.verify_tls,
            timeout=source.sync.timeout_seconds,
            concurrency=source.sync.concurrency,
            requests_per_second=source.sync.requests_per_second,
            name=source.name,
            gate=gate,
        )
        return cls(source, client)

    @property
    def stats(self) -> HttpStats:
        return self.client.stats

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ discovery
    def discover(self) -> AzureDevOpsFacts:
        """State name -> state category of every configured work item type."""
        types = [*self.source.levels, *self.source.objective_types]
        type_states: dict[str, dict[str, str]] = {}
        problems: list[str] = []
        for name in dict.fromkeys(types):
            try:
                body = self._call(TYPE_STATES, type=quote(name, safe=""))
            except NotFound as missing:
                if PROJECT_MISSING in (missing.detail or ""):
                    raise DiscoveryError([f"project: {missing.detail}"]) from None
                where = "objective_types" if name in self.source.objective_types else "levels"
                problems.append(
                    f"{where}: work item type {name!r} does not exist in project "
                    f"{self.source.project!r}"
                )
                continue
            type_states[name] = state_categories(body)
        if problems:
            raise DiscoveryError(problems)
        return AzureDevOpsFacts(type_states=type_states)

    # ------------------------------------------------------------------ reading
    def partitions(self, facts: AzureDevOpsFacts) -> list[Partition]:
        """One partition per configured work item type, plus one for any other type the scope
        holds, so together they cover it exactly; a single type is the whole scope.

        Types are known from the config (no call), disjoint, and WIQL filters them cheaply; an
        item whose type changes gets a new `System.ChangedDate`, so the next incremental sync
        fetches it in its new partition.
        """
        types = list(dict.fromkeys([*self.source.levels, *self.source.objective_types]))
        if len(types) < 2:
            return [WHOLE_SCOPE]
        parts = [Partition(name, f"[System.WorkItemType] = {_wiql_string(name)}") for name in types]
        others = ", ".join(_wiql_string(name) for name in types)
        parts.append(Partition("(other types)", f"[System.WorkItemType] NOT IN ({others})"))
        return parts

    def pages(self, facts: AzureDevOpsFacts, plan: FetchPlan) -> Iterator[Page]:
        """Items changed since `plan.since` (all for a full fetch), oldest change first.

        The cursor after each page is `{"resume_from": T, "watermark": W}`: T is the newest
        `System.ChangedDate` delivered that is not after W, and W the server time (`asOf`) of
        the first WIQL query. Resuming lists again from T (re-reading items changed exactly at
        T costs nothing: loading is idempotent). Items changed after W may arrive early; they
        come again in the next incremental sync, which starts at W minus the overlap.
        """
        cursor = dict(plan.cursor or {})
        since = _parse_time(cursor.get("resume_from")) or plan.since
        state = _Progress(watermark=_parse_time(cursor.get("watermark")), resume_from=since)
        partition = plan.partition or WHOLE_SCOPE
        ids: list[int] = []

        def listing() -> Iterator[list[int]]:
            for listed, as_of in self._listing(TimeWindow(since, None), partition.clause):
                state.watermark = state.watermark or as_of
                ids.extend(listed)
                yield listed

        for items in self._fetched(listing(), plan.delivered_before):
            state.advance(items)
            yield Page(items=items, cursor=state.cursor(), expected=len(ids))
        if since is None:
            self._listed[partition.key] = {str(i) for i in ids}
        yield Page(items=[], cursor=state.cursor(), watermark=state.watermark, expected=len(ids))

    def fetch_ids(self, facts: AzureDevOpsFacts, external_ids: Sequence[str]) -> Iterator[Page]:
        """Given items (reconcile fills gaps with them), in pages without cursor or watermark."""
        ids = [int(external_id) for external_id in external_ids]
        for items in self._fetched([ids], None):
            yield Page(items=items, expected=len(ids))

    def _fetched(
        self, listing: Iterable[list[int]], delivered_before: datetime | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Merged items chunk by chunk, in listing order. The listing runs on a thread of its
        own, so the next WIQL window is queried while the current one's chunks download, are
        mapped and loaded; chunks run across window ends (as many calls as one long list)."""
        fields = batch_fields(self.source)
        name = self.source.name
        history = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{name}-history-")

        def produce(pipe: Pipeline) -> None:
            listed = read_ahead(listing, f"{name}-listing")
            for chunk in KeyBatches(self.page_size).across(listed):
                pipe.submit(self._fetch_chunk, chunk, fields, delivered_before, history)

        try:
            yield from Pipeline(self.workers, self.workers + 1, name).run(produce)
        finally:
            history.shutdown(wait=True, cancel_futures=True)

    def list_ids(self, facts: AzureDevOpsFacts) -> set[str]:
        """Every id in scope; deleted items (recycle bin or destroyed) are simply absent.

        Right after complete full fetches of every partition this is their own listing (WIQL
        scans the whole scope, so listing twice would double its cost): an item deleted while
        the fetch ran is then marked by the next sync.
        """
        listed, self._listed = self._listed, {}
        wanted = {part.key for part in self.partitions(facts)}
        if WHOLE_SCOPE.key in listed or wanted <= listed.keys():
            return set().union(*listed.values())
        return {str(i) for ids, _ in self._listing(TimeWindow(None, None)) for i in ids}

    def _listing(
        self, window: TimeWindow, clause: str | None = None
    ) -> Iterator[tuple[list[int], datetime]]:
        """Ids per window, oldest window first, halving any window WIQL refuses as too large."""
        splitter = WORK_ITEM_IDS.paginator
        assert isinstance(splitter, WindowSplitter)
        yield from splitter.windows(
            window,
            lambda part: self._list_window(part, clause),
            lambda: datetime.now(UTC),
            self._earliest_change,
        )

    def _earliest_change(self) -> datetime | None:
        """The oldest `System.ChangedDate` in scope (one id via `$top=1`, then that item)."""
        query = self.wiql(TimeWindow(None, None))
        try:
            body = self._call(WORK_ITEM_IDS, json={"query": query}, params={"$top": 1})
        except TooManyResults:
            return None
        refs = body.get("workItems", [])
        found = self._batch(WORK_ITEMS, [int(refs[0]["id"])], fields=[CHANGED]) if refs else []
        return _parse_time(found[0].get("fields", {}).get(CHANGED)) if found else None

    def _list_window(
        self, window: TimeWindow, clause: str | None = None
    ) -> tuple[list[int], datetime]:
        # One WIQL query at a time per site: each scans the scope on the server, and queries of
        # several partitions side by side would all answer late instead of one answering soon.
        with self._one_query:
            body = self._call(WORK_ITEM_IDS, json={"query": self.wiql(window, clause)})
        as_of = _parse_time(body.get("asOf")) or datetime.now(UTC)
        return [int(ref["id"]) for ref in body.get("workItems", [])], as_of

    def wiql(self, window: TimeWindow, partition: str | None = None) -> str:
        """The id query of one window: the project, the configured scope (and partition), the
        date range."""
        clauses = ["[System.TeamProject] = @project", f"({self.source.scope})"]
        if partition:
            clauses.append(f"({partition})")
        if window.start is not None:
            clauses.append(f"[{CHANGED}] >= '{_wiql_time(window.start)}'")
        if window.end is not None:
            clauses.append(f"[{CHANGED}] < '{_wiql_time(window.end)}'")
        return (
            "SELECT [System.Id] FROM WorkItems WHERE "
            + " AND ".join(clauses)
            + f" ORDER BY [{CHANGED}] ASC, [System.Id] ASC"
        )

    def _fetch_chunk(
        self,
        ids: list[int],
        fields: list[str],
        delivered_before: datetime | None,
        history: ThreadPoolExecutor,
    ) -> list[dict[str, Any]]:
        """One chunk merged: fields pass, relations pass, updates; ids gone meanwhile dropped.

        Updates are one call per item: they go to their own pool, so a chunk's calls run side by
        side (the shared limiter still caps what is in flight) instead of one after another.
        """
        items = self._batch(WORK_ITEMS, ids, fields=fields)
        relations = {item["id"]: item.get("relations", []) for item in self._batch(RELATIONS, ids)}
        # An item missing from the relations pass was deleted in between: its links are unknown.
        present = [item for item in items if item["id"] in relations]
        updates = {
            item["id"]: history.submit(self.updates, item["id"])
            for item in present
            if self._wants_history(item, delivered_before)
        }
        merged = []
        for item in present:
            item["relations"] = relations[item["id"]]
            read = updates.get(item["id"])
            try:
                item[UPDATES_KEY] = read.result() if read is not None else []
            except NotFound:
                continue  # deleted while its updates were read; the reconcile marks it
            merged.append(item)
        return merged

    def _wants_history(self, item: Mapping[str, Any], delivered_before: datetime | None) -> bool:
        """Whether an item's updates can hold history the warehouse lacks.

        Not at revision 1 (its only update is the creation, no transition), nor when it last
        changed before an earlier sync delivered it (its history is stored already).
        """
        if not self.source.history or int(item["rev"]) <= 1:
            return False
        changed = _parse_time(item.get("fields", {}).get(CHANGED))
        return delivered_before is None or changed is None or changed >= delivered_before

    def _batch(
        self, stream: Stream, ids: Sequence[int], *, fields: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Work items by id, in as many calls as the batch limit needs."""
        batches = stream.paginator
        assert isinstance(batches, KeyBatches)
        found: list[dict[str, Any]] = []
        for chunk in batches.batches(ids):
            body: dict[str, Any] = {"ids": chunk}
            if fields is not None:
                body["fields"] = list(fields)
            answer = self._call(stream, json=body)
            # errorPolicy=omit answers null for ids deleted since they were listed.
            found += [item for item in answer.get("value", []) if item is not None]
        return found

    def updates(self, work_item_id: int) -> list[dict[str, Any]]:
        """Every update of one work item, following `$top`/`$skip` pages."""
        paginator = UPDATES.paginator
        assert isinstance(paginator, OffsetPaginator)

        def fetch(params: dict[str, int]) -> list[dict[str, Any]]:
            body = self._call(UPDATES, id=work_item_id, params=params)
            page: list[dict[str, Any]] = body.get("value", [])
            return page

        return [update for page in paginator.pages(fetch) for update in page]

    # ------------------------------------------------------------------ writing
    def read_values(
        self, facts: AzureDevOpsFacts, external_ids: Sequence[str], attributes: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Current values of write-back attributes, plus `rev`; remembered for `write_values`.

        `rank` reads the backlog order field (StackRank or BacklogPriority) that `rank` writes."""
        names = self._reference_names([attr for attr in attributes if attr != "rank"])
        orders = self._rank_names() if "rank" in attributes else []
        values: dict[str, dict[str, Any]] = {}
        ids = [int(i) for i in external_ids]
        for item in self._batch(WORK_ITEMS, ids, fields=["System.Rev", *names.values(), *orders]):
            external_id = str(item["id"])
            self._revisions[external_id] = int(item["rev"])
            found = item.get("fields", {})
            values[external_id] = {attr: found.get(name) for attr, name in names.items()}
            if orders:
                values[external_id]["rank"] = next(
                    (found[name] for name in orders if found.get(name) is not None), None
                )
            values[external_id]["rev"] = int(item["rev"])
        return values

    def write_values(
        self,
        facts: AzureDevOpsFacts,
        external_id: str,
        values: Mapping[str, Any],
        expected_rev: int | None = None,
    ) -> WriteOutcome:
        """Set write-back attributes guarded by the revision last read (or `expected_rev`)."""
        rev = expected_rev if expected_rev is not None else self._revisions.get(external_id)
        if rev is None:
            rev = self.read_values(facts, [external_id], [])[external_id]["rev"]
        names = self._reference_names(list(values))
        new_rev = self.update_fields(
            int(external_id), {names[attr]: value for attr, value in values.items()}, rev
        )
        notified = not self._suppress_notifications
        self._revisions[external_id] = new_rev
        note = "watchers were notified (suppressNotifications not permitted)" if notified else None
        return WriteOutcome(external_id=external_id, notified=notified, note=note)

    def update_fields(self, work_item_id: int, values: Mapping[str, Any], expected_rev: int) -> int:
        """PATCH fields with a `test /rev` first; returns the new revision.

        A stale `expected_rev` raises `Conflict` (HTTP 412, TestPatchOperationFailedException)
        and nothing is written; it is never retried. Notifications are suppressed unless the
        account may not do that, in which case the write is repeated once without it.
        """
        patch: list[dict[str, Any]] = [{"op": "test", "path": "/rev", "value": expected_rev}]
        for name, value in values.items():
            if value is None:
                patch.append({"op": "remove", "path": f"/fields/{name}"})
            else:
                patch.append({"op": "add", "path": f"/fields/{name}", "value": value})
        if self._suppress_notifications:
            try:
                return self._patch(work_item_id, patch, suppress=True)
            except PermissionDenied:
                log.info("%s: may not suppress notifications; writing with them", self.source.name)
                self._suppress_notifications = False
        return self._patch(work_item_id, patch, suppress=False)

    def _patch(self, work_item_id: int, patch: list[dict[str, Any]], *, suppress: bool) -> int:
        params = {"suppressNotifications": "true"} if suppress else {}
        response = self.client.request(
            WORK_ITEM.method,
            self._url(WORK_ITEM, id=work_item_id),
            params={"api-version": API_VERSION, **params},
            json=patch,
            headers={"Content-Type": "application/json-patch+json"},
            idempotent=False,
        )
        return int(response.json()["rev"])

    def rank(self, facts: AzureDevOpsFacts, moves: Sequence[RankMove]) -> None:
        """Rank moves as writes of the backlog order field (StackRank or BacklogPriority).

        Items put before `before` get evenly spaced values between it and the item in scope
        ranked just above it (after `after`: between it and the one just below), so nothing
        else moves. Each write is guarded by the item's revision like any other.
        """
        for move in moves:
            anchor = move.before or move.after
            assert anchor is not None
            name, anchor_value = self._order_of(anchor)
            above = move.before is not None
            neighbour = self._neighbour_order(name, anchor_value, above=above)
            low, high = (neighbour, anchor_value) if above else (anchor_value, neighbour)
            step = (high - low) / (len(move.items) + 1)
            if step <= 0:
                raise TrackerError(
                    f"{self.source.name}: no room in the backlog order {name} next to work item "
                    f"{anchor}"
                )
            revisions = self.read_values(facts, move.items, [])
            for position, external_id in enumerate(move.items, start=1):
                self._revisions[external_id] = self.update_fields(
                    int(external_id),
                    {name: low + step * position},
                    revisions[external_id]["rev"],
                )

    def _rank_names(self) -> list[str]:
        return [self.source.fields.rank] if self.source.fields.rank else list(RANK_FIELDS)

    def _order_of(self, external_id: str) -> tuple[str, float]:
        names = self._rank_names()
        found = self._batch(WORK_ITEMS, [int(external_id)], fields=names)
        values = found[0].get("fields", {}) if found else {}
        for name in names:
            if values.get(name) is not None:
                return name, float(values[name])
        raise TrackerError(
            f"{self.source.name}: work item {external_id} has no backlog order "
            f"({' or '.join(names)})"
        )

    def _neighbour_order(self, name: str, value: float, *, above: bool) -> float:
        """The order value next to `value` in scope; past the end, a gap as wide as `value`."""
        operator, direction = ("<", "DESC") if above else (">", "ASC")
        query = (
            "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND "
            f"({self.source.scope}) AND [{name}] {operator} {value:.10f} "
            f"ORDER BY [{name}] {direction}"
        )
        refs = self._call(WORK_ITEM_IDS, json={"query": query}, params={"$top": 1}).get(
            "workItems", []
        )
        found = self._batch(WORK_ITEMS, [int(refs[0]["id"])], fields=[name]) if refs else []
        if found and found[0].get("fields", {}).get(name) is not None:
            return float(found[0]["fields"][name])
        return 0.0 if above else value * 2 + 1

    def _reference_names(self, attributes: Sequence[str]) -> dict[str, str]:
        owned = self.source.writeback.fields
        unknown = [attr for attr in attributes if attr not in owned]
        if unknown:
            raise ValueError(
                f"{self.source.name}: write-back owns no field for {', '.join(unknown)} "
                f"(configured: {', '.join(owned) or 'none'})"
            )
        return {attr: owned[attr] for attr in attributes}

    # ------------------------------------------------------------------ HTTP
    def _url(self, stream: Stream, **path: Any) -> str:
        return f"{self.project}/_apis/wit/{stream.path.format(**path)}"

    def _call(
        self,
        stream: Stream,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        **path: Any,
    ) -> Any:
        query = {**stream.params, **(params or {}), "api-version": API_VERSION}
        body = {**stream.body, **json} if isinstance(json, dict) else json
        try:
            response = self.client.request(
                stream.method, self._url(stream, **path), params=query, json=body
            )
        except BadRequest as error:
            if WIQL_LIMIT_CODE in (error.detail or ""):
                raise TooManyResults(str(error), status=400, detail=error.detail) from None
            raise
        # orjson: batch pages are large and decode on worker threads beside mapping and loading.
        return orjson.loads(response.content)


@dataclass
class _Progress:
    """The resume point of one fetch, advanced page by page."""

    watermark: datetime | None
    resume_from: datetime | None

    def advance(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            changed = _parse_time(item.get("fields", {}).get(CHANGED))
            if changed is None or (self.watermark is not None and changed > self.watermark):
                continue
            if self.resume_from is None or changed > self.resume_from:
                self.resume_from = changed

    def cursor(self) -> dict[str, Any]:
        return {
            "resume_from": self.resume_from.isoformat() if self.resume_from else None,
            "watermark": self.watermark.isoformat() if self.watermark else None,
        }


def _wiql_string(value: str) -> str:
    """A WIQL string literal (single quotes, doubled inside)."""
    return "'" + value.replace("'", "''") + "'"


def _wiql_time(moment: datetime) -> str:
    """A WIQL date literal with time (needs `timePrecision=true`), in UTC, to the millisecond."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
