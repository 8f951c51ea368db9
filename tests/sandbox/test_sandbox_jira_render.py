"""How the fake Jira renders issues: filled templates and timestamps formatted once an hour
must give what a plain rendering would, for every field selection, and follow edits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from sandbox.cache import BytesLRU
from sandbox.jira_site import TIME_ZONE, FieldSelection, JiraSite
from sandbox.portfolio import Portfolio

ANCHOR = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def portfolio() -> Portfolio:
    return Portfolio.generate("jira", 600, 5, ANCHOR)


def reference_ts(ms: int) -> str:
    local = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(TIME_ZONE))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + local.strftime("%z")


def test_timestamps_follow_the_site_zone_across_daylight_saving_changes(
    portfolio: Portfolio,
) -> None:
    site = JiraSite(portfolio, "http://jira.test")
    changes = [
        int(datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp() * 1000),  # CET -> CEST
        int(datetime(2026, 10, 25, 1, tzinfo=UTC).timestamp() * 1000),  # CEST -> CET
    ]
    for change in changes:
        for step in range(-400, 400):
            ms = change + step * 21_457  # every ~21 s for 2h20 either side, odd milliseconds
            assert site.ts(ms) == reference_ts(ms)
            assert site.ts_json(ms) == orjson.dumps(reference_ts(ms))
    for ms in (0, 999, 1_799_999_999_999, portfolio.created[7], portfolio.updated[9]):
        assert site.ts(ms) == reference_ts(ms)


SELECTIONS = [
    ["summary,status,parent,labels,created"],
    ["*all,-description,-summary"],
    ["-watches"],
    ["key", "issuetype", "customfield_10133"],
    ["*navigable"],
]


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_field_selections_are_the_full_issue_filtered(
    portfolio: Portfolio, deployment: Any
) -> None:
    site = JiraSite(portfolio, "http://jira.test", deployment)
    everything = FieldSelection.parse(["*all"], "*all", site)
    apis = ["rest/api/2", "rest/api/3"] if deployment == "cloud" else ["rest/api/2"]
    with_parent = [i for i in range(portfolio.n) if portfolio.parent[i] >= 0][:20]
    without = [i for i in range(portfolio.n) if portfolio.parent[i] < 0][:20]
    for api in apis:
        for i in with_parent + without:
            full = orjson.loads(site.issue(i, api, everything))
            assert ("parent" in full["fields"]) == (deployment == "cloud" and i in with_parent)
            for values in SELECTIONS:
                selection = FieldSelection.parse(values, "*all", site)
                issue = orjson.loads(site.issue(i, api, selection))
                wanted = {k: v for k, v in full["fields"].items() if selection.shows(k)}
                assert list(issue["fields"].items()) == list(wanted.items())
                assert {k: v for k, v in issue.items() if k != "fields"} == {
                    k: v for k, v in full.items() if k != "fields"
                }
                named = orjson.loads(site.issue(i, api, selection, frozenset({"names"})))
                assert named["fields"] == issue["fields"]
                assert list(named["names"]) == [k for k in issue["fields"] if k in site.by_id]


def test_edits_show_in_the_next_render_and_in_childrens_parent_field() -> None:
    p = Portfolio.generate("jira", 400, 3, ANCHOR)
    site = JiraSite(p, "http://jira.test")
    selection = FieldSelection.parse(["*all"], "*all", site)
    api = "rest/api/3"
    child = next(i for i in range(p.n) if p.parent[i] >= 0)
    parent = p.parent[child]
    before = orjson.loads(site.issue(child, api, selection))
    p.set_attrs(child, {"summary": 'Quoted "edit" 100% ü', "labels": ("a", "b")}, author=0)
    p.set_attrs(parent, {"summary": "Renamed parent"}, author=0)
    after = orjson.loads(site.issue(child, api, selection))
    assert after["fields"]["summary"] == 'Quoted "edit" 100% ü'
    assert after["fields"]["labels"] == ["a", "b"]
    assert after["fields"]["parent"]["fields"]["summary"] == "Renamed parent"
    assert after["fields"]["updated"] != before["fields"]["updated"]


def test_exact_renders_are_cached_without_a_copy() -> None:
    cache = BytesLRU()
    body = b"%d" % 12345678901234567890
    assert cache.get_or_render("k", lambda: body, exact=True) is body
    assert cache.get_or_render("k", lambda: b"other") is body


def test_all_fields_are_the_navigable_ones_and_those_that_are_not(portfolio: Portfolio) -> None:
    """A search shows `*navigable` fields by default; `*all` (what the Singer tap-jira asks
    for) adds comment, worklog and time tracking, and a field named is shown either way."""
    site = JiraSite(portfolio, "http://jira.test")
    for api in ("rest/api/2", "rest/api/3"):
        for i in range(30):
            every = orjson.loads(site.issue(i, api, FieldSelection.parse(["*all"], "id", site)))
            navigable = FieldSelection.parse(["*navigable"], "id", site)
            shown = orjson.loads(site.issue(i, api, navigable))["fields"]
            assert set(every["fields"]) - set(shown) == {"comment", "worklog", "timetracking"}
            assert every["fields"]["comment"] == {
                "comments": [],
                "self": f"http://jira.test/{api}/issue/{portfolio.key(i)}/comment",
                "maxResults": 0,
                "total": 0,
                "startAt": 0,
            }
            named = FieldSelection.parse(["summary,comment"], "id", site)
            assert set(orjson.loads(site.issue(i, api, named))["fields"]) == {"summary", "comment"}


def test_expanded_transitions_lead_into_every_other_status_of_the_workflow(
    portfolio: Portfolio,
) -> None:
    site = JiraSite(portfolio, "http://jira.test")
    selection = FieldSelection.parse(["status"], "id", site)
    for i in range(0, portfolio.n, 37):
        issue = orjson.loads(site.issue(i, "rest/api/3", selection, frozenset({"transitions"})))
        current = issue["fields"]["status"]
        targets = [transition["to"] for transition in issue["transitions"]]
        workflow = [portfolio.process.statuses[s].name for s in portfolio.itype(i).statuses]
        assert current not in targets
        assert sorted([current["name"], *(t["name"] for t in targets)]) == sorted(workflow)
        assert all(t["isAvailable"] and t["id"].isdigit() for t in issue["transitions"])
