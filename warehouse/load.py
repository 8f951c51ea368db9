"""Loading mapped items into the warehouse: the one write path every connector's sync uses.

A batch is an idempotent upsert keyed by (source, external id). Each row carries a content hash,
so an unchanged item costs its share of one indexed read and no write. One query per batch reads
the stored rows of the batch and of the parents it names. Changed rows go to the database in one
statement compiled once: on SQLite the driver's executemany of `INSERT .. ON CONFLICT`, on
PostgreSQL a COPY into a temp table merged by one `INSERT .. SELECT .. ON CONFLICT` (see
`_BulkWrite` and benchmarks/RESULTS.md). A batch, its `sync_run` counters, its history rows and
the source watermark commit in one transaction: a sync killed between batches resumes from the
last committed watermark and neither loses nor duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    String,
    Table,
    UniqueConstraint,
    Update,
    any_,
    bindparam,
    column,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from mapping.model import Objective, Quarantined, WorkItem
from warehouse import models
from warehouse.models import table_of
from warehouse.storable import ESCAPED_NUL, storable

TRACKED_FIELDS = (
    "key",
    "level",
    "status",
    "status_category",
    "parent_external_id",
    "estimate",
    "business_value",
    "time_criticality",
    "risk_reduction",
    "job_size",
    "team",
    "art",
    "increment",
    "category",
    "portfolio_state",
)
"""Fields whose changes are kept in `work_item_history` even when no changelog reports them."""

HISTORY_COLUMNS = ("work_item_id", "change_id", "changed_at", "field", "from_value", "to_value")
_KEY_COLUMNS = {"source_id", "external_id"}
ITEM_COLUMNS = tuple(col.name for col in table_of(models.WorkItem).columns if col.name != "id")

_READ_CHUNK = 500


@dataclass
class BatchCounts:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    history: int = 0


def content_hash(document: dict[str, Any]) -> str:
    return _hashed(document)["content_hash"]


def _hashed(document: dict[str, Any]) -> dict[str, Any]:
    """The row with storable text (warehouse/storable.py) and its content hash. The encoding
    that is hashed also tells whether any text holds a NUL: a second pass only then."""
    encoded = orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    if ESCAPED_NUL in encoded:
        document = storable(document)
        encoded = orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return {**document, "content_hash": hashlib.blake2b(encoded, digest_size=16).hexdigest()}


def work_item_row(item: WorkItem, source_id: int, synced_at: datetime) -> dict[str, Any]:
    """The `work_item` row for a mapped item (without `id` and `parent_id`)."""
    # The model's own field values, as `model_dump` would give them, without its deep copy.
    document = item.__dict__.copy()
    del document["raw"], document["history"]
    row = _hashed(document)
    row.update(source_id=source_id, raw=item.raw, synced_at=synced_at, deleted_at=None)
    return row


def objective_row(objective: Objective, source_id: int) -> dict[str, Any]:
    row = _hashed(objective.model_dump(exclude={"raw"}))
    row.update(source_id=source_id, raw=objective.raw, deleted_at=None)
    return row


def ensure_source(engine: Engine, name: str, kind: str, url: str) -> int:
    """The warehouse id of a configured source, registering or updating it as needed."""
    table = table_of(models.Source)
    with engine.begin() as conn:
        found = conn.execute(select(table.c.id).where(table.c.name == name)).scalar()
        if found is None:
            stmt = _insert(conn, table).values(name=name, kind=kind, url=url)
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
            found = conn.execute(select(table.c.id).where(table.c.name == name)).scalar_one()
        else:
            conn.execute(update(table).where(table.c.id == found).values(kind=kind, url=url))
        return int(found)


def start_run(engine: Engine, source_id: int, mode: str) -> int:
    table = table_of(models.SyncRun)
    with engine.begin() as conn:
        result = conn.execute(
            table.insert().values(
                source_id=source_id,
                started_at=datetime.now(UTC),
                status="running",
                mode=mode,
                fetched=0,
                inserted=0,
                updated=0,
                unchanged=0,
                deleted=0,
                quarantined=0,
            )
        )
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])


def finish_run(engine: Engine, run_id: int, status: str, error: str | None = None) -> None:
    table = table_of(models.SyncRun)
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.id == run_id)
            .values(status=status, finished_at=datetime.now(UTC), error=error)
        )


@dataclass(frozen=True)
class UnfinishedRun:
    id: int
    mode: str
    cursor: dict[str, Any] | None


def unfinished_run(engine: Engine, source_id: int) -> UnfinishedRun | None:
    """The source's latest run if it was killed (still `running`) or failed: one to resume."""
    table = table_of(models.SyncRun)
    with engine.connect() as conn:
        row = conn.execute(
            select(table.c.id, table.c.mode, table.c.cursor, table.c.status)
            .where(table.c.source_id == source_id)
            .order_by(table.c.id.desc())
            .limit(1)
        ).first()
    if row is None or row.status not in ("running", "failed"):
        return None
    return UnfinishedRun(int(row.id), row.mode, row.cursor)


