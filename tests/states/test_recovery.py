"""Engraftment derivations against HSCT_REFERENCE.md §0 and the scenarios of §5.

Thresholds are the reference's defaults: ANC >= 0.5 on 3 values on different days after the
nadir (first ANC < 0.1) [F:CIBMTR-ANC]; platelets >= 20 on 3 values with no platelet
transfusion in the 7 days ending on the value's day [F:CIBMTR-PLT]; secondary graft failure
ANC < 0.5 on 3 consecutive days [F:CIBMTR-SUBSEQ]. Times are UTC.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from states.facts import LabMethod, LabValue, Transfusion
from states.policy import Policy
from states.recovery import anc_never_below, nadir, neutrophil_recovery, platelet_recovery, secondary_graft_failure

TZ = "UTC"
ANC = 0.5
NADIR_ANC = 0.1
CONSECUTIVE = 3
PLATELETS = 20.0
TRANSFUSION_FREE_DAYS = 7
FAILURE_DAYS = 3


def at(day: date, hour: int = 6) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def anc(day: date, value: float, *, hour: int = 6, method: LabMethod = LabMethod.AUTOMATED) -> LabValue:
    return LabValue(at=at(day, hour), anc_x10e9_per_l=value, method=method)


def plt(day: date, value: float, *, hour: int = 6) -> LabValue:
    return LabValue(at=at(day, hour), platelets_x10e9_per_l=value)


def transfusion(day: date, product: Literal["platelets", "red_cells"] = "platelets") -> Transfusion:
    return Transfusion(at=at(day, 14), product=product)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def recovery(labs: list[LabValue], day0: date, tz: str = TZ) -> date | None:
    return neutrophil_recovery(
        labs, day0, tz, anc_x10e9_per_l=ANC, consecutive_values=CONSECUTIVE, nadir_anc_x10e9_per_l=NADIR_ANC
    )


def low_point(labs: list[LabValue], day0: date) -> date | None:
    return nadir(labs, day0, TZ, nadir_anc_x10e9_per_l=NADIR_ANC)


def platelets(labs: list[LabValue], transfusions: list[Transfusion], day0: date) -> date | None:
    return platelet_recovery(
        labs,
        transfusions,
        day0,
        tz=TZ,
        platelets_x10e9_per_l=PLATELETS,
        consecutive_values=CONSECUTIVE,
        transfusion_free_days=TRANSFUSION_FREE_DAYS,
    )


def failure(labs: list[LabValue], recovery_on: date) -> date | None:
    return secondary_graft_failure(labs, recovery_on, TZ, anc_x10e9_per_l=ANC, consecutive_days=FAILURE_DAYS)


# --- S01: AUTO Mel200, Day 0 = 2026-02-04 ---------------------------------------------------

S01_DAY0 = date(2026, 2, 4)
S01_ANC = [
    anc(date(2026, 2, 5), 1.2),  # D+1
    anc(date(2026, 2, 6), 0.8),  # D+2
    anc(date(2026, 2, 7), 0.6),  # D+3
    anc(date(2026, 2, 9), 0.02),  # D+5 nadir
    anc(date(2026, 2, 15), 0.6),  # D+11
    anc(date(2026, 2, 16), 0.9),  # D+12
    anc(date(2026, 2, 17), 1.6),  # D+13
]
S01_PLT = [plt(date(2026, 2, 19), 24), plt(date(2026, 2, 20), 31), plt(date(2026, 2, 21), 45)]
S01_TRANSFUSIONS = [transfusion(date(2026, 2, 12))]


def test_s01_nadir_is_day_plus_5() -> None:
    assert low_point(S01_ANC, S01_DAY0) == date(2026, 2, 9)


def test_s01_neutrophils_day_plus_11_never_plus_1() -> None:
    assert recovery(S01_ANC, S01_DAY0) == date(2026, 2, 15)


def test_s01_pre_nadir_values_alone_are_not_a_recovery() -> None:
    # REFUSE neutrophil_engraftment(2026-02-05): D+1..D+3 are >= 0.5 but before the nadir.
    pre_nadir = [v for v in S01_ANC if v.at.date() <= date(2026, 2, 7)]
    assert recovery(pre_nadir, S01_DAY0) is None
    assert recovery(S01_ANC, S01_DAY0) != date(2026, 2, 5)


def test_s01_input_order_does_not_matter() -> None:
    shuffled = list(S01_ANC)
    random.Random(1).shuffle(shuffled)
    assert recovery(shuffled, S01_DAY0) == date(2026, 2, 15)


def test_s01_platelets_day_plus_15() -> None:
    assert platelets(S01_PLT, S01_TRANSFUSIONS, S01_DAY0) == date(2026, 2, 19)


def test_s01_red_cell_transfusions_do_not_block_platelet_recovery() -> None:
    red = [transfusion(date(2026, 2, 18), "red_cells"), transfusion(date(2026, 2, 19), "red_cells")]
    assert platelets(S01_PLT, S01_TRANSFUSIONS + red, S01_DAY0) == date(2026, 2, 19)


# --- S02: AUTO BEAM, Day 0 = 2026-02-16 -------------------------------------------------------

S02_DAY0 = date(2026, 2, 16)


def test_s02_neutrophils_d10_platelets_d16() -> None:
    # Aplasia before the first value >= 0.5 (values below the nadir threshold, D+5..D+9).
    labs = [anc(d, 0.05) for d in days(date(2026, 2, 21), date(2026, 2, 25))]
    labs += [anc(d, 0.7) for d in (date(2026, 2, 26), date(2026, 2, 27), date(2026, 2, 28))]
    assert recovery(labs, S02_DAY0) == date(2026, 2, 26)

    plts = [plt(date(2026, 2, 25), 12)]
    plts += [plt(d, 25) for d in (date(2026, 3, 4), date(2026, 3, 5), date(2026, 3, 6))]
    got = platelets(plts, [transfusion(date(2026, 2, 25))], S02_DAY0)
    assert got == date(2026, 3, 4)
    assert got is not None
    assert (got - S02_DAY0).days == 16


# --- S05: ALLO MSD, Day 0 = 2026-01-21 --------------------------------------------------------

S05_DAY0 = date(2026, 1, 21)
S05_PLT = [
    plt(date(2026, 2, 3), 26),
    plt(date(2026, 2, 4), 29),
    plt(date(2026, 2, 5), 33),
    plt(date(2026, 2, 6), 18),
    plt(date(2026, 2, 13), 22),
    plt(date(2026, 2, 14), 25),
    plt(date(2026, 2, 15), 30),
]
S05_TRANSFUSIONS = [transfusion(date(2026, 2, 2)), transfusion(date(2026, 2, 6))]


def test_s05_neutrophils_d14() -> None:
    labs = [anc(d, 0.04) for d in days(date(2026, 1, 24), date(2026, 2, 3))]
    labs += [anc(d, 0.8) for d in (date(2026, 2, 4), date(2026, 2, 5), date(2026, 2, 6))]
    assert recovery(labs, S05_DAY0) == date(2026, 2, 4)


def test_s05_platelets_d23() -> None:
    assert platelets(S05_PLT, S05_TRANSFUSIONS, S05_DAY0) == date(2026, 2, 13)


def test_s05_platelet_values_within_7_days_of_a_transfusion_are_refused() -> None:
    # REFUSE platelet_engraftment(2026-02-03): the 02-02 transfusion is within 7 days.
    before_second = [v for v in S05_PLT if v.at.date() <= date(2026, 2, 5)]
    assert platelets(before_second, S05_TRANSFUSIONS[:1], S05_DAY0) is None
    assert platelets(S05_PLT, S05_TRANSFUSIONS, S05_DAY0) != date(2026, 2, 3)


# --- S14: double UCB, Day 0 = 2026-03-11 ------------------------------------------------------

S14_DAY0 = date(2026, 3, 11)


def test_s14_neutrophils_d24_platelets_d45() -> None:
    labs = [anc(d, 0.02) for d in days(date(2026, 3, 14), date(2026, 4, 3))]
    labs += [anc(d, 0.6) for d in (date(2026, 4, 4), date(2026, 4, 5), date(2026, 4, 6))]
    assert recovery(labs, S14_DAY0) == date(2026, 4, 4)

    plts = [plt(d, 9) for d in days(date(2026, 3, 20), date(2026, 4, 18))]
    plts += [plt(d, 24) for d in days(date(2026, 4, 19), date(2026, 4, 28))]
    transfused = [transfusion(d) for d in days(date(2026, 3, 20), date(2026, 4, 18))]
    assert platelets(plts, transfused, S14_DAY0) == date(2026, 4, 25)


# --- S17: MUD PBSC, Day 0 = 2026-03-18 --------------------------------------------------------


def test_s17_neutrophils_d13_platelets_d20() -> None:
    day0 = date(2026, 3, 18)
    labs = [anc(d, 0.03) for d in days(date(2026, 3, 22), date(2026, 3, 30))]
    labs += [anc(d, 1.0) for d in days(date(2026, 3, 31), date(2026, 4, 8))]
    assert recovery(labs, day0) == date(2026, 3, 31)
    plts = [plt(d, 21) for d in days(date(2026, 3, 31), date(2026, 4, 12))]
    assert platelets(plts, [transfusion(date(2026, 3, 31))], day0) == date(2026, 4, 7)


# --- S15: single UCB, Day 0 = 2026-04-01 ------------------------------------------------------


def test_s15_neutrophils_d38() -> None:
    day0 = date(2026, 4, 1)
    labs = [anc(d, 0.05) for d in days(date(2026, 4, 2), date(2026, 5, 6))]
    assert recovery(labs, day0) is None  # no recovery at D+35
    labs += [anc(d, 0.55) for d in (date(2026, 5, 9), date(2026, 5, 10), date(2026, 5, 11))]
    assert recovery(labs, day0) == date(2026, 5, 9)


# --- the CIBMTR platelet example (§0): transfusion on Day 0 lets Day 7 qualify -----------------


def test_transfusion_on_day0_lets_day7_qualify() -> None:
    day0 = date(2008, 1, 1)
    plts = [plt(day0, 10)] + [plt(day0 + timedelta(days=n), 25) for n in range(1, 11)]
    assert platelets(plts, [transfusion(day0)], day0) == day0 + timedelta(days=7)


# --- neutrophil rules -------------------------------------------------------------------------

DAY0 = date(2026, 2, 4)


def d(n: int) -> date:
    return DAY0 + timedelta(days=n)


def with_nadir(*values: LabValue) -> list[LabValue]:
    return [anc(d(5), 0.02), *values]


def test_a_low_value_restarts_the_count() -> None:
    labs = with_nadir(anc(d(10), 0.6), anc(d(11), 0.7), anc(d(12), 0.3), anc(d(13), 0.6), anc(d(14), 0.6))
    assert recovery(labs, DAY0) is None
    assert recovery([*labs, anc(d(15), 0.9)], DAY0) == d(13)


def test_values_on_different_days_need_not_be_daily() -> None:
    # [F:CIBMTR-ANC]: values drawn more than a day apart count as long as ANC stays >= 0.5.
    labs = with_nadir(anc(d(11), 0.6), anc(d(14), 0.7), anc(d(18), 0.8))
    assert recovery(labs, DAY0) == d(11)


def test_several_values_on_one_day_count_once() -> None:
    labs = with_nadir(anc(d(10), 0.6, hour=6), anc(d(10), 0.7, hour=18), anc(d(11), 0.8))
    assert recovery(labs, DAY0) is None
    assert recovery([*labs, anc(d(12), 0.9)], DAY0) == d(10)


def test_a_low_value_on_a_day_restarts_even_beside_a_high_one() -> None:
    labs = with_nadir(
        anc(d(10), 0.6), anc(d(11), 0.7, hour=6), anc(d(11), 0.4, hour=18), anc(d(12), 0.6), anc(d(13), 0.6)
    )
    assert recovery(labs, DAY0) is None
    assert recovery([*labs, anc(d(14), 0.6)], DAY0) == d(12)


def test_automated_value_at_the_threshold_neither_counts_nor_restarts() -> None:
    labs = with_nadir(anc(d(10), 0.6), anc(d(11), 0.5), anc(d(12), 0.7))
    assert recovery(labs, DAY0) is None  # it did not count as the second value
    assert recovery([*labs, anc(d(13), 0.8)], DAY0) == d(10)  # nor did it restart the count


def test_automated_threshold_value_alone_is_not_a_first_day() -> None:
    labs = with_nadir(anc(d(10), 0.3), anc(d(11), 0.5), anc(d(12), 0.6), anc(d(13), 0.7), anc(d(14), 0.8))
    assert recovery(labs, DAY0) == d(12)


def test_manual_differential_at_the_threshold_counts() -> None:
    labs = with_nadir(anc(d(11), 0.5, method=LabMethod.MANUAL_DIFFERENTIAL), anc(d(12), 0.6), anc(d(13), 0.7))
    assert recovery(labs, DAY0) == d(11)


def test_labs_without_anc_are_ignored() -> None:
    labs = with_nadir(anc(d(10), 0.6), plt(d(11), 5), anc(d(12), 0.6), anc(d(13), 0.6))
    assert recovery(labs, DAY0) == d(10)


def test_values_before_day0_are_ignored_for_the_nadir() -> None:
    labs = [anc(d(-3), 0.05), anc(d(2), 0.6), anc(d(3), 0.7), anc(d(4), 0.8)]
    # The only value below 0.1 is before Day 0; the nadir is the lowest value after it (D+2).
    assert low_point(labs, DAY0) == d(2)
    assert recovery(labs, DAY0) is None


def test_nadir_without_a_value_below_threshold_is_the_earliest_lowest() -> None:
    labs = [anc(d(1), 1.2), anc(d(3), 0.3), anc(d(5), 0.3), anc(d(7), 0.4)]
    assert low_point(labs, DAY0) == d(3)


def test_anc_never_below_threshold_has_no_recovery_date() -> None:
    """Non-myeloablative: lowest ANC 0.6 on D+7, never below 0.5. CIBMTR's answer is "ANC never
    below 0.5" [F:CIBMTR-ANC]; there was no nadir, so D+9 (first of 3 after the low point) is
    not a recovery date."""
    labs = [anc(d(n), v) for n, v in [(1, 2.1), (3, 1.4), (5, 0.9), (7, 0.6), (9, 0.8), (10, 1.2), (11, 1.9)]]
    assert recovery(labs, DAY0) is None
    assert anc_never_below(labs, DAY0, TZ, anc_x10e9_per_l=ANC)


def test_one_value_below_threshold_is_a_nadir_to_recover_from() -> None:
    labs = [anc(d(n), v) for n, v in [(1, 2.1), (5, 0.9), (7, 0.4), (9, 0.8), (10, 1.2), (11, 1.9)]]
    assert not anc_never_below(labs, DAY0, TZ, anc_x10e9_per_l=ANC)
    assert recovery(labs, DAY0) == d(9)


def test_never_below_needs_a_value_and_ignores_values_before_day0() -> None:
    assert not anc_never_below([], DAY0, TZ, anc_x10e9_per_l=ANC)
    assert anc_never_below([anc(d(-2), 0.1), anc(d(2), 0.7)], DAY0, TZ, anc_x10e9_per_l=ANC)


def test_no_anc_after_day0_means_no_nadir_and_no_recovery() -> None:
    assert low_point([], DAY0) is None
    assert low_point([anc(d(-1), 0.02), plt(d(3), 10)], DAY0) is None
    assert recovery([anc(d(-1), 0.02)], DAY0) is None


def test_clinical_dates_follow_the_program_timezone() -> None:
    # 23:30 UTC on D+10 is already D+11 in Berlin, so those two values share one Berlin day.
    labs = with_nadir(
        LabValue(at=datetime(2026, 2, 14, 23, 30, tzinfo=UTC), anc_x10e9_per_l=0.6),
        anc(d(11), 0.7),
        anc(d(12), 0.8),
    )
    assert recovery(labs, DAY0, "UTC") == d(10)
    assert recovery(labs, DAY0, "Europe/Berlin") is None


# --- platelet rules ---------------------------------------------------------------------------


def test_platelets_that_never_fell_have_no_recovery_date() -> None:
    # CIBMTR "not applicable": never below 20 and never transfused.
    plts = [plt(d(n), 60) for n in range(1, 20)]
    assert platelets(plts, [], DAY0) is None


def test_platelet_values_before_the_fall_do_not_count() -> None:
    plts = [
        plt(d(1), 90),
        plt(d(2), 70),
        plt(d(3), 40),
        plt(d(6), 15),
        plt(d(8), 22),
        plt(d(9), 25),
        plt(d(10), 28),
    ]
    assert platelets(plts, [], DAY0) == d(8)


def test_a_low_platelet_value_restarts_the_count() -> None:
    plts = [plt(d(6), 10), plt(d(8), 22), plt(d(9), 19), plt(d(10), 25), plt(d(11), 26), plt(d(12), 27)]
    assert platelets(plts, [], DAY0) == d(10)


def test_platelet_values_before_day0_do_not_count() -> None:
    plts = [plt(d(-5), 10), plt(d(-3), 30), plt(d(-2), 30), plt(d(-1), 30)]
    assert platelets(plts, [transfusion(d(-8))], DAY0) is None


def test_a_platelet_transfusion_between_values_restarts_the_count() -> None:
    plts = [plt(d(6), 10), plt(d(8), 22), plt(d(9), 25), plt(d(25), 30), plt(d(26), 30)]
    assert platelets(plts, [transfusion(d(15))], DAY0) is None
    assert platelets([*plts, plt(d(27), 30)], [transfusion(d(15))], DAY0) == d(25)


# Form 2100 also asks for the date platelets reached >= 50 [F:CIBMTR-PLT], same rule. Worked
# table in the style of the CIBMTR manual's example (platelet transfusions on Day 0 and D+5):
#
#   day   D0  D+3 D+5 D+9 D+10 D+11 D+12 D+13 D+14 D+15 D+16
#   plt   30  12   8  22   35   52   55   48   60   66   71
#   tx    yes      yes
#
# >= 20: D+9..D+11 fall within 7 days of the D+5 transfusion (D+5..D+11); D+12, D+13, D+14
#        are 3 consecutive values >= 20, transfusion-free -> D+12.
# >= 50: D+11 is >= 50 but inside the window; D+12 counts, D+13 (48) restarts the count;
#        D+14, D+15, D+16 -> D+14.
PLT_TABLE = [(0, 30), (3, 12), (5, 8), (9, 22), (10, 35), (11, 52), (12, 55), (13, 48), (14, 60), (15, 66), (16, 71)]
PLT_TABLE_TRANSFUSIONS = [transfusion(d(0)), transfusion(d(5))]


def test_platelet_worked_table_at_20_and_50() -> None:
    plts = [plt(d(n), v) for n, v in PLT_TABLE]
    assert platelets(plts, PLT_TABLE_TRANSFUSIONS, DAY0) == d(12)
    at_50 = platelet_recovery(
        plts,
        PLT_TABLE_TRANSFUSIONS,
        DAY0,
        tz=TZ,
        platelets_x10e9_per_l=50,
        consecutive_values=CONSECUTIVE,
        transfusion_free_days=TRANSFUSION_FREE_DAYS,
    )
    assert at_50 == d(14)


def test_transfusion_window_is_seven_days_ending_on_the_value_day() -> None:
    plts = [plt(d(n), 25) for n in range(10, 20)]
    # transfusion on D+10: D+10..D+16 are blocked, D+17 is the first day that can count.
    assert platelets(plts, [transfusion(d(10))], DAY0) == d(17)


def _platelets_under(policy: Policy, labs: list[LabValue], transfusions: list[Transfusion]) -> date | None:
    return platelet_recovery(
        labs,
        transfusions,
        DAY0,
        tz=TZ,
        platelets_x10e9_per_l=policy.platelet_recovery_x10e9_per_l,
        consecutive_values=policy.recovery_consecutive_values,
        transfusion_free_days=policy.platelet_transfusion_free_days,
    )


def test_a_platelet_count_exactly_at_the_threshold_qualifies() -> None:
    """Platelets >= 20 [F:CIBMTR-PLT]: a count of exactly 20 counts, it is not a fall."""
    policy = Policy()
    threshold = policy.platelet_recovery_x10e9_per_l
    plts = [plt(d(6), threshold - 5), *(plt(d(n), threshold) for n in (8, 9, 10))]
    assert _platelets_under(policy, plts, []) == d(8)


def test_one_value_and_one_transfusion_free_day_are_a_valid_policy() -> None:
    """The policy's least values: the first value >= 20 on a day with no platelet transfusion
    that day is the recovery date, a transfusion the day before notwithstanding."""
    policy = Policy(recovery_consecutive_values=1, platelet_transfusion_free_days=1)
    threshold = policy.platelet_recovery_x10e9_per_l
    plts = [plt(d(6), threshold - 10), plt(d(8), threshold + 5)]
    assert _platelets_under(policy, plts, [transfusion(d(7))]) == d(8)


# --- secondary graft failure ------------------------------------------------------------------


def test_secondary_graft_failure_three_consecutive_low_days() -> None:
    labs = [*S01_ANC, anc(d(20), 1.1), anc(d(30), 0.3), anc(d(31), 0.2), anc(d(32), 0.1)]
    assert failure(labs, date(2026, 2, 15)) == d(30)


def test_secondary_graft_failure_counts_values_on_different_days_not_calendar_days() -> None:
    """Twice-weekly outpatient labs (Mon D+30, Thu D+33, Mon D+37) all < 0.5 are 3 consecutive
    values on different days: the recovery rule's gaps [F:CIBMTR-ANC] applied to the fall
    [F:CIBMTR-SUBSEQ]. The old reading (adjacent calendar days) never let them qualify."""
    labs = [*S01_ANC, anc(d(30), 0.3), anc(d(33), 0.2), anc(d(37), 0.1)]
    assert failure(labs, date(2026, 2, 15)) == d(30)
    assert failure(labs[:-1], date(2026, 2, 15)) is None  # two values are not three


def test_secondary_graft_failure_restarts_on_a_value_at_or_above_threshold_between_gaps() -> None:
    labs = [*S01_ANC, anc(d(30), 0.3), anc(d(33), 0.7), anc(d(37), 0.2), anc(d(40), 0.1), anc(d(44), 0.2)]
    assert failure(labs, date(2026, 2, 15)) == d(37)


def test_secondary_graft_failure_automated_value_at_threshold_neither_counts_nor_restarts() -> None:
    labs = [*S01_ANC, anc(d(30), 0.3), anc(d(31), ANC), anc(d(32), 0.2)]
    assert failure(labs, date(2026, 2, 15)) is None
    assert failure([*labs, anc(d(34), 0.1)], date(2026, 2, 15)) == d(30)


def test_secondary_graft_failure_manual_differential_at_threshold_restarts_the_count() -> None:
    """A manual differential of exactly 0.5 is a recovered value (ANC >= 0.5), not a low one."""
    manual = anc(d(31), ANC, method=LabMethod.MANUAL_DIFFERENTIAL)
    labs = [*S01_ANC, anc(d(30), 0.3), manual, anc(d(32), 0.2), anc(d(33), 0.1)]
    assert failure(labs, date(2026, 2, 15)) is None
    assert failure([*labs, anc(d(34), 0.1)], date(2026, 2, 15)) == d(32)


def test_secondary_graft_failure_on_a_single_low_value_when_the_policy_asks_for_one() -> None:
    labs = [*S01_ANC, anc(d(30), 0.3)]
    assert secondary_graft_failure(labs, date(2026, 2, 15), TZ, anc_x10e9_per_l=ANC, consecutive_days=1) == d(30)
    with pytest.raises(ValueError, match="consecutive_days"):
        secondary_graft_failure(labs, date(2026, 2, 15), TZ, anc_x10e9_per_l=ANC, consecutive_days=0)


def test_secondary_graft_failure_interrupted_by_a_recovered_day() -> None:
    labs = [*S01_ANC, anc(d(30), 0.3), anc(d(31), 0.6), anc(d(32), 0.2), anc(d(33), 0.1)]
    assert failure(labs, date(2026, 2, 15)) is None


def test_secondary_graft_failure_ignores_values_up_to_recovery() -> None:
    # S01's pre-nadir and nadir values are before the recovery date and never count.
    assert failure(S01_ANC, date(2026, 2, 15)) is None
    labs = [anc(d(5), 0.02), anc(d(6), 0.02), anc(d(7), 0.02)]
    assert failure(labs, d(11)) is None


# --- properties -------------------------------------------------------------------------------

ANC_VALUES = [0.0, 0.02, 0.05, 0.09, 0.1, 0.2, 0.4, 0.49, 0.5, 0.51, 0.6, 0.9, 1.5, 3.0]
METHODS = st.sampled_from([LabMethod.AUTOMATED, LabMethod.MANUAL_DIFFERENTIAL])


@st.composite
def anc_series(draw: st.DrawFn, first: int = -3, last: int = 40) -> list[LabValue]:
    n = draw(st.integers(min_value=0, max_value=30))
    return [
        anc(
            d(draw(st.integers(min_value=first, max_value=last))),
            draw(st.sampled_from(ANC_VALUES)),
            hour=draw(st.integers(min_value=0, max_value=23)),
            method=draw(METHODS),
        )
        for _ in range(n)
    ]


@given(anc_series())
def test_recovery_is_never_on_or_before_the_nadir(labs: list[LabValue]) -> None:
    got = recovery(labs, DAY0)
    if got is None:
        return
    bottom = low_point(labs, DAY0)
    assert bottom is not None
    assert got > bottom
    on_day = [v.anc_x10e9_per_l for v in labs if v.at.date() == got and v.anc_x10e9_per_l is not None]
    assert on_day
    assert all(value >= ANC for value in on_day)


def _completion_prefix(labs: list[LabValue]) -> tuple[list[LabValue], date] | None:
    """The shortest prefix (cut at a day) that already yields a recovery, and its last day."""
    for cut in sorted({v.at.date() for v in labs}):
        prefix = [v for v in labs if v.at.date() <= cut]
        if recovery(prefix, DAY0) is not None:
            return prefix, cut
    return None


@settings(max_examples=200, suppress_health_check=[HealthCheck.filter_too_much])
@given(anc_series(), st.lists(st.tuples(st.integers(1, 30), st.sampled_from(ANC_VALUES), METHODS), max_size=12))
def test_values_after_the_qualifying_values_never_move_the_date(
    labs: list[LabValue], extra: list[tuple[int, float, LabMethod]]
) -> None:
    found = _completion_prefix(labs)
    assume(found is not None)
    assert found is not None
    prefix, cut = found
    expected = recovery(prefix, DAY0)
    after_day0 = [v.anc_x10e9_per_l for v in prefix if v.at.date() >= DAY0 and v.anc_x10e9_per_l is not None]
    floor = min(after_day0)
    suffix = []
    for offset, value, method in extra:
        if floor >= NADIR_ANC:
            # No value below 0.1 yet: the nadir is the lowest value, so a later value may not
            # undercut it (that would be a new nadir, by definition).
            value = max(value, floor)
        suffix.append(anc(cut + timedelta(days=offset), value, method=method))
    assert recovery(prefix + suffix, DAY0) == expected


PLT_VALUES = [5.0, 12.0, 19.9, 20.0, 24.0, 40.0, 80.0]


@st.composite
def platelet_history(draw: st.DrawFn) -> tuple[list[LabValue], list[Transfusion]]:
    plts = [
        plt(d(draw(st.integers(-2, 45))), draw(st.sampled_from(PLT_VALUES)), hour=draw(st.integers(0, 23)))
        for _ in range(draw(st.integers(0, 35)))
    ]
    transfused = [
        transfusion(d(draw(st.integers(-5, 45))), draw(st.sampled_from(["platelets", "red_cells"])))
        for _ in range(draw(st.integers(0, 6)))
    ]
    return plts, transfused


@given(platelet_history(), st.data())
def test_a_platelet_transfusion_in_the_window_always_blocks_that_day(
    history: tuple[list[LabValue], list[Transfusion]], data: st.DataObject
) -> None:
    plts, transfused = history
    candidates = sorted({v.at.date() for v in plts})
    assume(candidates)
    day = data.draw(st.sampled_from(candidates))
    k = data.draw(st.integers(0, TRANSFUSION_FREE_DAYS - 1))
    got = platelets(plts, [*transfused, transfusion(day - timedelta(days=k))], DAY0)
    assert got != day


@given(platelet_history())
def test_platelet_recovery_day_is_transfusion_free_and_above_threshold(
    history: tuple[list[LabValue], list[Transfusion]],
) -> None:
    plts, transfused = history
    got = platelets(plts, transfused, DAY0)
    if got is None:
        return
    window = {got - timedelta(days=k) for k in range(TRANSFUSION_FREE_DAYS)}
    assert not any(t.at.date() in window for t in transfused if t.product == "platelets")
    values = [v.platelets_x10e9_per_l for v in plts if v.at.date() == got]
    assert values
    assert all(v is not None and v >= PLATELETS for v in values)


@given(platelet_history(), st.lists(st.integers(-5, 45), max_size=6))
def test_red_cell_transfusions_never_change_platelet_recovery(
    history: tuple[list[LabValue], list[Transfusion]], red_days: list[int]
) -> None:
    plts, transfused = history
    red = [transfusion(d(n), "red_cells") for n in red_days]
    assert platelets(plts, transfused + red, DAY0) == platelets(plts, transfused, DAY0)


@pytest.mark.parametrize("bad", [0, -1])
def test_counts_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        neutrophil_recovery(
            S01_ANC, S01_DAY0, TZ, anc_x10e9_per_l=ANC, consecutive_values=bad, nadir_anc_x10e9_per_l=0.1
        )
    with pytest.raises(ValueError, match="at least 1"):
        platelet_recovery(
            S01_PLT,
            [],
            S01_DAY0,
            tz=TZ,
            platelets_x10e9_per_l=20,
            consecutive_values=3,
            transfusion_free_days=bad,
        )
    with pytest.raises(ValueError, match="at least 1"):
        secondary_graft_failure(S01_ANC, S01_DAY0, TZ, anc_x10e9_per_l=ANC, consecutive_days=bad)
