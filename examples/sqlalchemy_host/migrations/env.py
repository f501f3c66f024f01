"""The host's Alembic environment: its own history first, then the library's, on one
connection in one transaction (docs/embedding.md, "Your database, your migrations")."""

from __future__ import annotations

from alembic import context

from examples.sqlalchemy_host.models import Base
from persistence.engine import create_engine
from persistence.schema import upgrade_on

config = context.config


def run_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            # The default version table (alembic_version) is the host's; the library keeps its
            # revision in hsct_alembic_version. Autogenerate compares the host's tables only.
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                include_name=lambda name, kind, _parent: kind != "table" or name in Base.metadata.tables,
            )
            with context.begin_transaction():
                context.run_migrations()
            upgrade_on(connection)
    finally:
        engine.dispose()


run_online()
