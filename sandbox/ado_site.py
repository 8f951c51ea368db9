"""How a generated portfolio looks through the Azure DevOps work item tracking API (7.1).

One project ("Fabrikam") on an inherited Agile process: Epic > Feature > User Story/Bug linked
by `System.LinkTypes.Hierarchy-Reverse`, area paths per ART and team, iteration paths per PI and
sprint, the `Microsoft.VSTS.*` fields (StackRank, BusinessValue, TimeCriticality, Effort,
StoryPoints) and custom fields for what Agile lacks (risk reduction, WSJF, health, progress,
investment category, PI objective values). `rev` counts saved changes, and updates are derived
from the same history the Jira view shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from sandbox.cache import BytesLRU
from sandbox.hashing import mix
from sandbox.history import activated_at, base_author, base_history_length, initial_values
from sandbox.portfolio import F_FLAGGED, NUMERIC_ATTRS, ChangeEntry, ChangeItem, Portfolio
from sandbox.process import ADO_BOARD_COLUMN, CATEGORY_LABELS, HEALTH_VALUES

PROJECT = "Fabrikam"
ORG = "contoso"
REASONS = {
    "New": "New",
    "Active": "Implementation started",
    "Resolved": "Code complete and unit tests pass",
    "Closed": "Acceptance tests pass",
    "Removed": "Removed from the backlog",
}
TYPE_REFS = {
    "Epic": "Microsoft.VSTS.WorkItemTypes.Epic",
    "Feature": "Microsoft.VSTS.WorkItemTypes.Feature",
    "User Story": "Microsoft.VSTS.WorkItemTypes.UserStory",
    "Bug": "Microsoft.VSTS.WorkItemTypes.Bug",
    "PI Objective": "Custom.PIObjective",
}
TYPE_COLORS = {
    "Epic": "FF7B00",
    "Feature": "773B93",
    "User Story": "009CCC",
    "Bug": "CC293D",
    "PI Objective": "339947",
}


@dataclass(frozen=True, slots=True)
class AdoField:
    ref: str
    name: str
    type: str
    read_only: bool
    attr: str | None = None
    allowed: tuple[str, ...] | None = None


FIELDS: tuple[AdoField, ...] = (
    AdoField("System.Id", "ID", "integer", True),
    AdoField("System.Rev", "Rev", "integer", True),
    AdoField("System.AreaPath", "Area Path", "treePath", False, "area"),
    AdoField("System.TeamProject", "Team Project", "string", True),
    AdoField("System.IterationPath", "Iteration Path", "treePath", False, "iteration"),
    AdoField("System.WorkItemType", "Work Item Type", "string", True),
    AdoField("System.State", "State", "string", False, "state"),
    AdoField("System.Reason", "Reason", "string", True),
    AdoField("System.AssignedTo", "Assigned To", "identity", True),
    AdoField("System.CreatedDate", "Created Date", "dateTime", True),
    AdoField("System.CreatedBy", "Created By", "identity", True),
    AdoField("System.ChangedDate", "Changed Date", "dateTime", True),
    AdoField("System.ChangedBy", "Changed By", "identity", True),
    AdoField("System.CommentCount", "Comment Count", "integer", True),
    AdoField("System.Title", "Title", "string", False, "summary"),
    AdoField("System.BoardColumn", "Board Column", "string", True),
    AdoField("System.BoardColumnDone", "Board Column Done", "boolean", True),
    AdoField("System.Tags", "Tags", "plainText", False, "labels"),
    AdoField("System.Parent", "Parent", "integer", True),
    AdoField("System.Description", "Description", "html", True),
    AdoField("System.History", "History", "history", False, "history"),
    AdoField("Microsoft.VSTS.Common.StateChangeDate", "State Change Date", "dateTime", True),
    AdoField("Microsoft.VSTS.Common.ActivatedDate", "Activated Date", "dateTime", True),
    AdoField("Microsoft.VSTS.Common.ResolvedDate", "Resolved Date", "dateTime", True),
    AdoField("Microsoft.VSTS.Common.ClosedDate", "Closed Date", "dateTime", True),
    AdoField(
        "Microsoft.VSTS.Common.Priority",
        "Priority",
        "integer",
        False,
        "priority",
        ("1", "2", "3", "4"),
    ),
    AdoField("Microsoft.VSTS.Common.ValueArea", "Value Area", "string", True),
    AdoField("Microsoft.VSTS.Common.StackRank", "Stack Rank", "double", False, "rank"),
    AdoField(
        "Microsoft.VSTS.Common.BusinessValue", "Business Value", "integer", False, "business_value"
    ),
    AdoField(
        "Microsoft.VSTS.Common.TimeCriticality",
        "Time Criticality",
        "double",
        False,
        "time_criticality",
    ),
    AdoField("Microsoft.VSTS.Scheduling.Effort", "Effort", "double", False, "job_size"),
    AdoField("Microsoft.VSTS.Scheduling.StoryPoints", "Story Points", "double", False, "estimate"),
    AdoField("Microsoft.VSTS.Scheduling.RemainingWork", "Remaining Work", "double", True),
    AdoField("Microsoft.VSTS.Scheduling.StartDate", "Start Date", "dateTime", True),
    AdoField("Microsoft.VSTS.Scheduling.TargetDate", "Target Date", "dateTime", True),
    AdoField("Microsoft.VSTS.Common.Severity", "Severity", "string", True),
    AdoField("Microsoft.VSTS.CMMI.Blocked", "Blocked", "string", False, "flagged", ("Yes", "No")),
    AdoField("Custom.RiskReduction", "Risk Reduction", "double", False, "risk_reduction"),
    AdoField("Custom.WSJF", "WSJF", "double", False, "wsjf"),
    AdoField(
        "Custom.PortfolioHealth", "Portfolio Health", "string", False, "health", HEALTH_VALUES
    ),
    AdoField("Custom.PortfolioProgress", "Portfolio Progress", "double", False, "progress"),
    AdoField(
        "Custom.InvestmentCategory",
        "Investment Category",
        "string",
        False,
        "category",
        CATEGORY_LABELS,
    ),
    AdoField("Custom.StrategicTheme", "Strategic Theme", "string", True),
    AdoField(
        "Custom.PlannedBusinessValue", "Planned Business Value", "double", False, "planned_value"
    ),
    AdoField(
        "Custom.ActualBusinessValue", "Actual Business Value", "double", False, "actual_value"
    ),
)
BY_REF = {f.ref.lower(): f for f in FIELDS}
BY_NAME = {f.name.lower(): f for f in FIELDS}
NUMERIC_REF = {f.attr: f.ref for f in FIELDS if f.attr in NUMERIC_ATTRS}
"""Portfolio number attribute -> field reference name."""


def field_named(name: str) -> AdoField | None:
    key = name.strip().strip("[]").lower()
    return BY_REF.get(key) or BY_NAME.get(key)


_DAYS: dict[int, str] = {}
_HHMM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]
_FRACTIONS = ["Z"] + [f".{k:03d}".rstrip("0") + "Z" for k in range(1, 1000)]


def ado_date(ms: int) -> str:
    """ADO's UTC timestamps: 2017-09-04T06:11:59.05Z (fraction without trailing zeros)."""
    day, rem = divmod(ms, 86_400_000)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS.setdefault(day, time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400)))
    minute, rem = divmod(rem, 60_000)
    return f"{prefix}{_HHMM[minute]}:{rem // 1000:02d}{_FRACTIONS[rem % 1000]}"


