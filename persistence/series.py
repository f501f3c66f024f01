"""Series that only grow (lab values, transfusions) kept as rows of their own, not in the snapshot.

Why: the snapshot text (`pathways.facts`) is rewritten, hashed and stored by every command. With
every lab value inside it, a pathway with 2,000 labs paid for 2,000 values on each command,
even one that records an adverse event. Here those fields live in `fact_series` rows (one per
value, written by the same transaction as the entry) and the snapshot text keeps, for each
non-empty series, its length and a running hash over its values in order:

    head(0) = GENESIS_HASH (64 zeros);  head(k) = sha256(head(k-1) + "\\n" + value k as JSON)

as a first member, `{"series_heads":{"labs":[count,"head"],...},...}`. The head entry commits to
the sha256 of the snapshot text, as before, and so to every row through its series head: a
changed, missing or extra row is found when the rows are read back (`assemble`), and by
`hsct audit verify`. Appending a value costs one row and one hash, whatever came before.

A snapshot written before these rows existed holds its series inline and no heads: it is read
as it stands, and its next write moves the series out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import compress
from operator import is_not, itemgetter
from types import MappingProxyType
from typing import Annotated, Any, Final, NamedTuple

from pydantic import TypeAdapter

from states.entry import GENESIS_HASH
from states.facts import PathwayFacts

__all__ = [
    "SERIES_FIELDS",
    "Members",
    "SeriesHead",
    "SeriesMismatch",
    "SeriesWrite",
    "Split",
    "assemble",
    "check_rows",
    "grouped",
    "has_series",
    "heads_in",
    "split_facts",
    "without_series",
]

SERIES_FIELDS: Final = ("labs", "transfusions", "chimerism", "gvhd", "chronic_gvhd", "vod", "infections")
"""PathwayFacts fields stored as rows: each command recording one appends a value, and a
pathway records them for as long as it is followed (labs daily, GVHD and VOD assessments weekly
or daily, chimerism and chronic GVHD at every visit, infections), so the snapshot a command
rewrites would grow with each. None is read by the milestone plan outside SERIES_PLANNED_IN
(tests/states/test_schedule.py). A snapshot written before a field was listed here holds it
inline; its next write moves it to rows."""

_PREFIX: Final = '{"series_heads":'

Members = tuple[bytes, ...]
"""A snapshot's members as JSON (`"name":value`, UTF-8), one per field in the model's order,
series fields left out: the text is "{" + ",".join(members) + "}"."""


class SeriesMismatch(ValueError):
    """The rows of a series are not what the snapshot's series head commits to."""


@dataclass(frozen=True, slots=True)
class SeriesHead:
    """How many values a series holds and the running hash over them."""

    count: int
    head: str

    def extended(self, values: Sequence[str]) -> SeriesHead:
        head = self.head
        for value in values:
            head = hashlib.sha256(f"{head}\n{value}".encode()).hexdigest()
        return SeriesHead(self.count + len(values), head)


EMPTY: Final = SeriesHead(0, GENESIS_HASH)


@dataclass(frozen=True, slots=True)
class SeriesWrite:
    """Rows to write for one series: `values` from position `start`; `replace` drops the old rows
    first (a correction rewrote the series, or a snapshot from before the rows is moved out)."""

    field: str
    start: int
    values: tuple[str, ...]
    replace: bool


@dataclass(frozen=True, slots=True)
class Split:
    """What the store writes for a snapshot: its text, and the series rows that changed; with
    the members the text is made of, which the next snapshot of the same facts object reuses."""

    text: str
    writes: tuple[SeriesWrite, ...]
    members: Members = ()


def grouped(rows: Iterable[Sequence[str]]) -> dict[str, list[str]]:
    """(field, value) rows in position order, as values per field: what `assemble` takes."""
    found: dict[str, list[str]] = {}
    for name, value in rows:
        found.setdefault(name, []).append(value)
    return found


def has_series(text: str) -> bool:
    """Does a snapshot text commit to series rows? (A cheap test: no parsing.)"""
    return text.startswith(_PREFIX)


def heads_in(text: str) -> Mapping[str, SeriesHead]:
    """The series heads a snapshot text commits to (empty for a text with none: no series
    values, or a snapshot from before the rows, with its series inline). ValueError if unreadable."""
    if not has_series(text):
        return _NO_HEADS
    return _parsed_heads(text[len(_PREFIX) : text.index("}", len(_PREFIX)) + 1])


_NO_HEADS: Final[Mapping[str, SeriesHead]] = MappingProxyType({})


@lru_cache(maxsize=1024)
def _parsed_heads(member: str) -> Mapping[str, SeriesHead]:
    """The heads member parsed, read-only: most commands leave the heads as the last one wrote
    them (no value added), so the same member text comes back and is parsed once."""
    raw = json.loads(member)
    return MappingProxyType({name: SeriesHead(int(count), str(head)) for name, (count, head) in raw.items()})


def _heads_member(heads: Mapping[str, SeriesHead]) -> str:
    """The heads as the JSON member `heads_in` reads (names are field names, heads hexadecimal:
    nothing to escape), spelled as json.dumps with separators (",", ":") would."""
    return "{" + ",".join(f'"{name}":[{head.count},"{head.head}"]' for name, head in heads.items()) + "}"


