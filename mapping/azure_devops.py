"""Azure DevOps Boards work items -> the LPM model.

Pure functions over the shapes of the work item tracking REST API 7.1: items from
`workitemsbatch` (fields) merged with the `relations` of the `$expand=relations` pass, the
states of `workitemtypes/{type}/states` and the deltas of `workItems/{id}/updates`. The connector
fetches; this module only reads, so it is tested against the reference HTTP examples as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from mapping.config import AzureDevOpsSource
from mapping.mapper import MappingError, shape_errors_are_mapping_errors
from mapping.model import (
    CATEGORY_NAMES,
    Category,
    HistoryChange,
    Level,
    Objective,
    PortfolioState,
    StatusCategory,
    WorkItem,
)

STATE_CATEGORIES: dict[str, StatusCategory] = {
    "Proposed": StatusCategory.todo,
    "InProgress": StatusCategory.doing,
    "Resolved": StatusCategory.done,
    "Completed": StatusCategory.done,
    "Removed": StatusCategory.removed,
}
"""ADO state category -> LPM status category (Resolved counts as done, as on ADO boards)."""

PARENT_LINK = "System.LinkTypes.Hierarchy-Reverse"
UPDATES_KEY = "updates"
"""Where the connector puts an item's `workItems/{id}/updates` list in the raw item."""
ESTIMATE_FIELDS = (
    "Microsoft.VSTS.Scheduling.StoryPoints",
    "Microsoft.VSTS.Scheduling.Effort",
    "Microsoft.VSTS.Scheduling.Size",
)
"""Agile, Scrum and CMMI spell the estimate differently; the first one present wins."""
RANK_FIELDS = ("Microsoft.VSTS.Common.StackRank", "Microsoft.VSTS.Common.BacklogPriority")
"""Backlog order: StackRank (Agile, CMMI) or BacklogPriority (Scrum)."""
DEFAULT_FIELDS = {
    "business_value": "Microsoft.VSTS.Common.BusinessValue",
    "time_criticality": "Microsoft.VSTS.Common.TimeCriticality",
    "start_date": "Microsoft.VSTS.Scheduling.StartDate",
    "target_date": "Microsoft.VSTS.Scheduling.TargetDate",
}
"""Standard reference names used when the config names none."""
PATH_FIELDS = frozenset({"System.AreaPath", "System.IterationPath"})
"""Tree paths `Project\\ART\\Team` and `Project\\PI\\Sprint`: attributes are their segments."""
VALUE_AREA = "Microsoft.VSTS.Common.ValueArea"
VALUE_AREA_CATEGORY = {"Business": Category.business, "Architectural": Category.enabler}
BOARD_COLUMN = "System.BoardColumn"
"""An epic's Kanban column: its portfolio state when the config names no field for it."""
SYSTEM_FIELDS = (
    "System.Id",
    "System.Rev",
    "System.WorkItemType",
    "System.Title",
    "System.State",
    "System.AreaPath",
    "System.IterationPath",
    "System.CreatedDate",
    "System.ChangedDate",
    "System.Tags",
    "Microsoft.VSTS.Common.StateChangeDate",
    "Microsoft.VSTS.Common.ResolvedDate",
    "Microsoft.VSTS.Common.ClosedDate",
    VALUE_AREA,
    BOARD_COLUMN,
)
UNCOMMITTED_TAGS = frozenset({"uncommitted", "stretch"})
"""Tags marking a PI objective as uncommitted (SAFe: stretch objectives)."""
_NUMERIC_ATTRS = ("estimate", "business_value", "time_criticality", "risk_reduction", "job_size")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off", ""})
_RANK_LIMIT = 1e13
_WORK_ITEM_URL = re.compile(r"/workItems/(\d+)$", re.IGNORECASE)


class AzureDevOpsMappingError(MappingError):
    """A work item field holds a value the config cannot map; names the field and the value."""

    def __init__(self, field: str, value: Any, reason: str):
        super().__init__(f"{field} = {value!r}: {reason}", field=field)
        self.value = value
        self.reason = reason


@dataclass(frozen=True)
class AzureDevOpsFacts:
    """What the mapper must know about one project, discovered once per sync."""

    type_states: Mapping[str, Mapping[str, str]]
    """Work item type -> state name -> ADO state category (`workitemtypes/{type}/states`)."""


