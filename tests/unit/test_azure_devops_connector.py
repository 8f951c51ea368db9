"""The Azure DevOps connector over mocked HTTP, answering with Microsoft's example bodies.

Error bodies follow the service's error shape (`$id`, `message`, `typeName`, `typeKey`, ...);
the reference examples document successful responses only.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from pydantic import SecretStr

from connectors.azure_devops import SPLIT_ANCHOR, AzureDevOpsConnector
from connectors.base import DiscoveryError, FetchPlan, RankMove
from connectors.http import (
    AuthenticationFailed,
    BadRequest,
    Conflict,
    HttpClient,
    RetryPolicy,
    TimeWindow,
    TokenAuth,
    TrackerError,
)
from mapping.azure_devops import AzureDevOpsFacts, AzureDevOpsMapper, batch_fields
from mapping.config import AzureDevOpsSource
from mapping.model import WorkItem
from tests.ado_reference import example, response_body

ORG = "https://dev.azure.com/fabrikam"
API = f"{ORG}/Fabrikam-Fiber-Git/_apis/wit"
PAT = "pat-secret-123"
WIQL = "wiql/GET__wit_get_id_workitems.json"
BATCH = "workItemsBatch/POST__wit_WorkItemsBatch_ids-_ids__fields-_columns_.json"
EXPAND_ALL = "workItems/GET__wit_WorkItems_ids-_ids___expand-all.json"
STATES = "workItemTypeStates/GET__workitem_type_states.json"
UPDATES = "updates/GET__list_of_workitem_updates.json"
PATCHED = "workItems/PATCH__wit_workitems__taskId_.json"
FACTS = AzureDevOpsFacts({})


def _error(message: str, type_key: str, event_id: int = 3000) -> dict[str, Any]:
    """The JSON body Azure DevOps answers an error with."""
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"Microsoft.TeamFoundation.WorkItemTracking.Server.{type_key}, "
        "Microsoft.TeamFoundation.WorkItemTracking.Server",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": event_id,
    }


TOO_MANY = _error(
    "VS402337: The number of work items returned exceeds the size limit of 20000. "
    "Change the query to return fewer work items.",
    "WorkItemTrackingQueryResultSizeLimitExceededException",
)
STALE = _error(
    "VS403351: Test Operation for path /rev failed, value 2 was not equal to test value 1.",
    "TestPatchOperationFailedException",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.now += seconds


def _source(**overrides: Any) -> AzureDevOpsSource:
    data: dict[str, Any] = {
        "name": "ado",
        "kind": "azure_devops",
        "url": ORG,
        "project": "Fabrikam-Fiber-Git",
        "auth": {"token": {"env": "ADO_PAT"}},
        "scope": "[System.WorkItemType] IN ('Product Backlog Item', 'Task')",
        "levels": {"Product Backlog Item": "feature", "Task": "story"},
        "sync": {"page_size": 200, "concurrency": 2},
        "writeback": {"wsjf": "Custom.WSJF", "health": "Custom.Health", "rank": True},
    }
    data.update(overrides)
    return AzureDevOpsSource.model_validate(data)


def _connector(clock: FakeClock | None = None, **overrides: Any) -> AzureDevOpsConnector:
    source = _source(**overrides)
    client = HttpClient(
        source.base_url,
        auth=TokenAuth.basic("", SecretStr(PAT)),
        concurrency=2,
        clock=clock or FakeClock(),
        policy=RetryPolicy(max_attempts=3),
        name="ado",
    )
    return AzureDevOpsConnector(source, client)


def _query(request: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


def _wiql_answer(ids: list[int], as_of: str = "2026-11-20T10:00:00.000Z") -> dict[str, Any]:
    body = response_body(WIQL)
    body["asOf"] = as_of
    body["workItems"] = [{"id": i, "url": f"{ORG}/_apis/wit/workItems/{i}"} for i in ids]
    return body


def _work_item(item_id: int, changed: str = "2026-11-01T08:00:00Z") -> dict[str, Any]:
    """A fields-pass item shaped like the batch example, for ids the examples lack."""
    item = response_body(BATCH)["value"][1]
    item["id"] = item["fields"]["System.Id"] = item_id
    item["fields"]["System.ChangedDate"] = changed
    item["url"] = f"{ORG}/_apis/wit/workItems/{item_id}"
    return item


class FakeAdo:
    """A callback-driven project: WIQL, both batch passes and updates for given items."""

    def __init__(self, mock: responses.RequestsMock, items: dict[int, dict[str, Any]]) -> None:
        self.items = items
        self.relations: dict[int, list[dict[str, Any]]] = {}
        self.updates: dict[int, list[dict[str, Any]]] = {}
        self.queries: list[str] = []
        self.batches: list[dict[str, Any]] = []
        self.limit = 20_000
        self.deleted: set[int] = set()
        mock.add_callback(responses.POST, f"{API}/wiql", callback=self._wiql)
        mock.add_callback(responses.POST, f"{API}/workitemsbatch", callback=self._batch)
        mock.add_callback(
            responses.GET, re.compile(rf"{API}/workItems/\d+/updates"), callback=self._updates
        )

    def _wiql(self, request: Any) -> tuple[int, dict[str, str], str]:
        query = json.loads(request.body)["query"]
        self.queries.append(query)
        start = re.search(r"\[System.ChangedDate\] >= '([^']+)'", query)
        end = re.search(r"\[System.ChangedDate\] < '([^']+)'", query)
        chosen = []
        for item_id, item in sorted(
            self.items.items(), key=lambda kv: (kv[1]["fields"]["System.ChangedDate"], kv[0])
        ):
            changed = datetime.fromisoformat(item["fields"]["System.ChangedDate"])
            if start and changed < datetime.fromisoformat(start.group(1)):
                continue
            if end and changed >= datetime.fromisoformat(end.group(1)):
                continue
            chosen.append(item_id)
        top = _query(request).get("$top")
        if top:
            chosen = chosen[: int(top[0])]
        if len(chosen) > self.limit:
            return 400, {}, json.dumps(TOO_MANY)
        return 200, {}, json.dumps(_wiql_answer(chosen))

    def _batch(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.batches.append(body)
        value: list[dict[str, Any] | None] = []
        for item_id in body["ids"]:
            if item_id in self.deleted:
                value.append(None)
                continue
            item = json.loads(json.dumps(self.items[item_id]))
            if body.get("$expand") == "relations":
                item["relations"] = self.relations.get(item_id, [])
            else:
                wanted = set(body["fields"])
                item["fields"] = {k: v for k, v in item["fields"].items() if k in wanted}
            value.append(item)
        return 200, {}, json.dumps({"count": len(value), "value": value})

    def _updates(self, request: Any) -> tuple[int, dict[str, str], str]:
        item_id = int(request.url.split("/workItems/")[1].split("/")[0])
        query = _query(request)
        top, skip = int(query["$top"][0]), int(query["$skip"][0])
        page = self.updates.get(item_id, [])[skip : skip + top]
        return 200, {}, json.dumps({"count": len(page), "value": page})


@pytest.fixture
def mock() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _reference_items() -> dict[int, dict[str, Any]]:
    return {item["id"]: item for item in response_body(EXPAND_ALL)["value"]}


# --- discovery --------------------------------------------------------------------------------


def test_discover_reads_state_categories_per_type_and_names_missing_types(mock: Any) -> None:
    states = example(STATES)["responses"]["200"]["body"]
    mock.get(f"{API}/workitemtypes/Product%20Backlog%20Item/states", json=states)
    mock.get(f"{API}/workitemtypes/Task/states", json=states)
    facts = _connector().discover()
    assert facts.type_states["Task"]["CustomState"] == "InProgress"
    assert set(facts.type_states) == {"Product Backlog Item", "Task"}
    assert all("api-version=7.1" in call.request.url for call in mock.calls)

    mock.replace(
        responses.GET,
        f"{API}/workitemtypes/Task/states",
        status=404,
        json=_error(
            "VS402323: Work item type Task does not exist.", "WorkItemTypeNotFoundException"
        ),
    )
    with pytest.raises(DiscoveryError) as caught:
        _connector().discover()
    assert caught.value.problems == [
        "levels: work item type 'Task' does not exist in project 'Fabrikam-Fiber-Git'"
    ]


def test_discover_names_a_missing_project(mock: Any) -> None:
    missing = (
        "TF200016: The following project does not exist: Fabrikam-Fiber-Git. Verify that the "
        "name of the project is correct and that the project exists on the specified Azure "
        "DevOps Server."
    )
    mock.get(
        re.compile(rf"{API}/workitemtypes/.*"),
        status=404,
        json=_error(missing, "ProjectDoesNotExistException"),
    )
    with pytest.raises(DiscoveryError) as caught:
        _connector().discover()
    assert caught.value.problems == [f"project: {missing}"]


def test_pat_is_sent_as_basic_auth_and_never_shown(mock: Any) -> None:
    mock.post(
        f"{API}/wiql",
        status=401,
        json=_error("TF400813: The user is not authorized to access this resource.", "Unauth"),
    )
    with pytest.raises(AuthenticationFailed) as caught:
        _connector().list_ids(FACTS)
    sent = mock.calls[0].request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f":{PAT}".encode()).decode()
    assert PAT not in str(caught.value) and "TF400813" in str(caught.value)


# --- reading ----------------------------------------------------------------------------------


def test_full_fetch_merges_fields_relations_and_updates(mock: Any) -> None:
    items = _reference_items()
    ado = FakeAdo(mock, items)
    ado.relations = {i: items[i]["relations"] for i in items}
    ado.updates = {299: response_body(UPDATES)["value"]}
    connector = _connector()
    pages = list(connector.pages(FACTS, FetchPlan(full=True)))

    assert [len(page.items) for page in pages] == [3, 0]
    assert pages[-1].watermark == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert all(page.watermark is None for page in pages[:-1])
    merged = {item["id"]: item for item in pages[0].items}
    assert merged[299]["relations"][0]["rel"] == "System.LinkTypes.Hierarchy-Reverse"
    assert len(merged[299]["updates"]) == 13
    # 297 and 300 are at revision 1: never changed, so their updates are not even asked for.
    assert merged[297]["updates"] == merged[300]["updates"] == []
    asked = [c.request.url for c in mock.calls if "/updates" in c.request.url]
    assert len(asked) == 1 and "/workItems/299/updates" in asked[0]
    # Ids come oldest change first; the fields pass asks only for what the mapping reads and
    # relations come from a second pass.
    fields_pass, relations_pass = ado.batches
    assert fields_pass["fields"] == batch_fields(connector.source)
    assert "$expand" not in fields_pass and fields_pass["errorPolicy"] == "omit"
    assert relations_pass == {"ids": [297, 300, 299], "$expand": "relations", "errorPolicy": "omit"}
    assert ado.queries == [
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND "
        "([System.WorkItemType] IN ('Product Backlog Item', 'Task')) "
        "ORDER BY [System.ChangedDate] ASC, [System.Id] ASC"
    ]
    wiql_call = next(c for c in mock.calls if c.request.url.startswith(f"{API}/wiql"))
    assert _query(wiql_call.request)["timePrecision"] == ["true"]

    # What the connector delivers is what the mapper reads.
    mapper = AzureDevOpsMapper(
        connector.source,
        AzureDevOpsFacts({"Task": {"To Do": "Proposed"}, "Product Backlog Item": {"New": "New"}}),
    )
    task = mapper.map(merged[299])
    assert isinstance(task, WorkItem) and task.parent_external_id == "297"


def test_history_off_reads_no_updates(mock: Any) -> None:
    ado = FakeAdo(mock, {1: _work_item(1), 2: _work_item(2)})
    ado.updates = {1: response_body(UPDATES)["value"]}
    pages = list(_connector(history=False).pages(FACTS, FetchPlan(full=True)))
    assert [item["updates"] for item in pages[0].items] == [[], []]
    assert not [c for c in mock.calls if "/updates" in c.request.url]


def test_history_is_read_only_for_items_changed_since_the_last_delivery(mock: Any) -> None:
    ado = FakeAdo(
        mock, {1: _work_item(1, "2026-11-01T08:00:00Z"), 2: _work_item(2, "2026-11-03T08:00:00Z")}
    )
    delivered = datetime(2026, 11, 2, tzinfo=UTC)
    plan = FetchPlan(full=True, delivered_before=delivered)
    list(_connector().pages(FACTS, plan))
    asked = [c.request.url for c in mock.calls if "/updates" in c.request.url]
    assert len(asked) == 1 and "/workItems/2/updates" in asked[0]
    assert len(ado.batches) == 2, "both items are still read and loaded"


def test_incremental_fetch_asks_from_since_with_time_precision(mock: Any) -> None:
    ado = FakeAdo(mock, {1: _work_item(1, "2026-11-01T08:00:00Z")})
    since = datetime(2026, 11, 1, 7, 50, 0, 123456, tzinfo=UTC)
    pages = list(_connector().pages(FACTS, FetchPlan(full=False, since=since)))
    assert "[System.ChangedDate] >= '2026-11-01T07:50:00.123Z'" in ado.queries[0]
    assert [item["id"] for item in pages[0].items] == [1]


def test_chunks_hold_at_most_200_ids_and_keep_the_listing_order(mock: Any) -> None:
    items = {i: _work_item(i, f"2026-11-01T08:{i // 60:02d}:{i % 60:02d}Z") for i in range(1, 451)}
    ado = FakeAdo(mock, items)
    pages = list(_connector().pages(FACTS, FetchPlan(full=True)))
    assert [len(page.items) for page in pages] == [200, 200, 50, 0]
    assert {page.expected for page in pages} == {450}
    delivered = [item["id"] for page in pages for item in page.items]
    assert delivered == list(range(1, 451))
    assert all(len(batch["ids"]) <= 200 for batch in ado.batches)
    # The cursor after a page resumes at the newest change delivered so far.
    assert pages[0].cursor == {
        "resume_from": "2026-11-01T08:03:20+00:00",
        "watermark": "2026-11-20T10:00:00+00:00",
    }


def test_a_window_over_20000_is_halved_until_each_fits(mock: Any) -> None:
    items = {i: _work_item(i, f"2026-0{1 + i % 9}-1{i % 10}T00:00:00Z") for i in range(1, 61)}
    ado = FakeAdo(mock, items)
    ado.limit = 25  # stands in for 20,000
    connector = _connector()
    listed = connector.list_ids(FACTS)
    assert listed == {str(i) for i in items}
    assert len(ado.queries) > 3
    # Halving starts at the oldest change in scope (asked with $top=1), not in the year 2000.
    assert "ORDER BY [System.ChangedDate] ASC" in ado.queries[1]
    bounds = [re.findall(r"\[System.ChangedDate\] [<>]=? '([^']+)'", q) for q in ado.queries[2:]]
    assert min(datetime.fromisoformat(b) for found in bounds for b in found) > datetime(
        2026, 1, 1, tzinfo=UTC
    )
    pages = list(connector.pages(FACTS, FetchPlan(full=True)))
    delivered = [item["id"] for page in pages for item in page.items]
    changed = [items[i]["fields"]["System.ChangedDate"] for i in delivered]
    assert sorted(delivered) == sorted(items) and changed == sorted(changed), "oldest first"


def test_chunks_run_across_window_ends(mock: Any) -> None:
    """Windows of a split listing feed one run of full chunks: as many batch calls as one long
    list would take, not a short chunk at each window's end."""
    items = {i: _work_item(i, f"2026-0{1 + i % 9}-1{i % 10}T00:00:00Z") for i in range(1, 61)}
    ado = FakeAdo(mock, items)
    ado.limit = 25
    connector = _connector(sync={"page_size": 20, "concurrency": 2})
    pages = list(connector.pages(FACTS, FetchPlan(full=True)))
    assert sum(1 for query in ado.queries if "ChangedDate] <" in query) > 1, "several windows"
    field_passes = [batch["ids"] for batch in ado.batches if "fields" in batch]
    assert [len(ids) for ids in field_passes][-3:] == [20, 20, 20]
    assert len(field_passes) == 3 + 1  # the oldest change, asked once for the halving
    changed = [item["fields"]["System.ChangedDate"] for page in pages for item in page.items]
    assert len(changed) == 60 and changed == sorted(changed)


