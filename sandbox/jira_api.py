"""The fake Jira REST API (Cloud and Data Center) over a generated portfolio.

Endpoints and limits are those connectors meet on real sites: enhanced search with
`nextPageToken` (100 issues a page with fields, 5,000 ids only, unbounded JQL rejected), the
removed `/rest/api/3/search` on Cloud, DC's `/rest/api/2/search` with startAt/total and its
10,000-result window, issue GET/PUT with Jira's `errors` body, bulk issue and changelog fetch,
issue properties, the status catalogue, and the Agile rank API (50 issues, 207 on partial
failure). Both `/rest/api/2` and `/rest/api/3` answer on Cloud, as they do live (the `jira`
package speaks v2).
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from sandbox.jira_bulk import BulkEdits
from sandbox.jira_site import (
    NOT_EDITABLE,
    Deployment,
    FieldDef,
    FieldSelection,
    JiraSite,
)
from sandbox.jql import Compiler, JqlError, Query, parse
from sandbox.portfolio import Portfolio
from sandbox.process import CATEGORIES, HEALTH_VALUES, PRIORITIES
from sandbox.web import Api, BadJson, HttpError, Request, Response, empty, json_response

MAX_PAGE_FIELDS = 100
MAX_PAGE_IDS = 5000
DC_MAX_RESULTS = 1000
DC_RESULT_WINDOW = 10_000
MAX_RANK = 50
MAX_BULK_ISSUES = 100
MAX_CHANGELOG_ISSUES = 1000
API_USER = 0

_ISSUE = re.compile(r"^/rest/api/(2|3)/issue/([^/]+)$")
_ISSUE_SUB = re.compile(r"^/rest/api/(2|3)/issue/([^/]+)/(changelog|properties)(?:/([^/]+))?$")
_API = re.compile(r"^/rest/api/(2|3)/(.+)$")


def jira_error(status: int, *messages: str, errors: dict[str, str] | None = None) -> HttpError:
    return HttpError(status, {"errorMessages": list(messages), "errors": errors or {}})


def not_found() -> HttpError:
    return jira_error(404, "Issue does not exist or you do not have permission to see it.")


@dataclass(slots=True)
class _Result:
    jql: str
    ids: list[int]
    query: Query
    version: int


class JiraApi(Api):
    kind = "jira"

    def __init__(
        self,
        portfolio: Portfolio,
        base_url: str,
        *,
        deployment: Deployment = "cloud",
        email: str,
        token: str,
        pat: str,
    ):
        self.p = portfolio
        self.site = JiraSite(portfolio, base_url, deployment)
        self.cloud = deployment == "cloud"
        self.email, self.token, self.pat = email, token, pat
        basic = base64.b64encode(f"{email}:{token}".encode()).decode()
        self._accepted = {f"Basic {basic}"} if self.cloud else {f"Bearer {pat}"}
        self._results: OrderedDict[str, _Result] = OrderedDict()
        self._results_lock = threading.Lock()
        self.rank_fault_rate = 0.0
        self._rnd = random.Random(portfolio.seed)
        me = str(self.site.user(API_USER).get("accountId", ""))
        self.bulk = BulkEdits(portfolio, self.site.by_id, me, API_USER)

    def _fragment(
        self,
        i: int,
        api: str,
        selection: FieldSelection,
        expand: frozenset[str],
        properties: tuple[str, ...],
    ) -> orjson.Fragment:
        with self.p.lock:
            return orjson.Fragment(self.site.issue(i, api, selection, expand, properties))

    def _read_ahead(
        self,
        ids: list[int],
        api: str,
        selection: FieldSelection,
        expand: frozenset[str],
        properties: tuple[str, ...],
    ) -> Callable[[], None] | None:
        """Render the page the client will ask for next, once this one is on its way.

        A sync loop alternates between waiting and parsing; rendering during its parse lets
        server and client work at the same time, like a tracker's read-ahead.
        """

        def render() -> None:
            for i in ids:
                with self.p.lock:
                    if not self.p.is_deleted(i):
                        self.site.issue(i, api, selection, expand, properties)

        return render if ids else None

    # ------------------------------------------------------------------ server hooks
    def authenticate(self, request: Request) -> bool:
        value = (request.header("Authorization") or "").strip()
        if value in self._accepted:
            return True
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "basic" and self.cloud:
            try:
                user, _, secret = base64.b64decode(rest).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return user.lower() == self.email.lower() and secret == self.token
        return False

    def unauthorized(self) -> Response:
        return json_response(
            401,
            {
                "errorMessages": [
                    "You are not authenticated. Authentication required to perform this operation."
                ],
                "errors": {},
            },
            {"WWW-Authenticate": 'Basic realm="protected-area"'},
        )

    def server_error(self, status: int) -> Response:
        if status == 503:
            msg = "Service Unavailable: the site is temporarily overloaded. Please try again later."
        else:
            msg = "Internal server error"
        return json_response(status, {"errorMessages": [msg], "errors": {}})

    # ------------------------------------------------------------------ routing
    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except HttpError as exc:
            return exc.response()
        except BadJson as exc:
            return jira_error(400, f"Unexpected character in request body: {exc}").response()
        except JqlError as exc:
            return jira_error(400, str(exc)).response()

    def _route(self, r: Request) -> Response:
        path, method = r.path.rstrip("/"), r.method
        if path == "/rest/agile/1.0/issue/rank" and method == "PUT":
            return self.rank(r)
        m = _ISSUE_SUB.match(path)
        if m:
            api = self._api(m.group(1))
            i = self._issue(m.group(2))
            if m.group(3) == "changelog" and method == "GET" and m.group(4) is None:
                return self.issue_changelog(r, api, i)
            if m.group(3) == "properties":
                return self.properties(r, api, i, m.group(4))
            raise jira_error(405, "Method not allowed")
        m = _ISSUE.match(path)
        if m and m.group(2) != "bulkfetch":
            api = self._api(m.group(1))
            if method == "GET":
                return self.get_issue(r, api, self._issue(m.group(2)))
            if method == "PUT":
                return self.put_issue(r, api, self._issue(m.group(2)))
            raise jira_error(405, "Method not allowed")
        m = _API.match(path)
        if not m:
            raise jira_error(404, "Not found")
        api, rest = self._api(m.group(1)), m.group(2)
        if rest == "search/jql" and method in ("GET", "POST"):
            if not self.cloud:
                raise jira_error(404, "Not found")
            return self.search_jql(r, api)
        if rest == "search" and method in ("GET", "POST"):
            return self.search_dc(r, api)
        if rest == "search/approximate-count" and method == "POST" and self.cloud:
            return self.approximate_count(r)
        if rest == "issue/bulkfetch" and method == "POST" and self.cloud:
            return self.bulk_issues(r, api)
        if rest == "changelog/bulkfetch" and method == "POST" and self.cloud:
            return self.bulk_changelog(r, api)
        if rest.startswith("bulk/") and not self.cloud:
            raise jira_error(404, "Not found")
        if rest == "bulk/issues/fields" and method == "POST":
            return self.bulk.submit(r.json())
        if rest.startswith("bulk/queue/") and method == "GET":
            return self.bulk.progress(rest.removeprefix("bulk/queue/"))
        if method != "GET":
            raise jira_error(405, "Method not allowed")
        if rest == "serverInfo":
            return json_response(200, self.server_info())
        if rest == "myself":
            return json_response(200, self.myself())
        if rest == "field":
            return json_response(200, [f.details() for f in self.site.fields])
        if rest == "issuetype":
            types = [t.code for t in self.p.process.types]
            return json_response(200, [self.site.issue_type(t) for t in types])
        if rest == "status":
            # Every status of the process, removed/cancelled ones included (their category is
            # Jira's `done`, as inside issues' `fields.status`).
            return json_response(200, self.site.status_frag)
        if rest == "project/search" and self.cloud:
            return self.project_search(r, api)
        if rest == "project":
            expand = set((r.arg("expand") or "").split(","))
            return json_response(200, [self.site.project(c, expand) for c in self._project_codes()])
        if rest.startswith("project/"):
            code = self._project(rest.removeprefix("project/"))
            expand = set((r.arg("expand") or "").split(",")) | {"description", "lead", "issueTypes"}
            return json_response(200, self.site.project(code, expand))
        raise jira_error(404, "Not found")

    def _api(self, version: str) -> str:
        if version == "3" and not self.cloud:
            raise jira_error(404, "Not found")
        return f"rest/api/{version}"

    def _issue(self, id_or_key: str) -> int:
        i = self.p.find(id_or_key)
        if i is None or self.p.is_deleted(i):
            raise not_found()
        return i

    def _project_codes(self) -> list[int]:
        return list(range(len(self.p.arts) + 1))

    def _project(self, id_or_key: str) -> int:
        for code in self._project_codes():
            if id_or_key.upper() in (self.p.project_key(code), self.site.project_id(code)):
                return code
        raise jira_error(404, f"No project could be found with key '{id_or_key}'.")

    # ------------------------------------------------------------------ site info
    def server_info(self) -> dict[str, Any]:
        now = self.site.ts(int(time.time() * 1000))
        if self.cloud:
            return {
                "baseUrl": self.site.base,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100297,
                "buildDate": "2026-11-17T08:14:31.000+0100",
                "serverTime": now,
                "scmInfo": "9d1cb4c4b1b5e6c2a5d3f7e6b8a9c0d1e2f3a4b5",
                "serverTitle": "Jira",
            }
        return {
            "baseUrl": self.site.base,
            "version": "9.12.15",
            "versionNumbers": [9, 12, 15],
            "deploymentType": "Server",
            "buildNumber": 9120015,
            "buildDate": "2026-10-01T00:00:00.000+0200",
            "serverTime": now,
            "scmInfo": "6f2c8f0a3e9b7d1c5a4e2b0f9d8c7b6a5e4d3c2b",
            "serverTitle": "Contoso Jira",
        }

    def myself(self) -> dict[str, Any]:
        out = self.site.user(API_USER)
        out["locale"] = "en_US"
        out["groups"] = {"size": 1, "items": []}
        out["applicationRoles"] = {"size": 1, "items": []}
        out["expand"] = "groups,applicationRoles"
        return out

    def project_search(self, r: Request, api: str) -> Response:
        start = _int(r.arg("startAt"), 0, "startAt")
        size = min(max(_int(r.arg("maxResults"), 50, "maxResults"), 1), 100)
        keys = {k.upper() for v in r.args("keys") for k in v.split(",") if k}
        query = (r.arg("query") or "").lower()
        expand = set((r.arg("expand") or "").split(","))
        codes = [
            c
            for c in self._project_codes()
            if (not keys or self.p.project_key(c) in keys)
            and (
                not query
                or query in self.p.project_key(c).lower()
                or query in self.site.project_name(c).lower()
            )
        ]
        page = codes[start : start + size]
        out: dict[str, Any] = {
            "self": f"{self.site.base}/{api}/project/search?startAt={start}&maxResults={size}",
            "maxResults": size,
            "startAt": start,
            "total": len(codes),
            "isLast": start + size >= len(codes),
            "values": [self.site.project(c, expand) for c in page],
        }
        if not out["isLast"]:
            out["nextPage"] = (
                f"{self.site.base}/{api}/project/search?startAt={start + size}&maxResults={size}"
            )
        return json_response(200, out)

    # ------------------------------------------------------------------ search
    def _params(self, r: Request) -> dict[str, Any]:
        """Search parameters from the query string (GET) or the JSON body (POST)."""
        if r.method == "POST":
            body = r.json()
            if not isinstance(body, dict):
                raise jira_error(400, "Request body must be a JSON object.")
            return body
        out: dict[str, Any] = {}
        for name in ("jql", "nextPageToken", "maxResults", "expand", "startAt", "fieldsByKeys"):
            value = r.arg(name)
            if value is not None:
                out[name] = value
        for name in ("fields", "properties", "reconcileIssues"):
            values = r.args(name)
            if values:
                out[name] = values
        return out

    def _run(self, jql: str, *, bounded: bool) -> tuple[Query, list[int], Compiler]:
        query = parse(jql)
        compiler = Compiler(self.site)
        with self.p.lock:
            ids = compiler.run(query, require_bounded=bounded)
        return query, ids, compiler

    def search_jql(self, r: Request, api: str) -> Response:
        params = self._params(r)
        jql = str(params.get("jql") or "")
        fields = _list(params.get("fields"))
        selection = FieldSelection.parse(fields, "id", self.site)
        cap = (
            MAX_PAGE_IDS
            if selection.id_only or selection.names <= {"key", "id"}
            else MAX_PAGE_FIELDS
        )
        if selection.include_all:
            cap = MAX_PAGE_FIELDS
        size = _int(params.get("maxResults"), 50, "maxResults")
        size = min(max(size, 1), cap)
        expand = _expand(params.get("expand"))
        properties = tuple(_list(params.get("properties")))
        if len(properties) > 5:
            raise jira_error(400, "A maximum of 5 issue properties can be requested.")
        reconcile = _list(params.get("reconcileIssues"))
        if len(reconcile) > 50:
            raise jira_error(400, "The number of reconcileIssues can't exceed 50.")
        token = params.get("nextPageToken")
        digest = hashlib.sha1(jql.encode()).hexdigest()[:12]
        if token:
            qid, offset, token_digest = _decode_token(str(token))
            if token_digest != digest:
                raise jira_error(400, "The provided next page token is invalid or expired.")
            with self._results_lock:
                result = self._results.get(qid)
            if result is None:
                query, ids, compiler = self._run(jql, bounded=True)
                result = self._store(qid, jql, query, ids)
            else:
                compiler = Compiler(self.site)
        else:
            query, ids, compiler = self._run(jql, bounded=True)
            qid = uuid.uuid4().hex[:16]
            result = self._store(qid, jql, query, ids)
            offset = 0
        chunk = result.ids[offset : offset + size]
        if self.p.version != result.version:
            with self.p.lock:
                chunk = [i for i in chunk if compiler.matches(result.query, i)]
        issues = [self._fragment(i, api, selection, expand, properties) for i in chunk]
        end = offset + size
        ahead = self._read_ahead(result.ids[end : end + size], api, selection, expand, properties)
        out: dict[str, Any] = {"issues": issues}
        if end < len(result.ids):
            out["nextPageToken"] = _encode_token(qid, end, digest)
            out["isLast"] = False
        else:
            out["isLast"] = True
        self._names_schema(out, expand, selection)
        response = json_response(200, out)
        response.after = ahead
        return response

    def _store(self, qid: str, jql: str, query: Query, ids: list[int]) -> _Result:
        result = _Result(jql, ids, query, self.p.version)
        with self._results_lock:
            self._results[qid] = result
            while len(self._results) > 64:
                self._results.popitem(last=False)
        return result

    def _names_schema(
        self, out: dict[str, Any], expand: frozenset[str], selection: FieldSelection
    ) -> None:
        if not expand & {"names", "schema"}:
            return
        fields = [f for f in self.site.fields if selection.include_all or f.id in selection.names]
        if "names" in expand:
            out["names"] = {f.id: f.name for f in fields}
        if "schema" in expand:
            out["schema"] = {f.id: f.schema for f in fields if f.schema}

    def approximate_count(self, r: Request) -> Response:
        body = r.json() or {}
        _, ids, _ = self._run(str(body.get("jql") or ""), bounded=True)
        return json_response(200, {"count": len(ids)})

    def search_dc(self, r: Request, api: str) -> Response:
        if self.cloud:
            raise jira_error(
                410,
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql "
                "API. "
                "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046",
            )
        params = self._params(r)
        jql = str(params.get("jql") or "")
        start = max(_int(params.get("startAt"), 0, "startAt"), 0)
        size = min(max(_int(params.get("maxResults"), 50, "maxResults"), 0), DC_MAX_RESULTS)
        if start + size > DC_RESULT_WINDOW:
            raise HttpError(
                500,
                {
                    "message": (
                        "Search limit exceeded. We couldn't complete your search because it "
                        "requests "
                        f"{start + size:,} results which exceeded the search platform limit of "
                        f"{DC_RESULT_WINDOW:,}. Try refining your query or contact your Jira "
                        "administrator. Repeating the same search may not work."
                    ),
                    "status-code": 500,
                    "stack-trace": "Please contact your admin passing attached Log's referral "
                    f"number: {uuid.uuid4()}",
                },
            )
        selection = FieldSelection.parse(_list(params.get("fields")), "*navigable", self.site)
        expand = _expand(params.get("expand"))
        properties = tuple(_list(params.get("properties")))
        key = f"dc:{jql}"
        with self._results_lock:
            result = self._results.get(key)
        if result is None or result.version != self.p.version:
            query, ids, _ = self._run(jql, bounded=False)
            result = self._store(key, jql, query, ids)
        issues = [
            self._fragment(i, api, selection, expand, properties)
            for i in result.ids[start : start + size]
        ]
        after = self._read_ahead(
            result.ids[start + size : start + 2 * size], api, selection, expand, properties
        )
        out: dict[str, Any] = {
            "expand": "names,schema",
            "startAt": start,
            "maxResults": size,
            "total": len(result.ids),
            "issues": issues,
        }
        self._names_schema(out, expand, selection)
        response = json_response(200, out)
        response.after = after
        return response

    # ------------------------------------------------------------------ issues
    def get_issue(self, r: Request, api: str, i: int) -> Response:
        selection = FieldSelection.parse(r.args("fields"), "*all", self.site)
        expand = _expand(r.arg("expand"))
        properties = tuple(p for v in r.args("properties") for p in v.split(",") if p)
        with self.p.lock:
            body = self.site.issue_obj(i, api, selection, expand, properties)
        return json_response(200, body)

    def issue_changelog(self, r: Request, api: str, i: int) -> Response:
        start = max(_int(r.arg("startAt"), 0, "startAt"), 0)
        size = min(max(_int(r.arg("maxResults"), 100, "maxResults"), 1), 100)
        with self.p.lock:
            histories = self.site.histories(i, api)
        page = histories[start : start + size]
        base = f"{self.site.base}/{api}/issue/{self.p.key(i)}/changelog"
        out: dict[str, Any] = {
            "self": f"{base}?startAt={start}&maxResults={size}",
            "maxResults": size,
            "startAt": start,
            "total": len(histories),
            "isLast": start + size >= len(histories),
            "values": page,
        }
        if not out["isLast"]:
            out["nextPage"] = f"{base}?startAt={start + size}&maxResults={size}"
        return json_response(200, out)

    def put_issue(self, r: Request, api: str, i: int) -> Response:
        body = r.json()
        if not isinstance(body, dict) or not (
            body.get("fields") or body.get("update") or "properties" in body
        ):
            raise jira_error(
                400,
                "No content to map due to end-of-input" if body is None else "Nothing to update.",
            )
        errors: dict[str, str] = {}
        changes: dict[str, Any] = {}
        for fid, value in (body.get("fields") or {}).items():
            self._field_change(i, fid, "set", value, changes, errors)
        for fid, ops in (body.get("update") or {}).items():
            if not isinstance(ops, list):
                errors[fid] = "Field update operations must be a list."
                continue
            for op in ops:
                if not isinstance(op, dict) or len(op) != 1:
                    errors[fid] = "Each update operation must have exactly one verb."
                    continue
                ((verb, value),) = op.items()
                self._field_change(i, fid, verb, value, changes, errors)
        if errors:
            raise jira_error(400, errors=errors)
        notify = (r.arg("notifyUsers") or "true").lower()
        if notify not in ("true", "false"):
            raise jira_error(400, "notifyUsers must be true or false.")
        with self.p.lock:
            if changes:
                self.p.set_attrs(i, changes, author=API_USER)
            for prop in body.get("properties") or []:
                if isinstance(prop, dict) and "key" in prop:
                    self.p.set_property(i, str(prop["key"]), prop.get("value"))
            if (r.arg("returnIssue") or "").lower() == "true":
                selection = FieldSelection.parse(None, "*all", self.site)
                return json_response(200, self.site.issue_obj(i, api, selection))
        return empty(204)

    def _field_change(
        self,
        i: int,
        fid: str,
        verb: str,
        value: Any,
        changes: dict[str, Any],
        errors: dict[str, str],
    ) -> None:
        """Validate one field operation as Jira does and stage the new value."""
        f = self.site.by_id.get(fid)
        cannot = f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown."
        if f is None or f.id in NOT_EDITABLE or f.attr is None:
            errors[fid] = cannot
            return
        attr = f.attr
        if attr == "labels":
            current = list(changes.get("labels", self.p.labels(i)))
            if verb == "set":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    errors[fid] = "Labels must be a list of strings."
                    return
                current = list(value)
            elif verb in ("add", "remove") and isinstance(value, str):
                if verb == "add" and value not in current:
                    current.append(value)
                if verb == "remove" and value in current:
                    current.remove(value)
            else:
                errors[fid] = f"Operation '{verb}' is not supported for labels."
                return
            bad = [v for v in current if " " in v]
            if bad:
                errors[fid] = f"The label '{bad[0]}' contains spaces which is invalid."
                return
            changes["labels"] = tuple(sorted(current))
            return
        if verb != "set":
            errors[fid] = f"Operation '{verb}' is not supported for field '{fid}'."
            return
        try:
            changes[attr] = self._coerce(f, value)
        except ValueError as exc:
            errors[fid] = str(exc)

    def _coerce(self, f: FieldDef, value: Any) -> Any:
        attr = f.attr
        if attr == "summary":
            if not isinstance(value, str) or not value.strip():
                raise ValueError("You must specify a summary of the issue.")
            if len(value) > 255:
                raise ValueError("Summary must be less than 255 characters.")
            return value
        if attr == "priority":
            if isinstance(value, dict):
                ident = str(value.get("id") or value.get("name") or "")
                for k, name in enumerate(PRIORITIES):
                    if ident in (str(k + 1), name):
                        return k
            raise ValueError("Specify the Priority (id or name) in the proper format")
        if f.kind == "number":
            if value is None:
                return None
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError("Operation value must be a number")
            return float(value)
        if f.kind == "select":
            if value is None:
                return None
            options = self.site.options[f.name]
            wanted = value.get("value") if isinstance(value, dict) else None
            wanted_id = value.get("id") if isinstance(value, dict) else None
            for k, opt in enumerate(options):
                if wanted == opt["value"] or (
                    wanted_id is not None and str(wanted_id) == opt["id"]
                ):
                    if attr == "health":
                        return HEALTH_VALUES[k]
                    if attr == "category":
                        return CATEGORIES[k]
                    return k
            shown = wanted if wanted is not None else wanted_id if wanted_id is not None else value
            raise ValueError(f"Option value '{shown}' is not valid")
        if f.kind == "team":
            if value is None:
                return None
            team_id = value.get("id") if isinstance(value, dict) else value
            for t in self.p.teams:
                if team_id == t.uuid:
                    return t.code
            raise ValueError(f"Team '{team_id}' does not exist.")
        if f.kind == "flag":
            if not value:
                return False
            if isinstance(value, list) and all(
                isinstance(v, dict) and (v.get("value") == "Impediment" or v.get("id") == "10140")
                for v in value
            ):
                return True
            raise ValueError("Option value is not valid for Flagged")
        raise ValueError(
            f"Field '{f.id}' cannot be set. It is not on the appropriate screen, or unknown."
        )

    def properties(self, r: Request, api: str, i: int, key: str | None) -> Response:
        base = f"{self.site.base}/{api}/issue/{self.p.tracker_id(i)}/properties"
        props = self.p.properties.get(i, {})
        if key is None:
            if r.method != "GET":
                raise jira_error(405, "Method not allowed")
            return json_response(200, {"keys": [{"self": f"{base}/{k}", "key": k} for k in props]})
        if r.method == "GET":
            if key not in props:
                raise jira_error(404, f"The property with key '{key}' does not exist.")
            return json_response(200, {"key": key, "value": props[key]})
        if r.method == "PUT":
            if len(r.body) > 32_768:
                raise jira_error(400, "The property value is too large (32768 bytes at most).")
            value = r.json()
            created = self.p.set_property(i, key, value)
            return empty(201 if created else 200)
        if r.method == "DELETE":
            if not self.p.delete_property(i, key):
                raise jira_error(404, f"The property with key '{key}' does not exist.")
            return empty(204)
        raise jira_error(405, "Method not allowed")

    def bulk_issues(self, r: Request, api: str) -> Response:
        body = r.json()
        if not isinstance(body, dict) or not isinstance(body.get("issueIdsOrKeys"), list):
            raise jira_error(400, "issueIdsOrKeys is required.")
        wanted = body["issueIdsOrKeys"]
        if len(wanted) > MAX_BULK_ISSUES:
            raise jira_error(
                400, f"The number of issues requested exceeds the maximum of {MAX_BULK_ISSUES}."
            )
        selection = FieldSelection.parse(_list(body.get("fields")), "*navigable", self.site)
        expand = _expand(body.get("expand"))
        properties = tuple(_list(body.get("properties")))
        issues = []
        with self.p.lock:
            for ident in wanted:
                i = self.p.find(str(ident))
                if i is None or self.p.is_deleted(i):
                    continue
                obj = self.site.issue_obj(i, api, selection, expand, properties)
                if "changelog" in obj:
                    histories = obj["changelog"]["histories"][-40:]
                    obj["changelog"].update(histories=histories, maxResults=len(histories))
                issues.append(obj)
        return json_response(200, {"issues": issues, "issueErrors": []})

    def bulk_changelog(self, r: Request, api: str) -> Response:
        body = r.json()
        if not isinstance(body, dict) or not isinstance(body.get("issueIdsOrKeys"), list):
            raise jira_error(400, "issueIdsOrKeys is required.")
        wanted = body["issueIdsOrKeys"]
        if not 1 <= len(wanted) <= MAX_CHANGELOG_ISSUES:
            raise jira_error(
                400, f"issueIdsOrKeys must have between 1 and {MAX_CHANGELOG_ISSUES} entries."
            )
        field_ids = body.get("fieldIds") or []
        if len(field_ids) > 10:
            raise jira_error(400, "fieldIds can have at most 10 entries.")
        size = _int(body.get("maxResults"), 1000, "maxResults")
        if not 1 <= size <= 10_000:
            raise jira_error(400, "maxResults must be between 1 and 10000.")
        digest = hashlib.sha1(orjson.dumps([wanted, sorted(field_ids)])).hexdigest()[:12]
        offset = 0
        if body.get("nextPageToken"):
            _, offset, token_digest = _decode_token(str(body["nextPageToken"]))
            if token_digest != digest:
                raise jira_error(400, "The provided next page token is invalid or expired.")
        wanted_fields = set(field_ids) if field_ids else None
        flat: list[tuple[str, dict[str, Any]]] = []
        with self.p.lock:
            for ident in wanted:
                i = self.p.find(str(ident))
                if i is None or self.p.is_deleted(i):
                    continue
                issue_id = self.p.external_id(i)
                flat.extend((issue_id, h) for h in self.site.histories(i, api, wanted_fields))
        page = flat[offset : offset + size]
        logs: list[dict[str, Any]] = []
        for issue_id, h in page:
            if not logs or logs[-1]["issueId"] != issue_id:
                logs.append({"issueId": issue_id, "changeHistories": []})
            logs[-1]["changeHistories"].append(h)
        out: dict[str, Any] = {"issueChangeLogs": logs}
        if offset + size < len(flat):
            out["nextPageToken"] = _encode_token("changelog", offset + size, digest)
        return json_response(200, out)

    # ------------------------------------------------------------------ rank
    def rank(self, r: Request) -> Response:
        body = r.json()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("issues"), list)
            or not body["issues"]
        ):
            raise jira_error(400, "issues must be a non-empty list of issue keys or ids.")
        issues = [str(x) for x in body["issues"]]
        if len(issues) > MAX_RANK:
            raise jira_error(400, f"Only {MAX_RANK} issues can be ranked at once.")
        before, after = body.get("rankBeforeIssue"), body.get("rankAfterIssue")
        if (before is None) == (after is None):
            raise jira_error(400, "Exactly one of rankBeforeIssue or rankAfterIssue must be given.")
        field_id = body.get("rankCustomFieldId")
        rank_field = self.site.by_id[self.site.cf["Rank"]]
        if field_id is not None and int(field_id) != rank_field.custom_id:
            raise jira_error(400, f"The custom field with id {field_id} is not a rank field.")
        anchor = self.p.find(str(before if before is not None else after))
        if anchor is None or self.p.is_deleted(anchor):
            raise jira_error(
                400, f"Issue '{before if before is not None else after}' does not exist."
            )
        entries: list[dict[str, Any]] = []
        movable: list[tuple[int, str]] = []
        for ident in issues:
            i = self.p.find(ident)
            if i is None or self.p.is_deleted(i):
                entries.append(
                    {
                        "issueId": 0,
                        "issueKey": ident,
                        "status": 404,
                        "errors": [f"Issue '{ident}' does not exist."],
                    }
                )
            elif i == anchor:
                entries.append(self._entry(i, 400, "An issue cannot be ranked relative to itself."))
            elif self.rank_fault_rate and self._rnd.random() < self.rank_fault_rate:
                entries.append(
                    self._entry(
                        i,
                        503,
                        "JIRA Agile cannot execute the rank operation at this time. Please try "
                        "again later.",
                    )
                )
            else:
                movable.append((i, ident))
                entries.append(self._entry(i, 200))
        with self.p.lock:
            if movable:
                self._place([i for i, _ in movable], anchor, before is not None)
        if any(e["status"] != 200 for e in entries):
            return json_response(207, {"entries": entries})
        return empty(204)

    def _entry(self, i: int, status: int, error: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "issueId": self.p.tracker_id(i),
            "issueKey": self.p.key(i),
            "status": status,
        }
        if error:
            out["errors"] = [error]
        return out

    def _place(self, items: list[int], anchor: int, before: bool) -> None:
        """Put `items`, in order, right before or after `anchor` in the global rank."""
        for i, value in zip(items, self.p.rank_slots(anchor, before, len(items)), strict=True):
            self.p.set_rank(i, value, author=API_USER)


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise jira_error(400, f"The value '{value}' is not a valid integer for {name}.") from None


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    out: list[str] = []
    for v in value:
        out.extend(x for x in str(v).split(",") if x.strip())
    return out


def _expand(value: Any) -> frozenset[str]:
    return frozenset(x.strip() for x in _list(value))


def _encode_token(qid: str, offset: int, digest: str) -> str:
    return base64.urlsafe_b64encode(f"{qid}:{offset}:{digest}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        qid, offset, digest = raw.split(":")
        return qid, int(offset), digest
    except (ValueError, UnicodeDecodeError):
        raise jira_error(400, "The provided next page token is invalid or expired.") from None