def resume_run(engine: Engine, run_id: int) -> None:
    """Mark an unfinished run as running again, to continue it from its cursor."""
    table = table_of(models.SyncRun)
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.id == run_id)
            .values(status="running", finished_at=None, error=None)
        )


def last_watermark(engine: Engine, source_id: int) -> datetime | None:
    """The newest watermark committed by any run of the source, finished or killed."""
    table = table_of(models.SyncRun)
    with engine.connect() as conn:
        return conn.execute(
            select(func.max(table.c.watermark)).where(table.c.source_id == source_id)
        ).scalar()


def load_batch(
    engine: Engine,
    run_id: int,
    source_id: int,
    items: Sequence[WorkItem],
    *,
    objectives: Sequence[Objective] = (),
    quarantined: Sequence[Quarantined] = (),
    watermark: datetime | None = None,
    cursor: dict[str, Any] | None = None,
) -> BatchCounts:
    """Upsert one batch and advance the run's counters and watermark, all in one transaction."""
    now = datetime.now(UTC)
    latest: dict[str, WorkItem] = {}
    for item in items:
        kept = latest.get(item.external_id)
        if kept is None or item.updated_at >= kept.updated_at:
            latest[item.external_id] = item
    ordered = [latest[key] for key in sorted(latest)]
    counts = BatchCounts(fetched=len(items) + len(objectives) + len(quarantined))
    with engine.begin() as conn:
        _load_work_items(conn, source_id, ordered, now, counts)
        _load_objectives(conn, source_id, objectives, counts)
        _quarantine(conn, run_id, source_id, quarantined, now, counts)
        _advance_run(conn, run_id, counts, watermark, cursor)
    return counts


def _load_work_items(
    conn: Connection,
    source_id: int,
    items: list[WorkItem],
    now: datetime,
    counts: BatchCounts,
) -> None:
    if not items:
        return
    sql = _statements(conn)
    rows = [work_item_row(item, source_id, now) for item in items]
    parents = {row["parent_external_id"] for row in rows if row["parent_external_id"]}
    # One read for the batch's own rows (hash, old values) and for the parents it names.
    found = _existing(conn, source_id, [row["external_id"] for row in rows], parents)
    write: list[dict[str, Any]] = []
    new_ids: list[str] = []
    revived: list[str] = []
    for row in rows:
        old = found.get(row["external_id"])
        if old is None:
            new_ids.append(row["external_id"])
            write.append(row)
        elif old["deleted_at"] is not None:
            revived.append(row["external_id"])
            write.append(row)
        elif old["content_hash"] != row["content_hash"]:
            write.append(row)
    counts.inserted += len(new_ids)
    counts.updated += len(write) - len(new_ids)
    counts.unchanged += len(rows) - len(write)
    if write:
        for row in write:
            parent = found.get(row["parent_external_id"] or "")
            row["parent_id"] = parent["id"] if parent is not None else None
        _bulk_writes(conn)[0].execute(conn, write)
        _refresh_statistics(conn, sql.work_item)
        _retire_other_kind(conn, table_of(models.Objective), source_id, new_ids + revived, now)
        if new_ids:
            conn.execute(sql.link_children, {"src": source_id, "keys": _keys(conn, new_ids)})
    # An unchanged item's changelog is stored too: a fetch without changelog (a Jira full sync)
    # may have loaded the item's latest state first, and then this changelog is its only history.
    written = {row["external_id"] for row in write}
    historied = [item for item in items if item.external_id in written or item.history]
    if not historied:
        return
    ids = {
        item.external_id: found[item.external_id]["id"]
        for item in historied
        if item.external_id in found
    }
    # Old values only of the written rows: an unchanged row has no untold changes to record.
    existing = {key: found[key] for key in written if key in found}
    unknown = [
        item.external_id for item in historied if item.history and item.external_id not in ids
    ]
    if unknown:
        ids.update((key, row["id"]) for key, row in _existing(conn, source_id, unknown, ()).items())
    history = _history_rows(historied, ids, existing)
    if history:
        counts.history += _bulk_writes(conn)[1].execute(conn, history)


