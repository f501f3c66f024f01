"""The policy registry: every policy version's full content, stored once, append-only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-03-15

`policies` holds, per policy version (the `policy_version` entries carry), the policy's
canonical JSON, its sha256, when it was registered and by which release. Like `entries` it is
append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), so the rules that
judged an entry cannot be changed after the fact. Existing databases start with an empty
registry: the content of policies used before this revision was never stored (docs/versioning.md
says how a host registers them). Written out in full, like 0001-0003.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "policies are append-only"

SQLITE_TRIGGERS = tuple(
    f"""
    CREATE TRIGGER policies_no_{action.lower()} BEFORE {action} ON policies
    BEGIN
        SELECT RAISE(ABORT, '{MESSAGE}');
    END
    """
    for action in ("UPDATE", "DELETE")
)

POSTGRESQL_TRIGGERS = (
    f"""
    CREATE FUNCTION hsct_policies_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER policies_append_only BEFORE UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION hsct_policies_append_only()
    """,
    """
    CREATE TRIGGER policies_no_truncate BEFORE TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION hsct_policies_append_only()
    """,
)


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policies")),
    )
    sqlite = op.get_context().dialect.name == "sqlite"
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS policies_no_delete")
        op.execute("DROP TRIGGER IF EXISTS policies_no_update")
    else:
        op.execute("DROP TRIGGER IF EXISTS policies_no_truncate ON policies")
        op.execute("DROP TRIGGER IF EXISTS policies_append_only ON policies")
        op.execute("DROP FUNCTION IF EXISTS hsct_policies_append_only()")
    op.drop_table("policies")
