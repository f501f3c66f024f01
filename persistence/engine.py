"""Engines configured the way the log needs them: durable, and never leaking parameters.

Only SQLite and PostgreSQL are accepted because the append-only triggers exist only for those.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, RootTransaction, make_url
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from persistence.extras import missing_extra

DEFAULT_BUSY_TIMEOUT_MS = 5000

BARE_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
"""URL schemes without a driver: mapped to psycopg 3 (`postgresql+psycopg`)."""


def masked_url(url: str | URL) -> str:
    """The URL with its password replaced by ***, safe for logs and error messages (T25)."""
    return make_url(url).render_as_string(hide_password=True)


def default_sqlite_url(path: str | os.PathLike[str] = "hsct.sqlite") -> str:
    """A SQLite file URL for `path` (relative paths stay relative to the working directory)."""
    return "sqlite:///" + os.fspath(path).replace("\\", "/")


LOGGING_NAME = "hsct"

_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()
_PREPARED = "hsct_prepared"
"""Key in a pooled connection's `info`: the connection has had the library's PRAGMAs."""


class _NoRows(logging.Filter):
    """Drops SQLAlchemy's DEBUG records of result rows: `hide_parameters` hides bound values
    but not the rows read back, which hold patient references and clinical values."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Row "))


def _hide_rows(logging_name: str | None) -> None:
    name = "sqlalchemy.engine.Engine" + (f".{logging_name}" if logging_name else "")
    logger = logging.getLogger(name)
    if not any(isinstance(f, _NoRows) for f in logger.filters):
        logger.addFilter(_NoRows())


def _is_sqlite_file(url: URL) -> bool:
    database = url.database or ""
    return database not in ("", ":memory:") and url.query.get("mode") != "memory"


def create_engine(url: str | URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, **kw: Any) -> Engine:
    """Create the library's engine for a SQLite or PostgreSQL (psycopg 3) URL.

    `hide_parameters=True` is forced so bound values (patient data) never reach logs or
    exception messages. SQLite gets WAL, synchronous=FULL, a busy timeout, foreign keys,
    and `BEGIN IMMEDIATE` on every transaction: a writer waits for the lock at BEGIN, under
    the busy timeout, instead of failing with "database is locked" after it has read.
    A bare `postgresql://` or `postgres://` URL (what hosting services hand out) is taken to
    mean psycopg 3, the driver the extra installs.
    """
    parsed = make_url(url)
    if parsed.drivername in BARE_POSTGRES_SCHEMES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    kw["hide_parameters"] = True
    kw.setdefault("logging_name", LOGGING_NAME)
    if backend == "postgresql":
        kw.setdefault("pool_pre_ping", True)
    elif backend != "sqlite":
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql+psycopg")
    try:
        engine = sqlalchemy.create_engine(parsed, **kw)
    except ModuleNotFoundError as exc:  # the driver: psycopg without the postgres extra
        raise missing_extra(exc) from None
    return configure_engine(engine, busy_timeout_ms=busy_timeout_ms)


def configure_engine(engine: Engine, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    """Give an engine the host built the library's set-up (what `create_engine` does), in place.

    Bound values are hidden from logs and errors (`hide_parameters`), result rows from DEBUG
    logs; SQLite also gets the busy timeout, WAL, synchronous=FULL, foreign keys and
    `BEGIN IMMEDIATE`, on new connections and, at their next transaction, on connections the
    pool already holds. Idempotent. Raises ValueError, saying how to build a suitable engine,
    for a backend or driver the log cannot work with (docs/embedding.md).
    """
    timeout = int(busy_timeout_ms)
    if timeout < 0:
        raise ValueError("busy_timeout_ms must be >= 0")
    backend, driver = engine.dialect.name, engine.dialect.driver
    if backend not in {"sqlite", "postgresql"} or (backend == "sqlite" and driver != "pysqlite"):
        raise ValueError(
            f"the library works with SQLite (the standard sqlite3 driver) or PostgreSQL, not {backend}+{driver}: "
            "build the engine with persistence.engine.create_engine(url)"
        )
    if engine in _CONFIGURED:
        return engine
    engine.hide_parameters = True
    _hide_rows(engine.logging_name)
    if backend == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms=timeout, file_db=_is_sqlite_file(engine.url))
    _CONFIGURED.add(engine)
    return engine


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int, file_db: bool) -> None:
    """The SQLAlchemy recipe for SQLite transactions, with BEGIN IMMEDIATE.

    pysqlite's own transaction handling is switched off (isolation_level=None), which also
    stops it from committing silently around DDL; SQLAlchemy then emits BEGIN itself.
    """

    def prepare(dbapi_connection: Any, info: dict[Any, Any]) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so that switching to WAL waits for a lock instead of failing.
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            if file_db:
                cursor.execute("PRAGMA journal_mode = WAL").fetchall()
                cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        info[_PREPARED] = True

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        prepare(dbapi_connection, record.info)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Straight to the driver: this runs once per transaction on the write path, and the
        # full SQLAlchemy execution path would cost more than the statement. Errors are still
        # wrapped as SQLAlchemy's, so the store translates them like any other.
        pooled = connection.connection
        driver = pooled.driver_connection
        if driver.in_transaction:  # type: ignore[union-attr]  # begun on the driver (KeptConnection.begin): joined
            return
        try:
            if not pooled.info.get(_PREPARED):  # opened before a host's engine was configured
                prepare(driver, pooled.info)
            driver.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise driver_error(connection, "BEGIN IMMEDIATE", (), exc) from exc


