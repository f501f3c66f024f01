"""Turning pydantic's validation errors into the library's `InvalidCommand`.

The message names the field path and the rule (pydantic's error type, or our own reason code
for cross-field rules) and never echoes the input value: a value may be patient data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from states.errors import FieldProblem, InvalidCommand
from states.payloads import RULE_FIELDS

M = TypeVar("M", bound=BaseModel)


def problems_of(exc: ValidationError, prefix: str = "") -> list[FieldProblem]:
    found = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err["loc"]
        field = RULE_FIELDS.get(err["type"])
        if field is not None and (not loc or loc[-1] != field):
            loc = (*loc, field)  # a cross-field rule is reported on the field it is about
        path = ".".join(str(part) for part in (prefix, *loc) if part != "")
        found.append(FieldProblem(path=path, rule=err["type"], message=err["msg"]))
    return found


def validated(model: type[M], data: Any, *, command: str, prefix: str = "with") -> M:
    """`model` validated from `data` (a mapping or an instance), or `InvalidCommand`."""
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump()
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise InvalidCommand(command, problems_of(exc, prefix)) from None


def aware(value: Any, *, command: str, field: str = "at") -> datetime:
    """An effective time must be a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise InvalidCommand(command, [FieldProblem(field, "datetime_type", "must be a datetime")])
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidCommand(
            command, [FieldProblem(field, "timezone_aware", "must be timezone-aware (naive datetimes are refused)")]
        )
    return value


MAX_KEY_LENGTH = 200


def idempotency_key(value: object, *, command: str) -> str | None:
    """An idempotency key is 1..200 characters without NUL, as the unique index stores it."""
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY_LENGTH or "\x00" in value:
        raise InvalidCommand(
            command,
            [FieldProblem("idempotency_key", "idempotency_key_invalid", "must be 1..200 characters without NUL")],
        )
    return value
