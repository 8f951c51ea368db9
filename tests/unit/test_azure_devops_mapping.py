"""Azure DevOps work item JSON -> LPM model, on Microsoft's own HTTP examples."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapping.azure_devops import (
    ESTIMATE_FIELDS,
    RANK_FIELDS,
    AzureDevOpsFacts,
    AzureDevOpsMapper,
    AzureDevOpsMappingError,
    batch_fields,
    parent_id,
    state_categories,
)
from mapping.config import AzureDevOpsSource
from mapping.mapper import MappingError
from mapping.model import Category, Level, Objective, PortfolioState, WorkItem
from tests.ado_reference import response_body

BUG_STATES = "workItemTypeStates/GET__workitem_type_states.json"
EXPAND_ALL = "workItems/GET__wit_WorkItems_ids-_ids___expand-all.json"
USER_STORY = "workItems/GET__wit_WorkItems_id.json"
UPDATED_TASK = "workItems/PATCH__wit_workitems__taskId_.json"
UPDATES = "updates/GET__list_of_workitem_updates.json"
BATCH = "workItemsBatch/POST__wit_WorkItemsBatch_ids-_ids__fields-_columns_.json"


def _source(**overrides: Any) -> AzureDevOpsSource:
    data: dict[str, Any] = {
        "name": "ado",
        "kind": "azure_devops",
        "url": "https://dev.azure.com/fabrikam",
        "project": "Fabrikam-Fiber-Git",
        "auth": {"token": {"env": "ADO_PAT"}},
        "scope": "[System.WorkItemType] <> ''",
        "levels": {
            "Epic": "epic",
            "Feature": "feature",
            "Product Backlog Item": "feature",
            "User Story": "story",
            "Bug": "story",
            "Task": "story",
        },
    }
    data.update(overrides)
    return AzureDevOpsSource.model_validate(data)


def _states(*pairs: tuple[str, str]) -> dict[str, Any]:
    """A `workitemtypes/{type}/states` body, shaped like the reference example."""
    return {
        "count": len(pairs),
        "value": [{"name": n, "color": "b2b2b2", "category": c} for n, c in pairs],
    }


def _type_states() -> dict[str, dict[str, str]]:
    agile = state_categories(response_body(BUG_STATES))
    scrum_task = _states(
        ("To Do", "Proposed"),
        ("In Progress", "InProgress"),
        ("Done", "Completed"),
        ("Removed", "Removed"),
    )
    scrum_backlog = _states(
        ("New", "Proposed"),
        ("Approved", "Proposed"),
        ("Committed", "InProgress"),
        ("Done", "Completed"),
        ("Removed", "Removed"),
    )
    return {
        "Bug": agile,
        "User Story": agile,
        "Feature": agile,
        "Epic": agile,
        "Task": state_categories(scrum_task),
        "Product Backlog Item": state_categories(scrum_backlog),
    }


def _mapper(**overrides: Any) -> AzureDevOpsMapper:
    return AzureDevOpsMapper(_source(**overrides), AzureDevOpsFacts(_type_states()))


def _expand_all() -> dict[int, dict[str, Any]]:
    return {item["id"]: item for item in response_body(EXPAND_ALL)["value"]}


def test_state_categories_read_the_reference_states_response() -> None:
    assert state_categories(response_body(BUG_STATES)) == {
        "New": "Proposed",
        "Active": "InProgress",
        "CustomState": "InProgress",
        "Resolved": "Resolved",
        "Closed": "Completed",
    }


def test_scrum_items_map_with_hierarchy_effort_and_paths() -> None:
    items = _expand_all()
    mapper = _mapper()
    backlog_item = mapper.map(items[297])
    task = mapper.map(items[299])
    assert isinstance(backlog_item, WorkItem) and isinstance(task, WorkItem)
    assert (backlog_item.level, backlog_item.item_type, backlog_item.status) == (
        Level.feature,
        "Product Backlog Item",
        "New",
    )
    assert backlog_item.status_category == "todo"
    assert backlog_item.estimate == 8.0, "Scrum's Effort is the estimate when none is configured"
    # 297's own relations are Hierarchy-Forward (its children): it has no parent.
    assert backlog_item.parent_external_id is None
    assert task.parent_external_id == "297"
    assert (task.external_id, task.key, task.title) == (
        "299",
        "299",
        "JavaScript implementation for Microsoft Account",
    )
    assert task.art == "Website" and task.team is None
    assert task.created_at == datetime(2014, 12, 29, 20, 49, 21, 617000, tzinfo=UTC)
    assert task.updated_at == datetime(2014, 12, 29, 20, 49, 28, 740000, tzinfo=UTC)
    assert task.raw == items[299]


def test_agile_story_maps_state_category_iteration_and_value_area() -> None:
    story = _mapper().map(response_body(USER_STORY))
    assert isinstance(story, WorkItem)
    assert (story.level, story.status, story.status_category) == (Level.story, "Active", "doing")
    assert story.increment == "Iteration 1"
    assert story.category == Category.business
    assert story.resolved_at is None


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("New", "todo"),
        ("Active", "doing"),
        ("CustomState", "doing"),
        ("Resolved", "done"),
        ("Closed", "done"),
    ],
)
def test_every_state_category_of_the_reference_maps(state: str, expected: str) -> None:
    raw = response_body(USER_STORY)
    raw["fields"]["System.State"] = state
    item = _mapper().map(raw)
    assert isinstance(item, WorkItem)
    assert item.status_category == expected
    if expected != "done":
        assert item.resolved_at is None
        return
    # No closed/resolved date in the example: the state change date is when it got done.
    assert item.resolved_at == datetime(2017, 10, 4, 23, 32, 1, 600000, tzinfo=UTC)
    raw["fields"]["Microsoft.VSTS.Common.ClosedDate"] = "2017-10-06T10:00:00Z"
    closed = _mapper().map(raw)
    assert isinstance(closed, WorkItem)
    assert closed.resolved_at == datetime(2017, 10, 6, 10, tzinfo=UTC)
    raw["fields"]["Microsoft.VSTS.Common.ResolvedDate"] = "2017-10-05T10:00:00Z"
    resolved = _mapper().map(raw)
    assert isinstance(resolved, WorkItem)
    assert resolved.resolved_at == datetime(2017, 10, 5, 10, tzinfo=UTC), "done once Resolved"


def test_removed_category_and_status_override() -> None:
    mapper = AzureDevOpsMapper(
        _source(statuses={"closed": "removed"}),
        AzureDevOpsFacts({"user story": {"Cut": "Removed", "Closed": "Completed"}}),
    )
    raw = response_body(USER_STORY)
    raw["fields"]["System.State"] = "Cut"
    assert mapper.map(raw).status_category == "removed"
    raw["fields"]["System.State"] = "Closed"
    assert mapper.map(raw).status_category == "removed", "`statuses` overrides the category"


def test_unknown_state_names_field_value_and_the_type_states() -> None:
    raw = response_body(USER_STORY)
    raw["fields"]["System.State"] = "Parked"
    with pytest.raises(AzureDevOpsMappingError) as caught:
        _mapper().map(raw)
    assert isinstance(caught.value, MappingError)
    assert caught.value.field == "System.State"
    assert str(caught.value) == (
        "System.State = 'Parked': not a state of work item type 'User Story' "
        "(states: New, Active, CustomState, Resolved, Closed); map it under `statuses`"
    )


def test_unmapped_type_and_missing_field_are_named() -> None:
    batch = response_body(BATCH)["value"]
    mapper = AzureDevOpsMapper(_source(levels={"Task": "story"}), AzureDevOpsFacts(_type_states()))
    with pytest.raises(AzureDevOpsMappingError, match=r"^System.WorkItemType = 'Product Backlog"):
        mapper.map(batch[0])
    with pytest.raises(AzureDevOpsMappingError) as caught:
        mapper.map(batch[1])  # the batch example asked for no System.State
    assert str(caught.value) == "System.State = None: required field is missing"


def test_non_numeric_estimate_is_named() -> None:
    raw = _expand_all()[297]
    raw["fields"]["Microsoft.VSTS.Scheduling.Effort"] = "large"
    with pytest.raises(AzureDevOpsMappingError) as caught:
        _mapper().map(raw)
    assert caught.value.field == "Microsoft.VSTS.Scheduling.Effort"
    assert "'large'" in str(caught.value)


def test_configured_reference_names_win_over_defaults() -> None:
    raw = response_body(USER_STORY)
    raw["fields"].update(
        {
            "Microsoft.VSTS.Scheduling.StoryPoints": 5,
            "Custom.JobSize": 8,
            "Custom.RiskReduction": "3",
            "Microsoft.VSTS.Common.BusinessValue": 13,
            "Microsoft.VSTS.Common.TimeCriticality": 2.5,
            "Custom.Team": {"displayName": "Falcon", "id": "1"},
            "Custom.PI": "PI 26.4",
            "Custom.Blocked": "Yes",
            "Microsoft.VSTS.Scheduling.TargetDate": "2026-12-18T00:00:00Z",
        }
    )
    mapper = _mapper(
        fields={
            "job_size": "Custom.JobSize",
            "risk_reduction": "Custom.RiskReduction",
            "team": "Custom.Team",
            "increment": "Custom.PI",
            "flagged": "Custom.Blocked",
        }
    )
    item = mapper.map(raw)
    assert isinstance(item, WorkItem)
    assert (item.estimate, item.job_size, item.risk_reduction) == (5.0, 8.0, 3.0)
    assert (item.business_value, item.time_criticality) == (13.0, 2.5)
    assert (item.team, item.increment, item.flagged) == ("Falcon", "PI 26.4", True)
    assert item.target_date == date(2026, 12, 18)


def test_area_path_gives_art_and_team_and_iteration_gives_pi() -> None:
    raw = response_body(USER_STORY)
    raw["fields"]["System.AreaPath"] = "Fabrikam\\Payments ART\\Falcon"
    raw["fields"]["System.IterationPath"] = "Fabrikam\\PI 26.4\\Sprint 2"
    item = _mapper().map(raw)
    assert isinstance(item, WorkItem)
    assert (item.art, item.team, item.increment) == ("Payments ART", "Falcon", "PI 26.4")


def test_path_fields_named_in_config_still_give_their_segment() -> None:
    raw = response_body(USER_STORY)
    raw["fields"]["System.AreaPath"] = "Fabrikam\\Payments ART\\Falcon"
    raw["fields"]["System.IterationPath"] = "Fabrikam\\PI 26.4\\Sprint 2"
    mapper = _mapper(fields={"team": "System.AreaPath", "increment": "System.IterationPath"})
    item = mapper.map(raw)
    assert (item.team, item.art, item.increment) == ("Falcon", "Payments ART", "PI 26.4")


def test_investment_category_from_field_tag_type_and_value_area() -> None:
    raw = response_body(USER_STORY)  # tags: client; sample; teamservices
    assert _mapper(categories={"sample": "maintenance"}).map(raw).category == "maintenance"
    assert _mapper(categories={"User Story": "enabler"}).map(raw).category == "enabler"
    raw["fields"]["Microsoft.VSTS.Common.ValueArea"] = "Architectural"
    assert _mapper().map(raw).category == "enabler"
    raw["fields"]["Custom.Investment"] = "Run the business"
    mapper = _mapper(
        fields={"category": "Custom.Investment"}, categories={"Run the business": "maintenance"}
    )
    assert mapper.map(raw).category == "maintenance"
    raw["fields"]["Custom.Investment"] = "Moonshot"
    with pytest.raises(AzureDevOpsMappingError, match=r"^Custom.Investment = 'Moonshot'"):
        mapper.map(raw)


def test_epic_portfolio_state_from_board_column_or_configured_field() -> None:
    raw = response_body(USER_STORY)
    raw["fields"].update({"System.WorkItemType": "Epic", "System.BoardColumn": "Portfolio Backlog"})
    item = _mapper().map(raw)
    assert isinstance(item, WorkItem)
    assert (item.level, item.portfolio_state) == (Level.epic, PortfolioState.backlog)
    raw["fields"]["System.BoardColumn"] = "Parking lot"
    assert _mapper().map(raw).portfolio_state is None, "a custom column is no portfolio stage"
    raw["fields"]["System.State"] = "Removed"
    removed = AzureDevOpsMapper(_source(), AzureDevOpsFacts({"Epic": {"Removed": "Removed"}}))
    assert removed.map(raw).portfolio_state is None, "a removed epic left the Kanban"
    raw["fields"]["System.State"] = "Active"
    raw["fields"]["Custom.Stage"] = "Implementing"
    configured = _mapper(fields={"portfolio_state": "Custom.Stage"}).map(raw)
    assert configured.portfolio_state == PortfolioState.implementing
    raw["fields"]["System.WorkItemType"] = "Feature"
    assert _mapper().map(raw).portfolio_state is None, "only epics are on the portfolio Kanban"


def test_writeback_values_hold_owned_fields_rank_and_rev() -> None:
    raw = _expand_all()[297]
    raw["fields"].update({"Custom.WSJF": 4.5, "Microsoft.VSTS.Common.BacklogPriority": 1999.5})
    mapper = _mapper(writeback={"wsjf": "Custom.WSJF", "health": "Custom.Health", "rank": True})
    item = mapper.map(raw)
    assert isinstance(item, WorkItem)
    assert item.writeback_values == {
        "rev": 1,
        "wsjf": 4.5,
        "health": None,
        "rank": 1999.5,
        "rank_field": "Microsoft.VSTS.Common.BacklogPriority",
    }
    assert item.tracker_rank == f"{1999.5:024.10f}"


def test_pi_objective_maps_to_objective_with_commitment_from_tags() -> None:
    raw = response_body(USER_STORY)
    raw["fields"].update(
        {
            "System.WorkItemType": "PI Objective",
            "System.AreaPath": "Fabrikam\\Payments ART\\Falcon",
            "System.IterationPath": "Fabrikam\\PI 26.4",
            "System.Tags": "Stretch",
            "Custom.PlannedValue": 8,
            "Custom.ActualValue": 6,
        }
    )
    mapper = AzureDevOpsMapper(
        _source(
            objective_types=["PI Objective"],
            fields={"planned_value": "Custom.PlannedValue", "actual_value": "Custom.ActualValue"},
        ),
        AzureDevOpsFacts({"PI Objective": {"Active": "InProgress"}}),
    )
    objective = mapper.map(raw)
    assert isinstance(objective, Objective)
    assert (objective.team, objective.art, objective.increment) == (
        "Falcon",
        "Payments ART",
        "PI 26.4",
    )
    assert (objective.committed, objective.planned_value, objective.actual_value) == (False, 8, 6)
    assert objective.status_category == "doing"


def test_history_from_the_reference_updates() -> None:
    updates = response_body(UPDATES)["value"]
    raw = response_body(USER_STORY)
    raw["fields"]["System.WorkItemType"] = "Bug"
    raw["updates"] = updates
    item = _mapper().map(raw)
    assert isinstance(item, WorkItem)
    assert "updates" not in item.raw, "updates become history, not stored raw"
    assert [(c.change_id, c.field, c.from_value, c.to_value) for c in item.history] == [
        # The creation (update 1) sets initial values: no transition, as in a Jira changelog.
        # Link-only updates (same rev, no field deltas) still move the parent.
        ("3", "parent_external_id", None, "2"),
        ("4", "parent_external_id", "2", None),
        ("5", "parent_external_id", None, "7"),
        ("6", "status", "New", "Active"),
        ("6", "status_category", "todo", "doing"),
        ("6", "increment", "Iteration 1", "Iteration 2"),
        ("8", "estimate", None, "3.0"),
    ], "assignment, attachment, comment and tag updates touch no tracked field"
    when = {c.change_id: c.changed_at for c in item.history}
    # A field update is dated by its new ChangedDate, not by revisedDate (when it was superseded).
    assert when["6"] == datetime(2017, 9, 4, 2, 36, 18, 750000, tzinfo=UTC)
    # A link-only update carries no ChangedDate: its revisedDate is when the link changed.
    assert when["3"] == datetime(2017, 9, 4, 2, 33, 39, 230000, tzinfo=UTC)


def test_history_follows_a_work_item_type_change() -> None:
    updates = [
        {
            "id": 1,
            "rev": 1,
            "revisedDate": "2026-10-02T00:00:00Z",
            "fields": {
                "System.Rev": {"newValue": 1},
                "System.WorkItemType": {"newValue": "User Story"},
                "System.State": {"newValue": "New"},
                "System.ChangedDate": {"newValue": "2026-10-01T00:00:00Z"},
            },
        },
        {
            "id": 2,
            "rev": 2,
            "revisedDate": "9999-01-01T00:00:00Z",
            "fields": {
                "System.Rev": {"oldValue": 1, "newValue": 2},
                "System.WorkItemType": {"oldValue": "User Story", "newValue": "Feature"},
                "System.State": {"oldValue": "New", "newValue": "Active"},
                "System.ChangedDate": {
                    "oldValue": "2026-10-01T00:00:00Z",
                    "newValue": "2026-10-02T00:00:00Z",
                },
            },
        },
    ]
    changes = _mapper().history("Feature", updates)
    assert {c.change_id for c in changes} == {"2"}
    retyped = {c.field: (c.from_value, c.to_value) for c in changes}
    assert retyped == {
        "status": ("New", "Active"),
        "status_category": ("todo", "doing"),
        "level": ("story", "feature"),
    }


def test_parent_id_ignores_other_links_and_rejects_a_foreign_url() -> None:
    relations = _expand_all()[299]["relations"]
    assert parent_id(relations) == "297"
    assert parent_id(_expand_all()[297]["relations"]) is None
    assert parent_id(None) is None
    bad = [{"rel": "System.LinkTypes.Hierarchy-Reverse", "url": "https://example/attachments/x"}]
    with pytest.raises(AzureDevOpsMappingError, match=r"^relations\.url"):
        parent_id(bad)


def test_batch_fields_request_what_the_mapping_reads() -> None:
    default = batch_fields(_source())
    assert {"System.State", "System.ChangedDate", "System.AreaPath", *ESTIMATE_FIELDS} <= set(
        default
    )
    assert set(RANK_FIELDS) <= set(default)
    configured = batch_fields(
        _source(
            fields={"estimate": "Custom.Size", "rank": "Custom.Order"},
            writeback={"wsjf": "Custom.WSJF", "progress": "Custom.Progress"},
        )
    )
    assert {"Custom.Size", "Custom.Order", "Custom.WSJF", "Custom.Progress"} <= set(configured)
    assert not set(ESTIMATE_FIELDS) & set(configured)
    assert len(configured) == len(set(configured))


@given(st.floats(min_value=0, max_value=1e12), st.floats(min_value=0, max_value=1e12))
def test_tracker_rank_sorts_as_the_number(first: float, second: float) -> None:
    mapper = _mapper()
    raw = response_body(USER_STORY)

    def rank(value: float) -> str:
        raw["fields"]["Microsoft.VSTS.Common.StackRank"] = value
        item = mapper.map(raw)
        assert isinstance(item, WorkItem) and item.tracker_rank is not None
        return item.tracker_rank

    if round(first, 10) != round(second, 10):
        assert (rank(first) < rank(second)) == (first < second)


def test_negative_rank_is_rejected() -> None:
    raw = response_body(USER_STORY)
    raw["fields"]["Microsoft.VSTS.Common.StackRank"] = -1
    with pytest.raises(AzureDevOpsMappingError, match="StackRank = -1"):
        _mapper().map(raw)
