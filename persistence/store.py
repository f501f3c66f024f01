"""The store: reads and appends a pathway's log inside the caller's transaction.

It never begins, commits or rolls back: the service (or the host) owns the unit of work.
Statements are Core, built once at import, executed on the session's connection, with no
ORM unit of work and no extra SELECT. The four on every command's hot path (load the
pathway row with its head entry's state commitment, move it forward, insert the entry and its
outbox row) are rendered to SQL once per dialect and run as driver SQL, with this module
converting the few values the column types would have. A load refuses a pathway whose stored
facts are not what its head entry commits to (IntegrityError). Driver errors are translated
here into the library's own exceptions.
The outbox queries the dispatcher needs (workflow/outbox.py) are here too.

After any exception from a write the caller must roll back: on PostgreSQL the transaction
is aborted, and on every backend part of the write may already be in it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import Enum
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple, NoReturn, Protocol, TypeVar

from sqlalchemy import and_, bindparam, case, delete, exists, func, insert, null, or_, select, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from persistence.chain import (
    BODY_FIELDS,
    FORM_FIELDS,
    Sealed,
    body_from_fields,
    facts_digest,
    hash_body,
    seal_with_body,
)
from persistence.engine import driver_error
from persistence.models import ERROR_NAME_LENGTH
from persistence.models import entries_table as E
from persistence.models import fact_series_table as S
from persistence.models import outbox_table as O
from persistence.models import pathways_table as P
from persistence.series import SeriesWrite, Split, assemble, grouped, has_series
from persistence.types import UTCDateTime, bind_value, result_value
from states.entry import GENESIS_HASH, Draft, Entry
from states.errors import ConcurrencyConflict, HsctError, IntegrityError, PatientHasOpenPathway, UnknownPathway
from states.facts import PathwayFacts
from states.fold import replay
from states.milestones import NO_SCHEDULE
from states.sharing import shared
from states.vocabulary import CLOSED_PHASES, DonorType, GraftSource, Phase, Route

__all__ = [
    "DAY_ANCHORS",
    "DuplicateIdempotencyKey",
    "LogFilter",
    "OutboxMessage",
    "PathwayRecord",
    "StorageError",
    "Store",
    "log_select",
    "translate_error",
    "translate_errors",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class DuplicateIdempotencyKey(ConcurrencyConflict):
    """Another transaction stored an entry with this idempotency key first.

    Roll back, then look the key up with `Store.entry_by_idempotency_key`: the same command
    gets the stored result back, a different one is an IdempotencyMisuse.
    """

    def __init__(self, pathway_id: str) -> None:
        super().__init__(pathway_id, "idempotency key already recorded")


class StorageError(HsctError):
    """A database error with no more specific meaning for the library.

    The message names the error class, SQLSTATE and schema objects only, never values.
    `connection_invalidated` is true when the connection was lost. `outcome_unknown` is set
    by whoever owns the transaction when it was lost during COMMIT: the command may or may
    not have committed until the pathway is reloaded (or the command is sent again with its
    idempotency key, which then replays or applies it once).
    """

    def __init__(
        self,
        detail: str,
        *,
        sqlstate: str | None = None,
        connection_invalidated: bool = False,
        outcome_unknown: bool = False,
    ) -> None:
        self.sqlstate = sqlstate
        self.connection_invalidated = connection_invalidated
        self.outcome_unknown = outcome_unknown
        super().__init__(f"database error: {detail}")

    @classmethod
    def from_dbapi(cls, exc: DBAPIError) -> StorageError:
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        parts = [type(orig).__name__]
        if isinstance(sqlstate, str):
            parts.append(f"SQLSTATE {sqlstate}")
            diag = getattr(orig, "diag", None)
            for label in ("table_name", "column_name", "constraint_name"):
                name = getattr(diag, label, None)
                if name:
                    parts.append(f"{label.removesuffix('_name')} {name}")
        elif isinstance(orig, sqlite3.Error):
            parts.append(str(orig))  # SQLite names columns and constraints, not values
        else:
            sqlstate = None
        if exc.connection_invalidated:
            parts.append("connection lost")
        return cls(
            ", ".join(parts),
            sqlstate=sqlstate if isinstance(sqlstate, str) else None,
            connection_invalidated=exc.connection_invalidated,
        )


@dataclass(frozen=True, slots=True)
class PathwayRecord:
    """A pathway row as plain values (not the ORM object, so nothing lazy-loads or flushes)."""

    id: str
    patient_ref: str = field(repr=False)
    route: Route
    donor_type: DonorType | None
    graft_source: GraftSource
    hct_number: int
    previous_pathway: str | None
    phase: Phase
    version: int
    head_hash: str
    facts: str = field(repr=False)
    created_at: datetime
    updated_at: datetime
    successor: str | None
    # From the head entry, read in the same query (None when no entry is at `version` with
    # `head_hash`): the facts digest it commits to (None in form 1), its canonical form, and the
    # phase it left the pathway in (every entry names it; only a transition moves it).
    head_digest: str | None
    head_form: int | None
    head_phase: str | None
    facts_digest: str  # sha256 of `facts` as stored

    @property
    def consistent(self) -> bool | None:
        """Are the row's phase and stored facts what its head entry says? None: the phase is, but
        the head is form 1, which commits to no facts (the log must be replayed to know)."""
        if self.head_form is None or self.head_phase != self.phase:
            return False
        if self.head_form < 2:
            return None
        return self.head_digest == self.facts_digest

    def advanced(self, entry: Entry, now: datetime, facts: str | None = None) -> PathwayRecord:
        """The row as appending `entry` at `now` leaves it (`facts`: the snapshot text written
        with it; None: unchanged), which is what the next load would read: a command may judge
        it instead of loading again once `Store.holds` finds it still stored."""
        if entry.facts_digest is None:
            raise ValueError("only an entry that commits to its facts (form 2) says what the row holds")
        # Every field named (not `dataclasses.replace`, which costs twice as much on every command).
        return PathwayRecord(
            id=self.id,
            patient_ref=self.patient_ref,
            route=self.route,
            donor_type=self.donor_type,
            graft_source=self.graft_source,
            hct_number=self.hct_number,
            previous_pathway=self.previous_pathway,
            phase=_PHASE(entry.to_phase),
            version=entry.sequence,
            head_hash=entry.hash,
            facts=self.facts if facts is None else facts,
            created_at=self.created_at,
            updated_at=now,
            successor=self.successor,
            head_digest=entry.facts_digest,
            head_form=entry.form,
            head_phase=str(entry.to_phase),
            facts_digest=entry.facts_digest,
        )


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One outbox row with the entry it announces, for the dispatcher and the host's handler.

    `id` is the row's storage id (a handler's deduplication key); order is per pathway by
    `sequence`. `attempts` counts the handler calls made before this one. The entry, which
    holds clinical data, is left out of the repr so that logging a message cannot leak it.
    """

    id: int
    pathway_id: str
    sequence: int
    topic: str
    entry_hash: str
    attempts: int
    created_at: datetime
    entry: Entry = field(repr=False)


