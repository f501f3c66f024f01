"""GVHD prophylaxis and supportive care (docs/supportive-care.md) through the service, on both
backends: each guard's pass and refusal, the snapshot's compact values, and bad input.

The Days are the policy's defaults: PTCy on Day +3 and +4 with a calcineurin inhibitor or MMF
from Day +5 (the Luznik schedule), methotrexate on Day +1, +3, +6, +11, ATG before Day 0, G-CSF
from Day +5 [F:SRL-BEAM]. A guard test with another policy shows the numbers are the policy's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from states.care_payloads import PlanGvhdProphylaxis
from states.care_summary import care_summary
from states.facts import PathwayFacts
from states.guards import GUARDS
from states.payloads import Payload
from states.policy import Policy
from states.verdict import Attempt
from states.vocabulary import GraftSource, Phase, Role, Route
from tests.helpers_core import COMMANDS, fire, on, problems, reach, refused, rejected
from tests.walks import COORD, PHYS, RN, WALKS
from workflow.clock import ManualClock
from workflow.service import PathwayService

PTCY_PLAN = {
    "agents": [
        {"agent": "ptcy", "days": [3, 4]},
        {"agent": "tacrolimus", "from_day": 5},
        {"agent": "mmf", "from_day": 5},
    ]
}


def _dose(agent: str) -> dict[str, str]:
    return {"agent": agent, "dose": "50 mg/kg" if agent == "ptcy" else "1 mg"}


def _haplo_after_infusion(service: PathwayService, clock: ManualClock, plan: dict[str, Any] = PTCY_PLAN) -> str:
    """A haploidentical pathway on Day 0 with the PTCy plan recorded."""
    pid = reach(service, clock, "haploidentical", Phase.AWAITING_ENGRAFTMENT)
    fire(service, clock, pid, clock.now() + timedelta(hours=1), PHYS, "plan_gvhd_prophylaxis", plan)
    return pid


# --- GVHD prophylaxis: the plan --------------------------------------------------------------


def test_ptcy_plan_and_doses_on_their_days_are_kept_compactly(service: PathwayService, clock: ManualClock) -> None:
    day0 = WALKS["haploidentical"]().day0
    pid = _haplo_after_infusion(service, clock)
    for day, agent in ((3, "ptcy"), (4, "ptcy"), (5, "tacrolimus"), (5, "mmf"), (6, "tacrolimus"), (7, "tacrolimus")):
        fire(service, clock, pid, on(day0, day), RN, "record_prophylaxis_dose", _dose(agent))
    facts = service.snapshot(pid).facts
    assert [(p.agent, p.days, p.from_day) for p in facts.prophylaxis_plan] == [
        ("ptcy", (3, 4), None),
        ("tacrolimus", (), 5),
        ("mmf", (), 5),
    ]
    tacrolimus = facts.prophylaxis_given["tacrolimus"]
    # A continuous agent keeps a count and its first and last dates, not one item per dose.
    assert (tacrolimus.doses, tacrolimus.first_on, tacrolimus.last_on, tacrolimus.days) == (
        3,
        on(day0, 5).date(),
        on(day0, 7).date(),
        (),
    )
    assert facts.prophylaxis_given["ptcy"].days == (3, 4)
    summary = care_summary(facts, on(day0, 7).date())["gvhd_prophylaxis"]
    assert summary["ptcy"] == {"planned": "D+3, D+4", "doses": 2, "last_dose": on(day0, 4).date().isoformat()}
    assert summary["mmf"]["planned"] == "from D+5"


def test_a_plan_off_the_policy_schedule_is_refused_with_each_rule(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "haploidentical", Phase.CONDITIONING)
    at = clock.now() + timedelta(hours=1)
    cases = {
        "ptcy_days_off_policy": [{"agent": "ptcy", "days": [3, 5]}],
        "immunosuppression_too_early_under_ptcy": [
            {"agent": "ptcy", "days": [3, 4]},
            {"agent": "cyclosporine", "from_day": 3},
        ],
        "methotrexate_day_off_policy": [{"agent": "methotrexate", "days": [1, 3, 7]}],
        "atg_day_off_policy": [{"agent": "atg", "days": [-2, 0]}],
        "two_calcineurin_inhibitors": [
            {"agent": "tacrolimus", "from_day": -1},
            {"agent": "cyclosporine", "from_day": -1},
        ],
    }
    for code, agents in cases.items():
        assert refused(service, clock, pid, at, PHYS, "plan_gvhd_prophylaxis", {"agents": agents}) == (code,)
    # The classic short-course methotrexate plan with tacrolimus and ATG keeps the schedule.
    classic = [
        {"agent": "atg", "days": [-3, -2, -1]},
        {"agent": "tacrolimus", "from_day": -1},
        {"agent": "methotrexate", "days": [1, 3, 6, 11]},
    ]
    fire(service, clock, pid, at, PHYS, "plan_gvhd_prophylaxis", {"agents": classic})
    assert [p.agent for p in service.snapshot(pid).facts.prophylaxis_plan] == ["atg", "tacrolimus", "methotrexate"]


def test_the_schedule_comes_from_the_policy() -> None:
    """Another programme's Days: PTCy on Day +3 and +5, immunosuppression from Day +6."""
    policy = Policy(ptcy_days=(3, 5), ptcy_immunosuppression_from_day=6)
    facts = PathwayFacts(
        phase=Phase.CONDITIONING, route=Route.ALLOGENEIC, graft_source=GraftSource.PBSC, patient_ref="PT-0001"
    )

    def verdict(agents: list[dict[str, Any]]) -> tuple[str, ...]:
        payload: Payload = PlanGvhdProphylaxis.model_validate({"agents": agents})
        now = datetime(2026, 3, 1, 9, tzinfo=UTC)
        physician = Role.TRANSPLANT_PHYSICIAN
        attempt = Attempt("plan_gvhd_prophylaxis", facts, payload, now, now.date(), "dr", physician, policy)
        return GUARDS["prophylaxis_plan_fits"](attempt).reasons

    assert verdict([{"agent": "ptcy", "days": [3, 5]}, {"agent": "tacrolimus", "from_day": 6}]) == ()
    assert verdict([{"agent": "ptcy", "days": [3, 4]}, {"agent": "tacrolimus", "from_day": 5}]) == (
        "ptcy_days_off_policy",
        "immunosuppression_too_early_under_ptcy",
    )


