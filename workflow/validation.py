"""Turning pydantic's validation errors into the library's `InvalidCommand`.

The message names the field path and the rule (pydantic's error type, or our own reason code
for cross-field rules) and never echoes the input value: a value may be patient data.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from difflib import get_close_matches
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from persistence.chain import canonical_json
from persistence.models import IDEMPOTENCY_KEY_LENGTH
from states.errors import FieldProblem, InvalidCommand
from states.payloads import EARLIEST_DATE, LATEST_DATE, RULE_FIELDS, Payload
from states.policy import Policy

M = TypeVar("M", bound=BaseModel)

PAYLOAD = "payload"
"""Where the service reports a payload's fields (`payload.<field>`): the name of the parameter
`fire`, `can_fire` and `refer` take it in, so a Python caller reads the error in its own terms."""


def on_surface(error: InvalidCommand, root: str) -> InvalidCommand:
    """`error` worded for a surface whose payload is called `root` (`with` in scenario files and
    HTTP bodies): only a path's leading `payload` segment changes. The one translation per
    surface; the service has judged already, nothing is validated again."""
    problems = [
        FieldProblem(root + p.path.removeprefix(PAYLOAD), p.rule, p.message)
        if p.path == PAYLOAD or p.path.startswith(f"{PAYLOAD}.")
        else p
        for p in error.problems
    ]
    return InvalidCommand(error.command, problems)


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


def validated(model: type[M], data: Any, *, command: str, prefix: str = PAYLOAD) -> M:
    """`model` validated from `data` (a mapping or an instance), or `InvalidCommand`."""
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump()
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise InvalidCommand(command, [_closest(p, model, prefix) for p in problems_of(exc, prefix)]) from None


def _closest(problem: FieldProblem, model: type[BaseModel], prefix: str) -> FieldProblem:
    """An unknown top-level field gets the model's closest field names ("did you mean")."""
    name = problem.path.removeprefix(f"{prefix}.") if prefix else problem.path
    if problem.rule != "extra_forbidden" or "." in name:
        return problem
    close = get_close_matches(name, list(model.model_fields), n=3)
    if not close:
        return problem
    return FieldProblem(problem.path, problem.rule, f"{problem.message}; did you mean {', '.join(close)}?")


def aware(value: Any, *, command: str, field: str = "at") -> datetime:
    """An effective time must be a timezone-aware datetime on a plausible calendar day.

    The range is the clinical dates' (1900..2199): year 1 at +14:00 has no UTC value at all, and
    every window computed from a time (Day N, IDM days) must stay representable.
    """
    if not isinstance(value, datetime):
        raise InvalidCommand(command, [FieldProblem(field, "datetime_type", "must be a datetime")])
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidCommand(
            command, [FieldProblem(field, "timezone_aware", "must be timezone-aware (naive datetimes are refused)")]
        )
    try:
        day = value.astimezone(UTC).date()
    except OverflowError:
        day = None
    if day is None or not EARLIEST_DATE <= day <= LATEST_DATE:
        raise InvalidCommand(
            command,
            [FieldProblem(field, "datetime_out_of_range", f"must lie between {EARLIEST_DATE} and {LATEST_DATE}")],
        )
    return value


SUBSEQUENT_KEY_SUFFIX = "\x1fsubsequent"
"""Appended to a host's key for the pathway `start_subsequent_transplant` (or `reinstate`) opens. A host's key
never holds a control character, so no key a host sends can equal a derived one."""

MAX_KEY_LENGTH = IDEMPOTENCY_KEY_LENGTH - len(SUBSEQUENT_KEY_SUFFIX)
"""Room is left in the column for the suffix."""


def idempotency_key(value: object, *, command: str) -> str | None:
    """An idempotency key is 1..MAX_KEY_LENGTH printable characters (no control characters,
    no lone surrogates): the unique index stores it, and its derived key, on both backends."""
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY_LENGTH or not _plain(value):
        raise InvalidCommand(
            command,
            [
                FieldProblem(
                    "idempotency_key",
                    "idempotency_key_invalid",
                    f"must be 1..{MAX_KEY_LENGTH} characters without control characters",
                )
            ],
        )
    return value


def subsequent_key(key: str | None) -> str | None:
    """The idempotency key of the pathway a subsequent transplant opens (None without a key)."""
    return None if key is None else key + SUBSEQUENT_KEY_SUFFIX


def plausible_id(value: object, limit: int) -> bool:
    """Could `value` be a stored id (a pathway's)? Anything else is unknown without a query."""
    return isinstance(value, str) and 0 < len(value) <= limit and _plain(value)


def _plain(text: str) -> bool:
    """No control characters (NUL included) and valid UTF-8 (no lone surrogates)."""
    return text.isprintable() or not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _has_surrogate(text: str) -> bool:
    return not text.isprintable() and any(unicodedata.category(ch) == "Cs" for ch in text)


# --- size and depth of a payload ----------------------------------------------------------------

# Lower bounds of a value's canonical JSON size, enough to stop a walk early.
_DIGITS_PER_BIT = 0.30103
_INT_LIMIT = 2**63  # the range every backend and JSON reader keeps exactly