# --- error translation -------------------------------------------------------------------

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_PG_CONFLICT_STATES = {
    "40001": "serialization failure",
    "40P01": "deadlock detected",
    "55P03": "lock not available",
}
_CONFLICT_CONSTRAINTS = {"uq_entries_pathway_id_sequence", "pk_pathways"}
_PATHWAY_FOREIGN_KEYS = {
    "fk_entries_pathway_id_pathways",
    "fk_pathways_previous_pathway_pathways",
    "fk_pathways_successor_pathways",
}
_OPEN_PATHWAY_INDEX = "uq_pathways_open_patient"


def translate_error(exc: DBAPIError, pathway_id: str = "", *, missing_pathway: str | None = None) -> HsctError:
    """The library's error for a driver error. Its message never carries a bound value.

    Busy/locked SQLite, PostgreSQL serialization failures, deadlocks and lock timeouts, and a
    lost race on a sequence number are ConcurrencyConflict; a duplicate idempotency key is
    DuplicateIdempotencyKey; a second open pathway of a patient is PatientHasOpenPathway; a
    foreign key naming no pathway is UnknownPathway; anything else is StorageError (PostgreSQL's
    own message is not kept: its DETAIL quotes row values).
    """
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        if sqlstate in _PG_CONFLICT_STATES:
            return ConcurrencyConflict(pathway_id, _PG_CONFLICT_STATES[sqlstate])
        constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
        if sqlstate == "23505":
            if constraint == "uq_entries_idempotency_key":
                return DuplicateIdempotencyKey(pathway_id)
            if constraint == _OPEN_PATHWAY_INDEX:
                return PatientHasOpenPathway(pathway_id)
            if constraint in _CONFLICT_CONSTRAINTS:
                return ConcurrencyConflict(pathway_id, f"unique constraint {constraint}")
        if sqlstate == "23503" and constraint in _PATHWAY_FOREIGN_KEYS:
            return UnknownPathway(missing_pathway or pathway_id)
    elif isinstance(orig, sqlite3.Error):
        message = str(orig)
        code = getattr(orig, "sqlite_errorcode", 0) & 0xFF
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in message:
            return ConcurrencyConflict(pathway_id, "the database is busy")
        if isinstance(orig, sqlite3.IntegrityError):
            if "UNIQUE constraint failed: entries.idempotency_key" in message:
                return DuplicateIdempotencyKey(pathway_id)
            if "UNIQUE constraint failed: pathways.patient_ref" in message:  # the open-pathway index
                return PatientHasOpenPathway(pathway_id)
            if (
                "UNIQUE constraint failed: entries.pathway_id, entries.sequence" in message
                or "UNIQUE constraint failed: pathways.id" in message
            ):
                return ConcurrencyConflict(pathway_id, "unique constraint on the chain position")
            if "FOREIGN KEY constraint failed" in message:
                return UnknownPathway(missing_pathway or pathway_id)
    return StorageError.from_dbapi(exc)


def _reraise(exc: DBAPIError, pathway_id: str = "", missing_pathway: str | None = None) -> NoReturn:
    # `from None`: the driver's message stays reachable as __context__ but is not printed
    # under the library's error, because PostgreSQL's DETAIL quotes the offending row.
    raise translate_error(exc, pathway_id, missing_pathway=missing_pathway) from None


@contextmanager
def translate_errors(pathway_id: str = "") -> Iterator[None]:
    """Translate driver errors raised in the block, e.g. around the service's `commit()`."""
    try:
        yield
    except DBAPIError as exc:
        _reraise(exc, pathway_id)


# --- statements, built once ----------------------------------------------------------------

_INSERT_PATHWAY = insert(P).inline()
_INSERT_ENTRY = insert(E).inline()
_INSERT_OUTBOX = insert(O).inline()
_INSERT_SERIES = insert(S).inline()
_SERIES_KEYS = ("pathway_id", "field", "position", "value")
_DROP_SERIES = delete(S).where(S.c.pathway_id == bindparam("b_id"), S.c.field == bindparam("b_field"))
_SELECT_SERIES = (
    select(S.c.field, S.c.value).where(S.c.pathway_id == bindparam("b_id")).order_by(S.c.field, S.c.position)
)
_SELECT_ALL_SERIES = select(S.c.pathway_id, S.c.field, S.c.value).order_by(S.c.pathway_id, S.c.field, S.c.position)

_ADVANCE_WHERE = (
    P.c.id == bindparam("b_id"),
    P.c.version == bindparam("b_expected"),
    P.c.head_hash == bindparam("b_head"),
)


def _advance(*, facts: bool, moves: bool) -> Any:
    """The pathway row moved to the new head; with `facts`, the snapshot and the schedule that
    goes with it (NULL: read it from the facts).

    A phase that stays (`moves` False: an event, a refusal) is not assigned: SQLite rewrites the
    index entries of every indexed column an UPDATE assigns, even to the value it holds, which
    for the phase is two of a command's dozen WAL pages (its index and the open-patient one).
    The WHERE holds it instead, so the row still ends in the entry's phase either way.
    """
    values: dict[str, Any] = {
        "version": bindparam("b_version"),
        "head_hash": bindparam("b_new_head"),
        "updated_at": bindparam("b_now", type_=UTCDateTime()),
    }
    if moves:
        values["phase"] = bindparam("b_phase")
    if facts:
        values.update(facts=bindparam("b_facts"), schedule=bindparam("b_schedule"))
    where = _ADVANCE_WHERE if moves else (*_ADVANCE_WHERE, P.c.phase == bindparam("b_phase"))
    return update(P).where(*where).values(**values)


# The head entry a pathway row names: the entry at sequence = version whose hash is head_hash.
_HEAD_OF_ROW = and_(E.c.pathway_id == P.c.id, E.c.sequence == P.c.version, E.c.hash == P.c.head_hash)
# Is the row still what a record says, as a load would read and check it (`Store.holds`)? The
# row's version, head hash, phase and facts text, and its head entry with the record's facts
# digest, form and phase: what `PathwayRecord.consistent` compares, in one probe.
_STILL_HELD = select(P.c.id).where(
    P.c.id == bindparam("b_id"),
    P.c.version == bindparam("b_version"),
    P.c.head_hash == bindparam("b_head"),
    P.c.phase == bindparam("b_phase"),
    P.c.facts == bindparam("b_facts"),
    exists(
        select(E.c.id).where(
            _HEAD_OF_ROW,
            E.c.facts_digest == bindparam("b_digest"),
            E.c.form == bindparam("b_form"),
            E.c.to_phase == bindparam("b_phase"),
        )
    ),
)