def test_prophylaxis_is_refused_on_an_autologous_pathway(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.CONDITIONING)
    at = clock.now() + timedelta(hours=1)
    plan = {"agents": [{"agent": "cyclosporine", "from_day": -1}]}
    assert refused(service, clock, pid, at, PHYS, "plan_gvhd_prophylaxis", plan) == ("route_not_allogeneic",)
    reasons = refused(service, clock, pid, at, RN, "record_prophylaxis_dose", _dose("cyclosporine"))
    assert "route_not_allogeneic" in reasons


def test_a_malformed_plan_is_invalid_and_writes_nothing(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "haploidentical", Phase.CONDITIONING)
    at = clock.now() + timedelta(hours=1)

    def plan(agents: list[dict[str, Any]]) -> set[tuple[str, str]]:
        call = lambda: service.fire(pid, "plan_gvhd_prophylaxis", {"agents": agents}, actor=PHYS, at=at)  # noqa: E731
        return problems(rejected(service, pid, call))

    mmf = {"agent": "mmf", "from_day": 5}
    assert plan([{"agent": "ptcy", "from_day": 3}, mmf]) == {("payload.agents.0.days", "prophylaxis_schedule_shape")}
    assert plan([mmf, {"agent": "tacrolimus", "days": [5, 6]}]) == {
        ("payload.agents.1.days", "prophylaxis_schedule_shape")
    }
    assert plan([{"agent": "atg", "days": [-2, -2]}, mmf]) == {("payload.agents.0.days", "prophylaxis_schedule_shape")}
    twice = [{"agent": "mmf", "from_day": 5}, {"agent": "mmf", "from_day": 6}]
    assert plan(twice) == {("payload.agents", "prophylaxis_agent_twice")}


# --- GVHD prophylaxis: the doses -------------------------------------------------------------