def _existing(
    conn: Connection, source_id: int, external_ids: list[str], parents: Iterable[str]
) -> dict[str, Any]:
    """The stored rows (id, hash, tracked fields) of these external ids and of the parents."""
    wanted = set(external_ids).union(parents)
    result = conn.execute(
        _statements(conn).existing, {"src": source_id, "keys": _keys(conn, sorted(wanted))}
    )
    return {row["external_id"]: row for row in result.mappings()}


def _keys(conn: Connection, values: list[str]) -> Any:
    """A list of ids as one bound value: an array on PostgreSQL, a JSON array on SQLite."""
    if conn.dialect.name == "postgresql":
        return values
    return orjson.dumps(values).decode()


def _history_rows(
    items: Iterable[WorkItem], ids: dict[str, int], existing: dict[str, Any]
) -> list[dict[str, Any]]:
    """Changelog entries as given, plus a row per tracked field the changelog did not explain."""
    rows: list[dict[str, Any]] = []
    for item in items:
        old = existing.get(item.external_id)
        if old is None and not item.history:
            continue
        work_item_id = ids[item.external_id]
        for change in item.history:
            rows.append(
                {
                    "work_item_id": work_item_id,
                    "change_id": storable(change.change_id),
                    "changed_at": change.changed_at,
                    "field": storable(change.field),
                    "from_value": storable(change.from_value),
                    "to_value": storable(change.to_value),
                }
            )
        if old is None:
            continue
        explained = {c.field for c in item.history if c.changed_at >= old["updated_at"]}
        for field in TRACKED_FIELDS:
            before, after = _text(old[field]), _text(getattr(item, field))
            if before != after and field not in explained:
                rows.append(
                    {
                        "work_item_id": work_item_id,
                        "change_id": f"sync:{item.updated_at.isoformat()}",
                        "changed_at": item.updated_at,
                        "field": field,
                        "from_value": before,
                        "to_value": after,
                    }
                )
    return rows


def _text(value: Any) -> str | None:
    """A tracked field as history text, as stored (so a value compares equal to its row's)."""
    if value is None:
        return None
    if hasattr(value, "value"):
        return str(value.value)
    text: str = storable(str(value))
    return text


def _load_objectives(
    conn: Connection, source_id: int, objectives: Sequence[Objective], counts: BatchCounts
) -> None:
    if not objectives:
        return
    table = table_of(models.Objective)
    rows = [objective_row(objective, source_id) for objective in objectives]
    known = {
        external_id: (digest, deleted_at)
        for external_id, digest, deleted_at in conn.execute(
            select(table.c.external_id, table.c.content_hash, table.c.deleted_at).where(
                table.c.source_id == source_id,
                table.c.external_id.in_([row["external_id"] for row in rows]),
            )
        )
    }
    # New, changed, or back after being marked deleted (e.g. its type was a work item's).
    write = [row for row in rows if known.get(row["external_id"]) != (row["content_hash"], None)]
    revived = [
        row["external_id"]
        for row in write
        if row["external_id"] not in known or known[row["external_id"]][1] is not None
    ]
    _retire_other_kind(conn, table_of(models.WorkItem), source_id, revived, datetime.now(UTC))
    counts.inserted += sum(1 for row in write if row["external_id"] not in known)
    counts.updated += sum(1 for row in write if row["external_id"] in known)
    counts.unchanged += len(rows) - len(write)
    if write:
        stmt = _insert(conn, table)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["source_id", "external_id"],
                set_={
                    column.name: stmt.excluded[column.name]
                    for column in table.columns
                    if column.name not in {"id", "source_id", "external_id"}
                },
            ),
            write,
        )


