"""stats: listener samples, room records, per-market figures, listeners seen

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _figures() -> list[sa.Column[Any]]:
    return [
        sa.Column("peak", sa.Integer(), nullable=False),
        sa.Column("peak_signed_in", sa.Integer(), nullable=False),
        sa.Column("peak_at", sa.BigInteger(), nullable=False),
        sa.Column("unique_listeners", sa.Integer(), nullable=False),
        sa.Column("unique_signed_in", sa.Integer(), nullable=False),
        sa.Column("unique_at", sa.BigInteger(), nullable=False),
        sa.Column("listen_ms", sa.BigInteger(), nullable=False),
        sa.Column("listen_ms_signed_in", sa.BigInteger(), nullable=False),
        sa.Column("minutes_at", sa.BigInteger(), nullable=False),
        sa.Column("presences", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "listener_samples",
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("listeners", sa.Integer(), nullable=False),
        sa.Column("peak", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "at", name=op.f("pk_listener_samples")),
    )
    op.create_table(
        "room_records",
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("host_id", sa.String(128), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("market", sa.String(2), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        *_figures(),
        sa.Column("replay_plays", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_room_records")),
    )
    op.create_index(op.f("ix_room_records_peak_at"), "room_records", ["peak_at"])
    op.create_index(op.f("ix_room_records_unique_at"), "room_records", ["unique_at"])
    op.create_index(op.f("ix_room_records_minutes_at"), "room_records", ["minutes_at"])
    op.create_index("ix_room_records_peak_rank", "room_records", ["peak", "peak_at"])
    op.create_index(
        "ix_room_records_unique_rank", "room_records", ["unique_listeners", "unique_at"]
    )
    op.create_index("ix_room_records_minutes_rank", "room_records", ["listen_ms", "minutes_at"])
    op.create_index(
        "ix_room_records_host_artists",
        "room_records",
        ["host_id", "unique_at", "unique_listeners", "unique_signed_in"],
    )
    op.create_table(
        "room_markets",
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("host_id", sa.String(128), nullable=False),
        *_figures(),
        sa.PrimaryKeyConstraint("room_id", "market", name=op.f("pk_room_markets")),
    )
    op.create_index("ix_room_markets_peak_rank", "room_markets", ["market", "peak", "peak_at"])
    op.create_index(
        "ix_room_markets_unique_rank",
        "room_markets",
        ["market", "unique_listeners", "unique_at"],
    )
    op.create_index(
        "ix_room_markets_minutes_rank", "room_markets", ["market", "listen_ms", "minutes_at"]
    )
    op.create_index(
        "ix_room_markets_market_artists",
        "room_markets",
        ["market", "host_id", "unique_at", "unique_listeners", "unique_signed_in"],
    )
    op.create_index(
        "ix_room_markets_host_markets",
        "room_markets",
        ["host_id", "market", "unique_at", "unique_listeners", "unique_signed_in", "listen_ms"],
    )
    op.create_table(
        "room_listeners",
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("guest", sa.Boolean(), nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("first_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_room_listeners")),
    )


def downgrade() -> None:
    op.drop_table("room_listeners")
    for name in (
        "ix_room_markets_host_markets",
        "ix_room_markets_market_artists",
        "ix_room_markets_minutes_rank",
        "ix_room_markets_unique_rank",
        "ix_room_markets_peak_rank",
    ):
        op.drop_index(name, table_name="room_markets")
    op.drop_table("room_markets")
    for name in (
        "ix_room_records_host_artists",
        "ix_room_records_minutes_rank",
        "ix_room_records_unique_rank",
        "ix_room_records_peak_rank",
        op.f("ix_room_records_minutes_at"),
        op.f("ix_room_records_unique_at"),
        op.f("ix_room_records_peak_at"),
    ):
        op.drop_index(name, table_name="room_records")
    op.drop_table("room_records")
    op.drop_table("listener_samples")
