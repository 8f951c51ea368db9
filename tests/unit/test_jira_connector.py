"""The Jira connector over mocked HTTP: discovery, paging, splitting, errors, writes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from pydantic import SecretStr
from responses import matchers

from connectors.base import DiscoveryError, FetchPlan, RankMove
from connectors.http import (
    BadRequest,
    HttpClient,
    PermissionDenied,
    RetriesExhausted,
    RetryPolicy,
    TokenAuth,
)
from connectors.jira import DC_RESULT_WINDOW, UPDATED, JiraConnector, deployment_of, jql_time
from mapping.config import JiraSource
from mapping.jira import KEY_IDS, JiraMapper
from tests.unit.test_http import FakeClock

BASE = "https://contoso.atlassian.net"
DC = "https://jira.contoso.example"
TZ = "Europe/Berlin"
CATALOGUE = [
    {"id": "summary", "name": "Summary", "schema": {"type": "string"}, "clauseNames": ["summary"]},
    {"id": "fixVersions", "name": "Fix versions", "schema": {"type": "array", "items": "version"}},
    {"id": "customfield_10016", "name": "Story point estimate", "schema": {"type": "number"}},
    {"id": "customfield_10026", "name": "Story Points", "schema": {"type": "number"}},
    {"id": "customfield_10101", "name": "Business Value", "schema": {"type": "number"}},
    {"id": "customfield_10102", "name": "Team", "schema": {"type": "team"}},
    {"id": "customfield_10103", "name": "Team", "schema": {"type": "option"}},
    {"id": "customfield_10200", "name": "WSJF", "schema": {"type": "number"}},
    {"id": "customfield_10201", "name": "Portfolio Health", "schema": {"type": "option"}},
    {
        "id": "customfield_10019",
        "name": "Rank",
        "schema": {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-lexo-rank"},
    },
    {"id": "customfield_10014", "name": "Epic Link", "schema": {"type": "any"}},
]
TYPES = [
    {"id": "1", "name": "Portfolio Epic", "hierarchyLevel": 3},
    {"id": "2", "name": "Feature", "hierarchyLevel": 1},
    {"id": "3", "name": "Story", "hierarchyLevel": 0},
]
STATUSES = [
    {"id": "1", "name": "To Do", "statusCategory": {"key": "new"}},
    {"id": "3", "name": "In Progress", "statusCategory": {"key": "indeterminate"}},
    {"id": "5", "name": "Done", "statusCategory": {"key": "done"}},
]


def source(url: str = BASE, **overrides: Any) -> JiraSource:
    data: dict[str, Any] = {
        "name": "jira",
        "kind": "jira",
        "url": url,
        "auth": {"email": {"env": "JIRA_EMAIL"}, "token": {"env": "JIRA_TOKEN"}},
        "scope": "project in (ART, PORT) ORDER BY Rank",
        "levels": {"Portfolio Epic": "epic", "Feature": "feature", "Story": "story"},
        "fields": {"estimate": "Story point estimate", "business_value": "customfield_10101"},
        "writeback": {"wsjf": "WSJF", "health": "Portfolio Health", "rank": True},
    }
    data.update(overrides)
    return JiraSource.model_validate(data)


def connector(src: JiraSource | None = None, **http: Any) -> JiraConnector:
    src = src or source()
    client = HttpClient(
        src.base_url,
        auth=TokenAuth.bearer(SecretStr("pat")),
        clock=FakeClock(),
        policy=RetryPolicy(max_attempts=3, backoff_base=0.01),
        concurrency=src.sync.concurrency,
        **http,
    )
    return JiraConnector(src, client)


def discovery(url: str = BASE, deployment: str = "Cloud", catalogue: list[Any] = CATALOGUE) -> str:
    api = "3" if deployment == "Cloud" else "2"
    if deployment == "Cloud":
        responses.post(f"{url}/rest/api/3/search/approximate-count", json={"count": 0})
    info = {
        "baseUrl": url,
        "versionNumbers": [1001, 0, 0] if deployment == "Cloud" else [9, 12, 15],
        "deploymentType": deployment,
        "serverTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
    }
    responses.get(f"{url}/rest/api/2/serverInfo", json=info)
    responses.get(f"{url}/rest/api/{api}/myself", json={"accountId": "x", "timeZone": TZ})
    responses.get(f"{url}/rest/api/{api}/field", json=catalogue)
    responses.get(f"{url}/rest/api/{api}/issuetype", json=TYPES)
    responses.get(f"{url}/rest/api/{api}/status", json=STATUSES)
    return api


def raw_issue(n: int, created: datetime | None = None, **fields: Any) -> dict[str, Any]:
    created = created or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    base = {
        "summary": f"Item {n}",
        "issuetype": {"name": "Story"},
        "status": {"id": "1", "name": "To Do", "statusCategory": {"key": "new"}},
        "created": stamp,
        "updated": stamp,
        "labels": [],
    }
    base.update(fields)
    return {"id": str(10_000 + n), "key": f"ART-{n}", "fields": base}


class CloudSearch:
    """search/jql (id pass, token chain) and issue/bulkfetch over `count` issues."""

    def __init__(self, count: int, page: int = 5000) -> None:
        self.issues = [raw_issue(n) for n in range(count)]
        self.page = page
        self.searches: list[dict[str, Any]] = []
        self.bulk: list[dict[str, Any]] = []

    def search(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.searches.append(body)
        offset = int(body.get("nextPageToken") or 0)
        size = min(int(body["maxResults"]), self.page)
        chunk = self.issues[offset : offset + size]
        out: dict[str, Any] = {"issues": [{"id": i["id"]} for i in chunk]}
        if offset + size < len(self.issues):
            out.update(nextPageToken=str(offset + size), isLast=False)
        else:
            out["isLast"] = True
        return 200, {}, json.dumps(out)

    def bulkfetch(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.bulk.append(body)
        assert len(body["issueIdsOrKeys"]) <= 100
        by_id = {i["id"]: i for i in self.issues}
        found = [by_id[i] for i in body["issueIdsOrKeys"] if i in by_id]
        return 200, {}, json.dumps({"issues": found, "issueErrors": []})

    def install(self, url: str = BASE) -> None:
        responses.upsert(
            "POST",
            f"{url}/rest/api/3/search/approximate-count",
            json={"count": len(self.issues)},
        )
        responses.add_callback("POST", f"{url}/rest/api/3/search/jql", callback=self.search)
        responses.add_callback("POST", f"{url}/rest/api/3/issue/bulkfetch", callback=self.bulkfetch)


# --- discovery -------------------------------------------------------------------------------


@responses.activate
def test_discovery_on_cloud_resolves_fields_zone_types_and_rank() -> None:
    discovery()
    facts = connector().discover()
    assert facts.deployment == "cloud"
    assert facts.time_zone == TZ
    assert facts.fields["estimate"].id == "customfield_10016"
    assert facts.fields["business_value"].id == "customfield_10101"
    assert {a: f.id for a, f in facts.writeback.items()} == {
        "wsjf": "customfield_10200",
        "health": "customfield_10201",
    }
    assert facts.rank_field is not None and facts.rank_field.id == "customfield_10019"
    assert facts.issue_types == {"Portfolio Epic": 3, "Feature": 1, "Story": 0}
    assert facts.status_categories == {"1": "new", "3": "indeterminate", "5": "done"}


@responses.activate
def test_discovery_on_data_center_speaks_api_2() -> None:
    discovery(DC, "Server")
    facts = connector(source(DC)).discover()
    assert facts.deployment == "datacenter"
    assert {c.request.url.split("/rest/api/")[1][0] for c in responses.calls} == {"2"}


def test_deployment_detection_without_deployment_type() -> None:
    assert deployment_of({"versionNumbers": [1001, 0, 0]}, DC) == "cloud"
    assert deployment_of({"versionNumbers": [9, 4, 0]}, DC) == "datacenter"
    assert deployment_of({}, "https://x.atlassian.net") == "cloud"


@responses.activate
def test_field_names_matching_none_or_several_are_config_errors_naming_candidates() -> None:
    discovery()
    src = source(
        fields={"estimate": "Story Point Estimates", "team": "Team"},
        levels={"Portfolio Epic": "epic", "Initiative": "theme"},
    )
    with pytest.raises(DiscoveryError) as caught:
        connector(src).discover()
    problems = caught.value.problems
    assert any(
        "fields.estimate: no Jira field is named or has the id 'Story Point Estimates'" in p
        and "similar: Story point estimate (customfield_10016)" in p
        for p in problems
    )
    assert any(
        "fields.team: 'Team' matches 2 Jira fields: customfield_10102 (team), "
        "customfield_10103 (option); write the id" in p
        for p in problems
    )
    assert any("levels: Jira has no issue type 'Initiative'" in p for p in problems)


# --- Cloud fetch -----------------------------------------------------------------------------


@responses.activate
def test_cloud_full_fetch_walks_ids_and_bulk_fetches_in_order() -> None:
    discovery()
    site = CloudSearch(7_250)
    site.install()
    conn = connector()
    facts = conn.discover()
    pages = list(conn.pages(facts, FetchPlan(full=True)))
    delivered = [i["id"] for p in pages for i in p.items]
    assert delivered == [i["id"] for i in site.issues]
    assert [len(p.items) for p in pages[:-1]] == [100] * 72 + [50]
    assert pages[-1].items == [] and pages[-1].watermark is not None
    assert {p.expected for p in pages} == {7_250}
    assert all(p.watermark is None for p in pages[:-1])
    # id pass: 5,000 ids a page, the token chain followed, the scope without its ORDER BY.
    assert [s["maxResults"] for s in site.searches] == [5000, 5000]
    assert site.searches[1]["nextPageToken"] == "5000"
    jql = site.searches[0]["jql"]
    assert jql == (
        '(project in (ART, PORT)) AND issuetype in ("Portfolio Epic", "Feature", "Story")'
        " ORDER BY created ASC, key ASC"
    )
    assert site.searches[0]["fields"] == ["id"]
    # Only the fields the mapping reads.
    assert site.bulk[0]["fields"] == facts.fetch_fields()
    assert "expand" not in site.bulk[0]
    # The cursor after the last page points at the newest created delivered.
    assert pages[-2].cursor is not None
    assert pages[-2].cursor["resume_from"] == "2026-01-06T00:49:00+00:00"


@responses.activate
def test_incremental_fetch_filters_by_updated_in_the_users_zone_and_expands_changelog() -> None:
    discovery()
    site = CloudSearch(3)
    truncated = site.issues[1]
    truncated["changelog"] = {"startAt": 0, "maxResults": 1, "total": 3, "histories": [{"id": "1"}]}
    site.install()
    changelogs: list[dict[str, Any]] = []

    def bulk_changelog(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        changelogs.append(body)
        page = {
            "issueChangeLogs": [
                {
                    "issueId": truncated["id"],
                    "changeHistories": [{"id": str(n)} for n in range(1, 4)]
                    if "nextPageToken" not in body
                    else [{"id": "4"}],
                }
            ],
        }
        if "nextPageToken" not in body:
            page["nextPageToken"] = "next"
        return 200, {}, json.dumps(page)

    responses.add_callback(
        "POST", f"{BASE}/rest/api/3/changelog/bulkfetch", callback=bulk_changelog
    )
    conn = connector()
    facts = conn.discover()
    since = datetime(2026, 3, 29, 0, 59, 30, tzinfo=UTC)  # 02:59 CET; 03:59 CEST after the jump
    pages = list(conn.pages(facts, FetchPlan(full=False, since=since)))
    assert 'AND updated >= "2026/03/29 01:59"' in site.searches[0]["jql"]
    assert site.bulk[0]["expand"] == ["changelog"]
    assert changelogs[0]["issueIdsOrKeys"] == [truncated["id"]]
    assert "status" in changelogs[0]["fieldIds"] and len(changelogs[0]["fieldIds"]) <= 10
    full = next(i for p in pages for i in p.items if i["id"] == truncated["id"])
    assert [h["id"] for h in full["changelog"]["histories"]] == ["1", "2", "3", "4"]
    assert pages[-1].cursor is not None and pages[-1].cursor["mode"] == "incremental"


def test_jql_time_is_minutes_in_the_zone_and_earlier_in_a_repeated_hour() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo(TZ)
    assert jql_time(datetime(2026, 7, 1, 10, 30, 59, tzinfo=UTC), berlin) == "2026/07/01 12:30"
    # 00:30 UTC on 25 Oct 2026 is 02:30 CEST, and 02:30 happens twice that night.
    assert jql_time(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), berlin) == "2026/10/25 01:30"


@responses.activate
def test_a_resumed_fetch_continues_from_the_cursor() -> None:
    discovery()
    site = CloudSearch(10)
    site.install()
    conn = connector()
    facts = conn.discover()
    as_of = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    cursor = {
        "v": 1,
        "mode": "full",
        "as_of": as_of.isoformat(),
        "since": None,
        "resume_from": "2026-01-01T00:05:10+00:00",
    }
    pages = list(conn.pages(facts, FetchPlan(full=True, cursor=cursor)))
    assert 'AND created >= "2026/01/01 01:05"' in site.searches[0]["jql"]
    assert pages[-1].watermark == as_of


@responses.activate
def test_bulkfetch_issue_errors_are_asked_again() -> None:
    discovery()
    issues = [raw_issue(n) for n in range(3)]
    responses.post(
        f"{BASE}/rest/api/3/search/jql",
        json={"issues": [{"id": i["id"]} for i in issues], "isLast": True},
    )
    responses.post(
        f"{BASE}/rest/api/3/issue/bulkfetch",
        json={"issues": issues[:2], "issueErrors": [{"id": issues[2]["id"], "errorMessage": "x"}]},
    )
    responses.post(
        f"{BASE}/rest/api/3/issue/bulkfetch",
        json={"issues": issues[2:], "issueErrors": []},
        match=[
            matchers.json_params_matcher({"issueIdsOrKeys": [issues[2]["id"]]}, strict_match=False)
        ],
    )
    conn = connector()
    pages = list(conn.pages(conn.discover(), FetchPlan(full=True)))
    assert sorted(i["id"] for p in pages for i in p.items) == [i["id"] for i in issues]


@responses.activate
def test_bad_jql_is_quoted_back() -> None:
    discovery()
    responses.post(
        f"{BASE}/rest/api/3/search/jql",
        status=400,
        json={"errorMessages": ["Error in the JQL Query: Expecting ')' but got 'ORDER'."]},
    )
    conn = connector(source(scope="project in (ART"))
    facts = conn.discover()
    with pytest.raises(BadRequest) as caught:
        list(conn.pages(facts, FetchPlan(full=True)))
    message = str(caught.value)
    assert "Jira rejected the JQL '(project in (ART) AND issuetype in" in message
    assert "Expecting ')' but got 'ORDER'." in message
    assert "check `scope`" in message
    assert len([c for c in responses.calls if "search/jql" in c.request.url]) == 1


@responses.activate
def test_missing_permission_is_named() -> None:
    discovery()
    responses.post(f"{BASE}/rest/api/3/search/jql", status=403, json={"errorMessages": []})
    conn = connector()
    with pytest.raises(PermissionDenied, match="Browse projects"):
        conn.list_ids(conn.discover())


@responses.activate
def test_a_page_that_keeps_failing_stops_the_fetch_after_the_pages_before() -> None:
    discovery()
    issues = [raw_issue(n) for n in range(150)]
    responses.post(
        f"{BASE}/rest/api/3/search/jql",
        json={"issues": [{"id": i["id"]} for i in issues], "isLast": True},
    )
    responses.post(
        f"{BASE}/rest/api/3/issue/bulkfetch",
        json={"issues": issues[:100], "issueErrors": []},
        match=[
            matchers.json_params_matcher(
                {"issueIdsOrKeys": [i["id"] for i in issues[:100]]}, strict_match=False
            )
        ],
    )
    responses.post(f"{BASE}/rest/api/3/issue/bulkfetch", status=503)
    conn = connector()
    pages = conn.pages(conn.discover(), FetchPlan(full=True))
    assert len(next(pages).items) == 100
    with pytest.raises(RetriesExhausted):
        next(pages)


@responses.activate
def test_list_ids_walks_the_whole_scope() -> None:
    discovery()
    site = CloudSearch(12_001)
    site.install()
    conn = connector()
    ids = conn.list_ids(conn.discover())
    assert ids == {i["id"] for i in site.issues}
    assert len(site.searches) == 3 and "updated" not in site.searches[0]["jql"]


# --- Data Center -----------------------------------------------------------------------------


class DcSearch:
    """/rest/api/2/search with startAt and the 10,000 result window."""

    def __init__(self, count: int) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        # Ten issues a minute, so continuing from a minute re-reads a few.
        self.issues = [raw_issue(n, start + timedelta(seconds=6 * n)) for n in range(count)]
        self.requests: list[dict[str, Any]] = []

    def search(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.requests.append(body)
        start, size = int(body["startAt"]), int(body["maxResults"])
        if start + size > DC_RESULT_WINDOW:
            return 500, {}, json.dumps({"message": "Search limit exceeded."})
        matching = self.issues
        found = re.search(r'created >= "([^"]+)"', body["jql"])
        if found:
            lower = datetime.strptime(found.group(1), "%Y/%m/%d %H:%M").replace(
                tzinfo=UTC
            ) - timedelta(hours=1)  # Europe/Berlin in winter
            matching = [
                i for i in self.issues if datetime.fromisoformat(i["fields"]["created"]) >= lower
            ]
        page = matching[start : start + size]
        return (
            200,
            {},
            json.dumps(
                {"startAt": start, "maxResults": size, "total": len(matching), "issues": page}
            ),
        )


@responses.activate
def test_data_center_splits_queries_that_would_pass_10000_results() -> None:
    discovery(DC, "Server")
    site = DcSearch(12_345)
    responses.add_callback("POST", f"{DC}/rest/api/2/search", callback=site.search)
    conn = connector(source(DC, sync={"page_size": 1000}))
    pages = list(conn.pages(conn.discover(), FetchPlan(full=True)))
    delivered = [i["id"] for p in pages for i in p.items]
    assert set(delivered) == {i["id"] for i in site.issues}
    assert all(r["startAt"] + r["maxResults"] <= DC_RESULT_WINDOW for r in site.requests)
    second = [r for r in site.requests if "created >=" in r["jql"]]
    assert second and second[0]["startAt"] == 0
    # The second query starts at the minute of the last issue of the first window.
    last = datetime.fromisoformat(site.issues[9_999]["fields"]["created"]).astimezone()
    assert f'created >= "{jql_time(last, __import__("zoneinfo").ZoneInfo(TZ))}"' in second[0]["jql"]
    assert len(delivered) - len(set(delivered)) < 20  # only the shared minute comes twice


@responses.activate
def test_data_center_epic_link_keys_are_resolved_to_ids() -> None:
    discovery(DC, "Server")
    epic = raw_issue(1, issuetype={"name": "Portfolio Epic"})
    story = raw_issue(2, customfield_10014="ART-77")
    responses.post(
        f"{DC}/rest/api/2/search",
        json={"startAt": 0, "maxResults": 0, "total": 2, "issues": []},
        match=[matchers.json_params_matcher({"maxResults": 0}, strict_match=False)],
    )
    responses.post(
        f"{DC}/rest/api/2/search",
        json={"startAt": 0, "maxResults": 100, "total": 2, "issues": [epic, story]},
        match=[matchers.json_params_matcher({"startAt": 0, "maxResults": 100}, strict_match=False)],
    )
    lookups: list[str] = []

    def lookup(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        lookups.append(body["jql"])
        found = {"id": "10077", "key": "ART-77", "fields": {}}
        return 200, {}, json.dumps({"startAt": 0, "maxResults": 1, "total": 1, "issues": [found]})

    responses.add_callback("POST", f"{DC}/rest/api/2/search", callback=lookup)
    src = source(DC, fields={"epic_link": "Epic Link"})
    conn = connector(src)
    facts = conn.discover()
    pages = list(conn.pages(facts, FetchPlan(full=True)))
    story_raw = pages[0].items[1]
    assert story_raw[KEY_IDS] == {"ART-77": "10077"}
    assert lookups == ["key in (ART-77)"]
    assert JiraMapper(src, facts).map(story_raw).parent_external_id == "10077"


# --- write-back ------------------------------------------------------------------------------


@responses.activate
def test_edits_suppress_notifications_and_fall_back_when_not_allowed() -> None:
    discovery()
    conn = connector()
    facts = conn.discover()
    url = f"{BASE}/rest/api/3/issue/10001"
    responses.put(
        url,
        status=204,
        match=[
            matchers.query_param_matcher({"notifyUsers": "false"}),
            matchers.json_params_matcher(
                {"fields": {"customfield_10200": 13.5, "customfield_10201": {"value": "at-risk"}}}
            ),
        ],
    )
    outcome = conn.write_values(facts, "10001", {"wsjf": 13.5, "health": "at-risk"})
    assert not outcome.notified
    responses.put(
        f"{BASE}/rest/api/3/issue/10002",
        status=403,
        json={
            "errorMessages": [
                "To discard the user notification either admin or project admin permissions "
                "are required."
            ]
        },
        match=[matchers.query_param_matcher({"notifyUsers": "false"})],
    )
    responses.put(
        f"{BASE}/rest/api/3/issue/10002", status=204, match=[matchers.query_param_matcher({})]
    )
    outcome = conn.write_values(facts, "10002", {"wsjf": 1})
    assert outcome.notified and outcome.note is not None and "notified" in outcome.note


@responses.activate
def test_edit_without_permission_names_it() -> None:
    discovery()
    conn = connector()
    facts = conn.discover()
    responses.put(
        f"{BASE}/rest/api/3/issue/10003",
        status=403,
        json={"errorMessages": ["You do not have permission to edit issues in this project."]},
    )
    with pytest.raises(PermissionDenied, match="Edit issues"):
        conn.write_values(facts, "10003", {"wsjf": 2})


@responses.activate
def test_rank_moves_go_in_batches_of_50_keeping_order() -> None:
    discovery()
    conn = connector()
    facts = conn.discover()
    bodies: list[dict[str, Any]] = []

    def rank(request: Any) -> tuple[int, dict[str, str], str]:
        bodies.append(json.loads(request.body))
        return 204, {}, ""

    responses.add_callback("PUT", f"{BASE}/rest/agile/1.0/issue/rank", callback=rank)
    items = [f"ART-{n}" for n in range(120)]
    conn.rank(facts, [RankMove(items, before="ART-999")])
    assert [len(b["issues"]) for b in bodies] == [50, 50, 20]
    assert bodies[0]["rankBeforeIssue"] == "ART-999"
    assert bodies[1]["rankAfterIssue"] == "ART-49" and bodies[2]["rankAfterIssue"] == "ART-99"
    assert all(b["rankCustomFieldId"] == 10019 for b in bodies)


@responses.activate
def test_rank_partial_failure_is_reported() -> None:
    discovery()
    conn = connector()
    facts = conn.discover()
    responses.put(
        f"{BASE}/rest/agile/1.0/issue/rank",
        status=207,
        json={
            "entries": [
                {"issueKey": "ART-1", "status": 200},
                {"issueKey": "ART-2", "status": 404, "errors": ["Issue 'ART-2' does not exist."]},
            ]
        },
    )
    with pytest.raises(Exception, match=r"ART-2: Issue 'ART-2' does not exist\."):
        conn.rank(facts, [RankMove(["ART-1", "ART-2"], after="ART-0")])


@responses.activate
def test_read_values_reads_what_the_mapper_reads() -> None:
    discovery()
    conn = connector()
    facts = conn.discover()
    responses.post(
        f"{BASE}/rest/api/3/issue/bulkfetch",
        json={
            "issues": [
                {
                    "id": "10001",
                    "key": "ART-1",
                    "fields": {
                        "customfield_10200": 7,
                        "customfield_10201": {"value": "on-track"},
                        "customfield_10019": "0|a",
                        "updated": "2026-11-21T13:00:00.250+0100",
                    },
                },
            ],
            "issueErrors": [],
        },
    )
    values = conn.read_values(facts, ["10001"], ["wsjf", "health", "rank"])
    read_at = datetime(2026, 11, 21, 12, 0, 0, 250000, tzinfo=UTC)
    assert values == {"10001": {"wsjf": 7.0, "health": "on-track", "rank": "0|a", UPDATED: read_at}}
