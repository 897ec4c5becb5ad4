"""Tables. Times are epoch milliseconds (BigInteger), as everywhere in the protocol."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from liveroom.db.base import Base


class UserRow(Base):
    """Everyone the server has seen, as their latest token described them."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    guest: Mapped[bool] = mapped_column(Boolean, default=False)
    market: Mapped[str | None] = mapped_column(String(2), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)


class RoomRow(Base):
    """A room and the durable part of its stage (roles granted, pre-assigned staff).

    Raised hands, invitations and mutes are live state only: they are not worth a write per tap,
    and after a restart every microphone starts muted anyway.
    """

    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host_id: Mapped[str] = mapped_column(String(128), index=True)
    title: Mapped[str] = mapped_column(String(200))
    topics: Mapped[list[str]] = mapped_column(JSON)
    market: Mapped[str | None] = mapped_column(String(2), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    scheduled_for: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    stage: Mapped[dict[str, Any]] = mapped_column(JSON)


class RoomBanRow(Base):
    __tablename__ = "room_bans"

    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    by_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    at: Mapped[int] = mapped_column(BigInteger)


class ServerBanRow(Base):
    """Banned from every room by an admin."""

    __tablename__ = "server_bans"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    by_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    at: Mapped[int] = mapped_column(BigInteger)


class ReminderRow(Base):
    __tablename__ = "room_reminders"

    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuditRow(Base):
    """Who did what to whom, when: every moderation action, written before it is acknowledged."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[int] = mapped_column(BigInteger)
    actor_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    detail: Mapped[str] = mapped_column(String(500))


class ParticipationRow(Base):
    """One stretch of presence of a user in a room (batched, about once a second)."""

    __tablename__ = "participation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(16))
    market: Mapped[str | None] = mapped_column(String(16), nullable=True)
    joined_at: Mapped[int] = mapped_column(BigInteger)
    left_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ReportRow(Base):
    """A member's report of a user or a question, for moderators (written before the ack)."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(32), index=True)
    reporter_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    question_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    at: Mapped[int] = mapped_column(BigInteger)


class QuestionRow(Base):
    """A fan's question (written before the ack; votes counted here and listed below)."""

    __tablename__ = "questions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(32), index=True)
    author_id: Mapped[str] = mapped_column(String(128))
    author_name: Mapped[str] = mapped_column(String(50))
    author_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(String(2000))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    votes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    answered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    brought: Mapped[bool] = mapped_column(Boolean, default=False)


class QuestionVoteRow(Base):
    """One user's vote for one question: the primary key makes a second vote impossible."""

    __tablename__ = "question_votes"

    question_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)


class PlaylistItemRow(Base):
    """An item of a room's playlist; ``position`` is its place in the room's list."""

    __tablename__ = "playlist_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(32), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    media_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    added_by_id: Mapped[str] = mapped_column(String(128))
    added_by_name: Mapped[str] = mapped_column(String(50))
    added_by_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    approved: Mapped[bool] = mapped_column(Boolean, default=True)


class PlaybackRow(Base):
    """A room's playback as of its last transition (after a restart it resumes paused there)."""

    __tablename__ = "playlist_playback"

    room_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    position_s: Mapped[float] = mapped_column(Float)
    playing: Mapped[bool] = mapped_column(Boolean)
    rate: Mapped[float] = mapped_column(Float)
    at: Mapped[int] = mapped_column(BigInteger)
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)


class MediaRow(Base):
    """A file uploaded to a room (probed with PyAV): played by the room's members."""

    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(String(100))
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    uploaded_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[int] = mapped_column(BigInteger)


class UserBlockRow(Base):
    """One user hiding another one's reactions and questions from their own view.

    ``name`` and ``verified`` are the blocked user's as they were when blocked (the list shows
    the ``users`` row's when there is one)."""

    __tablename__ = "user_blocks"

    blocker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    blocked_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[int] = mapped_column(BigInteger)


# Tables kept by their features' packages, registered on the same metadata (migrations, tests).
from liveroom.stats import tables  # noqa: E402,F401
