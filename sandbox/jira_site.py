"""How a generated portfolio looks through Jira's REST API: fields, issue JSON, changelogs.

Shapes follow Atlassian's published schemas (IssueBean, FieldDetails, IssueTypeDetails, User,
Changelog) and what live sites return inside `fields` (status with statusCategory, parent with
its summary, options, the Atlassian team, sprints, LexoRank). Objects shared by many issues
(statuses, users, options) are serialised once, an issue is one bytes template per request shape
filled with its values (`%`), and rendered issues are cached by item version, which is what lets
one thread serve tens of thousands of issues a second, first renders included.
Data Center mode differs where DC does: no `hierarchyLevel`, users by name, Epic Link and
Parent Link instead of `parent`, wiki-text descriptions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from sandbox.cache import BytesLRU
from sandbox.hashing import mix
from sandbox.portfolio import (
    F_DELETED,
    F_FLAGGED,
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

NOT_NAVIGABLE = frozenset({"comment", "worklog", "timetracking"})
"""System fields `*navigable` (a search's default) leaves out and `*all` shows."""
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


_MMSS = [b"%02d:%02d" % divmod(s, 60) for s in range(3600)]
_MILLIS = [b".%03d" % ms for ms in range(1000)]
_OPTION_FIELDS = (
    "Portfolio Health",
    "Investment Category",
    "Program Increment",
    "Team",
    "Agile Release Train",
    "Flagged",
    "Sprint",
)
"""Custom fields after Story Points, before Rank, in the order issues show them."""
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
        self._hours: dict[int, tuple[bytes, bytes]] = {}
        self._dates: dict[int, bytes] = {}
        self._labels: dict[tuple[str, ...], bytes] = {}
        self._descriptions: dict[tuple[str | None, str], bytes] = {}
        self._parents: dict[tuple[int, int, str], bytes] = {}
        self._templates: dict[tuple[str, Hashable, bool], _Template] = {}
        self._numeric = [p.num[attr] for _, attr in _NUMERIC_FIELDS]
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
        types = [orjson.dumps(self.issue_type(t.code)) for t in p.process.types]
        self.type_frag = [Frag(b) for b in types]
        cats = {
            "new": (2, "To Do", "blue-gray"),
            "indeterminate": (4, "In Progress", "yellow"),
            "done": (3, "Done", "green"),
        }
        statuses: list[bytes] = []
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
            statuses.append(orjson.dumps(obj))
        self.status_frag = [Frag(b) for b in statuses]
        priorities = [
            orjson.dumps(
                {
                    "self": f"{base}/{api}/priority/{k + 1}",
                    "iconUrl": f"{base}/images/icons/priorities/{n.lower()}.svg",
                    "name": n,
                    "id": str(k + 1),
                }
            )
            for k, n in enumerate(PRIORITIES)
        ]
        self.priority_frag = [Frag(b) for b in priorities]
        users = [orjson.dumps(self.user(u.code)) for u in p.users]
        self.user_frag = [Frag(b) for b in users]
        projects = [orjson.dumps(self.project_ref(k)) for k in range(len(p.arts) + 1)]
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
        # the resolution a resolved issue in each status has
        resolutions = [
            orjson.dumps(self.resolution_obj["Done" if s.phase == "done" else "Won't Do"])
            for s in p.process.statuses
        ]
        self.options: dict[str, list[dict[str, str]]] = {
            "Portfolio Health": self._options(100, HEALTH_VALUES),
            "Investment Category": self._options(110, CATEGORY_LABELS),
            "Program Increment": self._options(120, tuple(pi.name for pi in p.increments)),
            "Flagged": self._options(140, ("Impediment",)),
            "Agile Release Train": self._options(150, tuple(a.name for a in p.arts)),
        }
        options = {name: [orjson.dumps(o) for o in opts] for name, opts in self.options.items()}
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
        self.sprint_obj = [self._sprint(s.code) for s in p.sprints]
        null = [b"null"]
        self._tables = _Tables(
            project_keys=[p.project_key(k).encode() for k in range(len(p.arts) + 1)],
            types=types,
            projects=projects,
            statuses=statuses,
            priorities=priorities,
            resolutions=resolutions,
            users=users + null,
            health=options["Portfolio Health"] + null,
            categories=options["Investment Category"] + null,
            increments=options["Program Increment"] + null,
            teams=[orjson.dumps(t) for t in self.team_obj] + null,
            arts=options["Agile Release Train"] + null,
            flagged=orjson.dumps(self.options["Flagged"]),
            sprints=[orjson.dumps([s]) for s in self.sprint_obj] + null,
        )

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
        return self.ts_json(ms)[1:-1].decode()

    def ts_json(self, ms: int) -> bytes:
        """`ts` as a JSON string. The zone's offsets are whole hours, so a UTC hour is one
        local hour with one offset: its "date T hour:" prefix and offset are formatted once."""
        hour, rem = divmod(ms, 3_600_000)
        parts = self._hours.get(hour)
        if parts is None:
            parts = self._hours[hour] = self._hour(hour)
        return parts[0] + _MMSS[rem // 1000] + _MILLIS[rem % 1000] + parts[1]

    def _hour(self, hour: int) -> tuple[bytes, bytes]:
        local = datetime.fromtimestamp(hour * 3600, UTC).astimezone(self.tz)
        delta = local.utcoffset()
        seconds = int(delta.total_seconds()) if delta else 0
        sign = "+" if seconds >= 0 else "-"
        hh, mm = divmod(abs(seconds) // 60, 60)
        prefix = local.strftime('"%Y-%m-%dT%H:').encode()
        return prefix, f'{sign}{hh:02d}{mm:02d}"'.encode()

    def date_json(self, day: int) -> bytes:
        text = self._dates.get(day)
        if text is None:
            stamp = time.strftime('"%Y-%m-%d"', time.gmtime(day * 86_400)).encode()
            text = self._dates[day] = b"null" if day < 0 else stamp
        return text

    # ------------------------------------------------------------------ issues
    def issue_self(self, i: int, api: str) -> str:
        return f"{self.base}/{api}/issue/{self.p.tracker_id(i)}"

    def _values(self, i: int, api: str) -> tuple[list[Any], bool]:
        """What fills the slots of the issue templates for issue `i`, in template order, and
        whether its last field (`parent`, Cloud only) is present.

        This is most of a cold page's cost, hence the shortcuts: code -> JSON tables whose last
        entry is `null` (index -1, "no value"), and a timestamp formatted once when the status
        change, resolution and last update are the same instant (most issues)."""
        p = self.p
        t = self._tables
        tid = p.tracker_id(i)
        art = p.art[i]
        key = b"%s-%d" % (t.project_keys[art + 1], p.keynum[i])  # Portfolio.key
        status = p.status[i]
        assignee = p.assignee[i]
        user = t.users[assignee]
        reporter = user if assignee > 0 else t.users[1 + mix(p.seed, i, 50) % (len(p.users) - 1)]
        ts = self.ts_json
        at = p.updated[i]
        updated = ts(at)
        changed = p.status_changed[i]
        changed_json = updated if changed == at else ts(changed)
        resolved = p.resolved[i]
        if resolved < 0:
            resolution = resolved_json = b"null"
        else:
            resolution = t.resolutions[status]
            resolved_json = (
                updated if resolved == at else changed_json if resolved == changed else ts(resolved)
            )
        values: list[Any] = [tid, tid, key]
        if self.cloud:
            values.append(changed_json)
        labels = p.labels(i)
        text = p.description(i)
        dates = self._dates
        start, target = p.start_day[i], p.target_day[i]
        values += (
            t.types[p.type_[i]],
            t.projects[art + 1],
            resolution,
            resolved_json,
            key,
            ts(p.created[i]),
            t.priorities[p.priority[i]],
            self._labels.get(labels) or self._labels_json(labels),
            user,
            updated,
            t.statuses[status],
            self._descriptions.get((text, api)) or self._description_json(text, api),
            orjson.dumps(p.summary(i)),
            reporter,
            reporter,
            key,
            key,
        )
        # orjson writes NaN (no value) as null, as Jira shows an empty number field.
        values += orjson.dumps([column[i] for column in self._numeric])[1:-1].split(b",")
        values += (
            t.health[p.health[i]],
            t.categories[p.category[i]],
            t.increments[p.pi[i]],
            t.teams[p.team[i]],
            t.arts[art],
            t.flagged if p.flags[i] & F_FLAGGED else b"null",
            t.sprints[p.sprint[i]],
            int(p.rank[i]),
            dates.get(start) or self.date_json(start),
            dates.get(target) or self.date_json(target),
        )
        parent = p.parent[i]
        if parent >= 0 and p.flags[parent] & F_DELETED:
            parent = -1
        if self.cloud:
            if parent < 0:
                return values, False
            shared = self._parents.get((parent, p.ver[parent], api))
            values.append(shared or self._parent(parent, api))
            return values, True
        epic_link = parent >= 0 and p.process.types[p.type_[i]].hierarchy == 0
        values.append(orjson.dumps(p.key(parent)) if epic_link else b"null")
        if parent >= 0 and not epic_link:
            link = {
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
            values.append(orjson.dumps(link))
        else:
            values.append(b"null")
        return values, True

    def _labels_json(self, labels: tuple[str, ...]) -> bytes:
        out = self._labels.get(labels)
        if out is None:
            out = orjson.dumps(list(labels))
            if len(self._labels) < 4096:
                self._labels[labels] = out
        return out

    def _description_json(self, text: str | None, api: str) -> bytes:
        """Descriptions come from a few generated texts: each is rendered once per API version
        (Atlassian Document Format on v3, plain text on v2 and Data Center)."""
        doc: Any = text
        if text is not None and api.endswith("/3"):
            paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
            doc = {"type": "doc", "version": 1, "content": [paragraph]}
        out = self._descriptions[(text, api)] = orjson.dumps(doc)
        return out

    def _field_patterns(self, api: str) -> list[tuple[str, bytes]]:
        """`fields` in Jira's order as (field id, JSON value with %-slots), the slots filled by
        `_values` in the same order; `parent` (Cloud) comes last, as it may be absent."""
        cf = self.cf
        url = _escape(f"{self.base}/{api}/issue/".encode())
        null, empty, progress = b"null", b"[]", b'{"progress":0,"total":0}'
        out: list[tuple[str, bytes]] = [
            ("statuscategorychangedate", b"%s"),
            ("issuetype", b"%s"),
            ("timespent", null),
            ("project", b"%s"),
            ("fixVersions", empty),
            ("aggregatetimespent", null),
            ("resolution", b"%s"),
            ("resolutiondate", b"%s"),
            ("workratio", b"-1"),
            ("lastViewed", null),
            ("watches", b'{"self":"' + url + b'%s/watchers","watchCount":1,"isWatching":false}'),
            ("created", b"%s"),
            ("priority", b"%s"),
            ("labels", b"%s"),
            ("timeestimate", null),
            ("aggregatetimeoriginalestimate", null),
            ("versions", empty),
            ("issuelinks", empty),
            ("assignee", b"%s"),
            ("updated", b"%s"),
            ("status", b"%s"),
            ("components", empty),
            ("timeoriginalestimate", null),
            ("description", b"%s"),
            ("security", null),
            ("aggregatetimeestimate", null),
            ("summary", b"%s"),
            ("creator", b"%s"),
            ("subtasks", empty),
            ("reporter", b"%s"),
            ("aggregateprogress", progress),
            ("environment", null),
            ("duedate", null),
            ("progress", progress),
            ("votes", b'{"self":"' + url + b'%s/votes","votes":0,"hasVoted":false}'),
            # Not navigable: shown for `*all` or when named (FieldSelection.shows).
            (
                "comment",
                b'{"comments":[],"self":"' + url + b'%s/comment","maxResults":0,'
                b'"total":0,"startAt":0}',
            ),
            ("worklog", b'{"startAt":0,"maxResults":20,"total":0,"worklogs":[]}'),
            ("timetracking", b"{}"),
        ]
        if not self.cloud:
            del out[0]
        out += [(cf[name], b"%s") for name, _ in _NUMERIC_FIELDS]
        out.append((cf["Story Points"], null))
        out += [(cf[name], b"%s") for name in _OPTION_FIELDS]
        out.append((cf["Rank"], b'"0|%012x:"'))  # Portfolio.rank_string
        out += [(cf["Start date"], b"%s"), (cf["Target end"], b"%s")]
        if self.cloud:
            out.append(("parent", b"%s"))
        else:
            out += [(cf["Epic Link"], b"%s"), (cf["Parent Link"], b"%s")]
        return out

    def _template(self, api: str, selection: FieldSelection, last: bool) -> _Template:
        """The issue JSON as one %-template per (API, field selection, `parent` present)."""
        key = (api, selection.key, last)
        template = self._templates.get(key)
        if template is not None:
            return template
        patterns = self._field_patterns(api)
        if not last:
            patterns.pop()
        url = _escape(f"{self.base}/{api}/issue/".encode())
        head = b'{"expand":"%s","id":"%%d","self":"%s%%d","key":"%%s","fields":' % (
            ISSUE_EXPAND.encode(),
            url,
        )
        slots: list[int] = []
        shown: list[str] = []
        pieces: list[bytes] = []
        slot = 3  # after the id, the id in `self` and the key of the head
        for fid, pattern in patterns:
            count = pattern.replace(b"%%", b"").count(b"%")
            if selection.shows(fid):
                shown.append(fid)
                pieces.append(orjson.dumps(fid) + b":" + pattern)
                slots.extend(range(slot, slot + count))
            slot += count
        fields = b"{" + b",".join(pieces) + b"}"
        every = slots == list(range(3, slot))
        template = _Template(head + fields + b"}", fields, None if every else tuple(slots), shown)
        if len(self._templates) > 256:
            self._templates.clear()
        self._templates[key] = template
        return template

    def fields_json(self, i: int, api: str, selection: FieldSelection) -> tuple[bytes, list[str]]:
        """The `fields` object of issue `i` as JSON, and the ids of the fields it shows."""
        values, last = self._values(i, api)
        template = self._template(api, selection, last)
        if template.slots is None:
            return template.fields % tuple(values[3:]), template.shown
        return template.fields % tuple([values[k] for k in template.slots]), template.shown

    def _parent(self, parent: int, api: str) -> bytes:
        """The `parent` field, shared by the parent's children (one render per version)."""
        key = (parent, self.p.ver[parent], api)
        out = self._parents.get(key)
        if out is None:
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
            out = bytes(memoryview(orjson.dumps(body)))
            if len(self._parents) > 200_000:
                self._parents.clear()
            self._parents[key] = out
        return out

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
        if expand or properties or selection.id_only:
            return self.cache.get_or_render(
                key, lambda: orjson.dumps(self.issue_obj(i, api, selection, expand, properties))
            )
        return self.cache.get_or_render(
            key, lambda: self._issue_json(i, api, selection), exact=True
        )

    def _issue_json(self, i: int, api: str, selection: FieldSelection) -> bytes:
        """A whole issue without expansions: one template filled (an exact-size result)."""
        values, last = self._values(i, api)
        template = self._template(api, selection, last)
        if template.slots is None:
            return template.body % tuple(values)
        return template.body % (*values[:3], *[values[k] for k in template.slots])

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
        out: dict[str, Any] = {
            "expand": ISSUE_EXPAND,
            "id": str(p.tracker_id(i)),
            "self": self.issue_self(i, api),
            "key": p.key(i),
        }
        fields, shown = self.fields_json(i, api, selection)
        out["fields"] = orjson.Fragment(fields)
        if "names" in expand:
            out["names"] = {k: self.by_id[k].name for k in shown if k in self.by_id}
        if "schema" in expand:
            out["schema"] = {
                k: self.by_id[k].schema for k in shown if k in self.by_id and self.by_id[k].schema
            }
        if "changelog" in expand:
            histories = self.histories(i, api)
            shown_histories = histories[-100:]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(shown_histories),
                "total": len(histories),
                "histories": shown_histories,
            }
        if "transitions" in expand:
            out["transitions"] = self.transitions(i)
        if properties:
            props = p.properties.get(i, {})
            out["properties"] = {k: props[k] for k in properties if k in props}
        return out

    def transitions(self, i: int) -> list[dict[str, Any]]:
        """`expand=transitions`: a global transition into every other status of the item's
        workflow (the sandbox's workflows let any status follow any other)."""
        p = self.p
        return [
            {
                "id": str(11 + status),
                "name": p.process.statuses[status].name,
                "to": self.status_frag[status],
                "hasScreen": False,
                "isGlobal": True,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            for status in p.itype(i).statuses
            if status != p.status[i]
        ]

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


def _escape(text: bytes) -> bytes:
    """Constant text inside a %-template."""
    return text.replace(b"%", b"%%")


@dataclass(frozen=True, slots=True)
class _Tables:
    """JSON of the values issues share, by code; where a code may be -1 (no value), the list
    ends with `null`."""

    project_keys: list[bytes]
    types: list[bytes]
    projects: list[bytes]
    statuses: list[bytes]
    priorities: list[bytes]
    resolutions: list[bytes]
    users: list[bytes]
    health: list[bytes]
    categories: list[bytes]
    increments: list[bytes]
    teams: list[bytes]
    arts: list[bytes]
    flagged: bytes
    sprints: list[bytes]


@dataclass(frozen=True, slots=True)
class _Template:
    """How issues look for one request shape: `body % values` is the whole issue and `fields %
    values[3:]` its `fields` (`slots` picks the values when fields are left out)."""

    body: bytes
    fields: bytes
    slots: tuple[int, ...] | None
    shown: list[str]


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
    every: bool = False
    """`*all`: the fields that are not navigable too (`*navigable` leaves them out)."""
    key: tuple[bool, frozenset[str], frozenset[str], bool, bool] = field(init=False, compare=False)
    """Hashable identity of the selection, for cache keys: a plain tuple hashes and compares
    in C, a dataclass through Python-level methods, on every cached issue served."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "key", (self.include_all, self.names, self.excluded, self.id_only, self.every)
        )

    @classmethod
    def parse(cls, values: list[str] | None, default: str, site: JiraSite) -> FieldSelection:
        parts: list[str] = []
        for v in values if values else [default]:
            parts.extend(x.strip() for x in str(v).split(",") if x.strip())
        if not parts:
            parts = [default]
        include_all = every = False
        names: set[str] = set()
        excluded: set[str] = set()
        for part in parts:
            if part in ("*all", "*navigable"):
                include_all = True
                every = every or part == "*all"
            elif part.startswith("-"):
                excluded.add(_field_id(part[1:], site))
            else:
                names.add(_field_id(part, site))
        if excluded and not names:
            include_all = True  # "-description" alone: the navigable fields but that one
        id_only = not include_all and names <= {"id"}
        names.discard("id")
        return cls(include_all, frozenset(names), frozenset(excluded), id_only, every)

    def shows(self, field_id: str) -> bool:
        if field_id in self.names:
            return True
        if self.include_all:
            navigable = self.every or field_id not in NOT_NAVIGABLE
            return navigable and field_id not in self.excluded
        return False


def _field_id(name: str, site: JiraSite) -> str:
    if name in ("id", "key"):
        return name
    f = site.by_id.get(name) or site.field_named(name)
    return f.id if f else name
