"""The initial schema: pathways, the append-only entries log and its guard triggers.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written out in full (it does not import persistence.models) so that it keeps meaning what it
meant when it was released; a test checks the models still match the migrated database.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_MESSAGE = "entries are append-only"

SQLITE_TRIGGERS = (
    f"""
    CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
    BEGIN
        SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}');
    END
    """,
    f"""
    CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    BEGIN
        SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}');
    END
    """,
)

# restrict_violation (23001) makes drivers report an integrity error, as SQLite's RAISE does.
POSTGRESQL_TRIGGERS = (
    f"""
    CREATE FUNCTION hsct_entries_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' USING ERRCODE = 'restrict_violation';
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION hsct_entries_append_only()
    """,
    """
    CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION hsct_entries_append_only()
    """,
)


def _dialect() -> str:
    name = op.get_context().dialect.name
    if name not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"no append-only triggers for {name!r}; use SQLite or PostgreSQL")
    return name


def upgrade() -> None:
    dialect = _dialect()
    op.create_table(
        "pathways",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("patient_ref", sa.String(64), nullable=False),
        sa.Column("route", sa.String(32), nullable=False),
        sa.Column("donor_type", sa.String(32), nullable=True),
        sa.Column("graft_source", sa.String(32), nullable=False),
        sa.Column("hct_number", sa.Integer(), nullable=False),
        sa.Column("previous_pathway", sa.String(36), nullable=True),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pathways")),
        sa.ForeignKeyConstraint(
            ["previous_pathway"], ["pathways.id"], name=op.f("fk_pathways_previous_pathway_pathways")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_pathways_version_positive")),
    )
    op.create_index(op.f("ix_pathways_phase"), "pathways", ["phase"])

    op.create_table(
        "entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("pathway_id", sa.String(36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("from_phase", sa.String(32), nullable=True),
        sa.Column("to_phase", sa.String(32), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("corrects", sa.Integer(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.ForeignKeyConstraint(["pathway_id"], ["pathways.id"], name=op.f("fk_entries_pathway_id_pathways")),
        sa.UniqueConstraint("pathway_id", "sequence", name=op.f("uq_entries_pathway_id_sequence")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_entries_idempotency_key")),
        sa.CheckConstraint("sequence >= 1", name=op.f("ck_entries_sequence_positive")),
    )
    op.create_index(op.f("ix_entries_recorded_at"), "entries", ["recorded_at"])
    op.create_index(op.f("ix_entries_actor_id"), "entries", ["actor_id"])
    op.create_index(op.f("ix_entries_trigger"), "entries", ["trigger"])

    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    dialect = _dialect()
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS entries_no_delete")
        op.execute("DROP TRIGGER IF EXISTS entries_no_update")
    else:
        op.execute("DROP TRIGGER IF EXISTS entries_no_truncate ON entries")
        op.execute("DROP TRIGGER IF EXISTS entries_append_only ON entries")
        op.execute("DROP FUNCTION IF EXISTS hsct_entries_append_only()")
    op.drop_table("entries")
    op.drop_table("pathways")
