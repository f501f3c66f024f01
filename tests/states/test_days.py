"""Day numbering (HSCT_REFERENCE.md §0 "Day -N / Day +N", §4 and the scenario day labels of §5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.days import clinical_date, date_of_day, day_label, day_number, parse_day_label

# (scenario, Day 0, date, day number as written in the reference's brackets)
SCENARIO_DAYS = [
    ("S01 Mel200", date(2026, 2, 4), date(2026, 2, 2), -2),
    ("S01 rest", date(2026, 2, 4), date(2026, 2, 3), -1),
    ("S01 infuse", date(2026, 2, 4), date(2026, 2, 4), 0),
    ("S01 ANC", date(2026, 2, 4), date(2026, 2, 15), 11),
    ("S01 platelets", date(2026, 2, 4), date(2026, 2, 19), 15),
    ("S01 day100", date(2026, 2, 4), date(2026, 5, 15), 100),
    ("S02 carmustine", date(2026, 2, 16), date(2026, 2, 10), -6),
    ("S02 filgrastim", date(2026, 2, 16), date(2026, 2, 21), 5),
    ("S02 platelets", date(2026, 2, 16), date(2026, 3, 4), 16),
    ("S05 Bu", date(2026, 1, 21), date(2026, 1, 14), -7),
    ("S05 platelets", date(2026, 1, 21), date(2026, 2, 13), 23),
    ("S05 day100", date(2026, 1, 21), date(2026, 5, 1), 100),
    ("S07 Cy", date(2026, 4, 8), date(2026, 4, 2), -6),
    ("S07 early day100", date(2026, 4, 8), date(2026, 6, 22), 75),
    ("S07 day100", date(2026, 4, 8), date(2026, 7, 17), 100),
    ("S13 HCT1 declare", date(2026, 2, 25), date(2026, 3, 27), 30),
    ("S13 HCT2 ANC", date(2026, 4, 6), date(2026, 4, 22), 16),
    ("S14 conditioning", date(2026, 3, 11), date(2026, 3, 3), -8),
    ("S14 ANC", date(2026, 3, 11), date(2026, 4, 4), 24),
    ("S14 platelets", date(2026, 3, 11), date(2026, 4, 25), 45),
    ("S14 day100", date(2026, 3, 11), date(2026, 6, 19), 100),
    ("S15 declare", date(2026, 4, 1), date(2026, 5, 6), 35),
    ("S17 GVHD", date(2026, 3, 18), date(2026, 4, 15), 28),
    ("S19 Bu", date(2026, 7, 15), date(2026, 7, 8), -7),
]


@pytest.mark.parametrize(("name", "day0", "on", "expected"), SCENARIO_DAYS, ids=[s[0] for s in SCENARIO_DAYS])
def test_scenario_day_numbers(name: str, day0: date, on: date, expected: int) -> None:
    assert day_number(on, day0) == expected
    assert date_of_day(day0, expected) == on


def test_second_transplant_days_use_their_own_day0() -> None:
    # S13: HCT#2 labels must not be computed from the HCT#1 Day 0.
    hct1_day0, hct2_day0 = date(2026, 2, 25), date(2026, 4, 6)
    anc_on = date(2026, 4, 22)
    assert day_label(day_number(anc_on, hct2_day0)) == "D+16"
    assert day_label(day_number(anc_on, hct1_day0)) != "D+16"


@pytest.mark.parametrize(
    ("n", "label"),
    [(-2, "D-2"), (-1, "D-1"), (0, "D0"), (1, "D+1"), (11, "D+11"), (100, "D+100")],
)
def test_day_labels(n: int, label: str) -> None:
    assert day_label(n) == label
    assert parse_day_label(label) == n


def test_there_is_no_minus_zero() -> None:
    assert day_label(0) == "D0"
    assert day_label(-0) == "D0"
    for bad in ("D-0", "D+0"):
        with pytest.raises(ValueError, match="not a day label"):
            parse_day_label(bad)


@pytest.mark.parametrize("bad", ["D11", "D+011", "d+1", "D +1", "Day+1", "D\u22122", "", "D", "D+"])
def test_parse_rejects_non_canonical_labels(bad: str) -> None:
    with pytest.raises(ValueError, match="not a day label"):
        parse_day_label(bad)


def test_clinical_date_uses_the_program_timezone() -> None:
    late_utc = datetime(2026, 2, 14, 23, 30, tzinfo=UTC)
    assert clinical_date(late_utc, "UTC") == date(2026, 2, 14)
    assert clinical_date(late_utc, "Europe/Berlin") == date(2026, 2, 15)
    early_utc = datetime(2026, 2, 15, 3, 0, tzinfo=UTC)
    assert clinical_date(early_utc, "America/New_York") == date(2026, 2, 14)


def test_clinical_date_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clinical_date(datetime(2026, 2, 15, 12, 0), "UTC")


def test_clinical_date_follows_daylight_saving() -> None:
    # 2026-03-29 01:00 UTC is 03:00 CEST in Berlin (clocks went forward at 01:00 UTC).
    assert clinical_date(datetime(2026, 3, 28, 22, 59, tzinfo=UTC), "Europe/Berlin") == date(2026, 3, 28)
    assert clinical_date(datetime(2026, 3, 28, 23, 0, tzinfo=UTC), "Europe/Berlin") == date(2026, 3, 29)


days_ = st.integers(min_value=-400, max_value=400)
dates_ = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@given(days_)
def test_label_parses_back_to_its_number(n: int) -> None:
    label = day_label(n)
    assert parse_day_label(label) == n
    assert label.startswith("D+") == (n > 0)
    assert label.startswith("D-") == (n < 0)


@given(days_, days_)
def test_labels_are_distinct(a: int, b: int) -> None:
    assert (day_label(a) == day_label(b)) == (a == b)


@given(dates_, dates_, days_)
def test_shifting_day0_by_k_shifts_every_number_by_minus_k(on: date, day0: date, k: int) -> None:
    assert day_number(on, day0 + timedelta(days=k)) == day_number(on, day0) - k


@given(dates_, days_)
def test_date_of_day_inverts_day_number(day0: date, n: int) -> None:
    on = date_of_day(day0, n)
    assert day_number(on, day0) == n
    assert (on - day0).days == n


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)))
def test_clinical_date_in_utc_is_the_utc_date(at: datetime) -> None:
    assert clinical_date(at, "UTC") == at.date()
