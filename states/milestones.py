"""Milestones and deadlines: what is due or overdue for a pathway on a given clinical date.

Two steps, both pure. `schedule(facts, policy)` plans every milestone the facts leave open,
each with the dates that decide its status on any day; `Schedule.on(today)` reads that plan
for one date. `milestones(facts, policy, today)` is the two together, so the stored schedule
(pathways.schedule, written with the facts) and the facts always give the same answer.
Names are public API (scenario files assert them under `due` / `overdue`); docs/milestones.md
lists each with its rule and source. A milestone is `due` while its window is open and
`overdue` once it has passed unmet; a met milestone is neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from operator import itemgetter
from typing import Literal, NamedTuple, TypeGuard

from states.engraftment import recorded_recovery, recovered_by_labs
from states.facts import PathwayFacts
from states.policy import Policy
from states.vocabulary import FINAL_PHASES, DonorType, Phase

Status = Literal["due", "overdue"]

RULES = 1
"""The version of the rules below as a stored schedule records them. A release that changes
what `schedule` plans for the same facts and policy increases it: a plan stored under other
rules is then not read (`planned_by_these_rules`), the facts are, until `hsct db upgrade`
stores the plan anew."""

NO_SCHEDULE = f"[{RULES}]"
"""The stored text of a schedule with nothing planned (no zone is needed to read it)."""

_PREFIX = f"[{RULES},"

_DAY = timedelta(days=1)

# json.dumps(value, separators=(",", ":")) without a new encoder per call: a plan is stored by
# most commands. The same settings, so the same text as before.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class Milestone:
    name: str
    status: Status
    due_on: date
    detail: str = ""
    opens: date | None = None
    """First day of the window (a worklist shows it); None when the milestone has no window."""
    closes: date | None = None
    """Last day of the window; None when it stays open until met."""


class Planned(NamedTuple):
    """One open milestone as the facts fix it: shown from `shown_from` (None: from the start),
    `due` (reported on `due_on`) up to `closes`, and after `closes` `overdue` (reported on
    `closes`) or, when it `lapses`, no longer shown. A named tuple: a worklist reads one per
    open milestone of every pathway, and a tuple is built in a third of a frozen dataclass's time."""

    name: str
    detail: str
    due_on: date
    opens: date | None
    closes: date | None
    shown_from: date | None
    lapses: bool = False

    def on(self, today: date) -> Milestone | None:
        """The milestone as listed on `today`, or None when it is not shown that day."""
        if self.shown_from is not None and today < self.shown_from:
            return None
        if self.closes is None or today <= self.closes:
            return Milestone(self.name, "due", self.due_on, self.detail, self.opens, self.closes)
        if self.lapses:
            return None
        return Milestone(self.name, "overdue", self.closes, self.detail, self.opens, self.closes)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A pathway's planned milestones and the zone whose calendar dates they are."""

    timezone: str
    planned: tuple[Planned, ...]

    def on(self, today: date) -> list[Milestone]:
        """Every milestone shown on `today`, in (due_on, name) order."""
        found = [m for m in (p.on(today) for p in self.planned) if m is not None]
        return sorted(found, key=lambda m: (m.due_on, m.name))

    def dumps(self) -> str:
        """Compact JSON, `[RULES, zone, [name, detail, due_on, opens, closes, shown_from, lapses],
        ...]` with ISO dates (NO_SCHEDULE when nothing is planned): what pathways.schedule holds."""
        if not self.planned:
            return NO_SCHEDULE
        items = [
            [p.name, p.detail, p.due_on.isoformat(), _iso(p.opens), _iso(p.closes), _iso(p.shown_from), p.lapses]
            for p in self.planned
        ]
        return _ENCODE([RULES, self.timezone, *items])

    @classmethod
    def loads(cls, text: str) -> Schedule | None:
        """The schedule `dumps` wrote; None for NO_SCHEDULE. ValueError (or TypeError) when it is
        not one planned by these rules."""
        if text == NO_SCHEDULE:
            return None
        if not planned_by_these_rules(text):
            raise ValueError("not a schedule planned by these rules")
        _, zone, *items = json.loads(text)
        if not isinstance(zone, str):
            raise TypeError("a schedule's zone is a name")
        day = date.fromisoformat  # read for every open pathway by the worklist: no call per date beyond it
        planned = tuple(
            Planned(
                name,
                detail,
                day(due_on),
                None if opens is None else day(opens),
                None if closes is None else day(closes),
                None if shown is None else day(shown),
                lapses,
            )
            for name, detail, due_on, opens, closes, shown, lapses in items
        )
        return cls(zone, planned)


