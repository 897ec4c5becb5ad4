"""The stats tables, on the one declarative :class:`~liveroom.db.base.Base`.

Times are epoch milliseconds; listening time is kept in milliseconds (shown in whole minutes).
The indexes are the rankings' access paths; ``docs/rankings.md`` shows the plans that use them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from liveroom.db.base import Base


class ListenerSampleRow(Base):
    """The live count of a room every sampling interval while it is live (the chart)."""

    __tablename__ = "listener_samples"

    room_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    listeners: Mapped[int] = mapped_column(Integer)
    peak: Mapped[int] = mapped_column(Integer)
    """The highest live count since the previous sample (a spike between samples still shows)."""


class RoomRecordRow(Base):
    """A room's figures: upserted every interval while live, final once it ends."""

    __tablename__ = "room_records"

    room_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    market: Mapped[str | None] = mapped_column(String(2), nullable=True)
    started_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    peak: Mapped[int] = mapped_column(Integer)
    peak_signed_in: Mapped[int] = mapped_column(Integer)
    peak_at: Mapped[int] = mapped_column(BigInteger, index=True)
    unique_listeners: Mapped[int] = mapped_column(Integer)
    unique_signed_in: Mapped[int] = mapped_column(Integer)
    unique_at: Mapped[int] = mapped_column(BigInteger, index=True)
    listen_ms: Mapped[int] = mapped_column(BigInteger)
    listen_ms_signed_in: Mapped[int] = mapped_column(BigInteger)
    minutes_at: Mapped[int] = mapped_column(BigInteger, index=True)
    presences: Mapped[int] = mapped_column(Integer)
    replay_plays: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        # Rankings walk these backwards and stop after `limit` rows.
        Index("ix_room_records_peak_rank", "peak", "peak_at"),
        Index("ix_room_records_unique_rank", "unique_listeners", "unique_at"),
        Index("ix_room_records_minutes_rank", "listen_ms", "minutes_at"),
        # A host's rooms; covering for the artists ranking (no table reads while grouping).
        Index(
            "ix_room_records_host_artists",
            "host_id",
            "unique_at",
            "unique_listeners",
            "unique_signed_in",
        ),
    )


class RoomMarketRow(Base):
    """A room's figures among its listeners of one market (the world map, in-market rankings).

    ``host_id`` is copied from the room so a host's markets and in-market artist rankings read
    this table alone.
    """

    __tablename__ = "room_markets"

    room_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    market: Mapped[str] = mapped_column(String(16), primary_key=True)
    host_id: Mapped[str] = mapped_column(String(128))
    peak: Mapped[int] = mapped_column(Integer)
    peak_signed_in: Mapped[int] = mapped_column(Integer)
    peak_at: Mapped[int] = mapped_column(BigInteger)
    unique_listeners: Mapped[int] = mapped_column(Integer)
    unique_signed_in: Mapped[int] = mapped_column(Integer)
    unique_at: Mapped[int] = mapped_column(BigInteger)
    listen_ms: Mapped[int] = mapped_column(BigInteger)
    listen_ms_signed_in: Mapped[int] = mapped_column(BigInteger)
    minutes_at: Mapped[int] = mapped_column(BigInteger)
    presences: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_room_markets_peak_rank", "market", "peak", "peak_at"),
        Index("ix_room_markets_unique_rank", "market", "unique_listeners", "unique_at"),
        Index("ix_room_markets_minutes_rank", "market", "listen_ms", "minutes_at"),
        # Covering: in-market artist rankings, and a host's world map.
        Index(
            "ix_room_markets_market_artists",
            "market",
            "host_id",
            "unique_at",
            "unique_listeners",
            "unique_signed_in",
        ),
        Index(
            "ix_room_markets_host_markets",
            "host_id",
            "market",
            "unique_at",
            "unique_listeners",
            "unique_signed_in",
            "listen_ms",
        ),
    )


class RoomListenerRow(Base):
    """Every user ever present in a room, once: after a restart the room's unique count carries
    on exactly (a returning user is not counted again)."""

    __tablename__ = "room_listeners"

    room_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    guest: Mapped[bool] = mapped_column(Boolean)
    market: Mapped[str] = mapped_column(String(16))
    first_at: Mapped[int] = mapped_column(BigInteger)