def legacy_date(ms: int) -> str:
    """The recycle bin's deletedDate format: 1/31/2017 9:21:14 PM."""
    d = datetime.fromtimestamp(ms / 1000, UTC)
    hour = d.hour % 12 or 12
    return (
        f"{d.month}/{d.day}/{d.year} {hour}:{d.minute:02d}:{d.second:02d} "
        f"{'AM' if d.hour < 12 else 'PM'}"
    )


class AdoSite:
    """Renders one portfolio as the `Fabrikam` project of organization `contoso`."""

    def __init__(self, p: Portfolio, server_url: str):
        self.p = p
        self.server = server_url.rstrip("/")
        self.org_url = f"{self.server}/{ORG}"
        self.project_id = _uuid(p.seed, 4242)
        self.project_url = f"{self.org_url}/{self.project_id}"
        self.cache = BytesLRU()
        self.identity_frag = [orjson.Fragment(orjson.dumps(self.identity(u.code))) for u in p.users]
        self.type_names = {t.code: t.name for t in p.process.types}

    # ------------------------------------------------------------------ small objects
    def identity(self, code: int) -> dict[str, Any]:
        u = self.p.users[code]
        descriptor = f"aad.{u.uuid.replace('-', '')[:32]}"
        return {
            "displayName": u.display_name,
            "url": f"{self.server}/_apis/Identities/{u.uuid}",
            "_links": {
                "avatar": {"href": f"{self.org_url}/_apis/GraphProfile/MemberAvatars/{descriptor}"}
            },
            "id": u.uuid,
            "uniqueName": u.email,
            "imageUrl": f"{self.org_url}/_api/_common/identityImage?id={u.uuid}",
            "descriptor": descriptor,
        }

    def item_url(self, i: int) -> str:
        return f"{self.org_url}/{self.project_id}/_apis/wit/workItems/{i + 1}"

    def area(self, art: int, team: int, level: str) -> str:
        p = self.p
        if art < 0 or level in ("theme", "epic", "capability"):
            return PROJECT
        if level == "feature" or team < 0:
            return f"{PROJECT}\\{p.arts[art].name}"
        return f"{PROJECT}\\{p.arts[art].name}\\{p.teams[team].name}"

    def area_of(self, i: int) -> str:
        return self.area(self.p.art[i], self.p.team[i], self.p.itype(i).level)

    def iteration(self, pi: int, sprint: int) -> str:
        p = self.p
        if sprint >= 0:
            s = p.sprints[sprint]
            return f"{PROJECT}\\{p.increments[s.increment].name}\\{s.name}"
        if pi >= 0:
            return f"{PROJECT}\\{p.increments[pi].name}"
        return PROJECT

    def iteration_of(self, i: int) -> str:
        return self.iteration(self.p.pi[i], self.p.sprint[i])

    def area_paths(self) -> list[str]:
        p = self.p
        out = [PROJECT] + [f"{PROJECT}\\{a.name}" for a in p.arts]
        out += [f"{PROJECT}\\{p.arts[t.art].name}\\{t.name}" for t in p.teams]
        return out

    def parse_area(self, path: str) -> tuple[int, int] | None:
        """(art, team) of an area path, team -1 for an ART area; None if unknown."""
        p = self.p
        parts = path.split("\\")
        if not parts or parts[0].lower() != PROJECT.lower():
            return None
        if len(parts) == 1:
            return (-1, -1)
        art = next((a.code for a in p.arts if a.name.lower() == parts[1].lower()), None)
        if art is None:
            return None
        if len(parts) == 2:
            return (art, -1)
        team = next(
            (t.code for t in p.teams if t.art == art and t.name.lower() == parts[2].lower()), None
        )
        return None if team is None or len(parts) > 3 else (art, team)

    def parse_iteration(self, path: str) -> tuple[int, int] | None:
        """(pi, sprint) of an iteration path; None if unknown."""
        p = self.p
        parts = path.split("\\")
        if not parts or parts[0].lower() != PROJECT.lower():
            return None
        if len(parts) == 1:
            return (-1, -1)
        pi = next((inc.index for inc in p.increments if inc.name.lower() == parts[1].lower()), None)
        if pi is None:
            return None
        if len(parts) == 2:
            return (pi, -1)
        sprint = next(
            (s.code for s in p.sprints if s.increment == pi and s.name.lower() == parts[2].lower()),
            None,
        )
        return None if sprint is None or len(parts) > 3 else (pi, sprint)

    # ------------------------------------------------------------------ values
    def fields_of(self, i: int, base_len: int | None = None) -> dict[str, Any]:
        """Every non-empty field of work item `i`, in the order the service lists them."""
        p = self.p
        t = p.itype(i)
        status = p.status_of(i)
        level = t.level
        changed_by = self._changed_by(i, base_len)
        f: dict[str, Any] = {
            "System.AreaPath": self.area_of(i),
            "System.TeamProject": PROJECT,
            "System.IterationPath": self.iteration_of(i),
            "System.WorkItemType": t.name,
            "System.State": status.name,
            "System.Reason": REASONS.get(status.name, status.name),
        }
        if p.assignee[i] >= 0:
            f["System.AssignedTo"] = self.identity_frag[p.assignee[i]]
        f["System.CreatedDate"] = ado_date(p.created[i])
        f["System.CreatedBy"] = self.identity_frag[self._creator(i)]
        f["System.ChangedDate"] = ado_date(p.updated[i])
        f["System.ChangedBy"] = self.identity_frag[changed_by]
        f["System.CommentCount"] = 0
        f["System.Title"] = p.summary(i)
        if level == "epic":
            stage = p.stage[i]
            f["System.BoardColumn"] = ADO_BOARD_COLUMN[stage if stage >= 0 else 0]
            f["System.BoardColumnDone"] = False
        labels = list(p.labels(i))
        if labels:
            f["System.Tags"] = "; ".join(labels)
        parent = p.parent[i]
        if parent >= 0 and not p.is_deleted(parent):
            f["System.Parent"] = parent + 1
        description = p.description(i)
        if description:
            f["System.Description"] = f"<div>{description}</div>"
        f["Microsoft.VSTS.Common.StateChangeDate"] = ado_date(p.status_changed[i])
        activated = activated_at(p, i) if status.phase != "todo" else None
        if activated is not None:
            f["Microsoft.VSTS.Common.ActivatedDate"] = ado_date(activated)
        if p.resolved[i] >= 0 and status.name in ("Resolved", "Closed"):
            f["Microsoft.VSTS.Common.ResolvedDate"] = ado_date(p.resolved[i])
        if p.resolved[i] >= 0 and status.name == "Closed":
            f["Microsoft.VSTS.Common.ClosedDate"] = ado_date(p.resolved[i])
        f["Microsoft.VSTS.Common.Priority"] = min(4, max(1, p.priority[i]))
        category = p.category[i]
        if level in ("epic", "feature", "story"):
            f["Microsoft.VSTS.Common.ValueArea"] = "Architectural" if category == 1 else "Business"
        f["Microsoft.VSTS.Common.StackRank"] = float(p.rank[i])
        for attr, ref in NUMERIC_REF.items():
            value = p.num[attr][i]
            if value == value:
                f[ref] = int(value) if ref == "Microsoft.VSTS.Common.BusinessValue" else value
        if p.start_day[i] >= 0:
            f["Microsoft.VSTS.Scheduling.StartDate"] = ado_date(p.start_day[i] * 86_400_000)
        if p.target_day[i] >= 0:
            f["Microsoft.VSTS.Scheduling.TargetDate"] = ado_date(p.target_day[i] * 86_400_000)
        if t.name == "Bug":
            f["Microsoft.VSTS.Common.Severity"] = "3 - Medium"
        if p.flags[i] & F_FLAGGED:
            f["Microsoft.VSTS.CMMI.Blocked"] = "Yes"
        health = p.health[i]
        if health >= 0:
            f["Custom.PortfolioHealth"] = HEALTH_VALUES[health]
        if category >= 0:
            f["Custom.InvestmentCategory"] = CATEGORY_LABELS[category]
        if level == "epic" and p.theme[i] >= 0:
            f["Custom.StrategicTheme"] = p.themes[p.theme[i]]
        return f

    def _creator(self, i: int) -> int:
        p = self.p
        return p.assignee[i] if p.assignee[i] > 0 else 1 + mix(p.seed, i, 50) % (len(p.users) - 1)

    def _changed_by(self, i: int, base_len: int | None = None) -> int:
        extra = self.p.extra.get(i)
        if extra:
            return extra[-1].author
        if base_len is None:
            base_len = base_history_length(self.p, i)
        if base_len:
            return base_author(self.p, i)
        return self._creator(i)

    def value(self, ref: str, i: int) -> Any:
        """One field's comparable value for WIQL (None when empty)."""
        return self.getter(ref)(i)

    def getter(self, ref: str) -> Callable[[int], Any]:
        p = self.p
        key = ref.lower()
        simple: dict[str, Callable[[int], Any]] = {
            "system.id": lambda i: i + 1,
            "system.rev": p.revision,
            "system.workitemtype": lambda i: p.itype(i).name,
            "system.state": lambda i: p.status_of(i).name,
            "system.title": p.summary,
            "system.teamproject": lambda i: PROJECT,
            "system.areapath": self.area_of,
            "system.iterationpath": self.iteration_of,
            "system.createddate": lambda i: p.created[i],
            "system.changeddate": lambda i: p.updated[i],
            "microsoft.vsts.common.statechangedate": lambda i: p.status_changed[i],
            "microsoft.vsts.common.closeddate": lambda i: (
                p.resolved[i] if p.resolved[i] >= 0 else None
            ),
            "system.tags": lambda i: "; ".join(p.labels(i)) or None,
            "system.parent": lambda i: p.parent[i] + 1 if p.parent[i] >= 0 else None,
            "microsoft.vsts.common.stackrank": lambda i: float(p.rank[i]),
            "microsoft.vsts.common.priority": lambda i: min(4, max(1, p.priority[i])),
            "custom.portfoliohealth": p.health_of,
            "custom.investmentcategory": lambda i: (
                CATEGORY_LABELS[p.category[i]] if p.category[i] >= 0 else None
            ),
            "system.assignedto": lambda i: (
                p.users[p.assignee[i]].email if p.assignee[i] >= 0 else None
            ),
            "system.boardcolumn": lambda i: (
                ADO_BOARD_COLUMN[p.stage[i]] if p.stage[i] >= 0 else None
            ),
            "microsoft.vsts.cmmi.blocked": lambda i: "Yes" if p.flags[i] & F_FLAGGED else None,
        }
        if key in simple:
            return simple[key]
        for attr, r in NUMERIC_REF.items():
            if r.lower() == key:
                column = p.num[attr]
                return lambda i: None if column[i] != column[i] else column[i]
        return lambda i: self.fields_of(i).get(ref)

    # ------------------------------------------------------------------ work items
    def work_item(
        self,
        i: int,
        fields: tuple[str, ...] | None = None,
        expand: str = "none",
        links: bool = False,
    ) -> bytes:
        key = (i, self.p.ver[i], fields, expand, links)
        return self.cache.get_or_render(
            key, lambda: orjson.dumps(self.work_item_obj(i, fields, expand, links))
        )

    def work_item_obj(
        self,
        i: int,
        fields: tuple[str, ...] | None = None,
        expand: str = "none",
        links: bool = False,
    ) -> dict[str, Any]:
        p = self.p
        base_len = base_history_length(p, i)
        rev = 1 + base_len + len(p.extra.get(i, ()))
        all_fields = self.fields_of(i, base_len)
        if fields is not None:
            picked: dict[str, Any] = {}
            for name in fields:
                f = field_named(name)
                ref = f.ref if f else name
                if ref == "System.Id":
                    picked[ref] = i + 1
                elif ref == "System.Rev":
                    picked[ref] = rev
                elif ref in all_fields:
                    picked[ref] = all_fields[ref]
            all_fields = picked
        out: dict[str, Any] = {"id": i + 1, "rev": rev, "fields": all_fields}
        if expand in ("relations", "all"):
            out["relations"] = self.relations(i)
        if expand in ("links", "all") or links:
            url = self.item_url(i)
            type_path = p.itype(i).name.replace(" ", "%20")
            out["_links"] = {
                "self": {"href": url},
                "workItemUpdates": {"href": f"{url}/updates"},
                "workItemRevisions": {"href": f"{url}/revisions"},
                "workItemHistory": {"href": f"{url}/history"},
                "workItemComments": {"href": f"{url}/comments"},
                "html": {"href": f"{self.org_url}/{self.project_id}/_workitems/edit/{i + 1}"},
                "workItemType": {"href": f"{self.project_url}/_apis/wit/workItemTypes/{type_path}"},
                "fields": {"href": f"{self.org_url}/{self.project_id}/_apis/wit/fields"},
            }
        out["url"] = self.item_url(i)
        return out

    def relations(self, i: int) -> list[dict[str, Any]]:
        p = self.p
        out = []
        parent = p.parent[i]
        if parent >= 0 and not p.is_deleted(parent):
            out.append(self.relation("System.LinkTypes.Hierarchy-Reverse", parent, "Parent"))
        for child in p.children(i):
            out.append(self.relation("System.LinkTypes.Hierarchy-Forward", child, "Child"))
        return out

    def relation(self, rel: str, target: int, name: str) -> dict[str, Any]:
        return {
            "rel": rel,
            "url": self.item_url(target),
            "attributes": {"isLocked": False, "name": name},
        }

    # ------------------------------------------------------------------ updates
    def updates(self, i: int) -> list[dict[str, Any]]:
        """The work item's revisions as WorkItemUpdate objects, oldest first."""
        p = self.p
        history = p.history(i)
        url = self.item_url(i)
        first = self._creation_fields(i)
        out: list[dict[str, Any]] = []
        dates = [p.created[i]] + [e.at for e in history]
        for rev, at in enumerate(dates, start=1):
            revised = ado_date(dates[rev]) if rev < len(dates) else "9999-01-01T00:00:00Z"
            update: dict[str, Any] = {
                "id": rev,
                "workItemId": i + 1,
                "rev": rev,
                "revisedBy": self._revised_by(
                    history[rev - 2].author if rev > 1 else self._creator(i)
                ),
                "revisedDate": revised,
            }
            if rev == 1:
                update["fields"] = {k: {"newValue": v} for k, v in first.items()}
                parent = p.parent[i]
                if parent >= 0:
                    update["relations"] = {
                        "added": [
                            self.relation("System.LinkTypes.Hierarchy-Reverse", parent, "Parent")
                        ]
                    }
            else:
                entry = history[rev - 2]
                fields = {
                    "System.Rev": {"oldValue": rev - 1, "newValue": rev},
                    "System.ChangedDate": {
                        "oldValue": ado_date(dates[rev - 2]),
                        "newValue": ado_date(at),
                    },
                }
                fields.update(self.change_fields(i, entry))
                update["fields"] = fields
            update["url"] = f"{url}/updates/{rev}"
            out.append(update)
        return out

    def _revised_by(self, code: int) -> dict[str, Any]:
        ident = self.identity(code)
        ident["name"] = f"{ident['displayName']} <{ident['uniqueName']}>"
        return ident

    def _creation_fields(self, i: int) -> dict[str, Any]:
        p = self.p
        init = initial_values(p, i)
        t = p.itype(i)
        state = p.process.statuses[int(init["status"])]  # type: ignore[call-overload]
        art = int(init.get("art", p.original(i, "art", p.art[i])))  # type: ignore[call-overload]
        team_value = init.get("team", p.original(i, "team", p.team[i]))
        team = -1 if team_value is None else int(team_value)  # type: ignore[call-overload]
        fields: dict[str, Any] = {
            "System.Id": i + 1,
            "System.Rev": 1,
            "System.AreaPath": self.area(art, team, t.level),
            "System.TeamProject": PROJECT,
            "System.IterationPath": self.iteration_of(i),
            "System.WorkItemType": t.name,
            "System.State": state.name,
            "System.Reason": REASONS.get(state.name, state.name),
            "System.CreatedDate": ado_date(p.created[i]),
            "System.CreatedBy": self.identity(self._creator(i)),
            "System.ChangedDate": ado_date(p.created[i]),
            "System.ChangedBy": self.identity(self._creator(i)),
            "System.Title": p.summary(i),
            "Microsoft.VSTS.Common.Priority": min(4, max(1, int(init["priority"]))),  # type: ignore[call-overload]
        }
        if init.get("estimate") is not None:
            fields["Microsoft.VSTS.Scheduling.StoryPoints"] = init["estimate"]
        return fields

    def change_fields(self, i: int, entry: ChangeEntry) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        items = {c.attr: c for c in entry.items}
        for c in entry.items:
            ref, old, new = self._change(i, c, items)
            if ref is None:
                continue
            change: dict[str, Any] = {}
            if old is not None:
                change["oldValue"] = old
            if new is not None:
                change["newValue"] = new
            out[ref] = change
            if c.attr == "status":
                o, n = self.p.process.statuses[c.old], self.p.process.statuses[c.new]
                out["System.Reason"] = {
                    "oldValue": REASONS.get(o.name, o.name),
                    "newValue": REASONS.get(n.name, n.name),
                }
                out["Microsoft.VSTS.Common.StateChangeDate"] = {"newValue": ado_date(entry.at)}
        return out

    def _change(
        self, i: int, c: ChangeItem, items: dict[str, ChangeItem]
    ) -> tuple[str | None, Any, Any]:
        p = self.p
        attr = c.attr
        if attr == "status":
            return "System.State", p.process.statuses[c.old].name, p.process.statuses[c.new].name
        if attr in NUMERIC_REF:
            return NUMERIC_REF[attr], c.old, c.new
        if attr == "priority":
            return "Microsoft.VSTS.Common.Priority", min(4, max(1, c.old)), min(4, max(1, c.new))
        if attr == "rank":
            return "Microsoft.VSTS.Common.StackRank", float(c.old), float(c.new)
        if attr == "summary":
            return "System.Title", c.old, c.new
        if attr == "labels":
            return "System.Tags", "; ".join(c.old) or None, "; ".join(c.new) or None
        if attr == "health":
            return "Custom.PortfolioHealth", c.old, c.new
        if attr == "category":

            def label(v: Any) -> str | None:
                return (
                    None
                    if v is None
                    else CATEGORY_LABELS[("business", "enabler", "maintenance").index(v)]
                )

            return "Custom.InvestmentCategory", label(c.old), label(c.new)
        if attr == "flagged":
            return "Microsoft.VSTS.CMMI.Blocked", "Yes" if c.old else None, "Yes" if c.new else None
        if attr == "team":
            level = p.itype(i).level
            art_change = items.get("art")
            old_art = art_change.old if art_change else p.art[i]
            new_art = art_change.new if art_change else p.art[i]
            old_team = -1 if c.old is None else c.old
            new_team = -1 if c.new is None else c.new
            return (
                "System.AreaPath",
                self.area(old_art, old_team, level),
                self.area(new_art, new_team, level),
            )
        if attr == "increment":
            return (
                "System.IterationPath",
                self.iteration(-1 if c.old is None else c.old, -1),
                self.iteration(-1 if c.new is None else c.new, -1),
            )
        return None, None, None

    # ------------------------------------------------------------------ metadata
    def states(self, type_code: int) -> list[dict[str, str]]:
        p = self.p
        return [
            {"name": s.name, "color": s.color, "category": s.tracker_category}
            for s in (p.process.statuses[c] for c in p.process.types[type_code].statuses)
        ]

    def work_item_type(self, type_code: int) -> dict[str, Any]:
        t = self.p.process.types[type_code]
        url = (
            f"{self.org_url}/{self.project_id}/_apis/wit/workItemTypes/{t.name.replace(' ', '%20')}"
        )
        return {
            "name": t.name,
            "referenceName": TYPE_REFS.get(t.name, f"Custom.{t.name.replace(' ', '')}"),
            "description": t.description,
            "color": TYPE_COLORS.get(t.name, "B2B2B2"),
            "icon": {"id": "icon_list", "url": f"{self.org_url}/_apis/wit/workItemIcons/icon_list"},
            "isDisabled": False,
            "states": self.states(type_code),
            "url": url,
        }

    def field_details(self, f: AdoField) -> dict[str, Any]:
        return {
            "name": f.name,
            "referenceName": f.ref,
            "description": "",
            "type": f.type,
            "usage": "workItem",
            "readOnly": f.read_only,
            "canSortBy": f.type not in ("html", "history", "plainText"),
            "isQueryable": f.type != "history",
            "supportedOperations": [],
            "isIdentity": f.type == "identity",
            "isPicklist": f.allowed is not None and f.ref.startswith("Custom."),
            "isPicklistSuggested": False,
            "url": f"{self.org_url}/_apis/wit/fields/{f.ref}",
        }

    def deleted_ref(self, i: int, *, with_resource: bool) -> dict[str, Any]:
        p = self.p
        d = p.deleted[i]
        out: dict[str, Any] = {
            "id": i + 1,
            "code": 200,
            "type": p.itype(i).name,
            "name": p.summary(i),
            "project": PROJECT,
            "deletedDate": legacy_date(d.at),
            "deletedBy": f"{p.users[d.author].display_name} <{p.users[d.author].email}>",
            "url": f"{self.org_url}/{self.project_id}/_apis/wit/recycleBin/{i + 1}",
        }
        if with_resource:
            out["resource"] = self.work_item_obj(i, None, "none", True)
        return out


def _uuid(seed: int, n: int) -> str:
    h = f"{mix(seed, 5, n):016x}{mix(seed, 6, n):016x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
