"""Drop the entry indexes no query uses: `ix_entries_actor_id` and `ix_entries_trigger`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Every command paid for them (a B-tree insert each, and their pages in the write-ahead log),
but no statement of the library reads through them: the log is read by pathway and sequence
(the unique constraint), and `hsct audit log` narrows by pathway or by the recorded time (which
keeps `ix_entries_recorded_at`) before it compares actor or trigger. The downgrade builds them
again. Written out in full, like 0001-0005, so that it keeps meaning what it meant when released.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = {"ix_entries_actor_id": "actor_id", "ix_entries_trigger": "trigger"}


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, table_name="entries")


def downgrade() -> None:
    for name, column in DROPPED.items():
        op.create_index(name, "entries", [column])