_HEAD_FIELDS = ("head_digest", "head_form", "head_phase")
_PATHWAY_FIELDS = tuple(f.name for f in fields(PathwayRecord) if f.name not in (*_HEAD_FIELDS, "facts_digest"))
# The pathway row with its head entry's state commitment, in one query (no entry when the row
# and the log disagree).
_PATHWAYS_WITH_HEAD = select(
    *(P.c[name] for name in _PATHWAY_FIELDS),
    E.c.facts_digest.label("head_digest"),
    E.c.form.label("head_form"),
    E.c.to_phase.label("head_phase"),
).select_from(P.outerjoin(E, _HEAD_OF_ROW))
_SELECT_PATHWAY = _PATHWAYS_WITH_HEAD.where(P.c.id == bindparam("b_id"))
# PostgreSQL: writers of one pathway queue on its row from the load on, so a command judges
# the facts it will commit after and a busy pathway costs waiting, not redone work. SQLite
# renders no FOR UPDATE: BEGIN IMMEDIATE already serialises writers. Only the pathway row is
# locked (entries are append-only).
_SELECT_PATHWAY_FOR_UPDATE = _SELECT_PATHWAY.with_for_update(of=P)
# The head entry alone, for a load that waited for the row lock (PostgreSQL, READ COMMITTED):
# the locked row is re-read at its newest version, but the joined entry is looked for in the
# statement's snapshot, taken before the writer that held the lock committed its entry.
_SELECT_HEAD = select(E.c.facts_digest, E.c.form, E.c.to_phase).where(
    E.c.pathway_id == bindparam("b_id"), E.c.sequence == bindparam("b_version"), E.c.hash == bindparam("b_head")
)
_SELECT_FACTS = select(P.c.facts).where(P.c.id == bindparam("b_id"))
_SET_SUCCESSOR = update(P).where(P.c.id == bindparam("b_id")).values(successor=bindparam("b_successor"))
_SELECT_OPEN_OF = (
    select(P.c.id)
    .where(P.c.patient_ref == bindparam("b_patient"), P.c.phase.not_in(bindparam("b_closed", expanding=True)))
    .where(P.c.successor.is_(None))
    .order_by(P.c.created_at, P.c.id)
)

_ENTRY_NAMES = (*BODY_FIELDS, "sequence", "prev_hash", "hash", "form")
_ENTRY_COLUMNS = [E.c[name] for name in _ENTRY_NAMES]
_SELECT_ENTRIES = select(*_ENTRY_COLUMNS).where(E.c.pathway_id == bindparam("b_id")).order_by(E.c.sequence)
_later = E.alias("later")
_FIRST_RECORDED_AFTER = (
    select(func.min(_later.c.sequence))
    .where(
        _later.c.pathway_id == bindparam("b_id"),
        _later.c.recorded_at > bindparam("b_until", type_=UTCDateTime()),
    )
    .scalar_subquery()
)
_SELECT_ENTRIES_UNTIL = _SELECT_ENTRIES.where(E.c.sequence < func.coalesce(_FIRST_RECORDED_AFTER, 2**31 - 1))
_SELECT_BY_KEY = select(*_ENTRY_COLUMNS).where(E.c.idempotency_key == bindparam("b_key"))
_SELECT_BODIES = select(*_ENTRY_COLUMNS, E.c.body).where(E.c.pathway_id == bindparam("b_id")).order_by(E.c.sequence)


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which entries `Store.log` reads; every field set narrows it. Times bound `recorded_at`,
    both ends included."""

    pathway_id: str | None = None
    actor_id: str | None = None
    trigger: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def log_select(where: LogFilter) -> Any:
    """The entries `where` selects, oldest recorded first (ties: pathways in creation order,
    then sequence). A pathway is read through the (pathway_id, sequence) index and a time
    window through `ix_entries_recorded_at`; actor, trigger and kind are compared on what those
    leave (tests/persistence/test_log_plans.py reads the plans)."""
    clauses = [
        column == value
        for column, value in (
            (E.c.pathway_id, where.pathway_id),
            (E.c.actor_id, where.actor_id),
            (E.c.trigger, where.trigger),
            (E.c.kind, where.kind),
        )
        if value is not None
    ]
    if where.since is not None:
        clauses.append(E.c.recorded_at >= _aware(where.since, "since"))
    if where.until is not None:
        clauses.append(E.c.recorded_at <= _aware(where.until, "until"))
    return (
        select(*_ENTRY_COLUMNS)
        .join_from(E, P, P.c.id == E.c.pathway_id)
        .where(*clauses)
        .order_by(E.c.recorded_at, P.c.created_at, P.c.id, E.c.sequence)
    )


_SELECT_IDS = select(P.c.id).order_by(P.c.created_at, P.c.id)
_SELECT_IDS_OF = _SELECT_IDS.where(P.c.patient_ref == bindparam("b_patient"))
_SELECT_IDS_LIKE = select(P.c.id).where(P.c.id.like(bindparam("b_prefix"), escape="\\"))
_LOCK_AT_ONCE = select(P.c.id).where(P.c.id == bindparam("b_id")).with_for_update(nowait=True)
_SELECT_SNAPSHOTS = select(P.c.id, P.c.facts).order_by(P.c.created_at, P.c.id)
# Every pathway's stored milestone schedule but those with nothing planned (NULL included).
_SELECT_SCHEDULES = (
    select(P.c.id, P.c.schedule)
    .where(or_(P.c.schedule.is_(None), P.c.schedule != NO_SCHEDULE))
    .order_by(P.c.created_at, P.c.id)
)
_REPLAN = (
    update(P)
    .where(P.c.id == bindparam("b_id"), P.c.version == bindparam("b_version"))
    .where(or_(P.c.schedule.is_(None), P.c.schedule != bindparam("b_schedule")))
    .values(schedule=bindparam("b_schedule"))
)
# Every pathway row with its head entry's commitment, in creation order (one query for a listing).
# The listing reads only the Day label's inputs of the facts: SQLite's JSON functions pick them
# out in C (json_valid first, so that a snapshot that is not JSON does not fail the whole query:
# its row comes with NULL and is read in Python); elsewhere NULL, and the caller parses the facts.
DAY_ANCHORS = ("timezone", "day0", "planned_day0")
_SELECT_RECORDS = _PATHWAYS_WITH_HEAD.add_columns(null().label("anchors")).order_by(P.c.created_at, P.c.id)
_SELECT_RECORDS_SQLITE = _PATHWAYS_WITH_HEAD.add_columns(
    case(
        (func.json_valid(P.c.facts) == 1, func.json_extract(P.c.facts, *(f"$.{name}" for name in DAY_ANCHORS))),
        else_=null(),
    ).label("anchors")
).order_by(P.c.created_at, P.c.id)

# Pending outbox rows with their entries. The heads are the first pending row of each pathway
# (no pending row of the same pathway before them); whoever holds a head holds its pathway's
# later rows too, since no one else can take them before the head is delivered.
_earlier = O.alias("earlier")
_OUTBOX_FIELDS = ("id", "topic", "entry_hash", "attempts", "created_at")
_OUTBOX_PENDING = (
    select(*(O.c[name].label(f"outbox_{name}") for name in _OUTBOX_FIELDS), *_ENTRY_COLUMNS)
    .join_from(O, E, and_(E.c.pathway_id == O.c.pathway_id, E.c.sequence == O.c.sequence))
    .where(O.c.delivered_at.is_(None))
    .limit(bindparam("b_limit"))
)
_OUTBOX_HEADS = _OUTBOX_PENDING.where(
    ~exists().where(
        _earlier.c.pathway_id == O.c.pathway_id,
        _earlier.c.delivered_at.is_(None),
        _earlier.c.sequence < O.c.sequence,
    )
).order_by(O.c.id)
_OUTBOX_FOLLOWING = _OUTBOX_PENDING.where(
    O.c.pathway_id.in_(bindparam("b_pathways", expanding=True)),
    O.c.id.not_in(bindparam("b_heads", expanding=True)),
).order_by(O.c.pathway_id, O.c.sequence)
# PostgreSQL: concurrent dispatchers take disjoint pathways and never wait on each other. A
# head another dispatcher holds is skipped, and so are the later rows of its pathway (the NOT
# EXISTS still sees the head pending), so order holds. SQLite: BEGIN IMMEDIATE serialises them.
_OUTBOX_HEADS_LOCKED = _OUTBOX_HEADS.with_for_update(skip_locked=True, of=O)
_OUTBOX_FOLLOWING_LOCKED = _OUTBOX_FOLLOWING.with_for_update(of=O)
_OUTBOX_DELIVERED = (
    update(O)
    .where(O.c.id.in_(bindparam("b_ids", expanding=True)), O.c.delivered_at.is_(None))
    .values(delivered_at=bindparam("b_at", type_=UTCDateTime()), attempts=O.c.attempts + 1)
)
_OUTBOX_FAILED = (
    update(O)
    .where(O.c.id == bindparam("b_id"), O.c.delivered_at.is_(None))
    .values(attempts=O.c.attempts + 1, last_error=bindparam("b_error"))
)
_OUTBOX_BACKLOG = select(func.count()).select_from(O).where(O.c.delivered_at.is_(None))
_OUTBOX_PRUNE = delete(O).where(O.c.delivered_at < bindparam("b_before", type_=UTCDateTime()))


# --- the hot statements, rendered once per dialect -----------------------------------------
#
# SQLAlchemy's full execution path (cache key, bind and result processing, events) costs
# more per statement than SQLite takes to run it, three times per command. So these are
# compiled once per dialect from the Core statements above and run as driver SQL on the
# connection's own transaction. The only column type with processing is UTCDateTime, done
# here by `persistence.types.bind_value` and `result_value`.
#
# They go through `Connection.exec_driver_sql` (SQLAlchemy's error wrapping, disconnect
# handling, statement logging and cursor events), except on pysqlite when nothing would see
# the difference (no statement logging, no cursor, error or do_execute listeners): then
# straight to sqlite3, which is several times cheaper again (building a result for the
# SELECT is most of exec_driver_sql's cost), with sqlite3's errors wrapped as SQLAlchemy
# would wrap them, so the same translation applies.

_ENTRY_KEYS = (*BODY_FIELDS, "sequence", "body", "prev_hash", "hash", "form")
_OUTBOX_KEYS = ("pathway_id", "sequence", "entry_hash", "topic", "created_at", "attempts")


class _Sql(NamedTuple):
    """A statement as driver SQL: its text and, for a positional paramstyle, what picks its
    parameters from their names in order (None for named paramstyles, which take the dict as
    it is)."""

    text: str
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None

    def args(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        return params if self.pick is None else self.pick(params)


def _picker(order: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `order` from a mapping, as a tuple (itemgetter returns a lone value bare)."""
    if not order:
        return lambda params: ()
    if len(order) == 1:
        (name,) = order
        return lambda params: (params[name],)
    return itemgetter(*order)


