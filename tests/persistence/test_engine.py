"""Engine set-up: masked URLs, SQLite durability and locking, hidden parameters."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from persistence.engine import create_engine, default_sqlite_url, masked_url
from persistence.schema import upgrade
from persistence.store import StorageError, Store, translate_errors
from states.errors import ConcurrencyConflict
from tests.persistence.conftest import Backend
from tests.persistence.helpers import new_pathway


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://hsct:s3cret@db.example:5432/hsct",
            "postgresql+psycopg://hsct:***@db.example:5432/hsct",
        ),
        ("postgresql+psycopg://hsct@db.example/hsct", "postgresql+psycopg://hsct@db.example/hsct"),
        ("sqlite:///hsct.sqlite", "sqlite:///hsct.sqlite"),
    ],
)
def test_masked_url_hides_the_password(url: str, expected: str) -> None:
    assert masked_url(url) == expected


def test_default_sqlite_url(tmp_path: Path) -> None:
    assert default_sqlite_url() == "sqlite:///hsct.sqlite"
    assert default_sqlite_url(tmp_path / "x.sqlite") == f"sqlite:///{tmp_path}/x.sqlite"


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        create_engine("mysql://u@h/db")


def test_plain_postgresql_url_means_psycopg_and_parameters_are_hidden() -> None:
    engine = create_engine("postgresql://u:p@h/db", hide_parameters=False)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.hide_parameters is True
        assert engine.pool._pre_ping is True
    finally:
        engine.dispose()


def test_sqlite_file_pragmas(tmp_path: Path) -> None:
    engine = create_engine(default_sqlite_url(tmp_path / "p.sqlite"), busy_timeout_ms=1234)
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 1234
    finally:
        engine.dispose()


def test_sqlite_default_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(default_sqlite_url(tmp_path / "p.sqlite"))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_sqlite_transactions_begin_immediate(tmp_path: Path) -> None:
    """A second writer waits at BEGIN (then gives up cleanly), never midway through its work."""
    url = default_sqlite_url(tmp_path / "lock.sqlite")
    first = create_engine(url)
    second = create_engine(url, busy_timeout_ms=50)
    try:
        with first.begin() as holder:
            holder.execute(text("SELECT 1"))  # a read is enough to hold the write lock
            with second.connect() as waiter, pytest.raises(OperationalError, match="database is locked"):
                waiter.execute(text("SELECT 1"))  # fails at its BEGIN IMMEDIATE
            with (
                second.connect() as waiter,
                pytest.raises(ConcurrencyConflict, match="busy"),
                translate_errors("p-1"),
            ):
                waiter.execute(text("SELECT 1"))
    finally:
        first.dispose()
        second.dispose()


def test_busy_sqlite_reaches_the_store_caller_as_a_conflict(backend: Backend) -> None:
    if backend.name != "sqlite":
        pytest.skip("SQLite locking")
    engine = backend.engine()
    upgrade(engine)
    impatient = backend.engine(busy_timeout_ms=50)
    with Session(engine) as holder_session, Session(impatient) as waiter_session:
        new_pathway(Store(holder_session))  # holds the write lock, uncommitted
        with pytest.raises(ConcurrencyConflict, match="busy"):
            Store(waiter_session).pathway_ids()
        holder_session.commit()
        waiter_session.rollback()
        assert len(Store(waiter_session).pathway_ids()) == 1


def test_parameters_never_appear_in_errors(backend: Backend) -> None:
    """hide_parameters keeps bound values out of SQLAlchemy's message; PostgreSQL's own DETAIL
    ("Failing row contains ...") would still quote them, so translation drops the driver text."""
    engine = backend.engine()
    upgrade(engine)
    statement = text("INSERT INTO pathways (id, patient_ref) VALUES (:id, :ref)")
    params = {"id": "x", "ref": "CANARY-PATIENT-REF"}
    with engine.connect() as connection, pytest.raises(IntegrityError) as raw:
        connection.execute(statement, params)
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(raw.value)

    with (
        engine.connect() as connection,
        pytest.raises(StorageError, match=r"database error: .*(NOT NULL|23502)") as translated,
        translate_errors(),
    ):
        connection.execute(statement, params)
    shown = "".join(traceback.format_exception(translated.value))
    assert "CANARY-PATIENT-REF" not in shown
    assert "CANARY-PATIENT-REF" not in repr(translated.value)
