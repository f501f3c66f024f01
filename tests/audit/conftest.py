"""Helpers of the audit tests: signing keys, a privileged connection that tampers, the verifier.

Tampering needs what an attacker with database rights has: `privileged` switches the
append-only guard off first (SQLite: drop the two triggers; PostgreSQL: disable the table's
user triggers, which the owner may do) and drops the entries->pathways foreign key, then
gives a plain driver connection. Tests that tamper therefore never use the `service`
fixture (its invariant check would fail on purpose): they use `db_url` and `clock` with a
service of their own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from workflow.audit.checkpoint import generate_key

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "tools" / "verify_export.py"


@dataclass(frozen=True)
class Key:
    path: Path
    public: str


@pytest.fixture
def key(tmp_path: Path) -> Key:
    path = tmp_path / "keys" / "audit.pem"
    path.parent.mkdir()
    return Key(path, generate_key(path))


class Sql:
    """Runs `?`-placeholder SQL on a driver connection of either backend, committing each statement."""

    def __init__(self, driver: Any, dialect: str) -> None:
        self.driver = driver
        self.dialect = dialect

    def __call__(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.dialect == "sqlite":
            rows = self.driver.execute(statement, params).fetchall()
            return list(rows)
        with self.driver.cursor() as cursor:
            cursor.execute(statement.replace("?", "%s"), params)
            rows = cursor.fetchall() if cursor.description else []
        self.driver.commit()
        return list(rows)


@contextmanager
def privileged(engine: Engine) -> Iterator[Sql]:
    """A driver connection with the append-only triggers and the entries foreign key gone."""
    raw = engine.raw_connection()
    try:
        sql = Sql(raw.driver_connection, engine.dialect.name)
        if engine.dialect.name == "sqlite":
            sql("PRAGMA foreign_keys = OFF")
            sql("DROP TRIGGER IF EXISTS entries_no_update")
            sql("DROP TRIGGER IF EXISTS entries_no_delete")
        else:
            sql("ALTER TABLE entries DISABLE TRIGGER USER")
            sql("ALTER TABLE entries DROP CONSTRAINT IF EXISTS fk_entries_pathway_id_pathways")
        yield sql
    finally:
        raw.close()


ISOLATED = (sys.executable, "-I", "-S")
"""-I alone still reads the virtualenv's site-packages, where the library is installed in
editable mode; -S (no `site`) leaves the standard library only, so nothing else can be imported."""


def run_verifier(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """tools/verify_export.py in an isolated interpreter that cannot import the library."""
    return subprocess.run(
        [*ISOLATED, str(VERIFIER), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
