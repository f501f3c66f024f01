"""Milestones and deadlines: what is due or overdue for a pathway on a given clinical date.

A pure function of the snapshot, the policy and the date. Names are public API (scenario
files assert them under `due` / `overdue`); docs/milestones.md lists each with its rule and
source. A milestone is `due` while its window is open and `overdue` once it has passed
unmet; a met milestone is neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from states.days import day_number
from states.engraftment import engrafted_from_start, neutrophil_recovery_of, recorded_recovery
from states.facts import PathwayFacts
from states.policy import Policy
from states.vocabulary import FINAL_PHASES, DonorType, Phase

Status = Literal["due", "overdue"]


@dataclass(frozen=True)
class Milestone:
    name: str
    status: Status
    due_on: date
    detail: str = ""
    opens: date | None = None
    """First day of the window (a worklist shows it); None when the milestone has no window."""
    closes: date | None = None
    """Last day of the window; None when it stays open until met."""


def _window(name: str, today: date, opens: date, closes: date | None, detail: str = "") -> Iterator[Milestone]:
    """`due` from `opens` to `closes` inclusive, `overdue` after `closes` (never, when None)."""
    if today < opens:
        return
    if closes is None or today <= closes:
        yield Milestone(name, "due", opens, detail, opens, closes)
    else:
        yield Milestone(name, "overdue", closes, detail, opens, closes)


def _after_infusion(facts: PathwayFacts, policy: Policy, today: date) -> Iterator[Milestone]:
    day0 = facts.day0
    if day0 is None:
        return
    day = day_number(today, day0)
    pre_engraftment = facts.phase is Phase.AWAITING_ENGRAFTMENT
    recovered = (
        recorded_recovery(facts) is not None
        or neutrophil_recovery_of(facts, policy) is not None
        or engrafted_from_start(facts, policy)
    )
    if pre_engraftment and not recovered:
        by = day0 + timedelta(days=policy.engraftment_expected_by_day)
        if today > by:
            yield Milestone("neutrophil_recovery_day28", "overdue", by, "no neutrophil recovery yet", closes=by)
        threshold = policy.primary_graft_failure_day[facts.graft_source]
        if day >= threshold:
            yield Milestone(
                "primary_graft_failure_review",
                "due",
                day0 + timedelta(days=threshold),
                "threshold day reached",
                opens=day0 + timedelta(days=threshold),
            )
    if facts.phase in (Phase.AWAITING_ENGRAFTMENT, Phase.FOLLOW_UP):
        if not any(a.kind == "day30" for a in facts.assessments):
            low, high = policy.day30_window
            yield from _window("day30_assessment", today, day0 + timedelta(days=low), day0 + timedelta(days=high))
        if facts.day100_on is None:
            low, high = policy.day100_window
            yield from _window("day100_assessment", today, day0 + timedelta(days=low), day0 + timedelta(days=high))
    if "post_transplant_day100" not in facts.forms:
        opens = day0 + timedelta(days=policy.post_transplant_form_day)
        closes = opens + timedelta(days=policy.registry_form_overdue_after_days)
        yield from _window("post_transplant_form_day100", today, opens, closes)


def _long_term(facts: PathwayFacts, policy: Policy, today: date) -> Iterator[Milestone]:
    """6-month and 1-year visits [F:CIBMTR-CONTACT] and their Post-TED forms [F:CIBMTR-2450],
    until a subsequent transplant takes over the patient's follow-up."""
    day0 = facts.day0
    if day0 is None or facts.next_pathway is not None or facts.phase not in (Phase.FOLLOW_UP, Phase.DAY100_COMPLETE):
        return
    visits = {a.kind for a in facts.assessments}
    for kind, (low, high) in (("month6", policy.month6_window), ("year1", policy.year1_window)):
        if kind not in visits:
            yield from _window(f"{kind}_followup", today, day0 + timedelta(days=low), day0 + timedelta(days=high))
    for form, day in (
        ("post_transplant_month6", policy.post_transplant_month6_form_day),
        ("post_transplant_year1", policy.post_transplant_year1_form_day),
    ):
        if form not in facts.forms:
            opens = day0 + timedelta(days=day)
            closes = opens + timedelta(days=policy.registry_form_overdue_after_days)
            yield from _window(form.replace("post_transplant_", "post_transplant_form_"), today, opens, closes)


