"""Column types that keep clinical times exact on every backend.

SQLite ignores `DateTime(timezone=True)` and hands back naive values, and PostgreSQL hands back
the session's zone; both are normalised here so that every layer sees aware UTC datetimes.

`bind_value` and `result_value` do the same conversions for SQL the store runs without the
type system (its hot statements are rendered once and run as driver SQL), so a time written
either way reads back the same either way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator

from persistence.chain import utc_text


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime refused: every stored time must be timezone-aware")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def sqlite_text(value: datetime) -> str:
    """Naive UTC text in SQLAlchemy's SQLite DATETIME storage format.

    "YYYY-MM-DD HH:MM:SS.ffffff", always with six fraction digits: what `sqlite.DATETIME`'s
    bind processor writes and its result processor (`datetime.fromisoformat`) reads, and a
    text that sorts as the instant does, which `Store.entries(until_recorded=...)` relies on.
    """
    return utc_text(_utc(value))  # the text a sealed entry's body is filled from (persistence.chain)


def bind_value(value: datetime, dialect_name: str) -> datetime | str:
    """What UTCDateTime and the dialect's own DateTime together bind for `value`."""
    if dialect_name == "sqlite":
        return sqlite_text(value)
    return _utc(value)


def result_value(value: datetime | str) -> datetime:
    """An aware UTC datetime from what the driver returns (SQLite text, or a datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; a naive one is refused at bind time (T26).

    On SQLite the value is stored as naive UTC text with microseconds (sortable as text);
    on PostgreSQL as `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        utc = _utc(value)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return result_value(value)
