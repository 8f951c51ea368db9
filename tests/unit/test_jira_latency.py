"""The Jira connector's round trips at site latency (issue 11): what runs beside what, and the
reconcile listing taken from the fetch instead of a second walk of the scope."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests
import responses

from connectors.base import FetchPlan, Partition
from connectors.http import HttpClient, PermissionDenied
from connectors.jira import FetchCursor
from tests.unit.test_jira_connector import (
    BASE,
    CATALOGUE,
    STATUSES,
    TYPES,
    TZ,
    CloudSearch,
    connector,
    discovery,
    raw_issue,
)


def searches_of(site: CloudSearch, *, incremental: bool) -> list[dict[str, Any]]:
    return [s for s in site.searches if ("updated >=" in s["jql"]) == incremental]


@responses.activate
def test_discovery_sends_server_info_beside_the_catalogues() -> None:
    """serverInfo and the four catalogues are one round trip: serverInfo is answered only once
    the field catalogue has been asked for, which a sequential discovery would never do."""
    asked_for_fields = threading.Event()
    info = {"deploymentType": "Cloud", "versionNumbers": [1001, 0, 0]}

    def server_info(_request: Any) -> tuple[int, dict[str, str], str]:
        assert asked_for_fields.wait(10), "serverInfo was sent before the catalogues"
        return 200, {}, json.dumps(info)

    def fields(_request: Any) -> tuple[int, dict[str, str], str]:
        asked_for_fields.set()
        return 200, {}, json.dumps(CATALOGUE)

    responses.add_callback("GET", f"{BASE}/rest/api/2/serverInfo", callback=server_info)
    responses.add_callback("GET", f"{BASE}/rest/api/3/field", callback=fields)
    responses.get(f"{BASE}/rest/api/3/myself", json={"accountId": "x", "timeZone": TZ})
    responses.get(f"{BASE}/rest/api/3/issuetype", json=TYPES)
    responses.get(f"{BASE}/rest/api/3/status", json=STATUSES)
    facts = connector().discover()
    assert facts.deployment == "cloud" and facts.time_zone == TZ
    assert facts.fields["estimate"].id == "customfield_10016"


@responses.activate
def test_after_a_full_fetch_the_reconcile_listing_costs_no_call() -> None:
    discovery()
    site = CloudSearch(600, page=200)
    site.install()
    conn = connector()
    facts = conn.discover()
    pages = list(conn.pages(facts, FetchPlan(full=True)))
    walked = len(site.searches)
    assert walked == 3
    assert conn.list_ids(facts) == {i["id"] for i in site.issues}
    assert len(site.searches) == walked, "the full pass is the listing: no second walk"
    assert sum(len(p.items) for p in pages) == 600
    # Used once: the next reconcile walks the scope again.
    assert conn.list_ids(facts) == {i["id"] for i in site.issues}
    assert len(site.searches) == walked + 3


@responses.activate
def test_a_full_fetch_of_some_partitions_only_leaves_the_listing_to_a_walk() -> None:
    discovery()
    site = CloudSearch(120)
    site.install()
    conn = connector()
    facts = conn.discover()
    assert [p.key for p in conn.partitions(facts)] == ["ART", "PORT"]
    art = Partition("ART", "project = ART")
    list(conn.pages(facts, FetchPlan(full=True, partition=art)))
    walked = len(site.searches)
    assert conn.list_ids(facts) == {i["id"] for i in site.issues}
    assert len(site.searches) == walked + 1, "PORT was not fetched here: the scope is walked"


class ChangingSite(CloudSearch):
    """The scope listing misses an issue created after it passed; the incremental query finds
    it (as a real site may, the two walks running at once)."""

    def __init__(self) -> None:
        super().__init__(30)
        self.late = raw_issue(99)
        self.listing_started = threading.Event()
        self.fail_listing = False

    def search(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.searches.append(body)
        if "updated >=" in body["jql"]:
            # The listing starts only once the fetch's first id page is answered.
            assert not self.listing_started.is_set()
            found = [self.issues[3], self.late]
            return 200, {}, json.dumps({"issues": [{"id": i["id"]} for i in found]})
        self.listing_started.set()
        if self.fail_listing:
            return 403, {}, json.dumps({"errorMessages": ["no"]})
        listed = [{"id": i["id"]} for i in self.issues]
        return 200, {}, json.dumps({"issues": listed, "isLast": True})

    def bulkfetch(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        by_id = {i["id"]: i for i in [*self.issues, self.late]}
        found = [by_id[i] for i in body["issueIdsOrKeys"] if i in by_id]
        return 200, {}, json.dumps({"issues": found, "issueErrors": []})


@responses.activate
def test_an_incremental_fetch_lists_the_scope_beside_itself() -> None:
    from datetime import UTC, datetime

    discovery()
    site = ChangingSite()
    site.install()
    conn = connector()
    facts = conn.discover()
    since = datetime(2026, 1, 1, tzinfo=UTC)
    pages = list(conn.pages(facts, FetchPlan(full=False, since=since)))
    assert [i["id"] for p in pages for i in p.items] == [site.issues[3]["id"], site.late["id"]]
    assert site.listing_started.is_set(), "the listing ran during the fetch"
    walked = len(site.searches)
    in_scope = conn.list_ids(facts)
    assert len(site.searches) == walked, "the reconcile waited for no further call"
    assert in_scope == {i["id"] for i in site.issues} | {site.late["id"]}


@responses.activate
def test_a_failed_background_listing_fails_the_reconcile_never_a_partial_set() -> None:
    from datetime import UTC, datetime

    discovery()
    site = ChangingSite()
    site.fail_listing = True
    site.install()
    conn = connector()
    facts = conn.discover()
    list(conn.pages(facts, FetchPlan(full=False, since=datetime(2026, 1, 1, tzinfo=UTC))))
    with pytest.raises(PermissionDenied, match="Browse projects"):
        conn.list_ids(facts)


@responses.activate
def test_a_resumed_full_fetch_is_not_taken_for_the_whole_scope() -> None:
    from datetime import UTC, datetime

    discovery()
    site = CloudSearch(300)
    site.install()
    conn = connector()
    facts = conn.discover()
    cursor = FetchCursor(
        mode="full",
        as_of=datetime(2026, 6, 1, tzinfo=UTC),
        resume_from=datetime(2026, 1, 1, 2, tzinfo=UTC),
    )
    list(conn.pages(facts, FetchPlan(full=True, cursor=cursor.to_json())))
    listings = [s for s in site.searches if "created >=" not in s["jql"]]
    assert len(listings) == 1, "a listing of the whole scope ran beside the resumed fetch"
    assert conn.list_ids(facts) == {i["id"] for i in site.issues}
    assert not searches_of(site, incremental=True)


def test_the_environment_is_read_once_per_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies and the CA bundle come from the environment as requests would read them, once
    when the client is built, not on every call."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/site-ca.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = HttpClient(BASE)
    assert client.session.trust_env is False
    assert client.session.proxies["https"] == "http://proxy.example:3128"
    assert client.session.verify == "/etc/ssl/site-ca.pem"
    assert HttpClient(BASE, verify_tls=False).session.verify is False
    monkeypatch.setenv("NO_PROXY", "contoso.atlassian.net")
    assert "https" not in HttpClient(BASE).session.proxies


@responses.activate
def test_a_call_does_not_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    client = HttpClient(BASE)
    responses.get(f"{BASE}/rest/api/3/myself", json={"accountId": "x"})

    def environment_read(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the environment was read during a call")

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", environment_read)
    monkeypatch.setattr(requests.utils, "get_environ_proxies", environment_read)
    assert client.get_json("/rest/api/3/myself") == {"accountId": "x"}


@responses.activate
def test_calls_keep_the_sessions_cookies_headers_and_hooks() -> None:
    """The client prepares each call itself (less CPU than `Session.request`): cookies the site
    set come back, per-call headers override the session's, and response hooks still run."""
    client = HttpClient(BASE, user_agent="lpm-test")
    responses.get(f"{BASE}/first", json={}, headers={"Set-Cookie": "atl=abc; Path=/"})
    responses.post(f"{BASE}/second", json={"ok": True})
    seen: list[int] = []
    client.session.hooks["response"].append(lambda r, *a, **k: seen.append(r.status_code))
    client.get_json("/first")
    body = {"b": 1}
    client.request("POST", "/second", json=body, headers={"User-Agent": "other"}, params={"q": "x"})
    sent = responses.calls[1].request
    assert sent.headers["Cookie"] == "atl=abc"
    assert sent.headers["User-Agent"] == "other" and sent.headers["Accept"] == "application/json"
    assert json.loads(sent.body) == body and sent.url == f"{BASE}/second?q=x"
    assert seen == [200, 200]
