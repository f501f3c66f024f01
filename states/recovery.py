"""Engraftment facts derived from lab events: nadir, neutrophil and platelet recovery, and
secondary graft failure (docs/engraftment-rules.md).

Every threshold is a keyword argument the caller takes from the policy; nothing here has a
default. Lab values and transfusions are placed on calendar dates in the program timezone
(`states.days.clinical_date`); the inputs may arrive in any order and are sorted by time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from states.days import clinical_date
from states.facts import LabMethod, LabValue, Transfusion

__all__ = [
    "anc_never_below",
    "anc_of",
    "indeterminate",
    "nadir",
    "neutrophil_recovery",
    "platelet_recovery",
    "secondary_graft_failure",
]


def _anc_by_day(labs: Iterable[LabValue], tz: str) -> dict[date, list[LabValue]]:
    """Labs carrying an ANC, grouped by clinical date, each day's values in time order."""
    days: dict[date, list[LabValue]] = defaultdict(list)
    for lab in sorted(labs, key=lambda v: (v.at, v.sequence)):
        if lab.anc_x10e9_per_l is not None:
            days[clinical_date(lab.at, tz)].append(lab)
    return days


def anc_of(lab: LabValue) -> float:
    """The ANC of a lab known to carry one (the fold and the rules filter the others out first)."""
    value = lab.anc_x10e9_per_l
    if value is None:  # pragma: no cover - labs without an ANC are filtered out first
        raise ValueError("lab value without an ANC")
    return value


def indeterminate(lab: LabValue, threshold: float) -> bool:
    """An automated ANC reading exactly at the threshold: the manual differential decides.

    [F:CIBMTR-ANC]: "If an automated ANC reads exactly 0.5, calculate it from the manual
    differential." Such a value neither counts towards recovery nor restarts the count.
    """
    return lab.method is LabMethod.AUTOMATED and anc_of(lab) == threshold


def nadir(labs: Iterable[LabValue], day0: date, tz: str, *, nadir_anc_x10e9_per_l: float) -> date | None:
    """The post-transplant ANC nadir date ([F:CIBMTR-ANC]; docs/engraftment-rules.md).

    The first clinical date on or after Day 0 with an ANC below `nadir_anc_x10e9_per_l`; if no
    value is below it, the date of the lowest ANC on or after Day 0 (the earliest, on a tie).
    None when no ANC was drawn on or after Day 0.
    """
    return _nadir(_anc_by_day(labs, tz), day0, nadir_anc_x10e9_per_l)


def _nadir(by_day: dict[date, list[LabValue]], day0: date, threshold: float) -> date | None:
    days = {d: values for d, values in by_day.items() if d >= day0}
    if not days:
        return None
    ordered = sorted(days)
    for d in ordered:
        if any(anc_of(v) < threshold for v in days[d]):
            return d
    lowest = min(anc_of(v) for d in ordered for v in days[d])
    return next(d for d in ordered if any(anc_of(v) == lowest for v in days[d]))


def anc_never_below(labs: Iterable[LabValue], day0: date, tz: str, *, anc_x10e9_per_l: float) -> bool:
    """ANC was drawn on or after Day 0 and never fell below `anc_x10e9_per_l` (so far).

    CIBMTR's answer "ANC never below 0.5" [F:CIBMTR-ANC], typical of a non-myeloablative
    regimen: there is no nadir to recover from, so there is no recovery date either.
    """
    return _never_below(_anc_by_day(labs, tz), day0, anc_x10e9_per_l)


def _never_below(by_day: dict[date, list[LabValue]], day0: date, threshold: float) -> bool:
    values = [anc_of(v) for d, day in by_day.items() if d >= day0 for v in day]
    return bool(values) and min(values) >= threshold


def _first_run(
    days: dict[date, list[LabValue]], after: date, length: int, verdict: Callable[[list[LabValue]], bool | None]
) -> date | None:
    """The first day of the first `length` counting days strictly after `after`.

    `verdict` judges one day's values: True counts the day, False restarts the count, None
    (nothing determinate that day) does neither. Days need not be adjacent: "consecutive
    values on different days" [F:CIBMTR-ANC], so twice-weekly labs count as well as daily ones.
    """
    if length < 1:
        raise ValueError("a run is at least 1 value long")
    run: list[date] = []
    for d in sorted(days):
        if d <= after:
            continue
        counts = verdict(days[d])
        if counts is False:
            run = []
        elif counts:
            run.append(d)
            if len(run) == length:
                return run[0]
    return None


