"""Has the ANC recovered? The two rules of `states.recovery` as a fold over the labs, which a
lab appended in time order advances in constant time.

A pathway waiting for engraftment gets a lab value a day or more, and its milestone plan asks
after each one whether neutrophils have recovered (neutrophil recovery, or "engrafted from the
start": `states.engraftment`). Asked of the whole list, each answer took time in proportion to
the labs: at 1,000 labs the plan cost several times the rest of the command. Here the answer is
kept with the exact labs tuple it was folded from (a small bounded memo); the next lab, if it
comes after every one folded, advances that state. A lab out of order (backdated), another
count start, policy or timezone fold again from the first lab.

`states.recovery` stays the statement of the rules (guards and reports read it);
tests/states/test_anc_course.py holds this fold's answer equal to it on generated courses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final, NamedTuple

from states.days import clinical_date
from states.facts import LabValue
from states.recovery import anc_of, indeterminate

__all__ = ["Rules", "recovered"]


class Rules(NamedTuple):
    """What the answer depends on besides the labs (thresholds from the policy)."""

    tz: str
    start: datetime | None  # the count start: earlier labs never count (None: every lab does)
    start_day: date  # the clinical day the count starts on
    recovery: float  # ANC at or above it counts toward recovery; below it, a fall
    nadir: float  # ANC below it dates the nadir
    consecutive: int  # counting days that make a recovery
    observed_to: date  # "never below" is affirmed once ANC was followed to this day


class _Days(NamedTuple):
    """Neutrophil recovery over the whole days folded so far (`recovery.neutrophil_recovery`)."""

    lowest: float | None = None  # the lowest ANC on a counted day (for "never below")
    first_below: date | None = None  # the first day with an ANC below the nadir threshold
    bottom: date | None = None  # the nadir: first_below, else the (earliest) lowest day
    run: tuple[date, ...] = ()  # counting days after the bottom
    found: date | None = None  # the recovery day, once a run was long enough


class _Fall(NamedTuple):
    """The labs before the first ANC below the recovery threshold (`engrafted_from_start`):
    those at instants before the current one, and the current instant's day."""

    fell: bool = False
    latest: date | None = None  # the day of the latest lab before the current instant (or the fall)
    on_start: bool = False  # one of them was drawn on or after the start day
    at: datetime | None = None  # the current instant, while no fall
    day: date | None = None  # its day


class _Course(NamedTuple):
    last: tuple[datetime, int] | None  # (at, sequence) of the latest lab folded
    days: _Days  # every day before `day`
    day: date | None  # the latest day, still open to more values
    low: float  # its lowest ANC
    determinate: bool  # one of its values is not an automated one at the recovery threshold
    fall: _Fall


_EMPTY: Final = _Course(None, _Days(), None, 0.0, False, _Fall())


def recovered(labs: Sequence[LabValue], rules: Rules) -> bool:
    """Neutrophil recovery dated by the labs, or engrafted from the start: as
    `engraftment.neutrophil_recovery_of(...) is not None or engraftment.engrafted_from_start(...)`."""
    if not labs:
        return False
    labs = tuple(labs)
    course = _remembered(labs, rules)
    if course is None:
        before = (rules, len(labs) - 1, id(labs[-2])) if len(labs) > 1 else None
        known = None if before is None else _MEMO.get(before)
        if before is not None and known is not None and known[0] == labs[:-1]:
            _MEMO.pop(before, None)  # superseded: one entry per course, not one per lab
            course = _advanced(known[1], labs[-1], rules)
        if course is None:
            course = _folded(labs, rules)
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        _MEMO[(rules, len(labs), id(labs[-1]))] = (labs, course)
    return _answer(course, rules)


# Keyed by the rules, the number of labs and the identity of the last: the entry holds its
# tuple, so that identity is not reused while it is kept; equality decides.
_MEMO: dict[tuple[Rules, int, int], tuple[tuple[LabValue, ...], _Course]] = {}
_MEMO_LIMIT: Final = 1_024  # pathways a process works on at once, about


def _remembered(labs: tuple[LabValue, ...], rules: Rules) -> _Course | None:
    known = _MEMO.get((rules, len(labs), id(labs[-1])))
    return known[1] if known is not None and (known[0] is labs or known[0] == labs) else None


def _counted(lab: LabValue, rules: Rules) -> bool:
    return lab.anc_x10e9_per_l is not None and (rules.start is None or lab.at >= rules.start)


