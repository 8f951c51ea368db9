"""The mutator: human edits while a sync runs, visible through the API and in ground truth."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import requests

from sandbox.server import serve


def test_steps_change_items_and_ground_truth() -> None:
    with serve("jira", items=1200, seed=41) as sb:
        before = {t.external_id: t for t in sb.ground_truth()}
        mutations = sb.mutator.step(120)
        assert len(mutations) == 120
        actions = Counter(m.action for m in mutations)
        assert {"transition", "move", "delete", "writeback"} <= set(actions)
        after = {t.external_id: t for t in sb.ground_truth()}
        for m in mutations:
            now, then = after[m.external_id], before[m.external_id]
            if m.action == "delete":
                assert now.deleted
            elif not now.deleted:
                assert now.updated_at >= then.updated_at
        moved = [m for m in mutations if m.action == "move"]
        for m in moved:
            assert m.detail["old_key"] != m.detail["new_key"]
            assert sb.portfolio.find(m.detail["old_key"]) == sb.portfolio.find(m.external_id)


def test_incremental_jql_finds_what_people_changed() -> None:
    with serve("jira", items=1200, seed=42) as sb:
        http = requests.Session()
        http.auth = (sb.email, sb.token)
        berlin = ZoneInfo("Europe/Berlin")
        since = datetime.now(berlin).strftime("%Y/%m/%d %H:%M")
        time.sleep(0.01)
        mutations = [m for m in sb.mutator.step(30) if m.action != "delete"]
        scope = sb.source_config()["scope"]
        found: set[str] = set()
        token = None
        while True:
            params = {"jql": f'{scope} AND updated >= "{since}"', "maxResults": 5000}
            if token:
                params["nextPageToken"] = token
            page = http.get(f"{sb.url}/rest/api/3/search/jql", params=params).json()
            found |= {i["id"] for i in page["issues"]}
            token = page.get("nextPageToken")
            if not token:
                break
        assert {m.external_id for m in mutations} <= found


def test_background_mutator_and_ado_revisions() -> None:
    with serve("azure_devops", items=800, seed=43) as sb:
        revs = {i: sb.portfolio.revision(i) for i in range(sb.portfolio.n)}
        sb.mutator.start(interval_s=0.005)
        deadline = time.monotonic() + 10
        while len(sb.mutator.log) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        sb.mutator.stop()
        assert not sb.mutator.running
        changed = [m for m in sb.mutator.log if m.action != "delete"]
        assert changed
        for m in changed:
            i = int(m.external_id) - 1
            assert sb.portfolio.revision(i) > revs[i], "every human change is a new revision"
