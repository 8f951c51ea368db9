"""The fake Azure DevOps work item tracking API (7.1) over a generated portfolio.

URL layout as on dev.azure.com: `/{organization}/{project}/_apis/wit/...` (org-level routes
too). WIQL returns ids only (20,000 at most, VS402337 past that), `workitemsbatch` takes at most
200 ids and refuses `fields` with `$expand`, PATCH takes JSON Patch with `test /rev` (a stale
revision is 412 TF26071), deletes go to the recycle bin, and every collection comes wrapped in
`{"count", "value"}`. Errors carry the service's `$id/message/typeName/typeKey` body.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from sandbox.ado_site import BY_REF, ORG, PROJECT, AdoField, AdoSite, ado_date, field_named
from sandbox.portfolio import Portfolio
from sandbox.process import CATEGORIES, CATEGORY_LABELS, HEALTH_VALUES
from sandbox.web import Api, BadJson, HttpError, Request, Response, empty, json_response
from sandbox.wiql import Evaluator, WiqlError, parse

MAX_BATCH = 200
API_USER = 0
_ROUTE = re.compile(
    r"^/(?P<org>[^/]+)(?:/(?P<project>[^/_][^/]*))?(?:/(?P<team>[^/_][^/]*))?/_apis/(?P<rest>.+)$"
)
_VERSION = re.compile(r"^\d+\.\d+(-preview(\.\d+)?)?$")
_TYPE_NAMES = {
    "WorkItemTrackingQueryResultSizeLimitExceededException": (
        "Microsoft.TeamFoundation.WorkItemTracking.Server."
        "WorkItemTrackingQueryResultSizeLimitExceededException, "
        "Microsoft.TeamFoundation.WorkItemTracking.Server"
    ),
}


def ado_error(status: int, message: str, type_key: str, event_id: int = 3000) -> HttpError:
    type_name = _TYPE_NAMES.get(
        type_key,
        f"Microsoft.TeamFoundation.WorkItemTracking.Server.{type_key}, "
        "Microsoft.TeamFoundation.WorkItemTracking.Server",
    )
    return HttpError(
        status,
        {
            "$id": "1",
            "innerException": None,
            "message": message,
            "typeName": type_name,
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": event_id,
        },
    )


def not_found(item_id: int | str) -> HttpError:
    return ado_error(
        404,
        f"TF401232: Work item {item_id} does not exist, or you do not have permissions to read it.",
        "WorkItemUnauthorizedAccessException",
    )


def collection(values: list[Any]) -> Response:
    return json_response(200, {"count": len(values), "value": values})


class AdoApi(Api):
    kind = "azure_devops"

    def __init__(self, portfolio: Portfolio, server_url: str, *, pat: str):
        self.p = portfolio
        self.site = AdoSite(portfolio, server_url)
        self.pat = pat
        self.destroyed: set[int] = set()
        self._last_query: list[int] = []
        self._last_positions: dict[int, int] = {}

    def _read_ahead(
        self, ids: list[int], fields: tuple[str, ...] | None, expand: str
    ) -> Callable[[], None] | None:
        """After a batch that walks the last WIQL result in order, render the next batch
        while the client parses this one (see JiraApi._read_ahead)."""
        start = self._last_positions.get(ids[0]) if ids else None
        query = self._last_query
        if start is None or query[start : start + len(ids)] != ids:
            return None
        ahead = query[start + len(ids) : start + 2 * len(ids)]

        def render() -> None:
            for ident in ahead:
                i = self.p.index_of_id(ident)
                with self.p.lock:
                    if i is not None and not self.p.is_deleted(i):
                        self.site.work_item(i, fields, expand)

        return render if ahead else None

    # ------------------------------------------------------------------ server hooks
    def authenticate(self, request: Request) -> bool:
        value = (request.header("Authorization") or "").strip()
        scheme, _, rest = value.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            _, _, secret = base64.b64decode(rest).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secret == self.pat

    def unauthorized(self) -> Response:
        return json_response(
            401,
            {
                "$id": "1",
                "innerException": None,
                "message": "TF400813: Resource not available for anonymous access. "
                "Client authentication required.",
                "typeName": "Microsoft.TeamFoundation.Framework.Server."
                "UnauthorizedRequestException, "
                "Microsoft.TeamFoundation.Framework.Server",
                "typeKey": "UnauthorizedRequestException",
                "errorCode": 0,
                "eventId": 3000,
            },
            {
                "WWW-Authenticate": 'Basic realm="https://dev.azure.com/"',
                "X-TFS-FedAuthRedirect": "Suppress",
            },
        )

    def server_error(self, status: int) -> Response:
        message = (
            "TF400733: The request has been canceled: the service is temporarily unavailable."
            if status == 503
            else "TF246021: An error occurred while processing your request."
        )
        return ado_error(
            status,
            message,
            "ServiceUnavailableException" if status == 503 else "VssServiceException",
        ).response()

    # ------------------------------------------------------------------ routing
    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except HttpError as exc:
            return exc.response()
        except BadJson as exc:
            return ado_error(
                400,
                f"VS403443: The request body is not valid JSON: {exc}",
                "VssRequestContentException",
            ).response()
        except WiqlError as exc:
            return ado_error(400, str(exc), exc.type_key).response()

    def _route(self, r: Request) -> Response:
        m = _ROUTE.match(r.path.rstrip("/"))
        if not m or m.group("org").lower() != ORG:
            raise HttpError(404, {"message": "The resource cannot be found."})
        self._check_version(r)
        project, team, rest = m.group("project"), m.group("team"), m.group("rest").lower()
        if project is not None and project.lower() not in (PROJECT.lower(), self.site.project_id):
            raise ado_error(
                404,
                f"TF200016: The following project does not exist: {project}. Verify that the name "
                "of the "
                "project is correct and that the project exists on the specified Azure DevOps "
                "Server.",
                "ProjectDoesNotExistException",
            )
        method = r.method
        if rest == "projects" and project is None and method == "GET":
            return collection([self.project_obj()])
        if team is not None and rest != "wit/wiql":
            raise HttpError(404, {"message": "The resource cannot be found."})
        if rest == "wit/wiql" and method == "POST":
            return self.wiql(r, project)
        if rest == "wit/workitemsbatch" and method == "POST":
            return self.batch(r)
        if rest == "wit/workitems" and method == "GET":
            return self.list_items(r)
        if rest.startswith("wit/workitems/"):
            return self.item_routes(r, rest.removeprefix("wit/workitems/"))
        if rest == "wit/fields" and method == "GET":
            return collection([self.site.field_details(f) for f in BY_REF.values()])
        if rest.startswith("wit/fields/") and method == "GET":
            f = field_named(rest.removeprefix("wit/fields/"))
            if f is None:
                raise ado_error(
                    404,
                    f"TF51535: Cannot find field {rest.removeprefix('wit/fields/')}.",
                    "WorkItemTrackingFieldDefinitionNotFoundException",
                )
            return json_response(200, self.site.field_details(f))
        if rest.startswith("wit/workitemtypes") and method == "GET":
            return self.types(rest.removeprefix("wit/workitemtypes").strip("/"), r)
        if rest.startswith("wit/recyclebin"):
            return self.recycle_bin(r, rest.removeprefix("wit/recyclebin").strip("/"))
        raise HttpError(404, {"message": "The resource cannot be found."})

    def _check_version(self, r: Request) -> None:
        version = r.arg("api-version")
        if version is None:
            accept = r.header("Accept") or ""
            m = re.search(r"api-version=([\w.\-]+)", accept)
            version = m.group(1) if m else None
        if version is None:
            raise ado_error(
                400,
                f'No api-version was supplied for the "{r.method}" request. The version must be '
                "supplied either as "
                'part of the Accept header (e.g. "application/json; api-version=1.0") or as a '
                "query parameter "
                "(e.g. '?api-version=1.0').",
                "VssVersionNotSpecifiedException",
            )
        if not _VERSION.match(version):
            raise ado_error(
                400,
                f"The requested REST API version of {version} is out of range for this server.",
                "VssVersionOutOfRangeException",
            )

    def project_obj(self) -> dict[str, Any]:
        return {
            "id": self.site.project_id,
            "name": PROJECT,
            "url": f"{self.site.org_url}/_apis/projects/{self.site.project_id}",
            "state": "wellFormed",
            "revision": 11,
            "visibility": "private",
            "lastUpdateTime": "2026-01-05T09:00:00.0Z",
        }

    # ------------------------------------------------------------------ queries
    def wiql(self, r: Request, project: str | None) -> Response:
        body = r.json()
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise ado_error(
                400, "VS402611: The WIQL query is required.", "WorkItemTrackingQueryException"
            )
        time_precision = (r.arg("timePrecision") or "false").lower() == "true"
        top_arg = r.arg("$top")
        top = int(top_arg) if top_arg else None
        query = parse(body["query"], project or PROJECT)
        as_of = _now_iso()
        ids = Evaluator(self.site, time_precision=time_precision).run(query, top, self.p.lock)
        self._last_query = [i + 1 for i in ids]
        self._last_positions = {ident: pos for pos, ident in enumerate(self._last_query)}
        org = self.site.org_url
        out: dict[str, Any] = {
            "queryType": "flat",
            "queryResultType": "workItem",
            "asOf": as_of,
            "columns": [self._ref(f) for f in query.columns],
            "workItems": [
                {"id": i + 1, "url": f"{org}/{self.site.project_id}/_apis/wit/workItems/{i + 1}"}
                for i in ids
            ],
        }
        if query.order:
            out["sortColumns"] = [{"field": self._ref(f), "descending": d} for f, d in query.order]
        return json_response(200, out)

    def _ref(self, f: AdoField) -> dict[str, str]:
        return {
            "referenceName": f.ref,
            "name": f.name,
            "url": f"{self.site.org_url}/_apis/wit/fields/{f.ref}",
        }

    # ------------------------------------------------------------------ reads
    def _fields_arg(self, fields: list[str] | None) -> tuple[str, ...] | None:
        if not fields:
            return None
        out = []
        for name in fields:
            f = field_named(name)
            if f is None:
                raise ado_error(
                    400,
                    f"TF51535: Cannot find field {name}.",
                    "WorkItemTrackingFieldDefinitionNotFoundException",
                )
            out.append(f.ref)
        return tuple(out)

    def _expand(self, value: Any, fields: tuple[str, ...] | None) -> str:
        expand = str(value or "none").lower()
        if expand not in ("none", "relations", "fields", "links", "all"):
            raise ado_error(
                400, f"The value '{value}' is not valid for $expand.", "ArgumentException"
            )
        if fields is not None and expand != "none":
            raise ado_error(
                400,
                "The expand parameter can not be used with the fields parameter.",
                "ConflictingParametersException",
            )
        return expand

    def _items(
        self, ids: list[int], fields: tuple[str, ...] | None, expand: str, policy: str
    ) -> Response:
        if len(ids) > MAX_BATCH:
            raise ado_error(
                400,
                f"VS403474: You requested {len(ids)} work items which exceeds the limit of "
                f"{MAX_BATCH}",
                "WorkItemTrackingBatchLimitExceededException",
            )
        values: list[Any] = []
        for ident in ids:
            with self.p.lock:
                i = self.p.index_of_id(ident)
                if i is None or self.p.is_deleted(i):
                    if policy == "omit":
                        values.append(None)
                        continue
                    raise not_found(ident)
                values.append(orjson.Fragment(self.site.work_item(i, fields, expand)))
        response = collection(values)
        response.after = self._read_ahead(ids, fields, expand)
        return response

    def batch(self, r: Request) -> Response:
        body = r.json()
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
            raise ado_error(
                400, "VS403472: The ids of the work items are required.", "ArgumentNullException"
            )
        try:
            ids = [int(x) for x in body["ids"]]
        except (TypeError, ValueError):
            raise ado_error(
                400, "VS403472: Work item ids must be integers.", "ArgumentException"
            ) from None
        fields = self._fields_arg(body.get("fields"))
        expand = self._expand(body.get("$expand"), fields)
        policy = str(body.get("errorPolicy") or "fail").lower()
        return self._items(ids, fields, expand, policy)

    def list_items(self, r: Request) -> Response:
        raw = r.arg("ids")
        if not raw:
            raise ado_error(
                400, "VS403472: The ids query parameter is required.", "ArgumentNullException"
            )
        try:
            ids = [int(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            raise ado_error(
                400, "VS403472: Work item ids must be integers.", "ArgumentException"
            ) from None
        fields = self._fields_arg([f for f in (r.arg("fields") or "").split(",") if f])
        expand = self._expand(r.arg("$expand"), fields)
        return self._items(ids, fields, expand, (r.arg("errorPolicy") or "fail").lower())

    def item_routes(self, r: Request, rest: str) -> Response:
        parts = rest.split("/")
        try:
            ident = int(parts[0])
        except ValueError:
            raise ado_error(
                400, f"VS403472: '{parts[0]}' is not a valid work item id.", "ArgumentException"
            ) from None
        i = self.p.index_of_id(ident)
        if i is None or self.p.is_deleted(i):
            raise not_found(ident)
        if len(parts) == 1:
            if r.method == "GET":
                fields = self._fields_arg([f for f in (r.arg("fields") or "").split(",") if f])
                expand = self._expand(r.arg("$expand"), fields)
                with self.p.lock:
                    return json_response(
                        200, self.site.work_item_obj(i, fields, expand, links=fields is None)
                    )
            if r.method == "PATCH":
                return self.patch(r, i)
            if r.method == "DELETE":
                return self.delete(r, i)
        if parts[1] == "updates" and r.method == "GET":
            with self.p.lock:
                updates = self.site.updates(i)
            if len(parts) == 3:
                n = int(parts[2])
                if not 1 <= n <= len(updates):
                    raise ado_error(
                        404,
                        f"TF401232: Update {n} of work item {ident} does not exist.",
                        "WorkItemUnauthorizedAccessException",
                    )
                return json_response(200, updates[n - 1])
            skip = int(r.arg("$skip") or 0)
            top = int(r.arg("$top") or 200)
            return collection(updates[skip : skip + top])
        raise HttpError(404, {"message": "The resource cannot be found."})

    # ------------------------------------------------------------------ writes
    def patch(self, r: Request, i: int) -> Response:
        content_type = (r.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json-patch+json":
            raise ado_error(
                415,
                f'The request indicated a Content-Type of "{content_type}" for method type '
                '"PATCH" which is not '
                "supported. Valid content types for this method are: application/json-patch+json.",
                "VssRequestContentTypeNotSupportedException",
            )
        ops = r.json()
        if not isinstance(ops, list) or not ops:
            raise ado_error(
                400,
                "VS403442: The JSON Patch document must be a non-empty array.",
                "VssPropertyValidationException",
            )
        p = self.p
        with p.lock:
            rev = p.revision(i)
            attrs: dict[str, Any] = {}
            status: int | None = None
            rank: float | None = None
            move: tuple[int, int] | None = None
            parent: int | bool | None = False
            for op in ops:
                if not isinstance(op, dict) or "op" not in op or "path" not in op:
                    raise ado_error(
                        400,
                        "VS403442: Each operation needs 'op' and 'path'.",
                        "VssPropertyValidationException",
                    )
                kind, path, value = str(op["op"]).lower(), str(op["path"]), op.get("value")
                if kind == "test":
                    if path.lower() == "/rev":
                        if _as_int(value) != rev:
                            raise ado_error(
                                412,
                                "TF26071: This work item has been changed by someone else since "
                                "you opened it. "
                                "You will need to refresh it and discard your changes.",
                                "WorkItemRevisionMismatchException",
                            )
                        continue
                    raise ado_error(
                        400,
                        f"VS403446: test is supported on /rev only, not {path}.",
                        "VssPropertyValidationException",
                    )
                if path.lower().startswith("/fields/"):
                    if kind not in ("add", "replace", "remove"):
                        raise ado_error(
                            400,
                            f"VS403446: Operation '{kind}' is not supported on fields.",
                            "VssPropertyValidationException",
                        )
                    ref = path[len("/fields/") :]
                    f = field_named(ref)
                    if f is None:
                        raise ado_error(
                            400,
                            f"TF51535: Cannot find field {ref}.",
                            "WorkItemTrackingFieldDefinitionNotFoundException",
                        )
                    if f.read_only:
                        raise ado_error(
                            400,
                            f"TF401326: Invalid field status 'ReadOnly' for field '{f.ref}'.",
                            "RuleValidationException",
                        )
                    new = None if kind == "remove" else value
                    if f.attr == "state":
                        status = self._state(i, f, new)
                    elif f.attr == "rank":
                        rank = _number(f, new)
                    elif f.attr == "area":
                        move = self._area(i, f, new)
                    elif f.attr == "iteration":
                        attrs.update(self._iteration(f, new))
                    elif f.attr == "history":
                        continue
                    elif f.attr is not None:
                        attrs[f.attr] = self._coerce(f, new)
                    continue
                if path.startswith("/relations"):
                    parent = self._relation(i, kind, path, value)
                    continue
                raise ado_error(
                    400,
                    f"VS403446: The path '{path}' is not supported.",
                    "VssPropertyValidationException",
                )
            validate_only = (r.arg("validateOnly") or "false").lower() == "true"
            if not validate_only:
                if parent is not False:
                    self._set_parent(
                        i,
                        parent
                        if isinstance(parent, int) and not isinstance(parent, bool)
                        else None,
                    )
                p.edit(i, author=API_USER, attrs=attrs, status=status, rank=rank, move=move)
            expand = self._expand(r.arg("$expand"), None)
            return json_response(200, self.site.work_item_obj(i, None, expand, links=True))

    def _coerce(self, f: AdoField, value: Any) -> Any:
        attr = f.attr
        if f.type in ("double", "integer") and attr not in ("priority",):
            number = _number(f, value)
            if number is not None and f.type == "integer":
                number = float(int(number))
            return number
        if attr == "priority":
            number = _number(f, value)
            if number is None or int(number) not in (1, 2, 3, 4):
                raise _rule(f)
            return int(number)
        if attr == "summary":
            if not isinstance(value, str) or not value.strip() or len(value) > 255:
                raise _rule(f)
            return value
        if attr == "labels":
            if value is None:
                return ()
            return tuple(sorted({t.strip() for t in str(value).split(";") if t.strip()}))
        if attr == "health":
            if value is None:
                return None
            if value not in HEALTH_VALUES:
                raise _rule(f)
            return value
        if attr == "category":
            if value is None:
                return None
            if value not in CATEGORY_LABELS:
                raise _rule(f)
            return CATEGORIES[CATEGORY_LABELS.index(value)]
        if attr == "flagged":
            if value in (None, "", "No"):
                return False
            if value == "Yes":
                return True
            raise _rule(f)
        raise _rule(f)

    def _state(self, i: int, f: AdoField, value: Any) -> int:
        t = self.p.itype(i)
        for code in t.statuses:
            if self.p.process.statuses[code].name.lower() == str(value).lower():
                return code
        raise _rule(f)

    def _area(self, i: int, f: AdoField, value: Any) -> tuple[int, int]:
        parsed = self.site.parse_area(str(value or ""))
        if parsed is None:
            raise ado_error(
                400,
                f"TF401347: Invalid tree name given for work item {i + 1}, field '{f.ref}'.",
                "RuleValidationException",
            )
        art, team = parsed
        if art < 0:
            return (self.p.art[i], -1)
        return (art, team)

    def _iteration(self, f: AdoField, value: Any) -> dict[str, Any]:
        parsed = self.site.parse_iteration(str(value or ""))
        if parsed is None:
            raise ado_error(
                400,
                f"TF401347: Invalid tree name given for field '{f.ref}'.",
                "RuleValidationException",
            )
        pi, sprint = parsed
        if sprint >= 0:
            return {"sprint": sprint}
        return {"sprint": None, "increment": None if pi < 0 else pi}

    def _relation(self, i: int, kind: str, path: str, value: Any) -> int | bool | None:
        """A parent link change: the new parent index, None to clear it, False for none."""
        if kind == "add" and path == "/relations/-" and isinstance(value, dict):
            if value.get("rel") != "System.LinkTypes.Hierarchy-Reverse":
                raise ado_error(
                    400,
                    f"The sandbox stores hierarchy links only, not {value.get('rel')}.",
                    "WorkItemLinkInvalidException",
                )
            m = re.search(r"/workitems/(\d+)$", str(value.get("url", "")), re.IGNORECASE)
            target = self.p.index_of_id(int(m.group(1))) if m else None
            if target is None or self.p.is_deleted(target):
                raise not_found(m.group(1) if m else str(value.get("url")))
            if self.p.parent[i] >= 0 and self.p.parent[i] != target:
                raise ado_error(
                    400,
                    "TF201036: You cannot add a Parent link to this work item because a work item "
                    "can have only one Parent link.",
                    "WorkItemLinkInvalidException",
                )
            return target
        if kind == "remove":
            m = re.fullmatch(r"/relations/(\d+)", path)
            relations = self.site.relations(i)
            if not m or int(m.group(1)) >= len(relations):
                raise ado_error(
                    400,
                    f"VS403446: The path '{path}' does not exist.",
                    "VssPropertyValidationException",
                )
            rel = relations[int(m.group(1))]
            if rel["rel"] == "System.LinkTypes.Hierarchy-Reverse":
                return None
            raise ado_error(
                400,
                "The sandbox removes links from the child side only.",
                "WorkItemLinkInvalidException",
            )
        raise ado_error(
            400,
            f"VS403446: Operation '{kind}' on {path} is not supported.",
            "VssPropertyValidationException",
        )

    def _set_parent(self, i: int, parent: int | None) -> None:
        p = self.p
        p.parent[i] = -1 if parent is None else parent
        p._children = None
        p.ver[i] += 1

    def delete(self, r: Request, i: int) -> Response:
        destroy = (r.arg("destroy") or "false").lower() == "true"
        with self.p.lock:
            self.p.delete(i, author=API_USER)
            body = self.site.deleted_ref(i, with_resource=True)
            if destroy:
                self.destroyed.add(i)
        return json_response(200, body)

    # ------------------------------------------------------------------ metadata
    def types(self, rest: str, r: Request) -> Response:
        parts = [x for x in rest.split("/") if x]
        if not parts:
            return collection([self.site.work_item_type(t.code) for t in self.p.process.types])
        name = parts[0]
        t = next((t for t in self.p.process.types if t.name.lower() == name.lower()), None)
        if t is None:
            raise ado_error(
                404,
                f"VS402323: Work item type {name} does not exist.",
                "WorkItemTypeNotFoundException",
            )
        if len(parts) == 1:
            return json_response(200, self.site.work_item_type(t.code))
        if parts[1] == "states":
            return collection(self.site.states(t.code))
        raise HttpError(404, {"message": "The resource cannot be found."})

    def recycle_bin(self, r: Request, rest: str) -> Response:
        p = self.p
        bin_ids = sorted(i for i in p.deleted if i not in self.destroyed)
        if not rest:
            if r.method != "GET":
                raise HttpError(405, {"message": "Method not allowed."})
            ids_arg = r.arg("ids")
            if ids_arg:
                wanted = [int(x) for x in ids_arg.split(",") if x.strip()]
                values = []
                for ident in wanted:
                    i = p.index_of_id(ident)
                    if i is None or i not in p.deleted or i in self.destroyed:
                        values.append(
                            {
                                "id": ident,
                                "code": 404,
                                "message": f"TF401232: Work item {ident} does not exist "
                                "in the recycle bin.",
                            }
                        )
                    else:
                        values.append(self.site.deleted_ref(i, with_resource=False))
                return collection(values)
            return collection(
                [
                    {
                        "id": i + 1,
                        "url": f"{self.site.project_url}/_apis/wit/recycleBin/{i + 1}",
                    }
                    for i in bin_ids
                ]
            )
        ident = int(rest)
        i = p.index_of_id(ident)
        if i is None or i not in p.deleted or i in self.destroyed:
            raise not_found(ident)
        if r.method == "GET":
            return json_response(200, self.site.deleted_ref(i, with_resource=True))
        if r.method == "PATCH":
            body = r.json() or {}
            if body.get("isDeleted", body.get("IsDeleted")) is not False:
                raise ado_error(
                    400,
                    "VS403472: Set isDeleted to false to restore a work item.",
                    "ArgumentException",
                )
            ref = self.site.deleted_ref(i, with_resource=True)
            p.restore(i, author=API_USER)
            return json_response(200, ref)
        if r.method == "DELETE":
            self.destroyed.add(i)
            return empty(204)
        raise HttpError(405, {"message": "Method not allowed."})


def _rule(f: AdoField) -> HttpError:
    return ado_error(
        400,
        f"TF401320: Rule Error for field {f.name}. Error code: Required, HasValues, "
        "LimitedToValues, "
        "AllowsOldValue, InvalidEmpty.",
        "RuleValidationException",
    )


def _number(f: AdoField, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _rule(f)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ado_error(
            400,
            f"TF401347: Invalid value '{value}' for field '{f.ref}'.",
            "RuleValidationException",
        ) from None
    if not math.isfinite(number):
        raise _rule(f)
    return number


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _now_iso() -> str:
    return ado_date(int(time.time() * 1000))
