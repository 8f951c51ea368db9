"""How a generated portfolio looks through Jira's REST API: fields, issue JSON, changelogs.

Shapes follow Atlassian's published schemas (IssueBean, FieldDetails, IssueTypeDetails, User,
Changelog) and what live sites return inside `fields` (status with statusCategory, parent with
its summary, options, the Atlassian team, sprints, LexoRank). Objects shared by many issues
(statuses, users, options) are serialised once as `orjson.Fragment`, and rendered issues are
cached by item version, which is what lets one thread serve tens of thousands of issues a second.
Data Center mode differs where DC does: no `hierarchyLevel`, users by name, Epic Link and
Parent Link instead of `parent`, wiki-text descriptions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from sandbox.cache import BytesLRU
from sandbox.hashing import mix
from sandbox.portfolio import (
    F_FLAGGED,
    MS_DAY,
    NUMERIC_ATTRS,
    ChangeEntry,
    ChangeItem,
    Portfolio,
)
from sandbox.process import (
    CATEGORY_LABELS,
    HEALTH_VALUES,
    JIRA_CUSTOM_FIELDS,
    PRIORITIES,
    custom_field_ids,
)

Deployment = Literal["cloud", "datacenter"]
Frag = orjson.Fragment

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
TIME_ZONE = "Europe/Berlin"
FIELD_ATTR = {
    "Story point estimate": "estimate",
    "Business Value": "business_value",
    "Time Criticality": "time_criticality",
    "Risk Reduction": "risk_reduction",
    "Job Size": "job_size",
    "WSJF": "wsjf",
    "Portfolio Progress": "progress",
    "Planned Business Value": "planned_value",
    "Actual Business Value": "actual_value",
    "Portfolio Health": "health",
    "Investment Category": "category",
    "Program Increment": "increment",
    "Team": "team",
    "Flagged": "flagged",
}
"""Custom fields a PUT may edit, by name -> portfolio attribute."""
CUSTOM_TYPES = {
    "number": ("com.atlassian.jira.plugin.system.customfieldtypes:float", "number", None, "Number"),
    "select": (
        "com.atlassian.jira.plugin.system.customfieldtypes:select",
        "option",
        None,
        "Dropdown",
    ),
    "team": (
        "com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team",
        "team",
        None,
        "Team",
    ),
    "flag": (
        "com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes",
        "array",
        "option",
        "Checkboxes",
    ),
    "sprint": ("com.pyxis.greenhopper.jira:gh-sprint", "array", "json", None),
    "rank": ("com.pyxis.greenhopper.jira:gh-lexo-rank", "any", None, None),
    "date": ("com.atlassian.jira.plugin.system.customfieldtypes:datepicker", "date", None, "Date"),
    "epiclink": ("com.pyxis.greenhopper.jira:gh-epic-link", "any", None, None),
    "parentlink": ("com.atlassian.jpo:jpo-custom-field-parent", "any", None, None),
}
SYSTEM_FIELDS: tuple[tuple[str, str, tuple[str, ...], dict[str, str] | None, bool], ...] = (
    # id, name, clause names, schema, orderable
    ("summary", "Summary", ("summary",), {"type": "string", "system": "summary"}, True),
    (
        "issuetype",
        "Issue Type",
        ("issuetype", "type"),
        {"type": "issuetype", "system": "issuetype"},
        True,
    ),
    ("parent", "Parent", ("parent",), None, False),
    ("project", "Project", ("project",), {"type": "project", "system": "project"}, False),
    ("status", "Status", ("status",), {"type": "status", "system": "status"}, False),
    ("statusCategory", "Status Category", ("statusCategory",), None, False),
    (
        "statuscategorychangedate",
        "Status Category Changed",
        ("statusCategoryChangedDate",),
        {"type": "datetime", "system": "statuscategorychangedate"},
        False,
    ),
    ("priority", "Priority", ("priority",), {"type": "priority", "system": "priority"}, True),
    (
        "labels",
        "Labels",
        ("labels",),
        {"type": "array", "items": "string", "system": "labels"},
        True,
    ),
    ("assignee", "Assignee", ("assignee",), {"type": "user", "system": "assignee"}, True),
    ("reporter", "Reporter", ("reporter",), {"type": "user", "system": "reporter"}, True),
    ("creator", "Creator", ("creator",), {"type": "user", "system": "creator"}, False),
    (
        "created",
        "Created",
        ("created", "createdDate"),
        {"type": "datetime", "system": "created"},
        False,
    ),
    (
        "updated",
        "Updated",
        ("updated", "updatedDate"),
        {"type": "datetime", "system": "updated"},
        False,
    ),
    (
        "resolutiondate",
        "Resolved",
        ("resolutiondate", "resolved"),
        {"type": "datetime", "system": "resolutiondate"},
        False,
    ),
    (
        "resolution",
        "Resolution",
        ("resolution",),
        {"type": "resolution", "system": "resolution"},
        True,
    ),
    (
        "description",
        "Description",
        ("description",),
        {"type": "string", "system": "description"},
        True,
    ),
    ("issuekey", "Key", ("id", "issue", "issuekey", "key"), None, False),
    (
        "fixVersions",
        "Fix versions",
        ("fixVersion",),
        {"type": "array", "items": "version", "system": "fixVersions"},
        True,
    ),
    (
        "components",
        "Components",
        ("component",),
        {"type": "array", "items": "component", "system": "components"},
        True,
    ),
    ("duedate", "Due date", ("due", "duedate"), {"type": "date", "system": "duedate"}, True),
    (
        "environment",
        "Environment",
        ("environment",),
        {"type": "string", "system": "environment"},
        True,
    ),
    (
        "issuelinks",
        "Linked Issues",
        ("issueLink",),
        {"type": "array", "items": "issuelinks", "system": "issuelinks"},
        True,
    ),
    (
        "subtasks",
        "Sub-tasks",
        ("subtasks",),
        {"type": "array", "items": "issuelinks", "system": "subtasks"},
        False,
    ),
    ("watches", "Watchers", ("watchers",), {"type": "watches", "system": "watches"}, False),
    ("votes", "Votes", ("votes",), {"type": "votes", "system": "votes"}, False),
    ("workratio", "Work Ratio", ("workratio",), {"type": "number", "system": "workratio"}, False),
    (
        "lastViewed",
        "Last Viewed",
        ("lastViewed",),
        {"type": "datetime", "system": "lastViewed"},
        False,
    ),
)
NOT_EDITABLE = {
    "status",
    "statusCategory",
    "statuscategorychangedate",
    "project",
    "issuetype",
    "issuekey",
    "created",
    "updated",
    "resolutiondate",
    "resolution",
    "creator",
    "subtasks",
    "watches",
    "votes",
    "workratio",
    "lastViewed",
}


_HHMM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]
_NUMERIC_FIELDS = (
    ("Story point estimate", "estimate"),
    ("Business Value", "business_value"),
    ("Time Criticality", "time_criticality"),
    ("Risk Reduction", "risk_reduction"),
    ("Job Size", "job_size"),
    ("WSJF", "wsjf"),
    ("Portfolio Progress", "progress"),
    ("Planned Business Value", "planned_value"),
    ("Actual Business Value", "actual_value"),
)


@dataclass(frozen=True, slots=True)
class FieldDef:
    id: str
    name: str
    custom: bool
    kind: str
    """system field id, or the custom kind (number|select|team|flag|sprint|rank|date|...)."""
    clause_names: tuple[str, ...]
    schema: dict[str, Any] | None
    orderable: bool
    attr: str | None
    """Portfolio attribute behind the field when it is editable."""

    @property
    def custom_id(self) -> int | None:
        return int(self.id.removeprefix("customfield_")) if self.custom else None

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "key": self.id,
            "name": self.name,
            "custom": self.custom,
            "orderable": self.orderable,
            "navigable": True,
            "searchable": self.id not in ("parent", "watches", "votes", "lastViewed"),
            "clauseNames": list(self.clause_names),
        }
        if self.schema is not None:
            out["schema"] = self.schema
        return out


class JiraSite:
    """Renders one portfolio as a Jira Cloud or Data Center site at `base_url`."""

    def __init__(self, p: Portfolio, base_url: str, deployment: Deployment = "cloud"):
        self.p = p
        self.base = base_url.rstrip("/")
        self.deployment: Deployment = deployment
        self.cloud = deployment == "cloud"
        self.tz = ZoneInfo(TIME_ZONE)
        self.cf = custom_field_ids(p.seed)
        if not self.cloud:
            extra = sorted(int(v.removeprefix("customfield_")) for v in self.cf.values())[-1]
            self.cf["Epic Link"] = f"customfield_{extra + 1}"
            self.cf["Parent Link"] = f"customfield_{extra + 2}"
        self.fields = self._field_defs()
        self.by_id = {f.id: f for f in self.fields}
        self.by_clause: dict[str, FieldDef] = {}
        for f in self.fields:
            for name in (f.id, *f.clause_names, f.name):
                self.by_clause.setdefault(name.lower(), f)
        self._offsets: dict[int, tuple[int, str]] = {}
        self._days: dict[int, str] = {}
        self._dates: dict[int, str] = {}
        self._parents: dict[tuple[int, int, str], orjson.Fragment] = {}
        self._numeric = [(self.cf[name], p.num[attr]) for name, attr in _NUMERIC_FIELDS]
        self.cache = BytesLRU()
        self._fragments()

    # ------------------------------------------------------------------ catalogue
    def _field_defs(self) -> list[FieldDef]:
        out = []
        for fid, name, clauses, schema, orderable in SYSTEM_FIELDS:
            if not self.cloud and fid in ("parent", "statuscategorychangedate"):
                continue
            attr = {"summary": "summary", "labels": "labels", "priority": "priority"}.get(fid)
            out.append(FieldDef(fid, name, False, fid, clauses, schema, orderable, attr))
        kinds = dict(JIRA_CUSTOM_FIELDS)
        if not self.cloud:
            kinds["Epic Link"] = "epiclink"
            kinds["Parent Link"] = "parentlink"
        for name, fid in self.cf.items():
            kind = kinds[name]
            custom, type_, items, suffix = CUSTOM_TYPES[kind]
            number = int(fid.removeprefix("customfield_"))
            custom_schema: dict[str, Any] = {"type": type_, "custom": custom, "customId": number}
            if items:
                custom_schema["items"] = items
            names = [f"cf[{number}]", name] + ([f"{name}[{suffix}]"] if suffix else [])
            out.append(
                FieldDef(
                    fid, name, True, kind, tuple(names), custom_schema, True, FIELD_ATTR.get(name)
                )
            )
        return out

    def field_named(self, name: str) -> FieldDef | None:
        """Resolve a JQL clause name, field name or id (case-insensitive)."""
        key = name.strip().lower()
        if key.startswith("cf[") and key.endswith("]"):
            key = f"customfield_{key[3:-1]}"
        return self.by_clause.get(key)

    def _fragments(self) -> None:
        p, base, api = self.p, self.base, self.api_path
        avatars = {
            f"{s}x{s}": f"https://avatar.example.com/{s}.png" for s in ("48", "24", "16", "32")
        }
        self.avatar_urls = avatars
        self.type_frag = [Frag(orjson.dumps(self.issue_type(t.code))) for t in p.process.types]
        cats = {
            "new": (2, "To Do", "blue-gray"),
            "indeterminate": (4, "In Progress", "yellow"),
            "done": (3, "Done", "green"),
        }
        self.status_frag = []
        for s in p.process.statuses:
            cid, cname, color = cats[s.tracker_category]
            obj = {
                "self": f"{base}/{api}/status/{s.jira_id}",
                "description": "",
                "iconUrl": f"{base}/images/icons/statuses/generic.png",
                "name": s.name,
                "id": s.jira_id,
                "statusCategory": {
                    "self": f"{base}/{api}/statuscategory/{cid}",
                    "id": cid,
                    "key": s.tracker_category,
                    "colorName": color,
                    "name": cname,
                },
            }
            self.status_frag.append(Frag(orjson.dumps(obj)))
        self.priority_frag = [
            Frag(
                orjson.dumps(
                    {
                        "self": f"{base}/{api}/priority/{k + 1}",
                        "iconUrl": f"{base}/images/icons/priorities/{n.lower()}.svg",
                        "name": n,
                        "id": str(k + 1),
                    }
                )
            )
            for k, n in enumerate(PRIORITIES)
        ]
        self.user_frag = [Frag(orjson.dumps(self.user(u.code))) for u in p.users]
        self.project_frag = [
            Frag(orjson.dumps(self.project_ref(k))) for k in range(len(p.arts) + 1)
        ]
        self.resolution_obj = {
            "Done": {
                "self": f"{base}/{api}/resolution/10000",
                "id": "10000",
                "description": "Work has been completed on this issue.",
                "name": "Done",
            },
            "Won't Do": {
                "self": f"{base}/{api}/resolution/10001",
                "id": "10001",
                "description": "This issue won't be actioned.",
                "name": "Won't Do",
            },
        }
        self.resolution_frag = {k: Frag(orjson.dumps(v)) for k, v in self.resolution_obj.items()}
        self.options: dict[str, list[dict[str, str]]] = {
            "Portfolio Health": self._options(100, HEALTH_VALUES),
            "Investment Category": self._options(110, CATEGORY_LABELS),
            "Program Increment": self._options(120, tuple(pi.name for pi in p.increments)),
            "Flagged": self._options(140, ("Impediment",)),
            "Agile Release Train": self._options(150, tuple(a.name for a in p.arts)),
        }
        self.option_frag = {
            name: [Frag(orjson.dumps(o)) for o in opts] for name, opts in self.options.items()
        }
        self.flag_frag = Frag(orjson.dumps(self.options["Flagged"]))
        self.team_obj = [
            {
                "id": t.uuid,
                "name": t.name,
                "avatarUrl": "",
                "isVisible": True,
                "isVerified": False,
                "title": t.name,
                "isShared": True,
            }
            for t in p.teams
        ]
        self.team_frag = [Frag(orjson.dumps(t)) for t in self.team_obj]
        self.sprint_obj = [self._sprint(s.code) for s in p.sprints]
        self.sprint_frag = [Frag(orjson.dumps([s])) for s in self.sprint_obj]
        self.empty_list = Frag(b"[]")
        self.progress_frag = Frag(b'{"progress":0,"total":0}')

    def _options(self, start: int, values: tuple[str, ...]) -> list[dict[str, str]]:
        base = self.base
        return [
            {
                "self": f"{base}/{self.api_path}/customFieldOption/{10_000 + start + k}",
                "value": v,
                "id": str(10_000 + start + k),
            }
            for k, v in enumerate(values)
        ]

    def _sprint(self, code: int) -> dict[str, Any]:
        s = self.p.sprints[code]
        state = s.state(int(time.time() * 1000))
        out: dict[str, Any] = {
            "id": s.code + 1,
            "name": s.name,
            "state": state,
            "boardId": s.art + 1,
            "goal": "",
            "startDate": _iso_z(s.start_ms),
            "endDate": _iso_z(s.end_ms),
        }
        if state == "closed":
            out["completeDate"] = _iso_z(s.end_ms)
        return out

    @property
    def api_path(self) -> str:
        return "rest/api/3" if self.cloud else "rest/api/2"

    # ------------------------------------------------------------------ small objects
    def issue_type(self, code: int) -> dict[str, Any]:
        t = self.p.process.types[code]
        out: dict[str, Any] = {
            "self": f"{self.base}/{self.api_path}/issuetype/{t.jira_id}",
            "id": t.jira_id,
            "description": t.description,
            "iconUrl": f"{self.base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/"
            f"{10300 + code}",
            "name": t.name,
            "subtask": t.hierarchy < 0,
            "avatarId": 10300 + code,
        }
        if self.cloud:
            out["hierarchyLevel"] = t.hierarchy
        return out

    def user(self, code: int) -> dict[str, Any]:
        u = self.p.users[code]
        if self.cloud:
            return {
                "self": f"{self.base}/rest/api/3/user?accountId={u.account_id}",
                "accountId": u.account_id,
                "emailAddress": u.email,
                "avatarUrls": self.avatar_urls,
                "displayName": u.display_name,
                "active": True,
                "timeZone": TIME_ZONE,
                "accountType": "atlassian",
            }
        name = u.email.split("@")[0]
        return {
            "self": f"{self.base}/rest/api/2/user?username={name}",
            "name": name,
            "key": f"JIRAUSER{10100 + code}",
            "emailAddress": u.email,
            "avatarUrls": self.avatar_urls,
            "displayName": u.display_name,
            "active": True,
            "timeZone": TIME_ZONE,
        }

    def project_id(self, code: int) -> str:
        return str(10_000 + code)

    def project_name(self, code: int) -> str:
        return "Contoso Portfolio" if code == 0 else self.p.arts[code - 1].name

    def project_ref(self, code: int) -> dict[str, Any]:
        return {
            "self": f"{self.base}/{self.api_path}/project/{self.project_id(code)}",
            "id": self.project_id(code),
            "key": self.p.project_key(code),
            "name": self.project_name(code),
            "projectTypeKey": "software",
            "simplified": False,
            "avatarUrls": self.avatar_urls,
        }

    def project(self, code: int, expand: set[str]) -> dict[str, Any]:
        p = self.p
        out = self.project_ref(code)
        out["expand"] = "description,lead,issueTypes,url,projectKeys,permissions,insight"
        out["style"] = "classic"
        out["isPrivate"] = False
        out["properties"] = {}
        levels = (
            ("theme", "epic", "capability")
            if code == 0
            else ("feature", "story", "objective", "subtask")
        )
        types = [t.code for t in p.process.types if t.level in levels]
        if "description" in expand:
            out["description"] = (
                "Portfolio Kanban"
                if code == 0
                else f"Agile Release Train {self.project_name(code)}"
            )
        if "lead" in expand:
            out["lead"] = self.user(1 + code)
        if "issueTypes" in expand or "issuetypes" in expand:
            out["issueTypes"] = [self.issue_type(t) for t in types]
        if "insight" in expand:
            live = [i for i in p.live() if p.project(i) == code]
            out["insight"] = {
                "totalIssueCount": len(live),
                "lastIssueUpdateTime": self.ts(
                    max((p.updated[i] for i in live), default=p.anchor_ms)
                ),
            }
        return out

    # ------------------------------------------------------------------ time
    def ts(self, ms: int) -> str:
        """Jira's timestamp format in the site's time zone: 2026-11-20T14:05:33.123+0100."""
        bucket = ms // 3_600_000
        off = self._offsets.get(bucket)
        if off is None:
            delta = datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.tz).utcoffset()
            seconds = int(delta.total_seconds()) if delta else 0
            sign = "+" if seconds >= 0 else "-"
            hh, mm = divmod(abs(seconds) // 60, 60)
            off = (seconds * 1000, f"{sign}{hh:02d}{mm:02d}")
            self._offsets[bucket] = off
        t = ms + off[0]
        day, rem = divmod(t, MS_DAY)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
            self._days[day] = prefix
        minute, rem = divmod(rem, 60_000)
        return f"{prefix}{_HHMM[minute]}:{rem // 1000:02d}.{rem % 1000:03d}{off[1]}"

    def date(self, day: int) -> str | None:
        if day < 0:
            return None
        text = self._dates.get(day)
        if text is None:
            text = self._dates.setdefault(day, time.strftime("%Y-%m-%d", time.gmtime(day * 86_400)))
        return text

    # ------------------------------------------------------------------ issues
    def issue_self(self, i: int, api: str) -> str:
        return f"{self.base}/{api}/issue/{self.p.tracker_id(i)}"

    def fields_of(self, i: int, api: str, key: str | None = None) -> dict[str, Any]:
        """Every field of issue `i` (what `fields=*all` returns), values ready for orjson."""
        p, cf = self.p, self.cf
        v3 = api.endswith("/3")
        type_code = p.type_[i]
        status = p.status[i]
        resolved = p.resolved[i]
        assignee = p.assignee[i]
        reporter = (
            p.assignee[i] if p.assignee[i] > 0 else 1 + mix(p.seed, i, 50) % (len(p.users) - 1)
        )
        flags = p.flags[i]
        key = key or p.key(i)
        text = p.description(i)
        description: Any = text
        if text is not None and v3:
            description = {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
            }
        f: dict[str, Any] = {
            "statuscategorychangedate": self.ts(p.status_changed[i]),
            "issuetype": self.type_frag[type_code],
            "timespent": None,
            "project": self.project_frag[p.art[i] + 1],
            "fixVersions": self.empty_list,
            "aggregatetimespent": None,
            "resolution": self.resolution_frag[_resolution_name(p, i)] if resolved >= 0 else None,
            "resolutiondate": self.ts(resolved) if resolved >= 0 else None,
            "workratio": -1,
            "lastViewed": None,
            "watches": {
                "self": f"{self.base}/{api}/issue/{key}/watchers",
                "watchCount": 1,
                "isWatching": False,
            },
            "created": self.ts(p.created[i]),
            "priority": self.priority_frag[p.priority[i]],
            "labels": list(p.labels(i)),
            "timeestimate": None,
            "aggregatetimeoriginalestimate": None,
            "versions": self.empty_list,
            "issuelinks": self.empty_list,
            "assignee": self.user_frag[assignee] if assignee >= 0 else None,
            "updated": self.ts(p.updated[i]),
            "status": self.status_frag[status],
            "components": self.empty_list,
            "timeoriginalestimate": None,
            "description": description,
            "security": None,
            "aggregatetimeestimate": None,
            "summary": p.summary(i),
            "creator": self.user_frag[reporter],
            "subtasks": self.empty_list,
            "reporter": self.user_frag[reporter],
            "aggregateprogress": self.progress_frag,
            "environment": None,
            "duedate": None,
            "progress": self.progress_frag,
            "votes": {
                "self": f"{self.base}/{api}/issue/{key}/votes",
                "votes": 0,
                "hasVoted": False,
            },
        }
        if not self.cloud:
            del f["statuscategorychangedate"]
        for fid, column in self._numeric:
            value = column[i]
            f[fid] = None if value != value else value
        f[cf["Story Points"]] = None
        health = p.health[i]
        f[cf["Portfolio Health"]] = (
            self.option_frag["Portfolio Health"][health] if health >= 0 else None
        )
        category = p.category[i]
        f[cf["Investment Category"]] = (
            self.option_frag["Investment Category"][category] if category >= 0 else None
        )
        pi = p.pi[i]
        f[cf["Program Increment"]] = self.option_frag["Program Increment"][pi] if pi >= 0 else None
        team = p.team[i]
        f[cf["Team"]] = self.team_frag[team] if team >= 0 else None
        art = p.art[i]
        f[cf["Agile Release Train"]] = (
            self.option_frag["Agile Release Train"][art] if art >= 0 else None
        )
        f[cf["Flagged"]] = self.flag_frag if flags & F_FLAGGED else None
        sprint = p.sprint[i]
        f[cf["Sprint"]] = self.sprint_frag[sprint] if sprint >= 0 else None
        f[cf["Rank"]] = p.rank_string(i)
        f[cf["Start date"]] = self.date(p.start_day[i])
        f[cf["Target end"]] = self.date(p.target_day[i])
        parent = p.parent[i]
        if parent >= 0 and p.is_deleted(parent):
            parent = -1
        if self.cloud:
            if parent >= 0:
                f["parent"] = self._parent(parent, api)
        else:
            level = p.process.types[type_code].hierarchy
            epic_link = parent >= 0 and level == 0
            f[cf["Epic Link"]] = p.key(parent) if epic_link else None
            if parent >= 0 and not epic_link:
                f[cf["Parent Link"]] = {
                    "hasEpicLinkFieldDependency": False,
                    "showField": True,
                    "data": {
                        "id": p.tracker_id(parent),
                        "key": p.key(parent),
                        "keyNum": p.keynum[parent],
                        "summary": p.summary(parent),
                        "projectId": int(self.project_id(p.project(parent))),
                    },
                }
            else:
                f[cf["Parent Link"]] = None
        return f

    def _parent(self, parent: int, api: str) -> orjson.Fragment:
        """The `parent` field, shared by the parent's children (one render per version)."""
        key = (parent, self.p.ver[parent], api)
        frag = self._parents.get(key)
        if frag is None:
            p = self.p
            body = {
                "id": str(p.tracker_id(parent)),
                "key": p.key(parent),
                "self": self.issue_self(parent, api),
                "fields": {
                    "summary": p.summary(parent),
                    "status": self.status_frag[p.status[parent]],
                    "priority": self.priority_frag[p.priority[parent]],
                    "issuetype": self.type_frag[p.type_[parent]],
                },
            }
            frag = orjson.Fragment(bytes(memoryview(orjson.dumps(body))))
            if len(self._parents) > 200_000:
                self._parents.clear()
            self._parents[key] = frag
        return frag

    def issue(
        self,
        i: int,
        api: str,
        selection: FieldSelection,
        expand: frozenset[str] = frozenset(),
        properties: tuple[str, ...] = (),
    ) -> bytes:
        """Issue JSON bytes, cached per (item version, request shape)."""
        if selection.id_only and not properties:
            return b'{"id":"%d"}' % self.p.tracker_id(i)
        key = (i, self.p.ver[i], api, selection.key, expand, properties)
        return self.cache.get_or_render(
            key, lambda: orjson.dumps(self.issue_obj(i, api, selection, expand, properties))
        )

    def issue_obj(
        self,
        i: int,
        api: str,
        selection: FieldSelection,
        expand: frozenset[str] = frozenset(),
        properties: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        p = self.p
        if selection.id_only:
            return {"id": str(p.tracker_id(i))}
        key = p.key(i)
        out: dict[str, Any] = {
            "expand": ISSUE_EXPAND,
            "id": str(p.tracker_id(i)),
            "self": self.issue_self(i, api),
            "key": key,
        }
        fields = self.fields_of(i, api, key)
        out["fields"] = selection.apply(fields)
        if "names" in expand:
            out["names"] = {k: self.by_id[k].name for k in out["fields"] if k in self.by_id}
        if "schema" in expand:
            out["schema"] = {
                k: self.by_id[k].schema
                for k in out["fields"]
                if k in self.by_id and self.by_id[k].schema
            }
        if "changelog" in expand:
            histories = self.histories(i, api)
            shown = histories[-100:]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(shown),
                "total": len(histories),
                "histories": shown,
            }
        if properties:
            props = p.properties.get(i, {})
            out["properties"] = {k: props[k] for k in properties if k in props}
        return out

    # ------------------------------------------------------------------ changelog
    def histories(
        self, i: int, api: str, field_ids: set[str] | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for entry in self.p.history(i):
            h = self.history(entry, api)
            if field_ids is not None:
                h["items"] = [it for it in h["items"] if it.get("fieldId") in field_ids]
                if not h["items"]:
                    continue
            out.append(h)
        return out

    def history(self, entry: ChangeEntry, api: str) -> dict[str, Any]:
        return {
            "id": str(entry.id),
            "author": self.user_frag[entry.author],
            "created": self.ts(entry.at),
            "items": [self.change_item(c) for c in entry.items],
        }

    def change_item(self, c: ChangeItem) -> dict[str, Any]:
        p, cf = self.p, self.cf
        attr = c.attr
        if attr == "status":
            old, new = p.process.statuses[c.old], p.process.statuses[c.new]
            return _item("status", "jira", "status", old.jira_id, old.name, new.jira_id, new.name)
        if attr == "resolution":
            o = self.resolution_obj.get(c.old) if c.old else None
            n = self.resolution_obj.get(c.new) if c.new else None
            return _item(
                "resolution",
                "jira",
                "resolution",
                o["id"] if o else None,
                o["name"] if o else None,
                n["id"] if n else None,
                n["name"] if n else None,
            )
        if attr == "priority":
            return _item(
                "priority",
                "jira",
                "priority",
                str(c.old + 1),
                PRIORITIES[c.old],
                str(c.new + 1),
                PRIORITIES[c.new],
            )
        if attr in NUMERIC_ATTRS:
            name = next(n for n, a in FIELD_ATTR.items() if a == attr)
            return _item(name, "custom", cf[name], None, _num(c.old), None, _num(c.new))
        if attr in ("health", "category", "increment", "art"):
            name = {
                "health": "Portfolio Health",
                "category": "Investment Category",
                "increment": "Program Increment",
                "art": "Agile Release Train",
            }[attr]
            opts = self.options[name]

            def opt(v: Any) -> dict[str, str] | None:
                if v is None:
                    return None
                if attr == "health":
                    return opts[HEALTH_VALUES.index(v)]
                if attr == "category":
                    return opts[("business", "enabler", "maintenance").index(v)]
                return opts[int(v)]

            o, n = opt(c.old), opt(c.new)
            return _item(
                name,
                "custom",
                cf[name],
                o["id"] if o else None,
                o["value"] if o else None,
                n["id"] if n else None,
                n["value"] if n else None,
            )
        if attr == "team":
            o = p.teams[c.old] if c.old is not None else None
            n = p.teams[c.new] if c.new is not None else None
            return _item(
                "Team",
                "custom",
                cf["Team"],
                o.uuid if o else None,
                o.name if o else None,
                n.uuid if n else None,
                n.name if n else None,
            )
        if attr == "flagged":
            return _item(
                "Flagged",
                "custom",
                cf["Flagged"],
                "[10140]" if c.old else None,
                "Impediment" if c.old else None,
                "[10140]" if c.new else None,
                "Impediment" if c.new else None,
            )
        if attr == "summary":
            return _item("summary", "jira", "summary", None, c.old, None, c.new)
        if attr == "labels":
            return _item("labels", "jira", "labels", None, " ".join(c.old), None, " ".join(c.new))
        if attr == "project":
            return _item(
                "project",
                "jira",
                "project",
                self.project_id(c.old),
                self.project_name(c.old),
                self.project_id(c.new),
                self.project_name(c.new),
            )
        if attr == "key":
            return {
                "field": "Key",
                "fieldtype": "jira",
                "from": None,
                "fromString": c.old,
                "to": None,
                "toString": c.new,
            }
        if attr == "rank":
            text = "Ranked higher" if c.new < c.old else "Ranked lower"
            return _item("Rank", "custom", cf["Rank"], "", "", "", text)
        return _item(attr, "jira", attr, None, str(c.old), None, str(c.new))


def _item(
    field: str,
    fieldtype: str,
    field_id: str,
    old: str | None,
    old_s: str | None,
    new: str | None,
    new_s: str | None,
) -> dict[str, Any]:
    return {
        "field": field,
        "fieldtype": fieldtype,
        "fieldId": field_id,
        "from": old,
        "fromString": old_s,
        "to": new,
        "toString": new_s,
    }


def _num(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    f = float(value)
    return str(int(f)) if f.is_integer() else repr(f)


def _resolution_name(p: Portfolio, i: int) -> str:
    return "Done" if p.status_of(i).phase == "done" else "Won't Do"


def _iso_z(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    )


@dataclass(frozen=True, slots=True)
class FieldSelection:
    """A parsed `fields` parameter: `*all`, `*navigable`, ids, `-excluded`, or ids only."""

    include_all: bool
    names: frozenset[str]
    excluded: frozenset[str]
    id_only: bool

    @property
    def key(self) -> FieldSelection:
        """Hashable identity of the selection, for cache keys."""
        return self

    @classmethod
    def parse(cls, values: list[str] | None, default: str, site: JiraSite) -> FieldSelection:
        parts: list[str] = []
        for v in values if values else [default]:
            parts.extend(x.strip() for x in str(v).split(",") if x.strip())
        if not parts:
            parts = [default]
        include_all = False
        names: set[str] = set()
        excluded: set[str] = set()
        for part in parts:
            if part in ("*all", "*navigable"):
                include_all = True
            elif part.startswith("-"):
                excluded.add(_field_id(part[1:], site))
            else:
                names.add(_field_id(part, site))
        if excluded and not names:
            include_all = True  # "-description" alone: the navigable fields but that one
        id_only = not include_all and names <= {"id"}
        names.discard("id")
        return cls(include_all, frozenset(names), frozenset(excluded), id_only)

    def apply(self, fields: dict[str, Any]) -> dict[str, Any]:
        if self.include_all and not self.excluded:
            return fields
        if self.include_all:
            return {k: v for k, v in fields.items() if k not in self.excluded}
        return {k: fields[k] for k in fields if k in self.names}


def _field_id(name: str, site: JiraSite) -> str:
    if name in ("id", "key"):
        return name
    f = site.by_id.get(name) or site.field_named(name)
    return f.id if f else name
