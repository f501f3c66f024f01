"""Schema revisions: the Alembic scripts shipped in this package, run without alembic.ini.

A library must not surprise its host by changing a database it did not create: only an
empty database is migrated automatically (and only when asked); anything else that is not
at head is refused with the exact command to run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from persistence.engine import masked_url
from persistence.models import Base
from states.errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (with Mako and Pygments behind it) is imported only to migrate or to explain a
# mismatch: opening a service on a current database reads the version table directly, which
# keeps it out of every command line start-up (`hsct pathway list`, benchmarks/README.md).

# Not "alembic_version": a host that keeps its own Alembic history in the same schema
# must not have it overwritten by ours.
VERSION_TABLE = "hsct_alembic_version"

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant will do: it serialises concurrent upgrades of one PostgreSQL database.
_PG_UPGRADE_LOCK = 0x4853_4354  # "HSCT"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for the packaged scripts; `connection` is the one to migrate."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this version of the library needs."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no migration scripts found")
    return head


_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(.*)$", re.MULTILINE)


def scripted_head() -> str | None:
    """The head revision read from the scripts' `revision` and `down_revision` lines without
    Alembic: the one revision no script builds on. None when that is not one plain answer
    (branches, merges), and then `head_revision` decides. A test holds the two equal."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for name, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            quoted = re.fullmatch(r"""["'](\w+)["']""", value.strip())
            if quoted is None:
                if value.strip() != "None":
                    return None  # a tuple of parents: a merge
                continue
            (revisions if name == "revision" else parents).add(quoted.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _is_at(connection: Connection, revision: str) -> bool:
    """The version table holds exactly `revision` (read without Alembic)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return False
    found = connection.execute(text("SELECT version_num FROM hsct_alembic_version")).scalars().all()
    return found == [revision]


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None when it has never been migrated."""
    with engine.connect() as connection:
        return _current(connection)


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_UPGRADE_LOCK})
    # SQLite: the engine's BEGIN IMMEDIATE already holds the write lock.


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def upgrade_on(connection: Connection, revision: str = "head") -> None:
    """Migrate on a connection the caller holds, in its transaction: the recipe for a host's
    own Alembic environment, which runs its history and then this one (docs/embedding.md).
    Only the library's own version table (`hsct_alembic_version`) is read and written.

    Run without an EnvironmentContext of its own: the host's env.py is inside one, and
    Alembic's module-level `context` proxy does not nest.
    """
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    _lock(connection)
    script = ScriptDirectory.from_config(alembic_config())
    context = MigrationContext.configure(
        connection,
        opts={
            "version_table": VERSION_TABLE,
            "target_metadata": Base.metadata,
            "fn": lambda current, _context: script._upgrade_revs(revision, current),
        },
    )
    with Operations.context(context):
        context.run_migrations()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to `revision` in one transaction (PostgreSQL rolls all of it back on failure)."""
    with engine.begin() as connection:
        _lock(connection)
        _upgrade(connection, revision)


def _is_empty(connection: Connection) -> bool:
    """No table of the library's yet: a host's own tables beside it do not count."""
    tables = set(inspect(connection).get_table_names())
    return not (tables & set(Base.metadata.tables))


def ensure_current(engine: Engine, *, auto_upgrade_empty: bool) -> None:
    """Return if the schema is at head; migrate an empty database if allowed; else refuse.

    Raises SchemaOutOfDate naming the command to run (with the password masked), or saying
    that the library is older than the database.
    """
    fast_head = scripted_head()
    if fast_head is not None:
        with engine.connect() as connection:
            if _is_at(connection, fast_head):
                return
    head = head_revision()
    with engine.begin() as connection:
        current = _current(connection)
        if current == head:
            return
        if current is None and auto_upgrade_empty:
            _lock(connection)
            current = _current(connection)  # another process may have just done it
            if current == head:
                return
            if current is None and _is_empty(connection):
                _upgrade(connection, "head")
                return
        message = _out_of_date_message(engine, current, head)
    raise SchemaOutOfDate(message)


def _out_of_date_message(engine: Engine, current: str | None, head: str) -> str:
    if current is not None and not _known(current):
        return (
            f"the database schema is at revision {current!r}, newer than this library "
            f"(head {head!r}): upgrade hsct-pathway"
        )
    where = "has no hsct schema" if current is None else f"is at schema revision {current!r}"
    return (
        f"the database {where}; this library needs revision {head!r}: "
        f"run `hsct db upgrade --db {masked_url(engine.url)}`"
    )


def _known(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False
