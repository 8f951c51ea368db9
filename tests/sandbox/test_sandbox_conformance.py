"""Every sandbox response a connector uses validates against the vendors' published schemas.

Jira: Atlassian's platform OpenAPI (responses by operation, nested issue fields by component
schema) and the Jira Software spec for rank; Azure DevOps: Microsoft's WIT 7.1 spec and its
HTTP examples. The `jira` package's own client must read the sandbox unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from jsonschema import Draft4Validator

from sandbox.process import JIRA_CATEGORY
from sandbox.server import Sandbox, serve
from tests.sandbox.spec import (
    JIRA_PLATFORM,
    JIRA_SOFTWARE,
    ado_definition,
    ado_example,
    ado_response,
    jira_response,
    jira_schema,
    require,
    same_shape,
    software_operation,
    software_schema,
)

V = {"api-version": "7.1"}
ADO = "/{organization}/{project}/_apis/wit"


@pytest.fixture(scope="module")
def jira_sb() -> Iterator[Sandbox]:
    require(JIRA_PLATFORM)
    with serve("jira", items=600, seed=61) as sb:
        yield sb


@pytest.fixture(scope="module")
def ado_sb() -> Iterator[Sandbox]:
    with serve("azure_devops", items=600, seed=62) as sb:
        yield sb


def jira_http(sb: Sandbox) -> requests.Session:
    s = requests.Session()
    s.auth = (sb.email, sb.token)
    return s


def check_issue_fields(issue: dict[str, Any]) -> None:
    """Inside `fields` (free-form in IssueBean) each known object has its own schema."""
    f = issue.get("fields", {})
    for name, schema in (
        ("status", "StatusDetails"),
        ("issuetype", "IssueTypeDetails"),
        ("project", "ProjectDetails"),
        ("priority", "Priority"),
        ("assignee", "UserDetails"),
        ("reporter", "UserDetails"),
        ("creator", "UserDetails"),
        ("resolution", "Resolution"),
        ("watches", "Watchers"),
        ("votes", "Votes"),
    ):
        if f.get(name) is not None:
            jira_schema(schema, f[name])
    for version in f.get("fixVersions") or []:
        jira_schema("Version", version)
    parent = f.get("parent")
    if parent:
        jira_schema("StatusDetails", parent["fields"]["status"])
        jira_schema("IssueTypeDetails", parent["fields"]["issuetype"])


def test_jira_search_pages_validate(jira_sb: Sandbox) -> None:
    http = jira_http(jira_sb)
    scope = jira_sb.source_config()["scope"]
    params = {"jql": scope, "fields": "*all", "expand": "changelog,names,schema", "maxResults": 100}
    page = http.get(f"{jira_sb.url}/rest/api/3/search/jql", params=params).json()
    jira_response("/rest/api/3/search/jql", "get", "200", page)
    for issue in page["issues"]:
        check_issue_fields(issue)
    body = {
        "jql": scope,
        "fields": ["summary", "parent", "status"],
        "maxResults": 50,
        "nextPageToken": page["nextPageToken"],
    }
    Draft4Validator(_request_schema("SearchAndReconcileRequestBean")).validate(body)
    posted = http.post(f"{jira_sb.url}/rest/api/3/search/jql", json=body).json()
    jira_response("/rest/api/3/search/jql", "post", "200", posted)
    ids = http.get(
        f"{jira_sb.url}/rest/api/3/search/jql", params={"jql": scope, "maxResults": 5000}
    ).json()
    jira_response("/rest/api/3/search/jql", "get", "200", ids)
    count_request = {"jql": scope}
    Draft4Validator(_request_schema("JQLCountRequestBean")).validate(count_request)
    count = http.post(f"{jira_sb.url}/rest/api/3/search/approximate-count", json=count_request)
    jira_response("/rest/api/3/search/approximate-count", "post", "200", count.json())
    assert count.json()["count"] == len(ids["issues"])


def test_jira_issue_and_site_metadata_validate(jira_sb: Sandbox) -> None:
    http = jira_http(jira_sb)
    base = f"{jira_sb.url}/rest/api/3"
    moved = next(iter(jira_sb.portfolio.moves))
    key = jira_sb.portfolio.key(moved)
    issue = http.get(f"{base}/issue/{key}", params={"expand": "changelog,names,schema"}).json()
    jira_response("/rest/api/3/issue/{issueIdOrKey}", "get", "200", issue)
    check_issue_fields(issue)
    jira_response("/rest/api/3/field", "get", "200", http.get(f"{base}/field").json())
    jira_response("/rest/api/3/issuetype", "get", "200", http.get(f"{base}/issuetype").json())
    projects = http.get(
        f"{base}/project/search",
        params={"expand": "description,lead,issueTypes,insight", "maxResults": 2},
    ).json()
    jira_response("/rest/api/3/project/search", "get", "200", projects)
    jira_response("/rest/api/3/myself", "get", "200", http.get(f"{base}/myself").json())
    jira_response("/rest/api/3/serverInfo", "get", "200", http.get(f"{base}/serverInfo").json())
    changelog = http.get(f"{base}/issue/{key}/changelog", params={"maxResults": 1}).json()
    jira_response("/rest/api/3/issue/{issueIdOrKey}/changelog", "get", "200", changelog)
    http.put(f"{base}/issue/{key}/properties/lpm", json={"v": 1})
    keys = http.get(f"{base}/issue/{key}/properties").json()
    jira_response("/rest/api/3/issue/{issueIdOrKey}/properties", "get", "200", keys)
    prop = http.get(f"{base}/issue/{key}/properties/lpm").json()
    jira_response("/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}", "get", "200", prop)


def test_jira_status_catalogue_validates_and_covers_every_status(jira_sb: Sandbox) -> None:
    """`GET /status` lists every status the portfolio uses, cancelled ones included, in the
    Jira category of its ground-truth phase (removed statuses sit in Jira's `done`)."""
    http = jira_http(jira_sb)
    process = jira_sb.portfolio.process
    expected = {s.jira_id: (s.name, JIRA_CATEGORY[s.phase]) for s in process.statuses}
    for version in ("3", "2"):
        url = f"{jira_sb.url}/rest/api/{version}/status"
        assert requests.get(url, timeout=10).status_code == 401
        body = http.get(url).json()
        jira_response("/rest/api/3/status", "get", "200", body)
        for status in body:
            jira_schema("StatusDetails", status)
        served = {s["id"]: (s["name"], s["statusCategory"]["key"]) for s in body}
        assert served == expected
    used = {(t.status, t.status_category) for t in jira_sb.ground_truth()}
    by_name = {(s.name, s.phase) for s in process.statuses}
    assert used <= by_name and any(phase == "removed" for _, phase in used)


def test_jira_bulk_reads_validate(jira_sb: Sandbox) -> None:
    http = jira_http(jira_sb)
    base = f"{jira_sb.url}/rest/api/3"
    keys = [t.key for t in jira_sb.ground_truth() if not t.deleted][:60]
    request = {"issueIdsOrKeys": keys, "fieldIds": ["status"], "maxResults": 20}
    Draft4Validator(_request_schema("BulkChangelogRequestBean")).validate(request)
    logs = http.post(f"{base}/changelog/bulkfetch", json=request).json()
    jira_response("/rest/api/3/changelog/bulkfetch", "post", "200", logs)
    fetch = {"issueIdsOrKeys": keys[:10], "fields": ["summary", "status"], "expand": ["changelog"]}
    Draft4Validator(_request_schema("BulkFetchIssueRequestBean")).validate(fetch)
    issues = http.post(f"{base}/issue/bulkfetch", json=fetch).json()
    jira_response("/rest/api/3/issue/bulkfetch", "post", "200", issues)


def test_jira_errors_validate_as_error_collections(jira_sb: Sandbox) -> None:
    http = jira_http(jira_sb)
    base = f"{jira_sb.url}/rest/api/3"
    bad_search = http.get(f"{base}/search/jql", params={"jql": "order by key"})
    jira_schema("ErrorCollection", bad_search.json())
    key = next(t.key for t in jira_sb.ground_truth() if not t.deleted)
    edit = {"fields": {"customfield_1": 1}}
    Draft4Validator(_request_schema("IssueUpdateDetails")).validate(edit)
    bad_edit = http.put(f"{base}/issue/{key}", json=edit)
    assert bad_edit.status_code == 400
    jira_schema("ErrorCollection", bad_edit.json())
    jira_schema("ErrorCollection", http.get(f"{base}/issue/NOPE-1").json())
    jira_schema("ErrorCollection", requests.get(f"{base}/myself", timeout=10).json())


def test_jira_rank_follows_the_software_spec(jira_sb: Sandbox) -> None:
    require(JIRA_SOFTWARE)
    http = jira_http(jira_sb)
    epics = [t.key for t in jira_sb.ground_truth() if t.level == "epic" and not t.deleted]
    schema = software_schema("IssueRankRequestBean")
    request = {"issues": [epics[1], "NOPE-1"], "rankBeforeIssue": epics[0]}
    Draft4Validator(schema).validate(request)
    r = http.put(f"{jira_sb.url}/rest/agile/1.0/issue/rank", json=request)
    operation = software_operation("/rest/agile/1.0/issue/rank", "put")
    assert str(r.status_code) in operation["responses"]
    example = json.loads(operation["responses"]["207"]["content"]["application/json"]["example"])
    assert r.status_code == 207
    assert same_shape(example, r.json()) == []
    ok = http.put(
        f"{jira_sb.url}/rest/agile/1.0/issue/rank",
        json={"issues": [epics[2]], "rankAfterIssue": epics[0]},
    )
    assert ok.status_code == 204 and not ok.content


def test_jira_data_center_search_validates() -> None:
    require(JIRA_PLATFORM)
    with serve("jira", items=300, seed=63, deployment="datacenter") as dc:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {dc.pat}"
        page = http.get(
            f"{dc.url}/rest/api/2/search",
            params={"jql": "project = PAY", "maxResults": 50, "expand": "names"},
        ).json()
        jira_response("/rest/api/3/search", "get", "200", page)
        for issue in page["issues"]:
            check_issue_fields(issue)
        statuses = http.get(f"{dc.url}/rest/api/2/status").json()
        jira_response("/rest/api/3/status", "get", "200", statuses)
        assert len(statuses) == len(dc.portfolio.process.statuses)


def _request_schema(name: str) -> dict[str, Any]:
    doc = json.loads(require(JIRA_PLATFORM).read_text())
    schema: dict[str, Any] = doc["components"]["schemas"][name]
    return schema


def test_jira_package_client_reads_the_sandbox(jira_sb: Sandbox) -> None:
    jira_module = pytest.importorskip("jira")
    client = jira_module.JIRA(
        server=jira_sb.url, basic_auth=(jira_sb.email, jira_sb.token), max_retries=0
    )
    assert client._is_cloud
    scope = jira_sb.source_config()["scope"]
    everything = client.enhanced_search_issues(scope, maxResults=0)
    live = {t.external_id for t in jira_sb.ground_truth() if not t.deleted}
    assert {i.id for i in everything} == live
    page = client.enhanced_search_issues(scope + " ORDER BY key", maxResults=25)
    assert len(page) == 25 and page.nextPageToken
    nxt = client.enhanced_search_issues(
        scope + " ORDER BY key", maxResults=25, nextPageToken=page.nextPageToken
    )
    assert not {i.key for i in page} & {i.key for i in nxt}
    named = client.enhanced_search_issues(
        "project = PAY", maxResults=10, fields=["summary", "Story point estimate"]
    )
    estimate_id = jira_sb.api.site.cf["Story point estimate"]  # type: ignore[attr-defined]
    assert all(
        "Story point estimate" in i.raw["fields"] or estimate_id in i.raw["fields"] for i in named
    )
    truth = next(t for t in jira_sb.ground_truth() if t.level == "feature" and not t.deleted)
    issue = client.issue(truth.key)
    assert issue.fields.summary == truth.title and issue.fields.status.name == truth.status
    assert issue.fields.issuetype.hierarchyLevel == 1
    assert any(f["name"] == "Rank" for f in client.fields())
    epics = [t.key for t in jira_sb.ground_truth() if t.level == "epic" and not t.deleted]
    client.rank(epics[3], next_issue=epics[4])
    ranks = {t.key: t.rank for t in jira_sb.ground_truth()}
    assert ranks[epics[3]] < ranks[epics[4]]


def test_jira_package_client_reads_data_center() -> None:
    jira_module = pytest.importorskip("jira")
    with serve("jira", items=400, seed=64, deployment="datacenter") as dc:
        client = jira_module.JIRA(server=dc.url, token_auth=dc.pat, max_retries=0)
        assert not client._is_cloud
        issues = client.search_issues("project in (PORT, PAY, MOB, DATA)", maxResults=False)
        assert {i.id for i in issues} == {t.external_id for t in dc.ground_truth() if not t.deleted}


def test_ado_query_and_reads_validate(ado_sb: Sandbox) -> None:
    http = requests.Session()
    http.auth = ("", ado_sb.pat)
    base = f"{ado_sb.url}/Fabrikam/_apis/wit"
    query = (
        "SELECT [System.Id], [System.Title], [System.State] FROM WorkItems "
        "WHERE [System.WorkItemType] = 'Feature' "
        "ORDER BY [Microsoft.VSTS.Common.Priority] ASC, [System.CreatedDate] DESC"
    )
    result = http.post(f"{base}/wiql", params=V, json={"query": query}).json()
    ado_response("/{organization}/{project}/{team}/_apis/wit/wiql", "post", result)
    assert (
        same_shape(
            ado_example("wiql/GET__wit_get_id_workitems.json")["responses"]["200"]["body"], result
        )
        == []
    )
    ids = [w["id"] for w in result["workItems"]][:50]
    batch = http.post(
        f"{base}/workitemsbatch", params=V, json={"ids": ids, "$expand": "relations"}
    ).json()
    ado_response(f"{ADO}/workitemsbatch", "post", batch)
    example = ado_example("workItemsBatch/POST__wit_WorkItemsBatch_ids-_ids__fields-_columns_.json")
    fields_batch = http.post(
        f"{base}/workitemsbatch",
        params=V,
        json={"ids": ids[:3], "fields": example["parameters"]["body"]["fields"]},
    ).json()
    ado_response(f"{ADO}/workitemsbatch", "post", fields_batch)
    assert (
        same_shape(
            _without_fields(example["responses"]["200"]["body"]), _without_fields(fields_batch)
        )
        == []
    )
    listed = http.get(f"{base}/workitems", params={**V, "ids": ",".join(map(str, ids[:5]))}).json()
    ado_response(f"{ADO}/workitems", "get", listed)
    one = http.get(f"{base}/workitems/{ids[0]}", params=V).json()
    ado_response(f"{ADO}/workitems/{{id}}", "get", one)
    single = ado_example("workItems/GET__wit_WorkItems_id.json")["responses"]["200"]["body"]
    assert same_shape(_without_fields(single), _without_fields(one)) == []
    _same_field_types(single["fields"], one["fields"])
    expanded = http.get(f"{base}/workitems/{ids[0]}", params={**V, "$expand": "all"}).json()
    ado_response(f"{ADO}/workitems/{{id}}", "get", expanded)
    updates = http.get(f"{base}/workItems/{ids[0]}/updates", params=V).json()
    ado_response(f"{ADO}/workItems/{{id}}/updates", "get", updates)
    listed_example = ado_example("updates/GET__list_of_workitem_updates.json")["responses"]["200"][
        "body"
    ]
    assert same_shape(_updates_shape(listed_example), _updates_shape(updates)) == []
    first = http.get(f"{base}/workItems/{ids[0]}/updates/1", params=V).json()
    ado_response(f"{ADO}/workItems/{{id}}/updates/{{updateNumber}}", "get", first)


def test_ado_metadata_writes_and_recycle_bin_validate(ado_sb: Sandbox) -> None:
    http = requests.Session()
    http.auth = ("", ado_sb.pat)
    base = f"{ado_sb.url}/Fabrikam/_apis/wit"
    states = http.get(f"{base}/workitemtypes/Bug/states", params=V).json()
    ado_response(f"{ADO}/workitemtypes/{{type}}/states", "get", states)
    example = ado_example("workItemTypeStates/GET__workitem_type_states.json")["responses"]["200"][
        "body"
    ]
    assert same_shape(example, states) == []
    ado_response(f"{ADO}/workitemtypes", "get", http.get(f"{base}/workitemtypes", params=V).json())
    ado_response(f"{ADO}/fields", "get", http.get(f"{base}/fields", params=V).json())
    target = next(t for t in ado_sb.ground_truth() if t.item_type == "Feature" and not t.deleted)
    rev = http.get(f"{base}/workitems/{target.external_id}", params=V).json()["rev"]
    ops = [
        {"op": "test", "path": "/rev", "value": rev},
        {"op": "add", "path": "/fields/Custom.WSJF", "value": 3.0},
    ]
    for op in ops:
        ado_definition("JsonPatchOperation", op)
    patched = http.patch(
        f"{base}/workitems/{target.external_id}",
        params=V,
        data=json.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    ).json()
    ado_response(f"{ADO}/workitems/{{id}}", "patch", patched)
    leaf = next(t for t in ado_sb.ground_truth() if t.item_type == "Bug" and not t.deleted)
    deleted = http.delete(f"{base}/workitems/{leaf.external_id}", params=V).json()
    ado_response(f"{ADO}/workitems/{{id}}", "delete", deleted)
    binned = http.get(f"{base}/recyclebin", params=V).json()
    ado_response(f"{ADO}/recyclebin", "get", binned)
    one = http.get(f"{base}/recyclebin/{leaf.external_id}", params=V).json()
    ado_response(f"{ADO}/recyclebin/{{id}}", "get", one)
    refs = http.get(f"{base}/recyclebin", params={**V, "ids": leaf.external_id}).json()
    for ref in refs["value"]:
        ado_definition("WorkItemDeleteReference", ref)
    restored = http.patch(
        f"{base}/recyclebin/{leaf.external_id}", params=V, json={"isDeleted": False}
    ).json()
    ado_response(f"{ADO}/recyclebin/{{id}}", "patch", restored)
    restore_example = ado_example("recycleBin/PATCH__wit_recyclebin_restore.json")["responses"][
        "200"
    ]["body"]
    assert same_shape(_without_fields(restore_example), _without_fields(restored)) == []


def _without_fields(body: Any) -> Any:
    """Field values depend on the item; the envelope around them must match."""
    if isinstance(body, dict):
        return {k: _without_fields(v) for k, v in body.items() if k != "fields"}
    if isinstance(body, list):
        return [_without_fields(v) for v in body]
    return body


def _updates_shape(body: dict[str, Any]) -> dict[str, Any]:
    first = dict(body["value"][0])
    first.pop("fields", None)
    first.pop("relations", None)
    return {"count": body["count"], "value": [first]}


def _same_field_types(example: dict[str, Any], actual: dict[str, Any]) -> None:
    for name in example.keys() & actual.keys():
        assert same_shape(example[name], actual[name], name) == [], name