def driver_error(connection: Connection, statement: str, params: Any, exc: sqlite3.Error) -> StatementError:
    """A sqlite3 error from a statement sent straight to the driver, as SQLAlchemy would have
    raised it (parameters hidden), the connection invalidated if the error says it is lost."""
    driver = connection.connection.driver_connection
    invalidated = connection.dialect.is_disconnect(exc, driver, None)  # type: ignore[arg-type]
    if invalidated:
        connection.invalidate(exc)
    return DBAPIError.instance(
        statement,
        params,
        exc,
        sqlite3.Error,
        hide_parameters=True,
        connection_invalidated=invalidated,
        dialect=connection.dialect,
    )


@contextmanager
def no_wait(connection: Connection) -> Iterator[None]:
    """SQLite: a write transaction begun on `connection` in the block fails at once instead of
    waiting for the write lock (the busy timeout is 0 in the block, then restored). Other
    dialects: nothing (they say NOWAIT per statement)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    (timeout,) = driver.execute("PRAGMA busy_timeout").fetchone()
    driver.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA busy_timeout = {int(timeout)}")


class KeptConnection:
    """The service's own transactions, on the connection of its last one, kept (SQLite).

    Checking a connection out of SQLAlchemy's pool and back in (a Connection object, the
    pool's bookkeeping and events, the reset on return) costs more on SQLite than a command's
    own statements; keeping one connection between transactions saves it (benchmarks/README.md).
    At most one is kept: another thread meanwhile takes one from the pool. A connection is not
    kept after an error, and not used again once the engine has been disposed (its pool is
    replaced) or in a forked process. Other backends get the pool as it is: its pre-ping guards
    a connection against a server restart. The kept connection is closed with this object.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._keeps = engine.dialect.name == "sqlite"
        self._lock = threading.Lock()
        # (connection, its pool, the process that opened it); a box the finalizer can close
        # without holding this object.
        self._box: list[tuple[Connection, Pool, int]] = []
        weakref.finalize(self, _close_kept, self._box, self._lock)

    def begin(self) -> _Transaction:
        """A connection in a transaction of its own for the block, committed at its end and
        rolled back on an error (what `Engine.begin` gives).

        On SQLite, BEGIN IMMEDIATE and COMMIT (or ROLLBACK) go straight to the driver: through
        SQLAlchemy's transaction they cost about as much as a command's statements. A statement
        the block runs through SQLAlchemy makes it begin its own bookkeeping, which joins the
        driver's transaction (the BEGIN listener sees one open) and then ends it in its place.
        A connection the library has not prepared yet (a host's engine, configured after the
        pool opened it) takes SQLAlchemy's transaction, whose listener prepares it.
        """
        return _Transaction(self)

    def _take(self) -> tuple[Connection, Pool]:
        with self._lock:
            kept = self._box.pop() if self._box else None
        if kept is not None:
            connection, pool, pid = kept
            if pid == os.getpid():  # a forked child leaves its parent's connection alone
                if pool is self._engine.pool and not connection.invalidated:
                    return connection, pool
                connection.close()
        pool = self._engine.pool
        return self._engine.connect(), pool

    def _give(self, connection: Connection, pool: Pool) -> None:
        if self._keeps and not connection.invalidated and not connection.in_transaction():
            with self._lock:
                if not self._box:
                    self._box.append((connection, pool, os.getpid()))
                    return
        connection.close()


class _Transaction:
    """`KeptConnection.begin`'s block (a class, not a generator: it runs on every command)."""

    __slots__ = ("_connection", "_kept", "_pool", "_root")

    _root: RootTransaction | None  # SQLAlchemy's transaction, or None for one begun on the driver

    def __init__(self, kept: KeptConnection) -> None:
        self._kept = kept

    def __enter__(self) -> Connection:
        connection, self._pool = self._kept._take()
        self._connection = connection
        self._root = None
        try:
            pooled = connection.connection
            if self._kept._keeps and pooled.info.get(_PREPARED):
                _on_driver(connection, "BEGIN IMMEDIATE")
            else:
                self._root = connection.begin()
        except BaseException:
            connection.close()
            raise
        return connection

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        connection = self._connection
        try:
            if self._root is not None:
                self._root.__exit__(kind, error, trace)
            elif connection.in_transaction():  # SQLAlchemy joined the driver's transaction: it ends it
                (connection.commit if kind is None else connection.rollback)()
            elif not connection.invalidated:
                _on_driver(connection, "COMMIT" if kind is None else "ROLLBACK")
        except BaseException:
            connection.close()
            raise
        if kind is None:
            self._kept._give(connection, self._pool)
        else:
            connection.close()


def _on_driver(connection: Connection, statement: str) -> None:
    """BEGIN IMMEDIATE, COMMIT or ROLLBACK on the connection's sqlite3 connection; an error as
    SQLAlchemy's (`driver_error`)."""
    try:
        connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise driver_error(connection, statement, (), exc) from exc


def _close_kept(box: list[tuple[Connection, Pool, int]], lock: threading.Lock) -> None:
    with lock:
        for connection, _, pid in box:
            if pid == os.getpid():
                connection.close()
        box.clear()
