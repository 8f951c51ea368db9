"""The fake Jira over HTTP: pagination, limits, edits, bulk reads, rank and Data Center mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import Sandbox, serve


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with serve("jira", items=1500, seed=21) as sandbox:
        yield sandbox


@pytest.fixture
def http(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.auth = (sb.email, sb.token)
    return session


def search(http: requests.Session, sb: Sandbox, **params: Any) -> requests.Response:
    return http.get(f"{sb.url}/rest/api/3/search/jql", params=params, timeout=30)


def pull_all(http: requests.Session, sb: Sandbox, jql: str, **params: Any) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    token = None
    while True:
        extra = {"nextPageToken": token} if token else {}
        page = search(http, sb, jql=jql, **params, **extra).json()
        issues += page["issues"]
        if page["isLast"]:
            assert "nextPageToken" not in page
            return issues
        token = page["nextPageToken"]


def live(sb: Sandbox) -> list[Any]:
    return [t for t in sb.ground_truth() if not t.deleted]


def test_auth_is_required(sb: Sandbox) -> None:
    assert requests.get(f"{sb.url}/rest/api/3/myself", timeout=10).status_code == 401
    wrong = requests.get(f"{sb.url}/rest/api/3/myself", auth=(sb.email, "nope"), timeout=10)
    assert wrong.status_code == 401
    bearer = requests.get(
        f"{sb.url}/rest/api/3/myself", headers={"Authorization": f"Bearer {sb.pat}"}, timeout=10
    )
    assert bearer.status_code == 401, "Cloud takes email + API token, not a bearer PAT"


def test_site_information(http: requests.Session, sb: Sandbox) -> None:
    me = http.get(f"{sb.url}/rest/api/3/myself").json()
    assert me["timeZone"] == "Europe/Berlin" and me["emailAddress"] == sb.email
    info = http.get(f"{sb.url}/rest/api/3/serverInfo").json()
    assert info["deploymentType"] == "Cloud"
    types = {t["name"]: t for t in http.get(f"{sb.url}/rest/api/3/issuetype").json()}
    assert types["Portfolio Epic"]["hierarchyLevel"] == 3
    assert types["Feature"]["hierarchyLevel"] == 1 and types["Sub-task"]["subtask"]
    fields = {f["name"]: f for f in http.get(f"{sb.url}/rest/api/3/field").json()}
    assert fields["Story point estimate"]["id"].startswith("customfield_")
    assert fields["Story point estimate"]["schema"]["type"] == "number"
    projects = http.get(f"{sb.url}/rest/api/3/project/search", params={"maxResults": 2}).json()
    assert projects["total"] == 4 and len(projects["values"]) == 2 and not projects["isLast"]


def test_paging_returns_every_issue_once(http: requests.Session, sb: Sandbox) -> None:
    scope = sb.source_config()["scope"]
    ids = pull_all(http, sb, scope, maxResults=5000)
    assert [set(i) for i in ids[:1]] == [{"id"}], "fields defaults to the id only"
    full = pull_all(http, sb, scope + " ORDER BY key", fields="*all", maxResults=1000)
    assert {i["id"] for i in full} == {i["id"] for i in ids} == {t.external_id for t in live(sb)}
    assert len(full) == len({i["id"] for i in full})
    first = search(http, sb, jql=scope, fields="*all", maxResults=1000).json()
    assert len(first["issues"]) == 100, "full-field pages are capped at 100"
    first_ids = search(http, sb, jql=scope, maxResults=99999).json()
    assert len(first_ids["issues"]) == min(5000, len(ids))


def test_post_search_and_expand_changelog(http: requests.Session, sb: Sandbox) -> None:
    body = {
        "jql": "project = PORT ORDER BY key",
        "fields": ["summary", "status", "parent"],
        "expand": "changelog,names",
        "maxResults": 10,
    }
    page = http.post(f"{sb.url}/rest/api/3/search/jql", json=body).json()
    issue = page["issues"][0]
    assert set(issue["fields"]) <= {"summary", "status", "parent"}
    assert page["names"]["summary"] == "Summary"
    histories = issue["changelog"]["histories"]
    assert issue["changelog"]["total"] == len(histories)
    if histories:
        last_status = [it for h in histories for it in h["items"] if it["field"] == "status"][-1]
        assert last_status["toString"] == issue["fields"]["status"]["name"]


def test_unbounded_and_bad_jql_get_jiras_errors(http: requests.Session, sb: Sandbox) -> None:
    r = search(http, sb, jql="order by key desc")
    assert r.status_code == 400
    assert r.json() == {
        "errorMessages": [
            "Unbounded JQL queries are not allowed here. "
            "Please add a search restriction to your query."
        ],
        "errors": {},
    }
    bad = search(http, sb, jql="project = PAY", nextPageToken="garbage")
    assert bad.status_code == 400
    removed = http.get(f"{sb.url}/rest/api/3/search", params={"jql": "project = PAY"})
    assert removed.status_code == 410, "the old search is gone on Cloud"


def test_put_edits_bump_updated_and_write_changelog(http: requests.Session, sb: Sandbox) -> None:
    epic = next(t for t in live(sb) if t.level == "epic")
    fields = {f["name"]: f["id"] for f in http.get(f"{sb.url}/rest/api/3/field").json()}
    url = f"{sb.url}/rest/api/3/issue/{epic.key}"
    body = {
        "fields": {
            fields["WSJF"]: 7.5,
            fields["Portfolio Health"]: {"value": "at-risk"},
            fields["Portfolio Progress"]: 42.0,
        }
    }
    r = http.put(url, json=body, params={"notifyUsers": "false"})
    assert r.status_code == 204, r.text
    after = {t.external_id: t for t in sb.ground_truth()}[epic.external_id]
    assert (after.wsjf, after.health, after.progress) == (7.5, "at-risk", 42.0)
    assert after.updated_at > epic.updated_at
    issue = http.get(url, params={"expand": "changelog"}).json()
    last = issue["changelog"]["histories"][-1]
    assert {i["fieldId"] for i in last["items"]} == {
        fields["WSJF"],
        fields["Portfolio Health"],
        fields["Portfolio Progress"],
    }
    assert last["author"]["emailAddress"] == sb.email
    again = http.put(url, json=body)
    assert again.status_code == 204
    assert http.get(url).json()["fields"]["updated"] == issue["fields"]["updated"], "no-op edit"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "customfield_1",
            1,
            "Field 'customfield_1' cannot be set. It is not on the appropriate screen, or unknown.",
        ),
        ("status", {"name": "Done"}, "Field 'status' cannot be set."),
        ("Rank", "0|a:", "cannot be set"),
        ("WSJF", "high", "Operation value must be a number"),
        ("Portfolio Health", {"value": "purple"}, "Option value 'purple' is not valid"),
        ("summary", "x" * 256, "Summary must be less than 255 characters."),
    ],
)
def test_bad_edits_get_jiras_errors_body(
    http: requests.Session, sb: Sandbox, field: str, value: Any, message: str
) -> None:
    ids = {f["name"]: f["id"] for f in http.get(f"{sb.url}/rest/api/3/field").json()}
    fid = ids.get(field, field)
    story = next(t for t in live(sb) if t.level == "story")
    r = http.put(f"{sb.url}/rest/api/3/issue/{story.key}", json={"fields": {fid: value}})
    assert r.status_code == 400
    body = r.json()
    assert body["errorMessages"] == [] and message in body["errors"][fid]
    unchanged = {t.external_id: t for t in sb.ground_truth()}[story.external_id]
    assert unchanged.updated_at == story.updated_at


def test_unknown_issue_is_404(http: requests.Session, sb: Sandbox) -> None:
    r = http.get(f"{sb.url}/rest/api/3/issue/PAY-999999")
    assert r.status_code == 404
    assert r.json()["errorMessages"] == [
        "Issue does not exist or you do not have permission to see it."
    ]
    deleted = next(t for t in sb.ground_truth() if t.deleted)
    assert http.get(f"{sb.url}/rest/api/3/issue/{deleted.external_id}").status_code == 404


def test_moved_issue_keeps_its_id_and_old_key(http: requests.Session, sb: Sandbox) -> None:
    p = sb.portfolio
    moved = next(iter(p.moves))
    old_art, old_num, _, _ = p.moves[moved]
    old_key = f"{p.project_key(old_art + 1)}-{old_num}"
    issue = http.get(f"{sb.url}/rest/api/3/issue/{old_key}", params={"expand": "changelog"}).json()
    assert issue["id"] == p.external_id(moved) and issue["key"] == p.key(moved) != old_key
    keys = [i for h in issue["changelog"]["histories"] for i in h["items"] if i["field"] == "Key"]
    assert keys[-1]["fromString"] == old_key and keys[-1]["toString"] == issue["key"]


def test_bulk_fetch_issues_and_changelogs(http: requests.Session, sb: Sandbox) -> None:
    keys = [t.key for t in live(sb)[:120]]
    r = http.post(f"{sb.url}/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": keys})
    assert r.status_code == 400
    r = http.post(
        f"{sb.url}/rest/api/3/issue/bulkfetch",
        json={"issueIdsOrKeys": [*keys[:50], "PAY-999999"], "fields": ["summary"]},
    )
    body = r.json()
    assert len(body["issues"]) == 50 and body["issueErrors"] == []
    ids = [t.external_id for t in live(sb)[:200]]
    histories = 0
    token = None
    while True:
        request: dict[str, Any] = {"issueIdsOrKeys": ids, "maxResults": 50, "fieldIds": ["status"]}
        if token:
            request["nextPageToken"] = token
        page = http.post(f"{sb.url}/rest/api/3/changelog/bulkfetch", json=request).json()
        for log in page["issueChangeLogs"]:
            for h in log["changeHistories"]:
                assert all(i["fieldId"] == "status" for i in h["items"])
                histories += 1
        token = page.get("nextPageToken")
        if not token:
            break
    expected = sum(
        1
        for i in (sb.portfolio.find(x) for x in ids)
        for e in sb.portfolio.history(i or 0)
        if any(c.attr == "status" for c in e.items)
    )
    assert histories == expected


def test_issue_properties(http: requests.Session, sb: Sandbox) -> None:
    key = live(sb)[3].key
    base = f"{sb.url}/rest/api/3/issue/{key}/properties"
    assert http.put(f"{base}/lpm.sync", json={"wsjf": 3.2}).status_code == 201
    assert http.put(f"{base}/lpm.sync", json={"wsjf": 3.3}).status_code == 200
    assert http.get(f"{base}/lpm.sync").json() == {"key": "lpm.sync", "value": {"wsjf": 3.3}}
    assert [k["key"] for k in http.get(base).json()["keys"]] == ["lpm.sync"]
    page = search(http, sb, jql=f"key = {key}", properties="lpm.sync", fields="summary").json()
    assert page["issues"][0]["properties"] == {"lpm.sync": {"wsjf": 3.3}}
    assert http.delete(f"{base}/lpm.sync").status_code == 204
    assert http.get(f"{base}/lpm.sync").status_code == 404


def test_rank_api(http: requests.Session, sb: Sandbox) -> None:
    epics = [t for t in live(sb) if t.level == "epic"][:6]
    url = f"{sb.url}/rest/agile/1.0/issue/rank"
    anchor, moving = epics[0], [e.key for e in epics[1:4]]
    assert http.put(url, json={"issues": moving, "rankBeforeIssue": anchor.key}).status_code == 204
    ranks = {t.key: t.rank for t in sb.ground_truth()}
    assert ranks[moving[0]] < ranks[moving[1]] < ranks[moving[2]] < ranks[anchor.key]
    between = [r for r in ranks.values() if ranks[moving[2]] < r < ranks[anchor.key]]
    assert between == [], "placed right before the anchor"
    assert (
        http.put(url, json={"issues": [epics[5].key], "rankAfterIssue": anchor.key}).status_code
        == 204
    )
    ranks = {t.key: t.rank for t in sb.ground_truth()}
    assert ranks[epics[5].key] > ranks[anchor.key]
    partial = http.put(
        url, json={"issues": [epics[4].key, "PAY-999999"], "rankBeforeIssue": anchor.key}
    )
    assert partial.status_code == 207
    statuses = {e["issueKey"]: e["status"] for e in partial.json()["entries"]}
    assert statuses == {epics[4].key: 200, "PAY-999999": 404}
    too_many = http.put(
        url, json={"issues": [t.key for t in live(sb)[:51]], "rankBeforeIssue": anchor.key}
    )
    assert too_many.status_code == 400
    assert http.put(url, json={"issues": moving}).status_code == 400
    history = http.get(
        f"{sb.url}/rest/api/3/issue/{moving[0]}", params={"expand": "changelog"}
    ).json()
    assert history["changelog"]["histories"][-1]["items"][0]["field"] == "Rank"


def test_v2_api_speaks_wiki_text(http: requests.Session, sb: Sandbox) -> None:
    i = next(
        i
        for i in range(sb.portfolio.n)
        if sb.portfolio.description(i) and not sb.portfolio.is_deleted(i)
    )
    key = sb.portfolio.key(i)
    v2 = http.get(f"{sb.url}/rest/api/2/issue/{key}").json()["fields"]["description"]
    v3 = http.get(f"{sb.url}/rest/api/3/issue/{key}").json()["fields"]["description"]
    assert isinstance(v2, str) and v3["type"] == "doc"


def test_data_center_mode() -> None:
    with serve("jira", items=400, seed=22, deployment="datacenter") as dc:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {dc.pat}"
        assert (
            requests.get(f"{dc.url}/rest/api/2/myself", auth=(dc.email, dc.token)).status_code
            == 401
        )
        assert http.get(f"{dc.url}/rest/api/2/serverInfo").json()["deploymentType"] == "Server"
        assert http.get(f"{dc.url}/rest/api/3/myself").status_code == 404
        assert (
            http.get(f"{dc.url}/rest/api/2/search/jql", params={"jql": "project = PAY"}).status_code
            == 404
        )
        seen: list[str] = []
        start = 0
        while True:
            page = http.get(
                f"{dc.url}/rest/api/2/search",
                params={"jql": "ORDER BY key", "startAt": start, "maxResults": 150},
            ).json()
            assert page["total"] == len([t for t in dc.ground_truth() if not t.deleted])
            seen += [i["id"] for i in page["issues"]]
            start += 150
            if start >= page["total"]:
                break
        assert len(seen) == len(set(seen)) == page["total"]
        window = http.get(
            f"{dc.url}/rest/api/2/search",
            params={"jql": "ORDER BY key", "startAt": 9950, "maxResults": 100},
        )
        assert window.status_code == 500 and "Search limit exceeded" in window.json()["message"]
        story = next(
            t
            for t in dc.ground_truth()
            if t.level == "story" and t.parent_external_id and not t.deleted
        )
        fields = {f["name"]: f["id"] for f in http.get(f"{dc.url}/rest/api/2/field").json()}
        issue = http.get(f"{dc.url}/rest/api/2/issue/{story.key}").json()["fields"]
        parent_key = dc.portfolio.key(dc.portfolio.find(story.parent_external_id) or 0)
        assert issue[fields["Epic Link"]] == parent_key and "parent" not in issue
        types = http.get(f"{dc.url}/rest/api/2/issuetype").json()
        assert all("hierarchyLevel" not in t for t in types)
