"""playlists: items, playback, uploaded media

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "playlist_items",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("url", sa.String(2000), nullable=True),
        sa.Column("media_id", sa.String(32), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("added_by_id", sa.String(128), nullable=False),
        sa.Column("added_by_name", sa.String(50), nullable=False),
        sa.Column("added_by_verified", sa.Boolean(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playlist_items")),
    )
    op.create_index(op.f("ix_playlist_items_room_id"), "playlist_items", ["room_id"])
    op.create_table(
        "playlist_playback",
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("item_id", sa.String(32), nullable=True),
        sa.Column("position_s", sa.Float(), nullable=False),
        sa.Column("playing", sa.Boolean(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("repeat", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_playlist_playback")),
    )
    op.create_table(
        "media",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media")),
    )
    op.create_index(op.f("ix_media_room_id"), "media", ["room_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_media_room_id"), table_name="media")
    op.drop_table("media")
    op.drop_table("playlist_playback")
    op.drop_index(op.f("ix_playlist_items_room_id"), table_name="playlist_items")
    op.drop_table("playlist_items")
