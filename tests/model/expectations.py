"""The model's side of T27: what it expects of each pathway, written without the library's
chart, guards or fold, so that a disagreement points at one of the two.

The route rules (docs/diagram.md, told here in the model's own words): every pathway starts
`referred`, `begin_evaluation` opens the evaluation, which ends in donor search (allogeneic) or
collection (autologous); a selected donor goes to work-up and, cleared, straight to ready for
conditioning (the default policy infuses allogeneic grafts fresh); collection ends ready for
conditioning; then conditioning, infusion (Day 0, awaiting engraftment), engraftment (follow-up)
and Day +100. Every other step of a walk is an event: the phase stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from states.vocabulary import CLOSED_PHASES, Phase
from tests.walks import Step, Walk

MAIN_PATH: dict[str, Phase | None] = {
    "begin_evaluation": Phase.EVALUATION,
    "complete_evaluation": None,  # by route: see `predicted_phase`
    "select_donor": Phase.DONOR_WORKUP,
    "clear_donor": Phase.READY_FOR_CONDITIONING,
    "complete_collection": Phase.READY_FOR_CONDITIONING,
    "start_conditioning": Phase.CONDITIONING,
    "infuse": Phase.AWAITING_ENGRAFTMENT,
    "confirm_engraftment": Phase.FOLLOW_UP,
    "complete_day100": Phase.DAY100_COMPLETE,
}

WALK_EPOCH = date(2026, 1, 5)
"""The day every walk of tests/walks.py is referred on; the model moves walks to its clock."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Expected:
    """One pathway as the model sees it. `pristine`: nothing but its walk's steps was accepted
    on it, so the route rules predict its phase, Day 0 and products; otherwise the model only
    follows what the service reports (and the invariants check it against the log)."""

    patient: str
    walk: Walk | None
    referred_at: datetime
    phase: Phase = Phase.REFERRED
    entries: int = 1
    next_step: int = 0
    pristine: bool = True
    day0: date | None = None
    products: set[str] = field(default_factory=set)

    @property
    def open(self) -> bool:
        return self.phase not in CLOSED_PHASES

    def next(self) -> Step | None:
        if self.walk is None or self.next_step >= len(self.walk.steps):
            return None
        return self.walk.steps[self.next_step]

    def predicted_phase(self, command: str) -> Phase:
        """Where a walk step takes a pristine pathway."""
        assert self.walk is not None
        if command == "complete_evaluation":
            return Phase.DONOR_SEARCH if self.walk.refer["route"] == "allogeneic" else Phase.COLLECTION
        return MAIN_PATH.get(command) or self.phase

    def took_step(self, command: str, payload: dict[str, Any]) -> None:
        """The walk step was accepted: Day 0 is the infusion's day, collections are products."""
        assert self.walk is not None
        self.next_step += 1
        if command == "infuse":
            self.day0 = self.walk.day0
        if command == "record_collection":
            self.products.add(payload["product_id"])


def moved(walk: Walk, patient: str, days: int) -> Walk:
    """`walk` for `patient`, every time and date in it `days` later (a later referral)."""
    delta = timedelta(days=days)

    def move(value: Any) -> Any:
        if isinstance(value, str) and _ISO_DATE.fullmatch(value):
            return (date.fromisoformat(value) + delta).isoformat()
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    walk = walk.for_patient(patient)
    steps = tuple((at + delta, actor, command, move(payload)) for at, actor, command, payload in walk.steps)
    return Walk(walk.name, walk.refer, steps, walk.day0 + delta)