class _Hot(NamedTuple):
    dialect: str  # Dialect.name, for bind_value
    pysqlite: bool
    select_pathway: _Sql
    select_pathway_for_update: _Sql
    advances: Mapping[tuple[bool, bool], _Sql]  # by (with the facts, the phase moves)
    still_held: _Sql
    insert_entry: _Sql
    insert_outbox: _Sql
    insert_series: _Sql


def _render(
    statement: Any,
    dialect: Dialect,
    translate: Mapping[str | None, str | None] | None,
    column_keys: Sequence[str] | None = None,
) -> _Sql:
    kw: dict[str, Any] = {"schema_translate_map": translate, "render_schema_translate": True} if translate else {}
    compiled = statement.compile(dialect=dialect, column_keys=column_keys, **kw)
    if compiled.escaped_bind_names:  # pragma: no cover - every name here is a plain identifier
        raise RuntimeError("a bind parameter name needs escaping in this dialect")
    positional = dialect.positional and compiled.positiontup is not None
    return _Sql(compiled.string, _picker(tuple(compiled.positiontup)) if positional else None)


# Keyed by what decides the rendered text, including a host's schema_translate_map, which
# Core statements honour at execution. Not keyed by dialect object: hosts may create many
# engines. The first to compile for a key fills it; a race only compiles twice.
_HOT: dict[tuple[Any, ...], _Hot] = {}


def _hot(connection: Connection) -> _Hot:
    dialect = connection.dialect
    translate = connection.get_execution_options().get("schema_translate_map")
    schemas = tuple(sorted(translate.items(), key=repr)) if translate else None
    key = (dialect.name, dialect.driver, dialect.paramstyle, schemas)
    hot = _HOT.get(key)
    if hot is None:
        hot = _HOT[key] = _Hot(
            dialect.name,
            dialect.name == "sqlite" and dialect.driver == "pysqlite",
            _render(_SELECT_PATHWAY, dialect, translate),
            _render(_SELECT_PATHWAY_FOR_UPDATE, dialect, translate),
            {
                (facts, moves): _render(_advance(facts=facts, moves=moves), dialect, translate)
                for facts in (False, True)
                for moves in (False, True)
            },
            _render(_STILL_HELD, dialect, translate),
            _render(_INSERT_ENTRY, dialect, translate, _ENTRY_KEYS),
            _render(_INSERT_OUTBOX, dialect, translate, _OUTBOX_KEYS),
            _render(_INSERT_SERIES, dialect, translate, _SERIES_KEYS),
        )
    return hot


