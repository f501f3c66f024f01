"""The base of every snapshot value: immutable, closed, and cheap to copy with a change.

The fold copies the snapshot, and the values inside it that a command changes, on every
command (`model_copy(update=...)`). pydantic's general copy goes through `copy.copy` for each
part of the instance (the field values, the given names, extras, private values); a frozen,
closed model has no extras and no private values, and its values and given names are never
changed in place, so a copy is its values with the update laid over them, and its given names
with the updated ones added (the same set object when nothing is added). The result is what
pydantic's `model_copy` gives (tests/states/test_frozen.py holds them equal): about half its time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

__all__ = ["Frozen"]

_set = object.__setattr__


class Frozen(BaseModel):
    """Base of every fact: immutable and closed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy; with `update` and no `deep`, without its general path (above).
        As in pydantic's, the updated values are not validated."""
        if deep or not update:
            return super().model_copy(update=update, deep=deep)
        copied = self.__class__.__new__(self.__class__)
        given = self.__pydantic_fields_set__
        _set(copied, "__dict__", {**self.__dict__, **update})
        _set(copied, "__pydantic_extra__", None)
        _set(copied, "__pydantic_fields_set__", given if given.issuperset(update) else given | update.keys())
        _set(copied, "__pydantic_private__", None)
        return copied