def _retire_other_kind(
    conn: Connection, other: Table, source_id: int, external_ids: list[str], now: datetime
) -> None:
    """An item whose type changed between a work item type and an objective type is live in
    one table only: its row of the old kind gets `deleted_at` (never a DELETE)."""
    if external_ids:
        conn.execute(
            _statements(conn).retire[other.name],
            {"src": source_id, "keys": _keys(conn, external_ids), "now": now},
        )


def _quarantine(
    conn: Connection,
    run_id: int,
    source_id: int,
    quarantined: Sequence[Quarantined],
    now: datetime,
    counts: BatchCounts,
) -> None:
    if not quarantined:
        return
    table = table_of(models.Quarantine)
    # A resumed run may fetch an item again: keep one row per item and run.
    replaced = conn.execute(
        table.delete().where(
            table.c.sync_run_id == run_id,
            table.c.external_id.in_([quarantine_id(entry) for entry in quarantined]),
        )
    ).rowcount
    conn.execute(
        table.insert(),
        [
            {
                "sync_run_id": run_id,
                "source_id": source_id,
                "external_id": quarantine_id(entry),
                "error": storable(entry.error),
                "payload": entry.payload,
                "created_at": now,
            }
            for entry in quarantined
        ],
    )
    counts.quarantined += len(quarantined) - max(replaced, 0)


def quarantine_id(entry: Quarantined) -> str:
    """The id a quarantined item is kept under: whatever the payload had in its id field, cut
    to the column's 64 characters and marked so with an ellipsis (a malformed id must not fail
    its batch; the payload is kept whole)."""
    text: str = storable(entry.external_id)
    return text if len(text) <= 64 else text[:63] + "\u2026"


def _advance_run(
    conn: Connection,
    run_id: int,
    counts: BatchCounts,
    watermark: datetime | None,
    cursor: dict[str, Any] | None,
) -> None:
    table = table_of(models.SyncRun)
    values: dict[str, Any] = {
        "fetched": table.c.fetched + counts.fetched,
        "inserted": table.c.inserted + counts.inserted,
        "updated": table.c.updated + counts.updated,
        "unchanged": table.c.unchanged + counts.unchanged,
        "quarantined": table.c.quarantined + counts.quarantined,
    }
    if watermark is not None:
        values["watermark"] = watermark
    if cursor is not None:
        values["cursor"] = cursor
    conn.execute(update(table).where(table.c.id == run_id).values(**values))


@dataclass(frozen=True)
class ScopeDiff:
    """A source's live rows against the tracker's listing of its scope (the reconcile)."""

    gaps: list[str]
    """Ids in scope without a live item or objective, in code-point order: to fetch."""
    gone: dict[str, list[int]]
    """Table name -> row ids of live rows out of scope: to mark deleted."""


def compare_scope(engine: Engine, source_id: int, in_scope: Iterable[str]) -> ScopeDiff:
    """One scan of the source's live ids (both tables) serves the gaps and the deletes."""
    scope = set(in_scope)
    live: set[str] = set()
    gone: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for target in (table_of(models.WorkItem), table_of(models.Objective)):
            rows = _driver_rows(
                conn,
                select(target.c.id, target.c.external_id).where(
                    target.c.source_id == source_id, target.c.deleted_at.is_(None)
                ),
            )
            live.update(external_id for _, external_id in rows)
            gone[target.name] = [row_id for row_id, external_id in rows if external_id not in scope]
    return ScopeDiff(gaps=sorted(scope - live), gone=gone)


