"""The host's first table: care tasks.

Revision ID: h001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "care_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pathway_id", sa.String(36), nullable=False, index=True),
        sa.Column("title", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("care_tasks")
