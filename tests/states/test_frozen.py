"""`Frozen.model_copy` (states/frozen.py) gives what pydantic's own copy gives, and leaves the
original as it was: the fold copies the snapshot with it on every command."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel

from states.care_facts import Stay
from states.facts import LabValue, PathwayFacts
from states.vocabulary import Phase
from tests.states.guard_attempt import snapshot

AT = datetime(2026, 5, 1, 7, tzinfo=UTC)


def _pydantic_copy(model: BaseModel, update: dict[str, object]) -> BaseModel:
    return BaseModel.model_copy(model, update=update)


def _same(ours: BaseModel, theirs: BaseModel) -> None:
    assert type(ours) is type(theirs)
    assert ours == theirs
    assert ours.__dict__ == theirs.__dict__
    assert ours.model_fields_set == theirs.model_fields_set
    assert (ours.__pydantic_extra__, ours.__pydantic_private__) == (theirs.__pydantic_extra__, None)
    assert ours.model_dump_json() == theirs.model_dump_json()


def test_a_copy_with_changes_is_pydantics_copy() -> None:
    facts = snapshot(labs=(LabValue(at=AT, anc_x10e9_per_l=0.4),))
    before = facts.model_dump()
    given = facts.model_fields_set
    for update in ({"adverse_events": 3}, {"phase": Phase.AWAITING_ENGRAFTMENT, "day0": date(2026, 5, 2)}):
        copied = facts.model_copy(update=update)
        _same(copied, _pydantic_copy(facts, update))
        assert all(getattr(copied, name) == value for name, value in update.items())
    assert facts.model_dump() == before
    assert facts.model_fields_set == given


def test_the_given_names_grow_only_on_the_copy() -> None:
    stay = Stay(admitted_on=date(2026, 5, 1))
    assert "discharged_on" not in stay.model_fields_set
    discharged = stay.model_copy(update={"discharged_on": date(2026, 5, 9)})
    _same(discharged, _pydantic_copy(stay, {"discharged_on": date(2026, 5, 9)}))
    assert "discharged_on" in discharged.model_fields_set
    assert "discharged_on" not in stay.model_fields_set
    # A set shared with the original (nothing added) is copied by pydantic before it changes.
    again = discharged.model_copy(update={"discharged_on": date(2026, 5, 10)})
    assert again.model_fields_set is discharged.model_fields_set
    _pydantic_copy(again, {"admitted_on": date(2026, 4, 30)})
    assert again.model_fields_set == discharged.model_fields_set


def test_a_plain_or_deep_copy_is_pydantics() -> None:
    facts: PathwayFacts = snapshot(labs=(LabValue(at=AT, anc_x10e9_per_l=0.4),))
    for copied in (facts.model_copy(), facts.model_copy(deep=True), facts.model_copy(update={}, deep=True)):
        _same(copied, facts)
        assert copied is not facts
    deep = facts.model_copy(update={"adverse_events": 1}, deep=True)
    assert deep.labs[0] is not facts.labs[0]
    assert deep.adverse_events == 1