class _Cursor(Protocol):
    """What the store reads from a statement's result: a sqlite3 cursor or a CursorResult."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> Sequence[Sequence[Any]]: ...


def _direct(connection: Connection, hot: _Hot) -> bool:
    """May this store call's statements skip SQLAlchemy's execution path unnoticed?

    Only on pysqlite, inside an active transaction, SQLAlchemy's or one begun on the driver
    (`KeptConnection.begin`), with no statement logging and no cursor, error or do_execute
    listeners. Outside a transaction, autobegin (and the errors for a transaction that must be
    rolled back first) are left to SQLAlchemy. Checked on every store call: listeners, logging
    and the transaction can change between calls.
    """
    if not hot.pysqlite:
        return False
    if connection.in_transaction():
        nested = connection.get_nested_transaction()
        if nested is not None and not nested.is_active:
            return False
    elif connection.invalidated or not connection.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        return False
    events = connection.dispatch
    dialect_events = connection.dialect.dispatch
    return not (
        events.before_cursor_execute
        or events.after_cursor_execute
        or dialect_events.handle_error
        or dialect_events.do_execute
        or connection.engine.logger.isEnabledFor(logging.INFO)
    )


def _run(connection: Connection, direct: bool, sql: _Sql, params: Mapping[str, Any]) -> _Cursor:
    args = sql.args(params)
    if not direct:
        return connection.exec_driver_sql(sql.text, args)
    try:
        cursor: _Cursor = connection.connection.driver_connection.execute(sql.text, args)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise driver_error(connection, sql.text, args, exc) from exc
    return cursor


def _aware(value: datetime, name: str) -> datetime:
    # Checked here, not only in UTCDateTime, so the caller gets a plain ValueError rather
    # than SQLAlchemy's StatementError wrapping it.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


def _entry_time(value: datetime, text: str, dialect: str) -> datetime | str:
    """A sealed entry's time as bound: on SQLite the UTC text the seal filled the body from
    (`chain.utc_text`, SQLite's storage text, as `types.sqlite_text` writes it)."""
    return text if dialect == "sqlite" else bind_value(value, dialect)


def _entry_params(sealed: Sealed, dialect: str) -> dict[str, Any]:
    """The values of `_INSERT_ENTRY` as driver SQL binds them (see `_ENTRY_KEYS`). The enums are
    string enums: `str` of a member is its value as a plain string (in C, unlike `.value`)."""
    entry = sealed.entry
    return {
        "pathway_id": entry.pathway_id,
        "sequence": entry.sequence,
        "kind": str(entry.kind),
        "trigger": entry.trigger,
        "from_phase": None if entry.from_phase is None else str(entry.from_phase),
        "to_phase": None if entry.to_phase is None else str(entry.to_phase),
        "effective_at": _entry_time(entry.effective_at, sealed.effective_at_text, dialect),
        "recorded_at": _entry_time(entry.recorded_at, sealed.recorded_at_text, dialect),
        "actor_id": entry.actor_id,
        "actor_role": str(entry.actor_role),
        "reason": entry.reason,
        "payload": sealed.payload_json,
        "reasons": sealed.reasons_json,
        "policy_version": entry.policy_version,
        "idempotency_key": entry.idempotency_key,
        "corrects": entry.corrects,
        "facts_digest": entry.facts_digest,
        "origin": entry.origin,
        "release": entry.release,
        "body": sealed.body,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "form": entry.form,
    }


def _outbox_params(entry: Entry, entry_params: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `_INSERT_OUTBOX` (see `_OUTBOX_KEYS`): created when the entry was recorded."""
    return {
        "pathway_id": entry.pathway_id,
        "sequence": entry.sequence,
        "entry_hash": entry.hash,
        "topic": f"{entry.kind}.{entry.trigger}",
        "created_at": entry_params["recorded_at"],
        "attempts": 0,
    }


def _held_params(record: PathwayRecord) -> dict[str, Any]:
    """The values of `_STILL_HELD` for `record`: the row and head entry as its write left them."""
    return {
        "b_id": record.id,
        "b_version": record.version,
        "b_head": record.head_hash,
        "b_phase": str(record.phase),
        "b_facts": record.facts,
        "b_digest": record.facts_digest,
        "b_form": record.head_form,
    }


def _write_entry(
    connection: Connection, hot: _Hot, direct: bool, entry: Entry, params: Mapping[str, Any], *, announce: bool
) -> None:
    """The entry and (when `announce`) its outbox row: nothing is announced that was not
    committed with it."""
    _run(connection, direct, hot.insert_entry, params)
    if announce:
        _run(connection, direct, hot.insert_outbox, _outbox_params(entry, params))


def _written(facts: str | Split) -> tuple[str, Sequence[SeriesWrite]]:
    """A snapshot text as given, or a Split's text with the series rows it commits to."""
    return (facts.text, facts.writes) if isinstance(facts, Split) else (facts, ())


def _write_series(
    connection: Connection, hot: _Hot, direct: bool, pathway_id: str, writes: Sequence[SeriesWrite]
) -> None:
    """The series rows a snapshot commits to, in the entry's transaction (persistence/series.py)."""
    for write in writes:
        if write.replace:
            connection.execute(_DROP_SERIES, {"b_id": pathway_id, "b_field": write.field})
        rows = [
            {"pathway_id": pathway_id, "field": write.field, "position": write.start + offset, "value": value}
            for offset, value in enumerate(write.values)
        ]
        if len(rows) == 1:  # one value recorded: the common case, on the hot path
            _run(connection, direct, hot.insert_series, rows[0])
        elif rows:
            connection.execute(_INSERT_SERIES, rows)


def _row_fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    fields = dict(row)
    fields["payload"] = json.loads(row["payload"])
    fields["reasons"] = json.loads(row["reasons"])
    return fields


def _entry_from_row(row: Mapping[Any, Any]) -> Entry:
    return Entry.model_validate(_row_fields(row))


def _outbox_message(row: Mapping[Any, Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row["outbox_id"],
        pathway_id=row["pathway_id"],
        sequence=row["sequence"],
        topic=row["outbox_topic"],
        entry_hash=row["outbox_entry_hash"],
        attempts=row["outbox_attempts"],
        created_at=row["outbox_created_at"],
        entry=_entry_from_row({name: row[name] for name in _ENTRY_NAMES}),
    )


_E = TypeVar("_E", bound=Enum)


def _member(kind: type[_E]) -> Callable[[Any], _E]:
    """`kind(value)` for a stored value: a dict lookup for a known one (the enum's own call is a
    chain of Python calls, on every load), the call itself for any other (its ValueError)."""
    members = {member.value: member for member in kind}

    def member(value: Any) -> _E:
        found = members.get(value)
        return kind(value) if found is None else found

    return member


_ROUTE, _DONOR_TYPE, _GRAFT_SOURCE, _PHASE = _member(Route), _member(DonorType), _member(GraftSource), _member(Phase)


def _record_from_row(row: Sequence[Any]) -> PathwayRecord:
    """From a row of `_PATHWAYS_WITH_HEAD` (a Core row or the driver's tuple): the record's
    fields in their order, with the head entry's digest, form and phase."""
    (pathway_id, patient_ref, route, donor_type, graft_source, hct_number, previous_pathway, phase, version,
     head_hash, facts, created_at, updated_at, successor, head_digest, head_form, head_phase) = row  # fmt: skip
    return PathwayRecord(
        id=pathway_id,
        patient_ref=patient_ref,
        route=_ROUTE(route),
        donor_type=None if donor_type is None else _DONOR_TYPE(donor_type),
        graft_source=_GRAFT_SOURCE(graft_source),
        hct_number=hct_number,
        previous_pathway=previous_pathway,
        phase=_PHASE(phase),
        version=version,
        head_hash=head_hash,
        facts=facts,
        created_at=result_value(created_at),
        updated_at=result_value(updated_at),
        successor=successor,
        head_digest=head_digest,
        head_form=head_form,
        head_phase=head_phase,
        facts_digest=facts_digest(facts),
    )


class Store:
    """Pathways and their entries, in the transaction of the session it is given.

    `announce=False` writes no outbox rows, for a host that does not run the dispatcher
    (PathwayService(outbox=False)); the entries themselves are the same.
    """

    __slots__ = ("_announce", "_session")

    def __init__(self, session: Session | Connection, *, announce: bool = True) -> None:
        self._session = session
        self._announce = announce

    @property
    def session(self) -> Session | Connection:
        return self._session

    @property
    def connection(self) -> Connection:
        """The connection of the caller's transaction (for the library's own look-ups in it)."""
        return self._connection()

    def connection_for_host(self) -> Connection:
        """The connection of the caller's transaction, for host code called inside it (a role
        directory): with SQLAlchemy's transaction begun, so that `in_transaction()` says what is
        true in a transaction begun on the driver too (`KeptConnection.begin`, which it joins)."""
        connection = self._connection()
        if not connection.in_transaction():
            connection.begin()
        return connection

    def _connection(self) -> Connection:
        # Core on the session's own connection: same transaction, no flush, no identity map.
        # A bare Connection (the service's own unit of work) skips the ORM session entirely.
        session = self._session
        return session if isinstance(session, Connection) else session.connection()

    # --- writes ------------------------------------------------------------------------

    def insert_pathway(
        self,
        *,
        pathway_id: str,
        patient_ref: str,
        route: Route,
        donor_type: DonorType | None,
        graft_source: GraftSource,
        hct_number: int,
        previous_pathway: str | None,
        phase: Phase,
        facts_json: str | Split,
        first: Draft,
        now: datetime,
        schedule: str | None = None,
    ) -> Entry:
        """Create the pathway row (version 1) and its first entry, sealed on GENESIS_HASH. A
        `Split` (persistence.series.split_facts) writes the series rows its text commits to.
        `schedule`: the milestone schedule of those facts (`Schedule.dumps`; None: none stored).

        An unknown `previous_pathway` raises UnknownPathway naming it; an existing id raises
        ConcurrencyConflict.
        """
        if first.pathway_id != pathway_id:
            raise ValueError("the first entry belongs to another pathway")
        _aware(now, "now")
        text, series = _written(facts_json)
        sealed = seal_with_body(first, 1, GENESIS_HASH, facts_digest(text))
        entry = sealed.entry
        try:
            connection = self._connection()
            connection.execute(
                _INSERT_PATHWAY,
                {
                    "id": pathway_id,
                    "patient_ref": patient_ref,
                    "route": Route(route).value,
                    "donor_type": None if donor_type is None else DonorType(donor_type).value,
                    "graft_source": GraftSource(graft_source).value,
                    "hct_number": hct_number,
                    "previous_pathway": previous_pathway,
                    "phase": Phase(phase).value,
                    "version": 1,
                    "head_hash": entry.hash,
                    "facts": text,
                    "schedule": schedule,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            hot = _hot(connection)
            params = _entry_params(sealed, hot.dialect)
            direct = _direct(connection, hot)
            _write_entry(connection, hot, direct, entry, params, announce=self._announce)
            _write_series(connection, hot, direct, pathway_id, series)
        except DBAPIError as exc:
            _reraise(exc, pathway_id, missing_pathway=previous_pathway)
        return entry

    def append(
        self,
        pathway_id: str,
        draft: Draft,
        *,
        expected_version: int,
        head_hash: str,
        phase: Phase,
        facts_json: str | Split | None,
        now: datetime,
        unchanged_digest: str | None = None,
        schedule: str | None = None,
    ) -> Entry:
        """Seal `draft` after the head the caller loaded, move the pathway row forward, and
        add the entry's outbox row.

        `phase` must be the entry's `to_phase` (ValueError): the phase the row is left in, which
        every load checks against the head entry. The row is updated first, guarded by
        (version, head_hash), and by the phase when the entry leaves it as it was
        (`draft.from_phase` is `to_phase`): a stale caller gets
        ConcurrencyConflict before anything is written, and on PostgreSQL concurrent
        appenders queue on the row lock instead of racing on the unique sequence.
        The entry commits to sha256(`facts_json`); `facts_json=None` leaves the stored
        snapshot as it is and commits to `unchanged_digest` (the loaded record's
        `facts_digest`; read from the row when not given). A `Split` also writes the series
        rows that changed (persistence.series.split_facts). New facts replace the stored
        milestone schedule with `schedule` (theirs, `Schedule.dumps`; None: none stored).
        """
        if draft.pathway_id != pathway_id:
            raise ValueError("the entry belongs to another pathway")
        if _PHASE(phase) is not draft.to_phase:  # the load checks the row against its head by it
            raise ValueError("the pathway's phase must be the one the entry leaves it in (to_phase)")
        _aware(now, "now")
        text, series = (None, ()) if facts_json is None else _written(facts_json)
        try:
            connection = self._connection()
            if text is not None:
                digest = facts_digest(text)
            elif unchanged_digest is not None:
                digest = unchanged_digest
            else:
                stored = connection.execute(_SELECT_FACTS, {"b_id": pathway_id}).scalar_one_or_none()
                digest = facts_digest(stored or "")
            sealed = seal_with_body(draft, expected_version + 1, head_hash, digest)
            entry = sealed.entry
            hot = _hot(connection)
            direct = _direct(connection, hot)
            entry_params = _entry_params(sealed, hot.dialect)
            params: dict[str, Any] = {
                "b_id": pathway_id,
                "b_expected": expected_version,
                "b_head": head_hash,
                "b_version": entry.sequence,
                "b_new_head": entry.hash,
                "b_phase": str(_PHASE(phase)),
                # The service stamps the entry with the same `now`: reuse its formatted time.
                "b_now": entry_params["recorded_at"] if now == entry.recorded_at else bind_value(now, hot.dialect),
            }
            if text is not None:
                params["b_facts"] = text
                params["b_schedule"] = schedule
            moves = draft.to_phase is not draft.from_phase
            advance = hot.advances[text is not None, moves]
            if _run(connection, direct, advance, params).rowcount != 1:
                stale = f"expected version {expected_version}" + ("" if moves else f" in phase {params['b_phase']}")
                raise ConcurrencyConflict(pathway_id, f"{stale} is stale")
            _write_entry(connection, hot, direct, entry, entry_params, announce=self._announce)
            _write_series(connection, hot, direct, pathway_id, series)
        except DBAPIError as exc:
            _reraise(exc, pathway_id)
        return entry

    def set_successor(self, pathway_id: str, successor_id: str) -> None:
        """Link a pathway to its subsequent-transplant pathway, which closes it for the
        one-open-pathway-per-patient rule. Call it before inserting the successor: the foreign
        key is checked at commit, the unique index at once. UnknownPathway if either is missing.
        """
        try:
            updated = self._connection().execute(_SET_SUCCESSOR, {"b_id": pathway_id, "b_successor": successor_id})
        except DBAPIError as exc:
            _reraise(exc, pathway_id, missing_pathway=successor_id)
        if updated.rowcount != 1:
            raise UnknownPathway(pathway_id)

    # --- reads -------------------------------------------------------------------------

    def open_pathways_of(self, patient_ref: str) -> list[str]:
        """Ids of the patient's open pathways (not closed, no successor), oldest first."""
        closed = sorted(p.value for p in CLOSED_PHASES)
        try:
            rows = self._connection().execute(_SELECT_OPEN_OF, {"b_patient": patient_ref, "b_closed": closed})
            return list(rows.scalars().all())
        except DBAPIError as exc:
            _reraise(exc)

    def holds(self, record: PathwayRecord) -> bool:
        """Is `record` (a row as this process's own write left it, `PathwayRecord.advanced`)
        still the stored row, with its head entry as a load checks it (`consistent`)? One probe
        instead of a load: nothing read back, nothing hashed. False for another writer's row, a
        rolled-back write or an edited row or head entry: load it then, which says which."""
        if record.consistent is not True:  # one a load would not take as it is
            return False
        try:
            connection = self._connection()
            hot = _hot(connection)
            return bool(_run(connection, _direct(connection, hot), hot.still_held, _held_params(record)).fetchall())
        except DBAPIError as exc:
            _reraise(exc, record.id)

    def load(self, pathway_id: str, *, for_update: bool = False, checked: bool = True) -> PathwayRecord | None:
        """The pathway row; `for_update` locks it until the transaction ends (PostgreSQL).

        `checked` (the default, for everything that judges): the stored facts must be what the
        head entry commits to (a form-1 head: what the log replays to), else IntegrityError
        naming the pathway, logged at error level. Nothing can be appended after a failed load.
        """
        try:
            connection = self._connection()
            hot = _hot(connection)
            statement = hot.select_pathway_for_update if for_update else hot.select_pathway
            # fetchall, not fetchone: the id is the primary key, and an exhausted cursor is
            # finished (sqlite3) or closed (CursorResult) rather than left open until collected.
            rows = _run(connection, _direct(connection, hot), statement, {"b_id": pathway_id}).fetchall()
        except DBAPIError as exc:
            _reraise(exc, pathway_id)
        if not rows:
            return None
        record = _record_from_row(rows[0])
        if record.head_form is None and for_update:
            record = self._reread_head(record)
        if checked:
            self._check(record)
        return record

    def _reread_head(self, record: PathwayRecord) -> PathwayRecord:
        """The head entry in a statement of its own (a new snapshot under READ COMMITTED)."""
        params = {"b_id": record.id, "b_version": record.version, "b_head": record.head_hash}
        try:
            head = self._connection().execute(_SELECT_HEAD, params).first()
        except DBAPIError as exc:
            _reraise(exc, record.id)
        return record if head is None else replace(record, head_digest=head[0], head_form=head[1], head_phase=head[2])

    def _check(self, record: PathwayRecord) -> None:
        consistent = record.consistent
        if consistent is None:  # a form-1 head (a database from before form 2): replay once
            try:
                consistent = replay(self.entries(record.id)) == self.facts(record)
            except ValueError:
                consistent = False
        if not consistent:
            logger.error("pathway %s: its stored phase or facts do not match its log's head entry", record.id)
            raise IntegrityError(record.id)

    def entries(self, pathway_id: str, *, until_recorded: datetime | None = None) -> list[Entry]:
        """The pathway's log in sequence order, as it stood at `until_recorded` if given.

        "As it stood" is the longest prefix of the chain recorded at or before that time:
        ordering follows sequence numbers, never clocks, so an entry stamped early by a
        skewed clock does not appear before the entries it was chained after.
        """
        try:
            connection = self._connection()
            if until_recorded is None:
                result = connection.execute(_SELECT_ENTRIES, {"b_id": pathway_id})
            else:
                result = connection.execute(
                    _SELECT_ENTRIES_UNTIL,
                    {"b_id": pathway_id, "b_until": _aware(until_recorded, "until_recorded")},
                )
            rows = result.mappings().all()
        except DBAPIError as exc:
            _reraise(exc, pathway_id)
        return [_entry_from_row(row) for row in rows]

    def log(self, where: LogFilter) -> Iterator[Entry]:
        """The entries of every pathway that `where` selects, filtered in SQL (see `log_select`),
        oldest recorded first, streamed from one query."""
        try:
            for row in self._connection().execute(log_select(where)).mappings():
                yield _entry_from_row(row)
        except DBAPIError as exc:
            _reraise(exc, where.pathway_id or "")

    def entry_by_idempotency_key(self, key: str) -> Entry | None:
        try:
            row = self._connection().execute(_SELECT_BY_KEY, {"b_key": key}).mappings().first()
        except DBAPIError as exc:
            _reraise(exc)
        return None if row is None else _entry_from_row(row)

    def pathways_of(self, patient_ref: str) -> list[str]:
        """Ids of every pathway of the patient, oldest first."""
        try:
            return list(self._connection().execute(_SELECT_IDS_OF, {"b_patient": patient_ref}).scalars().all())
        except DBAPIError as exc:
            _reraise(exc)

    def ids_starting_with(self, prefix: str) -> list[str]:
        """Ids that begin with `prefix` (LIKE wildcards in it are taken literally)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        try:
            return list(self._connection().execute(_SELECT_IDS_LIKE, {"b_prefix": escaped + "%"}).scalars().all())
        except DBAPIError as exc:
            _reraise(exc)

    def lock_at_once(self, pathway_id: str) -> bool:
        """Lock the pathway row without waiting (PostgreSQL: NOWAIT, a ConcurrencyConflict when
        another transaction holds it); False when this transaction cannot see the pathway."""
        try:
            return self._connection().execute(_LOCK_AT_ONCE, {"b_id": pathway_id}).first() is not None
        except DBAPIError as exc:
            _reraise(exc, pathway_id)

    def pathway_ids(self, phase: Phase | None = None) -> list[str]:
        """Ids in creation order, optionally only those in `phase`."""
        statement = _SELECT_IDS if phase is None else _SELECT_IDS.where(P.c.phase == Phase(phase).value)
        try:
            return list(self._connection().execute(statement).scalars().all())
        except DBAPIError as exc:
            _reraise(exc)

    def records(
        self, *, phase: Phase | None = None, patient_ref: str | None = None
    ) -> Iterator[tuple[PathwayRecord, str | None]]:
        """Pathway rows in creation order, from one query, each checked like `load` (its stored
        facts against its head entry's commitment: IntegrityError naming the first that fails),
        each with its DAY_ANCHORS as the JSON array text the database read from the facts (None:
        read them from `record.facts`)."""
        connection = self._connection()
        statement = _SELECT_RECORDS_SQLITE if connection.dialect.name == "sqlite" else _SELECT_RECORDS
        if phase is not None:
            statement = statement.where(P.c.phase == Phase(phase).value)
        if patient_ref is not None:
            statement = statement.where(P.c.patient_ref == patient_ref)
        try:
            for row in connection.execute(statement):
                record = _record_from_row(row[:-1])
                self._check(record)
                yield record, row[-1]
        except DBAPIError as exc:
            _reraise(exc)

    def snapshots(self, only: Container[str] | None = None) -> list[tuple[str, str]]:
        """(id, facts JSON with its series) of every pathway (or of those in `only`), in two
        queries: a final pathway can still have a milestone open (its product disposition).
        IntegrityError naming the first pathway whose series rows are not what its snapshot
        commits to."""
        try:
            connection = self._connection()
            by_pathway = groupby(connection.execute(_SELECT_ALL_SERIES), itemgetter(0))
            series = {
                pathway_id: grouped(row[1:] for row in rows)
                for pathway_id, rows in by_pathway
                if only is None or pathway_id in only
            }
            return [
                (row.id, self._assembled(row.id, row.facts, series.get(row.id, {})))
                for row in connection.execute(_SELECT_SNAPSHOTS)
                if only is None or row.id in only
            ]
        except DBAPIError as exc:
            _reraise(exc)

    def schedules(self) -> list[tuple[str, str | None]]:
        """(id, stored milestone schedule) of every pathway with something planned, in creation
        order; None for a row written before migration 0008 (its facts decide)."""
        try:
            return [(row[0], row[1]) for row in self._connection().execute(_SELECT_SCHEDULES)]
        except DBAPIError as exc:
            _reraise(exc)

    def replan(self, pathway_id: str, version: int, schedule: str) -> bool:
        """Store `schedule` as the pathway's milestone schedule if the row, still at `version`,
        holds another (none: a row from before migration 0008; an older release's plan);
        whether it was written. Derived data: no entry records it."""
        params = {"b_id": pathway_id, "b_version": version, "b_schedule": schedule}
        try:
            return self._connection().execute(_REPLAN, params).rowcount == 1
        except DBAPIError as exc:
            _reraise(exc, pathway_id)

    def facts_text(self, record: PathwayRecord) -> str:
        """The record's whole facts JSON: its snapshot text with the series rows put back.
        IntegrityError (logged) when the rows are not what the snapshot commits to."""
        if not has_series(record.facts):
            return record.facts  # no series values, or a snapshot with its series inline
        try:
            rows = self._connection().execute(_SELECT_SERIES, {"b_id": record.id})
        except DBAPIError as exc:
            _reraise(exc, record.id)
        return self._assembled(record.id, record.facts, grouped(rows))

    def facts(self, record: PathwayRecord) -> PathwayFacts:
        """The record's facts, series included (see `facts_text`), their models sharing one set
        of given field names per class and equal small values one instance (states/sharing.py:
        most of a held snapshot's memory beyond its data)."""
        return shared(PathwayFacts.model_validate_json(self.facts_text(record)))

    @staticmethod
    def _assembled(pathway_id: str, text: str, rows: Mapping[str, Sequence[str]]) -> str:
        try:
            return assemble(text, rows)
        except (ValueError, TypeError):  # SeriesMismatch, or heads that do not parse
            logger.error("pathway %s: its series rows are not what its stored facts commit to", pathway_id)
            raise IntegrityError(pathway_id) from None

    # --- outbox ------------------------------------------------------------------------

    def outbox_batch(self, limit: int, *, lock: bool) -> list[OutboxMessage]:
        """Up to `limit` deliverable outbox rows, grouped by pathway in sequence order.

        The first pending row of up to `limit` pathways (oldest first), then, within what is
        left of `limit`, the pending rows after them. A caller must handle each pathway's rows
        in the order given and stop at the first it cannot. `lock` takes them FOR UPDATE until
        the transaction ends on PostgreSQL, skipping pathways another dispatcher holds;
        without it this is a plain read.
        """
        try:
            connection = self._connection()
            heads = connection.execute(_OUTBOX_HEADS_LOCKED if lock else _OUTBOX_HEADS, {"b_limit": limit})
            by_pathway = {row["pathway_id"]: [_outbox_message(row)] for row in heads.mappings()}
            room = limit - len(by_pathway)
            if by_pathway and room > 0:
                params = {
                    "b_pathways": list(by_pathway),
                    "b_heads": [group[0].id for group in by_pathway.values()],
                    "b_limit": room,
                }
                following = connection.execute(_OUTBOX_FOLLOWING_LOCKED if lock else _OUTBOX_FOLLOWING, params)
                for row in following.mappings():
                    by_pathway[row["pathway_id"]].append(_outbox_message(row))
        except DBAPIError as exc:
            _reraise(exc)
        return [message for group in by_pathway.values() for message in group]

    def outbox_delivered(self, ids: Sequence[int], at: datetime) -> int:
        """Mark rows delivered (each handler call counted); returns how many were still pending."""
        if not ids:
            return 0
        return self._outbox_write(_OUTBOX_DELIVERED, {"b_ids": list(ids), "b_at": _aware(at, "at")})

    def outbox_failed(self, outbox_id: int, error_name: str) -> int:
        """Count a failed handler call; the row stays pending. `error_name` is a class name."""
        return self._outbox_write(_OUTBOX_FAILED, {"b_id": outbox_id, "b_error": error_name[:ERROR_NAME_LENGTH]})

    def outbox_prune(self, delivered_before: datetime) -> int:
        """Delete rows delivered before the given time; pending rows are never deleted."""
        return self._outbox_write(_OUTBOX_PRUNE, {"b_before": _aware(delivered_before, "delivered_before")})

    def outbox_backlog(self) -> int:
        """How many outbox rows are still pending."""
        try:
            count: int = self._connection().execute(_OUTBOX_BACKLOG).scalar_one()
        except DBAPIError as exc:
            _reraise(exc)
        return count

    def _outbox_write(self, statement: Any, params: Mapping[str, Any]) -> int:
        try:
            return self._connection().execute(statement, params).rowcount
        except DBAPIError as exc:
            _reraise(exc)

    def verify_pathway(self, pathway_id: str) -> int | None:
        """Audit one pathway as stored: the first bad sequence number, or None when intact.

        Stricter than `chain.verify_entries`: it works on the raw columns (a tampered value
        that is not even a valid enum is reported, not raised), checks the stored `body` is
        the bytes the columns canonicalise to, and checks the pathway row's version and head
        against the log. Raises UnknownPathway when there is no such pathway.
        """
        try:
            connection = self._connection()
            head = connection.execute(_SELECT_PATHWAY, {"b_id": pathway_id}).mappings().first()
            rows = connection.execute(_SELECT_BODIES, {"b_id": pathway_id}).mappings().all()
        except DBAPIError as exc:
            _reraise(exc, pathway_id)
        if head is None:
            raise UnknownPathway(pathway_id)
        prev_hash = GENESIS_HASH
        for position, row in enumerate(rows, start=1):
            if row["sequence"] != position or row["prev_hash"] != prev_hash:
                return position
            form = row["form"]
            try:
                if form not in FORM_FIELDS:
                    raise ValueError("unknown canonical form")
                body = body_from_fields(_row_fields(row), position, prev_hash, form)
            except (TypeError, ValueError):
                return position
            stored = row["body"]
            if not isinstance(stored, bytes | memoryview) or bytes(stored) != body:
                return position
            if hash_body(body) != row["hash"]:
                return position
            prev_hash = row["hash"]
        count = len(rows)
        version: int = head["version"]
        if version != count:
            return min(version, count) + 1
        if head["head_hash"] != prev_hash:
            return max(count, 1)
        return None
