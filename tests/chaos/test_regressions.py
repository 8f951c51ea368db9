"""Bugs the chaos harness and the fuzzers found, each pinned where it was fixed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import Engine, select

from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import FetchPlan
from flows.sync import map_items
from mapping.azure_devops import AzureDevOpsFacts, AzureDevOpsMapper
from mapping.config import AzureDevOpsSource, ConfigError, JiraSource, load_config
from mapping.jira import JiraFacts, JiraField, JiraMapper
from mapping.mapper import MappingError
from mapping.model import HistoryChange, Objective, StatusCategory
from tests.factories import T0, work_item
from warehouse import models
from warehouse.load import ensure_source, finish_run, load_batch, start_run
from warehouse.writeback import (
    APPLIED,
    FAILED,
    PLANNED,
    SENDING,
    LedgerEntry,
    record,
    settle_leftovers,
)

ADO = "https://dev.azure.com/contoso"


def ado_source(**changes: Any) -> AzureDevOpsSource:
    fields = {"estimate": "Microsoft.VSTS.Scheduling.StoryPoints"}
    return AzureDevOpsSource.model_validate(
        {
            "name": "ado",
            "kind": "azure_devops",
            "url": ADO,
            "project": "Fabrikam",
            "auth": {"token": {"env": "REGRESSION_PAT"}},
            "scope": "[System.WorkItemType] = 'User Story'",
            "levels": {"User Story": "story"},
            "fields": fields,
            **changes,
        }
    )


def ado_item(item_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "rev": 3,
        "fields": {
            "System.Id": item_id,
            "System.WorkItemType": "User Story",
            "System.Title": f"Story {item_id}",
            "System.State": "New",
            "System.CreatedDate": "2026-10-01T09:00:00Z",
            "System.ChangedDate": "2026-10-02T09:00:00Z",
            **fields,
        },
    }


# --- mapping: malformed payloads are quarantined, never crash the sync ------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {**ado_item(1), "updates": [{"fields": {}}]},  # an update without id
        {**ado_item(2), "updates": "not a list of updates"},
        {**ado_item(3), "relations": [3.5]},
        {**ado_item(4), "updates": [{"id": 2, "fields": ["System.State"]}]},
        None,
        ["not", "an", "object"],
    ],
)
def test_a_malformed_work_item_is_a_mapping_error_and_quarantined(raw: Any) -> None:
    mapper = AzureDevOpsMapper(
        ado_source(), AzureDevOpsFacts(type_states={"User Story": {"New": "Proposed"}})
    )
    with pytest.raises(MappingError, match=r"malformed payload|a work item needs"):
        mapper.map(raw)
    items, objectives, quarantined = map_items(mapper, [raw])
    assert (items, objectives) == ([], [])
    assert [entry.payload for entry in quarantined] == [raw], "kept whole, whatever its shape"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", "1e400"])
def test_a_non_finite_number_from_azure_devops_is_rejected(value: str) -> None:
    mapper = AzureDevOpsMapper(
        ado_source(), AzureDevOpsFacts(type_states={"User Story": {"New": "Proposed"}})
    )
    with pytest.raises(MappingError, match="finite"):
        mapper.map(ado_item(5, **{"Microsoft.VSTS.Scheduling.StoryPoints": value}))


# --- loading: text PostgreSQL cannot store -----------------------------------------------------


def test_nul_characters_load_on_every_backend_as_the_replacement_character(
    engine: Engine,
) -> None:
    source_id = ensure_source(engine, "nul", "jira", "https://x.example")
    run_id = start_run(engine, source_id, "full")
    item = work_item(
        "1",
        title="before\x00after",
        team="Team\x00A",
        raw={"id": "1", "fields": {"summary": "before\x00after", "x\x00": ["\x00"]}},
    )
    load_batch(engine, run_id, source_id, [item])
    again = load_batch(engine, run_id, source_id, [item])
    table = models.WorkItem.__table__
    with engine.connect() as conn:
        row = conn.execute(select(table)).one()
    assert (row.title, row.team) == ("before\ufffdafter", "Team\ufffdA")
    assert row.raw == {"id": "1", "fields": {"summary": "before\ufffdafter", "x\ufffd": ["\ufffd"]}}
    assert (again.updated, again.unchanged) == (0, 1), "the stored row is the item, unchanged"


# --- config -------------------------------------------------------------------------------------


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "lpm.yaml"
    path.write_bytes(b"portfolio:\n  name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


# --- connectors: items deleted while a sync reads them -----------------------------------------


@pytest.fixture
def ado_connector(monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureDevOpsConnector]:
    monkeypatch.setenv("REGRESSION_PAT", "pat")
    connector = AzureDevOpsConnector.from_config(ado_source(sync={"concurrency": 1}))
    yield connector
    connector.close()


@responses.activate
def test_an_item_deleted_while_its_updates_are_read_is_left_to_the_reconcile(
    ado_connector: AzureDevOpsConnector,
) -> None:
    base = f"{ADO}/Fabrikam/_apis/wit"
    responses.post(
        f"{base}/wiql",
        json={"asOf": "2026-10-03T00:00:00Z", "workItems": [{"id": 1}, {"id": 2}, {"id": 3}]},
    )
    items = [ado_item(1), ado_item(2), ado_item(3)]
    responses.post(f"{base}/workitemsbatch", json={"count": 3, "value": items})
    responses.post(
        f"{base}/workitemsbatch",
        json={"count": 2, "value": [{"id": 1, "relations": []}, {"id": 2, "relations": []}]},
    )
    responses.get(f"{base}/workItems/1/updates", json={"count": 0, "value": []})
    responses.get(
        f"{base}/workItems/2/updates",
        status=404,
        json={"message": "TF401232: Work item 2 does not exist."},
    )
    facts = AzureDevOpsFacts(type_states={"User Story": {"New": "Proposed"}})
    pages = list(ado_connector.pages(facts, FetchPlan(full=True)))
    delivered = [item["id"] for page in pages for item in page.items]
    assert delivered == [1], "2 vanished during its updates, 3 between the two passes"


# --- write-back ledger: a killed apply's rows are settled by the next sync ---------------------


def _synced(engine: Engine, source_id: int, progress: float, at: datetime) -> int:
    run_id = start_run(engine, source_id, "full")
    item = work_item("1", updated_at=at, writeback_values={"progress": progress})
    load_batch(engine, run_id, source_id, [item], watermark=at)
    finish_run(engine, run_id, "succeeded")
    with engine.connect() as conn:
        return int(conn.execute(select(models.WorkItem.__table__.c.id)).scalar_one())


def _leftover(engine: Engine, item_id: int, planned_at: datetime) -> None:
    """What an apply killed while sending leaves: a `planned` row marked being sent."""
    entry = LedgerEntry(item_id, "progress", PLANNED, "86", "83", error=SENDING)
    record(engine, "killed-run", [entry], planned_at)


def _status(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(models.Writeback.__table__.c.status)).scalar_one())


@pytest.mark.parametrize(("seen", "status"), [(86.0, FAILED), (83.0, APPLIED)])
def test_a_leftover_row_is_settled_by_the_first_sync_after_it_changed_or_not(
    engine: Engine, seen: float, status: str
) -> None:
    """The sync after the killed run shows whether its write landed, even when the item did not
    change (an unchanged item's row is not rewritten). Left for later, the row would be
    credited with the next run's write of the same value: one tracker write, two `applied`."""
    source_id = ensure_source(engine, "ledger", "jira", "https://x.example")
    item_id = _synced(engine, source_id, 86.0, T0)
    killed = datetime.now(UTC)
    _leftover(engine, item_id, killed)
    assert settle_leftovers(engine, "ledger") == 0, "no sync since: nothing is known yet"
    assert _status(engine) == PLANNED
    _synced(engine, source_id, seen, T0 + timedelta(hours=2) if seen != 86.0 else T0)
    assert settle_leftovers(engine, "ledger") == 1
    assert _status(engine) == status


def test_a_leftover_row_never_sent_is_failed_even_when_a_person_set_the_same_value(
    engine: Engine,
) -> None:
    """Found by the chaos harness: a run killed before sending a change left it `planned`; a
    person then set the very value it had planned, the next sync saw it, and the row was settled
    `applied`, so lpm-sync took the person's value for its own and later overwrote it. Only rows
    marked as being sent may have reached the tracker."""
    source_id = ensure_source(engine, "ledger", "jira", "https://x.example")
    item_id = _synced(engine, source_id, 86.0, T0)
    entry = LedgerEntry(item_id, "progress", PLANNED, "86", "83")
    record(engine, "killed-run", [entry], datetime.now(UTC))
    _synced(engine, source_id, 83.0, T0 + timedelta(hours=2))  # the person's 83
    assert settle_leftovers(engine, "ledger") == 1
    assert _status(engine) == FAILED


def test_a_leftover_write_a_person_changed_again_before_the_sync_is_confirmed_by_the_changelog(
    engine: Engine,
) -> None:
    """Found by the chaos harness: killed after its write landed, and the value changed again by
    a person before the next sync, the write was settled `failed` (the tracker no longer held
    it). The synced changelog shows the planned value landed: `applied`."""
    source_id = ensure_source(engine, "ledger", "jira", "https://x.example")
    item_id = _synced(engine, source_id, 86.0, T0)
    killed = datetime.now(UTC)
    _leftover(engine, item_id, killed)
    ours = HistoryChange(
        change_id="901",
        changed_at=killed + timedelta(seconds=1),
        field="progress",
        from_value="86",
        to_value="83.0",
    )
    theirs = HistoryChange(
        change_id="902",
        changed_at=killed + timedelta(seconds=5),
        field="progress",
        from_value="83",
        to_value="70",
    )
    run_id = start_run(engine, source_id, "incremental")
    item = work_item(
        "1",
        updated_at=killed + timedelta(seconds=5),
        writeback_values={"progress": 70.0},
        history=(ours, theirs),
    )
    load_batch(engine, run_id, source_id, [item], watermark=killed + timedelta(seconds=6))
    finish_run(engine, run_id, "succeeded")
    assert settle_leftovers(engine, "ledger") == 1
    assert _status(engine) == APPLIED


def test_the_mappers_record_changes_of_the_fields_lpm_sync_writes() -> None:
    ado = AzureDevOpsMapper(
        ado_source(writeback={"wsjf": "Custom.WSJF"}),
        AzureDevOpsFacts(type_states={"User Story": {"New": "Proposed"}}),
    )
    update = {
        "id": 2,
        "revisedDate": "2026-10-02T09:00:00Z",
        "fields": {
            "System.Rev": {"oldValue": 1, "newValue": 2},
            "System.ChangedDate": {"newValue": "2026-10-02T09:00:00Z"},
            "Custom.WSJF": {"oldValue": 4.0, "newValue": 5.5},
        },
    }
    mapped = ado.map({**ado_item(7), "updates": [update]})
    assert [(c.field, c.from_value, c.to_value) for c in mapped.history] == [("wsjf", "4.0", "5.5")]
    jira_source = JiraSource.model_validate(
        {
            "name": "jira",
            "kind": "jira",
            "url": "https://x.example",
            "auth": {"token": {"env": "X"}},
            "scope": "project = P",
            "levels": {"Story": "story"},
            "writeback": {"progress": "Portfolio Progress"},
        }
    )
    facts = JiraFacts(
        deployment="cloud",
        time_zone="UTC",
        writeback={"progress": JiraField("customfield_7", "Portfolio Progress", "number")},
    )
    entry = {
        "id": "55",
        "created": "2026-10-02T09:00:00.000+0000",
        "items": [{"fieldId": "customfield_7", "fromString": "10", "toString": "20"}],
    }
    changes = JiraMapper(jira_source, facts).history({"changelog": {"histories": [entry]}})
    assert [(c.field, c.from_value, c.to_value) for c in changes] == [("progress", "10", "20")]


def test_an_item_whose_type_moves_between_work_item_and_objective_is_live_once(
    engine: Engine,
) -> None:
    """Found by the mapper fuzzer: an id loaded once as a work item and later as a PI objective
    (its type was changed) stayed live in both tables, counted in roll-ups and objectives."""
    source_id = ensure_source(engine, "types", "jira", "https://x.example")
    run_id = start_run(engine, source_id, "full")
    objective = Objective(
        external_id="7",
        key="ART-7",
        title="Now a PI objective",
        status_category=StatusCategory.todo,
        updated_at=T0 + timedelta(hours=2),
    )

    def live() -> tuple[set[str], set[str]]:
        item, goal = models.WorkItem.__table__, models.Objective.__table__
        with engine.connect() as conn:
            return (
                set(
                    conn.execute(
                        select(item.c.external_id).where(item.c.deleted_at.is_(None))
                    ).scalars()
                ),
                set(
                    conn.execute(
                        select(goal.c.external_id).where(goal.c.deleted_at.is_(None))
                    ).scalars()
                ),
            )

    load_batch(engine, run_id, source_id, [work_item("7")])
    assert live() == ({"7"}, set())
    load_batch(engine, run_id, source_id, [], objectives=[objective])
    assert live() == (set(), {"7"})
    load_batch(engine, run_id, source_id, [work_item("7", updated_at=T0 + timedelta(hours=3))])
    assert live() == ({"7"}, set())
    load_batch(engine, run_id, source_id, [], objectives=[objective])
    assert live() == (set(), {"7"}), "an unchanged objective marked deleted comes back too"
