"""The fake Jira Cloud's bulk edit (`POST /rest/api/3/bulk/issues/fields`, then
`GET /rest/api/3/bulk/queue/{taskId}`), shaped as the platform spec describes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import Sandbox, serve


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with serve("jira", items=300, seed=5) as sandbox:
        yield sandbox


@pytest.fixture
def http(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.auth = (sb.email, sb.token)
    return session


def field_id(http: requests.Session, sb: Sandbox, name: str) -> str:
    fields = http.get(f"{sb.url}/rest/api/3/field", timeout=10).json()
    return str(next(f["id"] for f in fields if f["name"] == name))


def submit(http: requests.Session, sb: Sandbox, body: dict[str, Any]) -> requests.Response:
    return http.post(f"{sb.url}/rest/api/3/bulk/issues/fields", json=body, timeout=10)


def finished(http: requests.Session, sb: Sandbox, task: str) -> dict[str, Any]:
    for _ in range(200):
        progress: dict[str, Any] = http.get(
            f"{sb.url}/rest/api/3/bulk/queue/{task}", timeout=10
        ).json()
        if progress["status"] == "COMPLETE":
            return progress
        assert progress["status"] in ("ENQUEUED", "RUNNING")
        time.sleep(0.02)
    raise AssertionError("the task never completed")


def progress_of(http: requests.Session, sb: Sandbox, ids: list[str], fid: str) -> list[Any]:
    body = {"issueIdsOrKeys": ids, "fields": [fid], "expand": ["changelog"]}
    issues = http.post(f"{sb.url}/rest/api/3/issue/bulkfetch", json=body, timeout=10).json()
    return [(i["id"], i["fields"][fid], i["changelog"]["histories"][-1]) for i in issues["issues"]]


def test_a_bulk_edit_sets_the_values_on_every_issue_as_the_api_user(
    http: requests.Session, sb: Sandbox
) -> None:
    fid = field_id(http, sb, "Portfolio Progress")
    ids = [t.external_id for t in sb.ground_truth() if not t.deleted][:12]
    answer = submit(
        http,
        sb,
        {
            "selectedIssueIdsOrKeys": [*ids, "99999999"],
            "selectedActions": [fid],
            "editedFieldsInput": {"clearableNumberFields": [{"fieldId": fid, "value": 42}]},
            "sendBulkNotification": False,
        },
    )
    assert answer.status_code == 201
    done = finished(http, sb, answer.json()["taskId"])
    assert sorted(done["processedAccessibleIssues"]) == sorted(int(i) for i in ids)
    assert done["invalidOrInaccessibleIssueCount"] == 1 and done["totalIssueCount"] == 13
    assert done["progressPercent"] == 100 and done["failedAccessibleIssues"] == {}
    me = http.get(f"{sb.url}/rest/api/3/myself", timeout=10).json()["accountId"]
    for _issue, value, last in progress_of(http, sb, ids, fid):
        assert value == 42.0
        assert last["author"]["accountId"] == me
        assert [(i["fieldId"], i["toString"]) for i in last["items"]] == [(fid, "42")]


def test_clearing_a_number_field(http: requests.Session, sb: Sandbox) -> None:
    fid = field_id(http, sb, "WSJF")
    ids = [t.external_id for t in sb.ground_truth() if not t.deleted][20:23]
    answer = submit(
        http,
        sb,
        {
            "selectedIssueIdsOrKeys": ids,
            "selectedActions": [fid],
            "editedFieldsInput": {"clearableNumberFields": [{"fieldId": fid, "value": None}]},
        },
    )
    finished(http, sb, answer.json()["taskId"])
    assert [value for _, value, _ in progress_of(http, sb, ids, fid)] == [None, None, None]


def test_bad_bulk_edits_get_the_bulk_apis_error_body(http: requests.Session, sb: Sandbox) -> None:
    fid = field_id(http, sb, "WSJF")
    health = field_id(http, sb, "Portfolio Health")
    ids = [t.external_id for t in sb.ground_truth() if not t.deleted][:2]
    number = {"clearableNumberFields": [{"fieldId": fid, "value": 3}]}
    cases = [
        (
            {"selectedIssueIdsOrKeys": [], "selectedActions": [fid], "editedFieldsInput": number},
            "selectedIssueIdsOrKeys must list at least one issue.",
        ),
        (
            {"selectedIssueIdsOrKeys": ids, "selectedActions": ["x"], "editedFieldsInput": number},
            f"The following editedFieldInput values are not listed as selectedActions : {fid}",
        ),
        (
            {
                "selectedIssueIdsOrKeys": ids,
                "selectedActions": [fid, "issuetype"],
                "editedFieldsInput": number,
            },
            "No value given in editedFieldsInput for: issuetype",
        ),
        (
            {
                "selectedIssueIdsOrKeys": ids,
                "selectedActions": [health],
                "editedFieldsInput": {"clearableNumberFields": [{"fieldId": health, "value": 1}]},
            },
            f"Field {health} is not bulk editable.",
        ),
        (
            {
                "selectedIssueIdsOrKeys": ids,
                "selectedActions": [fid],
                "editedFieldsInput": {"labelsFields": []},
            },
            "The sandbox serves number fields only, not labelsFields.",
        ),
        (
            {**{"selectedIssueIdsOrKeys": ids, "selectedActions": [fid]}, "notify": True},
            "Unrecognized field: notify",
        ),
    ]
    for body, message in cases:
        answer = submit(http, sb, body)
        assert answer.status_code == 400, body
        assert answer.json() == {"errors": [{"message": message}]}


def test_unknown_tasks_and_data_center_have_no_bulk_edit(
    http: requests.Session, sb: Sandbox
) -> None:
    assert http.get(f"{sb.url}/rest/api/3/bulk/queue/1", timeout=10).status_code == 404
    with serve("jira", items=100, seed=5, deployment="datacenter") as dc:
        answer = requests.post(
            f"{dc.url}/rest/api/2/bulk/issues/fields",
            json={},
            headers={"Authorization": f"Bearer {dc.pat}"},
            timeout=10,
        )
        assert answer.status_code == 404
