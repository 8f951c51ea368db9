"""`UTCDateTime` on SQLite writes SQLAlchemy's own DATETIME text by a faster path: existing
warehouses keep reading and comparing their stored times exactly as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    create_engine,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import sqlite

from warehouse.models import UTCDateTime

MOMENTS = [
    datetime(2026, 10, 6, 11, 30, 0, 250000, tzinfo=UTC),
    datetime(2026, 10, 6, 11, 30, tzinfo=UTC),  # no microseconds: still six digits, as before
    datetime(2026, 10, 6, 1, 5, 9, 7, tzinfo=timezone(timedelta(hours=2))),  # the day before
    datetime(999, 1, 2, 3, 4, 5, 600000, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_the_text_written_is_sqlalchemys_sqlite_datetime_format(moment: datetime) -> None:
    dialect = sqlite.dialect()
    stock = DateTime().dialect_impl(dialect).bind_processor(dialect)
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert stock is not None and ours is not None
    assert ours(moment) == stock(moment.astimezone(UTC).replace(tzinfo=None))


def test_a_naive_datetime_is_refused() -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None
    with pytest.raises(ValueError, match="naive datetime"):
        ours(datetime(2026, 10, 6, 11, 30))


def test_times_round_trip_and_times_stored_by_the_stock_type_read_back_equal(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'times.db'}")
    meta = MetaData()
    ours = Table("ours", meta, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    stock = Table("stock", meta, Column("id", Integer, primary_key=True), Column("at", DateTime))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(ours.insert(), [{"id": n, "at": m} for n, m in enumerate(MOMENTS)])
        naive = [m.astimezone(UTC).replace(tzinfo=None) for m in MOMENTS]
        conn.execute(stock.insert(), [{"id": n, "at": m} for n, m in enumerate(naive)])
        conn.execute(text("INSERT INTO ours (id, at) VALUES (99, '2026-10-06 11:30:00')"))
        read = {n: at for n, at in conn.execute(select(ours.c.id, ours.c.at))}
        as_stored = conn.execute(select(ours.c.at).order_by(ours.c.id)).scalars().all()
        written_by_stock = conn.execute(
            select(type_coerce(stock.c.at, UTCDateTime)).order_by(stock.c.id)
        ).scalars()
        assert list(written_by_stock) == MOMENTS
        assert conn.execute(
            text("SELECT COUNT(*) FROM ours JOIN stock USING (id) WHERE ours.at = stock.at")
        ).scalar() == len(MOMENTS)
    assert [read[n] for n in range(len(MOMENTS))] == MOMENTS
    assert all(m.tzinfo is UTC for m in as_stored)
    assert read[99] == datetime(2026, 10, 6, 11, 30, tzinfo=UTC)
