"""Driver errors become the library's own, whatever the driver said (unit level, fakes)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from persistence.store import DuplicateIdempotencyKey, StorageError, translate_error, translate_errors
from states.errors import ConcurrencyConflict, UnknownPathway


@dataclass
class Diag:
    constraint_name: str | None = None
    table_name: str | None = None
    column_name: str | None = None


class FakePgError(Exception):
    def __init__(self, sqlstate: str, constraint: str | None = None) -> None:
        super().__init__("DETAIL: Failing row contains (CANARY)")
        self.sqlstate = sqlstate
        self.diag = Diag(constraint_name=constraint, table_name="entries")


def wrap(orig: Exception, cls: type[DBAPIError] = OperationalError) -> DBAPIError:
    return cls("INSERT ...", {}, orig)


def sqlite_error(cls: type[sqlite3.Error], message: str, code: int) -> sqlite3.Error:
    error = cls(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("orig", "expected"),
    [
        (FakePgError("40001"), ConcurrencyConflict),
        (FakePgError("40P01"), ConcurrencyConflict),
        (FakePgError("55P03"), ConcurrencyConflict),
        (FakePgError("23505", "uq_entries_pathway_id_sequence"), ConcurrencyConflict),
        (FakePgError("23505", "uq_entries_idempotency_key"), DuplicateIdempotencyKey),
        (FakePgError("23503", "fk_entries_pathway_id_pathways"), UnknownPathway),
        (FakePgError("23502"), StorageError),
        (sqlite_error(sqlite3.OperationalError, "database is locked", 5), ConcurrencyConflict),
        (sqlite_error(sqlite3.OperationalError, "database is locked", 517), ConcurrencyConflict),
        (sqlite_error(sqlite3.OperationalError, "database table is locked", 6), ConcurrencyConflict),
        (
            sqlite_error(
                sqlite3.IntegrityError, "UNIQUE constraint failed: entries.pathway_id, entries.sequence", 2067
            ),
            ConcurrencyConflict,
        ),
        (
            sqlite_error(sqlite3.IntegrityError, "UNIQUE constraint failed: entries.idempotency_key", 2067),
            DuplicateIdempotencyKey,
        ),
        (sqlite_error(sqlite3.IntegrityError, "FOREIGN KEY constraint failed", 787), UnknownPathway),
        (sqlite_error(sqlite3.OperationalError, "disk I/O error", 10), StorageError),
        (RuntimeError("some other driver"), StorageError),
    ],
)
def test_translation_table(orig: Exception, expected: type[Exception]) -> None:
    translated = translate_error(wrap(orig), "p-1")
    assert type(translated) is expected
    assert "CANARY" not in str(translated)


def test_storage_error_names_codes_and_objects_only() -> None:
    error = translate_error(wrap(FakePgError("23502"), IntegrityError))
    assert isinstance(error, StorageError)
    assert error.sqlstate == "23502"
    assert str(error) == "database error: FakePgError, SQLSTATE 23502, table entries"


def test_translate_errors_context_manager_hides_the_driver_text() -> None:
    with pytest.raises(ConcurrencyConflict, match="p-9") as raised, translate_errors("p-9"):
        raise wrap(FakePgError("40001"))
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert isinstance(raised.value.__context__, DBAPIError)  # still there for a debugger


def test_translate_errors_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError), translate_errors("p-1"):
        raise KeyError("x")
