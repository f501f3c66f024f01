"""The injected clock: the only place the library reads "now".

Recorded times come from here, effective times from the caller. `SystemClock` reads UTC;
`ManualClock` is set by its owner (the scenario runner follows each step's time with it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """Wall-clock time in UTC (freezegun controls it in tests)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that says what it was last set to."""

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, value: datetime) -> None:
        self._now = _aware(value)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("clock times must be timezone-aware")
    return value.astimezone(UTC)
