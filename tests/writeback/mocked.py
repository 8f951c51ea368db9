"""Write-back over mocked HTTP (`responses`): a warehouse of synced epics, Jira sites' answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import responses
from sqlalchemy import Engine, insert

from mapping.config import LpmConfig
from mapping.model import Level
from tests.factories import work_item
from warehouse import models
from warehouse.load import ensure_source, load_batch, start_run
from warehouse.models import table_of
from warehouse.writeback import APPLIED, LedgerEntry, record

JIRA = "https://contoso.atlassian.net"
JIRA_DC = "https://jira.contoso.com"
WSJF_FIELD = "customfield_10200"
BOT = {"accountId": "x", "key": "JIRAUSER10100", "name": "lpm-bot"}
"""The API user (`myself`): Cloud matches authors by accountId, Data Center by key."""
PERSON = {"accountId": "p-1", "key": "JIRAUSER10107", "name": "pat"}


def jira_config(url: str = JIRA) -> LpmConfig:
    return LpmConfig.model_validate(
        {
            "portfolio": {"name": "P"},
            "sources": [
                {
                    "name": "jira",
                    "kind": "jira",
                    "url": url,
                    "auth": {"email": {"env": "WB_TEST_EMAIL"}, "token": {"env": "WB_TEST_PAT"}},
                    "scope": "project = PORT",
                    "levels": {"Epic": "epic"},
                    "writeback": {"wsjf": "WSJF"},
                }
            ],
        }
    )


def warehouse(engine: Engine, source: str, kind: str, items: dict[str, dict[str, Any]]) -> None:
    """Epics as synced, each with its roll-up WSJF, and lpm-sync's last write of 4."""
    source_id = ensure_source(engine, source, kind, "https://example.com")
    run = start_run(engine, source_id, "full")
    load_batch(
        engine,
        run,
        source_id,
        [
            work_item(i, key=f"E-{i}", level=Level.epic, item_type="Epic", writeback_values=v)
            for i, v in items.items()
        ],
    )
    items_table, rollup = table_of(models.WorkItem), table_of(models.Rollup)
    with engine.begin() as conn:
        ids = dict(
            conn.execute(
                items_table.select().with_only_columns(items_table.c.external_id, items_table.c.id)
            ).all()
        )
        conn.execute(
            insert(rollup),
            [
                {
                    "work_item_id": ids[i],
                    "computed_at": datetime.now(UTC),
                    "total_items": 1,
                    "done_items": 0,
                    "estimated_items": 0,
                    "progress_basis": "count",
                    "flagged_items": 0,
                    "wsjf": 5.0,
                }
                for i in items
            ],
        )
    long_ago = datetime.now(UTC) - timedelta(days=1)
    entries = [LedgerEntry(ids[i], "wsjf", APPLIED, None, "4", applied_at=long_ago) for i in items]
    record(engine, "earlier", entries, long_ago)


def jira_discovery(mock: responses.RequestsMock, *extra: dict[str, Any], url: str = JIRA) -> None:
    """Discovery of a Cloud site (JIRA) or a Data Center one (JIRA_DC: API v2, user keys)."""
    cloud = url == JIRA
    api = f"{url}/rest/api/{'3' if cloud else '2'}"
    info = {
        "baseUrl": url,
        "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 0],
        "deploymentType": "Cloud" if cloud else "Server",
        "serverTime": jira_time(datetime.now(UTC)),
    }
    me = {"accountId": BOT["accountId"]} if cloud else {"key": BOT["key"], "name": BOT["name"]}
    mock.get(f"{url}/rest/api/2/serverInfo", json=info)
    mock.get(f"{api}/myself", json={**me, "timeZone": "UTC"})
    mock.get(
        f"{api}/field",
        json=[{"id": WSJF_FIELD, "name": "WSJF", "schema": {"type": "number"}}, *extra],
    )
    mock.get(f"{api}/issuetype", json=[{"id": "1", "name": "Epic"}])
    mock.get(f"{api}/status", json=[])


def jira_time(at: datetime) -> str:
    """Jira's timestamp format: 2026-11-21T20:05:33.123+0000."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def history(
    at: datetime,
    author: dict[str, str],
    old: str | None,
    new: str | None,
    *,
    field_id: str | None = WSJF_FIELD,
) -> dict[str, Any]:
    """One changelog entry changing WSJF (Data Center may leave `fieldId` out: `None`)."""
    item: dict[str, Any] = {
        "field": "WSJF",
        "fieldtype": "custom",
        "from": None,
        "fromString": old,
        "to": None,
        "toString": new,
    }
    if field_id is not None:
        item["fieldId"] = field_id
    return {
        "id": str(int(at.timestamp() * 1000)),
        "author": {**author, "displayName": author["name"]},
        "created": jira_time(at),
        "items": [item],
    }


def jira_read(
    mock: responses.RequestsMock,
    issue_id: str,
    wsjf: float | None,
    *,
    updated: datetime,
    url: str = JIRA,
) -> None:
    """The bulk read before the edits (Cloud `issue/bulkfetch`, Data Center a search by id)."""
    issue = {"id": issue_id, "fields": {WSJF_FIELD: wsjf, "updated": jira_time(updated)}}
    path = "/rest/api/3/issue/bulkfetch" if url == JIRA else "/rest/api/2/search"
    mock.post(f"{url}{path}", json={"issues": [issue]}, match=[_expands(False)])


def expands_changelog(request: Any) -> tuple[bool, str]:
    """A `responses` matcher: the read asks for the changelog (the check after the edits)."""
    return _expands(True)(request)


def jira_changelog(
    mock: responses.RequestsMock,
    issue_id: str,
    *entries: dict[str, Any],
    url: str = JIRA,
    total: int | None = None,
) -> None:
    """One answer of the changelog read after the edits, the issue read with its latest
    changes (register several for a sequence); `total` more than the entries: truncated."""
    changelog = {
        "startAt": 0,
        "maxResults": len(entries),
        "total": len(entries) if total is None else total,
        "histories": list(entries),
    }
    issue = {"id": issue_id, "fields": {}, "changelog": changelog}
    path = "/rest/api/3/issue/bulkfetch" if url == JIRA else "/rest/api/2/search"
    mock.post(f"{url}{path}", json={"issues": [issue]}, match=[_expands(True)])


def _expands(changelog: bool) -> Any:
    def match(request: Any) -> tuple[bool, str]:
        body = json.loads(request.body or b"{}")
        found = "changelog" in (body.get("expand") or [])
        return found == changelog, "" if found == changelog else "expand differs"

    return match
