"""Raw Jira issues -> WorkItem / Objective: every value shape, errors, changelog history."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from mapping.config import JiraSource
from mapping.jira import KEY_IDS, JiraFacts, JiraField, JiraMapper, adf_text, parse_jira_datetime
from mapping.mapper import MappingError
from mapping.model import Category, Level, Objective, PortfolioState, StatusCategory, WorkItem

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "jira"

FIELDS = {
    "estimate": JiraField("customfield_10016", "Story point estimate", "number"),
    "business_value": JiraField("customfield_10101", "Business Value", "number"),
    "time_criticality": JiraField("customfield_10102", "Time Criticality", "number"),
    "job_size": JiraField("customfield_10104", "Job Size", "number"),
    "team": JiraField("customfield_10001", "Team", "team"),
    "increment": JiraField("fixVersions", "Fix versions", "array", "version"),
    "category": JiraField("customfield_10110", "Investment Category", "option"),
    "start_date": JiraField("customfield_10015", "Start date", "date"),
    "flagged": JiraField("customfield_10021", "Flagged", "array", "option"),
    "planned_value": JiraField("customfield_10120", "Planned Business Value", "number"),
    "actual_value": JiraField("customfield_10121", "Actual Business Value", "number"),
}
WRITEBACK = {
    "wsjf": JiraField("customfield_10200", "WSJF", "number"),
    "health": JiraField("customfield_10201", "Portfolio Health", "option"),
}
RANK = JiraField(
    "customfield_10019", "Rank", "any", custom="com.pyxis.greenhopper.jira:gh-lexo-rank"
)


def source(**overrides: Any) -> JiraSource:
    data: dict[str, Any] = {
        "name": "jira",
        "kind": "jira",
        "url": "https://contoso.atlassian.net",
        "auth": {"email": {"env": "E"}, "token": {"env": "T"}},
        "scope": "project = ART",
        "levels": {"Portfolio Epic": "epic", "Feature": "feature", "Story": "story"},
        "objective_types": ["PI Objective"],
        "statuses": {"Cancelled": "removed"},
        "categories": {"Tech Debt": "maintenance", "Enabler": "enabler"},
        "writeback": {"wsjf": "WSJF", "health": "Portfolio Health", "rank": True},
    }
    data.update(overrides)
    return JiraSource.model_validate(data)


def facts(**overrides: Any) -> JiraFacts:
    values: dict[str, Any] = {
        "deployment": "cloud",
        "time_zone": "Europe/Berlin",
        "fields": FIELDS,
        "writeback": WRITEBACK,
        "rank_field": RANK,
        "status_categories": {"10000": "new", "10001": "indeterminate", "10002": "done"},
    }
    values.update(overrides)
    return JiraFacts(**values)


def status(name: str, key: str, status_id: str = "10001") -> dict[str, Any]:
    return {"id": status_id, "name": name, "statusCategory": {"id": 4, "key": key, "name": "x"}}


def issue(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "summary": "Checkout in one click",
        "issuetype": {"id": "10004", "name": "Story", "hierarchyLevel": 0},
        "status": status("In Progress", "indeterminate"),
        "created": "2026-10-05T09:00:00.000+0200",
        "updated": "2026-11-20T14:05:33.123+0100",
        "resolutiondate": None,
        "labels": [],
        "parent": {"id": "10010", "key": "ART-7", "fields": {"summary": "Feature"}},
        "customfield_10016": 5,
        "customfield_10101": "8",
        "customfield_10102": {"value": "3", "id": "10301"},
        "customfield_10104": None,
        "customfield_10001": {"id": "4b1e", "name": "Team Falcon", "title": "Team Falcon"},
        "fixVersions": [{"id": "1", "name": "PI 26.3"}, {"id": "2", "name": "PI 26.4"}],
        "customfield_10110": {"value": "Enabler", "id": "10111"},
        "customfield_10015": "2026-10-12",
        "customfield_10021": [{"value": "Impediment", "id": "10140"}],
        "customfield_10200": 12.5,
        "customfield_10201": {"value": "at-risk", "id": "10101"},
        "customfield_10019": "0|i0000f:",
    }
    base.update(fields)
    return {
        "id": "10042",
        "key": "ART-42",
        "self": "https://x/rest/api/3/issue/10042",
        "fields": base,
    }


def test_every_field_shape_maps() -> None:
    item = JiraMapper(source(), facts()).map(issue())
    assert isinstance(item, WorkItem)
    assert (item.external_id, item.key, item.level, item.item_type) == (
        "10042",
        "ART-42",
        Level.story,
        "Story",
    )
    assert item.title == "Checkout in one click"
    assert (item.status, item.status_category) == ("In Progress", StatusCategory.doing)
    assert item.parent_external_id == "10010"
    assert (item.estimate, item.business_value, item.time_criticality, item.job_size) == (
        5.0,
        8.0,
        3.0,
        None,
    )
    assert item.team == "Team Falcon"
    assert item.increment == "PI 26.4"
    assert item.category is Category.enabler
    assert item.start_date == date(2026, 10, 12)
    assert item.flagged is True
    assert item.created_at == datetime(2026, 10, 5, 7, 0, tzinfo=UTC)
    assert item.updated_at == datetime(2026, 11, 20, 13, 5, 33, 123000, tzinfo=UTC)
    assert item.tracker_rank == "0|i0000f:"
    assert item.writeback_values == {"wsjf": 12.5, "health": "at-risk", "rank": "0|i0000f:"}


def test_user_sprint_and_adf_values_read_as_text() -> None:
    team = JiraField("assignee", "Assignee", "user")
    sprint = JiraField("customfield_10020", "Sprint", "array", "json")
    art = JiraField("customfield_10300", "ART notes", "string")
    mapper = JiraMapper(source(), facts(fields={"team": team, "increment": sprint, "art": art}))
    item = mapper.map(
        issue(
            assignee={"accountId": "5b10", "displayName": "Mia Krystof"},
            customfield_10020=[
                {"id": 3, "name": "Sprint 3", "state": "future"},
                {"id": 2, "name": "Sprint 2", "state": "active"},
                {"id": 1, "name": "Sprint 1", "state": "closed"},
            ],
            customfield_10300={
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Pay"}]}],
            },
        )
    )
    assert isinstance(item, WorkItem)
    assert (item.team, item.increment, item.art) == ("Mia Krystof", "Sprint 3", "Pay")


def test_status_override_and_unknown_category() -> None:
    mapper = JiraMapper(source(), facts())
    cancelled = mapper.map(issue(status=status("Cancelled", "done")))
    assert cancelled.status_category is StatusCategory.removed
    with pytest.raises(MappingError, match=r"'Parked' has statusCategory .*'completed'.*statuses"):
        mapper.map(
            issue(status={"id": "9", "name": "Parked", "statusCategory": {"key": "completed"}})
        )


def test_category_by_field_then_label_then_type_else_none() -> None:
    mapper = JiraMapper(source(), facts(fields={"category": FIELDS["category"]}))
    by_label = mapper.map(issue(customfield_10110=None, labels=["tech debt"]))
    by_type = JiraMapper(source(levels={"Enabler": "story"}), facts(fields={})).map(
        issue(issuetype={"name": "Enabler"})
    )
    default = mapper.map(issue(customfield_10110=None))
    assert (by_label.category, by_type.category, default.category) == (
        Category.maintenance,
        Category.enabler,
        None,
    )
    with pytest.raises(MappingError, match=r"Investment Category \(customfield_10110\): 'Growth'"):
        mapper.map(issue(customfield_10110={"value": "Growth"}))


def test_epic_portfolio_state_comes_from_its_status() -> None:
    epic = JiraMapper(source(), facts()).map(
        issue(issuetype={"name": "Portfolio Epic"}, status=status("Portfolio Backlog", "new"))
    )
    assert isinstance(epic, WorkItem)
    assert (epic.level, epic.portfolio_state) == (Level.epic, PortfolioState.backlog)


def test_legacy_epic_link_and_parent_link() -> None:
    links = {
        "epic_link": JiraField("customfield_10014", "Epic Link", "any"),
        "parent_link": JiraField("customfield_10018", "Parent Link", "any"),
    }
    mapper = JiraMapper(source(), facts(deployment="datacenter", fields=links))
    story = issue(parent=None, customfield_10014="ART-1", customfield_10018=None)
    story[KEY_IDS] = {"ART-1": "10001"}
    feature = issue(
        parent=None,
        customfield_10014=None,
        customfield_10018={
            "hasEpicLinkFieldDependency": False,
            "data": {"id": 10002, "key": "P-2"},
        },
    )
    assert mapper.map(story).parent_external_id == "10001"
    assert mapper.map(feature).parent_external_id == "10002"
    assert "customfield_10014" in mapper.map(story).raw["fields"]
    assert KEY_IDS not in mapper.map(story).raw
    with pytest.raises(MappingError, match=r"Epic Link \(customfield_10014\): issue key 'ART-9'"):
        mapper.map(issue(parent=None, customfield_10014="ART-9"))


def test_pi_objective_maps_to_objective() -> None:
    objective = JiraMapper(source(), facts()).map(
        issue(
            issuetype={"name": "PI Objective"},
            status=status("Done", "done"),
            labels=["uncommitted"],
            customfield_10120=8,
            customfield_10121="6",
        )
    )
    assert isinstance(objective, Objective)
    assert (objective.planned_value, objective.actual_value, objective.committed) == (8, 6, False)
    assert objective.team == "Team Falcon"
    assert objective.status_category is StatusCategory.done


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"customfield_10016": "five"},
            r"Story point estimate \(customfield_10016\): expected a number, got 'five'",
        ),
        ({"customfield_10016": True}, r"expected a number, got True"),
        (
            {"customfield_10015": "next week"},
            r"Start date \(customfield_10015\): not a date: 'next week'",
        ),
        ({"issuetype": {"name": "Sub-task"}}, r"issuetype: 'Sub-task' is not mapped to a level"),
        ({"summary": ""}, r"summary: missing or empty"),
        ({"updated": "yesterday"}, r"updated: not a timestamp with a time zone: 'yesterday'"),
        ({"customfield_10001": {"weird": 1}}, r"Team \(customfield_10001\): cannot read a value"),
    ],
)
def test_bad_values_name_the_field_and_the_value(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        JiraMapper(source(), facts()).map(issue(**change))


def test_changelog_becomes_status_category_and_field_history() -> None:
    raw = issue()
    raw["changelog"] = {
        "startAt": 0,
        "maxResults": 2,
        "total": 2,
        "histories": [
            {
                "id": "500",
                "created": "2026-11-01T10:00:00.000+0100",
                "items": [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "fieldId": "status",
                        "from": "10000",
                        "fromString": "To Do",
                        "to": "10001",
                        "toString": "In Progress",
                    },
                    {
                        "field": "Story point estimate",
                        "fieldtype": "custom",
                        "fieldId": "customfield_10016",
                        "from": None,
                        "fromString": "3",
                        "to": None,
                        "toString": "5",
                    },
                    {"field": "description", "fieldId": "description", "toString": "ignored"},
                ],
            },
            {
                "id": "501",
                "created": 1762000000000,
                "items": [
                    {
                        "field": "IssueParentAssociation",
                        "fieldId": "parent",
                        "from": "10009",
                        "fromString": "ART-6",
                        "to": "10010",
                        "toString": "ART-7",
                    }
                ],
            },
        ],
    }
    item = JiraMapper(source(), facts()).map(raw)
    assert [(c.change_id, c.field, c.from_value, c.to_value) for c in item.history] == [
        ("500", "status", "To Do", "In Progress"),
        ("500", "status_category", "todo", "doing"),
        ("500", "estimate", "3.0", "5.0"),
        ("501", "parent_external_id", "10009", "10010"),
    ]
    assert item.history[3].changed_at == datetime.fromtimestamp(1762000000, UTC)
    assert "changelog" not in item.raw


def test_history_status_category_honours_overrides() -> None:
    raw = issue(status=status("Cancelled", "done", "10002"))
    raw["changelog"] = {
        "histories": [
            {
                "id": "9",
                "created": "2026-11-01T10:00:00.000+0000",
                "items": [
                    {
                        "fieldId": "status",
                        "from": "10001",
                        "fromString": "In Progress",
                        "to": "10002",
                        "toString": "Cancelled",
                    }
                ],
            }
        ]
    }
    item = JiraMapper(source(), facts()).map(raw)
    assert [(c.field, c.to_value) for c in item.history] == [
        ("status", "Cancelled"),
        ("status_category", "removed"),
    ]


def test_datetime_and_adf_helpers() -> None:
    assert parse_jira_datetime("2020-03-31T16:43:50.000+0000") == datetime(
        2020, 3, 31, 16, 43, 50, tzinfo=UTC
    )
    assert parse_jira_datetime(1492070429) == datetime.fromtimestamp(1492070429, UTC)
    assert parse_jira_datetime("2026-01-01T00:00:00") is None
    doc = {
        "type": "doc",
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "a"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "b"}]},
        ],
    }
    assert adf_text(doc) == "a\nb"


def test_fetch_fields_are_only_what_the_mapping_reads() -> None:
    wanted = facts().fetch_fields()
    assert wanted[:7] == [
        "summary",
        "issuetype",
        "status",
        "created",
        "updated",
        "resolutiondate",
        "labels",
    ]
    assert "parent" in wanted and "customfield_10016" in wanted and "customfield_10019" in wanted
    assert "description" not in wanted and "*all" not in wanted
    assert len(wanted) == len(set(wanted))


# --- payloads shaped exactly like the published specification's examples ---------------------


def _spec() -> dict[str, Any]:
    path = REFERENCE / "platform-openapi-v3.json"
    if not path.exists():
        pytest.skip(f"Jira reference specification not found at {path} (a clone without ../shared)")
    return json.loads(path.read_text())


def _example(spec: dict[str, Any], path: str, method: str) -> Any:
    content = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]
    example = content["example"]
    return json.loads(example) if isinstance(example, str) else example


def test_spec_issue_example_with_unrequested_fields_maps() -> None:
    """The GET issue example carries attachments, worklogs, watchers, ADF descriptions... none of
    which the mapping asked for; completed with the fields it does read, it maps."""
    spec = _spec()
    raw = _example(spec, "/rest/api/3/issue/{issueIdOrKey}", "get")
    search = _example(spec, "/rest/api/3/search/jql", "get")["issues"][0]
    statuses = _example(spec, "/rest/api/3/status", "get")
    issue_type = _example(spec, "/rest/api/3/issuetype", "get")[0]
    raw = copy.deepcopy(raw)
    raw.setdefault("id", search["id"])
    raw.setdefault("key", search["key"])
    raw["fields"].update(
        summary="Main order flow broken",
        issuetype=issue_type,
        status=statuses[0],
        created="2023-06-24T19:24:50.000+0000",
        updated="2023-06-25T08:00:00.000+0000",
    )
    mapper = JiraMapper(source(levels={"Task": "story"}), facts(fields={}, writeback={}))
    item = mapper.map(raw)
    assert isinstance(item, WorkItem)
    assert (item.level, item.item_type, item.status, item.status_category) == (
        Level.story,
        "Task",
        "In Progress",
        StatusCategory.doing,
    )
    assert item.raw["fields"]["attachment"] == raw["fields"]["attachment"]


def test_spec_search_example_without_issue_type_is_a_clear_mapping_error() -> None:
    search = _example(_spec(), "/rest/api/3/search/jql", "get")
    with pytest.raises(MappingError, match="issuetype: missing"):
        JiraMapper(source(), facts()).map(search["issues"][0])


def test_spec_changelog_bulkfetch_example_maps_with_epoch_times() -> None:
    logs = _example(_spec(), "/rest/api/3/changelog/bulkfetch", "post")["issueChangeLogs"][0]
    raw = issue()
    raw["changelog"] = {"histories": logs["changeHistories"]}
    item = JiraMapper(source(), facts()).map(raw)
    assert item.history == ()  # summary changes are not tracked, and nothing fails


def test_spec_status_example_categories_with_unusual_keys() -> None:
    statuses = _example(_spec(), "/rest/api/3/status", "get")
    mapper = JiraMapper(source(statuses={"Closed": "done"}), facts())
    in_progress = mapper.map(issue(status=statuses[0]))
    closed = mapper.map(issue(status=statuses[1]))
    assert (in_progress.status_category, closed.status_category) == (
        StatusCategory.doing,
        StatusCategory.done,
    )
