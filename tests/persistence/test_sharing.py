"""Snapshots read from storage share one set of given field names per model class, and one
instance per distinct small value: equal facts, the same `model_fields_set` and the same dumps,
and a copy that changes a field leaves the others alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from persistence.store import Store
from states import sharing
from states.facts import PathwayFacts
from states.sharing import shared
from states.vocabulary import Phase
from tests.walks import WALKS, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService


class _Pair(BaseModel):
    model_config = ConfigDict(frozen=True)

    a: int = 0
    b: int = 0


class _Holder(BaseModel):
    model_config = ConfigDict(frozen=True)

    pairs: tuple[_Pair, ...] = ()
    by_name: dict[str, _Pair] = {}
    one: _Pair | None = None


def _models(model: BaseModel) -> Iterator[BaseModel]:
    yield model
    for value in model.__dict__.values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, BaseModel):
                yield from _models(item)


def _read_twice(service: PathwayService, clock: ManualClock) -> tuple[PathwayFacts, PathwayFacts, PathwayFacts]:
    """A pathway with a donor's typing, products and doses, read from storage twice through
    `Store.facts`, and once parsed without sharing."""
    pathway_id = run_walk(service, clock, WALKS["matched_unrelated"](), until=Phase.AWAITING_ENGRAFTMENT)
    with service.engine.connect() as connection:
        store = Store(connection)
        record = store.load(pathway_id)
        assert record is not None
        return store.facts(record), store.facts(record), PathwayFacts.model_validate_json(store.facts_text(record))


def test_every_model_of_two_snapshots_read_from_storage_shares_its_classs_set(
    service: PathwayService, clock: ManualClock
) -> None:
    """A pathway with a donor's typing, products and doses: its models of every class."""
    first, second, plain = _read_twice(service, clock)
    assert first == second == plain
    triples = list(zip(_models(first), _models(second), _models(plain), strict=True))
    assert len({type(one) for one, _, _ in triples}) > 3
    for one, other, unshared in triples:
        assert one.__pydantic_fields_set__ is other.__pydantic_fields_set__
        assert one.model_fields_set == unshared.model_fields_set


def test_nested_models_in_tuples_dicts_and_options_share_and_unequal_sets_do_not() -> None:
    given_a = _Pair.model_validate({"a": 1})
    given_b = _Pair.model_validate({"b": 1})  # as many names given, other ones
    holder = shared(
        _Holder.model_validate({"pairs": [{"a": 1}, {"a": 2}], "by_name": {"x": {"a": 3}}, "one": {"a": 4}})
    )
    shared(given_a)
    shared(given_b)
    nested = [*holder.pairs, *holder.by_name.values(), holder.one]
    assert all(p.__pydantic_fields_set__ is nested[0].__pydantic_fields_set__ for p in nested)
    assert given_a.__pydantic_fields_set__ is nested[0].__pydantic_fields_set__
    assert given_b.__pydantic_fields_set__ is not given_a.__pydantic_fields_set__
    assert given_b.model_fields_set == {"b"}


def test_a_copy_that_changes_a_field_leaves_the_shared_set_alone() -> None:
    first = shared(_Pair.model_validate({"a": 1}))
    second = shared(_Pair.model_validate({"a": 2}))
    changed = first.model_copy(update={"b": 5})
    assert changed.model_fields_set == {"a", "b"}
    assert first.model_fields_set == second.model_fields_set == {"a"}
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__


class _Value(BaseModel):
    """A small value: frozen, closed, scalars only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: int = 0
    flag: int | bool = 0
    note: str | None = None
    amount: float | None = None
    at: datetime | None = None


class _Values(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    items: tuple[_Value, ...] = ()
    by_name: dict[str, _Value] = {}
    one: _Value | None = None


def _parsed(data: dict[str, Any]) -> _Values:
    return shared(_Values.model_validate_json(json.dumps(data)))


def test_equal_small_values_in_tuples_dicts_and_options_are_one_instance() -> None:
    data = {
        "items": [{"day": 1, "note": "x"}],
        "by_name": {"a": {"day": 1, "note": "x"}},
        "one": {"day": 1, "note": "x"},
    }
    first, second = _parsed(data), _parsed(data)
    assert first == second == _Values.model_validate(data)
    held = [first.items[0], first.by_name["a"], first.one, second.items[0], second.by_name["a"], second.one]
    assert all(value is held[0] for value in held)
    assert held[0].model_dump(exclude_unset=True) == {"day": 1, "note": "x"}


def test_values_that_differ_in_given_names_or_type_are_kept_apart() -> None:
    unset, given = _parsed({"one": {}}).one, _parsed({"one": {"day": 0}}).one
    assert unset is not None
    assert given is not None
    assert unset == given
    assert unset is not given
    assert unset.model_dump(exclude_unset=True) == {}
    assert given.model_dump(exclude_unset=True) == {"day": 0}
    number, truth = _parsed({"one": {"flag": 1}}).one, _parsed({"one": {"flag": True}}).one
    assert number is not None
    assert truth is not None
    assert number is not truth
    assert type(number.flag) is int
    assert type(truth.flag) is bool


def test_values_holding_floats_or_times_are_never_shared() -> None:
    """0.0 == -0.0, and one instant in two zones is equal: each would dump otherwise."""
    plus, minus = _parsed({"one": {"amount": 0.0}}).one, _parsed({"one": {"amount": -0.0}}).one
    assert plus is not None
    assert minus is not None
    assert plus is not minus
    assert (plus.model_dump_json(), minus.model_dump_json()) == (
        '{"day":0,"flag":0,"note":null,"amount":0.0,"at":null}',
        '{"day":0,"flag":0,"note":null,"amount":-0.0,"at":null}',
    )
    utc, paris = (_parsed({"one": {"at": text}}).one for text in ("2026-01-01T08:00:00Z", "2026-01-01T09:00:00+01:00"))
    assert utc is not None
    assert paris is not None
    assert utc == paris
    assert utc is not paris
    assert paris.at is not None
    assert paris.at.utcoffset() == timedelta(hours=1)


def test_models_that_are_not_frozen_and_closed_are_never_shared() -> None:
    first = shared(_Holder.model_validate({"one": {"a": 1}}))
    second = shared(_Holder.model_validate({"one": {"a": 1}}))
    assert first.one == second.one
    assert first.one is not second.one


def test_the_table_of_shared_values_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharing, "_VALUE_LIMIT", 3)
    monkeypatch.setattr(sharing, "_VALUES", {})
    for day in range(10):
        _parsed({"one": {"day": day}})
    assert 0 < len(sharing._VALUES) <= 3


def test_a_snapshot_read_from_storage_shares_its_typing_and_doses_with_the_next_read(
    service: PathwayService, clock: ManualClock
) -> None:
    first, second, plain = _read_twice(service, clock)
    assert first.model_dump_json() == plain.model_dump_json()
    assert first.model_dump(exclude_unset=True) == plain.model_dump(exclude_unset=True)
    (donor,) = first.candidates.values()
    (again,) = second.candidates.values()
    assert len(donor.hla) >= 4
    assert all(donor.hla[locus] is again.hla[locus] for locus in donor.hla)
    assert first.regimen is not None
    assert second.regimen is not None
    assert all(one is other for one, other in zip(first.regimen.plan, second.regimen.plan, strict=True))
