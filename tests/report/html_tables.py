"""Reading the report back as a person sees it: its tables' cell texts, its tags, and the text
every value of the report's rows must show as (the page's display formats)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any

from flows.report import (
    BLANK,
    fmt_date,
    fmt_datetime,
    fmt_hours,
    fmt_number,
    fmt_percent,
    fmt_text,
)

PERCENT = {"progress", "share", "target_share", "deviation", "efficiency", "predictability"}


@dataclass
class Table:
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Tag:
    name: str
    attrs: dict[str, str]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, Table] = {}
        self.tags: list[Tag] = []
        self.ids: set[str] = set()
        self._table: Table | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append(Tag(tag, values))
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "table" and "data-table" in values:
            self._table = self.tables.setdefault(values["data-table"], Table())
        elif self._table is not None and tag == "th" and "data-col" in values:
            self._table.columns.append(values["data-col"])
        elif self._table is not None and tag == "tr":
            self._row = []
        elif self._row is not None and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row:
            self._table.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@dataclass
class Page:
    tables: dict[str, Table]
    tags: list[Tag]
    ids: set[str]


def read_page(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return Page(reader.tables, reader.tags, reader.ids)


def shown(column: str, value: Any) -> str:
    """The text the page shows for `value` in `column`."""
    if column == "breach":
        return "breached" if value else "kept"
    if column == "is_current":
        return "current" if value else ""
    if column == "hours_since_success":
        return fmt_hours(value)
    if column in PERCENT:
        return fmt_percent(value)
    if column == "wsjf":
        return fmt_number(value, 2)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, datetime):
        return fmt_datetime(value)
    if isinstance(value, date):
        return fmt_date(value)
    if value is None:
        return BLANK
    text = fmt_text(value)
    return " ".join(text.split())


def expected_rows(table: Table, rows: list[Any]) -> list[list[str]]:
    return [[shown(column, asdict(row)[column]) for column in table.columns] for row in rows]
