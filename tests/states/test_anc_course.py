"""The milestone plan's "recovered yet?" (states.anc_course, lab by lab) against the rules as
stated over the whole list (states.recovery through states.engraftment), on generated courses.

Each course is asked after every lab, the facts holding the labs so far as the fold builds
them (the previous tuple plus one), so the answers come from the memo advanced one lab at a
time, from a fold again after a lab out of order, and from a fold from scratch.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import states.anc_course as anc_course
from states.engraftment import engrafted_from_start, neutrophil_recovery_of, recovered_by_labs
from states.facts import Infusion, LabMethod, LabValue, PathwayFacts
from states.policy import Policy
from states.vocabulary import GraftSource, Phase, Route

DAY0 = date(2026, 3, 6)
# At and around the thresholds (recovery 0.5, nadir 0.1 by default), and none.
ANC_VALUES = [None, 0.0, 0.05, 0.1, 0.3, 0.5, 0.6, 1.5]
# Zones a clinical day is not the UTC day in, one with a clock change at midnight in the span.
ZONES = ["UTC", "America/Sao_Paulo", "Asia/Kolkata", "America/Santiago"]


def instant(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(DAY0.year, DAY0.month, DAY0.day, hour, minute, tzinfo=UTC) + timedelta(days=day)


def facts(labs: tuple[LabValue, ...], zone: str, rescue_day: int | None, *, recorded: bool = True) -> PathwayFacts:
    """Facts on Day 0 (infused at 11:00 UTC, or before the infusion record when not `recorded`:
    the count then starts with every lab), a rescue infusion on `rescue_day` if given."""
    infusions = [Infusion(at=instant(0, 11), kind="day0", products=("DIN-A",))] if recorded else []
    if rescue_day is not None:
        infusions.append(Infusion(at=instant(rescue_day, 11), kind="rescue", products=("DIN-B",)))
    return PathwayFacts(
        phase=Phase.AWAITING_ENGRAFTMENT,
        route=Route.AUTOLOGOUS,
        graft_source=GraftSource.PBSC,
        patient_ref="PT-5C2E90",
        timezone=zone,
        day0=DAY0,
        infusions=tuple(infusions),
        labs=labs,
    )


def stated(f: PathwayFacts, policy: Policy) -> bool:
    """The answer as the rules state it over the whole list."""
    return neutrophil_recovery_of(f, policy) is not None or engrafted_from_start(f, policy)


# Few days and hours, so that labs share days and instants (and fall on either side of midnight
# in a zone behind or ahead of UTC).
lab_values = st.tuples(
    st.integers(-3, 20),  # day from Day 0
    st.sampled_from([0, 6, 18, 23]),
    st.sampled_from([0, 30]),
    st.sampled_from(ANC_VALUES),
    st.sampled_from(list(LabMethod)),
)
policies = st.builds(
    lambda consecutive, nadir, observed: Policy(
        recovery_consecutive_values=consecutive,
        anc_nadir_x10e9_per_l=nadir,
        anc_never_below_observed_to_day=observed,
    ),
    st.integers(1, 3),
    st.sampled_from([0.1, 0.5, 0.6]),  # the nadir's threshold below, at and above recovery's
    st.integers(1, 20),
)


@settings(max_examples=400)
@given(
    st.lists(lab_values, max_size=40),
    st.booleans(),
    st.sampled_from(ZONES),
    st.one_of(st.none(), st.integers(3, 15)),
    st.booleans(),
    policies,
)
def test_the_fold_answers_as_the_rules_state_after_every_lab(
    values: list[tuple[int, int, int, float | None, LabMethod]],
    in_time_order: bool,
    zone: str,
    rescue_day: int | None,
    recorded: bool,
    policy: Policy,
) -> None:
    labs = [
        LabValue(at=instant(day, hour, minute), anc_x10e9_per_l=anc, method=method, sequence=n)
        for n, (day, hour, minute, anc, method) in enumerate(values, start=1)
    ]
    if in_time_order:
        labs.sort(key=lambda lab: lab.at)
    so_far: tuple[LabValue, ...] = ()
    for lab in labs:
        so_far = (*so_far, lab)
        f = facts(so_far, zone, rescue_day, recorded=recorded)
        assert recovered_by_labs(f, policy) == stated(f, policy), f"after {len(so_far)} labs"


def test_a_lab_in_time_order_is_folded_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next lab after 300 costs one clinical date, not 301: the cost stays flat."""
    policy = Policy()
    labs = tuple(
        LabValue(at=instant(day // 3, 6 + day % 3), anc_x10e9_per_l=0.05, sequence=day) for day in range(1, 301)
    )
    assert not recovered_by_labs(facts(labs, "UTC", None), policy)
    dated: list[datetime] = []
    original = anc_course.clinical_date

    def counting(at: datetime, tz: str) -> date:
        dated.append(at)
        return original(at, tz)

    monkeypatch.setattr(anc_course, "clinical_date", counting)
    later = (*labs, LabValue(at=instant(101, 6), anc_x10e9_per_l=0.7, sequence=301))
    f = facts(later, "UTC", None)
    assert recovered_by_labs(f, policy) == stated(f, policy)
    assert dated == [later[-1].at]


def test_the_memo_keeps_one_entry_per_course(monkeypatch: pytest.MonkeyPatch) -> None:
    """Advanced lab by lab, a course is remembered once, not once per lab (each entry holds
    its labs: one per lab would keep the square of a long course's labs)."""
    monkeypatch.setattr(anc_course, "_MEMO", {})
    so_far: tuple[LabValue, ...] = ()
    for day in range(1, 61):
        so_far = (*so_far, LabValue(at=instant(day, 6), anc_x10e9_per_l=0.05 * day, sequence=day))
        recovered_by_labs(facts(so_far, "UTC", None), Policy())
    assert [labs for labs, _ in anc_course._MEMO.values()] == [so_far]


def test_a_backdated_lab_folds_the_course_again() -> None:
    """Three counting days recover; a lab below the threshold drawn between them, recorded
    last, restarts the run: the answer changes, as the rules over the whole list say."""
    policy = Policy(recovery_consecutive_values=3)
    nadir = LabValue(at=instant(8, 6), anc_x10e9_per_l=0.05, sequence=1)
    rising = tuple(
        LabValue(at=instant(day, 6), anc_x10e9_per_l=0.8, sequence=n) for n, day in enumerate((12, 13, 14), start=2)
    )
    course = (nadir, *rising)
    assert recovered_by_labs(facts(course, "UTC", None), policy)
    backdated = (*course, LabValue(at=instant(13, 18), anc_x10e9_per_l=0.2, sequence=5))
    f = facts(backdated, "UTC", None)
    assert stated(f, policy) is False
    assert recovered_by_labs(f, policy) is False


def course(*labs: tuple[int, int, float, LabMethod]) -> list[LabValue]:
    """Labs in the order recorded: (day, hour, ANC, method)."""
    return [
        LabValue(at=instant(day, hour), anc_x10e9_per_l=anc, method=method, sequence=n)
        for n, (day, hour, anc, method) in enumerate(labs, start=1)
    ]


AUTO, MANUAL = LabMethod.AUTOMATED, LabMethod.MANUAL_DIFFERENTIAL


@pytest.mark.parametrize(
    ("labs", "recovered"),
    [
        pytest.param(  # the fall shares its instant with a value above: that value is not before it
            course((0, 18, 0.8, AUTO), (3, 6, 0.8, AUTO), (3, 6, 0.2, AUTO)),
            False,
            id="a-fall-at-the-instant-of-a-value-above",
        ),
        pytest.param(  # recorded last, drawn first that day: the later values of the day are after the fall
            course((1, 18, 0.8, AUTO), (2, 12, 0.8, AUTO), (2, 18, 0.8, AUTO), (2, 6, 0.2, AUTO)),
            False,
            id="a-fall-recorded-after-later-values-of-its-day",
        ),
        pytest.param(  # an automated 0.5 does not take away the day a 0.6 counted
            course((1, 18, 0.05, AUTO), (2, 6, 0.6, AUTO), (2, 18, 0.5, AUTO), (3, 6, 0.6, AUTO), (4, 6, 0.6, AUTO)),
            True,
            id="an-indeterminate-value-after-a-counting-one",
        ),
        pytest.param(  # followed to Day +2 and never below: engrafted from the start
            course((1, 18, 0.8, AUTO), (2, 18, 0.9, MANUAL)),
            True,
            id="never-below-followed-to-the-day",
        ),
    ],
)
def test_courses_at_the_edges_of_the_rules(labs: list[LabValue], recovered: bool) -> None:
    policy = Policy(recovery_consecutive_values=3, anc_never_below_observed_to_day=2)
    so_far: tuple[LabValue, ...] = ()
    for lab in labs:
        so_far = (*so_far, lab)
        f = facts(so_far, "UTC", None)
        assert recovered_by_labs(f, policy) == stated(f, policy), f"after {len(so_far)} labs"
    assert recovered_by_labs(facts(so_far, "UTC", None), policy) is recovered
