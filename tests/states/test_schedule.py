"""states.milestones: the schedule (planned dates) read on any day, and its stored JSON.

The rules themselves are tested through `milestones` (tests/test_milestones.py and the
scenarios); here, the three shapes a planned milestone takes at its boundaries, and the
round trip through `Schedule.dumps` / `Schedule.loads` that the worklist relies on.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from persistence.series import SERIES_FIELDS
from states.facts import PathwayFacts
from states.fold import replay
from states.milestones import (
    NO_SCHEDULE,
    PLANNED_FROM,
    RULES,
    SERIES_PLANNED_IN,
    Milestone,
    Planned,
    Schedule,
    Status,
    planned_by_these_rules,
    plans_alike,
    schedule,
)
from states.policy import Policy
from states.vocabulary import FINAL_PHASES, Phase
from tests.helpers_core import reach
from tests.walks import WALKS, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService

OPENS, CLOSES = date(2026, 3, 4), date(2026, 3, 11)
DAY = timedelta(days=1)

WINDOW = Planned("day30_assessment", "", OPENS, OPENS, CLOSES, shown_from=OPENS)
OVERDUE_AFTER = Planned("neutrophil_recovery_day28", "no neutrophil recovery yet", CLOSES, None, CLOSES, CLOSES + DAY)
LAPSES = Planned("donor_idm_repeat", "donor D1 needs IDM", OPENS, OPENS, CLOSES, None, lapses=True)
OPEN_ENDED = Planned("primary_graft_failure_review", "threshold day reached", OPENS, OPENS, None, shown_from=OPENS)


@pytest.mark.parametrize(
    ("planned", "day", "expected"),
    [
        (WINDOW, OPENS - DAY, None),
        (WINDOW, OPENS, ("due", OPENS)),
        (WINDOW, CLOSES, ("due", OPENS)),
        (WINDOW, CLOSES + DAY, ("overdue", CLOSES)),
        (OVERDUE_AFTER, CLOSES, None),
        (OVERDUE_AFTER, CLOSES + DAY, ("overdue", CLOSES)),
        (LAPSES, OPENS - 30 * DAY, ("due", OPENS)),
        (LAPSES, CLOSES, ("due", OPENS)),
        (LAPSES, CLOSES + DAY, None),
        (OPEN_ENDED, OPENS - DAY, None),
        (OPEN_ENDED, OPENS + 1000 * DAY, ("due", OPENS)),
    ],
)
def test_a_planned_milestone_on_each_side_of_its_dates(
    planned: Planned, day: date, expected: tuple[Status, date] | None
) -> None:
    found = planned.on(day)
    if expected is None:
        assert found is None
        return
    status, due_on = expected
    assert found == Milestone(planned.name, status, due_on, planned.detail, planned.opens, planned.closes)


def test_the_stored_text_reads_back_as_the_same_schedule() -> None:
    schedule = Schedule("Europe/Paris", (WINDOW, OVERDUE_AFTER, LAPSES, OPEN_ENDED))
    text = schedule.dumps()
    assert Schedule.loads(text) == schedule
    assert ", " not in text  # compact separators
    assert Schedule("Europe/Paris", ()).dumps() == NO_SCHEDULE
    assert Schedule.loads(NO_SCHEDULE) is None


def test_the_schedule_lists_what_is_shown_in_due_date_order() -> None:
    schedule = Schedule("UTC", (WINDOW, OVERDUE_AFTER, LAPSES, OPEN_ENDED))
    on = CLOSES + DAY
    assert [(m.name, m.status) for m in schedule.on(on)] == [
        ("primary_graft_failure_review", "due"),
        ("day30_assessment", "overdue"),
        ("neutrophil_recovery_day28", "overdue"),
    ]


@pytest.mark.parametrize(
    "text", [f'[{RULES},"UTC",["a"]]', f'[{RULES},"UTC",[1,2,3,4,5,6,7]]', f"[{RULES},1]", '["UTC"]', "not json"]
)
def test_a_text_that_is_not_a_schedule_of_these_rules_raises_value_or_type_error(text: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        Schedule.loads(text)


def test_a_plan_of_other_rules_is_recognised_without_parsing_it() -> None:
    current = Schedule("UTC", (WINDOW,)).dumps()
    assert planned_by_these_rules(current)
    assert planned_by_these_rules(NO_SCHEDULE)
    assert not planned_by_these_rules(current.replace(f"[{RULES},", f"[{RULES + 1},", 1))
    assert not planned_by_these_rules(f"[{RULES - 1}]")


def _planned_names(facts: PathwayFacts, policy: Policy) -> set[str]:
    return {planned.name for planned in schedule(facts, policy).planned}


def test_facts_sharing_their_labs_plan_by_every_input_the_recovery_reads(
    service: PathwayService, clock: ManualClock
) -> None:
    """Facts that share the labs but differ elsewhere (a confirmed recovery, another Day 0) plan
    by what they hold: nothing is carried from facts planned before."""
    pathway_id = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    facts = service.snapshot(pathway_id).facts
    policy = service.policy
    assert facts.day0 is not None
    assert "neutrophil_recovery_day28" in _planned_names(facts, policy)  # no recovery yet
    assert "neutrophil_recovery_day28" in _planned_names(facts, policy)  # the same objects again
    confirmed = facts.model_copy(update={"neutrophil_recovery_on": facts.day0 + timedelta(days=14)})
    assert confirmed.labs is facts.labs
    assert "neutrophil_recovery_day28" not in _planned_names(confirmed, policy)
    assert "neutrophil_recovery_day28" in _planned_names(facts, policy)
    day0_later = facts.model_copy(update={"day0": facts.day0 + timedelta(days=1)})
    assert schedule(day0_later, policy) == schedule(
        PathwayFacts.model_validate_json(day0_later.model_dump_json()), policy
    )


class _Recording(PathwayFacts):
    """Facts that note every field read from them (through methods and properties too)."""

    def __getattribute__(self, name: str) -> object:
        if name in PathwayFacts.model_fields:
            _READ.add(name)
        return super().__getattribute__(name)


_READ: set[str] = set()


def _facts_along_every_walk(service: PathwayService, clock: ManualClock) -> list[PathwayFacts]:
    """The facts after every entry of every walk, and in the final phases no walk reaches."""
    ids = [run_walk(service, clock, walk()) for walk in WALKS.values()]
    ids += [reach(service, clock, "autologous", phase) for phase in sorted(FINAL_PHASES)]
    ids.append(reach(service, clock, "matched_unrelated", Phase.CONDITIONING))
    found = []
    for pathway_id in ids:
        entries = service.history(pathway_id)
        found += [replay(entries[:count]) for count in range(1, len(entries) + 1)]
    return found


def test_the_schedule_reads_only_the_fields_it_is_planned_from(service: PathwayService, clock: ManualClock) -> None:
    """`plans_alike` compares PLANNED_FROM alone: a field the rules read outside it would leave a
    stale plan stored, one inside it that no rule reads would only cost a comparison."""
    read: set[str] = set()
    for facts in _facts_along_every_walk(service, clock):
        _READ.clear()
        recording = _Recording.model_construct(facts.model_fields_set, **facts.__dict__)
        assert schedule(recording, service.policy) == schedule(facts, service.policy)
        read |= _READ
    assert read <= PLANNED_FROM, f"read but not in PLANNED_FROM: {sorted(read - PLANNED_FROM)}"
    assert read == PLANNED_FROM, f"in PLANNED_FROM, never read here: {sorted(PLANNED_FROM - read)}"


def test_the_series_are_read_only_in_the_phases_that_plan_from_them(
    service: PathwayService, clock: ManualClock
) -> None:
    """`audit verify` checks a stored plan against the facts without their series outside
    SERIES_PLANNED_IN: the rules read a series in exactly those phases, and elsewhere facts
    with their series left out plan the same."""
    reading: set[Phase] = set()
    elsewhere_with_values = 0
    for facts in _facts_along_every_walk(service, clock):
        _READ.clear()
        schedule(_Recording.model_construct(facts.model_fields_set, **facts.__dict__), service.policy)
        if _READ & set(SERIES_FIELDS):
            reading.add(facts.phase)
        if facts.phase not in SERIES_PLANNED_IN:
            left_out = facts.model_copy(update=dict.fromkeys(SERIES_FIELDS, ()))
            assert schedule(left_out, service.policy) == schedule(facts, service.policy), facts.phase
            elsewhere_with_values += any(getattr(facts, name) for name in SERIES_FIELDS)
    assert reading == SERIES_PLANNED_IN
    assert elsewhere_with_values, "some facts outside those phases hold series values"


def test_facts_alike_where_the_schedule_reads_share_its_plan(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    facts = service.snapshot(pathway_id).facts
    unread = next(name for name in PathwayFacts.model_fields if name not in PLANNED_FROM)
    assert plans_alike(facts, facts.model_copy(update={unread: getattr(facts, unread)}))
    assert plans_alike(facts, facts.model_copy(update={"adverse_events": ()}))
    assert not plans_alike(facts, facts.model_copy(update={"forms": list(facts.forms)}))
