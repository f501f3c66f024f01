"""The tamper-evident chain: the canonical bytes of an entry, its hash, and verification.

The form is deliberately small so that an auditor can re-check an export with nothing but
`json` and `hashlib`; docs/canonical-form.md is its specification. Changing anything here
changes every hash ever written, so it is versioned: entries say which canonical form sealed
them, new entries are sealed in form 2, and form-1 entries keep verifying by form 1's fields.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from enum import Enum, StrEnum
from operator import itemgetter
from typing import Any, Final, NamedTuple

from states.entry import CANONICAL_FORM_VERSION, GENESIS_HASH, Draft, Entry

__all__ = [
    "BODY_FIELDS",
    "BODY_MEMBERS",
    "BODY_SLOTS",
    "CANONICAL_FORM_VERSION",
    "FORM_FIELDS",
    "SHARED_MEMBERS",
    "Sealed",
    "body_from_fields",
    "body_template",
    "canonical_json",
    "entry_body",
    "facts_digest",
    "format_datetime",
    "hash_body",
    "seal",
    "seal_with_body",
    "to_json_value",
    "utc_text",
    "verify_entries",
]

# The hashed fields of each form, fixed here rather than read from `Draft.model_fields`, so
# that adding a field to Draft cannot silently change old hashes; a test keeps the latest
# form equal to Draft's fields.
BODY_FIELDS_FORM_1: tuple[str, ...] = (
    "pathway_id",
    "kind",
    "trigger",
    "from_phase",
    "to_phase",
    "effective_at",
    "recorded_at",
    "actor_id",
    "actor_role",
    "reason",
    "payload",
    "reasons",
    "policy_version",
    "idempotency_key",
    "corrects",
)
# Form 2 commits to the state after the entry (the sha256 of the stored facts text) and says
# where the entry came from and which release wrote it.
BODY_FIELDS: tuple[str, ...] = (*BODY_FIELDS_FORM_1, "facts_digest", "origin", "release")
FORM_FIELDS: Mapping[int, tuple[str, ...]] = {1: BODY_FIELDS_FORM_1, 2: BODY_FIELDS}


def facts_digest(facts_json: str) -> str:
    """The state commitment: sha256 (hex) of the exact facts text the store writes."""
    return hashlib.sha256(facts_json.encode("utf-8")).hexdigest()

_PLAIN = frozenset({str, int, bool, type(None)})


def utc_text(value: datetime) -> str:
    """The instant as UTC text with microseconds, "YYYY-MM-DD HH:MM:SS.ffffff": SQLite's storage
    text, and what a body's time slot is filled from.

    (`isoformat` always pads the year to four digits, unlike strftime on some platforms.)
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime in a hashed value; every time must be timezone-aware")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # drop "+00:00"


def format_datetime(value: datetime) -> str:
    """ISO-8601 in UTC with microseconds and "Z": one spelling per instant, whatever the zone
    (`utc_text` with "T" and "Z", as a body's time slot spells it)."""
    text = utc_text(value)
    return f"{text[:10]}T{text[11:]}Z"


