"""user_blocks: whom each user hides reactions and questions of

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_blocks",
        sa.Column("blocker_id", sa.String(128), nullable=False),
        sa.Column("blocked_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("blocker_id", "blocked_id", name=op.f("pk_user_blocks")),
    )


def downgrade() -> None:
    op.drop_table("user_blocks")