def test_the_next_window_is_listed_while_the_first_is_still_downloading(mock: Any) -> None:
    """The listing runs ahead of the download: WIQL (a scan of the scope on the server) overlaps
    fetching, mapping and loading instead of waiting for the window before it to be consumed."""
    items = {i: _work_item(i, f"2026-0{1 + i % 9}-1{i % 10}T00:00:00Z") for i in range(1, 61)}
    ado = FakeAdo(mock, items)
    ado.limit = 25
    _connector().list_ids(FACTS)
    listing_queries = len(ado.queries)
    ado.queries.clear()
    first_download: list[tuple[bool, bool]] = []
    """(the listing was still going when it started, the listing ended while it waited)"""
    serve, answer = ado._batch, ado._wiql
    turn = threading.Lock()
    downloading = threading.Event()

    def later_windows_after_the_first_download(request: Any) -> tuple[int, dict[str, str], str]:
        if "ChangedDate] >=" in json.loads(request.body)["query"]:
            downloading.wait(2)
        return answer(request)

    def slow_first_batch(request: Any) -> tuple[int, dict[str, str], str]:
        halving_anchor = json.loads(request.body).get("fields") == ["System.ChangedDate"]
        with turn:
            first = not halving_anchor and not first_download
            if first:
                first_download.append((len(ado.queries) < listing_queries, False))
        if first:
            downloading.set()
            deadline = time.monotonic() + 5
            while len(ado.queries) < listing_queries and time.monotonic() < deadline:
                time.sleep(0.01)
            first_download[0] = (first_download[0][0], len(ado.queries) >= listing_queries)
        return serve(request)

    mock.remove(responses.POST, f"{API}/workitemsbatch")
    mock.add_callback(responses.POST, f"{API}/workitemsbatch", callback=slow_first_batch)
    mock.remove(responses.POST, f"{API}/wiql")
    mock.add_callback(
        responses.POST, f"{API}/wiql", callback=later_windows_after_the_first_download
    )
    connector = _connector(sync={"page_size": 2, "concurrency": 2})
    pages = list(connector.pages(FACTS, FetchPlan(full=True)))
    assert first_download == [(True, True)]
    assert sorted(item["id"] for page in pages for item in page.items) == sorted(items)


