"""Where rooms are kept.

- :class:`StageStore` — the live stage state of every open room. :class:`MemoryStageStore` is the
  one-node store; the Redis store (several nodes) sits beside it behind the same Protocol.
- :class:`SqlRoomStore` — what must survive a restart, written before an action is acknowledged:
  rooms and settings, roles granted, bans, reminders, the audit log. Participation history is
  batched by :class:`liveroom.rooms.participation.ParticipationLog`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveroom.db.models import (
    AuditRow,
    ReminderRow,
    ReportRow,
    RoomBanRow,
    RoomRow,
    ServerBanRow,
)
from liveroom.permissions import Role
from liveroom.rooms.stage import (
    Audited,
    Away,
    OnHostLeave,
    PlaylistMode,
    PlaylistOutput,
    QaMode,
    RoomSettings,
    RoomState,
    RoomStatus,
    StaffAssignment,
    UserInfo,
)
from liveroom.rooms.views import settings_view


class StageStore(Protocol):
    """Live stage states by room id."""

    def get(self, room_id: str) -> RoomState | None: ...

    def put(self, state: RoomState) -> None: ...

    def drop(self, room_id: str) -> None: ...

    def __iter__(self) -> Iterator[RoomState]: ...


class MemoryStageStore:
    def __init__(self) -> None:
        self._rooms: dict[str, RoomState] = {}

    def get(self, room_id: str) -> RoomState | None:
        return self._rooms.get(room_id)

    def put(self, state: RoomState) -> None:
        self._rooms[state.id] = state

    def drop(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)

    def __iter__(self) -> Iterator[RoomState]:
        return iter(list(self._rooms.values()))


# --- the durable projection of a stage ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DurableStage:
    """The part of a :class:`RoomState` that is written at once when it changes."""

    title: str
    topics: tuple[str, ...]
    status: RoomStatus
    scheduled_for: int | None
    started_at: int | None
    ended_at: int | None
    host: str
    cohosts: tuple[str, ...]
    moderators: tuple[str, ...]
    speakers: tuple[str, ...]
    staff_assignments: tuple[StaffAssignment, ...]
    settings: RoomSettings
    people: tuple[UserInfo, ...]

    @classmethod
    def of(cls, state: RoomState) -> DurableStage:
        seated = {
            state.host,
            *state.cohosts,
            *state.moderators,
            *state.speakers,
            *(a.user_id for a in state.staff_assignments),
        }
        return cls(
            title=state.title,
            topics=state.topics,
            status=state.status,
            scheduled_for=state.scheduled_for,
            started_at=state.started_at,
            ended_at=state.ended_at,
            host=state.host,
            cohosts=state.cohosts,
            moderators=state.moderators,
            speakers=state.speakers,
            staff_assignments=state.staff_assignments,
            settings=state.settings,
            people=tuple(p for p in state.people if p.id in seated),
        )


def settings_from_json(data: dict[str, Any]) -> RoomSettings:
    default = RoomSettings()
    return RoomSettings(
        qa_mode=QaMode(data.get("qa_mode", default.qa_mode)),
        playlist_mode=PlaylistMode(data.get("playlist_mode", default.playlist_mode)),
        playlist_output=PlaylistOutput(data.get("playlist_output", default.playlist_output)),
        recording=bool(data.get("recording", default.recording)),
        on_host_leave=OnHostLeave(data.get("on_host_leave", default.on_host_leave)),
        qa_return_to_audience=bool(
            data.get("qa_return_to_audience", default.qa_return_to_audience)
        ),
    )


def _stage_json(durable: DurableStage) -> dict[str, Any]:
    return {
        "cohosts": list(durable.cohosts),
        "moderators": list(durable.moderators),
        "speakers": list(durable.speakers),
        "staff": [{"user_id": a.user_id, "role": a.role.value} for a in durable.staff_assignments],
        "people": [{"id": p.id, "name": p.name, "verified": p.verified} for p in durable.people],
    }


def _row_values(state: RoomState) -> dict[str, Any]:
    durable = DurableStage.of(state)
    return {
        "id": state.id,
        "host_id": state.host,
        "title": state.title,
        "topics": list(state.topics),
        "market": state.market,
        "status": state.status.value,
        "scheduled_for": state.scheduled_for,
        "created_at": state.created_at,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "settings": settings_view(state.settings),
        "stage": _stage_json(durable),
    }


def state_from_row(row: RoomRow, banned: Iterable[str] = ()) -> RoomState:
    """The stage as it was written: roles and seats, no hands, invitations or mutes."""
    stage = row.stage
    return RoomState(
        id=row.id,
        title=row.title,
        host=row.host_id,
        status=RoomStatus(row.status),
        created_at=row.created_at,
        topics=tuple(row.topics),
        market=row.market,
        scheduled_for=row.scheduled_for,
        started_at=row.started_at,
        ended_at=row.ended_at,
        cohosts=tuple(stage.get("cohosts", ())),
        moderators=tuple(stage.get("moderators", ())),
        speakers=tuple(stage.get("speakers", ())),
        banned=frozenset(banned),
        staff_assignments=tuple(
            StaffAssignment(a["user_id"], Role(a["role"])) for a in stage.get("staff", ())
        ),
        people=tuple(UserInfo(p["id"], p["name"], p["verified"]) for p in stage.get("people", ())),
        settings=settings_from_json(row.settings),
    )


class SqlRoomStore:
    """Rooms, bans, reminders and the audit log in SQL (SQLite or PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def _insert(self, session: AsyncSession) -> Any:
        return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert

    async def save(
        self,
        state: RoomState,
        *,
        new_bans: Iterable[tuple[str, str | None]] = (),
        audit: Iterable[Audited] = (),
        now_ms: int = 0,
    ) -> None:
        """Write the room (created or changed), its new bans and audit entries in one
        transaction."""
        values = _row_values(state)
        async with self._sessions.begin() as session:
            insert = self._insert(session)
            stmt = insert(RoomRow).values(values)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[RoomRow.id],
                    set_={k: stmt.excluded[k] for k in values if k not in {"id", "created_at"}},
                )
            )
            bans = [
                {"room_id": state.id, "user_id": user_id, "by_id": by, "at": now_ms}
                for user_id, by in new_bans
            ]
            if bans:
                await session.execute(insert(RoomBanRow).values(bans).on_conflict_do_nothing())
            entries = [
                {
                    "room_id": state.id,
                    "at": now_ms,
                    "actor_id": a.actor_id or None,
                    "action": a.action.value,
                    "target_id": a.target_id,
                    "detail": a.detail[:500],
                }
                for a in audit
            ]
            if entries:
                await session.execute(insert(AuditRow).values(entries))

    async def open_rooms(self) -> list[RoomState]:
        """Every live or scheduled room, with its bans: what a restarting node rebuilds."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(RoomRow).where(RoomRow.status.in_(["live", "scheduled"]))
                )
            ).all()
            bans: dict[str, list[str]] = {}
            if rows:
                for ban in await session.scalars(
                    select(RoomBanRow).where(RoomBanRow.room_id.in_([r.id for r in rows]))
                ):
                    bans.setdefault(ban.room_id, []).append(ban.user_id)
        return [state_from_row(r, bans.get(r.id, ())) for r in rows]

    async def get(self, room_id: str) -> RoomState | None:
        async with self._sessions() as session:
            row = await session.get(RoomRow, room_id)
            if row is None:
                return None
            bans = await session.scalars(
                select(RoomBanRow.user_id).where(RoomBanRow.room_id == room_id)
            )
            return state_from_row(row, bans)

    async def ended(self, limit: int) -> list[RoomState]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(RoomRow)
                .where(RoomRow.status == RoomStatus.ENDED.value)
                .order_by(RoomRow.ended_at.desc())
                .limit(limit)
            )
            return [state_from_row(r) for r in rows]

    async def set_reminder(self, room_id: str, user_id: str, on: bool, now_ms: int) -> None:
        async with self._sessions.begin() as session:
            if on:
                row = {"room_id": room_id, "user_id": user_id, "created_at": now_ms}
                await session.execute(
                    self._insert(session)(ReminderRow).values(row).on_conflict_do_nothing()
                )
            else:
                await session.execute(
                    delete(ReminderRow).where(
                        ReminderRow.room_id == room_id, ReminderRow.user_id == user_id
                    )
                )

    async def reminded(self, room_id: str) -> list[str]:
        async with self._sessions() as session:
            return list(
                await session.scalars(
                    select(ReminderRow.user_id).where(ReminderRow.room_id == room_id)
                )
            )

    async def ban_everywhere(self, user_id: str, by_id: str, now_ms: int) -> None:
        async with self._sessions.begin() as session:
            row = {"user_id": user_id, "by_id": by_id, "at": now_ms}
            await session.execute(
                self._insert(session)(ServerBanRow).values(row).on_conflict_do_nothing()
            )

    async def server_bans(self) -> set[str]:
        async with self._sessions() as session:
            return set(await session.scalars(select(ServerBanRow.user_id)))

    async def add_report(
        self,
        room_id: str,
        reporter_id: str,
        user_id: str | None,
        question_id: str | None,
        reason: str,
        now_ms: int,
    ) -> ReportRow:
        row = ReportRow(
            room_id=room_id,
            reporter_id=reporter_id,
            user_id=user_id,
            question_id=question_id,
            reason=reason,
            at=now_ms,
        )
        async with self._sessions.begin() as session:
            session.add(row)
            await session.flush()  # its id, for the staff's queue
        return row

    async def reports(self, room_id: str) -> list[ReportRow]:
        async with self._sessions() as session:
            return list(
                await session.scalars(
                    select(ReportRow).where(ReportRow.room_id == room_id).order_by(ReportRow.id)
                )
            )

    async def audit_log(self, room_id: str) -> list[AuditRow]:
        async with self._sessions() as session:
            return list(
                await session.scalars(
                    select(AuditRow).where(AuditRow.room_id == room_id).order_by(AuditRow.id)
                )
            )


def report_view(row: ReportRow) -> dict[str, Any]:
    """A report as staff see it (``room:reported``, the reports export)."""
    return {
        "id": row.id,
        "at": row.at,
        "reporter_id": row.reporter_id,
        "user_id": row.user_id,
        "question_id": row.question_id,
        "reason": row.reason,
    }


def durable_changed(old: RoomState, new: RoomState) -> bool:
    return DurableStage.of(old) != DurableStage.of(new) or old.market != new.market


def restored(state: RoomState, now_ms: int, speaker_grace_ms: int, host_grace_ms: int) -> RoomState:
    """A room read back after a restart: everyone on stage is away until they rejoin within
    their grace period, and every microphone is muted."""
    if state.status is not RoomStatus.LIVE:
        return state
    members = (*state.cohosts, *state.moderators, *state.speakers)
    away = (
        Away(state.host, now_ms + host_grace_ms),
        *(Away(m, now_ms + speaker_grace_ms) for m in members),
    )
    return replace(state, away=away, muted=frozenset({state.host, *state.cohosts, *state.speakers}))
