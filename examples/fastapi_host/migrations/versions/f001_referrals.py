"""The host's tables: referral requests and its own command log.

Revision ID: f001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pathway_id", sa.String(36), nullable=False, unique=True),
        sa.Column("requested_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "command_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pathway_id", sa.String(36), nullable=False, index=True),
        sa.Column("command", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("command_log")
    op.drop_table("referral_requests")
