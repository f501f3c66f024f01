"""What snapshots read from storage share: one set of given field names per model class, and
one instance per distinct small value.

pydantic keeps on every model instance the set of the field names it was given
(`model_fields_set`). A snapshot parsed from its stored JSON was given every field the writer
wrote, so each of its models held its own copy of the same few sets: about half of what a held
snapshot took (4.8 of 10 KiB for a pathway awaiting engraftment, benchmarks/README.md). `shared`
makes each such set the first equal one met for the model's class.

The models left are mostly small values that recur from patient to patient: an HLA locus's
comparison (one of six), a conditioning plan's dose of a protocol. Each took its own instance
and its own `__dict__` (five loci and six planned doses: about 3 KiB of a held snapshot with an
unrelated donor). `shared` makes each frozen model whose fields hold only exact scalars the
first instance met with the same class, the same values of the same types and the same given
names, so it dumps, compares and copies exactly as the one parsed.

Nothing changes for a reader: what is shared is equal, frozen models are never assigned to, and
pydantic copies a set before changing a copy's (`model_copy`). Sharing happens after parsing,
before the snapshot is handed out: the walk rebuilds a tuple, or fills a model's or a dict's
slot, only in objects the parse just made.
"""

from __future__ import annotations

import enum
import typing
from datetime import date
from operator import is_not
from typing import Any, Final, NamedTuple, TypeVar

from pydantic import BaseModel

__all__ = ["shared"]

M = TypeVar("M", bound=BaseModel)

# (class, number of names) -> the set its instances share. Bounded by the classes and their
# field counts, whatever is parsed.
_SETS: dict[tuple[type[BaseModel], int], set[str]] = {}

# A small value's key -> the instance its equals share. Values vary (a plan's doses are free
# text), so the table is emptied when it reaches its bound: later equals share a new instance.
_VALUES: dict[tuple[Any, ...], BaseModel] = {}
_VALUE_LIMIT: Final = 10_000

# Types whose equal values are interchangeable: same type and equal means the same JSON. Not
# float (0.0 == -0.0) nor datetime (equal instants in other zones); enum members by isinstance.
_EXACT: Final = frozenset({str, int, bool, type(None), date})


def shared(model: M) -> M:
    """`model`, with every model inside it holding its class's shared set of given field
    names where it has an equal one, and each small frozen value (see the module) replaced by
    the instance its equals share. `model` itself is returned as it is, never replaced."""
    _share_model(model)
    return model


class _Plan(NamedTuple):
    nested: tuple[str, ...]  # the fields whose type can hold a model (the rest are not walked)
    small: bool  # frozen and closed, with no model inside: its instances may be shared


_PLANS: dict[type[BaseModel], _Plan] = {}


def _plan(kind: type[BaseModel]) -> _Plan:
    plan = _PLANS.get(kind)
    if plan is None:
        nested = tuple(name for name, field in kind.model_fields.items() if _holds_models(field.annotation))
        config = kind.model_config
        small = bool(config.get("frozen")) and config.get("extra") == "forbid" and not nested
        plan = _PLANS[kind] = _Plan(nested, small)
    return plan


def _share_model(model: BaseModel) -> BaseModel:
    """Share `model`'s given names and its parts; the instance to hold in its place."""
    kind = type(model)
    plan = _plan(kind)
    given = model.__pydantic_fields_set__
    first = _SETS.setdefault((kind, len(given)), given)
    if first is not given and first == given:
        object.__setattr__(model, "__pydantic_fields_set__", first)
        given = first
    values = model.__dict__
    for name in plan.nested:
        value = values[name]
        if not value:  # None, or an empty tuple or dict: nothing inside
            continue
        kept = _share_in(value)
        if kept is not value:
            values[name] = kept
    if not plan.small or given is not first:  # given names of its own: kept apart
        return model
    items = tuple(values.values())
    types = tuple(map(type, items))
    if not _EXACT.issuperset(types) and not all(t in _EXACT or issubclass(t, enum.Enum) for t in types):
        return model
    key = (kind, id(given), items, types)  # `given` is held in _SETS for good: its id stays its own
    kept_model = _VALUES.get(key)
    if kept_model is None:
        if len(_VALUES) >= _VALUE_LIMIT:
            _VALUES.clear()
        kept_model = _VALUES.setdefault(key, model)
    return kept_model


def _share_in(value: Any) -> Any:
    """`value` with its models shared: the object to hold in its place."""
    if isinstance(value, BaseModel):
        return _share_model(value)
    if isinstance(value, tuple):
        items = [_share_in(item) for item in value]
        return tuple(items) if any(map(is_not, items, value)) else value
    if isinstance(value, list):
        value[:] = [_share_in(item) for item in value]
    elif isinstance(value, dict):
        for name, item in value.items():
            value[name] = _share_in(item)
    return value


def _holds_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_models(arg) for arg in typing.get_args(annotation))