def state_categories(states_body: Mapping[str, Any]) -> dict[str, str]:
    """State name -> ADO state category, from a `workitemtypes/{type}/states` response."""
    return {state["name"]: state["category"] for state in states_body.get("value", [])}


def batch_fields(source: AzureDevOpsSource) -> list[str]:
    """Reference names the `workitemsbatch` fields pass must request for this source's mapping."""
    wanted = list(SYSTEM_FIELDS)
    configured = source.fields.model_dump(exclude_none=True)
    wanted += configured.values()
    wanted += [name for attr, name in DEFAULT_FIELDS.items() if attr not in configured]
    if "estimate" not in configured:
        wanted += ESTIMATE_FIELDS
    if "rank" not in configured:
        wanted += RANK_FIELDS
    wanted += source.writeback.fields.values()
    return list(dict.fromkeys(wanted))


def parent_id(relations: Iterable[Mapping[str, Any]] | None) -> str | None:
    """The id of the hierarchy parent among an item's relations, if it has one."""
    for relation in relations or ():
        if relation.get("rel") == PARENT_LINK:
            return _linked_id(relation)
    return None


def _linked_id(relation: Mapping[str, Any]) -> str:
    url = str(relation.get("url", ""))
    found = _WORK_ITEM_URL.search(url)
    if not found:
        raise AzureDevOpsMappingError(
            "relations.url", url, "a hierarchy link must point at .../workItems/{id}"
        )
    return found.group(1)


