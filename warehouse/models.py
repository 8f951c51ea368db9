"""The warehouse tables. Names and columns of the DESIGN.md contract are relied on outside the code.

Timestamps are stored in UTC and always come back time-zone aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

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
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Source(Base):
    __tablename__ = "source"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))


class WorkItem(Base):
    __tablename__ = "work_item"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index(None, "parent_id"),
        Index(None, "level"),
        Index(None, "updated_at"),
        Index(None, "parent_external_id", "source_id"),
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
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

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
    __tablename__ = "rollup"

    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_item.id"), primary_key=True)
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
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Writeback(Base):
    __tablename__ = "writeback"
    __table_args__ = (Index(None, "work_item_id", "field"), Index(None, "run_id"))

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


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed as one (SQLAlchemy types `__table__` loosely)."""
    return cast(Table, model.__table__)
