"""Guards of GVHD prophylaxis and supportive care (docs/supportive-care.md). Registered in
`states.guards.GUARDS`; every Day and window comes from the Policy."""

from __future__ import annotations

from collections.abc import Iterable

from states import care_facts as cf
from states.care_payloads import PlanGvhdProphylaxis, RecordInfection, RecordProphylaxisDose, plan_day_of
from states.days import day_number
from states.policy import Policy
from states.verdict import PASS, Attempt, Verdict, refuse


def _too_early_under_ptcy(plan: Iterable[cf.PlannedAgent], agent: str, day: int, policy: Policy) -> bool:
    """Under PTCy no other immunosuppressant before `ptcy_immunosuppression_from_day`."""
    has_ptcy = any(p.agent == "ptcy" for p in plan)
    return has_ptcy and agent not in cf.FIXED_DAY_AGENTS and day < policy.ptcy_immunosuppression_from_day


def prophylaxis_plan_fits(a: Attempt) -> Verdict:
    """The plan keeps the policy's schedule: PTCy on `ptcy_days` (Day +3 and +4), a calcineurin
    inhibitor, MMF or sirolimus under PTCy from `ptcy_immunosuppression_from_day` (Day +5),
    methotrexate only on `methotrexate_days` (+1, +3, +6, +11), ATG within `atg_days` (before
    Day 0), and one calcineurin inhibitor at a time."""
    assert isinstance(a.payload, PlanGvhdProphylaxis)
    plan = [cf.PlannedAgent(agent=p.agent, days=p.days, from_day=p.from_day) for p in a.payload.agents]
    policy = a.policy
    low, high = policy.atg_days
    reasons = []
    for item in plan:
        if item.agent == "ptcy" and sorted(item.days) != sorted(policy.ptcy_days):
            reasons.append("ptcy_days_off_policy")
        if item.agent == "methotrexate" and not set(item.days) <= set(policy.methotrexate_days):
            reasons.append("methotrexate_day_off_policy")
        if item.agent == "atg" and not all(low <= d <= high for d in item.days):
            reasons.append("atg_day_off_policy")
        if item.from_day is not None and _too_early_under_ptcy(plan, item.agent, item.from_day, policy):
            reasons.append("immunosuppression_too_early_under_ptcy")
    if sum(1 for item in plan if item.agent in cf.CALCINEURIN_INHIBITORS) > 1:
        reasons.append("two_calcineurin_inhibitors")
    return refuse(*dict.fromkeys(reasons))


def prophylaxis_dose_in_plan(a: Attempt) -> Verdict:
    """A dose is of a planned agent, on a planned Day (fixed-day agents, once a Day) or from the
    planned start (the others); under PTCy never before `ptcy_immunosuppression_from_day`."""
    assert isinstance(a.payload, RecordProphylaxisDose)
    agent = a.payload.agent
    planned = next((p for p in a.facts.prophylaxis_plan if p.agent == agent), None)
    if planned is None:
        return refuse("prophylaxis_agent_not_in_plan")
    day = plan_day_of(a.facts, a.on)
    if day is None:
        return refuse("prophylaxis_day_off_plan")
    reasons = []
    if planned.from_day is None and day not in planned.days:
        reasons.append("prophylaxis_day_off_plan")
    if planned.from_day is not None and day < planned.from_day:
        reasons.append("prophylaxis_before_planned_start")
    course = a.facts.prophylaxis_given.get(agent)
    if planned.from_day is None and course is not None and day in course.days:
        reasons.append("prophylaxis_dose_already_given")
    if _too_early_under_ptcy(a.facts.prophylaxis_plan, agent, day, a.policy):
        reasons.append("immunosuppression_too_early_under_ptcy")
    return refuse(*reasons)


def stay_fits(a: Attempt) -> Verdict:
    """Stays follow one another: `admit` once (the transplant admission), `readmit` only when
    out of hospital, `discharge` only when in (a discharge with no admission recorded is
    accepted as in entries written before `admit` existed)."""
    stays = a.facts.stays
    inside = cf.in_hospital(stays)
    if a.command == "admit" and stays:
        return refuse("admission_already_recorded")
    if a.command == "readmit" and inside:
        return refuse("already_admitted")
    if a.command == "discharge" and stays and not inside:
        return refuse("already_discharged")
    return PASS


def growth_factor_day_fits(a: Attempt) -> Verdict:
    """G-CSF after the infusion starts on Day `growth_factor_earliest_day` (+5) or later, once."""
    day0 = a.facts.day0
    reasons = []
    if day0 is None or day_number(a.on, day0) < a.policy.growth_factor_earliest_day:
        reasons.append("growth_factor_too_early")
    if a.facts.growth_factor is not None:
        reasons.append("growth_factor_already_started")
    return refuse(*reasons)


def infection_onset_fits(a: Attempt) -> Verdict:
    """An infection's onset is not after the day it is recorded."""
    assert isinstance(a.payload, RecordInfection)
    onset = a.payload.onset_on
    return refuse("infection_onset_after_entry") if onset is not None and onset > a.on else PASS