def _driver_rows(conn: Connection, query: Select[Any]) -> list[tuple[Any, ...]]:
    """A query's rows as the driver's plain tuples, for scans of every row of a source: no
    result-row objects (two thirds of the time of a 100,000-row scan on SQLite). Only for
    columns the driver returns as their Python values (integers, text)."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    positions = compiled.positiontup
    args = tuple(params[name] for name in positions) if positions is not None else params
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def mark_deleted(engine: Engine, run_id: int, gone: Mapping[str, Sequence[int]]) -> int:
    """Set `deleted_at` on these rows (never a DELETE) and count them on the run."""
    now = datetime.now(UTC)
    deleted = 0
    with engine.begin() as conn:
        for target in (table_of(models.WorkItem), table_of(models.Objective)):
            ids = list(gone.get(target.name, ()))
            for start in range(0, len(ids), _READ_CHUNK):
                conn.execute(
                    update(target)
                    .where(target.c.id.in_(ids[start : start + _READ_CHUNK]))
                    .values(deleted_at=now)
                )
            deleted += len(ids)
        run = table_of(models.SyncRun)
        conn.execute(update(run).where(run.c.id == run_id).values(deleted=run.c.deleted + deleted))
    return deleted


def mark_missing_deleted(
    engine: Engine, run_id: int, source_id: int, present: Iterable[str]
) -> int:
    """Reconcile: items of the source not in `present` get `deleted_at` (never a DELETE)."""
    return mark_deleted(engine, run_id, compare_scope(engine, source_id, present).gone)


def _refresh_statistics(conn: Connection, table: Table) -> None:
    """ANALYZE a PostgreSQL table once it has grown past twice what its statistics describe.

    A first load fills an empty table within seconds, long before autovacuum analyzes it; the
    planner then keeps believing the table is tiny and scans a whole source per lookup.
    """
    if conn.dialect.name != "postgresql":
        return
    described, live = conn.execute(
        text(
            "SELECT c.reltuples, s.n_live_tup FROM pg_class c "
            "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(:name)"
        ),
        {"name": table.name},
    ).one()
    if live > 2 * max(described, 500):
        indexed = {column.name for index in table.indexes for column in index.columns}
        unique = {
            column.name
            for constraint in table.constraints
            if isinstance(constraint, UniqueConstraint)
            for column in constraint.columns
        }
        conn.execute(text(f"ANALYZE {table.name} ({', '.join(sorted(indexed | unique))})"))


class _BulkWrite:
    """A batch of rows written by one statement compiled once, bypassing SQLAlchemy's generic
    per-row parameter handling (half the CPU time of a first load; benchmarks/RESULTS.md).

    Each value still goes through its column type's bind processor, as `conn.execute` would.
    SQLite: the driver's executemany of the `INSERT .. ON CONFLICT` (SQLite runs it in C).
    PostgreSQL: the rows are COPY'd into a session temp table (emptied at commit), then merged
    by one `INSERT .. SELECT .. ON CONFLICT` in key order, so concurrent loads of the same rows
    wait on each other row by row and never deadlock.
    """

    def __init__(self, table: Table, names: Sequence[str], merge: Any, dialect: Dialect) -> None:
        postgres = dialect.name == "postgresql"
        compiled = merge.compile(dialect=dialect, column_keys=None if postgres else list(names))
        self.sql = str(compiled)
        positions = None if postgres else compiled.positiontup
        self.names = tuple(positions) if positions is not None else tuple(names)
        self.processors = [
            (index, processor)
            for index, name in enumerate(self.names)
            if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        ]
        self.values = itemgetter(*self.names)
        self.postgres = postgres
        quote = dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in self.names)
        staged = _staged_name(table)
        self.stage = (
            f"CREATE TEMP TABLE IF NOT EXISTS {staged} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM {quote(table.name)} WITH NO DATA"
        )
        self.copy = f"COPY {staged} ({columns}) FROM STDIN"

    def execute(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
        """Write the rows; returns how many the database inserted or changed."""
        values, processors = self.values, self.processors
        converted: list[tuple[Any, ...]] = []
        for row in rows:
            params = list(values(row))
            for index, processor in processors:
                if params[index] is not None:
                    params[index] = processor(params[index])
            converted.append(tuple(params))
        if not self.postgres:
            return int(conn.exec_driver_sql(self.sql, converted).rowcount)
        conn.exec_driver_sql(self.stage)
        cursor = conn.connection.cursor()
        try:
            with cursor.copy(self.copy) as copy:
                for record in converted:
                    copy.write_row(record)
        finally:
            cursor.close()
        return int(conn.exec_driver_sql(self.sql).rowcount)


def _staged_name(table: Table) -> str:
    return f"lpm_staged_{table.name}"


@dataclass(frozen=True)
class _Statements:
    """The loader's statements, built once per dialect: building them (the `excluded` and
    parent aliases, the column lists) cost more per batch than running some of them."""

    work_item: Table
    existing: Select[Any]
    upsert: Any
    link_children: Update
    history: Any
    retire: dict[str, Update]


_BULK_WRITES: WeakKeyDictionary[Dialect, tuple[_BulkWrite, _BulkWrite]] = WeakKeyDictionary()


def _bulk_writes(conn: Connection) -> tuple[_BulkWrite, _BulkWrite]:
    """The work item upsert and the history insert for this engine's dialect (whose JSON
    serializer the bind processors use)."""
    dialect = conn.dialect
    found = _BULK_WRITES.get(dialect)
    if found is None:
        sql = _statements(conn)
        history = table_of(models.WorkItemHistory)
        found = (
            _BulkWrite(sql.work_item, ITEM_COLUMNS, sql.upsert, dialect),
            _BulkWrite(history, HISTORY_COLUMNS, sql.history, dialect),
        )
        _BULK_WRITES[dialect] = found
    return found


def _statements(conn: Connection) -> _Statements:
    return _statements_for(conn.dialect.name)


@cache
def _statements_for(dialect: str) -> _Statements:
    table = table_of(models.WorkItem)
    source_id = bindparam("src", type_=table.c.source_id.type)

    def among(target: Any) -> Any:
        """`target` is one of the bound `keys`: one parameter however many keys (no
        IN-list of thousands of placeholders to render, no chunking)."""
        if dialect == "postgresql":
            return target == any_(bindparam("keys", type_=postgresql.ARRAY(String())))
        keys = func.json_each(bindparam("keys", type_=String())).table_valued("value")
        return target.in_(select(keys.c.value))

    columns = [table.c.id, table.c.external_id, table.c.content_hash, table.c.deleted_at]
    columns += [table.c[name] for name in TRACKED_FIELDS]
    columns.append(table.c.updated_at)
    existing = select(*columns).where(table.c.source_id == source_id, among(table.c.external_id))

    stmt = _dialect_insert(dialect, table)
    if dialect == "postgresql":
        staged = sql_table(_staged_name(table), *(column(name) for name in ITEM_COLUMNS))
        stmt = stmt.from_select(ITEM_COLUMNS, select(*staged.c).order_by(staged.c.external_id))
    upsert = stmt.on_conflict_do_update(
        index_elements=["source_id", "external_id"],
        set_={name: stmt.excluded[name] for name in ITEM_COLUMNS if name not in _KEY_COLUMNS},
        where=or_(
            table.c.content_hash != stmt.excluded.content_hash,
            table.c.deleted_at.is_not(None),
        ),
    )

    # Rows waiting for a parent that has just arrived (in this batch or an earlier one). A row
    # names a new parent only if it was written before that parent existed, so its `parent_id`
    # is still empty: no `parent_id IS NULL` test, which would lure SQLite's planner onto the
    # `parent_id` index.
    parent = table.alias("parent")
    parent_id = (
        select(parent.c.id)
        .where(
            parent.c.source_id == table.c.source_id,
            parent.c.external_id == table.c.parent_external_id,
        )
        .scalar_subquery()
    )
    link_children = (
        update(table)
        .where(table.c.source_id == source_id, among(table.c.parent_external_id))
        .values(parent_id=parent_id)
    )

    history_table = table_of(models.WorkItemHistory)
    history = _dialect_insert(dialect, history_table)
    if dialect == "postgresql":
        staged = sql_table(_staged_name(history_table), *(column(n) for n in HISTORY_COLUMNS))
        key = (staged.c.work_item_id, staged.c.change_id, staged.c.field)
        history = history.from_select(HISTORY_COLUMNS, select(*staged.c).order_by(*key))
    history = history.on_conflict_do_nothing(index_elements=["work_item_id", "change_id", "field"])
    retire = {
        other.name: update(other)
        .where(
            other.c.source_id == source_id,
            among(other.c.external_id),
            other.c.deleted_at.is_(None),
        )
        .values(deleted_at=bindparam("now", type_=other.c.deleted_at.type))
        for other in (table, table_of(models.Objective))
    }
    return _Statements(table, existing, upsert, link_children, history, retire)


def _insert(conn: Connection, table: Table) -> Any:
    return _dialect_insert(conn.dialect.name, table)


def _dialect_insert(dialect: str, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"warehouse dialect {dialect!r} is not supported")
