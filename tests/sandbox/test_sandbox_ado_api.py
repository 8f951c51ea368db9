"""The fake Azure DevOps over HTTP: WIQL, batches, JSON Patch with revisions, recycle bin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import Sandbox, serve

PATCH = {"Content-Type": "application/json-patch+json"}
V = {"api-version": "7.1"}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with serve("azure_devops", items=1500, seed=31) as sandbox:
        yield sandbox


@pytest.fixture
def http(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.auth = ("", sb.pat)
    return session


def wit(sb: Sandbox, rest: str) -> str:
    return f"{sb.url}/Fabrikam/_apis/wit/{rest}"


def wiql(http: requests.Session, sb: Sandbox, query: str, **params: Any) -> requests.Response:
    return http.post(wit(sb, "wiql"), params={**V, **params}, json={"query": query})


def live(sb: Sandbox) -> list[Any]:
    return [t for t in sb.ground_truth() if not t.deleted]


def test_auth_and_api_version(http: requests.Session, sb: Sandbox) -> None:
    assert requests.get(wit(sb, "workitems/1"), params=V, timeout=10).status_code == 401
    missing = http.get(wit(sb, "workitems/1"))
    assert (
        missing.status_code == 400
        and missing.json()["typeKey"] == "VssVersionNotSpecifiedException"
    )
    by_header = http.get(
        wit(sb, "workitems/1"), headers={"Accept": "application/json; api-version=7.1"}
    )
    assert by_header.status_code == 200
    assert http.get(f"{sb.url}/Nowhere/_apis/wit/workitems/1", params=V).status_code == 404


def test_wiql_returns_ids_in_order(http: requests.Session, sb: Sandbox) -> None:
    r = wiql(
        http,
        sb,
        "SELECT [System.Id], [System.Title] FROM WorkItems WHERE [System.TeamProject] = @project "
        "AND [System.WorkItemType] IN ('Epic', 'Feature') ORDER BY [System.Id] DESC",
    )
    body = r.json()
    ids = [w["id"] for w in body["workItems"]]
    expected = sorted(
        (int(t.external_id) for t in live(sb) if t.item_type in ("Epic", "Feature")), reverse=True
    )
    assert ids == expected
    assert [c["referenceName"] for c in body["columns"]] == ["System.Id", "System.Title"]
    under = wiql(
        http,
        sb,
        "SELECT [System.Id] FROM WorkItems WHERE [System.AreaPath] "
        f"UNDER 'Fabrikam\\{sb.portfolio.arts[0].name}'",
    ).json()["workItems"]
    assert under and all(
        t.art == sb.portfolio.arts[0].name
        for t in live(sb)
        if int(t.external_id) in {w["id"] for w in under}
    )
    team_route = http.post(
        f"{sb.url}/Fabrikam/Team%20Falcon/_apis/wit/wiql",
        params=V,
        json={"query": "SELECT [System.Id] FROM WorkItems WHERE [System.Id] = 1"},
    )
    assert team_route.status_code == 200


def test_wiql_dates_need_time_precision(http: requests.Session, sb: Sandbox) -> None:
    query = "SELECT [System.Id] FROM WorkItems WHERE [System.ChangedDate] >= '2026-06-01T10:00:00Z'"
    r = wiql(http, sb, query)
    assert r.status_code == 400 and "cannot supply a time with the date" in r.json()["message"]
    ok = wiql(http, sb, query, timePrecision="true")
    assert ok.status_code == 200
    by_day = wiql(
        http, sb, "SELECT [System.Id] FROM WorkItems WHERE [System.ChangedDate] >= @today - 30"
    )
    assert by_day.status_code == 200


def test_wiql_over_20000_fails_with_vs402337() -> None:
    with serve("azure_devops", items=20_100, seed=32) as big:
        http = requests.Session()
        http.auth = ("", big.pat)
        r = http.post(
            f"{big.url}/Fabrikam/_apis/wit/wiql",
            params=V,
            json={
                "query": "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project"
            },
        )
        assert r.status_code == 400
        body = r.json()
        assert body["message"].startswith(
            "VS402337: The number of work items returned exceeds the size limit of 20000."
        )
        assert body["typeKey"] == "WorkItemTrackingQueryResultSizeLimitExceededException"
        split = http.post(
            f"{big.url}/Fabrikam/_apis/wit/wiql",
            params=V,
            json={
                "query": "SELECT [System.Id] FROM WorkItems "
                "WHERE [System.Id] > 10000 ORDER BY [System.Id]"
            },
        )
        assert split.status_code == 200


def test_batch_limits_and_errors(http: requests.Session, sb: Sandbox) -> None:
    ids = [int(t.external_id) for t in live(sb)]
    r = http.post(wit(sb, "workitemsbatch"), params=V, json={"ids": ids[:201]})
    assert r.status_code == 400 and "VS403474" in r.json()["message"]
    both = http.post(
        wit(sb, "workitemsbatch"),
        params=V,
        json={"ids": ids[:3], "fields": ["System.Title"], "$expand": "relations"},
    )
    assert both.status_code == 400
    assert (
        both.json()["message"] == "The expand parameter can not be used with the fields parameter."
    )
    some = http.post(
        wit(sb, "workitemsbatch"),
        params=V,
        json={
            "ids": ids[:200],
            "fields": ["System.Id", "System.Title", "Microsoft.VSTS.Scheduling.StoryPoints"],
        },
    ).json()
    assert some["count"] == 200
    assert all(
        set(w["fields"]) <= {"System.Id", "System.Title", "Microsoft.VSTS.Scheduling.StoryPoints"}
        for w in some["value"]
    )
    gone = int(next(t for t in sb.ground_truth() if t.deleted).external_id)
    fail = http.post(wit(sb, "workitemsbatch"), params=V, json={"ids": [ids[0], gone]})
    assert fail.status_code == 404 and "TF401232" in fail.json()["message"]
    omit = http.post(
        wit(sb, "workitemsbatch"), params=V, json={"ids": [ids[0], gone], "errorPolicy": "omit"}
    ).json()
    assert omit["value"][1] is None and omit["value"][0]["id"] == ids[0]


def test_relations_follow_the_hierarchy(http: requests.Session, sb: Sandbox) -> None:
    story = next(t for t in live(sb) if t.item_type == "User Story" and t.parent_external_id)
    item = http.get(
        wit(sb, f"workitems/{story.external_id}"), params={**V, "$expand": "relations"}
    ).json()
    parents = [r for r in item["relations"] if r["rel"] == "System.LinkTypes.Hierarchy-Reverse"]
    assert [p["url"].rsplit("/", 1)[1] for p in parents] == [story.parent_external_id]
    feature = http.get(
        wit(sb, f"workitems/{story.parent_external_id}"), params={**V, "$expand": "all"}
    ).json()
    children = {
        r["url"].rsplit("/", 1)[1]
        for r in feature["relations"]
        if r["rel"] == "System.LinkTypes.Hierarchy-Forward"
    }
    assert story.external_id in children
    assert item["fields"]["System.Parent"] == int(story.parent_external_id)


def test_patch_with_revision_check(http: requests.Session, sb: Sandbox) -> None:
    epic = next(t for t in live(sb) if t.item_type == "Epic")
    url = wit(sb, f"workitems/{epic.external_id}")
    rev = http.get(url, params=V).json()["rev"]
    ops = [
        {"op": "test", "path": "/rev", "value": rev},
        {"op": "add", "path": "/fields/Custom.WSJF", "value": 6.5},
        {"op": "add", "path": "/fields/Custom.PortfolioHealth", "value": "off-track"},
        {"op": "replace", "path": "/fields/Microsoft.VSTS.Common.StackRank", "value": 1234.5},
    ]
    r = http.patch(url, params=V, data=json.dumps(ops), headers=PATCH)
    assert r.status_code == 200, r.text
    assert r.json()["rev"] == rev + 1, "one PATCH, one revision"
    truth = {t.external_id: t for t in sb.ground_truth()}[epic.external_id]
    assert (truth.wsjf, truth.health, float(truth.rank)) == (6.5, "off-track", 1234.5)
    stale = http.patch(url, params=V, data=json.dumps(ops), headers=PATCH)
    assert stale.status_code == 412 and stale.json()["message"].startswith("TF26071")
    wrong_type = http.patch(url, params=V, json=ops[1:])
    assert wrong_type.status_code == 415
    readonly = http.patch(
        url,
        params=V,
        data=json.dumps(
            [{"op": "add", "path": "/fields/System.CreatedDate", "value": "2020-01-01"}]
        ),
        headers=PATCH,
    )
    assert readonly.status_code == 400 and "ReadOnly" in readonly.json()["message"]
    unknown = http.patch(
        url,
        params=V,
        data=json.dumps([{"op": "add", "path": "/fields/Custom.Nope", "value": 1}]),
        headers=PATCH,
    )
    assert unknown.status_code == 400 and "TF51535" in unknown.json()["message"]
    picklist = http.patch(
        url,
        params=V,
        data=json.dumps(
            [{"op": "add", "path": "/fields/Custom.PortfolioHealth", "value": "purple"}]
        ),
        headers=PATCH,
    )
    assert picklist.status_code == 400 and "TF401320" in picklist.json()["message"]
    updates = http.get(wit(sb, f"workItems/{epic.external_id}/updates"), params=V).json()
    assert updates["count"] == rev + 1
    last = updates["value"][-1]["fields"]
    assert last["Custom.WSJF"]["newValue"] == 6.5 and last["System.Rev"] == {
        "oldValue": rev,
        "newValue": rev + 1,
    }


def test_state_change_and_types(http: requests.Session, sb: Sandbox) -> None:
    states = http.get(wit(sb, "workitemtypes/User%20Story/states"), params=V).json()
    assert {s["name"]: s["category"] for s in states["value"]} == {
        "New": "Proposed",
        "Active": "InProgress",
        "Resolved": "Resolved",
        "Closed": "Completed",
        "Removed": "Removed",
    }
    story = next(t for t in live(sb) if t.item_type == "User Story" and t.status == "New")
    url = wit(sb, f"workitems/{story.external_id}")
    r = http.patch(
        url,
        params=V,
        data=json.dumps([{"op": "add", "path": "/fields/System.State", "value": "Active"}]),
        headers=PATCH,
    )
    assert r.status_code == 200 and r.json()["fields"]["System.State"] == "Active"
    after = {t.external_id: t for t in sb.ground_truth()}[story.external_id]
    assert after.status_category == "doing"
    bad = http.patch(
        url,
        params=V,
        data=json.dumps([{"op": "add", "path": "/fields/System.State", "value": "Doing"}]),
        headers=PATCH,
    )
    assert bad.status_code == 400
    types = http.get(wit(sb, "workitemtypes"), params=V).json()
    assert {t["name"] for t in types["value"]} == {
        "Epic",
        "Feature",
        "User Story",
        "Bug",
        "PI Objective",
    }


def test_delete_goes_to_the_recycle_bin(http: requests.Session, sb: Sandbox) -> None:
    leaf = next(t for t in live(sb) if t.item_type == "Bug")
    r = http.delete(wit(sb, f"workitems/{leaf.external_id}"), params=V)
    assert r.status_code == 200 and r.json()["id"] == int(leaf.external_id)
    assert http.get(wit(sb, f"workitems/{leaf.external_id}"), params=V).status_code == 404
    binned = http.get(wit(sb, "recyclebin"), params=V).json()
    assert int(leaf.external_id) in {w["id"] for w in binned["value"]}
    assert {t.external_id: t for t in sb.ground_truth()}[leaf.external_id].deleted
    one = http.get(wit(sb, f"recyclebin/{leaf.external_id}"), params=V).json()
    assert one["resource"]["id"] == int(leaf.external_id)
    restored = http.patch(
        wit(sb, f"recyclebin/{leaf.external_id}"), params=V, json={"isDeleted": False}
    )
    assert restored.status_code == 200
    assert http.get(wit(sb, f"workitems/{leaf.external_id}"), params=V).status_code == 200


def test_a_wiql_scan_holds_the_lock_one_slice_at_a_time(
    http: requests.Session, sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query lets other requests in between slices of its scan, as a real server's query does
    not stop reads, and still answers exactly, in order."""
    holds = []

    class CountingLock:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __enter__(self) -> Any:
            holds.append(1)
            return self.inner.__enter__()

        def __exit__(self, *exc: Any) -> Any:
            return self.inner.__exit__(*exc)

    monkeypatch.setattr("sandbox.wiql.SCAN_SLICE", 100)
    monkeypatch.setattr(sb.portfolio, "lock", CountingLock(sb.portfolio.lock))
    r = wiql(
        http,
        sb,
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
        "ORDER BY [System.WorkItemType] ASC, [System.Id] DESC",
    )
    assert len(holds) >= sb.portfolio.n // 100
    by_type = sorted(live(sb), key=lambda t: (t.item_type.lower(), -int(t.external_id)))
    assert [w["id"] for w in r.json()["workItems"]] == [int(t.external_id) for t in by_type]