def test_partitions_listed_side_by_side_send_one_wiql_query_at_a_time(mock: Any) -> None:
    """Each query scans the scope on the server: several at once would all answer late."""
    items = {i: _work_item(i, f"2026-0{1 + i % 9}-1{i % 10}T00:00:00Z") for i in range(1, 61)}
    ado = FakeAdo(mock, items)
    answer, in_flight, most = ado._wiql, [0], [0]
    counting = threading.Lock()

    def slow_query(request: Any) -> tuple[int, dict[str, str], str]:
        with counting:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.05)
        with counting:
            in_flight[0] -= 1
        return answer(request)

    mock.remove(responses.POST, f"{API}/wiql")
    mock.add_callback(responses.POST, f"{API}/wiql", callback=slow_query)
    connector = _connector()
    partitions = connector.partitions(FACTS)
    with ThreadPoolExecutor(len(partitions)) as pool:
        fetched = pool.map(
            lambda part: list(connector.pages(FACTS, FetchPlan(full=True, partition=part))),
            partitions,
        )
        assert sum(len(page.items) for pages in fetched for page in pages) > 0
    assert len(partitions) > 1 and len(ado.queries) >= len(partitions)
    assert most[0] == 1


def test_halving_stops_with_a_clear_error_when_one_instant_is_too_big() -> None:
    instant = datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(TrackerError, match="within one millisecond"):
        TimeWindow(instant, instant).halves(datetime.now(UTC), SPLIT_ANCHOR)