def test_doses_off_the_plan_are_refused_with_their_rule(service: PathwayService, clock: ManualClock) -> None:
    day0 = WALKS["haploidentical"]().day0
    pid = _haplo_after_infusion(service, clock)

    def dose(day: int, agent: str, hour: int = 9) -> tuple[str, ...]:
        return refused(service, clock, pid, on(day0, day, hour), RN, "record_prophylaxis_dose", _dose(agent))

    assert dose(2, "ptcy") == ("prophylaxis_day_off_plan",)
    assert dose(1, "methotrexate") == ("prophylaxis_agent_not_in_plan",)
    fire(service, clock, pid, on(day0, 3), RN, "record_prophylaxis_dose", _dose("ptcy"))
    assert dose(3, "ptcy", hour=18) == ("prophylaxis_dose_already_given",)
    # Day +4 under PTCy: before the plan's start and before the policy's Day +5.
    assert dose(4, "tacrolimus") == ("prophylaxis_before_planned_start", "immunosuppression_too_early_under_ptcy")
    fire(service, clock, pid, on(day0, 5), RN, "record_prophylaxis_dose", _dose("tacrolimus"))
    assert service.snapshot(pid).facts.prophylaxis_given["tacrolimus"].doses == 1


def test_a_dose_before_any_plan_is_refused(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "haploidentical", Phase.AWAITING_ENGRAFTMENT)
    at = clock.now() + timedelta(hours=1)
    assert refused(service, clock, pid, at, RN, "record_prophylaxis_dose", _dose("tacrolimus")) == (
        "prophylaxis_agent_not_in_plan",
    )


# --- stays: admission, discharge, readmission --------------------------------------------------


