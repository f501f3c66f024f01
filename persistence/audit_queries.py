"""Read queries for auditing the whole log at speed: one snapshot, every entry, raw columns.

The store reads one pathway at a time through SQLAlchemy's result machinery, which costs
more per row than hashing it. Verification and export read every entry once, so they get
their own statements: built with SQLAlchemy Core, compiled once per dialect, and run on the
driver's own cursor inside one read-only snapshot (SQLite: a deferred transaction, which in
WAL mode does not block writers; PostgreSQL: REPEATABLE READ, READ ONLY, with a server-side
cursor so memory stays flat). Nothing here writes, and no row ever reaches a logger: the
driver cursor is not SQLAlchemy's, so even DEBUG engine logging cannot print a value.

Times come back as "YYYY-MM-DD HH:MM:SS.ffffff" UTC text: on SQLite the stored text itself
(so every stored byte reaches the verifier), on PostgreSQL the instant spelled that way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, LargeBinary, Text, and_, bindparam, case, cast, func, literal_column, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from persistence.chain import BODY_FIELDS
from persistence.models import entries_table as E
from persistence.models import fact_series_table as S
from persistence.models import pathways_table as P
from persistence.models import policies_table as T
from persistence.series import grouped
from persistence.store import StorageError, translate_error
from states.errors import HsctError

__all__ = [
    "CHECK_COLUMNS",
    "ENTRY_COLUMNS",
    "PATHWAY_COLUMNS",
    "SHARED_COLUMNS",
    "AuditReader",
    "PathwayHead",
    "Slice",
    "audit_snapshot",
]

# The order of the values in every entry row these queries return (`form`: the canonical form
# that sealed the entry, which says which of the body fields it was hashed with).
ENTRY_COLUMNS: Final = ("pathway_id", "sequence", *BODY_FIELDS[1:], "body", "prev_hash", "hash", "form")

# What `audit verify` reads of each entry (`AuditReader.check_batches`). The driver's cost is per
# value fetched, so the columns whose values repeat from entry to entry (form, kinds, triggers,
# phases, actors, roles, policy, release) come as ONE value, a JSON array built in SQL, which
# the verifier parses once per distinct array; the columns that differ per entry follow.
SHARED_COLUMNS: Final = (
    "form", "actor_id", "actor_role", "corrects", "from_phase", "kind", "origin", "policy_version", "reasons",
    "release", "to_phase", "trigger",
)  # fmt: skip
CHECK_COLUMNS: Final = (
    "shared", "pathway_id", "sequence", "effective_at", "recorded_at", "facts_digest", "idempotency_key",
    "payload", "prev_hash", "reason", "hash", "body",
)  # fmt: skip

PATHWAY_COLUMNS: Final = (
    "id",
    "patient_ref",
    "route",
    "donor_type",
    "graft_source",
    "hct_number",
    "previous_pathway",
    "phase",
    "version",
    "head_hash",
)


@dataclass(frozen=True, slots=True)
class PathwayHead:
    """A pathway row's identity and head, as stored (`facts` only when asked for).

    The patient reference is kept out of repr: a report or a traceback must not show it.
    """

    id: str
    patient_ref: str
    route: str
    donor_type: str | None
    graft_source: str
    hct_number: int
    previous_pathway: str | None
    phase: str
    version: int
    head_hash: str
    facts: str | None = None
    schedule: str | None = None  # read with the facts: the stored milestone schedule (0008)

    def __repr__(self) -> str:
        return f"PathwayHead(id={self.id!r}, phase={self.phase!r}, version={self.version})"


def _time_text(column: Any, dialect: str) -> Any:
    """A stored time as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC) text.

    SQLite keeps exactly that text (SQLAlchemy's DATETIME storage format), returned as it
    is so that every stored byte reaches the verifier; PostgreSQL keeps an instant, spelled
    here in the same form. The verifier turns it into the canonical "...T...Z" spelling.
    """
    if dialect == "sqlite":
        return column
    # Constants written into the SQL once (no bind parameters: the statements are compiled once).
    utc: ColumnElement[Any] = literal_column("'UTC'")
    spelling: ColumnElement[Any] = literal_column("'YYYY-MM-DD HH24:MI:SS.US'")
    return func.to_char(func.timezone(utc, column), spelling).label(column.name)


def _entry_select(dialect: str, where: Any) -> Any:
    columns = [
        _time_text(E.c[name], dialect) if name in ("effective_at", "recorded_at") else E.c[name]
        for name in ENTRY_COLUMNS
    ]
    statement = select(*columns)
    if where is not None:
        statement = statement.where(where)
    # (pathway_id, sequence) is the unique index: the chain order, never a clock or the storage id.
    return statement.order_by(E.c.pathway_id, E.c.sequence)


def _no_blob(column: Any) -> Any:
    """SQLite lets any column hold a BLOB, which json_array refuses (failing the whole read):
    one reads as 0.5 instead, a number no shared column holds in a body, so the verifier
    reports that entry, as it would the BLOB itself. (CAST and = are opcodes, not calls.)"""
    return case((cast(column, LargeBinary) == column, literal_column("0.5")), else_=column)


def _check_select(dialect: str, where: Any) -> Any:
    """CHECK_COLUMNS: the shared columns as one JSON array text (json_array keeps NULL, integer
    and text apart, so the text stands for exactly one set of values), then the others."""
    array: ColumnElement[Any]
    if dialect == "sqlite":
        array = func.json_array(*(_no_blob(E.c[name]) for name in SHARED_COLUMNS))
    else:
        array = cast(func.json_build_array(*(E.c[name] for name in SHARED_COLUMNS)), Text)
    columns = [
        _time_text(E.c[name], dialect) if name in ("effective_at", "recorded_at") else E.c[name]
        for name in CHECK_COLUMNS[1:]
    ]
    statement = select(array.label("shared"), *columns)
    if where is not None:
        statement = statement.where(where)
    return statement.order_by(E.c.pathway_id, E.c.sequence)


def _series_select(where: Any) -> Any:
    statement = select(S.c.pathway_id, S.c.field, S.c.value)
    if where is not None:
        statement = statement.where(where)
    # The entries' order (by pathway), so that the two streams are read side by side.
    return statement.order_by(S.c.pathway_id, S.c.field, S.c.position)


def _series_counts(where: Any) -> Any:
    statement = select(S.c.pathway_id, func.count()).group_by(S.c.pathway_id)
    return statement if where is None else statement.where(where)


def _range(column: Any, kind: str) -> Any:
    """The WHERE clause of a slice of pathways: one id, ids from a bound, below a bound, or both."""
    return {
        "all": None,
        "one": column == bindparam("b_id"),
        "from": column >= bindparam("b_from"),
        "below": column < bindparam("b_below"),
        "between": and_(column >= bindparam("b_from"), column < bindparam("b_below")),
    }[kind]


def _compile(statement: Any, dialect: Dialect) -> str:
    return str(statement.compile(dialect=dialect))


@dataclass(frozen=True)
class _Statements:
    entries: dict[str, str]
    checks: dict[str, str]
    pathways: dict[str, str]
    pathways_with_facts: dict[str, str]
    count: str
    series_counts: dict[str, str]
    series_of: str
    series: dict[str, str]
    policies: str


_COMPILED: dict[tuple[str, str], _Statements] = {}
_KINDS: Final = ("all", "one", "from", "below", "between")


def _statements(dialect: Dialect) -> _Statements:
    key = (dialect.name, dialect.driver)
    found = _COMPILED.get(key)
    if found is None:
        if dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {dialect.name!r}: use sqlite or postgresql+psycopg")
        pathways = select(*(P.c[name] for name in PATHWAY_COLUMNS)).order_by(P.c.id)
        with_facts = pathways.add_columns(P.c.facts, P.c.schedule)

        def where(statement: Any, kind: str) -> Any:
            clause = _range(P.c.id, kind)
            return statement if clause is None else statement.where(clause)

        found = _COMPILED[key] = _Statements(
            entries={
                kind: _compile(_entry_select(dialect.name, _range(E.c.pathway_id, kind)), dialect) for kind in _KINDS
            },
            checks={
                kind: _compile(_check_select(dialect.name, _range(E.c.pathway_id, kind)), dialect) for kind in _KINDS
            },
            pathways={kind: _compile(where(pathways, kind), dialect) for kind in _KINDS},
            pathways_with_facts={kind: _compile(where(with_facts, kind), dialect) for kind in _KINDS},
            count=_compile(select(func.count()).select_from(E), dialect),
            series_counts={kind: _compile(_series_counts(_range(S.c.pathway_id, kind)), dialect) for kind in _KINDS},
            series={kind: _compile(_series_select(_range(S.c.pathway_id, kind)), dialect) for kind in _KINDS},
            policies=_compile(select(T.c.version, T.c.content), dialect),
            series_of=_compile(
                select(S.c.field, S.c.value)
                .where(S.c.pathway_id == bindparam("b_id"))
                .order_by(S.c.field, S.c.position),
                dialect,
            ),
        )
    return found


@dataclass(frozen=True)
class Slice:
    """Which pathways to read: one id, or ids in [start, stop) (None: unbounded)."""

    pathway_id: str | None = None
    start: str | None = None
    stop: str | None = None

    def kind(self) -> str:
        if self.pathway_id is not None:
            return "one"
        if self.start is None:
            return "all" if self.stop is None else "below"
        return "from" if self.stop is None else "between"

    def params(self) -> dict[str, str]:
        values = {"b_id": self.pathway_id, "b_from": self.start, "b_below": self.stop}
        return {name: value for name, value in values.items() if value is not None}


class AuditReader:
    """Reads the log inside one snapshot opened by `audit_snapshot`."""

    def __init__(self, driver: Any, dialect: Dialect) -> None:
        self._driver = driver
        self._dialect = dialect
        self._sql = _statements(dialect)

    @property
    def dialect_name(self) -> str:
        return str(self._dialect.name)

    def count_entries(self) -> int:
        """How many entries the snapshot holds (for progress reporting)."""
        cursor = self._driver.cursor()
        try:
            cursor.execute(self._sql.count)
            row = cursor.fetchone()
        finally:
            cursor.close()
        return int(row[0])

    def _args(self, statement: str, where: Slice) -> tuple[Any, ...] | dict[str, str]:
        params = where.params()
        if not self._dialect.positional:
            return params
        # positional paramstyle: the binds appear in the order b_id, b_from, b_below
        return tuple(params[name] for name in ("b_id", "b_from", "b_below") if name in params)

    def pathways(self, where: Slice = Slice(), *, with_facts: bool = False) -> list[PathwayHead]:
        """The pathway rows of the slice, ordered by id (the order entries come in)."""
        statements = self._sql.pathways_with_facts if with_facts else self._sql.pathways
        statement = statements[where.kind()]
        cursor = self._driver.cursor()
        try:
            cursor.execute(statement, self._args(statement, where))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [PathwayHead(*row) for row in rows]

    def policy_contents(self) -> dict[str, str]:
        """Every registered policy's canonical text by version (the registry is append-only)."""
        return {str(version): str(content) for version, content in self._fetch(self._sql.policies, ())}

    def series_counts(self, where: Slice = Slice()) -> dict[str, int]:
        """How many series rows (persistence/series.py) each pathway of the slice has."""
        statement = self._sql.series_counts[where.kind()]
        return {str(pid): int(count) for pid, count in self._fetch(statement, self._args(statement, where))}

    def series_of(self, pathway_id: str) -> dict[str, list[str]]:
        """One pathway's series values per field, in position order."""
        statement = self._sql.series_of
        args: Any = (pathway_id,) if self._dialect.positional else {"b_id": pathway_id}
        return grouped(self._fetch(statement, args))

    def _fetch(self, statement: str, args: Any) -> Sequence[tuple[Any, ...]]:
        cursor = self._driver.cursor()
        try:
            cursor.execute(statement, args)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def series_rows(
        self, where: Slice = Slice(), *, batch_size: int = 5000
    ) -> Generator[tuple[str, str, str], None, None]:
        """The slice's series rows (pathway id, field, value) in the entries' pathway order, then
        field and position: `audit verify` reads them beside the entries."""
        statement = self._sql.series[where.kind()]
        for batch in self._batches("hsct_audit_series", statement, where, batch_size):
            yield from batch

    def _batches(
        self, name: str, statement: str, where: Slice, batch_size: int
    ) -> Generator[Sequence[tuple[Any, ...]], None, None]:
        """A statement's rows in batches; a server-side cursor on PostgreSQL, where psycopg would
        otherwise fetch every row at once."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        postgres = self._dialect.name == "postgresql"
        cursor = self._driver.cursor(name=name) if postgres else self._driver.cursor()
        try:
            if postgres:
                cursor.itersize = batch_size
            cursor.execute(statement, self._args(statement, where))
            while True:
                batch = cursor.fetchmany(batch_size)
                if not batch:
                    return
                yield batch
        finally:
            cursor.close()

    def entry_batches(
        self, where: Slice = Slice(), *, batch_size: int = 5000
    ) -> Generator[Sequence[tuple[Any, ...]], None, None]:
        """The slice's entries as raw tuples (ENTRY_COLUMNS) in (pathway_id, sequence) order, in batches.

        Times are "YYYY-MM-DD HH:MM:SS.ffffff" UTC text (see `_time_text`); `body` is bytes;
        the other values are what the driver returns for the column, unconverted, so a
        tampered value of the wrong type is seen as it is rather than coerced.
        """
        return self._entry_rows(self._sql.entries[where.kind()], where, batch_size, ENTRY_COLUMNS.index("body"))

    def check_batches(
        self, where: Slice = Slice(), *, batch_size: int = 5000
    ) -> Generator[Sequence[tuple[Any, ...]], None, None]:
        """The slice's entries as `audit verify` reads them (CHECK_COLUMNS), in batches, in the
        order and with the values of `entry_batches`, except that the SHARED_COLUMNS come as the
        JSON array text `shared` (a BLOB in one of them makes SQLite refuse the read: json_array
        cannot hold one)."""
        return self._entry_rows(self._sql.checks[where.kind()], where, batch_size, CHECK_COLUMNS.index("body"))

    def _entry_rows(
        self, statement: str, where: Slice, batch_size: int, body: int
    ) -> Generator[Sequence[tuple[Any, ...]], None, None]:
        postgres = self._dialect.name == "postgresql"
        batches = self._batches("hsct_audit_entries", statement, where, batch_size)
        try:
            for batch in batches:
                yield [_bytes_body(row, body) for row in batch] if postgres else batch
        finally:
            batches.close()


def _bytes_body(row: tuple[Any, ...], at: int) -> tuple[Any, ...]:
    """The row with its body (bytea, which psycopg returns as a memoryview) as bytes."""
    body = row[at]
    if isinstance(body, memoryview):
        return (*row[:at], bytes(body), *row[at + 1 :])
    return row


@contextmanager
def audit_snapshot(engine: Engine) -> Iterator[AuditReader]:
    """One consistent, read-only view of the whole log, for as long as the block runs.

    Driver errors are translated into the library's own (StorageError and friends), whose
    messages never carry a value.
    """
    dialect = engine.dialect
    _statements(dialect)  # refuse an unsupported backend before connecting
    dbapi_error: type[BaseException] = getattr(dialect.loaded_dbapi, "Error", sqlite3.Error)
    try:
        raw = engine.raw_connection()
    except DBAPIError as exc:
        raise translate_error(exc) from None
    try:
        driver = raw.driver_connection
        try:
            if dialect.name == "sqlite":
                # The engine set isolation_level=None: transactions are ours to begin. DEFERRED
                # takes a read snapshot at the first SELECT and, in WAL mode, blocks no writer.
                # Read pages through a memory map rather than one read() call each (a third of
                # the cost of a full scan); the setting ends with this connection's use here.
                driver.execute("PRAGMA mmap_size=1073741824")  # type: ignore[union-attr]  # 1 GiB at most
                driver.execute("BEGIN DEFERRED")  # type: ignore[union-attr]
            else:
                driver.rollback()  # type: ignore[union-attr]  # SET TRANSACTION must come first in one
                with driver.cursor() as cursor:  # type: ignore[union-attr]
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        except dbapi_error as exc:
            raise _translated(exc, dialect, "opening a read snapshot") from None
        try:
            yield AuditReader(driver, dialect)
        except dbapi_error as exc:
            raise _translated(exc, dialect, "reading the log") from None
        finally:
            try:
                if dialect.name == "sqlite":
                    driver.execute("ROLLBACK")  # type: ignore[union-attr]
                    driver.execute("PRAGMA mmap_size=0")  # type: ignore[union-attr]
                else:
                    driver.rollback()  # type: ignore[union-attr]
            except dbapi_error:
                raw.invalidate()  # broken: the pool must not hand it out again
    finally:
        raw.close()


def _translated(exc: BaseException, dialect: Dialect, doing: str) -> HsctError:
    base = getattr(dialect.loaded_dbapi, "Error", Exception)
    wrapped = DBAPIError.instance(doing, None, exc, base, hide_parameters=True, dialect=dialect)
    if isinstance(wrapped, DBAPIError):
        return translate_error(wrapped)
    return StorageError(f"{type(exc).__name__} while {doing}")  # pragma: no cover - instance() always wraps
