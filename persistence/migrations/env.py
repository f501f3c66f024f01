"""Alembic environment for the schema shipped inside the package.

`persistence.schema` runs it programmatically and hands over an open connection in
`config.attributes["connection"]` (no alembic.ini). Developers may also point the alembic
command line at this folder with `sqlalchemy.url` set, e.g. to autogenerate a revision.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from persistence.engine import create_engine
from persistence.models import Base
from persistence.schema import VERSION_TABLE

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Render SQL for a DBA to review (`alembic upgrade --sql`)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and sqlalchemy.url is not set")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
