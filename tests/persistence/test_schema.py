"""Migrations shipped in the package, run programmatically, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from persistence.engine import create_engine
from persistence.models import Base
from persistence.schema import (
    VERSION_TABLE,
    _out_of_date_message,
    alembic_config,
    current_revision,
    ensure_current,
    head_revision,
    upgrade,
)
from states.errors import SchemaOutOfDate
from tests.persistence.conftest import Backend


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            query = (
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relname = 'entries' AND c.relnamespace = current_schema()::regnamespace "
                "AND NOT t.tgisinternal"
            )
        return set(connection.exec_driver_sql(query).scalars())


def test_upgrade_creates_the_schema_at_head(backend: Backend) -> None:
    engine = backend.engine()
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision() == "0010"
    assert _tables(engine) == {"pathways", "entries", "outbox", "policies", "fact_series", VERSION_TABLE}
    expected = (
        {"entries_no_update", "entries_no_delete", "policies_no_update", "policies_no_delete"}
        if backend.name == "sqlite"
        else {"entries_append_only", "entries_no_truncate"}
    )
    assert _triggers(engine) == expected


def _fk_key(constraint: Any) -> tuple[str, tuple[str, ...], str]:
    return (constraint.table.name, tuple(c.name for c in constraint.columns), constraint.referred_table.name)


def _inline_sqlite_fks(diffs: list[Any]) -> list[Any]:
    """SQLite reflects a foreign key added inline with its column (migration 0003's `successor`:
    SQLite cannot add a table constraint) without its name or DEFERRABLE clause; the pair of
    diffs that causes is dropped when columns and target agree. Anything else still shows."""
    removed = {_fk_key(d[1]) for d in diffs if d[0] == "remove_fk" and d[1].name is None}
    added = {_fk_key(d[1]) for d in diffs if d[0] == "add_fk"}
    same = removed & added
    return [d for d in diffs if not (d[0] in ("remove_fk", "add_fk") and _fk_key(d[1]) in same)]


def test_models_match_the_migrated_database(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "version_table": VERSION_TABLE})
        diffs = compare_metadata(context, Base.metadata)
        if engine.dialect.name == "sqlite":
            diffs = _inline_sqlite_fks(diffs)
            ddl = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'pathways'").scalar_one()
            assert "successor VARCHAR(36) CONSTRAINT fk_pathways_successor_pathways REFERENCES pathways (id) " \
                   "DEFERRABLE INITIALLY DEFERRED" in ddl
        assert diffs == []


def test_ensure_current_refuses_an_empty_database_unless_allowed(backend: Backend) -> None:
    engine = backend.engine()
    with pytest.raises(SchemaOutOfDate, match=r"run `hsct db upgrade --db ") as raised:
        ensure_current(engine, auto_upgrade_empty=False)
    assert engine.url.render_as_string(hide_password=True) in str(raised.value)
    assert _tables(engine) == set()  # nothing was touched

    ensure_current(engine, auto_upgrade_empty=True)
    assert current_revision(engine) == head_revision()
    ensure_current(engine, auto_upgrade_empty=False)  # at head: a no-op


def test_ensure_current_migrates_only_when_allowed_beside_host_tables(backend: Backend) -> None:
    """A host's own tables do not make the database the library's: without permission it
    refuses and creates nothing; with it, its tables go beside the host's, which stay as they are."""
    engine = backend.engine()
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE host_table (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaOutOfDate, match="hsct db upgrade"):
        ensure_current(engine, auto_upgrade_empty=False)
    assert _tables(engine) == {"host_table"}
    ensure_current(engine, auto_upgrade_empty=True)
    assert {"host_table", "pathways", "entries"} <= _tables(engine)


def test_ensure_current_refuses_a_schema_newer_than_the_library(backend: Backend) -> None:
    engine = backend.engine()
    upgrade(engine)
    with engine.begin() as connection:  # a revision this library does not know
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match=r"newer than this library"):
        ensure_current(engine, auto_upgrade_empty=True)


def test_ensure_current_names_upgrade_for_a_known_older_revision(backend: Backend) -> None:
    engine = backend.engine()
    upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0004")
    # A library database at an older revision is never migrated behind the operator's back.
    with pytest.raises(SchemaOutOfDate, match=r"is at schema revision '0004'.*run `hsct db upgrade --db "):
        ensure_current(engine, auto_upgrade_empty=True)


def test_error_message_masks_the_password() -> None:
    engine = create_engine("postgresql+psycopg://hsct:s3cret-canary@db.example/hsct")  # never connects
    try:
        message = _out_of_date_message(engine, None, head_revision())
    finally:
        engine.dispose()
    assert message.endswith("run `hsct db upgrade --db postgresql+psycopg://hsct:***@db.example/hsct`")
    assert "s3cret-canary" not in message


def test_downgrade_and_upgrade_again(backend: Backend) -> None:
    engine = backend.engine()
    upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert _tables(engine) == {VERSION_TABLE}
    assert current_revision(engine) is None
    ensure_current(engine, auto_upgrade_empty=True)  # only our empty version table: still "empty"
    assert current_revision(engine) == head_revision()
    assert {"entries", "pathways", "outbox"} <= _tables(engine)