PLANNED_FROM: frozenset[str] = frozenset(
    {
        "phase", "timezone", "graft_source", "next_pathway", "ended_on",
        "planned_day0", "day0", "regimen", "doses", "conditioning_started_on", "infusions",
        "labs", "neutrophil_recovery_on", "day100_on", "assessments", "forms", "products",
        "planned_collection_on", "selected_donors", "emergency_donor", "candidates", "idm",
        "graft_failure_suspicion",
    }
)  # fmt: skip
"""The facts fields `schedule` reads, and nothing else (tests/states/test_schedule.py records
every field it touches). Facts holding equal values in these fields as facts already
planned get the same plan under the same policy: most commands (an adverse event, a transfusion,
supportive care) change none of them, and their plan need not be made again."""


SERIES_PLANNED_IN: frozenset[Phase] = frozenset({Phase.AWAITING_ENGRAFTMENT})
"""The phases in which `schedule` reads a series that grows with every value (the labs, for
neutrophil recovery). In any other phase, facts with their series left out plan the same, so
`audit verify` checks a stored plan without reading the series back into the facts
(tests/states/test_schedule.py records which phases read them)."""


_PLANNED_INPUTS = itemgetter(*sorted(PLANNED_FROM))


def plans_alike(before: PathwayFacts, after: PathwayFacts) -> bool:
    """Would `schedule` plan the same for `after` as for `before` (under one policy)? True when
    every field it reads holds an equal value. The fold carries unchanged values over as the
    same objects, which the comparison takes at once (identity first), so this costs two
    tuples and no call per field."""
    return bool(_PLANNED_INPUTS(before.__dict__) == _PLANNED_INPUTS(after.__dict__))


def planned_by_these_rules(text: str | None) -> TypeGuard[str]:
    """Was the stored schedule `text` planned by this release's rules (RULES)? A cheap test of
    its first member, so a stale plan (or none, NULL) is read from the facts instead."""
    return text is not None and (text == NO_SCHEDULE or text.startswith(_PREFIX))


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _window(name: str, opens: date, closes: date | None, detail: str = "") -> Planned:
    """`due` from `opens` to `closes` inclusive, `overdue` after `closes` (never, when None)."""
    return Planned(name, detail, opens, opens, closes, shown_from=opens)


def _overdue_after(name: str, closes: date, detail: str, opens: date | None = None) -> Planned:
    """Not shown up to `closes`, `overdue` from the day after."""
    return Planned(name, detail, closes, opens, closes, shown_from=closes + _DAY)


def _after_infusion(facts: PathwayFacts, policy: Policy) -> Iterator[Planned]:
    day0 = facts.day0
    if day0 is None:
        return
    if facts.phase is Phase.AWAITING_ENGRAFTMENT and not _recovered(facts, policy):
        by = day0 + timedelta(days=policy.engraftment_expected_by_day)
        yield _overdue_after("neutrophil_recovery_day28", by, "no neutrophil recovery yet")
        threshold = day0 + timedelta(days=policy.primary_graft_failure_day[facts.graft_source])
        yield _window("primary_graft_failure_review", threshold, None, "threshold day reached")
    if facts.phase in (Phase.AWAITING_ENGRAFTMENT, Phase.FOLLOW_UP):
        if not any(a.kind == "day30" for a in facts.assessments):
            low, high = policy.day30_window
            yield _window("day30_assessment", day0 + timedelta(days=low), day0 + timedelta(days=high))
        if facts.day100_on is None:
            low, high = policy.day100_window
            yield _window("day100_assessment", day0 + timedelta(days=low), day0 + timedelta(days=high))
    if "post_transplant_day100" not in facts.forms:
        opens = day0 + timedelta(days=policy.post_transplant_form_day)
        closes = opens + timedelta(days=policy.registry_form_overdue_after_days)
        yield _window("post_transplant_form_day100", opens, closes)


def _recovered(facts: PathwayFacts, policy: Policy) -> bool:
    """Neutrophil recovery confirmed or in the labs, or ANC never below 0.5 (engraftment-rules.md)."""
    return recorded_recovery(facts) is not None or recovered_by_labs(facts, policy)


