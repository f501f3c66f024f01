"""The pathway's milestone schedule beside its facts: the nullable `pathways.schedule` column.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

Compact JSON (states/milestones.py, `Schedule.dumps`): the milestones the facts leave open,
with the dates that decide their status and the pathway's timezone, written in the same
statement as the facts. Derived data outside the hash chain: `audit verify` compares it with
the schedule the verified facts give. NULL (every row written before 0008) means "compute it
from the facts", so no backfill is needed here; `hsct db upgrade` fills it in as it re-derives
each pathway. The downgrade drops the column: nothing but the worklist's speed is lost.
Written out in full, like 0001-0007, so that it keeps meaning what it meant when released.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("pathways", sa.Column("schedule", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("pathways", "schedule")
