"""One set of given field names per model class, shared by the snapshots read from storage.

pydantic keeps on every model instance the set of the field names it was given
(`model_fields_set`). A snapshot parsed from its stored JSON was given every field the writer
wrote, so each of its models holds its own copy of the same few sets: about half of what a held
snapshot takes (4.8 of 10 KiB for a pathway awaiting engraftment, benchmarks/README.md).
`share_field_sets` makes each such set the first equal one met for the model's class. Nothing
changes for a reader: the set is equal, pydantic copies it before changing a copy
(`model_copy`), and a frozen model is never assigned to.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["share_field_sets"]

M = TypeVar("M", bound=BaseModel)

# (class, number of names) -> the set its instances share. Bounded by the classes and their
# field counts, whatever is parsed.
_SHARED: dict[tuple[type[BaseModel], int], set[str]] = {}


def share_field_sets(model: M) -> M:
    """`model`, with it and every model inside it holding its class's shared set of given field
    names where it has an equal one (the first met is kept as the shared one)."""
    _share(model)
    return model


def _share(model: BaseModel) -> None:
    kind = type(model)
    given = model.__pydantic_fields_set__
    shared = _SHARED.setdefault((kind, len(given)), given)
    if shared is not given and shared == given:
        object.__setattr__(model, "__pydantic_fields_set__", shared)
    values = model.__dict__
    for name in _nested(kind):
        _share_in(values[name])


def _share_in(value: Any) -> None:
    if isinstance(value, BaseModel):
        _share(value)
    elif isinstance(value, tuple | list):
        for item in value:
            _share_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            _share_in(item)


@cache
def _nested(kind: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `kind` whose type can hold a model (the rest are not walked)."""
    return tuple(name for name, field in kind.model_fields.items() if _holds_models(field.annotation))


def _holds_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_models(arg) for arg in typing.get_args(annotation))
