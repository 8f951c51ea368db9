"""Jira Cloud and Data Center: discovery, paged fetch, id listing, field edits and rank.

Built on the `jira` package (pycontribs) for discovery: the API user, and the field, issue type
and status catalogues (asked for beside serverInfo, in one round trip). Its `ResilientSession` is
replaced by a session that hands every call to `connectors.http.HttpClient`, because
ResilientSession may wait less than Retry-After and does not share rate limits between threads.
Searches, bulk reads, edits and rank go straight through the HttpClient, where the package gets
in the way: `enhanced_search_issues` and `search_issues` translate requested fields through JQL
clause names, so `id` becomes `issuekey` and Jira treats an id-only search as a full one (100 ids
a page instead of 5,000), and they fetch `/field` again; the package has no wrapper for
`issue/bulkfetch` or `changelog/bulkfetch`; and `Issue.update()` costs a GET per edited issue.

Fetching is concurrent without depending on the nextPageToken chain (issue 11): on Cloud an
id-only search (5,000 ids a page) feeds `issue/bulkfetch` calls of at most 100 ids that a bounded
pool runs while the id pass goes on; on Data Center the pages of a startAt search run in the pool,
and a query that would pass 10,000 results continues as a new query from the last `created`
minute seen. Results come back in query order (`created`, then key), so a cursor holding the
newest `created` delivered lets a killed sync resume where it was.

At site latency every sequential round trip counts, so nothing waits that need not: the count
runs beside the first id page, and the reconcile listing is either the full fetch itself (its
passes delivered every issue in scope) or a walk of the scope started beside the fetch.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import requests
from jira import JIRA

from connectors.base import (
    WHOLE_SCOPE,
    DiscoveryError,
    FetchPlan,
    Page,
    Partition,
    RankMove,
    WriteOutcome,
)
from connectors.http import (
    BadRequest,
    HttpClient,
    HttpStats,
    NotFound,
    PermissionDenied,
    Pipeline,
    RequestGate,
    TokenAuth,
    TrackerError,
)
from mapping.config import JiraFields, JiraSource
from mapping.jira import (
    KEY_IDS,
    JiraFacts,
    JiraField,
    number_value,
    parse_jira_datetime,
    text_value,
)

log = logging.getLogger(__name__)

ID_PAGE = 5000
"""Ids per id-only search/jql page (Jira Cloud's maximum when only ids are requested)."""
BULK_ISSUES = 100
"""Issues per `issue/bulkfetch` call (Jira Cloud's maximum)."""
BULK_CHANGELOGS = 1000
CHANGELOG_FIELDS = 10
CHANGELOG_PAGE = 10_000
"""Changelog entries per `changelog/bulkfetch` page (Jira Cloud's maximum)."""
UPDATED = "updated"
"""Key of `read_values` holding the issue's last change (a datetime)."""
DC_RESULT_WINDOW = 10_000
"""Data Center fails searches whose startAt + maxResults passes this."""
DC_MAX_PAGE = 1000
RANK_BATCH = 50
BULK_EDIT_ISSUES = 1000
"""Issues one Cloud bulk edit may change (`POST /rest/api/3/bulk/issues/fields`)."""
BULK_POLL_FIRST, BULK_POLL_MAX = 0.05, 2.0
"""Seconds before the first look at a bulk edit task, doubled up to the longest wait between
looks: a small task is done in a moment, a large one is not asked about more than needed."""
BULK_TIMEOUT = 600.0
BULK_DONE = frozenset({"COMPLETE", "FAILED", "CANCELLED", "DEAD"})
JQL_TIME = "%Y/%m/%d %H:%M"
ORDER = " ORDER BY created ASC, key ASC"
CURSOR_VERSION = 1
_ORDER_BY = re.compile(r"\s+order\s+by\s+.*$", re.IGNORECASE | re.DOTALL)
_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-\d+$")

JSON_BODY = {"Content-Type": "application/json"}
SEARCH_PERMISSION = "the API user needs Browse projects on every project the scope names"


class _RoutedSession(requests.Session):
    """The `jira` package's session, sending everything through the shared HttpClient."""

    def __init__(self, http: HttpClient) -> None:
        super().__init__()
        self._http = http

    def request(  # type: ignore[override]
        self,
        method: str | bytes,
        url: str | bytes,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        **kwargs: Any,
    ) -> requests.Response:
        merged = {"Content-Type": "application/json"} if isinstance(data, str | bytes) else {}
        merged.update(headers or {})
        return self._http.request(
            method.decode() if isinstance(method, bytes) else method,
            url.decode() if isinstance(url, bytes) else url,
            params=params,
            data=data,
            json=kwargs.get("json"),
            headers=merged,
        )


@dataclass
class FetchCursor:
    """Resume state of a fetch, committed with every page."""

    mode: Literal["full", "incremental"]
    as_of: datetime
    """Taken before the first search: the watermark this fetch commits when it ends."""
    since: datetime | None = None
    resume_from: datetime | None = None
    """Newest `created` delivered so far: everything created before it is loaded."""

    def to_json(self) -> dict[str, Any]:
        return {
            "v": CURSOR_VERSION,
            "mode": self.mode,
            "as_of": self.as_of.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "resume_from": self.resume_from.isoformat() if self.resume_from else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FetchCursor | None:
        """The cursor of a killed run, or None when it is from another version or unreadable."""
        if data.get("v") != CURSOR_VERSION or data.get("mode") not in ("full", "incremental"):
            return None
        try:
            return cls(
                mode=data["mode"],
                as_of=datetime.fromisoformat(data["as_of"]),
                since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
                resume_from=(
                    datetime.fromisoformat(data["resume_from"]) if data.get("resume_from") else None
                ),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def advance(self, issues: Sequence[dict[str, Any]]) -> None:
        for issue in issues:
            fields = issue.get("fields")
            created = parse_jira_datetime(fields.get("created")) if fields else None
            if created is not None and (self.resume_from is None or created > self.resume_from):
                self.resume_from = created


@dataclass(frozen=True)
class BulkOutcome:
    """How a bulk edit went: the issues it changed, and the others with Jira's reason."""

    done: list[str]
    failed: dict[str, str]


@dataclass(frozen=True)
class FieldEdit:
    """One change of a write-back attribute in an issue's changelog (values as Jira shows them,
    `fromString`/`toString`)."""

    attribute: str
    at: datetime
    ours: bool
    """Made by the API user: lpm-sync, not a person."""
    old: str | None
    new: str | None


class JiraConnector:
    """One Jira site (Cloud or Data Center) as configured by a `jira` source."""

    kind = "jira"

    def __init__(self, source: JiraSource, http: HttpClient) -> None:
        self.source = source
        self.http = http
        self.client = JIRA(
            server=source.base_url,
            options={"check_update": False, "verify": source.verify_tls},
            get_server_info=False,
        )
        self.client._session = _RoutedSession(http)  # type: ignore[assignment]
        self._skew = timedelta(0)
        self._deployment: Literal["cloud", "datacenter"] = "cloud"
        self._key_ids: dict[str, str] = {}
        self._key_lock = threading.Lock()
        self._scope = _ScopeListing()
        self._me: dict[str, Any] | None = None

    @classmethod
    def from_config(cls, source: JiraSource, gate: RequestGate | None = None) -> JiraConnector:
        """Resolve the secrets and build the site's client (no call is made yet); `gate`, when
        given, admits every request instead of the client's own token bucket."""
        token = source.auth.token.resolve()
        if source.auth.email is not None:
            email = source.auth.email.resolve().get_secret_value()
            auth = TokenAuth.basic(email, token)
        else:
            auth = TokenAuth.bearer(token)
        http = HttpClient(
            source.base_url,
            auth=auth,
            verify_tls=source.verify_tls,
            timeout=source.sync.timeout_seconds,
            concurrency=source.sync.concurrency,
            requests_per_second=source.sync.requests_per_second,
            name=source.name,
            gate=gate,
        )
        return cls(source, http)

    @property
    def stats(self) -> HttpStats:
        return self.http.stats

    def close(self) -> None:
        self._scope.close()
        self.http.close()

    @property
    def _api(self) -> str:
        return f"/rest/api/{'3' if self._deployment == 'cloud' else '2'}"

    # --- discovery -------------------------------------------------------------------------

    def discover(self) -> JiraFacts:
        """Cloud or DC, the API user's time zone, field ids, issue types and statuses."""
        # serverInfo and the four catalogues are independent: one round trip instead of two at
        # site latency. The catalogues need an API version before serverInfo says Cloud or DC:
        # both serve them under v2 with the same shapes, so v3 is used only where the host says
        # Cloud (*.atlassian.net); serverInfo is v2 everywhere.
        self.client._options["rest_api_version"] = "3" if _cloud_host(self.source.base_url) else "2"
        with ThreadPoolExecutor(max_workers=5, thread_name_prefix="jira-discover") as pool:
            info_call = pool.submit(self.http.get_json, "/rest/api/2/serverInfo")
            me_call = pool.submit(self.client.myself)
            fields_call = pool.submit(self.client.fields)
            types_call = pool.submit(self.client.issue_types)
            statuses_call = pool.submit(self.client.statuses)
        info = info_call.result()
        self._deployment = deployment_of(info, self.source.base_url)
        cloud = self._deployment == "cloud"
        # The package picks Cloud or DC code paths (search/jql vs search) from these two.
        self.client._options["rest_api_version"] = "3" if cloud else "2"
        self.client.deploymentType = "Cloud" if cloud else "Server"
        server_time = parse_jira_datetime(info.get("serverTime"))
        if server_time is not None:
            self._skew = server_time - datetime.now(UTC)
        me = me_call.result()
        time_zone = _time_zone(me.get("timeZone") or info.get("serverTimeZone"))
        catalogue = fields_call.result()
        issue_types = {t.raw["name"]: t.raw.get("hierarchyLevel") for t in types_call.result()}
        try:
            statuses = statuses_call.result()
        except NotFound:
            log.warning(
                "%s: no status catalogue (/status); history uses overrides", self.source.name
            )
            statuses = []
        fields, writeback, problems = resolve_fields(
            self.source.fields, self.source.writeback.fields, catalogue
        )
        problems += _unknown_types(self.source, issue_types)
        rank = fields.get("rank")
        if rank is None and self.source.writeback.rank:
            rank = _rank_field(catalogue)
            if rank is None:
                problems.append("writeback.rank: this site has no Rank field (Jira Software)")
        if problems:
            raise DiscoveryError([f"{self.source.name}: {problem}" for problem in problems])
        categories: dict[str, str] = {}
        for status in statuses:
            category = status.raw.get("statusCategory")
            if isinstance(category, dict) and category.get("key"):
                categories[str(status.raw.get("id"))] = str(category["key"])
        return JiraFacts(
            deployment=self._deployment,
            time_zone=time_zone,
            fields=fields,
            writeback=writeback,
            rank_field=rank,
            status_categories=categories,
            issue_types=issue_types,
        )

    # --- fetch -----------------------------------------------------------------------------

    def partitions(self, facts: JiraFacts) -> list[Partition]:
        """One partition per project when the scope names several at its top level (`project
        in (A, B) AND ...`); otherwise the whole scope. Projects are disjoint and an issue moved
        between them gets a new `updated`, so the next incremental sync catches it."""
        projects = scope_projects(self.source.scope)
        if len(projects) < 2:
            return [WHOLE_SCOPE]
        return [Partition(key, f"project = {jql_string(key)}") for key in projects]

    def pages(self, facts: JiraFacts, plan: FetchPlan) -> Iterator[Page]:
        """Pages of raw issues in `created` order; the last (maybe empty) page has the watermark."""
        cursor = FetchCursor.from_json(plan.cursor) if plan.cursor else None
        if cursor is None:
            cursor = FetchCursor(
                mode="full" if plan.full else "incremental",
                as_of=self.now(),
                since=None if plan.full else plan.since,
            )
        zone = ZoneInfo(facts.time_zone)
        jql = self.scope_jql()
        if plan.partition is not None and plan.partition.clause:
            jql += f" AND ({plan.partition.clause})"
        if cursor.since is not None:
            jql += f' AND updated >= "{jql_time(cursor.since, zone)}"'
        if cursor.resume_from is not None:
            jql += f' AND created >= "{jql_time(cursor.resume_from, zone)}"'
        changelog = cursor.mode == "incremental"
        # The count only feeds progress: it runs beside the first id page, not before it.
        counting = self._scope.submit(self.count, jql)
        # A full pass of a partition from its start delivers every issue of it: together such
        # passes are the reconcile listing. Any other fetch lists the scope beside itself.
        whole = cursor.mode == "full" and cursor.resume_from is None
        key = (plan.partition or WHOLE_SCOPE).key
        delivered: set[str] = set()
        if self._deployment == "cloud":
            listing = None if whole else (lambda: self._scope.start(self._list_scope, facts))
            results = self._cloud_issues(facts, jql, changelog, after_first_ids=listing)
        else:
            results = self._dc_issues(facts, jql, changelog)
        expected: int | None = None
        for issues in results:
            cursor.advance(issues)
            delivered.update(str(issue["id"]) for issue in issues)
            if expected is None:
                expected = counting.result()
            yield Page(issues, cursor=cursor.to_json(), expected=expected)
        self._scope.delivered(key, delivered, whole=whole)
        try:
            # The last batch loads while a listing beside the fetch may still run.
            expected = counting.result()
            yield Page([], cursor=cursor.to_json(), watermark=cursor.as_of, expected=expected)
        finally:
            self._scope.wait()  # no side call outlives the fetch that started it

    def count(self, jql: str) -> int | None:
        """How many issues a query matches (Cloud's approximate count; DC's search total)."""
        if self._deployment == "cloud":
            try:
                found = self._search("/rest/api/3/search/approximate-count", {"jql": jql})
            except NotFound:
                return None
            return int(found["count"]) if "count" in found else None
        body = {"jql": jql, "startAt": 0, "maxResults": 0, "fields": ["id"]}
        total = self._search(f"{self._api}/search", body).get("total")
        return int(total) if total is not None else None

    def fetch_ids(self, facts: JiraFacts, external_ids: Sequence[str]) -> Iterator[Page]:
        """Pages of the given issues (those that still exist), e.g. to fill gaps."""
        ids = list(external_ids)
        if self._deployment == "cloud":
            pipe = Pipeline(self.http.limiter.maximum, name="jira-fetch")
            yield from (
                Page(issues)
                for issues in pipe.run(
                    lambda p: [
                        p.submit(self._bulk_fetch, facts, ids[i : i + BULK_ISSUES], False)
                        for i in range(0, len(ids), BULK_ISSUES)
                    ]
                )
            )
            return
        size = min(self.source.sync.page_size, DC_MAX_PAGE)
        for start in range(0, len(ids), size):
            chunk = ", ".join(ids[start : start + size])
            found = self._dc_search(facts, f"id in ({chunk})", 0, size, expand=None)
            yield Page(found.get("issues", []))

    def list_ids(self, facts: JiraFacts) -> set[str]:
        """Ids of every issue in scope (id-only search); a failure raises, never a partial set,
        because the missing would be marked deleted.

        After fetches of this connector (used once): full passes that covered every partition
        are the listing, no call needed; otherwise the listing a fetch started beside itself,
        plus every issue the fetches delivered (an issue created after that listing passed its
        place is then not taken for deleted). An issue deleted meanwhile stays until the next
        sync, as one deleted right after a listing would."""
        keys = {partition.key for partition in self.partitions(facts)}
        found = self._scope.take(keys)
        if found is not None:
            return found
        return self._list_scope(facts)

    def _list_scope(self, facts: JiraFacts) -> set[str]:
        jql = self.scope_jql()
        if self._deployment == "cloud":
            ids: set[str] = set()
            for page in self._id_pages(jql):
                ids.update(page)
            return ids
        found: set[str] = set()
        listing = self._dc_issues(facts, jql, changelog=False, fields=["created"], size=DC_MAX_PAGE)
        for issues in listing:
            found.update(str(issue["id"]) for issue in issues)
        return found

    def scope_jql(self) -> str:
        return scope_jql(self.source)

    def now(self) -> datetime:
        """The tracker's current time (our clock corrected by the skew seen in serverInfo)."""
        return datetime.now(UTC) + self._skew

    def _cloud_issues(
        self,
        facts: JiraFacts,
        jql: str,
        changelog: bool,
        after_first_ids: Callable[[], Any] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Bulk fetches start as each id page arrives; `after_first_ids` runs once the first
        has (the id chain then shares the site with whatever it starts)."""
        chunk = min(self.source.sync.page_size, BULK_ISSUES)

        def produce(pipe: Pipeline) -> None:
            for index, ids in enumerate(self._id_pages(jql + ORDER)):
                if index == 0 and after_first_ids is not None:
                    after_first_ids()
                for start in range(0, len(ids), chunk):
                    pipe.submit(self._bulk_fetch, facts, ids[start : start + chunk], changelog)

        return Pipeline(self.http.limiter.maximum, name="jira-fetch").run(produce)

    def _id_pages(self, jql: str) -> Iterator[list[str]]:
        body: dict[str, Any] = {"jql": jql, "maxResults": ID_PAGE, "fields": ["id"]}
        while True:
            page = self._search("/rest/api/3/search/jql", body)
            yield [str(issue["id"]) for issue in page.get("issues", [])]
            token = page.get("nextPageToken")
            if page.get("isLast", token is None) or not token:
                return
            body["nextPageToken"] = token

    def _bulk_fetch(
        self, facts: JiraFacts, ids: list[str], changelog: bool
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "issueIdsOrKeys": ids,
            "fields": facts.fetch_fields(),
            "fieldsByKeys": False,
        }
        if changelog:
            body["expand"] = ["changelog"]
        issues: list[dict[str, Any]] = []
        for _attempt in range(3):
            result = self.http.post_json(
                "/rest/api/3/issue/bulkfetch", body, describe=_search_denied
            )
            issues += result.get("issues") or []
            failed = [str(error.get("id")) for error in result.get("issueErrors") or ()]
            if not failed:
                break
            body["issueIdsOrKeys"] = failed
        else:
            raise TrackerError(
                f"{self.source.name}: Jira kept failing to return issues {', '.join(failed)} "
                "(issue/bulkfetch issueErrors)"
            )
        if changelog:
            self._complete_changelogs(facts, issues)
        self._resolve_keys(facts, issues)
        return issues

    def _complete_changelogs(self, facts: JiraFacts, issues: list[dict[str, Any]]) -> None:
        """Replace truncated embedded changelogs by the whole (mapped-field) changelog."""
        truncated = [issue for issue in issues if _truncated(issue.get("changelog"))]
        if not truncated:
            return
        field_ids = ["status", "parent"]
        field_ids += [f.id for f in facts.fields.values() if f.id not in field_ids]
        for start in range(0, len(truncated), BULK_CHANGELOGS):
            part = truncated[start : start + BULK_CHANGELOGS]
            histories: dict[str, list[dict[str, Any]]] = {str(i["id"]): [] for i in part}
            body: dict[str, Any] = {
                "issueIdsOrKeys": list(histories),
                "fieldIds": field_ids[:CHANGELOG_FIELDS],
                "maxResults": 10_000,
            }
            while True:
                result = self.http.post_json("/rest/api/3/changelog/bulkfetch", body)
                for log_entry in result.get("issueChangeLogs") or ():
                    issue_id = str(log_entry.get("issueId"))
                    histories.setdefault(issue_id, []).extend(
                        log_entry.get("changeHistories") or ()
                    )
                token = result.get("nextPageToken")
                if not token:
                    break
                body["nextPageToken"] = token
            for issue in part:
                entries = histories[str(issue["id"])]
                issue["changelog"] = {
                    "startAt": 0,
                    "maxResults": len(entries),
                    "total": len(entries),
                    "histories": entries,
                }

    def _dc_issues(
        self,
        facts: JiraFacts,
        jql: str,
        changelog: bool,
        fields: list[str] | None = None,
        size: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a startAt search run in the pool; past 10,000 results the query continues
        from the last `created` minute reached (issues of that minute come twice: harmless)."""
        size = min(size or self.source.sync.page_size, DC_MAX_PAGE)
        zone = ZoneInfo(facts.time_zone)
        expand = "changelog" if changelog else None
        wanted = fields or facts.fetch_fields()

        def page(query: str, start: int, count: int) -> list[dict[str, Any]]:
            found = self._dc_search(facts, query, start, count, expand=expand, fields=wanted)
            issues: list[dict[str, Any]] = found.get("issues") or []
            self._resolve_keys(facts, issues)
            return issues

        def produce(pipe: Pipeline) -> None:
            lower: str | None = None
            while True:
                query = jql + (f' AND created >= "{lower}"' if lower else "") + ORDER
                first = self._dc_search(facts, query, 0, size, expand=expand, fields=wanted)
                issues = first.get("issues") or []
                self._resolve_keys(facts, issues)
                pipe.put_result(issues)
                total = int(first.get("total", len(issues)))
                end = min(total, DC_RESULT_WINDOW)
                last: Future[list[dict[str, Any]]] | None = None
                for start in range(size, end, size):
                    last = pipe.submit(page, query, start, min(size, end - start))
                if total <= DC_RESULT_WINDOW:
                    return
                tail = last.result() if last is not None else issues
                newest = max(
                    (parse_jira_datetime(i["fields"].get("created")) for i in tail),
                    default=None,
                    key=lambda value: value or datetime.min.replace(tzinfo=UTC),
                )
                following = jql_time(newest, zone) if newest else None
                if following is None or following == lower:
                    raise TrackerError(
                        f"{self.source.name}: more than {DC_RESULT_WINDOW:,} issues were created "
                        f"in the minute {lower}; Jira Data Center cannot page past them"
                    )
                lower = following

        return Pipeline(self.http.limiter.maximum, name="jira-fetch").run(produce)

    def _dc_search(
        self,
        facts: JiraFacts,
        jql: str,
        start: int,
        count: int,
        *,
        expand: str | None,
        fields: list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jql": jql,
            "startAt": start,
            "maxResults": count,
            "fields": list(fields or facts.fetch_fields()),
        }
        if expand:
            body["expand"] = [expand]
        return self._search(f"{self._api}/search", body)

    def _search(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One search page, its errors said in the user's terms (the JQL quoted back)."""
        try:
            result: dict[str, Any] = self.http.post_json(path, body)
        except BadRequest as exc:
            raise BadRequest(
                f"{self.source.name}: Jira rejected the JQL {body['jql']!r}: "
                f"{exc.detail or exc}; check `scope` (and the issue type names under `levels`) "
                "in the config",
                status=exc.status,
                method=exc.method,
                path=exc.path,
                detail=exc.detail,
            ) from None
        except PermissionDenied as exc:
            raise _search_denied(exc) from None
        return result

    def _resolve_keys(self, facts: JiraFacts, issues: list[dict[str, Any]]) -> None:
        """Annotate issues whose link fields hold issue keys (DC Epic Link) with key -> id."""
        links = [facts.fields[a] for a in ("epic_link", "parent_link") if a in facts.fields]
        if not links:
            return
        with self._key_lock:
            for issue in issues:
                if issue.get("key") and issue.get("id"):
                    self._key_ids[str(issue["key"])] = str(issue["id"])
        wanted: dict[int, list[str]] = {}
        for index, issue in enumerate(issues):
            fields = issue.get("fields") or {}
            values = [fields.get(link.id) for link in links]
            found = [k for k in values if isinstance(k, str) and _KEY.match(k)]
            if found:
                wanted[index] = found
        if not wanted:
            return
        missing = sorted({k for keys in wanted.values() for k in keys} - self._key_ids.keys())
        if missing:
            self._lookup_keys(facts, missing)
        for index, keys in wanted.items():
            issues[index][KEY_IDS] = {k: self._key_ids[k] for k in keys if k in self._key_ids}

    def _lookup_keys(self, facts: JiraFacts, keys: list[str]) -> None:
        for start in range(0, len(keys), BULK_ISSUES):
            part = keys[start : start + BULK_ISSUES]
            jql = f"key in ({', '.join(part)})"
            try:
                if self._deployment == "cloud":
                    found = self.http.post_json(
                        "/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": part, "fields": ["key"]}
                    ).get("issues", [])
                else:
                    found = self._dc_search(facts, jql, 0, len(part), expand=None, fields=["key"])[
                        "issues"
                    ]
            except BadRequest:
                found = []
                for key in part:
                    try:
                        found.append(self.http.get_json(f"{self._api}/issue/{key}?fields=key"))
                    except NotFound:
                        continue
            with self._key_lock:
                for issue in found:
                    self._key_ids[str(issue["key"])] = str(issue["id"])

    # --- write-back ------------------------------------------------------------------------

    def read_values(
        self, facts: JiraFacts, external_ids: Sequence[str], attributes: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Current values of write-back attributes, read the way the mapper reads them, and
        under `updated` the issue's last change (the tracker's clock): changelog entries from
        then on are what happened after this read (`edits_since`)."""
        specs = {attr: facts.writeback[attr] for attr in attributes if attr in facts.writeback}
        rank = facts.fields.get("rank") or facts.rank_field
        wanted = [spec.id for spec in specs.values()]
        if "rank" in attributes and rank is not None:
            wanted.append(rank.id)
        wanted.append("updated")
        values: dict[str, dict[str, Any]] = {}
        ids = list(external_ids)
        for start in range(0, len(ids), BULK_ISSUES):
            part = ids[start : start + BULK_ISSUES]
            asked_at = self.now()
            for issue in self._read_issues(part, wanted):
                fields = issue.get("fields") or {}
                current: dict[str, Any] = {
                    UPDATED: parse_jira_datetime(fields.get("updated")) or asked_at
                }
                for attr, spec in specs.items():
                    raw = fields.get(spec.id)
                    reader = number_value if spec.type == "number" else text_value
                    current[attr] = reader(raw, spec)
                if "rank" in attributes and rank is not None:
                    current["rank"] = fields.get(rank.id)
                values[str(issue["id"])] = current
        return values

    def _read_issues(self, ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        if self._deployment == "cloud":
            result = self.http.post_json(
                "/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": ids, "fields": fields}
            )
            issues: list[dict[str, Any]] = result.get("issues") or []
            return issues
        body = {"jql": f"id in ({', '.join(ids)})", "maxResults": len(ids), "fields": fields}
        dc_issues: list[dict[str, Any]] = self._search(f"{self._api}/search", body)["issues"]
        return dc_issues

    def write_values(
        self, facts: JiraFacts, external_id: str, values: Mapping[str, Any]
    ) -> WriteOutcome:
        """Edit write-back fields, asking Jira not to notify watchers; when the API user may not
        suppress notifications (it needs admin rights), edit anyway and say so."""
        body = {
            "fields": {
                facts.writeback[attr].id: field_payload(facts.writeback[attr], value, facts)
                for attr, value in values.items()
            }
        }
        path = f"{self._api}/issue/{external_id}"
        # The query in the path and the body serialised by orjson: requests' encoding of both
        # is a tenth of the client's CPU per edit, and edits are most of a write-back's calls.
        payload = orjson.dumps(body)
        try:
            self.http.request(
                "PUT",
                f"{path}?notifyUsers=false",
                data=payload,
                headers=JSON_BODY,
                describe=_edit_denied,
            )
            return WriteOutcome(external_id, notified=False)
        except (PermissionDenied, BadRequest) as exc:
            if "notif" not in (exc.detail or "").lower():
                raise
        self.http.request("PUT", path, data=payload, headers=JSON_BODY, describe=_edit_denied)
        return WriteOutcome(
            external_id,
            notified=True,
            note="watchers were notified: the API user may not suppress notifications "
            "(notifyUsers=false needs Administer Jira or Administer projects)",
        )

    def bulk_editable(self, facts: JiraFacts, attributes: Sequence[str]) -> bool:
        """Whether these write-back attributes can be set by one bulk edit (Cloud; number
        fields, the one kind whose bulk value needs no option lookup)."""
        return facts.deployment == "cloud" and all(
            attr in facts.writeback and facts.writeback[attr].type == "number"
            for attr in attributes
        )

    def bulk_write(
        self, facts: JiraFacts, external_ids: Sequence[str], values: Mapping[str, Any]
    ) -> BulkOutcome:
        """The same values on many issues in one Jira Cloud bulk edit, watchers not notified:
        the task is submitted, then polled until it ends. Needs the global Bulk change
        permission; a refusal is the caller's cue to edit issue by issue."""
        if len(external_ids) > BULK_EDIT_ISSUES:
            raise ValueError(f"a bulk edit takes at most {BULK_EDIT_ISSUES} issues")
        fields = [
            {
                "fieldId": facts.writeback[attr].id,
                "value": field_payload(facts.writeback[attr], v, facts),
            }
            for attr, v in values.items()
        ]
        body = {
            "selectedIssueIdsOrKeys": list(external_ids),
            "selectedActions": [f["fieldId"] for f in fields],
            "editedFieldsInput": {"clearableNumberFields": fields},
            "sendBulkNotification": False,
        }
        submitted = self.http.request(
            "POST",
            f"{self._api}/bulk/issues/fields",
            data=orjson.dumps(body),
            headers=JSON_BODY,
            describe=_bulk_denied,
        )
        task = str(submitted.json()["taskId"])
        progress = self._bulk_progress(task)
        if progress.get("status") != "COMPLETE":
            raise TrackerError(
                f"bulk edit task {task} ended {progress.get('status')}: "
                "some of its edits may have been made"
            )
        done = [str(i) for i in progress.get("processedAccessibleIssues") or ()]
        failed = {
            str(issue): "; ".join(str(r) for r in reasons) or "the bulk edit failed"
            for issue, reasons in (progress.get("failedAccessibleIssues") or {}).items()
        }
        unknown = "not edited by the bulk edit: invalid, deleted or not visible to the API user"
        for issue in external_ids:
            if issue not in failed and issue not in done:
                failed[issue] = unknown
        return BulkOutcome(done, failed)

    def _bulk_progress(self, task: str) -> dict[str, Any]:
        wait, waited = BULK_POLL_FIRST, 0.0
        while True:
            time.sleep(wait)
            waited += wait
            progress: dict[str, Any] = self.http.request(
                "GET", f"{self._api}/bulk/queue/{task}"
            ).json()
            if progress.get("status") in BULK_DONE:
                return progress
            if waited >= BULK_TIMEOUT:
                raise TrackerError(
                    f"bulk edit task {task} still {progress.get('status')} after "
                    f"{BULK_TIMEOUT:.0f} s: some of its edits may have been made"
                )
            wait = min(wait * 2, BULK_POLL_MAX)

    def edits_since(
        self,
        facts: JiraFacts,
        since: Mapping[str, datetime | None],
        attributes: Sequence[str],
    ) -> dict[str, list[FieldEdit]]:
        """Changes of write-back attributes in the changelogs of the issues `since` names, from
        each issue's instant on (None: the whole changelog), oldest first, each saying whether
        the API user made it.

        Jira has no conditional edit: this is how an edit that replaced a person's value is
        found after the fact. Cloud: `issue/bulkfetch` with the 40 latest changes of each
        issue (100 issues a call; a whole changelog grows with every edit lpm-sync ever made),
        `changelog/bulkfetch` for an issue changed more often than that since its instant; Data
        Center: a search by id with the changelog expanded (100 issues a call).
        """
        specs = {attr: facts.writeback[attr] for attr in attributes if attr in facts.writeback}
        by_id = {spec.id: attr for attr, spec in specs.items()}
        by_name = {spec.name: attr for attr, spec in specs.items()}
        ids = list(since)
        if not ids or not specs:
            return {}
        me = self._api_user()
        if self._deployment == "cloud":
            histories = self._recent_changelogs(since, list(by_id))
        else:
            histories = self._dc_changelogs(ids)
        found: dict[str, list[FieldEdit]] = {}
        for issue_id in ids:
            start = since[issue_id]
            edits: list[tuple[datetime, int, FieldEdit]] = []
            for order, entry in enumerate(histories.get(issue_id, ())):
                named = [
                    (_attribute(item, by_id, by_name), item) for item in entry.get("items") or ()
                ]
                items = [(attr, item) for attr, item in named if attr is not None]
                at = parse_jira_datetime(entry.get("created")) if items else None
                if at is None or (start is not None and at < start):
                    continue
                ours = _same_user(entry.get("author"), me)
                for attr, item in items:
                    change = FieldEdit(
                        attr,
                        at,
                        ours,
                        _opt_text(item.get("fromString")),
                        _opt_text(item.get("toString")),
                    )
                    edits.append((at, order, change))
            found[issue_id] = [edit for _, _, edit in sorted(edits, key=lambda e: e[:2])]
        return found

    def _api_user(self) -> dict[str, Any]:
        """Who lpm-sync is on this site (`myself`), asked once per connector."""
        with self._key_lock:
            me = self._me
        if me is None:
            me = dict(self.http.get_json(f"{self._api}/myself"))
            with self._key_lock:
                self._me = me
        return me

    def _recent_changelogs(
        self, since: Mapping[str, datetime | None], field_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Cloud: each issue's latest changes, its whole changelog when those do not reach back
        to the issue's instant."""
        ids = list(since)
        histories: dict[str, list[dict[str, Any]]] = {}
        whole: list[str] = []
        for start in range(0, len(ids), BULK_ISSUES):
            body = {
                "issueIdsOrKeys": ids[start : start + BULK_ISSUES],
                "fields": ["updated"],
                "expand": ["changelog"],
            }
            for issue in (
                self.http.post_json("/rest/api/3/issue/bulkfetch", body).get("issues") or ()
            ):
                issue_id, changelog = str(issue["id"]), issue.get("changelog") or {}
                histories[issue_id] = list(changelog.get("histories") or ())
                if _truncated(changelog) and not _reaches(histories[issue_id], since.get(issue_id)):
                    whole.append(issue_id)
        if whole:
            histories.update(self._cloud_changelogs(whole, field_ids))
        return histories

    def _cloud_changelogs(
        self, ids: Sequence[str], field_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        histories: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(ids), BULK_CHANGELOGS):
            body: dict[str, Any] = {
                "issueIdsOrKeys": list(ids[start : start + BULK_CHANGELOGS]),
                "fieldIds": list(field_ids)[:CHANGELOG_FIELDS],
                "maxResults": CHANGELOG_PAGE,
            }
            while True:
                result = self.http.post_json("/rest/api/3/changelog/bulkfetch", body)
                for log_entry in result.get("issueChangeLogs") or ():
                    histories.setdefault(str(log_entry.get("issueId")), []).extend(
                        log_entry.get("changeHistories") or ()
                    )
                token = result.get("nextPageToken")
                if not token:
                    break
                body["nextPageToken"] = token
        return histories

    def _dc_changelogs(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Data Center: the changelog embedded in a search by id (it has no bulk changelog)."""
        histories: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(ids), BULK_ISSUES):
            part = list(ids[start : start + BULK_ISSUES])
            body = {
                "jql": f"id in ({', '.join(part)})",
                "maxResults": len(part),
                "fields": ["updated"],
                "expand": ["changelog"],
            }
            for issue in self._search(f"{self._api}/search", body).get("issues") or ():
                changelog = issue.get("changelog") or {}
                histories[str(issue["id"])] = list(changelog.get("histories") or ())
        return histories

    def rank(self, facts: JiraFacts, moves: Sequence[RankMove]) -> None:
        """Agile rank API, at most 50 issues per call; longer moves continue after the last."""
        rank = facts.fields.get("rank") or facts.rank_field
        for move in moves:
            items = list(move.items)
            before, after = move.before, move.after
            for start in range(0, len(items), RANK_BATCH):
                part = items[start : start + RANK_BATCH]
                body: dict[str, Any] = {"issues": part}
                if before is not None:
                    body["rankBeforeIssue"] = before
                else:
                    body["rankAfterIssue"] = after
                if rank is not None and rank.id.startswith("customfield_"):
                    body["rankCustomFieldId"] = int(rank.id.removeprefix("customfield_"))
                response = self.http.request(
                    "PUT", "/rest/agile/1.0/issue/rank", json=body, describe=_rank_denied
                )
                if response.status_code == 207:
                    failed = [
                        f"{entry.get('issueKey') or entry.get('issueId')}: "
                        + "; ".join(entry.get("errors") or [str(entry.get("status"))])
                        for entry in response.json().get("entries", [])
                        if entry.get("status") != 200
                    ]
                    if failed:
                        raise TrackerError(
                            f"{self.source.name}: rank partly failed: {', '.join(failed)}",
                            status=207,
                        )
                before, after = None, part[-1]


# --- the reconcile listing -------------------------------------------------------------------


class _ScopeListing:
    """What the fetches of one connector learned about the scope, for the reconcile after them.

    Thread-safe: partitions may fetch at once. Side calls (the count, a listing beside a
    fetch) run on a small pool of their own, so they never wait behind the fetch's queue.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._listing: Future[set[str]] | None = None
        self._covered: set[str] = set()
        self._ids: set[str] = set()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        with self._lock:
            if self._pool is None:
                # One count per partition fetched at once, and the listing: small calls that
                # must not queue behind each other (the limiter still bounds what is in flight).
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="jira-side")
            return self._pool.submit(fn, *args)

    def start(self, list_scope: Callable[[JiraFacts], set[str]], facts: JiraFacts) -> None:
        """List the whole scope in the background (once per reconcile)."""
        with self._lock:
            if self._listing is not None:
                return
        listing = self.submit(list_scope, facts)
        with self._lock:
            if self._listing is None:
                self._listing = listing
                return
        listing.cancel()

    def delivered(self, key: str, ids: set[str], *, whole: bool) -> None:
        """A fetch of partition `key` ended; `whole`: it delivered all of the partition."""
        with self._lock:
            self._ids |= ids
            if whole:
                self._covered.add(key)

    def wait(self) -> None:
        """Until a background listing has ended (its outcome is for `take` to raise)."""
        with self._lock:
            listing = self._listing
        if listing is not None:
            wait_for([listing])

    def take(self, keys: set[str]) -> set[str] | None:
        """The scope's ids if the fetches tell them (waiting for a background listing), else
        None; either way the state is reset, so it serves one reconcile."""
        with self._lock:
            listing, covered, ids = self._listing, self._covered, self._ids
            self._listing, self._covered, self._ids = None, set(), set()
        if keys <= covered or WHOLE_SCOPE.key in covered:
            if listing is not None:
                listing.cancel()
            return ids
        if listing is None:
            return None
        return listing.result() | ids

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# --- discovery helpers -----------------------------------------------------------------------


def _cloud_host(url: str) -> bool:
    """Whether a site URL is certainly Jira Cloud (a custom domain may be Cloud too)."""
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(".atlassian.net") or host.endswith(".jira.com")


def deployment_of(info: Mapping[str, Any], url: str) -> Literal["cloud", "datacenter"]:
    """Cloud or Data Center from serverInfo (deploymentType, else Cloud's 1000+ versions)."""
    kind = str(info.get("deploymentType") or "").lower()
    if kind == "cloud":
        return "cloud"
    if kind in ("server", "datacenter", "data center"):
        return "datacenter"
    numbers = info.get("versionNumbers") or []
    if numbers and isinstance(numbers[0], int) and numbers[0] >= 1000:
        return "cloud"
    return "cloud" if ".atlassian.net" in url else "datacenter"


def resolve_fields(
    configured: JiraFields,
    writeback: Mapping[str, str],
    catalogue: list[dict[str, Any]],
) -> tuple[dict[str, JiraField], dict[str, JiraField], list[str]]:
    """Configured field names or ids -> fields, with every problem as `path: message`."""
    problems: list[str] = []
    fields: dict[str, JiraField] = {}
    for attr, wanted in configured.model_dump(exclude_none=True).items():
        found = _resolve(wanted, catalogue, f"fields.{attr}", problems)
        if found is not None:
            fields[attr] = found
    targets: dict[str, JiraField] = {}
    for attr, wanted in writeback.items():
        found = _resolve(wanted, catalogue, f"writeback.{attr}", problems)
        if found is not None:
            targets[attr] = found
    return fields, targets, problems


def _resolve(
    wanted: str, catalogue: list[dict[str, Any]], path: str, problems: list[str]
) -> JiraField | None:
    key = wanted.strip()
    match = [f for f in catalogue if f.get("id") == key or f.get("key") == key]
    if not match:
        match = [f for f in catalogue if str(f.get("name", "")).casefold() == key.casefold()]
    if not match:
        clause = key.casefold()
        match = [
            f for f in catalogue if clause in (str(c).casefold() for c in f.get("clauseNames", ()))
        ]
    if len(match) == 1:
        return _field(match[0])
    if not match:
        similar = sorted(
            {
                f"{f.get('name')} ({f.get('id')})"
                for f in catalogue
                if key.casefold() in str(f.get("name", "")).casefold()
                or str(f.get("name", "")).casefold() in key.casefold()
            }
        )[:5]
        hint = f"; similar: {', '.join(similar)}" if similar else ""
        problems.append(f"{path}: no Jira field is named or has the id {wanted!r}{hint}")
        return None
    candidates = ", ".join(
        f"{f.get('id')} ({(f.get('schema') or {}).get('type', 'no schema')})" for f in match
    )
    problems.append(
        f"{path}: {wanted!r} matches {len(match)} Jira fields: {candidates}; "
        "write the id of the one to use"
    )
    return None


def _field(raw: Mapping[str, Any]) -> JiraField:
    schema = raw.get("schema") or {}
    return JiraField(
        id=str(raw["id"]),
        name=str(raw.get("name") or raw["id"]),
        type=schema.get("type"),
        items=schema.get("items"),
        custom=schema.get("custom"),
    )


def _rank_field(catalogue: list[dict[str, Any]]) -> JiraField | None:
    for raw in catalogue:
        if str((raw.get("schema") or {}).get("custom", "")).endswith("gh-lexo-rank"):
            return _field(raw)
    return None


def _unknown_types(source: JiraSource, issue_types: Mapping[str, Any]) -> list[str]:
    known = {name.casefold() for name in issue_types}
    problems = []
    for path, names in (("levels", source.levels), ("objective_types", source.objective_types)):
        for name in names:
            if name.casefold() not in known:
                known_names = ", ".join(sorted(issue_types))
                problems.append(f"{path}: Jira has no issue type {name!r} (known: {known_names})")
    return problems


def _time_zone(name: Any) -> str:
    if isinstance(name, str) and name:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r of the API user; using UTC", name)
    return "UTC"


# --- JQL and payload helpers -----------------------------------------------------------------


def scope_jql(source: JiraSource) -> str:
    """The configured scope, limited to the mapped issue types, without its ORDER BY."""
    scope = _ORDER_BY.sub("", source.scope).strip()
    types = [*source.levels, *source.objective_types]
    return f"({scope}) AND issuetype in ({', '.join(jql_string(t) for t in types)})"


_JQL_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<punct>[(),])"""
    r"""|(?P<op>!=|>=|<=|!~|=|~|>|<)|(?P<word>[^\s(),"'=!<>~]+))"""
)


def scope_projects(scope: str) -> list[str]:
    """The projects a JQL scope is limited to by a top-level `project = X` or `project in (...)`
    conjunct, in order; [] when it is not (an OR at the top level, a function, no such clause).

    Only what is certain counts: every issue the scope matches is then in one of these projects.
    """
    text = _ORDER_BY.sub("", scope).strip()
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _JQL_TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                return []
            break
        position = match.end()
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
    conjuncts: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for kind, value in tokens:
        if kind == "punct":
            depth += {"(": 1, ")": -1}.get(value, 0)
        word = value.lower() if kind == "word" else ""
        if depth == 0 and word in ("or", "||"):
            return []
        if depth == 0 and word in ("and", "&&"):
            conjuncts.append([])
        else:
            conjuncts[-1].append((kind, value))
    for conjunct in conjuncts:
        projects = _project_values(conjunct)
        if projects:
            unique: dict[str, str] = {}
            for project in projects:  # keys and names are case-insensitive in JQL
                unique.setdefault(project.casefold(), project)
            return list(unique.values())
    return []


def _project_values(tokens: list[tuple[str, str]]) -> list[str]:
    """The literal values of `project = V` or `project in (V, ...)`, else []."""
    if len(tokens) < 3 or tokens[0][0] != "word" or tokens[0][1].lower() != "project":
        return []
    operator = tokens[1]
    if operator == ("op", "="):
        values = tokens[2:]
        return [_literal(values[0])] if len(values) == 1 and values[0][0] != "punct" else []
    if operator[0] != "word" or operator[1].lower() != "in" or tokens[2] != ("punct", "("):
        return []
    if tokens[-1] != ("punct", ")"):
        return []
    inner = tokens[3:-1]
    values = inner[0::2]
    commas = inner[1::2]
    if not values or any(c != ("punct", ",") for c in commas) or len(commas) != len(values) - 1:
        return []
    if any(kind not in ("word", "string") for kind, _ in values):
        return []
    return [_literal(value) for value in values]


def _literal(token: tuple[str, str]) -> str:
    kind, value = token
    if kind != "string":
        return value
    return re.sub(r"\\(.)", r"\1", value[1:-1])


def jql_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def jql_time(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as a JQL date-time (minutes) in the API user's zone, rounded down.

    In the repeated hour when clocks go back, a local time names two instants; the earlier hour
    is used so `>=` never skips anything.
    """
    local = instant.astimezone(zone)
    if local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
        local = (instant - timedelta(hours=1)).astimezone(zone)
    return local.strftime(JQL_TIME)


def field_payload(spec: JiraField, value: Any, facts: JiraFacts) -> Any:
    """A value in the shape the field's type takes on edit."""
    if value is None:
        return None
    if spec.type == "number":
        return float(value)
    if spec.type == "option":
        return {"value": str(value)}
    if spec.type == "array" and spec.items == "option":
        return [{"value": str(value)}]
    if (
        spec.type == "string"
        and facts.deployment == "cloud"
        and (spec.custom or "").endswith(":textarea")
    ):
        return {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": str(value)}]}],
        }
    return str(value) if not isinstance(value, int | float) else value


def _same_user(author: Any, me: Mapping[str, Any]) -> bool:
    """Whether a changelog author is the API user: Cloud accountId, Data Center key or name."""
    if not isinstance(author, dict):
        return False
    for ident in ("accountId", "key", "name"):
        if me.get(ident) and author.get(ident):
            return bool(author[ident] == me[ident])
    return False


def _attribute(
    item: Mapping[str, Any], by_id: Mapping[str, str], by_name: Mapping[str, str]
) -> str | None:
    """The write-back attribute a changelog item changed: by field id, else (Data Center may
    leave it out) by field name."""
    field_id = item.get("fieldId")
    return by_id.get(field_id) if field_id else by_name.get(str(item.get("field")))


def _reaches(histories: Sequence[Mapping[str, Any]], since: datetime | None) -> bool:
    """Whether changelog entries go back to `since` (never for None: that wants them all)."""
    times = [parse_jira_datetime(h.get("created")) for h in histories]
    oldest = min((t for t in times if t is not None), default=None)
    return since is not None and oldest is not None and oldest <= since


def _opt_text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _truncated(changelog: Any) -> bool:
    if not isinstance(changelog, dict):
        return False
    histories = changelog.get("histories") or []
    total = changelog.get("total")
    return isinstance(total, int) and total > len(histories)


def _needs(permission: str) -> Callable[[TrackerError], TrackerError]:
    """A `describe` for requests: a 403 says which permission the API user lacks."""

    def describe(exc: TrackerError) -> TrackerError:
        if isinstance(exc, PermissionDenied):
            return PermissionDenied(
                f"{exc}; {permission}",
                status=exc.status,
                method=exc.method,
                path=exc.path,
                detail=exc.detail,
            )
        return exc

    return describe


_search_denied = _needs(SEARCH_PERMISSION)
_bulk_denied = _needs(
    "a bulk edit needs the global Bulk change permission and Edit issues in every project of "
    "its issues"
)
_edit_denied = _needs(
    "the API user needs Edit issues in the issue's project, and the write-back fields must be "
    "on its edit screen"
)
_rank_denied = _needs("ranking needs Schedule issues and Edit issues in the issue's project")