def test_resume_lists_again_from_the_cursor(mock: Any) -> None:
    ado = FakeAdo(
        mock,
        {
            1: _work_item(1, "2026-11-01T08:00:00Z"),
            2: _work_item(2, "2026-11-02T08:00:00Z"),
            3: _work_item(3, "2026-11-03T08:00:00Z"),
        },
    )
    cursor = {"resume_from": "2026-11-02T08:00:00+00:00", "watermark": "2026-11-04T00:00:00+00:00"}
    pages = list(_connector().pages(FACTS, FetchPlan(full=True, cursor=cursor)))
    assert "[System.ChangedDate] >= '2026-11-02T08:00:00.000Z'" in ado.queries[0]
    assert [item["id"] for item in pages[0].items] == [2, 3]
    assert pages[-1].watermark == datetime(2026, 11, 4, tzinfo=UTC), "the run keeps its watermark"


def test_reconcile_after_a_full_fetch_reuses_its_listing(mock: Any) -> None:
    ado = FakeAdo(mock, {1: _work_item(1), 2: _work_item(2)})
    connector = _connector()
    list(connector.pages(FACTS, FetchPlan(full=True)))
    assert connector.list_ids(FACTS) == {"1", "2"}
    assert len(ado.queries) == 1, "no second scan of the scope"
    assert connector.list_ids(FACTS) == {"1", "2"} and len(ado.queries) == 2, "used once"
    since = datetime(2026, 11, 1, 7, tzinfo=UTC)
    list(connector.pages(FACTS, FetchPlan(full=False, since=since)))
    connector.list_ids(FACTS)
    assert len(ado.queries) == 4, "an incremental fetch lists only what changed"


