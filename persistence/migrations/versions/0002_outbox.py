"""The transactional outbox: one row per entry, marked when a host handler has taken it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01

Not append-only: delivery updates `delivered_at`, `attempts` and `last_error`, and delivered
rows may be pruned. Entries recorded before this revision get their row already delivered
(delivered_at = recorded_at, attempts 0), so that every entry has exactly one outbox row and
upgrading a live database does not send its whole history again.
Written out in full, like 0001, so that it keeps meaning what it meant when released.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "delivered_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("pathway_id", sa.String(36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(97), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.ForeignKeyConstraint(["pathway_id"], ["pathways.id"], name=op.f("fk_outbox_pathway_id_pathways")),
        sa.UniqueConstraint("pathway_id", "sequence", name=op.f("uq_outbox_pathway_id_sequence")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_attempts_not_negative")),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["pathway_id", "sequence"],
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )
    op.execute(
        "INSERT INTO outbox (pathway_id, sequence, entry_hash, topic, created_at, delivered_at, attempts) "
        "SELECT pathway_id, sequence, hash, kind || '.' || trigger, recorded_at, recorded_at, 0 "
        "FROM entries ORDER BY pathway_id, sequence"
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
