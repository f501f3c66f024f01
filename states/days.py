"""Day numbering around Day 0 (docs/milestones.md: "Day N").

Day 0 is the date of the first infusion of the HCT [F:CIBMTR-HCT]; Day -N / Day +N are calendar
days before or after it, counted in the program's timezone, and there is no "Day -0". Labels are
derived from Day 0 on demand and never stored, so they follow Day 0 when it moves.

Pure functions: no clock reads. `clinical_date` consults the IANA timezone database through
`zoneinfo` (standard library) to convert an aware instant to a local calendar date.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["clinical_date", "date_of_day", "day_label", "day_number", "is_zone_name", "parse_day_label"]

_LABEL = re.compile(r"D(?:(?P<zero>0)|(?P<sign>[+-])(?P<n>[1-9][0-9]*))")


def clinical_date(at: datetime, tz: str) -> date:
    """The calendar date of the aware instant `at` in the program timezone `tz` (IANA name).

    Day numbers count calendar days in the program's timezone (docs/decisions.md). A naive
    datetime is rejected with ValueError: its date would depend on the machine running the code.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("clinical_date needs a timezone-aware datetime")
    return at.astimezone(ZoneInfo(tz)).date()


def is_zone_name(name: str) -> bool:
    """Is `name` a zone of the IANA database this process reads (zoneinfo)? The lookup opens a
    file named after it, so besides ZoneInfoNotFoundError and ValueError (a malformed key) it
    fails with an OSError for a folder of the database ("Europe") or a name longer than a file
    name may be: every one of them means "no such zone"."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def day_number(on: date, day0: date) -> int:
    """The signed day number of `on` counted from `day0` (Day 0 is 0) [F:CIBMTR-HCT]."""
    return (on - day0).days


def day_label(n: int) -> str:
    """The label of day `n`: "D-2", "D0", "D+11". There is no "D-0" or "D+0" (§0)."""
    if n == 0:
        return "D0"
    return f"D{n:+d}"


def label_on(on: date, anchor: date | None) -> str | None:
    """The Day label of the clinical date `on` counted from `anchor`; None before any Day 0 is known."""
    return None if anchor is None else day_label(day_number(on, anchor))


def label_at(at: datetime, tz: str, anchor: date | None) -> str | None:
    """The Day label of the instant `at` counted from `anchor` (Day 0, else the planned Day 0)
    in the programme timezone `tz`; None before any Day 0 is known."""
    return label_on(clinical_date(at, tz), anchor)


def parse_day_label(label: str) -> int:
    """The day number a label written by `day_label` stands for; the inverse of `day_label`.

    Only the canonical form is accepted ("D0", "D+11", "D-2"): "D-0", "D+0", "D11" and leading
    zeros raise ValueError, so one day has exactly one label.
    """
    match = _LABEL.fullmatch(label)
    if match is None:
        raise ValueError(f"not a day label: {label!r}")
    if match.group("zero") is not None:
        return 0
    n = int(match.group("n"))
    return -n if match.group("sign") == "-" else n


def date_of_day(day0: date, n: int) -> date:
    """The calendar date of day `n` counted from `day0`; inverse of `day_number`."""
    return day0 + timedelta(days=n)