def to_json_value(obj: Any) -> Any:
    """Reduce `obj` to plain JSON types, so that parsing the output gives back the same bytes.

    Dict keys must be strings: json.dumps would stringify int keys but sort them as numbers,
    and the parsed copy would then sort differently and no longer hash the same.
    """
    kind = type(obj)
    if kind in _PLAIN:  # the common case first: this runs on every append
        return obj
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in obj.items():
            out[_key(key)] = item if type(item) in _PLAIN else to_json_value(item)
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN else to_json_value(item) for item in obj]
    if isinstance(obj, Enum):
        return to_json_value(obj.value)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError("NaN and infinity have no canonical JSON form")
        return float(obj)
    if isinstance(obj, datetime):
        return format_datetime(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return to_json_value(dict(obj))
    if isinstance(obj, list | tuple):
        return to_json_value(list(obj))
    raise TypeError(f"{type(obj).__name__} has no canonical JSON form")


def _key(key: Any) -> str:
    if type(key) is str:
        return key
    if isinstance(key, Enum):
        key = key.value
    if not isinstance(key, str):
        raise TypeError(f"canonical JSON object keys must be strings, not {type(key).__name__}")
    return str(key)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode_str = json.encoder.encode_basestring  # the string encoder _ENCODER uses (ensure_ascii=False)


def _canonical_dumps() -> Callable[[Any], str]:
    """json.dumps with the canonical settings, for a value already reduced by to_json_value.

    `JSONEncoder.encode` makes a C encoder on every call (the stdlib's `c_make_encoder`, with
    the encoder's own settings); this makes it once, as encode would, without the circular
    reference check (to_json_value builds a fresh tree, and recurses on a cycle first). Where
    the C encoder is missing, the encoder itself.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - a Python built without _json
        return _ENCODER.encode
    encode = make(None, _ENCODER.default, _encode_str, None, ":", ",", True, False, False)
    return lambda value: "".join(encode(value, 0))


_dumps: Final = _canonical_dumps()


def canonical_json(obj: Any) -> bytes:
    """The one byte sequence for a value: sorted keys, no spaces, UTF-8, no NaN."""
    return _dumps(to_json_value(obj)).encode("utf-8")


def body_from_fields(
    fields: Mapping[str, Any], sequence: int, prev_hash: str, form: int = CANONICAL_FORM_VERSION
) -> bytes:
    """The hashed bytes from any mapping holding the form's fields (a Draft's, or a database row's)."""
    body = {name: fields[name] for name in FORM_FIELDS[form]}
    body["sequence"] = sequence
    body["prev_hash"] = prev_hash
    return canonical_json(body)


def entry_body(draft: Draft, sequence: int, prev_hash: str, form: int = CANONICAL_FORM_VERSION) -> bytes:
    """The exact bytes that are hashed: the form's fields plus the chain position (not the hash)."""
    return body_from_fields(draft.__dict__, sequence, prev_hash, form)


def hash_body(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Sealed(NamedTuple):
    """A sealed entry with the exact text the store writes: body, payload and reasons JSON,
    and the two times as UTC text (`utc_text`), so they are formatted once."""

    entry: Entry
    body: bytes
    payload_json: str
    reasons_json: str
    effective_at_text: str
    recorded_at_text: str


def seal(draft: Draft, sequence: int, prev_hash: str, digest: str | None = None) -> Entry:
    """Chain a draft after `prev_hash`. Validation is skipped: the Draft was validated already."""
    return seal_with_body(draft, sequence, prev_hash, digest).entry


# --- the body as a template, for sealing and for `audit verify` ---------------------------------

# A body's members in canonical (sorted) order, as a %-template with the JSON text of the members
# that repeat from entry to entry (SHARED_MEMBERS: kind, trigger, phases, actor, role, policy,
# origin, release, reasons, corrects) filled in once, and a slot for each member that differs,
# filled always in the order of BODY_SLOTS: a form without one of them consumes its value
# unprinted ("%.0s": form 1 has no facts_digest). A time fills its slot from its `utc_text`
# ("YYYY-MM-DD HH:MM:SS.ffffff"): the text, then the text from its 12th character, into
# "%.10sT%sZ", which spells "YYYY-MM-DDTHH:MM:SS.ffffffZ" (`format_datetime`). payload is
# canonical JSON text and prev_hash a hexadecimal digest, filled in as they are.
BODY_SLOTS: Final = {
    "effective_at": '"%.10sT%sZ"', "facts_digest": "%s", "idempotency_key": "%s", "pathway_id": "%s",
    "payload": "%s", "prev_hash": '"%s"', "reason": "%s", "recorded_at": '"%.10sT%sZ"', "sequence": "%d",
}  # fmt: skip
SHARED_MEMBERS: Final = tuple(sorted(name for name in BODY_FIELDS if name not in BODY_SLOTS))
BODY_MEMBERS: Final = {form: tuple(sorted((*names, "sequence", "prev_hash"))) for form, names in FORM_FIELDS.items()}
_EVERY_MEMBER: Final = tuple(sorted({name for names in BODY_MEMBERS.values() for name in names}))


def body_template(form: int, shared_json: Mapping[str, str]) -> str:
    """The body template of `form`, given the JSON text of its shared members (`shared_json`
    may hold more). ValueError for an unknown form."""
    members = BODY_MEMBERS.get(form) if type(form) is int else None
    if members is None:
        raise ValueError("an unknown canonical form")
    pieces: list[str] = []
    for name in _EVERY_MEMBER:
        if name in members:
            value = BODY_SLOTS.get(name) or shared_json[name].replace("%", "%%")
            pieces.append(f'"{name}":{value}')
        elif name in BODY_SLOTS:
            pieces[-1] += "%.0s"  # not in this form: its value is consumed, not printed
    return "{" + ",".join(pieces) + "}"


# The templates of the shared values sealed so far (few sets occur: kinds, triggers, phases, actors).
_SEAL_TEMPLATES: dict[tuple[Any, ...], str] = {}
_SEAL_TEMPLATE_LIMIT: Final = 10_000
_DIGEST: Final = re.compile("[0-9a-f]{64}")
_shared_of: Final = itemgetter(*SHARED_MEMBERS)


def _seal_template(values: Mapping[str, Any], reasons_json: str) -> str:
    """The template of a draft's shared values, made once per distinct set.

    The set is the key, so values that are equal must have one JSON text: a member of a string
    enum and its text do, but True and 1 do not, so `corrects` must be an integer (and the
    reasons strings) for a template to be made.
    """
    shared = _shared_of(values)
    template = _SEAL_TEMPLATES.get(shared)
    if template is None:
        if type(values["corrects"]) not in (int, type(None)) or not all(type(r) is str for r in values["reasons"]):
            raise TypeError("corrects must be an integer and reasons strings")
        encoded = {name: _scalar_json(value) for name, value in zip(SHARED_MEMBERS, shared, strict=True)}
        template = body_template(CANONICAL_FORM_VERSION, {**encoded, "reasons": reasons_json})
        if len(_SEAL_TEMPLATES) >= _SEAL_TEMPLATE_LIMIT:  # actor ids vary: the set must not pile up
            _SEAL_TEMPLATES.clear()
        _SEAL_TEMPLATES[shared] = template
    return template


def _scalar_json(value: Any) -> str:
    """Canonical JSON of one top-level value: the common types directly, the rest as canonical_json."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if isinstance(value, StrEnum):  # its text is its value: no call of the `value` property
        return _encode_str(value)
    if isinstance(value, Enum) and type(value.value) is str:
        return _encode_str(value.value)
    return _dumps(to_json_value(value))


def seal_with_body(draft: Draft, sequence: int, prev_hash: str, digest: str | None = None) -> Sealed:
    """Seal in the latest form, and also return the serialised forms, each computed once.

    `digest` is the facts digest the entry commits to (the store's, from the facts it writes);
    None keeps the draft's. Same bytes as `entry_body` (a test holds them equal), filled into
    the template of the draft's shared values because it runs on every append.
    """
    if type(sequence) is not int or sequence < 1:
        raise ValueError("sequence numbers start at 1")
    if type(prev_hash) is not str or _DIGEST.fullmatch(prev_hash) is None:  # it is filled in as it is
        raise ValueError("prev_hash must be a SHA-256 digest in lower-case hexadecimal")
    values = draft.__dict__  # the Draft's fields are BODY_FIELDS (a test holds them equal)
    if digest is not None:
        values = {**values, "facts_digest": digest}
    reasons = values["reasons"]
    reasons_json = "[]" if reasons == () else _dumps(to_json_value(reasons))
    effective = utc_text(values["effective_at"])
    recorded = utc_text(values["recorded_at"])
    payload_json = _dumps(to_json_value(values["payload"]))
    fill = (
        effective, effective[11:], _scalar_json(values["facts_digest"]), _scalar_json(values["idempotency_key"]),
        _scalar_json(values["pathway_id"]), payload_json, prev_hash, _scalar_json(values["reason"]),
        recorded, recorded[11:], sequence,
    )  # fmt: skip
    body = (_seal_template(values, reasons_json) % fill).encode("utf-8")
    entry_hash = hashlib.sha256(body).hexdigest()
    # Validated, not model_construct: pydantic's model_construct is no faster for this model
    # (measured), and a Draft built with model_construct elsewhere still cannot smuggle a
    # malformed value into a sealed Entry.
    entry = Entry.model_validate(
        {**values, "sequence": sequence, "prev_hash": prev_hash, "hash": entry_hash, "form": CANONICAL_FORM_VERSION}
    )
    return Sealed(entry, body, payload_json, reasons_json, effective, recorded)


def verify_entries(entries: Iterable[Entry]) -> int | None:
    """Check one pathway's chain in order; return the first bad sequence number, else None.

    The number returned is the position that breaks (1-based), i.e. the sequence number the
    entry there should have: a deleted entry 3 is reported as 3, not as the 4 found in its place.
    A truncated tail or a whole chain recomputed cannot be seen from the entries alone: compare
    the head with an exported checkpoint for that.
    """
    prev_hash = GENESIS_HASH
    pathway_id: str | None = None
    form = 1
    for position, entry in enumerate(entries, start=1):
        if pathway_id is None:
            pathway_id = entry.pathway_id
        if entry.sequence != position or entry.pathway_id != pathway_id or entry.prev_hash != prev_hash:
            return position
        if entry.form not in FORM_FIELDS or entry.form < form:  # a chain never goes back to an older form
            return position
        form = entry.form
        try:
            recomputed = hash_body(entry_body(entry, entry.sequence, entry.prev_hash, entry.form))
        except (TypeError, ValueError):  # a value with no canonical form cannot have been sealed
            return position
        if recomputed != entry.hash:
            return position
        prev_hash = entry.hash
    return None
