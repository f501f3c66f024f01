"""Growing series (lab values, transfusions) in rows of their own: the `fact_series` table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

One row per value, keyed by pathway, field and position; the pathway's snapshot text keeps
each series' length and running hash (persistence/series.py), so the head entry still commits
to every value. Existing snapshots keep their series inline and are read as they stand; the
next command on a pathway moves its series into rows. The downgrade drops the table only
while it is empty: once a snapshot commits to rows, an older release could not read it.
Written out in full, like 0001-0006, so that it keeps meaning what it meant when released.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fact_series",
        sa.Column("pathway_id", sa.String(36), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["pathway_id"], ["pathways.id"], name=op.f("fk_fact_series_pathway_id_pathways")),
        sa.PrimaryKeyConstraint("pathway_id", "field", "position", name=op.f("pk_fact_series")),
    )


def downgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM fact_series")).scalar_one()
    if rows:
        raise RuntimeError(
            f"cannot downgrade below 0007: {rows} series values are stored as rows, and the snapshots"
            " that commit to them cannot be read by an older release"
        )
    op.drop_table("fact_series")
