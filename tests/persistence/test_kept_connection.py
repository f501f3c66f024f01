"""persistence.engine.KeptConnection: one SQLite connection kept between transactions, and given
up whenever reusing it could be wrong (an error, a disposed engine, another process); its
transactions begun and ended on the driver, joined by what runs through SQLAlchemy."""

from __future__ import annotations

import gc
import os
import sqlite3
import warnings
from contextlib import nullcontext

import pytest
import sqlalchemy
from sqlalchemy import Connection, text

from persistence.engine import KeptConnection, configure_engine
from tests.persistence.conftest import Backend


@pytest.fixture
def kept(backend: Backend) -> KeptConnection:
    if backend.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL uses the pool as it is (the first test checks that)")
    return KeptConnection(backend.engine())


class _Failed(Exception):
    pass


def _fail_inside(kept: KeptConnection, first: Connection) -> None:
    with kept.begin() as connection:
        assert connection is first
        connection.execute(text("SELECT 1"))
        raise _Failed


def _used(kept: KeptConnection) -> Connection:
    """The connection one transaction ran on."""
    with kept.begin() as connection:
        connection.execute(text("SELECT 1"))
        return connection


def test_only_sqlite_keeps_a_connection_between_transactions(backend: Backend) -> None:
    engine = backend.engine()
    keeper = KeptConnection(engine)
    first = _used(keeper)
    assert (_used(keeper) is first) == (backend.name == "sqlite")
    assert engine.pool.checkedout() == (1 if backend.name == "sqlite" else 0)  # type: ignore[attr-defined]
    assert not first.closed or backend.name != "sqlite"


def test_a_connection_that_saw_an_error_is_closed_not_kept(kept: KeptConnection) -> None:
    first = _used(kept)
    with pytest.raises(_Failed):
        _fail_inside(kept, first)
    assert first.closed
    assert _used(kept) is not first


def test_nothing_kept_is_reused_once_the_engine_is_disposed(kept: KeptConnection, backend: Backend) -> None:
    first = _used(kept)
    backend.engines[-1].dispose()
    assert _used(kept) is not first
    assert first.closed


def test_a_forked_process_leaves_its_parents_connection_alone(
    kept: KeptConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _used(kept)
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)  # what a forked child sees
    assert _used(kept) is not first
    assert not first.closed  # not the child's to close


def test_the_kept_connection_closes_with_its_keeper(backend: Backend) -> None:
    """No connection is left for the garbage collector to find checked out (SQLAlchemy warns)."""
    engine = backend.engine()
    keeper = KeptConnection(engine)
    first = _used(keeper)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del keeper
        gc.collect()
    assert first.closed
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def _driver(connection: Connection) -> sqlite3.Connection:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _rows(backend: Backend) -> list[tuple[str, ...]]:
    with backend.engine().connect() as reader:
        return [tuple(row) for row in reader.execute(text("SELECT what FROM t ORDER BY what"))]


@pytest.mark.parametrize("fails", [False, True])
def test_statements_on_the_driver_and_through_sqlalchemy_commit_or_roll_back_together(
    kept: KeptConnection, backend: Backend, fails: bool
) -> None:
    with kept.begin() as connection:
        connection.execute(text("CREATE TABLE t (what TEXT)"))
    with pytest.raises(_Failed) if fails else nullcontext(), kept.begin() as connection:
        assert _driver(connection).in_transaction
        assert not connection.in_transaction()
        _driver(connection).execute("INSERT INTO t VALUES ('driver')")
        connection.execute(text("INSERT INTO t VALUES ('sqlalchemy')"))  # SQLAlchemy joins the transaction
        assert connection.in_transaction()
        if fails:
            raise _Failed
    assert _rows(backend) == ([] if fails else [("driver",), ("sqlalchemy",)])
    again = _used(kept)
    assert not _driver(again).in_transaction
    assert not again.in_transaction()


def test_the_write_lock_is_held_from_the_start(kept: KeptConnection, backend: Backend) -> None:
    """BEGIN IMMEDIATE: another writer cannot begin while the block is open, though it wrote nothing yet."""
    other = backend.engine(busy_timeout_ms=0)
    with kept.begin(), other.connect() as second, pytest.raises(sqlalchemy.exc.OperationalError, match="locked"):
        second.begin()
    with other.begin() as free:  # and it is released at the end of the block
        free.execute(text("SELECT 1"))


def test_a_connection_opened_before_the_engine_was_configured_is_prepared_first(backend: Backend) -> None:
    """A host's engine: its pool opened a connection before the library configured it. The
    first transaction takes SQLAlchemy's path, whose listener sets the connection up."""
    if backend.name != "sqlite":
        pytest.skip("SQLite only")
    engine = sqlalchemy.create_engine(backend.url)
    backend.engines.append(engine)
    with engine.connect() as early:
        early.execute(text("SELECT 1"))  # opened and pooled, unconfigured
    keeper = KeptConnection(configure_engine(engine))
    with keeper.begin() as connection:
        assert connection.in_transaction()  # SQLAlchemy's transaction, its listener ran
        assert _driver(connection).execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    with keeper.begin() as connection:
        assert not connection.in_transaction()
        assert _driver(connection).in_transaction