def test_fetch_ids_reads_given_items_without_resume_state(mock: Any) -> None:
    FakeAdo(mock, {i: _work_item(i) for i in range(1, 251)})
    pages = list(_connector().fetch_ids(FACTS, ["7", "250", "3"]))
    assert [[item["id"] for item in page.items] for page in pages] == [[7, 250, 3]]
    assert (pages[0].cursor, pages[0].watermark, pages[0].expected) == (None, None, 3)
    assert not [c for c in mock.calls if "/wiql" in c.request.url], "no listing needed"


def test_items_deleted_after_listing_are_dropped(mock: Any) -> None:
    ado = FakeAdo(mock, {1: _work_item(1), 2: _work_item(2)})
    ado.deleted = {2}
    pages = list(_connector().pages(FACTS, FetchPlan(full=True)))
    assert [item["id"] for item in pages[0].items] == [1]


def test_updates_follow_top_and_skip_pages(mock: Any) -> None:
    ado = FakeAdo(mock, {})
    template = response_body(UPDATES)["value"][1]
    ado.updates = {7: [dict(template, id=n) for n in range(1, 451)]}
    found = _connector().updates(7)
    assert [u["id"] for u in found] == list(range(1, 451))
    skips = [_query(c.request)["$skip"] for c in mock.calls if "/updates" in c.request.url]
    assert skips == [["0"], ["200"], ["400"]]


