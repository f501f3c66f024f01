"""UTCDateTime: naive times refused, aware times back exactly, in UTC, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import StatementError

from persistence.types import UTCDateTime
from tests.persistence.conftest import Backend

metadata = MetaData()
times = Table("times", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))


@pytest.fixture
def times_engine(backend: Backend) -> Engine:
    engine = backend.engine()
    metadata.create_all(engine)
    return engine


@pytest.mark.parametrize("dialect", [SQLiteDialect_pysqlite(), PGDialect_psycopg()])  # type: ignore[no-untyped-call]
def test_binding_a_naive_datetime_raises(dialect: Dialect) -> None:
    with pytest.raises(ValueError, match="naive datetime refused"):
        UTCDateTime().process_bind_param(datetime(2026, 2, 4, 12, 0), dialect)


def test_naive_datetime_is_refused_by_a_real_insert(times_engine: Engine) -> None:
    with times_engine.begin() as connection, pytest.raises(StatementError) as raised:
        connection.execute(insert(times), {"id": 1, "at": datetime(2026, 2, 4, 12, 0)})
    assert isinstance(raised.value.orig, ValueError)


VALUES = [
    datetime(2026, 2, 4, 0, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 2, 4, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, 0, 1, tzinfo=timezone(timedelta(hours=2))),  # stored as 23:30 UTC
    datetime(1970, 1, 1, 0, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    datetime(2099, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
]


def test_round_trip_is_exact_and_utc(times_engine: Engine) -> None:
    with times_engine.begin() as connection:
        connection.execute(insert(times), [{"id": i, "at": value} for i, value in enumerate(VALUES)])
    with times_engine.connect() as connection:
        back = connection.execute(select(times.c.at).order_by(times.c.id)).scalars().all()
    for original, returned in zip(VALUES, back, strict=True):
        assert returned == original
        assert returned.tzinfo is UTC
        assert returned.microsecond == original.microsecond


def test_comparisons_happen_in_utc(times_engine: Engine) -> None:
    """A filter given in another zone selects by instant, even on SQLite's text storage."""
    with times_engine.begin() as connection:
        connection.execute(insert(times), [{"id": i, "at": value} for i, value in enumerate(VALUES)])
    cut = datetime(2026, 3, 29, 0, 0, tzinfo=timezone(timedelta(hours=5)))  # 2026-03-28 19:00 UTC
    with times_engine.connect() as connection:
        later = connection.execute(select(times.c.id).where(times.c.at > cut).order_by(times.c.id))
        assert later.scalars().all() == [2, 4]


def test_none_passes_through() -> None:
    assert UTCDateTime().process_bind_param(None, SQLiteDialect_pysqlite()) is None
    assert UTCDateTime().process_result_value(None, SQLiteDialect_pysqlite()) is None
