"""An index on `pathways.patient_ref`: a referral no longer reads every pathway.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

Every referral, every command that opens a linked pathway and every lookup by patient asks for
the patient's pathways (`Store.open_pathways_of`, `Store.pathways_of`). The only index on the
column was the partial unique one of the one-open-pathway rule, which a query can use only
when it repeats that index's condition word for word, so each of them scanned the whole table:
at 10,000 pathways a referral cost several times a command (benchmarks/README.md). The
downgrade drops the index. Written out in full, like 0001-0008, so that it keeps meaning what
it meant when released.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_pathways_patient_ref", "pathways", ["patient_ref"])


def downgrade() -> None:
    op.drop_index("ix_pathways_patient_ref", table_name="pathways")
