"""The working space of one analytics run: temporary tables and the SQL spellings that differ.

Analytics run as plain SQL on SQLite and PostgreSQL alike. The few expressions the two dialects
spell differently (timestamps and dates as whole seconds or days since the epoch) live here, so
every metric is computed in integers and IEEE doubles and comes out bit-identical on both.
Temporary tables live for one transaction; `Scratch.drop_all` removes them before it commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, text
from sqlalchemy.types import TypeEngine

from warehouse.models import UTCDateTime

EPOCH = date(1970, 1, 1)


class Scratch:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise NotImplementedError(f"analytics do not support the {self.dialect!r} dialect")
        self._tables: list[str] = []
        self.key = "INTEGER" if self.dialect == "sqlite" else "BIGINT"
        """Type of an id primary key (on SQLite, INTEGER makes it the rowid)."""

    def seconds(self, column: str) -> str:
        """Whole seconds since 1970 of a stored timestamp (fractions are dropped).

        On PostgreSQL date_part gives a double, much cheaper than EXTRACT's numeric, and exact
        here: microseconds are coarser than a double's resolution at this magnitude.
        """
        if self.dialect == "sqlite":
            return f"CAST(strftime('%s', {column}) AS INTEGER)"
        return f"CAST(FLOOR(date_part('epoch', {column})) AS BIGINT)"

    def days(self, column: str) -> str:
        """Days since 1970 of a stored date."""
        if self.dialect == "sqlite":
            return f"CAST(julianday({column}) - 2440587.5 AS INTEGER)"
        return f"({column} - DATE '1970-01-01')"

    def statement(self, sql: str, times: Mapping[str, datetime] | None = None) -> TextClause:
        """`sql` as a statement; `times` are bound as stored timestamps (UTC, like the models)."""
        statement = text(sql)
        if times:
            statement = statement.bindparams(
                *(bindparam(name, value, type_=UTCDateTime()) for name, value in times.items())
            )
        return statement

    @property
    def materialise(self) -> str:
        """Appended to a subquery, keeps the planner from inlining it, so each of its columns is
        computed once per row however many outer expressions use it."""
        return " LIMIT -1 OFFSET 0" if self.dialect == "sqlite" else " OFFSET 0"

    def run(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        times: Mapping[str, datetime] | None = None,
    ) -> Any:
        return self.conn.execute(self.statement(sql, times), dict(params or {}))

    def run_many(
        self,
        sql: str,
        rows: Sequence[Mapping[str, Any]],
        types: Mapping[str, TypeEngine[Any]] | None = None,
    ) -> None:
        """One statement over many rows; `types` names the parameters that need a column type."""
        statement = text(sql)
        if types:
            statement = statement.bindparams(
                *(bindparam(name, type_=type_) for name, type_ in types.items())
            )
        self.conn.execute(statement, [dict(row) for row in rows])

    def create(
        self,
        name: str,
        select: str,
        params: Mapping[str, Any] | None = None,
        *,
        times: Mapping[str, datetime] | None = None,
        indexes: Sequence[str] = (),
    ) -> None:
        """CREATE TEMPORARY TABLE name AS select, then its indexes."""
        self.run(f"CREATE TEMPORARY TABLE {name} AS {select}", params, times=times)
        self._tables.append(name)
        self.index(name, indexes)

    def declare(self, name: str, columns: str, *, indexes: Sequence[str] = ()) -> None:
        """An empty temporary table, for statements that append to it."""
        self.run(f"CREATE TEMPORARY TABLE {name} ({columns})")
        self._tables.append(name)
        self.index(name, indexes)

    def index(self, name: str, indexes: Sequence[str]) -> None:
        for columns in indexes:
            suffix = "_".join(column.strip() for column in columns.split(","))
            self.run(f"CREATE INDEX {name}_{suffix} ON {name} ({columns})")

    def analyze(self, name: str) -> None:
        """Column statistics for a temporary table PostgreSQL's planner would misjudge without
        (autovacuum never sees temporary tables)."""
        if self.dialect == "postgresql":
            self.run(f"ANALYZE {name}")

    def drop_all(self) -> None:
        for name in reversed(self._tables):
            self.run(f"DROP TABLE {name}")
        self._tables.clear()


def epoch_day(day: date) -> int:
    return (day - EPOCH).days