def neutrophil_recovery(
    labs: Iterable[LabValue],
    day0: date,
    tz: str,
    *,
    anc_x10e9_per_l: float,
    consecutive_values: int,
    nadir_anc_x10e9_per_l: float,
) -> date | None:
    """The neutrophil recovery (engraftment) date [F:CIBMTR-ANC], endorsed by [F:ASTCT].

    The first of `consecutive_values` consecutive lab values obtained on different days with
    ANC >= `anc_x10e9_per_l`, counting only days strictly after the nadir (see `nadir`), so
    values seen before the nadir never count. Days need not be adjacent: with gaps the count
    goes on as long as no value in between falls below the threshold.

    - No ANC below the threshold on or after Day 0 (`anc_never_below`): no recovery date.
    - A day counts once, however many values it has; any value below the threshold on a day
      restarts the count (that day does not count).
    - An automated value exactly at the threshold is indeterminate: it neither counts nor
      restarts. A manual-differential value at the threshold counts.
    - Labs without an ANC are ignored.
    """
    if consecutive_values < 1:
        raise ValueError("consecutive_values must be at least 1")
    by_day = _anc_by_day(labs, tz)  # grouped once: the labs of a long engraftment wait are many
    bottom = _nadir(by_day, day0, nadir_anc_x10e9_per_l)
    if bottom is None or _never_below(by_day, day0, anc_x10e9_per_l):
        return None

    def recovered(values: list[LabValue]) -> bool | None:
        if any(anc_of(v) < anc_x10e9_per_l for v in values):
            return False
        return True if any(not indeterminate(v, anc_x10e9_per_l) for v in values) else None

    return _first_run(by_day, bottom, consecutive_values, recovered)


def platelet_recovery(
    labs: Iterable[LabValue],
    transfusions: Iterable[Transfusion],
    day0: date,
    *,
    tz: str,
    platelets_x10e9_per_l: float,
    consecutive_values: int,
    transfusion_free_days: int,
) -> date | None:
    """The platelet recovery date [F:CIBMTR-PLT], [F:ASTCT].

    The first of `consecutive_values` consecutive values on different days with platelets
    >= `platelets_x10e9_per_l` and no platelet transfusion on days d-(transfusion_free_days-1)
    .. d, d being the value's day (docs/engraftment-rules.md: a transfusion on Day 0 lets Day 7
    qualify). A value that fails either condition restarts the count; so does a platelet
    transfusion. Red-cell transfusions do not matter; labs without a platelet count are ignored.

    Only days after the post-transplant fall count: counting starts at the first day on or
    after Day 0 with a platelet count below the threshold or a platelet transfusion. A patient
    whose platelets never fell below the threshold and who was never transfused has no
    recovery date (CIBMTR's "not applicable" answer), so None is returned.
    """
    if consecutive_values < 1:
        raise ValueError("consecutive_values must be at least 1")
    if transfusion_free_days < 1:
        raise ValueError("transfusion_free_days must be at least 1")
    counts: dict[date, list[float]] = defaultdict(list)
    for lab in sorted(labs, key=lambda v: (v.at, v.sequence)):
        if lab.platelets_x10e9_per_l is not None:
            counts[clinical_date(lab.at, tz)].append(lab.platelets_x10e9_per_l)
    transfused = {clinical_date(t.at, tz) for t in transfusions if t.product == "platelets"}
    window = timedelta(days=transfusion_free_days - 1)

    fallen = False
    run: list[date] = []
    for d in sorted(d for d in set(counts) | transfused if d >= day0):
        values = counts.get(d, [])
        if d in transfused or any(v < platelets_x10e9_per_l for v in values):
            fallen = True
            run = []
        elif not fallen or not values:
            continue
        elif any(d - window <= t <= d for t in transfused):
            run = []
        else:
            run.append(d)
            if len(run) == consecutive_values:
                return run[0]
    return None


def secondary_graft_failure(
    labs: Iterable[LabValue],
    recovery_on: date,
    tz: str,
    *,
    anc_x10e9_per_l: float,
    consecutive_days: int,
) -> date | None:
    """The first date of a secondary graft failure after neutrophil recovery [F:CIBMTR-SUBSEQ].

    CIBMTR: ANC >= 0.5 on 3 consecutive days, then below 0.5 for at least 3 consecutive days.
    Read with the recovery rule's gaps [F:CIBMTR-ANC]: the first of `consecutive_days`
    consecutive values on different days with ANC < `anc_x10e9_per_l`, only days strictly
    after `recovery_on`; days need not be adjacent (twice-weekly outpatient labs qualify), and
    a value at or above the threshold in between restarts the count. An automated value
    exactly at the threshold is indeterminate: it neither counts nor restarts.
    """
    if consecutive_days < 1:
        raise ValueError("consecutive_days must be at least 1")

    def failed(values: list[LabValue]) -> bool | None:
        determinate = [v for v in values if not indeterminate(v, anc_x10e9_per_l)]
        if any(anc_of(v) >= anc_x10e9_per_l for v in determinate):
            return False
        return True if determinate else None

    return _first_run(_anc_by_day(labs, tz), recovery_on, consecutive_days, failed)
