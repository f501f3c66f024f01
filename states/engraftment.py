"""Recovery dates of a pathway, as the policy defines them, from the labs known by a time.

One place that binds the snapshot and the policy to the pure rules of `states.recovery`, for
the guards, the milestones and the snapshot alike. Engraftment is counted from the latest
infusion that starts an aplasia: Day 0, or a rescue infusion after graft failure. Labs drawn
before it never count, so a re-engraftment is never dated by the failed graft's counts. A
second infusion day, a boost or a DLI of the same HCT does not restart the count.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from states.anc_course import Rules, recovered
from states.days import clinical_date
from states.facts import LabValue, PathwayFacts
from states.policy import Policy
from states.recovery import anc_never_below, neutrophil_recovery, platelet_recovery

COUNT_STARTS = frozenset({"day0", "rescue"})
"""Infusion kinds that (re)start the engraftment count (`infuse`, `rescue_infusion`)."""


def count_start(facts: PathwayFacts, until: datetime | None = None) -> datetime | None:
    """When the latest count-starting infusion (by `until`) began; None before Day 0."""
    starts = [i.at for i in facts.infusions if i.kind in COUNT_STARTS and (until is None or i.at <= until)]
    return max(starts, default=None)


def labs_since_start(facts: PathwayFacts, until: datetime | None = None) -> tuple[date, list[LabValue]] | None:
    """The clinical date the count starts on and the labs drawn from then until `until`.

    A pathway whose infusions predate the infusion record counts from Day 0, as it always did.
    """
    if facts.day0 is None:
        return None
    start = count_start(facts, until)
    labs = [lab for lab in facts.labs if (until is None or lab.at <= until) and (start is None or lab.at >= start)]
    return (facts.day0 if start is None else clinical_date(start, facts.timezone)), labs


def neutrophil_recovery_of(facts: PathwayFacts, policy: Policy, until: datetime | None = None) -> date | None:
    """First of 3 values >= 0.5 on different days after the nadir [F:CIBMTR-ANC]."""
    counted = labs_since_start(facts, until)
    if counted is None:
        return None
    start, labs = counted
    return neutrophil_recovery(
        labs,
        start,
        facts.timezone,
        anc_x10e9_per_l=policy.anc_recovery_x10e9_per_l,
        consecutive_values=policy.recovery_consecutive_values,
        nadir_anc_x10e9_per_l=policy.anc_nadir_x10e9_per_l,
    )


def _followed_never_below(facts: PathwayFacts, policy: Policy, start: date, labs: list[LabValue]) -> bool:
    tz = facts.timezone
    drawn = [clinical_date(lab.at, tz) for lab in labs if lab.anc_x10e9_per_l is not None]
    followed = bool(drawn) and max(drawn) >= start + timedelta(days=policy.anc_never_below_observed_to_day)
    return followed and anc_never_below(labs, start, tz, anc_x10e9_per_l=policy.anc_recovery_x10e9_per_l)


def anc_never_below_of(facts: PathwayFacts, policy: Policy, until: datetime | None = None) -> bool:
    """CIBMTR's "ANC never below 0.5" [F:CIBMTR-ANC], affirmed once ANC was followed to Day
    +`anc_never_below_observed_to_day` (a patient on Day +2 has simply not fallen yet)."""
    counted = labs_since_start(facts, until)
    return counted is not None and _followed_never_below(facts, policy, *counted)


def engrafted_from_start(facts: PathwayFacts, policy: Policy, until: datetime | None = None) -> bool:
    """CIBMTR's "ANC never below 0.5" affirmed before ANC first fell below it: the patient was
    engrafted from the start of the count, so a later fall is a secondary graft failure
    [F:CIBMTR-SUBSEQ], not an engraftment that never was (docs/engraftment-rules.md)."""
    counted = labs_since_start(facts, until)
    if counted is None:
        return False
    start, labs = counted
    threshold = policy.anc_recovery_x10e9_per_l
    falls = [lab.at for lab in labs if lab.anc_x10e9_per_l is not None and lab.anc_x10e9_per_l < threshold]
    first_fall = min(falls, default=None)
    before = [lab for lab in labs if first_fall is None or lab.at < first_fall]
    return _followed_never_below(facts, policy, start, before)


def recovered_by_labs(facts: PathwayFacts, policy: Policy) -> bool:
    """`neutrophil_recovery_of(facts, policy) is not None or engrafted_from_start(facts, policy)`,
    answered in constant time as labs are appended (`states.anc_course`): the milestone plan of
    a pathway waiting for engraftment asks it after every lab value."""
    if facts.day0 is None:
        return False
    start = count_start(facts)
    start_day = facts.day0 if start is None else clinical_date(start, facts.timezone)
    rules = Rules(
        facts.timezone,
        start,
        start_day,
        recovery=policy.anc_recovery_x10e9_per_l,
        nadir=policy.anc_nadir_x10e9_per_l,
        consecutive=policy.recovery_consecutive_values,
        observed_to=start_day + timedelta(days=policy.anc_never_below_observed_to_day),
    )
    return recovered(facts.labs, rules)


def recorded_recovery(facts: PathwayFacts) -> date | None:
    """The confirmed neutrophil recovery date, if it belongs to the current count (a rescue
    infusion leaves the failed graft's date in the facts, but it no longer counts)."""
    start = count_start(facts)
    recovered = facts.neutrophil_recovery_on
    if recovered is None or start is None or recovered >= clinical_date(start, facts.timezone):
        return recovered
    return None


def _platelets_of(facts: PathwayFacts, policy: Policy, until: datetime | None, threshold: float) -> date | None:
    counted = labs_since_start(facts, until)
    if counted is None:
        return None
    start, labs = counted
    return platelet_recovery(
        labs,
        [t for t in facts.transfusions if until is None or t.at <= until],
        start,
        tz=facts.timezone,
        platelets_x10e9_per_l=threshold,
        consecutive_values=policy.recovery_consecutive_values,
        transfusion_free_days=policy.platelet_transfusion_free_days,
    )


def platelet_recovery_of(facts: PathwayFacts, policy: Policy, until: datetime | None = None) -> date | None:
    """First of 3 values >= 20 with no platelet transfusion in the 7 days ending that day [F:CIBMTR-PLT]."""
    return _platelets_of(facts, policy, until, policy.platelet_recovery_x10e9_per_l)


def platelet_recovery_50_of(facts: PathwayFacts, policy: Policy, until: datetime | None = None) -> date | None:
    """The same rule at >= 50, the second date CIBMTR Form 2100 asks for [F:CIBMTR-PLT]."""
    return _platelets_of(facts, policy, until, policy.platelet_recovery_50_x10e9_per_l)
