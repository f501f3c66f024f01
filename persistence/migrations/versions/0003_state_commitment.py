"""Canonical form 2 (state commitment) and one open pathway per patient.

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-01

entries: `facts_digest`, `origin`, `release` (hashed in canonical form 2; null in entries
sealed before) and `form`, the canonical form that sealed the entry (1 for every existing
row, by the column default: no existing entry is updated, so the append-only triggers stay as
they are and keep covering every column, old and new).

pathways: `successor`, the linked subsequent-transplant pathway (a foreign key deferred to
commit), filled in for existing links from `previous_pathway`; and a partial unique index on
`patient_ref` over pathways outside the terminal phases without a successor. An existing
database where a patient already has two such pathways is refused before anything changes,
with the offending pathway ids (never patient data) and how to resolve it.
Written out in full, like 0001 and 0002, so that it keeps meaning what it meant when released.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "phase NOT IN ('day100_complete', 'deceased', 'withdrawn') AND successor IS NULL"
SUCCESSOR_FK = "fk_pathways_successor_pathways"


class OpenPathwaysConflict(RuntimeError):
    """The database already has patients with more than one open pathway: nothing was changed."""


# Before the column exists: open, and not the earlier pathway of a subsequent transplant
# (which gets a successor below).
_OPEN_BEFORE = (
    "phase NOT IN ('day100_complete', 'deceased', 'withdrawn') "
    "AND NOT EXISTS (SELECT 1 FROM pathways AS later WHERE later.previous_pathway = pathways.id)"
)


def _refuse_duplicates() -> None:
    rows = op.get_bind().execute(
        sa.text(
            f"SELECT id FROM pathways WHERE {_OPEN_BEFORE} AND patient_ref IN "
            f"(SELECT patient_ref FROM pathways WHERE {_OPEN_BEFORE} GROUP BY patient_ref HAVING COUNT(*) > 1) "
            "ORDER BY patient_ref, created_at, id"
        )
    )
    ids = [row[0] for row in rows]
    if ids:
        raise OpenPathwaysConflict(
            "revision 0003 needs at most one open pathway per patient, but these pathways share a patient "
            f"with another open one: {', '.join(ids)}. With the release you have, close all but one of each "
            "patient's open pathways through the library (withdraw the duplicate referral, with its reason, so the "
            "log says why), then upgrade again. Nothing was changed."
        )


def upgrade() -> None:
    _refuse_duplicates()
    op.add_column("entries", sa.Column("facts_digest", sa.String(64), nullable=True))
    op.add_column("entries", sa.Column("origin", sa.String(128), nullable=True))
    op.add_column("entries", sa.Column("release", sa.String(64), nullable=True))
    op.add_column("entries", sa.Column("form", sa.Integer(), server_default=sa.text("1"), nullable=False))

    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:  # SQLite adds a foreign key only inline with the column (Alembic would need a rebuild)
        op.execute(
            f"ALTER TABLE pathways ADD COLUMN successor VARCHAR(36) CONSTRAINT {SUCCESSOR_FK} "
            "REFERENCES pathways (id) DEFERRABLE INITIALLY DEFERRED"
        )
    else:
        op.add_column("pathways", sa.Column("successor", sa.String(36), nullable=True))
    # Existing subsequent transplants: the earlier pathway's successor is the one naming it.
    op.execute(
        "UPDATE pathways SET successor = (SELECT MIN(later.id) FROM pathways AS later "
        "WHERE later.previous_pathway = pathways.id) "
        "WHERE EXISTS (SELECT 1 FROM pathways AS later WHERE later.previous_pathway = pathways.id)"
    )
    op.create_index(
        "uq_pathways_open_patient",
        "pathways",
        ["patient_ref"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    if not sqlite:  # after the index: PostgreSQL cannot index a table with deferred checks pending
        op.create_foreign_key(
            SUCCESSOR_FK, "pathways", "pathways", ["successor"], ["id"], deferrable=True, initially="DEFERRED"
        )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN on both backends (SQLite 3.35+): a batch rebuild of a
    # SQLite table would drop the append-only triggers of entries and trip the foreign keys.
    op.drop_index("uq_pathways_open_patient", table_name="pathways")
    if op.get_context().dialect.name != "sqlite":
        op.drop_constraint(SUCCESSOR_FK, "pathways", type_="foreignkey")
    op.execute("ALTER TABLE pathways DROP COLUMN successor")
    for name in ("form", "release", "origin", "facts_digest"):
        op.execute(f"ALTER TABLE entries DROP COLUMN {name}")
