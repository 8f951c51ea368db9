"""Raw Jira issue JSON -> WorkItem / Objective, driven by the source config and discovered facts.

Pure: no I/O. The connector discovers the facts (which field id a configured name resolved to and
its schema, the status categories of every status); this module reads values of every shape Jira
returns (number, option, array, user, team, version, sprint, date and ADF text) and translates the
changelog into LPM attribute changes. Anything it cannot make sense of raises `MappingError` naming
the field and the value, so the item is quarantined instead of stored wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import ValidationError

from mapping.config import JiraSource
from mapping.mapper import MappingError, shape_errors_are_mapping_errors
from mapping.model import (
    Category,
    HistoryChange,
    Level,
    Objective,
    PortfolioState,
    StatusCategory,
    WorkItem,
)

KEY_IDS = "lpmKeyIds"
"""Top-level key the connector adds to an issue: issue key -> id for keys its fields reference
(Data Center Epic Link holds a key, not an id). Not part of the stored payload."""

JIRA_CATEGORY = {
    "new": StatusCategory.todo,
    "undefined": StatusCategory.todo,
    "indeterminate": StatusCategory.doing,
    "done": StatusCategory.done,
}
"""Jira statusCategory key -> LPM category (per-status overrides come from config)."""
JIRA_CATEGORY_NAMES = {
    "to do": StatusCategory.todo,
    "in progress": StatusCategory.doing,
    "done": StatusCategory.done,
}
UNCOMMITTED_LABEL = "uncommitted"
"""A PI objective carrying this label is an uncommitted objective (SAFe stretch goal)."""
PARENT_FIELD = "parent_external_id"
"""History field name of parent changes (the loader's tracked-field name)."""

NUMBER_ATTRS = (
    "estimate",
    "business_value",
    "time_criticality",
    "risk_reduction",
    "job_size",
)
TEXT_ATTRS = ("team", "art", "increment")
OBJECTIVE_NUMBERS = ("planned_value", "actual_value")


@dataclass(frozen=True)
class JiraField:
    """A Jira field as discovered: id, display name and schema (what shape its values take)."""

    id: str
    name: str
    type: str | None = None
    """schema.type: number, string, option, array, user, date, datetime, team, version, any..."""
    items: str | None = None
    custom: str | None = None


@dataclass(frozen=True)
class JiraFacts:
    """What the mapper must know about one Jira site (discovered once per sync)."""

    deployment: Literal["cloud", "datacenter"]
    time_zone: str
    fields: Mapping[str, JiraField] = field(default_factory=dict)
    """LPM attribute (`estimate`, `team`, `epic_link`, ...) -> the field it resolved to."""
    writeback: Mapping[str, JiraField] = field(default_factory=dict)
    """Write-back attribute (`wsjf`, `health`, `progress`) -> field."""
    rank_field: JiraField | None = None
    status_categories: Mapping[str, str] = field(default_factory=dict)
    """Status id -> statusCategory key, for changelog transitions."""
    issue_types: Mapping[str, int | None] = field(default_factory=dict)
    """Issue type name -> hierarchyLevel (None on Data Center)."""

    @property
    def api_version(self) -> str:
        return "3" if self.deployment == "cloud" else "2"

    def fetch_fields(self) -> list[str]:
        """Only the fields the mapping reads: nothing else is downloaded."""
        wanted = [
            "summary",
            "issuetype",
            "status",
            "created",
            "updated",
            "resolutiondate",
            "labels",
        ]
        if self.deployment == "cloud":
            wanted.append("parent")
        wanted += [f.id for f in self.fields.values()]
        wanted += [f.id for f in self.writeback.values()]
        if self.rank_field is not None:
            wanted.append(self.rank_field.id)
        return list(dict.fromkeys(wanted))


class JiraMapper:
    """Maps raw issues of one Jira source; build one per sync (facts may change between syncs)."""

    def __init__(self, source: JiraSource, facts: JiraFacts) -> None:
        self.source = source
        self.facts = facts
        self._levels = {name.casefold(): level for name, level in source.levels.items()}
        self._objective_types = {name.casefold() for name in source.objective_types}
        self._statuses = {name.casefold(): cat for name, cat in source.statuses.items()}
        self._categories = {name.casefold(): cat for name, cat in source.categories.items()}
        self._by_field_id = {f.id: attr for attr, f in facts.fields.items()}
        self._by_writeback_id = {f.id: attr for attr, f in facts.writeback.items()}
        self._numbers = [(a, facts.fields[a]) for a in NUMBER_ATTRS if a in facts.fields]
        self._texts = [(a, facts.fields[a]) for a in TEXT_ATTRS if a in facts.fields]

    def external_id(self, raw: dict[str, Any]) -> str:
        value = raw.get("id") if isinstance(raw, dict) else None
        return str(value) if value not in (None, "") else "(no id)"

    @shape_errors_are_mapping_errors
    def map(self, raw: dict[str, Any]) -> WorkItem | Objective:
        if not isinstance(raw, dict):
            raise MappingError(f"issue: expected a JSON object, got {_show(raw)}")
        fields = raw.get("fields")
        if not isinstance(fields, dict):
            raise MappingError(f"fields: expected an object, got {_show(fields)}", field="fields")
        external_id = _required_text(raw.get("id"), "id")
        key = _required_text(raw.get("key"), "key")
        item_type = _required_text(_name(fields.get("issuetype")), "issuetype")
        try:
            if item_type.casefold() in self._objective_types:
                return self._objective(raw, fields, external_id, key)
            return self._work_item(raw, fields, external_id, key, item_type)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise MappingError(
                f"{where}: {problem['msg']} (value {_show(problem.get('input'))})", field=where
            ) from None

    # --- items -----------------------------------------------------------------------------

    def _work_item(
        self,
        raw: dict[str, Any],
        fields: dict[str, Any],
        external_id: str,
        key: str,
        item_type: str,
    ) -> WorkItem:
        level = self._levels.get(item_type.casefold())
        if level is None:
            known = ", ".join(self.source.levels) or "none"
            raise MappingError(
                f"issuetype: {item_type!r} is not mapped to a level (levels: {known})",
                field="issuetype",
            )
        status, category = self._status(fields)
        values: dict[str, Any] = {
            attr: number_value(fields.get(spec.id), spec) for attr, spec in self._numbers
        }
        values.update({attr: text_value(fields.get(spec.id), spec) for attr, spec in self._texts})
        rank = self._rank(fields)
        return WorkItem(
            external_id=external_id,
            key=key,
            level=level,
            item_type=item_type,
            title=_required_text(fields.get("summary"), "summary"),
            status=status,
            status_category=category,
            parent_external_id=self._parent(raw, fields),
            category=self._category(fields, item_type),
            portfolio_state=self._portfolio_state(fields, level, status),
            tracker_rank=rank,
            flagged=self._flagged(fields),
            start_date=self._date(fields, "start_date"),
            target_date=self._date(fields, "target_date"),
            created_at=_required_datetime(fields.get("created"), "created"),
            updated_at=_required_datetime(fields.get("updated"), "updated"),
            resolved_at=_datetime(fields.get("resolutiondate"), "resolutiondate"),
            writeback_values=self._writeback_values(fields, rank),
            raw=stored_payload(raw),
            history=tuple(self.history(raw)),
            **values,
        )

    def _objective(
        self, raw: dict[str, Any], fields: dict[str, Any], external_id: str, key: str
    ) -> Objective:
        _, category = self._status(fields)
        labels = fields.get("labels")
        uncommitted = isinstance(labels, list) and any(
            str(label).casefold() == UNCOMMITTED_LABEL for label in labels
        )
        return Objective(
            external_id=external_id,
            key=key,
            title=_required_text(fields.get("summary"), "summary"),
            team=self._text(fields, "team"),
            art=self._text(fields, "art"),
            increment=self._text(fields, "increment"),
            committed=not uncommitted,
            planned_value=self._number(fields, "planned_value"),
            actual_value=self._number(fields, "actual_value"),
            status_category=category,
            updated_at=_required_datetime(fields.get("updated"), "updated"),
            raw=stored_payload(raw),
        )

    # --- attributes ------------------------------------------------------------------------

    def _status(self, fields: dict[str, Any]) -> tuple[str, StatusCategory]:
        status = fields.get("status")
        name = _required_text(_name(status), "status")
        override = self._statuses.get(name.casefold())
        if override is not None:
            return name, override
        category = status.get("statusCategory") if isinstance(status, dict) else None
        found = self._jira_category(category, str(status.get("id", "")) if status else "")
        if found is None:
            raise MappingError(
                f"status: status {name!r} has statusCategory {_show(category)}, which is not "
                "new/indeterminate/done; map it under `statuses` in the config",
                field="status",
            )
        return name, found

    def _jira_category(self, category: Any, status_id: str) -> StatusCategory | None:
        if isinstance(category, dict):
            by_key = JIRA_CATEGORY.get(str(category.get("key", "")).lower())
            if by_key is not None:
                return by_key
            by_name = JIRA_CATEGORY_NAMES.get(str(category.get("name", "")).lower())
            if by_name is not None:
                return by_name
        known = self.facts.status_categories.get(status_id)
        return JIRA_CATEGORY.get(known.lower()) if known else None

    def category_of_status(self, status_id: str | None, name: str | None) -> str | None:
        """The LPM category of a status seen in a changelog (overrides, then discovered facts)."""
        if name and name.casefold() in self._statuses:
            return self._statuses[name.casefold()].value
        found = self._jira_category(None, status_id or "")
        return found.value if found else None

    def _parent(self, raw: dict[str, Any], fields: dict[str, Any]) -> str | None:
        parent = fields.get("parent")
        if isinstance(parent, dict) and parent.get("id") not in (None, ""):
            return str(parent["id"])
        for attr in ("parent_link", "epic_link"):
            link = self.facts.fields.get(attr)
            if link is None:
                continue
            value = fields.get(link.id)
            if value in (None, "", {}):
                continue
            return self._issue_ref(raw, value, link)
        return None

    def _issue_ref(self, raw: dict[str, Any], value: Any, link: JiraField) -> str:
        """An issue id from a link field: {data: {id}}, {id}, an id, or a key the connector
        resolved."""
        if isinstance(value, dict):
            inner = value.get("data", value)
            if isinstance(inner, dict):
                if inner.get("id") not in (None, ""):
                    return str(inner["id"])
                value = inner.get("key")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return str(value)
        if isinstance(value, str) and value:
            resolved = (
                raw.get(KEY_IDS, {}).get(value) if isinstance(raw.get(KEY_IDS), dict) else None
            )
            if resolved:
                return str(resolved)
            raise MappingError(
                f"{link.name} ({link.id}): issue key {value!r} could not be resolved to an issue "
                "(deleted, or not visible to the API user)",
                field=link.id,
            )
        raise MappingError(f"{link.name} ({link.id}): not an issue reference: {_show(value)}")

    def _number(self, fields: dict[str, Any], attr: str) -> float | None:
        spec = self.facts.fields.get(attr)
        if spec is None:
            return None
        return number_value(fields.get(spec.id), spec)

    def _text(self, fields: dict[str, Any], attr: str) -> str | None:
        spec = self.facts.fields.get(attr)
        if spec is None:
            return None
        return text_value(fields.get(spec.id), spec)

    def _date(self, fields: dict[str, Any], attr: str) -> date | None:
        spec = self.facts.fields.get(attr)
        if spec is None:
            return None
        value = fields.get(spec.id)
        if value in (None, ""):
            return None
        if isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                pass
        raise MappingError(f"{_label(spec)}: not a date: {_show(value)}", field=spec.id)

    def _flagged(self, fields: dict[str, Any]) -> bool:
        spec = self.facts.fields.get("flagged")
        if spec is None:
            return False
        value = fields.get(spec.id)
        if isinstance(value, str):
            return value.strip().lower() not in ("", "no", "false")
        return bool(value)

    def _category(self, fields: dict[str, Any], item_type: str) -> Category | None:
        """By category field value, then label, then item type; None when nothing says (roll-ups
        may inherit it from the parent, as SAFe sets it on epics and features)."""
        candidates: list[str] = []
        spec = self.facts.fields.get("category")
        if spec is not None:
            value = text_value(fields.get(spec.id), spec)
            if value is not None:
                found = self._category_named(value)
                if found is None:
                    raise MappingError(
                        f"{_label(spec)}: {value!r} is not an investment category (map it under "
                        "`categories`, or use business / enabler / maintenance)",
                        field=spec.id,
                    )
                return found
        labels = fields.get("labels")
        if isinstance(labels, list):
            candidates += [str(label) for label in labels]
        candidates.append(item_type)
        for candidate in candidates:
            found = self._categories.get(candidate.casefold())
            if found is not None:
                return found
        return None

    def _category_named(self, value: str) -> Category | None:
        found = self._categories.get(value.casefold())
        if found is not None:
            return found
        try:
            return Category(value.strip().lower())
        except ValueError:
            return None

    def _portfolio_state(
        self, fields: dict[str, Any], level: Level, status: str
    ) -> PortfolioState | None:
        spec = self.facts.fields.get("portfolio_state")
        if spec is not None:
            value = text_value(fields.get(spec.id), spec)
            return _portfolio_state_named(value) if value else None
        if level is not Level.epic:
            return None
        return _portfolio_state_named(status)

    def _rank(self, fields: dict[str, Any]) -> str | None:
        spec = self.facts.fields.get("rank") or self.facts.rank_field
        if spec is None:
            return None
        value = fields.get(spec.id)
        return str(value) if value not in (None, "") else None

    def _writeback_values(self, fields: dict[str, Any], rank: str | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for attr, spec in self.facts.writeback.items():
            raw_value = fields.get(spec.id)
            if spec.type == "number":
                values[attr] = number_value(raw_value, spec)
            else:
                values[attr] = text_value(raw_value, spec)
        if self.source.writeback.rank:
            values["rank"] = rank
        return values

    # --- history ---------------------------------------------------------------------------

    def history(self, raw: dict[str, Any]) -> list[HistoryChange]:
        """Changelog entries as LPM attribute changes, with status_category next to status."""
        changelog = raw.get("changelog")
        histories = changelog.get("histories") if isinstance(changelog, dict) else None
        if not isinstance(histories, list):
            return []
        changes: list[HistoryChange] = []
        for entry in histories:
            if not isinstance(entry, dict) or entry.get("id") in (None, ""):
                continue
            at = _required_datetime(entry.get("created"), "changelog.created")
            for item in entry.get("items") or ():
                if isinstance(item, dict):
                    changes += self._changes(str(entry["id"]), at, item)
        return changes

    def _changes(self, change_id: str, at: datetime, item: dict[str, Any]) -> list[HistoryChange]:
        field_id = str(item.get("fieldId") or "")
        name = str(item.get("field") or "")
        before, after = item.get("fromString"), item.get("toString")

        def change(attr: str, old: Any, new: Any) -> HistoryChange:
            return HistoryChange(
                change_id=change_id,
                changed_at=at,
                field=attr,
                from_value=None if old in (None, "") else str(old),
                to_value=None if new in (None, "") else str(new),
            )

        if field_id == "status" or (not field_id and name.lower() == "status"):
            return [
                change("status", before, after),
                change(
                    "status_category",
                    self.category_of_status(_opt_str(item.get("from")), before),
                    self.category_of_status(_opt_str(item.get("to")), after),
                ),
            ]
        if field_id == "parent" or name in ("IssueParentAssociation", "Parent"):
            return [change(PARENT_FIELD, item.get("from"), item.get("to"))]
        if name == "Key" and not field_id:
            return [change("key", before, after)]
        attr = self._by_field_id.get(field_id)
        if attr in ("epic_link", "parent_link"):
            return [change(PARENT_FIELD, item.get("from"), item.get("to"))]
        if attr in NUMBER_ATTRS:
            return [change(attr, _number_text(before), _number_text(after))]
        if attr in TEXT_ATTRS:
            return [change(attr, before, after)]
        if attr == "category":
            return [change(attr, self._category_text(before), self._category_text(after))]
        owned = self._by_writeback_id.get(field_id)
        if owned is not None:
            # Changes of the fields lpm-sync writes (wsjf, health, progress): the record of
            # which values landed when, for the write-back ledger (warehouse/writeback.py).
            return [change(owned, before, after)]
        return []

    def _category_text(self, value: Any) -> str | None:
        if value in (None, ""):
            return None
        found = self._category_named(str(value))
        return found.value if found else str(value)


# --- value shapes ---------------------------------------------------------------------------


def stored_payload(raw: dict[str, Any]) -> dict[str, Any]:
    """The payload kept in the warehouse: the issue as Jira sent it, without the changelog
    (stored as history) and the connector's key annotations, so full and incremental agree."""
    return {k: v for k, v in raw.items() if k not in ("changelog", KEY_IDS)}


def number_value(value: Any, spec: JiraField) -> float | None:
    """A number field: a JSON number, a numeric string, or an option holding one."""
    if value is None or value == "":
        return None
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, bool):
        raise MappingError(f"{_label(spec)}: expected a number, got {_show(value)}", field=spec.id)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise MappingError(
                f"{_label(spec)}: expected a number, got {_show(value)}", field=spec.id
            ) from None
    else:
        raise MappingError(f"{_label(spec)}: expected a number, got {_show(value)}", field=spec.id)
    if not math.isfinite(number):
        raise MappingError(f"{_label(spec)}: not a finite number: {_show(value)}", field=spec.id)
    return number


def text_value(value: Any, spec: JiraField) -> str | None:
    """A text reading of any field shape: string, option, user, team, version, sprint, ADF.

    Arrays give their last meaningful element (the latest fix version or sprint)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        texts = [t for t in (text_value(v, spec) for v in _sprint_order(value)) if t]
        return texts[-1] if texts else None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return adf_text(value) or None
        for key in ("value", "name", "title", "displayName", "key"):
            found = value.get(key)
            if isinstance(found, str) and found:
                return found
        child = value.get("child")
        if isinstance(child, dict):
            return text_value(child, spec)
    raise MappingError(f"{_label(spec)}: cannot read a value from {_show(value)}", field=spec.id)


def _sprint_order(values: list[Any]) -> list[Any]:
    """Sprints sorted so the latest (active or future, else the last closed) comes last."""
    if not all(isinstance(v, dict) and "state" in v for v in values):
        return values
    order = {"closed": 0, "active": 1, "future": 2}
    return sorted(values, key=lambda v: (order.get(str(v.get("state")).lower(), 0), v.get("id", 0)))


def adf_text(node: Any) -> str:
    """Plain text of an Atlassian Document Format tree (Cloud rich-text fields)."""
    if isinstance(node, dict):
        if node.get("type") == "text":
            return str(node.get("text", ""))
        parts = [adf_text(child) for child in node.get("content") or ()]
        separator = "\n" if node.get("type") in ("doc", "bulletList", "orderedList") else ""
        return separator.join(p for p in parts if p)
    if isinstance(node, list):
        return "".join(adf_text(child) for child in node)
    return ""


def parse_jira_datetime(value: Any) -> datetime | None:
    """Jira timestamps: `2026-11-20T14:05:33.123+0100`, ISO with `Z`, or epoch (s or ms)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= 100_000_000_000 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def _datetime(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_jira_datetime(value)
    if parsed is None:
        raise MappingError(f"{name}: not a timestamp with a time zone: {_show(value)}", field=name)
    return parsed


def _required_datetime(value: Any, name: str) -> datetime:
    parsed = _datetime(value, name)
    if parsed is None:
        raise MappingError(f"{name}: missing", field=name)
    return parsed


def _required_text(value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{name}: missing or empty (got {_show(value)})", field=name)
    return value


def _name(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else None


def _opt_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _number_text(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(float(value))
    except (TypeError, ValueError):
        return str(value)


def _portfolio_state_named(value: str | None) -> PortfolioState | None:
    """`Portfolio Backlog` -> backlog: the state whose name ends the status or field value."""
    if not value:
        return None
    words = value.strip().lower().split()
    for state in PortfolioState:
        if words and words[-1] == state.value:
            return state
    return None


def _label(spec: JiraField) -> str:
    return spec.name if spec.name == spec.id else f"{spec.name} ({spec.id})"


def _show(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