def _advanced(course: _Course, lab: LabValue, rules: Rules) -> _Course | None:
    """`course` with `lab` appended, or None when it does not come after every lab folded."""
    if not _counted(lab, rules):
        return course
    key, day = (lab.at, lab.sequence), clinical_date(lab.at, rules.tz)
    if course.last is not None and (key <= course.last or course.day is None or day < course.day):
        return None
    anc, fall = anc_of(lab), _fall(course.fall, lab, day, rules)
    if day == course.day:
        determinate = course.determinate or _determinate(lab, rules)
        return _Course(key, course.days, day, min(course.low, anc), determinate, fall)
    return _Course(key, _closed(course, rules), day, anc, _determinate(lab, rules), fall)


def _folded(labs: Sequence[LabValue], rules: Rules) -> _Course:
    """The course of `labs` in any order, as `states.recovery` reads it: days in date order,
    the fall by instant (ties by sequence)."""
    counted = sorted((lab for lab in labs if _counted(lab, rules)), key=lambda lab: (lab.at, lab.sequence))
    if not counted:
        return _EMPTY
    by_day: dict[date, list[LabValue]] = defaultdict(list)
    fall = _Fall()
    for lab in counted:
        day = clinical_date(lab.at, rules.tz)
        by_day[day].append(lab)
        fall = _fall(fall, lab, day, rules)
    *earlier, latest = sorted(by_day)
    days = _Days()
    for day in earlier:
        days = _day(days, day, *_summary(by_day[day], rules), rules)
    last = counted[-1]
    return _Course((last.at, last.sequence), days, latest, *_summary(by_day[latest], rules), fall)


def _determinate(lab: LabValue, rules: Rules) -> bool:
    return not indeterminate(lab, rules.recovery)


def _summary(values: Sequence[LabValue], rules: Rules) -> tuple[float, bool]:
    """What a day's verdict reads of its values: the lowest ANC, and whether one is determinate."""
    return min(anc_of(lab) for lab in values), any(_determinate(lab, rules) for lab in values)


def _closed(course: _Course, rules: Rules) -> _Days:
    """The days of `course` with its open day closed."""
    return course.days if course.day is None else _day(course.days, course.day, course.low, course.determinate, rules)


def _day(days: _Days, day: date, low: float, determinate: bool, rules: Rules) -> _Days:
    """One whole day (its lowest ANC, and whether a value is determinate) after every day in
    `days` (`recovery._nadir`, `_never_below`, `_first_run`)."""
    if day < rules.start_day:  # before the count starts: neither nadir nor recovery
        return days
    new_lowest = days.lowest is None or low < days.lowest
    lowest = low if new_lowest else days.lowest
    if days.first_below is None and low < rules.nadir:  # the nadir for good: a run starts after it
        return _Days(lowest, day, day, (), None)
    if days.first_below is None and new_lowest:  # a new lowest day, the nadir until a lower one
        return _Days(lowest, None, day, (), None)
    if days.found is not None:
        return days._replace(lowest=lowest)
    if low < rules.recovery:
        return days._replace(lowest=lowest, run=())
    if not determinate:  # only automated values at the threshold: neither counts nor restarts
        return days._replace(lowest=lowest)
    run = (*days.run, day)
    return days._replace(lowest=lowest, run=run, found=run[0] if len(run) == rules.consecutive else None)


def _fall(fall: _Fall, lab: LabValue, day: date, rules: Rules) -> _Fall:
    """One lab after every lab in `fall` (`engraftment.engrafted_from_start`)."""
    if fall.fell:
        return fall
    if fall.at is not None and lab.at > fall.at:  # the current instant is over: its day is before
        fall = _settled(fall, rules)
    anc = lab.anc_x10e9_per_l
    if anc is not None and anc < rules.recovery:  # labs at the instant of the fall are not before it
        return _Fall(True, fall.latest, fall.on_start)
    return fall._replace(at=lab.at, day=day)


def _settled(fall: _Fall, rules: Rules) -> _Fall:
    """`fall` with its current instant counted among the labs before (no fall at it)."""
    if fall.day is None:
        return fall
    latest = fall.day if fall.latest is None or fall.day > fall.latest else fall.latest
    return _Fall(False, latest, fall.on_start or fall.day >= rules.start_day)


def _answer(course: _Course, rules: Rules) -> bool:
    days = _closed(course, rules)
    never_below = days.lowest is not None and days.lowest >= rules.recovery
    if days.found is not None and not never_below:  # a run is found only after a nadir
        return True
    before = course.fall if course.fall.fell else _settled(course.fall, rules)
    return before.on_start and before.latest is not None and before.latest >= rules.observed_to