_series_of: Final = itemgetter(*SERIES_FIELDS)  # the series fields' values from a model's __dict__
_NO_SERIES: Final = ((),) * len(SERIES_FIELDS)  # a new pathway's "before"


def _unchanged_prefix(before: tuple[object, ...], after: tuple[object, ...]) -> bool:
    """Does `after` start with the values of `before`? The fold appends to the tuple it was
    given, so this is a comparison of the same objects (tuple equality checks identity first,
    in C); a replay (a correction) builds new objects, compared by value."""
    return len(after) >= len(before) and after[: len(before)] == before


def split_facts(
    facts: PathwayFacts, before: PathwayFacts | None, before_text: str | None, members: Members | None = None
) -> Split:
    """The snapshot text for `facts` and the rows to write, given the facts the store held
    (`before`, read from `before_text`; None for a new pathway). `members`: those of `before`'s
    own snapshot (its `Split.members`), when the caller kept them with that very object."""
    stored = heads_in(before_text) if before_text is not None else {}
    heads: dict[str, SeriesHead] = {}
    writes: list[SeriesWrite] = []
    olds = _series_of(before.__dict__) if before is not None else _NO_SERIES
    for name, values, old_values in zip(SERIES_FIELDS, _series_of(facts.__dict__), olds, strict=True):
        old = stored.get(name, EMPTY)
        if old.count == len(old_values) and (values is old_values or _unchanged_prefix(old_values, values)):
            head = old
            if len(values) > old.count:  # most commands add to no series: nothing to dump then
                added = tuple(value.model_dump_json() for value in values[old.count :])
                head = old.extended(added)
                writes.append(SeriesWrite(name, old.count, added, replace=False))
        else:
            every = tuple(value.model_dump_json() for value in values)
            head = EMPTY.extended(every)
            writes.append(SeriesWrite(name, 0, every, replace=True))
        if head.count:
            heads[name] = head
    made = _members(facts, before, members)
    body = b",".join(made).decode()
    text = f"{_PREFIX}{_heads_member(heads)},{body}}}" if heads else f"{{{body}}}"
    return Split(text, tuple(writes), made)


class _Writers(NamedTuple):
    """How each snapshot field becomes a member, in the model's order (series fields left out)."""

    values_of: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # the fields' values from a model's __dict__
    prefixes: tuple[bytes, ...]  # `"name":`
    dumps: tuple[Callable[[Any], bytes], ...]  # the field's JSON serializer


@cache
def _writers() -> _Writers:
    """pydantic's own serializer of each field's type, so that a member is the bytes the model's
    serializer writes for it (a test holds the two texts equal). Made on first use (a few ms)."""
    names, dumps = [], []
    for name, field in PathwayFacts.model_fields.items():
        if name in SERIES_FIELDS:
            continue
        # with its metadata: a serializer given there (PlainSerializer, say) is the field's own
        annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        names.append(name)
        dumps.append(TypeAdapter(annotation).serializer.to_json)
    return _Writers(itemgetter(*names), tuple(f'"{name}":'.encode() for name in names), tuple(dumps))


def _members(facts: PathwayFacts, before: PathwayFacts | None = None, known: Members | None = None) -> Members:
    """The members of `facts`' snapshot. Given `before` and its members (`known`), a field whose
    value is the very object `before` holds keeps its member: the fold copies on write (a
    PathwayFacts is frozen, and what changes is a new tuple, dict or model), so only the fields a
    command changed are serialised again, instead of the whole snapshot on every command."""
    writers = _writers()
    values = writers.values_of(facts.__dict__)
    if before is None or known is None:
        return tuple(
            [prefix + dump(value) for prefix, dump, value in zip(writers.prefixes, writers.dumps, values, strict=True)]
        )
    if len(known) != len(values):
        raise ValueError("members of another model's snapshot")
    members = list(known)
    # the changed fields' positions, found in C: a field is compared by identity only
    for at in compress(range(len(values)), map(is_not, values, writers.values_of(before.__dict__))):
        members[at] = writers.prefixes[at] + writers.dumps[at](values[at])
    return tuple(members)


def without_series(text: str) -> str:
    """The snapshot text without its series heads: the facts JSON with every series empty
    (a text with no heads is returned as it is)."""
    if not has_series(text):
        return text
    return "{" + text[text.index("}", len(_PREFIX)) + 2 :]


def check_rows(text: str, rows: Mapping[str, Sequence[str]]) -> Mapping[str, SeriesHead]:
    """The heads of a snapshot text, once `rows` (values per field, in position order) are
    found to be what they commit to; SeriesMismatch otherwise."""
    heads = heads_in(text)
    if set(rows) - set(heads):
        raise SeriesMismatch("series rows the snapshot does not commit to")
    for name, head in heads.items():
        if EMPTY.extended(rows.get(name, ())) != head:
            raise SeriesMismatch(f"the {name} rows are not what the snapshot commits to")
    return heads


def assemble(text: str, rows: Mapping[str, Sequence[str]]) -> str:
    """The whole facts JSON: the snapshot text with its series put back from `rows` (values per
    field, in position order). SeriesMismatch when the rows are not what the heads commit to."""
    heads = check_rows(text, rows)
    if not heads:
        return text
    members = "".join(f',"{name}":[{",".join(rows[name])}]' for name in heads)
    return without_series(text)[:-1] + members + "}"
