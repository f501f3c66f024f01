"""Where entries came from (`entries.origin`): reads that keep scenario runs off live data.

An entry's origin is hashed into it (canonical form 2): "live", or "scenario:<file name>" for
an entry a scenario run wrote. Entries sealed before the column existed (form 1) have none and
count as live: nothing says otherwise.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from persistence.models import entries_table

SCENARIO_PREFIX = "scenario:"


def has_live_entries(connection: Connection) -> bool:
    """Whether the database holds any entry not written by a scenario run (False when it has no log yet)."""
    inspector = sa.inspect(connection)
    if not inspector.has_table(entries_table.name):
        return False
    columns = {column["name"] for column in inspector.get_columns(entries_table.name)}
    if "origin" not in columns:  # a log from before origins: every entry is live
        return connection.execute(sa.select(sa.literal(1)).select_from(sa.table(entries_table.name))
                                  .limit(1)).first() is not None
    origin = entries_table.c.origin
    live = sa.or_(origin.is_(None), sa.not_(origin.startswith(SCENARIO_PREFIX, autoescape=True)))
    return connection.execute(sa.select(entries_table.c.id).where(live).limit(1)).first() is not None
