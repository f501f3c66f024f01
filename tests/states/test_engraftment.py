"""Engraftment bound to a pathway (`states.engraftment`): the count starts at the latest Day 0
or rescue infusion, so labs drawn before it never decide a recovery date (PATHWAY.md
`rescue_infusion`: the re-engraftment is the rescue graft's, not the failed graft's)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from states.engraftment import (
    anc_never_below_of,
    count_start,
    neutrophil_recovery_of,
    platelet_recovery_50_of,
    platelet_recovery_of,
)
from states.facts import Infusion, LabValue, PathwayFacts, Transfusion
from states.policy import Policy
from states.vocabulary import GraftSource, Phase, Route

POLICY = Policy()
DAY0 = date(2026, 2, 4)
ANC_VALUES = [0.0, 0.02, 0.05, 0.2, 0.4, 0.5, 0.6, 0.9, 1.5]
PLT_VALUES = [5.0, 15.0, 20.0, 30.0, 49.0, 50.0, 80.0]


def at(n: int, hour: int = 7) -> datetime:
    return datetime(DAY0.year, DAY0.month, DAY0.day, hour, tzinfo=UTC) + timedelta(days=n)


def facts(labs: list[LabValue], infusions: list[Infusion], transfusions: tuple[Transfusion, ...] = ()) -> PathwayFacts:
    return PathwayFacts(
        phase=Phase.AWAITING_ENGRAFTMENT,
        route=Route.AUTOLOGOUS,
        graft_source=GraftSource.PBSC,
        patient_ref="PT-8F3A21",
        day0=DAY0,
        infusions=tuple(infusions),
        labs=tuple(labs),
        transfusions=transfusions,
    )


DAY0_INFUSION = Infusion(at=at(0, 11), kind="day0", products=("DIN-A",))


def lab(n: int, hour: int, anc: float | None, platelets: float | None) -> LabValue:
    return LabValue(at=at(n, hour), anc_x10e9_per_l=anc, platelets_x10e9_per_l=platelets)


labs_on = st.builds(
    lab,
    st.integers(-2, 60),
    st.integers(0, 23),
    st.one_of(st.none(), st.sampled_from(ANC_VALUES)),
    st.sampled_from(PLT_VALUES),
)


@settings(max_examples=200)
@given(
    st.lists(labs_on, max_size=40),
    st.lists(labs_on, max_size=40),
    st.integers(5, 40),
    st.sampled_from(["rescue", "dli", "boost"]),
)
def test_recovery_never_uses_labs_before_the_latest_infusion(
    before: list[LabValue], after: list[LabValue], rescue_day: int, kind: str
) -> None:
    """Whatever was drawn before the latest count-starting infusion, the dates are the same;
    and a recovery date is never before that infusion's day."""
    infusion = Infusion(at=at(rescue_day, 11), kind=kind, products=("DIN-B",))
    start = count_start(facts([], [DAY0_INFUSION, infusion]))
    assert start == (infusion.at if kind == "rescue" else DAY0_INFUSION.at)
    kept = [v for v in after if v.at >= start]
    dropped = [v for v in before if v.at < start]
    with_old = facts(dropped + kept, [DAY0_INFUSION, infusion])
    without = facts(kept, [DAY0_INFUSION, infusion])
    for derive in (neutrophil_recovery_of, platelet_recovery_of, platelet_recovery_50_of):
        found = derive(with_old, POLICY)
        assert found == derive(without, POLICY)
        assert found is None or found >= start.date()
    assert anc_never_below_of(with_old, POLICY) == anc_never_below_of(without, POLICY)


def test_rescue_moves_the_count_dli_does_not() -> None:
    engrafted = [lab(5, 7, 0.02, None), lab(11, 7, 0.6, None), lab(12, 7, 0.9, None), lab(13, 7, 1.6, None)]
    rescue = Infusion(at=at(30, 11), kind="rescue", products=("DIN-B",))
    dli = Infusion(at=at(30, 11), kind="dli", products=("DLI-1",))
    assert neutrophil_recovery_of(facts(engrafted, [DAY0_INFUSION, dli]), POLICY) == DAY0 + timedelta(days=11)
    assert neutrophil_recovery_of(facts(engrafted, [DAY0_INFUSION, rescue]), POLICY) is None


def test_a_day0_lab_drawn_before_the_infusion_is_not_post_transplant() -> None:
    """ANC 0.05 at 07:00 on Day 0, infusion at 11:00: no post-transplant nadir yet."""
    labs = [lab(0, 7, 0.05, None), lab(2, 7, 0.6, None), lab(3, 7, 0.7, None), lab(4, 7, 0.8, None)]
    assert neutrophil_recovery_of(facts(labs, [DAY0_INFUSION]), POLICY) is None