def test_admission_discharge_and_readmission_give_the_length_of_stay(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["autologous"]()
    pid = reach(service, clock, "autologous", Phase.CONDITIONING)
    admitted = clock.now() + timedelta(minutes=30)
    fire(service, clock, pid, admitted, COORD, "admit")
    assert refused(service, clock, pid, admitted + timedelta(hours=1), COORD, "admit") == (
        "admission_already_recorded",
    )
    pid_day0 = walk.day0
    # on to Day 0 along the walk, then out on Day +14, back on Day +20 and out on Day +23
    start = next(i for i, step in enumerate(walk.steps) if step[2] == "start_conditioning")
    for at, actor, command, payload in walk.steps[start + 1 :]:
        fire(service, clock, pid, at, actor, command, payload)
        if command == "infuse":
            break
    fire(service, clock, pid, on(pid_day0, 14), COORD, "discharge")
    assert refused(service, clock, pid, on(pid_day0, 14, 15), COORD, "discharge") == ("already_discharged",)
    fire(service, clock, pid, on(pid_day0, 20), COORD, "readmit")
    assert refused(service, clock, pid, on(pid_day0, 20, 15), COORD, "readmit") == ("already_admitted",)
    facts = service.snapshot(pid).facts
    in_hospital = care_summary(facts, on(pid_day0, 21).date())
    assert in_hospital["in_hospital"] is True
    first_stay = (on(pid_day0, 14).date() - admitted.date()).days
    assert in_hospital["length_of_stay_days"] == first_stay + 1  # the open stay counts to today
    fire(service, clock, pid, on(pid_day0, 23), COORD, "discharge")
    facts = service.snapshot(pid).facts
    assert care_summary(facts, on(pid_day0, 40).date())["length_of_stay_days"] == first_stay + 3
    assert facts.discharged is True


def test_a_discharge_without_an_admission_is_kept_with_an_unknown_length(
    service: PathwayService, clock: ManualClock
) -> None:
    """As every pathway recorded before `admit` existed: the stay's length is unknown, not 0."""
    pid = reach(service, clock, "autologous", Phase.FOLLOW_UP)
    fire(service, clock, pid, clock.now() + timedelta(hours=1), COORD, "discharge")
    facts = service.snapshot(pid).facts
    assert facts.discharged is True
    assert care_summary(facts, clock.now().date())["length_of_stay_days"] is None


# --- G-CSF, infections, mucositis, transfusions ----------------------------------------------


def test_growth_factor_from_day_5_once(service: PathwayService, clock: ManualClock) -> None:
    day0 = WALKS["autologous"]().day0
    pid = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    gcsf = COMMANDS["start_growth_factor"][1]
    assert refused(service, clock, pid, on(day0, 4), RN, "start_growth_factor", gcsf) == ("growth_factor_too_early",)
    fire(service, clock, pid, on(day0, 5), RN, "start_growth_factor", gcsf)
    assert refused(service, clock, pid, on(day0, 6), RN, "start_growth_factor", gcsf) == (
        "growth_factor_already_started",
    )
    facts = service.snapshot(pid).facts
    assert care_summary(facts, on(day0, 6).date())["growth_factor"] == {
        "agent": "filgrastim",
        "started": on(day0, 5).date().isoformat(),
        "day": "D+5",
    }


def test_an_infection_is_recorded_with_its_onset_never_a_later_one(service: PathwayService, clock: ManualClock) -> None:
    day0 = WALKS["autologous"]().day0
    pid = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    late = {"organism": "Escherichia coli", "site": "bloodstream", "onset_on": on(day0, 8).date().isoformat()}
    assert refused(service, clock, pid, on(day0, 7), PHYS, "record_infection", late) == ("infection_onset_after_entry",)
    earlier = {**late, "onset_on": on(day0, 6).date().isoformat()}
    fire(service, clock, pid, on(day0, 7), PHYS, "record_infection", earlier)
    fire(service, clock, pid, on(day0, 9), PHYS, "record_infection", {"organism": "CMV", "site": "lung"})
    infections = care_summary(service.snapshot(pid).facts, on(day0, 9).date())["infections"]
    assert [(i["day"], i["organism"], i["site"]) for i in infections] == [
        ("D+6", "Escherichia coli", "bloodstream"),
        ("D+9", "CMV", "lung"),
    ]


def test_mucositis_keeps_its_worst_and_latest_grade(service: PathwayService, clock: ManualClock) -> None:
    day0 = WALKS["autologous"]().day0
    pid = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    for day, grade in ((4, 1), (7, 3), (8, 3), (10, 2)):
        fire(service, clock, pid, on(day0, day), RN, "record_mucositis", {"who_grade": grade})
    course = service.snapshot(pid).facts.mucositis
    assert course is not None
    # The peak is the first day of the worst grade.
    assert (course.peak_grade, course.peak_on, course.latest_grade, course.latest_on) == (
        3,
        on(day0, 7).date(),
        2,
        on(day0, 10).date(),
    )
    call = lambda: service.fire(pid, "record_mucositis", {"who_grade": 5}, actor=RN, at=on(day0, 11))  # noqa: E731
    assert problems(rejected(service, pid, call)) == {("payload.who_grade", "less_than_equal")}


@pytest.mark.parametrize("product", ["red_cells", "platelets"])
def test_transfusions_are_counted_by_product(service: PathwayService, clock: ManualClock, product: str) -> None:
    day0 = WALKS["autologous"]().day0
    pid = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    before = care_summary(service.snapshot(pid).facts, on(day0, 5).date())["transfusions"]
    fire(service, clock, pid, on(day0, 5), RN, "record_transfusion", {"product": product})
    after = care_summary(service.snapshot(pid).facts, on(day0, 5).date())["transfusions"]
    assert after[product] == before[product] + 1
    other = "platelets" if product == "red_cells" else "red_cells"
    assert after[other] == before[other]


def test_a_later_plan_replaces_the_earlier_and_keeps_the_doses_given(
    service: PathwayService, clock: ManualClock
) -> None:
    day0 = WALKS["haploidentical"]().day0
    pid = _haplo_after_infusion(service, clock)
    fire(service, clock, pid, on(day0, 5), RN, "record_prophylaxis_dose", _dose("mmf"))
    # MMF stopped, cyclosporine instead of tacrolimus from Day +6 (a toxicity, say).
    switched = {"agents": [{"agent": "ptcy", "days": [3, 4]}, {"agent": "cyclosporine", "from_day": 6}]}
    fire(service, clock, pid, on(day0, 5, 12), PHYS, "plan_gvhd_prophylaxis", switched)
    assert refused(service, clock, pid, on(day0, 6), RN, "record_prophylaxis_dose", _dose("mmf")) == (
        "prophylaxis_agent_not_in_plan",
    )
    fire(service, clock, pid, on(day0, 6, 10), RN, "record_prophylaxis_dose", _dose("cyclosporine"))
    summary = care_summary(service.snapshot(pid).facts, on(day0, 6).date())["gvhd_prophylaxis"]
    assert {agent: (item["planned"], item["doses"]) for agent, item in summary.items()} == {
        "ptcy": ("D+3, D+4", 0),
        "cyclosporine": ("from D+6", 1),
        "mmf": ("not in the current plan", 1),
    }
