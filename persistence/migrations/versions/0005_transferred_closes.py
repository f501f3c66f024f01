"""A pathway transferred to another centre is closed for the one-open-pathway rule.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

The partial unique index on `pathways.patient_ref` (revision 0003) now also leaves out
pathways in the new final phase `transferred`: a patient who comes back after a transfer can
be referred anew. No existing row is in that phase, so the upgrade cannot meet a conflict. The
downgrade refuses, before anything changes, while any pathway is `transferred` (the older
release knows no such phase), naming the pathway ids (never patient data). Written out in
full, like 0001-0004, so that it keeps meaning what it meant when released.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_pathways_open_patient"
OPEN = "phase NOT IN ('day100_complete', 'deceased', 'transferred', 'withdrawn') AND successor IS NULL"
OPEN_BEFORE = "phase NOT IN ('day100_complete', 'deceased', 'withdrawn') AND successor IS NULL"


class TransferredPathwaysExist(RuntimeError):
    """A downgrade below 0005 met pathways the older release cannot read: nothing was changed."""


def _replace_index(where: str) -> None:
    op.drop_index(INDEX, table_name="pathways")
    op.create_index(
        INDEX, "pathways", ["patient_ref"], unique=True, sqlite_where=sa.text(where), postgresql_where=sa.text(where)
    )


def upgrade() -> None:
    _replace_index(OPEN)


def downgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT id FROM pathways WHERE phase = 'transferred' ORDER BY id"))
    ids = [row[0] for row in rows]
    if ids:
        raise TransferredPathwaysExist(
            "revision 0004 knows no phase 'transferred', but these pathways are in it: "
            f"{', '.join(ids)}. Keep this release for that database. Nothing was changed."
        )
    _replace_index(OPEN_BEFORE)