def _long_term(facts: PathwayFacts, policy: Policy) -> Iterator[Planned]:
    """6-month and 1-year visits [F:CIBMTR-CONTACT] and their Post-TED forms [F:CIBMTR-2450],
    until a subsequent transplant takes over the patient's follow-up."""
    day0 = facts.day0
    if day0 is None or facts.next_pathway is not None or facts.phase not in (Phase.FOLLOW_UP, Phase.DAY100_COMPLETE):
        return
    visits = {a.kind for a in facts.assessments}
    for kind, (low, high) in (("month6", policy.month6_window), ("year1", policy.year1_window)):
        if kind not in visits:
            yield _window(f"{kind}_followup", day0 + timedelta(days=low), day0 + timedelta(days=high))
    for form, day in (
        ("post_transplant_month6", policy.post_transplant_month6_form_day),
        ("post_transplant_year1", policy.post_transplant_year1_form_day),
    ):
        if form not in facts.forms:
            opens = day0 + timedelta(days=day)
            closes = opens + timedelta(days=policy.registry_form_overdue_after_days)
            yield _window(form.replace("post_transplant_", "post_transplant_form_"), opens, closes)


def _product_disposition(facts: PathwayFacts, policy: Policy) -> Iterator[Planned]:
    """Once a pathway is final, every product neither infused nor disposed of needs a disposition."""
    left = facts.undisposed_products()
    if facts.phase not in FINAL_PHASES or facts.ended_on is None or not left:
        return
    closes = facts.ended_on + timedelta(days=policy.product_disposition_overdue_after_days)
    detail = "without a disposition: " + ", ".join(sorted(p.product_id for p in left))
    yield _window("product_disposition", facts.ended_on, closes, detail)


def _suspicion_review(facts: PathwayFacts, policy: Policy) -> Iterator[Planned]:
    """A suspected graft failure asks for a physician's decision within the policy's window
    (docs/disease-course.md): confirmed by `declare_graft_failure` or cleared."""
    suspicion = facts.graft_failure_suspicion
    if suspicion is None:
        return
    closes = suspicion.on + timedelta(days=policy.graft_failure_suspicion_review_days)
    yield _window("graft_failure_suspicion_review", suspicion.on, closes, f"{suspicion.kind} suspected")


def _before_infusion(facts: PathwayFacts, policy: Policy) -> Iterator[Planned]:
    planned = facts.planned_day0
    if planned is not None and facts.day0 is None and facts.regimen is not None:
        given = [(d.plan_day, d.drug) for d in facts.doses]
        for dose in facts.regimen.plan:
            on = planned + timedelta(days=dose.day)
            if (dose.day, dose.drug) in given:
                given.remove((dose.day, dose.drug))
            else:  # overdue the day after its planned day
                yield _overdue_after("conditioning_dose", on, f"{dose.drug} planned for day {dose.day}", opens=on)
    started = facts.conditioning_started_on
    anchor = facts.day0 or planned
    if "pre_transplant" not in facts.forms and started is not None and anchor is not None:
        opens = started - timedelta(days=policy.pre_transplant_form_opens_days)
        yield _window("pre_transplant_form", opens, anchor)
    yield from _donor_idm(facts, policy)


def _donor_idm(facts: PathwayFacts, policy: Policy) -> Iterator[Planned]:
    """Donor IDM must be drawn within the window before the planned collection [F:CFR-1271.80];
    shown until the planned collection day, then no longer (the collection re-checks it)."""
    collection = facts.planned_collection_on
    if collection is None or facts.day0 is not None:
        return
    collected = {p.donor_ref for p in facts.products.values()}
    for ref in facts.current_donors:
        candidate = facts.candidates.get(ref)
        if ref in collected or (candidate is not None and candidate.donor_type is DonorType.CORD_BLOOD):
            continue
        drawn = [r.drawn_on for r in facts.idm if r.donor_ref == ref]
        oldest_valid = collection - timedelta(days=policy.idm_window_days)
        if not drawn or max(drawn) < oldest_valid:
            detail = f"donor {ref} needs IDM drawn on/after {oldest_valid}"
            yield Planned("donor_idm_repeat", detail, oldest_valid, oldest_valid, collection, None, lapses=True)


def schedule(facts: PathwayFacts, policy: Policy) -> Schedule:
    """Every milestone the facts leave open, whatever the date; a final pathway (deceased,
    withdrawn, transferred) has only its product disposition left."""
    planned = list(_product_disposition(facts, policy))
    if facts.phase not in FINAL_PHASES:
        planned += [
            *_before_infusion(facts, policy),
            *_after_infusion(facts, policy),
            *_long_term(facts, policy),
            *_suspicion_review(facts, policy),
        ]
    return Schedule(facts.timezone, tuple(planned))


def milestones(facts: PathwayFacts, policy: Policy, today: date) -> list[Milestone]:
    """Every open milestone of the pathway on `today` (a clinical date): its schedule read on that day."""
    return schedule(facts, policy).on(today)
