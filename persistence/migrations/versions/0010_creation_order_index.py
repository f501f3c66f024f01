"""An index on `pathways (created_at, id)`: a listing reads the pathways in creation order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

`hsct pathway list`, `PathwayService.listing` and `pathway_ids` return pathways in creation
order (`created_at`, then `id`). Without an index on those columns the database read every row
and sorted them, snapshots included, before returning the first: at 10,000 pathways the sort
was about a third of the listing's query on SQLite (benchmarks/README.md). With it the rows come
in order as they are read. A pathway's `created_at` never changes, so a command pays nothing;
a referral adds one index entry. The downgrade drops the index. Written out in full, like
0001-0009, so that it keeps meaning what it meant when released.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_pathways_created_at_id", "pathways", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_pathways_created_at_id", table_name="pathways")
