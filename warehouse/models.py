"""The warehouse tables. Names and columns of the DESIGN.md contract are relied on outside the code.

Timestamps are stored in UTC and always come back time-zone aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDocument = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone of its own).

    On SQLite the text written is SQLAlchemy's own DATETIME format ("YYYY-MM-DD
    HH:MM:SS.ffffff") made by `isoformat` (C) instead of a format dict per value, at half the
    cost: every loaded row carries several of these."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _in_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            # Four-digit year, six-digit fraction, then the "+00:00" cut off.
            return _in_utc(value).isoformat(" ", "microseconds")[:26]

        return process


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} cannot be stored; give it a time zone")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Source(Base):
    __tablename__ = "source"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))


def _live_ids_index() -> Index:
    """A source's live ids (partial: rows not marked deleted), for the delete reconcile of
    every sync to read from the index alone, never the rows with their raw payloads. SQLite
    covers a query only when the index holds every column it names, deleted_at included."""
    live = text("deleted_at IS NULL")
    return Index(
        None,
        "source_id",
        "external_id",
        "id",
        "deleted_at",
        sqlite_where=live,
        postgresql_where=live,
    )


class WorkItem(Base):
    __tablename__ = "work_item"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index(None, "parent_id"),
        Index(None, "level"),
        Index(None, "parent_external_id", "source_id"),
        _live_ids_index(),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    item_type: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(255))
    status_category: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("work_item.id"))
    parent_external_id: Mapped[str | None] = mapped_column(String(64))
    estimate: Mapped[float | None] = mapped_column(Float)
    business_value: Mapped[float | None] = mapped_column(Float)
    time_criticality: Mapped[float | None] = mapped_column(Float)
    risk_reduction: Mapped[float | None] = mapped_column(Float)
    job_size: Mapped[float | None] = mapped_column(Float)
    team: Mapped[str | None] = mapped_column(String(255))
    art: Mapped[str | None] = mapped_column(String(255))
    increment: Mapped[str | None] = mapped_column(String(255))
    category: Mapped[str | None] = mapped_column(String(16))
    portfolio_state: Mapped[str | None] = mapped_column(String(16))
    tracker_rank: Mapped[str | None] = mapped_column(String(255))
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    start_date: Mapped[date | None] = mapped_column(Date)
    target_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    writeback_values: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    content_hash: Mapped[str] = mapped_column(String(32))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime)
    raw: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


class WorkItemHistory(Base):
    __tablename__ = "work_item_history"
    __table_args__ = (
        UniqueConstraint("work_item_id", "change_id", "field"),
        Index(None, "work_item_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_item.id"))
    change_id: Mapped[str] = mapped_column(String(96))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    field: Mapped[str] = mapped_column(String(64))
    from_value: Mapped[str | None] = mapped_column(Text)
    to_value: Mapped[str | None] = mapped_column(Text)


class Objective(Base):
    __tablename__ = "objective"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        _live_ids_index(),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(255))
    art: Mapped[str | None] = mapped_column(String(255))
    increment: Mapped[str | None] = mapped_column(String(255))
    committed: Mapped[bool] = mapped_column(Boolean, default=True)
    planned_value: Mapped[float | None] = mapped_column(Float)
    actual_value: Mapped[float | None] = mapped_column(Float)
    status_category: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(32))
    raw: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


class Rollup(Base):
    """Derived by `lpm rollup` (warehouse/analytics.py), like the analytics tables below.

    Their `work_item_id` references `work_item.id` without a foreign key: every run rebuilds
    them whole from live rows in one transaction, and on PostgreSQL a foreign key check locks
    each referenced work item (FOR KEY SHARE), which cost 5 s per 54,000 roll-ups.
    """

    __tablename__ = "rollup"

    work_item_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    total_items: Mapped[int] = mapped_column(Integer)
    done_items: Mapped[int] = mapped_column(Integer)
    total_estimate: Mapped[float | None] = mapped_column(Float)
    done_estimate: Mapped[float | None] = mapped_column(Float)
    progress: Mapped[float | None] = mapped_column(Float)
    wsjf: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None] = mapped_column(Integer)
    health: Mapped[str | None] = mapped_column(String(16))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    # Portfolio analytics (warehouse/analytics.py documents every column).
    art: Mapped[str | None] = mapped_column(String(255))
    increment: Mapped[str | None] = mapped_column(String(255))
    estimated_items: Mapped[int] = mapped_column(Integer)
    progress_basis: Mapped[str] = mapped_column(String(8))
    flagged_items: Mapped[int] = mapped_column(Integer)
    cost_of_delay: Mapped[float | None] = mapped_column(Float)
    job_size: Mapped[float | None] = mapped_column(Float)
    job_size_basis: Mapped[str | None] = mapped_column(String(16))
    rank_scope: Mapped[str | None] = mapped_column(String(255))
    unranked_reason: Mapped[str | None] = mapped_column(String(255))
    elapsed: Mapped[float | None] = mapped_column(Float)
    schedule_health: Mapped[str | None] = mapped_column(String(16))
    health_reason: Mapped[str | None] = mapped_column(String(64))
    forecast_p50: Mapped[date | None] = mapped_column(Date)
    forecast_p85: Mapped[date | None] = mapped_column(Date)
    forecast_reason: Mapped[str | None] = mapped_column(String(255))


class RollupBreakdown(Base):
    """A roll-up split by the ART, team and PI of the descendants (warehouse/rollup.py)."""

    __tablename__ = "rollup_breakdown"
    __table_args__ = (Index(None, "work_item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    work_item_id: Mapped[int] = mapped_column(Id)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    art: Mapped[str | None] = mapped_column(String(255))
    team: Mapped[str | None] = mapped_column(String(255))
    increment: Mapped[str | None] = mapped_column(String(255))
    total_items: Mapped[int] = mapped_column(Integer)
    done_items: Mapped[int] = mapped_column(Integer)
    estimated_items: Mapped[int] = mapped_column(Integer)
    total_estimate: Mapped[float | None] = mapped_column(Float)
    done_estimate: Mapped[float | None] = mapped_column(Float)
    progress: Mapped[float] = mapped_column(Float)
    progress_basis: Mapped[str] = mapped_column(String(8))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)


class Guardrail(Base):
    """Capacity allocation by investment category per PI vs its target (warehouse/guardrails.py)."""

    __tablename__ = "guardrail"

    increment: Mapped[str] = mapped_column(String(255), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    is_current: Mapped[bool] = mapped_column(Boolean)
    items: Mapped[int] = mapped_column(Integer)
    estimate: Mapped[float | None] = mapped_column(Float)
    share: Mapped[float | None] = mapped_column(Float)
    basis: Mapped[str | None] = mapped_column(String(8))
    target_share: Mapped[float] = mapped_column(Float)
    deviation: Mapped[float | None] = mapped_column(Float)
    breach: Mapped[bool] = mapped_column(Boolean)


class FlowMetric(Base):
    """Flow velocity, time, load and efficiency per ART, PI and level (warehouse/flow.py)."""

    __tablename__ = "flow_metric"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    art: Mapped[str | None] = mapped_column(String(255))
    increment: Mapped[str] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(16))
    completed_items: Mapped[int] = mapped_column(Integer)
    completed_estimate: Mapped[float | None] = mapped_column(Float)
    flow_time_items: Mapped[int] = mapped_column(Integer)
    flow_time_p50: Mapped[float | None] = mapped_column(Float)
    flow_time_p85: Mapped[float | None] = mapped_column(Float)
    wip: Mapped[int] = mapped_column(Integer)
    active_days: Mapped[float | None] = mapped_column(Float)
    waiting_days: Mapped[float | None] = mapped_column(Float)
    efficiency: Mapped[float | None] = mapped_column(Float)


class FlowDistribution(Base):
    """Completed items per ART, PI and level by item type and by investment category."""

    __tablename__ = "flow_distribution"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    art: Mapped[str | None] = mapped_column(String(255))
    increment: Mapped[str] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(16))
    dimension: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(String(255))
    items: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float)


class Predictability(Base):
    """ART predictability per PI from PI objectives (warehouse/predictability.py)."""

    __tablename__ = "predictability"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    art: Mapped[str | None] = mapped_column(String(255))
    increment: Mapped[str | None] = mapped_column(String(255))
    committed_objectives: Mapped[int] = mapped_column(Integer)
    uncommitted_objectives: Mapped[int] = mapped_column(Integer)
    planned_value: Mapped[float] = mapped_column(Float)
    actual_value: Mapped[float] = mapped_column(Float)
    predictability: Mapped[float | None] = mapped_column(Float)
    in_range: Mapped[bool | None] = mapped_column(Boolean)


class HierarchyIssue(Base):
    """Items whose parent link is broken or loops, as found by the last roll-up."""

    __tablename__ = "hierarchy_issue"

    work_item_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    related_id: Mapped[int | None] = mapped_column(Id)
    detail: Mapped[str | None] = mapped_column(Text)


class SyncRun(Base):
    __tablename__ = "sync_run"
    __table_args__ = (Index(None, "source_id", "started_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    """Resume state of an unfinished run (e.g. partitions done), committed with each batch."""
    error: Mapped[str | None] = mapped_column(Text)


class Quarantine(Base):
    __tablename__ = "quarantine"
    __table_args__ = (Index(None, "source_id", "external_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sync_run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id"))
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    payload: Mapped[Any] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Writeback(Base):
    """The write-back ledger: one row per planned change (flows/writeback.py)."""

    __tablename__ = "writeback"
    __table_args__ = (Index(None, "work_item_id", "field", "applied_at"), Index(None, "run_id"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36))
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_item.id"))
    field: Mapped[str] = mapped_column(String(64))
    tracker_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24))
    error: Mapped[str | None] = mapped_column(Text)
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    """Why the change was planned, and what differed from the request (e.g. users notified)."""
    tracker_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the tracker last changed the item, as read right before sending the edit (Jira):
    its changelog after this instant says what the edit replaced."""


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed as one (SQLAlchemy types `__table__` loosely)."""
    return cast(Table, model.__table__)
