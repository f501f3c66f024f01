"""Engines configured the way the log needs them: durable, and never leaking parameters.

Only SQLite and PostgreSQL are accepted because the append-only triggers exist only for those.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

DEFAULT_BUSY_TIMEOUT_MS = 5000


def masked_url(url: str | URL) -> str:
    """The URL with its password replaced by ***, safe for logs and error messages (T25)."""
    return make_url(url).render_as_string(hide_password=True)


def default_sqlite_url(path: str | os.PathLike[str] = "hsct.sqlite") -> str:
    """A SQLite file URL for `path` (relative paths stay relative to the working directory)."""
    return "sqlite:///" + os.fspath(path).replace("\\", "/")


LOGGING_NAME = "hsct"


class _NoRows(logging.Filter):
    """Drops SQLAlchemy's DEBUG records of result rows: `hide_parameters` hides bound values
    but not the rows read back, which hold patient references and clinical values."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Row "))


def _hide_rows(logging_name: str) -> None:
    logger = logging.getLogger(f"sqlalchemy.engine.Engine.{logging_name}")
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
    A bare `postgresql://` URL is taken to mean psycopg 3, the driver the extra installs.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kw["hide_parameters"] = True
    kw.setdefault("logging_name", LOGGING_NAME)
    _hide_rows(kw["logging_name"])
    if backend == "sqlite":
        engine = sqlalchemy.create_engine(parsed, **kw)
        _configure_sqlite(engine, busy_timeout_ms=busy_timeout_ms, file_db=_is_sqlite_file(parsed))
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kw.setdefault("pool_pre_ping", True)
        return sqlalchemy.create_engine(parsed, **kw)
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql+psycopg")


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int, file_db: bool) -> None:
    """The SQLAlchemy recipe for SQLite transactions, with BEGIN IMMEDIATE.

    pysqlite's own transaction handling is switched off (isolation_level=None), which also
    stops it from committing silently around DDL; SQLAlchemy then emits BEGIN itself.
    """
    timeout = int(busy_timeout_ms)
    if timeout < 0:
        raise ValueError("busy_timeout_ms must be >= 0")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so that switching to WAL waits for a lock instead of failing.
            cursor.execute(f"PRAGMA busy_timeout = {timeout}")
            if file_db:
                cursor.execute("PRAGMA journal_mode = WAL").fetchall()
                cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Straight to the driver: this runs once per transaction on the write path, and the
        # full SQLAlchemy execution path would cost more than the statement. Errors are still
        # wrapped as SQLAlchemy's, so the store translates them like any other.
        try:
            connection.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise DBAPIError.instance(
                "BEGIN IMMEDIATE", (), exc, sqlite3.Error, hide_parameters=True, dialect=connection.dialect
            ) from exc
