"""The library's tables beside a host's: start-up checks only the library's own revision."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from persistence.engine import create_engine
from persistence.models import Base
from persistence.schema import VERSION_TABLE, current_revision, head_revision
from states.errors import SchemaOutOfDate
from tests.conftest import PG_ENV, _postgres_url_with_schema
from tests.walks import PHYS
from workflow.service import PathwayService

REFERRAL = {"patient_ref": "PT-HOST01", "route": "autologous", "graft_source": "pbsc"}
AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def host_tables(url: str) -> None:
    """A host's own table and its own Alembic version table, there before the library."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE care_tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL)"))
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('host0001')"))
    engine.dispose()


def test_a_database_with_host_tables_is_set_up_beside_them(db_url: str) -> None:
    host_tables(db_url)
    service = PathwayService(db_url, auto_upgrade=True)  # refused with SchemaOutOfDate before
    try:
        service.refer(REFERRAL, actor=PHYS, at=AT)
        assert current_revision(service.engine) == head_revision()
        with service.engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            host_revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        assert {"care_tasks", "alembic_version", VERSION_TABLE} | set(Base.metadata.tables) <= tables
        assert host_revision == "host0001"  # the host's history is untouched
    finally:
        service.engine.dispose()


def test_host_tables_do_not_hide_a_partial_library_schema(db_url: str) -> None:
    """Only a database without any of the library's tables counts as empty: a library table
    without the library's version is not migrated over, it is refused."""
    host_tables(db_url)
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE pathways (id TEXT PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(SchemaOutOfDate, match="has no hsct schema"):
        PathwayService(db_url, auto_upgrade=True)


@pytest.fixture
def two_schemas() -> Iterator[tuple[str, str]]:
    """PostgreSQL: a host's schema and the library's, each reached through its search_path."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL tests skipped")
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        for name in names:
            connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield _postgres_url_with_schema(base, names[0]), _postgres_url_with_schema(base, names[1])
    finally:
        with admin.begin() as connection:
            for name in names:
                connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def test_postgresql_keeps_the_library_in_a_schema_of_its_own(two_schemas: tuple[str, str]) -> None:
    host_url, library_url = two_schemas
    host_tables(host_url)
    service = PathwayService(library_url, auto_upgrade=True)
    try:
        service.refer(REFERRAL, actor=PHYS, at=AT)
        host = sa.create_engine(host_url)
        with host.connect() as connection:
            host_side = set(sa.inspect(connection).get_table_names())
        host.dispose()
        with service.engine.connect() as connection:
            library_side = set(sa.inspect(connection).get_table_names())
        assert host_side == {"care_tasks", "alembic_version"}
        assert library_side == {VERSION_TABLE, *Base.metadata.tables}
    finally:
        service.engine.dispose()
