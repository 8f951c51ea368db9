"""Apply over mocked HTTP: stale revisions re-planned once, partial failures, notifications."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers
from sqlalchemy import Engine

from flows.writeback import apply_writeback, plan_writeback, result_lines
from mapping.config import LpmConfig
from tests.writeback.mocked import (
    BOT,
    JIRA,
    history,
    jira_changelog,
    jira_config,
    jira_discovery,
    jira_read,
    warehouse,
)
from warehouse import models
from warehouse.db import open_warehouse
from warehouse.models import table_of
from warehouse.writeback import ledger_rows

ADO = "https://dev.azure.com/fabrikam"
ADO_API = f"{ADO}/Fabrikam/_apis/wit"
STALE = {
    "$id": "1",
    "message": "TF26071: This work item has been changed by someone else since you opened it.",
    "typeKey": "WorkItemRevisionMismatchException",
}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    yield engine
    engine.dispose()


def ado_config() -> LpmConfig:
    return LpmConfig.model_validate(
        {
            "portfolio": {"name": "P"},
            "sources": [
                {
                    "name": "ado",
                    "kind": "azure_devops",
                    "url": ADO,
                    "project": "Fabrikam",
                    "auth": {"token": {"env": "WB_TEST_PAT"}},
                    "scope": "[System.WorkItemType] = 'Epic'",
                    "levels": {"Epic": "epic"},
                    "writeback": {"wsjf": "Custom.WSJF"},
                }
            ],
        }
    )


def ado_item(item_id: int, rev: int, wsjf: float) -> dict[str, Any]:
    return {"id": item_id, "rev": rev, "fields": {"System.Rev": rev, "Custom.WSJF": wsjf}}


def ado_discovery(mock: responses.RequestsMock) -> None:
    mock.get(
        re.compile(rf"{re.escape(ADO_API)}/workitemtypes/Epic/states.*"),
        json={"count": 1, "value": [{"name": "New", "category": "Proposed"}]},
    )


def batch(mock: responses.RequestsMock, *items: dict[str, Any]) -> None:
    mock.post(
        re.compile(rf"{re.escape(ADO_API)}/workitemsbatch.*"),
        json={"count": len(items), "value": list(items)},
    )


def patches(mock: responses.RequestsMock) -> list[list[dict[str, Any]]]:
    return [json.loads(call.request.body) for call in mock.calls if call.request.method == "PATCH"]


def test_a_stale_revision_is_read_again_and_written_once_more(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    warehouse(engine, "ado", "azure_devops", {"7": {"wsjf": 4.0, "rev": 3}})
    plan = plan_writeback(ado_config(), engine)
    assert [(c.key, c.tracker_value, c.new_value) for c in plan.writes] == [("E-7", "4", "5")]
    ado_discovery(mock)
    batch(mock, ado_item(7, 3, 4.0))  # right before the write
    batch(mock, ado_item(7, 4, 4.0))  # after the 412: someone saved the item, not our field
    url = re.compile(rf"{re.escape(ADO_API)}/workitems/7.*")
    mock.patch(url, status=412, json=STALE)
    mock.patch(url, json={"id": 7, "rev": 5, "fields": {}})
    result = apply_writeback(ado_config(), engine, plan)
    assert result.counts() == {"applied": 1, "skipped_conflict": 0, "failed": 0}
    sent = patches(mock)
    assert [p[0] for p in sent] == [
        {"op": "test", "path": "/rev", "value": 3},
        {"op": "test", "path": "/rev", "value": 4},
    ]
    assert sent[1][1:] == [{"op": "add", "path": "/fields/Custom.WSJF", "value": 5.0}]
    [row] = ledger_rows(engine, plan.run_id)
    assert (row.status, row.tracker_value, row.new_value) == ("applied", "4", "5")


def test_a_persons_value_found_after_a_stale_revision_is_skipped(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    warehouse(engine, "ado", "azure_devops", {"7": {"wsjf": 4.0, "rev": 3}})
    plan = plan_writeback(ado_config(), engine)
    ado_discovery(mock)
    batch(mock, ado_item(7, 3, 4.0))
    batch(mock, ado_item(7, 4, 9.0))  # a person typed 9 between our read and our write
    mock.patch(re.compile(rf"{re.escape(ADO_API)}/workitems/7.*"), status=412, json=STALE)
    result = apply_writeback(ado_config(), engine, plan)
    assert result.counts() == {"applied": 0, "skipped_conflict": 1, "failed": 0}
    assert len(patches(mock)) == 1
    [row] = ledger_rows(engine, plan.run_id)
    assert (row.status, row.tracker_value) == ("skipped_conflict", "9")
    assert row.note.startswith("changed while writing")
    _, problems = result_lines(result)
    assert problems == [f"ado E-7 wsjf: skipped_conflict: {row.note}"]


def test_one_failed_item_does_not_stop_the_others(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    warehouse(
        engine, "ado", "azure_devops", {"7": {"wsjf": 4.0, "rev": 3}, "8": {"wsjf": 4.0, "rev": 2}}
    )
    plan = plan_writeback(ado_config(), engine)
    ado_discovery(mock)
    batch(mock, ado_item(7, 3, 4.0), ado_item(8, 2, 4.0))
    mock.patch(
        re.compile(rf"{re.escape(ADO_API)}/workitems/7.*"),
        status=400,
        json={"$id": "1", "message": "TF401320: Rule Error for field WSJF.", "typeKey": "x"},
    )
    mock.patch(re.compile(rf"{re.escape(ADO_API)}/workitems/8.*"), json={"id": 8, "rev": 3})
    result = apply_writeback(ado_config(), engine, plan)
    status = {r.key: (r.status, r.error) for r in result.results}
    assert status["E-8"] == ("applied", None)
    assert status["E-7"][0] == "failed" and "TF401320" in (status["E-7"][1] or "")
    assert not result.clean
    rows = {r.work_item_id: r for r in ledger_rows(engine, plan.run_id)}
    assert sorted(r.status for r in rows.values()) == ["applied", "failed"]
    assert "pat-secret" not in repr(list(rows.values()))


def test_rank_values_are_read_from_the_backlog_order_field(
    mock: responses.RequestsMock,
) -> None:
    from connectors.azure_devops import AzureDevOpsConnector
    from mapping.azure_devops import AzureDevOpsFacts

    source = ado_config().sources[0]
    assert source.kind == "azure_devops"
    connector = AzureDevOpsConnector.from_config(source)
    item = {"id": 7, "rev": 3, "fields": {"System.Rev": 3, "Microsoft.VSTS.Common.StackRank": 12.5}}
    batch(mock, item)
    assert connector.read_values(AzureDevOpsFacts({}), ["7"], ["rank"]) == {
        "7": {"rank": 12.5, "rev": 3}
    }
    asked = json.loads(mock.calls[0].request.body)["fields"]
    assert "Microsoft.VSTS.Common.StackRank" in asked


def test_jira_edits_say_when_watchers_could_not_be_spared(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    warehouse(engine, "jira", "jira", {"10001": {"wsjf": 4.0}})
    plan = plan_writeback(jira_config(), engine)
    jira_discovery(mock)
    read_at = datetime.now(UTC) - timedelta(minutes=1)
    jira_read(mock, "10001", 4.0, updated=read_at)
    jira_changelog(mock, "10001", history(read_at + timedelta(seconds=1), BOT, "4", "5"))
    mock.put(
        f"{JIRA}/rest/api/3/issue/10001",
        status=403,
        json={
            "errorMessages": [
                "To discard the user notification either admin or project admin permissions "
                "are required."
            ],
            "errors": {},
        },
        match=[matchers.query_param_matcher({"notifyUsers": "false"})],
    )
    mock.put(f"{JIRA}/rest/api/3/issue/10001", status=204)
    result = apply_writeback(jira_config(), engine, plan)
    assert result.clean and result.counts()["applied"] == 1
    [notice] = result.notices
    assert "notified" in notice
    puts = [c.request for c in mock.calls if c.request.method == "PUT"]
    assert [json.loads(r.body) for r in puts] == [{"fields": {"customfield_10200": 5.0}}] * 2
    [row] = ledger_rows(engine, plan.run_id)
    assert row.note and "notified" in row.note
    lines, _ = result_lines(result)
    assert any(line.startswith("note: jira: watchers were notified") for line in lines)


def test_a_value_jira_rejects_fails_alone_and_the_items_other_fields_are_written(
    mock: responses.RequestsMock, engine: Engine
) -> None:
    warehouse(engine, "jira", "jira", {"10001": {"wsjf": 4.0, "health": None}})
    config = jira_config()
    source = config.sources[0].model_copy(
        update={
            "writeback": config.sources[0].writeback.model_copy(
                update={"health": "Health", "health_values": {}}
            )
        }
    )
    config = config.model_copy(update={"sources": [source]})
    rollup = table_of(models.Rollup)
    with engine.begin() as conn:
        conn.execute(rollup.update().values(health="blocked"))
    plan = plan_writeback(config, engine)
    assert sorted(c.field for c in plan.writes) == ["health", "wsjf"]
    jira_discovery(
        mock, {"id": "customfield_10300", "name": "Health", "schema": {"type": "option"}}
    )
    read_at = datetime.now(UTC) - timedelta(minutes=1)
    jira_read(mock, "10001", 4.0, updated=read_at)
    jira_changelog(mock, "10001", history(read_at + timedelta(seconds=1), BOT, "4", "5"))
    rejected = {
        "errorMessages": [],
        "errors": {"customfield_10300": "Option value 'blocked' is not valid"},
    }
    both = {"fields": {"customfield_10300": {"value": "blocked"}, "customfield_10200": 5.0}}
    only_health = {"fields": {"customfield_10300": {"value": "blocked"}}}
    url = f"{JIRA}/rest/api/3/issue/10001"
    mock.put(url, status=400, json=rejected, match=[matchers.json_params_matcher(both)])
    mock.put(url, status=400, json=rejected, match=[matchers.json_params_matcher(only_health)])
    mock.put(
        url,
        status=204,
        match=[matchers.json_params_matcher({"fields": {"customfield_10200": 5.0}})],
    )
    result = apply_writeback(config, engine, plan)
    status = {r.field: (r.status, r.error) for r in result.results}
    assert status["wsjf"] == ("applied", None)
    assert status["health"][0] == "failed" and "not valid" in (status["health"][1] or "")
    assert result.calls["jira"].field_writes == 3