def parse_datetime(field: str, value: Any) -> datetime:
    """An ADO timestamp (`2017-09-04T02:08:16.6Z`, any fraction digits) as an aware datetime."""
    if not isinstance(value, str):
        raise AzureDevOpsMappingError(field, value, "expected an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise AzureDevOpsMappingError(field, value, "expected an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise AzureDevOpsMappingError(field, value, "timestamp carries no time zone")
    return parsed


@dataclass(frozen=True)
class _Paths:
    """Team, ART and PI as read from the area and iteration paths (or configured fields)."""

    team: str | None
    art: str | None
    increment: str | None


class AzureDevOpsMapper:
    """Maps the raw work items of one configured ADO source; build one per sync.

    Names of types, states and categories match case-insensitively, as ADO treats them.
    Conventions when the config names no field: the estimate is StoryPoints, Effort or Size;
    the area path `Project\\ART\\Team` gives ART and team; the iteration path
    `Project\\PI\\Sprint` gives the PI; the value area `Architectural` marks an enabler.
    """

    def __init__(self, source: AzureDevOpsSource, facts: AzureDevOpsFacts):
        self.source = source
        self.fields = source.fields
        self._type_states = {
            name.casefold(): {state.casefold(): cat for state, cat in states.items()}
            for name, states in facts.type_states.items()
        }
        self._state_names = {
            name.casefold(): list(states) for name, states in facts.type_states.items()
        }
        self._levels = {name.casefold(): level for name, level in source.levels.items()}
        self._objective_types = {name.casefold() for name in source.objective_types}
        self._statuses = {name.casefold(): cat for name, cat in source.statuses.items()}
        self._categories = {name.casefold(): cat for name, cat in source.categories.items()}
        self._names: dict[str, tuple[str, ...]] = {}
        self._owned = source.writeback.fields
        self._path_names = tuple(self._path_field(attr) for attr in ("team", "art", "increment"))
        self._paths_seen: dict[tuple[Any, ...], _Paths] = {}
        """Paths by the values they are read from: a project has few area and iteration paths."""

    # ------------------------------------------------------------------ items
    def external_id(self, raw: Mapping[str, Any]) -> str:
        value = raw.get("id") if isinstance(raw, Mapping) else None
        return str(value) if value not in (None, "") else "(no id)"

    @shape_errors_are_mapping_errors
    def map(self, raw: Mapping[str, Any]) -> WorkItem | Objective:
        """One work item as the connector delivers it, mapped.

        The connector merges the fields pass, the `relations` of the relations pass and the
        item's `updates` (updates API) into one dict; `updates` become `history` and are left
        out of the stored `raw`, which keeps the item as the tracker returned it.
        """
        fields = _fields_of(raw)
        try:
            return self._map(raw, fields)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise AzureDevOpsMappingError(where, problem.get("input"), problem["msg"]) from None

    def _map(self, raw: Mapping[str, Any], fields: Mapping[str, Any]) -> WorkItem | Objective:
        updates: Sequence[Mapping[str, Any]] = raw.get(UPDATES_KEY) or ()
        payload = {key: value for key, value in raw.items() if key != UPDATES_KEY}
        item_type = _text(fields, "System.WorkItemType", required=True)
        assert item_type is not None
        if item_type.casefold() in self._objective_types:
            return self._objective(payload, fields)
        level = self._levels.get(item_type.casefold())
        if level is None:
            known = ", ".join(sorted(self.source.levels)) or "none"
            raise AzureDevOpsMappingError(
                "System.WorkItemType",
                item_type,
                f"work item type is not mapped to a level (levels: {known}); map it under "
                "`levels` or leave it out of `scope`",
            )
        state = _text(fields, "System.State", required=True)
        assert state is not None
        category = self.status_category(item_type, state)
        paths = self._paths(fields)
        external_id = str(raw["id"])
        return WorkItem(
            external_id=external_id,
            key=external_id,
            level=level,
            item_type=item_type,
            title=_text(fields, "System.Title", required=True) or "",
            status=state,
            status_category=category,
            parent_external_id=parent_id(raw.get("relations")),
            estimate=self._number(fields, "estimate"),
            business_value=self._number(fields, "business_value"),
            time_criticality=self._number(fields, "time_criticality"),
            risk_reduction=self._number(fields, "risk_reduction"),
            job_size=self._number(fields, "job_size"),
            team=paths.team,
            art=paths.art,
            increment=paths.increment,
            category=self._category(item_type, fields),
            portfolio_state=self._portfolio_state(level, category, fields),
            tracker_rank=self._tracker_rank(fields),
            flagged=self._flagged(fields),
            start_date=self._date(fields, "start_date"),
            target_date=self._date(fields, "target_date"),
            created_at=parse_datetime("System.CreatedDate", fields.get("System.CreatedDate")),
            updated_at=parse_datetime("System.ChangedDate", fields.get("System.ChangedDate")),
            resolved_at=self._resolved_at(category, fields),
            writeback_values=self.writeback_values(raw),
            raw=payload,
            history=self.history(item_type, updates),
        )

    def status_category(self, item_type: str, state: str) -> StatusCategory:
        """`statuses` overrides first, then the state's category for this work item type."""
        override = self._statuses.get(state.casefold())
        if override is not None:
            return override
        states = self._type_states.get(item_type.casefold())
        if states is None:
            raise AzureDevOpsMappingError(
                "System.WorkItemType", item_type, "no states were read for this work item type"
            )
        ado_category = states.get(state.casefold())
        if ado_category is None:
            known = ", ".join(self._state_names[item_type.casefold()]) or "none"
            raise AzureDevOpsMappingError(
                "System.State",
                state,
                f"not a state of work item type {item_type!r} (states: {known}); "
                "map it under `statuses`",
            )
        mapped = STATE_CATEGORIES.get(ado_category)
        if mapped is None:
            raise AzureDevOpsMappingError(
                "System.State",
                state,
                f"state category {ado_category!r} is unknown; map the state under `statuses`",
            )
        return mapped

    def writeback_values(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Current tracker values of the fields write-back owns, and `rev` for `test /rev`."""
        fields = _fields_of(raw)
        values: dict[str, Any] = {"rev": raw.get("rev", fields.get("System.Rev"))}
        for attr, name in self._owned.items():
            values[attr] = fields.get(name)
        if self.source.writeback.rank:
            rank_field = self._rank_field(fields)
            values["rank"] = fields.get(rank_field)
            values["rank_field"] = rank_field
        return values

    # ------------------------------------------------------------------ objectives
    def _objective(self, raw: Mapping[str, Any], fields: Mapping[str, Any]) -> Objective:
        item_type = str(fields["System.WorkItemType"])
        state = _text(fields, "System.State", required=True)
        assert state is not None
        paths = self._paths(fields)
        external_id = str(raw["id"])
        tags = {tag.lower() for tag in _tags(fields)}
        return Objective(
            external_id=external_id,
            key=external_id,
            title=_text(fields, "System.Title", required=True) or "",
            team=paths.team,
            art=paths.art,
            increment=paths.increment,
            committed=not tags & UNCOMMITTED_TAGS,
            planned_value=self._number(fields, "planned_value"),
            actual_value=self._number(fields, "actual_value"),
            status_category=self.status_category(item_type, state),
            updated_at=parse_datetime("System.ChangedDate", fields.get("System.ChangedDate")),
            raw=dict(raw),
        )

    # ------------------------------------------------------------------ history
    def history(
        self, item_type: str, updates: Sequence[Mapping[str, Any]]
    ) -> tuple[HistoryChange, ...]:
        """Tracked field transitions from the updates API, oldest first.

        Only changes count: the creation (revision 1) sets initial values and is no transition,
        as in a Jira changelog. `change_id` is the update id (unique per item; one revision can
        carry several updates, e.g. link changes). A field change is dated by the revision's new
        `System.ChangedDate`; a link-only update carries none and is dated by its `revisedDate`.
        """
        changes: list[HistoryChange] = []
        current_type = _first_type(updates) or item_type
        for update in sorted(updates, key=lambda u: int(u["id"])):
            deltas: Mapping[str, Mapping[str, Any]] = update.get("fields") or {}
            when = _update_time(update, deltas)
            if when is None or _is_creation(deltas):
                continue
            change_id = str(update["id"])
            old_type = current_type
            type_delta = deltas.get("System.WorkItemType")
            if type_delta and type_delta.get("newValue"):
                current_type = str(type_delta["newValue"])
            for attr, before, after in self._field_transitions(deltas, old_type, current_type):
                if before != after:
                    changes.append(
                        HistoryChange(
                            change_id=change_id,
                            changed_at=when,
                            field=attr,
                            from_value=before,
                            to_value=after,
                        )
                    )
            parent = _parent_transition(update.get("relations") or {})
            if parent is not None:
                changes.append(
                    HistoryChange(
                        change_id=change_id,
                        changed_at=when,
                        field="parent_external_id",
                        from_value=parent[0],
                        to_value=parent[1],
                    )
                )
        return tuple(changes)

    def _field_transitions(
        self, deltas: Mapping[str, Mapping[str, Any]], old_type: str, new_type: str
    ) -> Iterable[tuple[str, str | None, str | None]]:
        state = deltas.get("System.State")
        if state is not None:
            before, after = state.get("oldValue"), state.get("newValue")
            yield "status", _str(before), _str(after)
            yield (
                "status_category",
                self._category_text(old_type, before),
                self._category_text(new_type, after),
            )
        type_delta = deltas.get("System.WorkItemType")
        if type_delta is not None:
            before_type = old_type if type_delta.get("oldValue") else None
            yield "level", self._level_text(before_type), self._level_text(new_type)
        for attr in _NUMERIC_ATTRS:
            for name in self._numeric_names(attr):
                if name in deltas:
                    delta = deltas[name]
                    yield attr, _num_text(delta.get("oldValue")), _num_text(delta.get("newValue"))
                    break
        for attr in ("team", "art", "increment"):
            name = self._path_field(attr)
            if name in deltas:
                delta = deltas[name]
                yield (
                    attr,
                    self._path_value(attr, delta.get("oldValue")),
                    self._path_value(attr, delta.get("newValue")),
                )
        stage = self.fields.portfolio_state or BOARD_COLUMN
        if stage in deltas and self._level_text(new_type) == Level.epic.value:
            delta = deltas[stage]
            yield (
                "portfolio_state",
                _state_text(delta.get("oldValue")),
                _state_text(delta.get("newValue")),
            )
        # The fields lpm-sync writes: which values landed when, for the write-back ledger.
        for attr, name in self.source.writeback.fields.items():
            if name in deltas:
                delta = deltas[name]
                yield attr, _str(delta.get("oldValue")), _str(delta.get("newValue"))

    def _category_text(self, item_type: str, state: Any) -> str | None:
        if state is None:
            return None
        try:
            return self.status_category(item_type, str(state)).value
        except AzureDevOpsMappingError:
            return None

    def _level_text(self, item_type: str | None) -> str | None:
        level = self._levels.get(item_type.casefold()) if item_type else None
        return level.value if level else None

    # ------------------------------------------------------------------ fields
    def _numeric_names(self, attr: str) -> tuple[str, ...]:
        """Reference names an attribute is read from, first present wins (cached per mapper)."""
        names = self._names.get(attr)
        if names is None:
            configured = getattr(self.fields, attr)
            default = DEFAULT_FIELDS.get(attr)
            if configured:
                names = (configured,)
            elif attr == "estimate":
                names = ESTIMATE_FIELDS
            else:
                names = (default,) if default else ()
            self._names[attr] = names
        return names

    def _number(self, fields: Mapping[str, Any], attr: str) -> float | None:
        for name in self._numeric_names(attr):
            value = fields.get(name)
            if value is not None:
                return _number(name, value)
        return None

    def _date(self, fields: Mapping[str, Any], attr: str) -> date | None:
        name = getattr(self.fields, attr) or DEFAULT_FIELDS[attr]
        value = fields.get(name)
        return None if value in (None, "") else parse_datetime(name, value).date()

    def _resolved_at(self, category: StatusCategory, fields: Mapping[str, Any]) -> datetime | None:
        """When a done or removed item got there: Resolved counts as done, so ResolvedDate
        first, then ClosedDate; ADO clears both outside those states, so a Removed item is
        dated by its StateChangeDate (when it was removed)."""
        if category not in (StatusCategory.done, StatusCategory.removed):
            return None
        for name in (
            "Microsoft.VSTS.Common.ResolvedDate",
            "Microsoft.VSTS.Common.ClosedDate",
            "Microsoft.VSTS.Common.StateChangeDate",
        ):
            if fields.get(name):
                return parse_datetime(name, fields[name])
        return None

    def _path_field(self, attr: str) -> str:
        configured: str | None = getattr(self.fields, attr)
        if configured:
            return configured
        return "System.IterationPath" if attr == "increment" else "System.AreaPath"

    def _path_value(self, attr: str, value: Any) -> str | None:
        """The attribute from its area/iteration path segment, or from another field as is."""
        if value is None or value == "":
            return None
        if self._path_field(attr) not in PATH_FIELDS:
            return _identity_or_text(value)
        segments = str(value).split("\\")
        position = {"art": 1, "team": 2, "increment": 1}[attr]
        return segments[position] if len(segments) > position else None

    def _paths(self, fields: Mapping[str, Any]) -> _Paths:
        values = tuple(fields.get(name) for name in self._path_names)
        cacheable = all(value is None or isinstance(value, str) for value in values)
        found = self._paths_seen.get(values) if cacheable else None
        if found is None:
            team, art, increment = (
                self._path_value(attr, value)
                for attr, value in zip(("team", "art", "increment"), values, strict=True)
            )
            found = _Paths(team=team, art=art, increment=increment)
            if cacheable:
                self._paths_seen[values] = found
        return found

    def _category(self, item_type: str, fields: Mapping[str, Any]) -> Category:
        """Investment category: category field, then tags, then type, then value area."""
        name = self.fields.category
        if name and fields.get(name) not in (None, ""):
            value = str(fields[name])
            found = self._categories.get(value.casefold())
            if found is not None:
                return found
            if value.strip().lower() in CATEGORY_NAMES:
                return Category(value.strip().lower())
            raise AzureDevOpsMappingError(
                name,
                value,
                f"not an investment category ({', '.join(CATEGORY_NAMES)}); "
                "map it under `categories`",
            )
        for candidate in (*_tags(fields), item_type):
            found = self._categories.get(candidate.casefold())
            if found is not None:
                return found
        return VALUE_AREA_CATEGORY.get(str(fields.get(VALUE_AREA)), Category.business)

    def _portfolio_state(
        self, level: Level, status: StatusCategory, fields: Mapping[str, Any]
    ) -> PortfolioState | None:
        """An epic's stage from the configured field, else from its board column.

        A removed epic, or a value naming no stage (a custom column such as `Parking lot`),
        leaves it unset, as for Jira: the epic is then not on the portfolio Kanban.
        """
        if level is not Level.epic or status is StatusCategory.removed:
            return None
        return _portfolio_state_named(fields.get(self.fields.portfolio_state or BOARD_COLUMN))

    def _rank_field(self, fields: Mapping[str, Any]) -> str:
        if self.fields.rank:
            return self.fields.rank
        for name in RANK_FIELDS:
            if name in fields:
                return name
        return RANK_FIELDS[0]

    def _tracker_rank(self, fields: Mapping[str, Any]) -> str | None:
        """The backlog order as a string whose lexical order is the numeric order."""
        name = self._rank_field(fields)
        value = fields.get(name)
        if value is None:
            return None
        number = _number(name, value)
        if not 0 <= number < _RANK_LIMIT:
            raise AzureDevOpsMappingError(name, value, "backlog order must be in [0, 1e13)")
        return f"{number:024.10f}"

    def _flagged(self, fields: Mapping[str, Any]) -> bool:
        name = self.fields.flagged
        if not name:
            return False
        value = fields.get(name)
        if value is None or isinstance(value, bool):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise AzureDevOpsMappingError(name, value, "expected a yes/no or true/false value")


def _fields_of(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    fields = raw.get("fields")
    if not isinstance(fields, Mapping) or "id" not in raw:
        raise AzureDevOpsMappingError("fields", None, "a work item needs an `id` and `fields`")
    return fields


def _text(fields: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise AzureDevOpsMappingError(name, value, "required field is missing")
        return None
    return str(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise AzureDevOpsMappingError(name, value, "expected a number")
    try:
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except ValueError:
        raise AzureDevOpsMappingError(name, value, "expected a number") from None
    if not math.isfinite(number):
        # "NaN" or "1e400" in a text field would poison every roll-up sum it enters.
        raise AzureDevOpsMappingError(name, value, "expected a finite number")
    return number


def _tags(fields: Mapping[str, Any]) -> list[str]:
    text = fields.get("System.Tags") or ""
    return [tag.strip() for tag in str(text).split(";") if tag.strip()]


def _identity_or_text(value: Any) -> str:
    """An identity field renders as its display name; anything else as its text."""
    if isinstance(value, Mapping):
        return str(value.get("displayName") or value.get("uniqueName") or value.get("id"))
    return str(value)


def _portfolio_state_named(value: Any) -> PortfolioState | None:
    """`Portfolio Backlog` -> backlog: the stage named by the last word of a column or value."""
    words = str(value or "").strip().lower().split()
    for state in PortfolioState:
        if words and words[-1] == state.value:
            return state
    return None


def _state_text(value: Any) -> str | None:
    found = _portfolio_state_named(value)
    return found.value if found else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _num_text(value: Any) -> str | None:
    """Numbers in history as the loader writes them (`3.0`), so both agree on a value."""
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    try:
        return str(float(value))
    except (TypeError, ValueError):
        return str(value)


def _first_type(updates: Sequence[Mapping[str, Any]]) -> str | None:
    for update in sorted(updates, key=lambda u: int(u["id"])):
        delta = (update.get("fields") or {}).get("System.WorkItemType")
        if delta is not None:
            old = delta.get("oldValue") or delta.get("newValue")
            return str(old) if old else None
    return None


def _is_creation(deltas: Mapping[str, Mapping[str, Any]]) -> bool:
    revision = deltas.get("System.Rev")
    return revision is not None and "oldValue" not in revision


def _update_time(
    update: Mapping[str, Any], deltas: Mapping[str, Mapping[str, Any]]
) -> datetime | None:
    changed = deltas.get("System.ChangedDate", {}).get("newValue")
    if changed:
        return parse_datetime("System.ChangedDate", changed)
    revised = update.get("revisedDate")
    if not revised or str(revised).startswith("9999"):
        return None
    return parse_datetime("revisedDate", revised)


def _parent_transition(relations: Mapping[str, Any]) -> tuple[str | None, str | None] | None:
    removed = [r for r in relations.get("removed", ()) if r.get("rel") == PARENT_LINK]
    added = [r for r in relations.get("added", ()) if r.get("rel") == PARENT_LINK]
    if not removed and not added:
        return None
    before = _linked_id(removed[0]) if removed else None
    after = _linked_id(added[0]) if added else None
    return before, after