def test_a_bad_wiql_names_the_problem(mock: Any) -> None:
    mock.post(
        f"{API}/wiql",
        status=400,
        json=_error(
            "TF51005: The query references a field that does not exist. The error is caused by "
            "«[System.Stat]».",
            "QueryException",
        ),
    )
    with pytest.raises(BadRequest, match=r"TF51005: .*System\.Stat"):
        _connector().list_ids(FACTS)
    # The fetch lists on a thread of its own; its error reaches the sync all the same.
    with pytest.raises(BadRequest, match=r"TF51005: .*System\.Stat"):
        list(_connector().pages(FACTS, FetchPlan(full=True)))


# --- rate limits ------------------------------------------------------------------------------


def test_retry_after_on_429_is_honoured(mock: Any) -> None:
    clock = FakeClock()
    blocked = _error(
        "TF400733: The request has been canceled: Request was blocked due to exceeding usage "
        "of resource 'WorkItemTracking' in namespace 'User'.",
        "RequestBlockedException",
    )
    mock.post(f"{API}/wiql", status=429, headers={"Retry-After": "7"}, json=blocked)
    mock.post(f"{API}/wiql", json=_wiql_answer([5]))
    assert _connector(clock).list_ids(FACTS) == {"5"}
    assert clock.slept and 7 <= clock.slept[0] < 7.6


