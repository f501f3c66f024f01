"""Verification of the whole log: every chain recomputed from the stored columns, at speed.

For each pathway, in (pathway_id, sequence) order, inside one read-only snapshot:

- the sequence numbers are 1..n and each `prev_hash` is the previous entry's `hash`;
- the canonical body rebuilt from the *columns* (what the library reads back) equals the
  stored `body` byte for byte, and its SHA-256 is the stored `hash` (so a changed byte in any
  column, in the body or in the hash is caught);
- each entry starts where the one before left the pathway (invariant I4: a transition's
  from_phase is the previous phase, refusals and events keep it, the first starts from
  nothing), and a refusal commits to the same facts digest as the entry before it;
- the pathway row agrees with its log: version = number of entries, head_hash = last hash,
  phase = the last transition's destination, and its identity columns (patient_ref, route,
  donor type, graft source, HCT number, previous pathway) = the opening entry's payload;
- the stored facts are what the head entry commits to (sha256 = its facts_digest), and so
  are the series rows beside them (their number, and their values against the running hash
  the stored facts carry: persistence/series.py);
- the stored milestone schedule, derived data outside the chain, is the one those facts give
  under the pathway's registered policy (workflow/audit/schedules.py; NULL: none stored);
- with `deep=True`, the stored facts snapshot (which the head commits to) equals the
  replayed log (invariant I1; slow);
- given a checkpoint, every pathway it lists still has at least its entry count, and the
  entry at that position still has the recorded hash: this is what catches a truncated tail
  or a chain recomputed from scratch, which satisfy every rule above.

Problems name a pathway, a sequence number and a check, never a stored value. The body is
rebuilt by a string template instead of `json.dumps` because this runs for every entry. The
driver costs about 0.1 us per value fetched, so the twelve columns whose values repeat from
entry to entry (form, kind, trigger, phases, actor, role, policy, origin, release, reasons,
corrects) are read as one JSON array text built in SQL (persistence.audit_queries); each
distinct array is parsed once and becomes a template of its form with those members filled
in, and an entry fills in the eleven values that differ (pathway id, sequence, times, facts
digest, idempotency key, payload, prev_hash, reason). A test holds the result equal to
`persistence.chain.entry_body`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from persistence.audit_queries import (
    CHECK_COLUMNS,
    ENTRY_COLUMNS,
    SHARED_COLUMNS,
    AuditReader,
    PathwayHead,
    Slice,
    audit_snapshot,
)
from persistence.chain import BODY_MEMBERS, SHARED_MEMBERS, body_template, facts_digest
from persistence.series import assemble, check_rows, heads_in, without_series
from states.entry import GENESIS_HASH, Entry
from states.errors import UnknownPathway
from states.facts import PathwayFacts
from states.fold import replay
from states.milestones import SERIES_PLANNED_IN
from workflow.audit.schedules import ScheduleCheck

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from workflow.audit.checkpoint import Checkpoint
    from workflow.service import PathwayService

__all__ = ["Head", "Problem", "Row", "Verification", "verify_log"]

Check = Literal["chain", "phases", "digest", "pathway", "checkpoint"]
"""chain: hashes, links, bodies and forms; phases: invariant I4; digest: the state commitment
(a refusal's digest, the stored facts against the head, the replay with --deep); pathway: the
pathway row against its log; checkpoint: the log against a checkpoint."""
_CHECK_ORDER: Final = {"chain": 0, "phases": 1, "digest": 2, "pathway": 3, "checkpoint": 4}

Row = tuple[Any, ...]
"""An entry as `persistence.audit_queries` reads it: values in ENTRY_COLUMNS order (what a
`sink` and the replay see), or in CHECK_COLUMNS order (what the checks read)."""

Progress = Callable[[int], None]
"""Called after each batch with the number of entries checked so far."""


@dataclass(frozen=True)
class Head:
    """Where a pathway's chain stood: its number of entries and the last entry's hash."""

    entries: int
    hash: str


@dataclass(frozen=True)
class Problem:
    """The first place a check fails on one pathway: where, which check, and what (no values)."""

    pathway_id: str
    sequence: int
    check: Check
    detail: str

    def __str__(self) -> str:
        return f"pathway {self.pathway_id} sequence {self.sequence}: {self.detail} [{self.check}]"


@dataclass(frozen=True)
class Verification:
    """What `verify_log` checked and found. `ok` when nothing was found."""

    entries: int
    pathways: int
    problems: tuple[Problem, ...]
    heads: Mapping[str, Head] = field(repr=False)
    against_checkpoint: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first bad pathway (in id order) and its first bad sequence number."""
        return self.problems[0] if self.problems else None

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else float("inf")


# --- the canonical body from columns -------------------------------------------------------

# The body is rebuilt from `persistence.chain.body_template`: one template per distinct set of
# shared values (SHARED_COLUMNS, read as one JSON array text), made once (`_Templates`), with
# the values that differ per entry filled into its slots. Times arrive as stored, "YYYY-MM-DD
# HH:MM:SS.ffffff", the text the slots take (after checking the space is where it belongs, so
# that the mapping from stored text to body text is one-to-one); payload and reasons are
# canonical JSON text already; prev_hash is checked equal to the previous hash first.
_NOT_NULL: Final = frozenset({"actor_id", "actor_role", "kind", "policy_version", "reasons", "trigger"})

_encode_str: Callable[[str], str] = json.encoder.encode_basestring

_HASH: Final = CHECK_COLUMNS.index("hash")
_BODY: Final = CHECK_COLUMNS.index("body")
_IDENTITY: Final = ("patient_ref", "route", "donor_type", "graft_source", "hct_number", "previous_pathway")
# ENTRY_COLUMNS picked from (shared values + the rest of a CHECK_COLUMNS row): what exports and the replay read.
_TO_ENTRY: Final = operator.itemgetter(*(
    SHARED_COLUMNS.index(name) if name in SHARED_COLUMNS else len(SHARED_COLUMNS) + CHECK_COLUMNS.index(name) - 1
    for name in ENTRY_COLUMNS
))  # fmt: skip


class _Quoted(dict[Any, str]):
    """The JSON text of string columns met so far (and of NULL, when `nullable`). The pathway
    id repeats for a whole log, and a dict lookup costs a fraction of encoding it again. Only
    `str` is ever stored, so a value of another type misses and is refused as encoding it would be."""

    __slots__ = ("nullable",)

    def __init__(self, *, nullable: bool) -> None:
        super().__init__()
        self.nullable = nullable

    def __missing__(self, value: Any) -> str:
        if value is None and self.nullable:
            text = "null"  # remembered too: most nullable columns are NULL in most entries
        elif type(value) is not str:
            raise TypeError("not a string")
        else:
            text = _encode_str(value)
        if len(self) >= _QUOTED_LIMIT:  # unique values (idempotency keys, digests) must not pile up
            self.clear()
        self[value] = text
        return text


_QUOTED_LIMIT: Final = 50_000


def _integer(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is not int:
        raise TypeError("not an integer")
    return str(value)


def _shared_json(name: str, value: Any) -> str:
    """The body text of one shared column's value (reasons: stored as canonical JSON text)."""
    if name == "corrects":
        return _integer(value)
    if value is None and name not in _NOT_NULL:
        return "null"
    if type(value) is not str:
        raise TypeError("not a string")
    return value if name == "reasons" else _encode_str(value)


def _template(values: Sequence[Any]) -> str:
    """The body template for these shared values (SHARED_COLUMNS order), in the form they name.
    TypeError or ValueError when a value cannot be in a body, or the form is unknown."""
    shared = dict(zip(SHARED_COLUMNS, values, strict=True))
    form = shared["form"]
    members = BODY_MEMBERS.get(form) if type(form) is int else None
    if members is None:
        raise ValueError("an unknown canonical form")
    return body_template(form, {name: _shared_json(name, shared[name]) for name in SHARED_MEMBERS if name in members})


@dataclass(frozen=True, slots=True)
class _Shared:
    """One distinct set of shared values: the values, their template (None when one of them
    cannot be in a body: `_mismatch` then explains the row), and what the checks read of them."""

    values: tuple[Any, ...]
    template: str | None
    form: Any
    kind: Any
    from_phase: Any
    to_phase: Any


def _shared(text: str) -> _Shared:
    values = tuple(json.loads(text))  # built by SQL: valid JSON, one value per shared column
    try:
        template: str | None = _template(values)
    except (TypeError, ValueError):
        template = None
    named = dict(zip(SHARED_COLUMNS, values, strict=False))
    return _Shared(values, template, named.get("form"), named.get("kind"), named.get("from_phase"),
                   named.get("to_phase"))  # fmt: skip


class _Templates(dict[str, _Shared]):
    """The shared values met so far, by their JSON array text. Few sets occur (a kind, trigger,
    phases, actor and role repeat across entries and pathways), so each is parsed and turned
    into a template once, and an entry costs one lookup of one string for twelve columns."""

    def __missing__(self, text: str) -> _Shared:
        if len(self) >= _QUOTED_LIMIT:
            self.clear()
        shared = self[text] = _shared(text)
        return shared


def _fill(template: str | None, row: Row, text: _Quoted, nullable: _Quoted) -> bytes:
    """The canonical body of a CHECK_COLUMNS row, given its shared values' template.
    TypeError, ValueError or IndexError when a value cannot be in a body."""
    (_, pid, seq, eff, rec, digest, idem, payload, prev_hash, reason, _hash, _body) = row
    if eff[10] != " " or rec[10] != " ":
        raise ValueError("a time is not stored in the library's form")
    values = (eff, eff[11:], nullable[digest], nullable[idem], text[pid], payload, prev_hash, nullable[reason],
              rec, rec[11:], seq)  # fmt: skip
    return (template % values).encode("utf-8")  # type: ignore[operator]  # None: TypeError, as documented


def rebuilt_body(row: Row) -> bytes:
    """The canonical body the columns of a CHECK_COLUMNS `row` stand for: the verifier's own
    rebuild (exposed for tests, which hold it equal to `persistence.chain.entry_body`)."""
    return _fill(_shared(row[0]).template, row, _Quoted(nullable=False), _Quoted(nullable=True))


def _mismatch(row: Row) -> str:
    """Why a row failed the byte comparison or the hash: which side changed, and which members."""
    body, digest = row[_BODY], row[_HASH]
    stored = bytes(body) if isinstance(body, bytes | memoryview) else None
    stored_ok = stored is not None and hashlib.sha256(stored).hexdigest() == digest
    try:
        rebuilt = rebuilt_body(row)
    except (TypeError, ValueError, IndexError):
        return "a column holds a value of the wrong type or form"
    rebuilt_ok = hashlib.sha256(rebuilt).hexdigest() == digest
    if rebuilt == stored:
        return "hash does not match the body"
    if stored is None:
        return "the stored body is not bytes"
    if rebuilt_ok and not stored_ok:
        return "the stored body was changed (its columns still match the hash)"
    try:
        sealed, columns = json.loads(stored), json.loads(rebuilt)
    except ValueError:
        return "a column is not in its canonical form (payload or reasons not canonical JSON text)"
    if not isinstance(sealed, dict) or not isinstance(columns, dict):
        return "the stored body is not a JSON object"
    members = BODY_MEMBERS[_shared(row[0]).form]  # rebuilt_body succeeded, so the form is known
    names = sorted(name for name in members if sealed.get(name, ...) != columns.get(name, ...))
    if not names:
        return "a column is not in its canonical form"
    side = "columns differ from the sealed body" if stored_ok else "columns, body and hash disagree"
    return f"{side}: {', '.join(names)}"


# --- the scan --------------------------------------------------------------------------------


@dataclass
class _Scan:
    """Results accumulated over the scan; the per-entry state lives in `_check_rows`' locals."""

    pathways: Mapping[str, PathwayHead]
    expected: Mapping[str, Head]
    deep: bool
    reader: AuditReader | None = None  # for series rows; dropped before a worker answers
    series_counts: Mapping[str, int] = field(default_factory=dict)
    series: _SeriesStream | None = None
    schedules: ScheduleCheck | None = None  # the stored milestone schedules' check
    problems: list[Problem] = field(default_factory=list)
    heads: dict[str, Head] = field(default_factory=dict)
    at_checkpoint: dict[str, str | None] = field(default_factory=dict)
    entries: int = 0
    seen: int = 0  # pathways (rows or logs) in the slice


@dataclass(slots=True)
class _Tail:
    """Where one pathway's log stands after the entries read so far."""

    count: int = 0
    last_hash: str = GENESIS_HASH
    failed: bool = False
    phase: str | None = None  # the phase after the last entry (I4)
    digest: str | None = None  # the last entry's facts digest (None in form 1)
    form: int = 1
    opening: Any = None


class _SeriesStream:
    """The slice's series rows, read beside its entries in the same pathway order, so that a
    pathway's rows are at hand when its log ends without a query of their own."""

    def __init__(self, rows: Iterator[tuple[str, str, str]], skip: set[str]) -> None:
        # Runs of one pathway, then of one field (the rows come ordered by pathway, field and
        # position), split by groupby: a row costs no Python step of its own.
        self._pathways = itertools.groupby(rows, key=operator.itemgetter(0))
        self._next = next(self._pathways, None)
        self._skip = skip  # pathways whose rows are read no more (finished, or no pathway row)

    def take(self, pid: str) -> dict[str, list[str]] | None:
        """`pid`'s rows if they come next, else None (the caller asks the database)."""
        while self._next is not None and self._next[0] in self._skip:
            self._next = next(self._pathways, None)
        self._skip.add(pid)
        if self._next is None or self._next[0] != pid:
            return None
        found = {name: list(map(_VALUE, rows)) for name, rows in itertools.groupby(self._next[1], key=_FIELD)}
        self._next = next(self._pathways, None)
        return found


_FIELD: Final = operator.itemgetter(1)
_VALUE: Final = operator.itemgetter(2)


def _finish(scan: _Scan, pid: str, tail: _Tail, rows: Sequence[Row]) -> None:
    """Close one pathway: its head, and the pathway row's agreement with the log."""
    series = scan.series.take(pid) if scan.series is not None else None
    count = tail.count
    scan.heads[pid] = Head(count, tail.last_hash)
    if tail.failed:
        return  # the chain's own problem is the one to read first; the row is no evidence then
    record = scan.pathways.get(pid)
    problems = scan.problems
    if record is None:
        problems.append(Problem(pid, 1, "pathway", "entries whose pathway row is missing"))
        return
    if record.version != count:
        problems.append(
            Problem(
                pid,
                min(record.version, count) + 1,
                "pathway",
                f"the pathway row's version is {record.version} but the log has {count} entries",
            )
        )
        return
    if record.head_hash != tail.last_hash:
        problems.append(Problem(pid, count, "pathway", "the pathway row's head_hash is not the last entry's hash"))
        return
    if record.phase != tail.phase:
        detail = "the pathway row's phase is not the last transition's destination"
        problems.append(Problem(pid, count, "pathway", detail))
        return
    try:
        values = json.loads(tail.opening)
    except (TypeError, ValueError):
        values = None
    if not isinstance(values, dict):
        problems.append(Problem(pid, 1, "pathway", "the opening entry's payload is not a JSON object"))
        return
    for name in _IDENTITY:
        if values.get(name, 1 if name == "hct_number" else None) != getattr(record, name):
            problems.append(Problem(pid, 1, "pathway", f"the pathway row's {name} differs from the opening entry"))
            return
    stored = record.facts if isinstance(record.facts, str) else ""
    if tail.form >= 2 and facts_digest(stored) != tail.digest:
        problems.append(Problem(pid, count, "digest", "the stored facts are not what the head entry commits to"))
        return
    # The row's phase is the log's (checked above): outside SERIES_PLANNED_IN the plan is
    # checked against the facts without their series, which are then only checked, not parsed.
    planned_from_series = record.schedule is not None and record.phase in SERIES_PLANNED_IN
    whole = _with_series(scan, pid, stored, series, whole=scan.deep or planned_from_series)
    if whole is None:
        problems.append(Problem(pid, count, "digest", "the series rows are not what the stored facts commit to"))
        return
    if scan.deep:
        _check_facts(scan, pid, whole, rows)
    if record.schedule is not None and scan.schedules is not None:
        mismatch = scan.schedules.problem(whole if planned_from_series else without_series(stored), record.schedule)
        if mismatch is not None:
            problems.append(Problem(pid, count, "pathway", mismatch))


def _with_series(
    scan: _Scan, pid: str, stored: str, rows: Mapping[str, Sequence[str]] | None, *, whole: bool
) -> str | None:
    """The stored facts with their series rows (`rows`, or read now when None) put back (only
    checked, and the stored text returned, unless the `whole` text is needed); None when the
    rows (their number, or their values against the running hash) are not what the stored
    facts commit to."""
    try:
        expected = sum(head.count for head in heads_in(stored).values())
        if scan.series_counts.get(pid, 0) != expected:
            return None
        if not expected:
            return stored
        if rows is None:
            assert scan.reader is not None
            rows = scan.reader.series_of(pid)
        if not whole:  # only the replay and the schedule check need the whole text
            check_rows(stored, rows)
            return stored
        return assemble(stored, rows)
    except (ValueError, TypeError):
        return None


def _check_facts(scan: _Scan, pid: str, stored: str, rows: Sequence[Row]) -> None:
    """I1: the stored snapshot is the fold of the log. Run after the digest check, so the
    replayed facts are also what the head entry commits to (compared as values: the stored
    text keeps the key order payloads were sent in, which a replay does not reproduce)."""
    try:
        same = replay([_entry(row) for row in rows]) == PathwayFacts.model_validate_json(stored)
    except (ValueError, KeyError, TypeError):
        same = False
    if not same:
        scan.problems.append(Problem(pid, len(rows), "pathway", "the stored facts differ from the replayed log"))


def _entry(row: Row) -> Entry:
    values = dict(zip(ENTRY_COLUMNS, row, strict=True))
    del values["body"]
    values["payload"] = json.loads(values["payload"])
    values["reasons"] = json.loads(values["reasons"])
    for name in ("effective_at", "recorded_at"):
        values[name] = datetime.fromisoformat(values[name]).replace(tzinfo=UTC)
    return Entry.model_validate(values)


def _content_problem(tail: _Tail, position: int, shared: _Shared, digest: Any) -> tuple[Check, str] | None:
    """I4 and digest continuity of one entry that chained correctly (None when it is fine)."""
    kind, from_phase, to_phase, form = shared.kind, shared.from_phase, shared.to_phase, shared.form
    if from_phase != tail.phase:
        where = "nothing (the first entry)" if position == 1 else f"where entry {position - 1} left the pathway"
        return "phases", f"from_phase is not {where} (I4)"
    if kind != "transition" and to_phase != from_phase:
        return "phases", f"a {kind} changes the phase (I4)"
    if kind == "refusal" and form >= 2 and tail.form >= 2 and position > 1 and digest != tail.digest:
        return "digest", "a refusal commits to other facts than the entry before it"
    return None


def _entry_row(shared: _Shared, row: Row) -> Row:
    """A CHECK_COLUMNS row in ENTRY_COLUMNS order (for a sink and the replay)."""
    return cast("Row", _TO_ENTRY(shared.values + row[1:]))


def _check_rows(
    reader: AuditReader,
    scan: _Scan,
    where: Slice,
    *,
    batch_size: int,
    progress: Progress | None,
    sink: Callable[[Row], None] | None,
) -> None:
    """The hot loop: one pass over every entry. A pathway change calls `_finish`."""
    sha256 = hashlib.sha256
    templates, text, nullable = _Templates(), _Quoted(nullable=False), _Quoted(nullable=True)
    expected = scan.expected
    deep = scan.deep
    current: str | None = None
    tail = _Tail()
    cp_position = 0
    kept: list[Row] = []
    done = 0
    batches = reader.check_batches(where, batch_size=batch_size)
    for batch in batches:
        for row in batch:
            (shared_text, pid, seq, _, _, facts, _, payload, prev_hash, _, digest, body) = row  # CHECK_COLUMNS
            shared = templates[shared_text]
            if pid != current:
                if current is not None:
                    _finish(scan, current, tail, kept)
                current, tail, kept = pid, _Tail(), []
                head = expected.get(pid)
                cp_position = head.entries if head is not None else 0
            tail.count += 1
            position = tail.count
            if sink is not None:
                sink(_entry_row(shared, row))
            if position == cp_position:
                scan.at_checkpoint[pid] = digest
            if tail.failed:
                tail.last_hash = digest
                continue
            form = shared.form
            problem: tuple[Check, str] | None = None
            if seq != position:
                problem = "chain", f"no entry with sequence number {position} here (deleted, swapped or renumbered)"
            elif prev_hash != tail.last_hash:
                problem = (
                    "chain",
                    (
                        "the first entry's prev_hash is not the genesis hash"
                        if position == 1
                        else f"prev_hash is not the hash of entry {position - 1}"
                    ),
                )
            elif type(form) is not int or form < tail.form:
                problem = "chain", "sealed in an older canonical form than the entry before it"
            else:
                try:
                    data = _fill(shared.template, row, text, nullable)
                except (TypeError, ValueError, IndexError):
                    data = b""
                if data != body or sha256(data).hexdigest() != digest:
                    problem = "chain", _mismatch(row)
                else:
                    problem = _content_problem(tail, position, shared, facts)
            if problem is not None:
                scan.problems.append(Problem(pid, position, *problem))
                tail.failed, tail.last_hash = True, digest
                continue
            tail.last_hash, tail.form, tail.digest = digest, form, facts
            if shared.kind == "transition":
                tail.phase = shared.to_phase
            if position == 1:
                tail.opening = payload
            if deep:
                kept.append(_entry_row(shared, row))
        done += len(batch)
        if progress is not None:
            progress(done)
    batches.close()
    if current is not None:
        _finish(scan, current, tail, kept)
    scan.entries = done


def _check_against(scan: _Scan) -> None:
    """Truncation and rewrites: the log must still reach each checkpointed head, unchanged."""
    for pid, head in scan.expected.items():
        now = scan.heads.get(pid)
        if now is None:
            scan.problems.append(
                Problem(pid, 1, "checkpoint", f"the pathway is missing; the checkpoint recorded {head.entries} entries")
            )
        elif now.entries < head.entries:
            scan.problems.append(
                Problem(
                    pid,
                    now.entries + 1,
                    "checkpoint",
                    f"the log has {now.entries} entries; the checkpoint recorded {head.entries} (truncated)",
                )
            )
        elif scan.at_checkpoint.get(pid) != head.hash:
            scan.problems.append(
                Problem(
                    pid,
                    head.entries,
                    "checkpoint",
                    "this entry's hash is not the head the checkpoint recorded (the chain was rewritten)",
                )
            )


def _scan_slice(
    reader: AuditReader,
    where: Slice,
    expected: Mapping[str, Head],
    *,
    deep: bool,
    batch_size: int,
    progress: Progress | None,
    sink: Callable[[Row], None] | None,
) -> _Scan:
    """Check one slice of pathways inside one snapshot (everything but the checkpoint comparison)."""
    rows = {row.id: row for row in reader.pathways(where, with_facts=True)}  # the digests need the facts
    counts = reader.series_counts(where)
    scan = _Scan(rows, expected, deep, reader, counts)
    series = reader.series_rows(where, batch_size=batch_size)
    scan.series = _SeriesStream(series, set(counts) - set(rows))
    scan.schedules = ScheduleCheck(reader.policy_contents())
    try:
        _check_rows(reader, scan, where, batch_size=batch_size, progress=progress, sink=sink)
    finally:
        series.close()
    for pid in rows.keys() - scan.heads.keys():
        scan.problems.append(Problem(pid, 1, "pathway", "a pathway row without entries"))
    for pid in scan.series_counts.keys() - rows.keys():
        scan.problems.append(Problem(pid, 1, "pathway", "series rows whose pathway row is missing"))
    scan.pathways, scan.reader, scan.series_counts, scan.series = {}, None, {}, None  # a worker's answer stays small
    scan.schedules = None
    scan.seen = len(rows.keys() | scan.heads.keys())
    return scan


def verify_log(
    source: PathwayService | Engine,
    *,
    checkpoint: Checkpoint | None = None,
    pathway_id: str | None = None,
    deep: bool = False,
    workers: int = 1,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    sink: Callable[[Row], None] | None = None,
    batch_size: int = 500,
) -> Verification:
    """Verify every pathway's log (or one), optionally against a checkpoint.

    `workers` > 1 splits the pathways into that many id ranges checked by separate processes,
    each in its own snapshot (each pathway is still read consistently; a file or server
    database only). `progress` is called with the entries checked so far, `on_total` once
    with the number to check. `sink` sees every entry row as it is checked (exports write in
    the same pass and snapshot; one worker only). The checkpoint's signature is checked by
    `load_checkpoint`, not here. An unknown `pathway_id` raises UnknownPathway. `batch_size`
    rows are fetched at a time: a few hundred stay in the CPU's cache while they are checked
    (500 measured fastest; 5,000 cost about 20% more per entry on SQLite).
    """
    started = time.perf_counter()
    engine = cast("Engine", getattr(source, "engine", source))  # a PathwayService or an Engine
    expected: Mapping[str, Head] = {} if checkpoint is None else checkpoint.heads
    where = Slice(pathway_id=pathway_id)
    if pathway_id is not None:
        expected = {pathway_id: expected[pathway_id]} if pathway_id in expected else {}
    if workers > 1 and (sink is not None or pathway_id is not None or not _parallel_ok(engine)):
        workers = 1
    if workers > 1:
        scans = _parallel(
            engine, expected, workers, deep=deep, batch_size=batch_size, progress=progress, on_total=on_total
        )
    else:
        with audit_snapshot(engine) as reader:
            if on_total is not None:
                on_total(reader.count_entries())
            scans = [
                _scan_slice(reader, where, expected, deep=deep, batch_size=batch_size, progress=progress, sink=sink)
            ]
    if pathway_id is not None and not scans[0].seen and pathway_id not in expected:
        raise UnknownPathway(pathway_id)
    return _merge(scans, expected, checkpoint is not None, time.perf_counter() - started)


def _merge(scans: Sequence[_Scan], expected: Mapping[str, Head], against: bool, seconds: float) -> Verification:
    merged = _Scan({}, expected, deep=False)
    for scan in scans:
        merged.problems += scan.problems
        merged.heads.update(scan.heads)
        merged.at_checkpoint.update(scan.at_checkpoint)
        merged.entries += scan.entries
        merged.seen += scan.seen
    if against:
        _check_against(merged)
    problems = sorted(merged.problems, key=lambda p: (p.pathway_id, p.sequence, _CHECK_ORDER[p.check]))
    return Verification(
        entries=merged.entries,
        pathways=merged.seen,
        problems=tuple(problems),
        heads=dict(merged.heads),
        against_checkpoint=against,
        seconds=seconds,
    )


# --- several processes ----------------------------------------------------------------------


def _parallel_ok(engine: Engine) -> bool:
    """Workers open their own connections from the URL: not possible for an in-memory SQLite."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return True
    database = url.database or ""
    return database not in ("", ":memory:") and url.query.get("mode") != "memory"


def _bounds(engine: Engine, workers: int) -> tuple[list[Slice], int]:
    """Id ranges holding about the same number of entries each (by the pathway rows' versions);
    one range for everything when there are fewer pathways than workers."""
    with audit_snapshot(engine) as reader:
        heads = reader.pathways()
        total = reader.count_entries()
    if len(heads) < workers:
        return [Slice()], total
    target = max(1, sum(head.version for head in heads) // workers)
    cuts: list[str] = []
    running = 0
    for head in heads:
        if running >= target * (len(cuts) + 1) and len(cuts) < workers - 1:
            cuts.append(head.id)
        running += max(head.version, 0)
    edges: list[str | None] = [None, *cuts, None]
    return [Slice(start=edges[i], stop=edges[i + 1]) for i in range(len(edges) - 1)], total


def _parallel(
    engine: Engine,
    expected: Mapping[str, Head],
    workers: int,
    *,
    deep: bool,
    batch_size: int,
    progress: Progress | None,
    on_total: Callable[[int], None] | None,
) -> list[_Scan]:
    import multiprocessing

    slices, total = _bounds(engine, workers)
    if on_total is not None:
        on_total(total)
    if len(slices) == 1:  # nothing to share out: check it here
        with audit_snapshot(engine) as reader:
            return [
                _scan_slice(reader, slices[0], expected, deep=deep, batch_size=batch_size, progress=progress, sink=None)
            ]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    counter = context.Value("q", 0)
    own, *others = slices  # this process checks the first slice itself while the others run
    # Every worker gets every checkpointed head: which slice a pathway falls in is the
    # database's collation to decide, not Python's string order.
    jobs = [(engine.url, where, expected, deep, batch_size) for where in others]

    def report(done: int) -> None:
        if progress is not None:
            progress(done + counter.value)

    with context.Pool(len(jobs), initializer=_init_worker, initargs=(counter,)) as pool:
        pending = pool.map_async(_work, jobs)
        with audit_snapshot(engine) as reader:
            first = _scan_slice(reader, own, expected, deep=deep, batch_size=batch_size, progress=report, sink=None)
        while not pending.ready():
            pending.wait(0.1)
            report(first.entries)
        scans: list[_Scan] = [first, *pending.get()]
    if progress is not None:
        progress(sum(scan.entries for scan in scans))
    return scans


_COUNTER: Any = None


def _init_worker(counter: Any) -> None:
    global _COUNTER
    _COUNTER = counter


def _work(job: tuple[Any, Slice, Mapping[str, Head], bool, int]) -> _Scan:
    """One worker: its own engine and snapshot, one id range."""
    from persistence.engine import create_engine

    url, where, expected, deep, batch_size = job
    engine = create_engine(url)
    last = 0

    def counted(done: int) -> None:
        nonlocal last
        with _COUNTER.get_lock():
            _COUNTER.value += done - last
        last = done

    try:
        with audit_snapshot(engine) as reader:
            return _scan_slice(reader, where, expected, deep=deep, batch_size=batch_size, progress=counted, sink=None)
    finally:
        engine.dispose()
