"""persistence.engine.KeptConnection: one SQLite connection kept between transactions, and given
up whenever reusing it could be wrong (an error, a disposed engine, another process)."""

from __future__ import annotations

import gc
import os
import warnings

import pytest
from sqlalchemy import Connection, text

from persistence.engine import KeptConnection
from tests.persistence.conftest import Backend


@pytest.fixture
def kept(backend: Backend) -> KeptConnection:
    if backend.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL uses the pool as it is (the first test checks that)")
    return KeptConnection(backend.engine())


class _Failed(Exception):
    pass


def _fail_inside(kept: KeptConnection, first: Connection) -> None:
    with kept.connect() as connection, connection.begin():
        assert connection is first
        connection.execute(text("SELECT 1"))
        raise _Failed


def _used(kept: KeptConnection) -> Connection:
    """The connection one transaction ran on."""
    with kept.connect() as connection, connection.begin():
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