def test_near_limit_headers_delay_the_next_request(mock: Any) -> None:
    """ADO warns before blocking: X-RateLimit-* plus Retry-After on a successful response."""
    clock = FakeClock()
    near = {
        "X-RateLimit-Resource": "WorkItemTracking",
        "X-RateLimit-Delay": "2.5",
        "X-RateLimit-Limit": "200",
        "X-RateLimit-Remaining": "3",
        "Retry-After": "4",
    }
    mock.post(f"{API}/wiql", json=_wiql_answer([5]), headers=near)
    connector = _connector(clock)
    connector.list_ids(FACTS)
    assert clock.slept == []
    mock.replace(responses.POST, f"{API}/wiql", json=_wiql_answer([5]))
    connector.list_ids(FACTS)
    assert clock.slept == [pytest.approx(4)], "the next call waits Retry-After before it is sent"
    assert connector.stats.near_limit == 1


# --- writing ----------------------------------------------------------------------------------


def test_update_sends_test_rev_first_and_returns_the_new_rev(mock: Any) -> None:
    reference = example(PATCHED)
    mock.patch(f"{API}/workitems/299", json=reference["responses"]["200"]["body"])
    new_rev = _connector().update_fields(299, {"Custom.WSJF": 4.5, "Custom.Health": None}, 1)
    assert new_rev == 2
    request = mock.calls[0].request
    assert request.headers["Content-Type"] == "application/json-patch+json"
    assert _query(request)["suppressNotifications"] == ["true"]
    patch = json.loads(request.body)
    assert (
        patch[0]
        == reference["parameters"]["body"][0]
        == {
            "op": "test",
            "path": "/rev",
            "value": 1,
        }
    )
    assert patch[1:] == [
        {"op": "add", "path": "/fields/Custom.WSJF", "value": 4.5},
        {"op": "remove", "path": "/fields/Custom.Health"},
    ]


def test_stale_rev_is_a_conflict_and_never_retried(mock: Any) -> None:
    mock.patch(f"{API}/workitems/299", status=412, json=STALE)
    with pytest.raises(Conflict) as caught:
        _connector().update_fields(299, {"Custom.WSJF": 4.5}, 1)
    assert caught.value.status == 412 and "VS403351" in str(caught.value)
    assert len(mock.calls) == 1


def test_notifications_are_sent_only_when_suppressing_is_refused(mock: Any) -> None:
    body = example(PATCHED)["responses"]["200"]["body"]
    denied = _error(
        "VS403376: You do not have permission to suppress notifications.",
        "UnauthorizedAccessException",
    )
    mock.patch(f"{API}/workitems/299", status=403, json=denied)
    mock.patch(f"{API}/workitems/299", json=body)
    mock.patch(f"{API}/workitems/299", json=dict(body, rev=3))
    connector = _connector()
    outcome = connector.write_values(FACTS, "299", {"wsjf": 4.5}, expected_rev=1)
    assert outcome.notified and outcome.note
    assert [_query(c.request).get("suppressNotifications") for c in mock.calls] == [["true"], None]
    connector.write_values(FACTS, "299", {"wsjf": 5.0})
    last = mock.calls[-1].request
    assert "suppressNotifications" not in _query(last), "not asked again once refused"
    assert json.loads(last.body)[0]["value"] == 2, "guarded by the rev the last write returned"


