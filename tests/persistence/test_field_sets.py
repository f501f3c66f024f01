"""Snapshots read from storage share one set of given field names per model class: equal
facts, the same `model_fields_set`, and a copy that changes a field leaves the others alone."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict

from persistence.store import Store
from states.facts import PathwayFacts
from states.field_sets import share_field_sets
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


def test_every_model_of_two_snapshots_read_from_storage_shares_its_classs_set(
    service: PathwayService, clock: ManualClock
) -> None:
    """A pathway with a donor's typing, products and doses: its models of every class."""
    pathway_id = run_walk(service, clock, WALKS["matched_unrelated"](), until=Phase.AWAITING_ENGRAFTMENT)
    with service.engine.connect() as connection:
        store = Store(connection)
        record = store.load(pathway_id)
        assert record is not None
        first, second = store.facts(record), store.facts(record)
        plain = PathwayFacts.model_validate_json(store.facts_text(record))
    assert first == second == plain
    triples = list(zip(_models(first), _models(second), _models(plain), strict=True))
    assert len({type(one) for one, _, _ in triples}) > 3
    for one, other, unshared in triples:
        assert one.__pydantic_fields_set__ is other.__pydantic_fields_set__
        assert one.model_fields_set == unshared.model_fields_set


def test_nested_models_in_tuples_dicts_and_options_share_and_unequal_sets_do_not() -> None:
    given_a = _Pair.model_validate({"a": 1})
    given_b = _Pair.model_validate({"b": 1})  # as many names given, other ones
    holder = share_field_sets(
        _Holder.model_validate({"pairs": [{"a": 1}, {"a": 2}], "by_name": {"x": {"a": 3}}, "one": {"a": 4}})
    )
    share_field_sets(given_a)
    share_field_sets(given_b)
    nested = [*holder.pairs, *holder.by_name.values(), holder.one]
    assert all(p.__pydantic_fields_set__ is nested[0].__pydantic_fields_set__ for p in nested)
    assert given_a.__pydantic_fields_set__ is nested[0].__pydantic_fields_set__
    assert given_b.__pydantic_fields_set__ is not given_a.__pydantic_fields_set__
    assert given_b.model_fields_set == {"b"}


def test_a_copy_that_changes_a_field_leaves_the_shared_set_alone() -> None:
    first = share_field_sets(_Pair.model_validate({"a": 1}))
    second = share_field_sets(_Pair.model_validate({"a": 2}))
    changed = first.model_copy(update={"b": 5})
    assert changed.model_fields_set == {"a", "b"}
    assert first.model_fields_set == second.model_fields_set == {"a"}
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
