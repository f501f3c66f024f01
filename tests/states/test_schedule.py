"""states.milestones: the schedule (planned dates) read on any day, and its stored JSON.

The rules themselves are tested through `milestones` (tests/test_milestones.py and the
scenarios); here, the three shapes a planned milestone takes at its boundaries, and the
round trip through `Schedule.dumps` / `Schedule.loads` that the worklist relies on.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from states.facts import PathwayFacts
from states.milestones import (
    NO_SCHEDULE,
    RULES,
    Milestone,
    Planned,
    Schedule,
    Status,
    planned_by_these_rules,
    schedule,
)
from states.policy import Policy
from states.vocabulary import Phase
from tests.helpers_core import reach
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


def test_the_remembered_recovery_answer_follows_every_input_it_read(
    service: PathwayService, clock: ManualClock
) -> None:
    """`_recovered` remembers its answer by the identity of what it read: facts that share the
    labs but differ elsewhere (a confirmed recovery, another policy) must not get the old answer."""
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