def test_write_values_is_guarded_by_the_rev_read_before(mock: Any) -> None:
    body = _work_item(299)
    body["rev"] = 6
    body["fields"].update({"System.Rev": 6, "Custom.WSJF": 3.0})
    mock.post(f"{API}/workitemsbatch", json={"count": 1, "value": [body]})
    mock.patch(f"{API}/workitems/299", json=example(PATCHED)["responses"]["200"]["body"])
    connector = _connector()
    assert connector.read_values(FACTS, ["299"], ["wsjf"]) == {"299": {"wsjf": 3.0, "rev": 6}}
    outcome = connector.write_values(FACTS, "299", {"wsjf": 4.5})
    assert not outcome.notified
    assert json.loads(mock.calls[-1].request.body)[0] == {"op": "test", "path": "/rev", "value": 6}
    with pytest.raises(ValueError, match="owns no field for progress"):
        connector.write_values(FACTS, "299", {"progress": 40})


def test_read_values_reads_the_backlog_order_as_rank(mock: Any) -> None:
    scrum = _work_item(5)
    scrum["rev"] = 2
    scrum["fields"].update({"Microsoft.VSTS.Common.BacklogPriority": 1999.5, "Custom.WSJF": 2.0})
    mock.post(f"{API}/workitemsbatch", json={"count": 1, "value": [scrum]})
    values = _connector().read_values(FACTS, ["5"], ["rank", "wsjf"])
    assert values == {"5": {"wsjf": 2.0, "rank": 1999.5, "rev": 2}}
    asked = json.loads(mock.calls[0].request.body)["fields"]
    assert {"Microsoft.VSTS.Common.StackRank", "Microsoft.VSTS.Common.BacklogPriority"} <= set(
        asked
    )


def test_rank_moves_spread_order_values_between_neighbours(mock: Any) -> None:
    ranks = {10: 1000.0, 11: 500.0, 20: 7000.0, 21: 9000.0}

    def batch(request: Any) -> tuple[int, dict[str, str], str]:
        ids = json.loads(request.body)["ids"]
        value = []
        for i in ids:
            item = _work_item(i)
            item["rev"] = 3
            item["fields"]["Microsoft.VSTS.Common.StackRank"] = ranks[i]
            value.append(item)
        return 200, {}, json.dumps({"count": len(value), "value": value})

    mock.add_callback(responses.POST, f"{API}/workitemsbatch", callback=batch)
    mock.post(f"{API}/wiql", json=_wiql_answer([11]))
    mock.add_callback(
        responses.PATCH,
        re.compile(rf"{API}/workitems/\d+"),
        callback=lambda request: (200, {}, json.dumps({"id": 1, "rev": 4})),
    )
    _connector().rank(FACTS, [RankMove(items=["20", "21"], before="10")])
    wiql = json.loads(next(c for c in mock.calls if "/wiql" in c.request.url).request.body)
    assert "[Microsoft.VSTS.Common.StackRank] < 1000.0000000000" in wiql["query"]
    patches = [
        (c.request.url.split("?")[0].rsplit("/", 1)[1], json.loads(c.request.body))
        for c in mock.calls
        if c.request.method == "PATCH"
    ]
    step = (1000.0 - 500.0) / 3
    assert patches == [
        (
            external_id,
            [
                {"op": "test", "path": "/rev", "value": 3},
                {"op": "add", "path": "/fields/Microsoft.VSTS.Common.StackRank", "value": value},
            ],
        )
        for external_id, value in (("20", 500 + step), ("21", 500 + 2 * step))
    ], "both land between 11 (500) and 10 (1000), in the order given"