def _product_disposition(facts: PathwayFacts, policy: Policy, today: date) -> Iterator[Milestone]:
    """Once a pathway is final, every product neither infused nor disposed of needs a disposition."""
    left = facts.undisposed_products()
    if facts.phase not in FINAL_PHASES or facts.ended_on is None or not left:
        return
    closes = facts.ended_on + timedelta(days=policy.product_disposition_overdue_after_days)
    detail = "without a disposition: " + ", ".join(sorted(p.product_id for p in left))
    yield from _window("product_disposition", today, facts.ended_on, closes, detail)


def _suspicion_review(facts: PathwayFacts, policy: Policy, today: date) -> Iterator[Milestone]:
    """A suspected graft failure asks for a physician's decision within the policy's window
    (docs/disease-course.md): confirmed by `declare_graft_failure` or cleared."""
    suspicion = facts.graft_failure_suspicion
    if suspicion is None:
        return
    closes = suspicion.on + timedelta(days=policy.graft_failure_suspicion_review_days)
    yield from _window("graft_failure_suspicion_review", today, suspicion.on, closes, f"{suspicion.kind} suspected")


def _before_infusion(facts: PathwayFacts, policy: Policy, today: date) -> Iterator[Milestone]:
    planned = facts.planned_day0
    if planned is not None and facts.day0 is None and facts.regimen is not None:
        given = [(d.plan_day, d.drug) for d in facts.doses]
        for dose in facts.regimen.plan:
            on = planned + timedelta(days=dose.day)
            if (dose.day, dose.drug) in given:
                given.remove((dose.day, dose.drug))
            elif on < today:
                yield Milestone(
                    "conditioning_dose", "overdue", on, f"{dose.drug} planned for day {dose.day}", on, on
                )
    started = facts.conditioning_started_on
    anchor = facts.day0 or planned
    if "pre_transplant" not in facts.forms and started is not None and anchor is not None:
        opens = started - timedelta(days=policy.pre_transplant_form_opens_days)
        yield from _window("pre_transplant_form", today, opens, anchor)
    yield from _donor_idm(facts, policy, today)


def _donor_idm(facts: PathwayFacts, policy: Policy, today: date) -> Iterator[Milestone]:
    """Donor IDM must be drawn within the window before the planned collection [F:CFR-1271.80]."""
    collection = facts.planned_collection_on
    if collection is None or facts.day0 is not None or collection < today:
        return
    collected = {p.donor_ref for p in facts.products.values()}
    for ref in facts.current_donors:
        candidate = facts.candidates.get(ref)
        if ref in collected or (candidate is not None and candidate.donor_type is DonorType.CORD_BLOOD):
            continue
        drawn = [r.drawn_on for r in facts.idm if r.donor_ref == ref]
        oldest_valid = collection - timedelta(days=policy.idm_window_days)
        if not drawn or max(drawn) < oldest_valid:
            yield Milestone(
                "donor_idm_repeat",
                "due",
                oldest_valid,
                f"donor {ref} needs IDM drawn on/after {oldest_valid}",
                opens=oldest_valid,
                closes=collection,
            )


def milestones(facts: PathwayFacts, policy: Policy, today: date) -> list[Milestone]:
    """Every open milestone of the pathway on `today` (a clinical date); a final pathway (deceased,
    withdrawn, transferred) has only its product disposition left."""
    found = list(_product_disposition(facts, policy, today))
    if facts.phase not in FINAL_PHASES:
        found += [
            *_before_infusion(facts, policy, today),
            *_after_infusion(facts, policy, today),
            *_long_term(facts, policy, today),
            *_suspicion_review(facts, policy, today),
        ]
    return sorted(found, key=lambda m: (m.due_on, m.name))