def bounded(data: Any, *, command: str, policy: Policy, prefix: str = PAYLOAD) -> None:
    """Refuse input nested deeper than `policy.max_payload_depth` or larger than about
    `policy.max_payload_bytes`, before it is validated or copied.

    Walked depth first and stopped once over the budget: shared sub-objects (what a YAML
    alias builds) count every time they are reached, so a small "bomb" is refused at once
    instead of expanding. Each value costs no more than its canonical JSON would, so nothing
    the exact check (`stored_payload`) accepts is refused here. The walk recurses no deeper
    than the depth limit; under a policy whose limit is deeper than Python's stack, input
    nested that deep is refused as too deep.
    """
    try:
        _spend(data, 0, policy.max_payload_bytes, policy.max_payload_depth)
    except _Broken as broken:
        messages = {
            "payload_too_deep": f"nested more than {policy.max_payload_depth} deep",
            "payload_too_large": f"larger than {policy.max_payload_bytes} bytes as JSON",
            "string_unicode": "text must be valid UTF-8 (no lone surrogates)",
            "number_out_of_range": "integers must lie within 64 bits",
        }
        _refuse(command, _path(prefix, tuple(reversed(broken.where))), broken.rule, messages[broken.rule])
    except RecursionError:
        _refuse(command, prefix, "payload_too_deep", "nested deeper than this process can follow")


class _Broken(Exception):
    """A limit `rule` broken; `where` gathers the keys from the value out to the root."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule
        self.where: list[Any] = []


def _spend(item: Any, depth: int, budget: int, deepest: int) -> int:
    """`budget` less what `item` (at `depth`) costs at least as canonical JSON; `_Broken` when
    it breaks a limit. A key's problem is its mapping's; a value's names its key or index."""
    kind = _KINDS.get(type(item)) or _kind_of(item)
    if kind is _TEXT:
        budget -= len(item) + 2
        if budget >= 0 and _has_surrogate(item):
            raise _Broken("string_unicode")
    elif kind is _OTHER:
        budget -= 1
    elif kind is _INTEGER:
        if not -_INT_LIMIT <= item < _INT_LIMIT:
            raise _Broken("number_out_of_range")
        budget -= 1 + int(item.bit_length() * _DIGITS_PER_BIT)
    else:
        if depth >= deepest:
            raise _Broken("payload_too_deep")
        if kind is _MODEL:
            item, kind = item.__dict__, _MAPPING
        pairs = item.items() if kind is _MAPPING else enumerate(item)
        budget -= 2 + (2 * len(item) if kind is _MAPPING else len(item))
        depth += 1
        for key, value in pairs:
            if budget < 0:
                break
            if kind is _MAPPING:
                budget = _spend(key, depth, budget, deepest)
            try:
                budget = _spend(value, depth, budget, deepest)
            except _Broken as broken:
                broken.where.append(key)
                raise
    if budget < 0:
        raise _Broken("payload_too_large")
    return budget


# What `bounded` does with a value: by exact type for the JSON types (a dict lookup; isinstance
# against Mapping is the slow part of a walk that runs on every command), else `_kind_of`.
_MODEL, _MAPPING, _SEQUENCE, _TEXT, _INTEGER, _OTHER = "model", "mapping", "sequence", "text", "integer", "other"
_KINDS: dict[type, str] = {
    dict: _MAPPING, list: _SEQUENCE, tuple: _SEQUENCE, str: _TEXT, int: _INTEGER,
    bool: _OTHER, float: _OTHER, type(None): _OTHER,
}  # fmt: skip


def _kind_of(item: Any) -> str:
    if isinstance(item, BaseModel):
        return _MODEL
    if isinstance(item, Mapping):
        return _MAPPING
    if isinstance(item, list | tuple | set | frozenset):
        return _SEQUENCE
    if isinstance(item, str):
        return _TEXT
    if isinstance(item, int) and not isinstance(item, bool):
        return _INTEGER
    return _OTHER


def _path(prefix: str, where: tuple[Any, ...]) -> str:
    """`payload.regimen.plan.0.drug`: the prefix and the keys, each cut short (they may be anything)."""
    return ".".join([prefix, *(str(part)[:64] for part in where)])


def stored_form(body: BaseModel) -> dict[str, Any]:
    """What an entry stores of a payload: its JSON values, None left out."""
    return body.model_dump(mode="json", exclude_none=True)


def stored_payload(body: BaseModel, *, command: str, policy: Policy, prefix: str = PAYLOAD) -> dict[str, Any]:
    """The validated payload's `stored_form`, once its canonical JSON is found within the
    policy's bytes. Made here once for the command: the draft and an idempotency comparison
    take it."""
    dumped = stored_form(body)
    if len(canonical_json(dumped)) > policy.max_payload_bytes:
        _refuse(command, prefix, "payload_too_large", f"larger than {policy.max_payload_bytes} bytes as JSON")
    return dumped


def _refuse(command: str, path: str, rule: str, message: str) -> NoReturn:
    raise InvalidCommand(command, [FieldProblem(path, rule, message)])


# --- corrections --------------------------------------------------------------------------------


def checked_changes(
    model: type[Payload], original: Mapping[str, Any], changes: Mapping[str, Any], *, command: str
) -> None:
    """A correction says only what the corrected command could have said: every changed field
    is one of its payload's own, not derived, and the corrected payload passes that payload's
    validation. Problems name `payload.changes.<field>`."""
    path = f"{PAYLOAD}.changes"
    problems = [
        FieldProblem(f"{path}.{name}", "extra_forbidden", "the corrected entry's payload has no such field")
        for name in changes
        if name not in model.model_fields
    ]
    problems += [
        FieldProblem(f"{path}.{name}", "derived_field", "is derived by the library")
        for name in changes
        if name in model.derived_fields
    ]
    if not problems:
        try:
            model.model_validate({**original, **changes})
        except ValidationError as exc:
            problems = problems_of(exc, path)
    if problems:
        raise InvalidCommand(command, problems)
