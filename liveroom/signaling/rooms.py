"""Socket.IO handlers of rooms and the stage: parse, call one service method, map the result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from pydantic import Field

from liveroom.auth import Identity
from liveroom.errors import Forbidden, Invalid
from liveroom.media.stage_audio import StageAudio
from liveroom.permissions import Role, Scope
from liveroom.rooms import model
from liveroom.rooms.service import NewRoom, RoomService, actor_of
from liveroom.rooms.stage import (
    Accept,
    Approve,
    CancelHand,
    Command,
    Decline,
    Demote,
    EndRoom,
    Mute,
    OnHostLeave,
    PlaylistMode,
    PlaylistOutput,
    QaMode,
    RaiseHand,
    Remove,
    RoomSettings,
    StaffAssignment,
    Unmute,
    UpdateRoom,
)
from liveroom.signaling.payloads import Payload
from liveroom.signaling.registry import Ack, EventContext, EventRegistry, Subject

RoomId = Field(min_length=1, max_length=32)
UserId = Field(min_length=1, max_length=128)
MARKET = r"^[A-Za-z]{2}$"


class Settings(Payload):
    qa_mode: Literal["premoderated", "open", "off"] | None = None
    playlist_mode: Literal["host", "open"] | None = None
    playlist_output: Literal["clients", "room"] | None = None
    recording: bool | None = None
    on_host_leave: Literal["handover", "end"] | None = None
    qa_return_to_audience: bool | None = None

    def to_settings(self) -> RoomSettings:
        default = RoomSettings()
        return RoomSettings(
            qa_mode=QaMode(self.qa_mode or default.qa_mode),
            playlist_mode=PlaylistMode(self.playlist_mode or default.playlist_mode),
            playlist_output=PlaylistOutput(self.playlist_output or default.playlist_output),
            recording=default.recording if self.recording is None else self.recording,
            on_host_leave=OnHostLeave(self.on_host_leave or default.on_host_leave),
            qa_return_to_audience=(
                default.qa_return_to_audience
                if self.qa_return_to_audience is None
                else self.qa_return_to_audience
            ),
        )


class StaffEntry(Payload):
    user_id: str = UserId
    role: Literal["cohost", "moderator"]


MAX_TIME_MS = 2**53 - 1
"""The largest time a client can mean (JavaScript's exact integers; SQL's BIGINT holds it)."""


class CreateRoom(Payload):
    title: str = Field(min_length=1, max_length=120)
    topics: list[str] = Field(default_factory=list, max_length=5)
    scheduled_for: int | None = Field(default=None, ge=0, le=MAX_TIME_MS)
    market: str | None = Field(default=None, pattern=MARKET)
    settings: Settings | None = None
    staff: list[StaffEntry] = Field(default_factory=list, max_length=12)


class RoomRef(Payload):
    room_id: str = RoomId


class JoinRoom(RoomRef):
    market: str | None = Field(default=None, pattern=MARKET)


class UpdateRoomPayload(RoomRef):
    title: str | None = Field(default=None, min_length=1, max_length=120)
    settings: Settings | None = None


class Remind(RoomRef):
    on: bool


class Target(RoomRef):
    user_id: str = UserId


class Offer(Target):
    """An offer to the target (approve a raised hand, invite): not a moderating action, so an
    admin is offered it by their role like anyone."""


class InvitePayload(Offer):
    role: Literal["speaker", "cohost", "moderator"]


class RemovePayload(Target):
    ban: bool = False
    everywhere: bool = False  # admins: a server-wide ban


class MembersPayload(RoomRef):
    query: str = Field(default="", max_length=50)
    cursor: str | None = Field(default=None, max_length=200)


class Report(RoomRef):
    user_id: str | None = Field(default=None, min_length=1, max_length=128)
    question_id: str | None = Field(default=None, min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)


class RtcOffer(RoomRef):
    sdp: str = Field(min_length=1, max_length=20_000)
    type: Literal["offer"]


class React(RoomRef):
    emoji: str = Field(min_length=1, max_length=16)


MediaInfo = Callable[[Identity, str], dict[str, Any]]
"""The join ack's ``media`` for a user joining a room."""


class Questions(Protocol):
    """What the rooms' events need of Q&A: reported questions must exist."""

    async def ensure_question(self, room_id: str, question_id: str) -> None: ...


JoinHook = Callable[[str, Identity, str], None]
"""Told of each join (sid, identity, room id) before its ack: features send their first state
after it (Q&A's list, the playlist)."""


def register(
    registry: EventRegistry,
    rooms: RoomService,
    audio: StageAudio,
    media_info: MediaInfo,
    questions: Questions,
    on_join: Sequence[JoinHook],
) -> None:
    """Add the room events and the resolver that finds a user's standing in a room."""

    async def resolve(identity: Identity, payload: Payload) -> Subject:
        assert isinstance(payload, RoomRef)
        actor = await rooms.standing(identity, payload.room_id)
        if not isinstance(payload, Target):
            return Subject(actor)
        return Subject(
            actor,
            target=rooms.target_standing(
                payload.room_id, payload.user_id, moderated=not isinstance(payload, Offer)
            ),
            is_self=payload.user_id == identity.user_id,
            granted_role=Role(payload.role) if isinstance(payload, InvitePayload) else None,
        )

    registry.resolve_with(Scope.ROOM, resolve)

    async def create(ctx: EventContext, p: CreateRoom) -> Ack:
        topics = tuple(t.strip() for t in p.topics if t.strip())
        new = NewRoom(
            title=p.title,
            topics=topics,
            scheduled_for=p.scheduled_for,
            market=p.market.upper() if p.market else None,
            settings=p.settings.to_settings() if p.settings else None,
            staff=tuple(StaffAssignment(s.user_id, Role(s.role)) for s in p.staff),
        )
        return {"room": await rooms.create(ctx.identity, new)}

    async def join(ctx: EventContext, p: JoinRoom) -> Ack:
        room = await rooms.join(ctx.sid, ctx.identity, p.room_id, p.market, ctx.region)
        reactions = list(rooms.config.reactions)
        for hook in on_join:  # what they send goes after this ack
            hook(ctx.sid, ctx.identity, p.room_id)
        return {"room": room, "media": media_info(ctx.identity, p.room_id), "reactions": reactions}

    async def rtc_offer(ctx: EventContext, p: RtcOffer) -> Ack:
        state = rooms.state(p.room_id)
        role = model.role_of(state, ctx.identity.user_id) or Role.LISTENER
        return await audio.offer(state, ctx.identity.user_id, role, p.sdp, p.type)

    async def leave(ctx: EventContext, p: RoomRef) -> Ack:
        await rooms.leave(ctx.sid, ctx.identity, p.room_id)
        return {}

    async def update(ctx: EventContext, p: UpdateRoomPayload) -> Ack:
        s = p.settings or Settings()
        command = UpdateRoom(
            title=p.title,
            qa_mode=QaMode(s.qa_mode) if s.qa_mode else None,
            playlist_mode=PlaylistMode(s.playlist_mode) if s.playlist_mode else None,
            playlist_output=PlaylistOutput(s.playlist_output) if s.playlist_output else None,
            recording=s.recording,
            on_host_leave=OnHostLeave(s.on_host_leave) if s.on_host_leave else None,
            qa_return_to_audience=s.qa_return_to_audience,
        )
        state = await rooms.apply(p.room_id, command, actor_of(ctx.identity))
        return {"room": rooms.view_for(state, ctx.identity.user_id)}

    async def start(ctx: EventContext, p: RoomRef) -> Ack:
        state = await rooms.start_room(p.room_id, actor_of(ctx.identity))
        return {"room": rooms.view_for(state, ctx.identity.user_id)}

    async def remind(ctx: EventContext, p: Remind) -> Ack:
        await rooms.remind(ctx.identity, p.room_id, p.on)
        return {}

    async def invite(ctx: EventContext, p: InvitePayload) -> Ack:
        await rooms.invite(p.room_id, actor_of(ctx.identity), p.user_id, Role(p.role))
        return {}

    registry.add("room:create", CreateRoom, create)
    registry.add("room:join", JoinRoom, join, limit="joins")
    registry.add("room:leave", RoomRef, leave)
    registry.add("room:update", UpdateRoomPayload, update)
    registry.add("room:start", RoomRef, start)
    registry.add("room:remind", Remind, remind)
    registry.add("stage:invite", InvitePayload, invite)
    registry.add("rtc:offer", RtcOffer, rtc_offer, limit="offers")
    _stage_commands(registry, rooms)
    _member_events(registry, rooms, questions)


def _stage_commands(registry: EventRegistry, rooms: RoomService) -> None:
    """Events that are one stage command and an empty ack."""

    def simple(event: str, make: Callable[[], Command]) -> None:
        async def run(ctx: EventContext, p: RoomRef) -> Ack:
            await rooms.apply(p.room_id, make(), actor_of(ctx.identity))
            return {}

        registry.add(event, RoomRef, run)

    def targeted(
        event: str, make: type[Approve | Demote | Mute], payload: type[Target] = Target
    ) -> None:
        async def run(ctx: EventContext, p: Target) -> Ack:
            await rooms.apply(p.room_id, make(p.user_id), actor_of(ctx.identity))
            return {}

        registry.add(event, payload, run)

    simple("room:end", EndRoom)
    simple("stage:request", RaiseHand)
    simple("stage:cancel", CancelHand)
    simple("stage:accept", Accept)
    simple("stage:decline", Decline)
    simple("stage:unmute", Unmute)
    targeted("stage:approve", Approve, Offer)
    targeted("stage:demote", Demote)
    targeted("stage:mute", Mute)


def _member_events(registry: EventRegistry, rooms: RoomService, questions: Questions) -> None:
    """Member search and removal, reports and reactions."""

    async def members(ctx: EventContext, p: MembersPayload) -> Ack:
        found, cursor = rooms.members(p.room_id, p.query, p.cursor)
        return {"members": found, "cursor": cursor}

    async def remove(ctx: EventContext, p: RemovePayload) -> Ack:
        if p.everywhere:
            if not ctx.identity.grants.admin:
                raise Forbidden("only an admin bans server-wide")
            await rooms.ban_everywhere(ctx.identity, p.user_id)
            return {}
        await rooms.apply(p.room_id, Remove(p.user_id, p.ban), actor_of(ctx.identity))
        return {}

    async def report(ctx: EventContext, p: Report) -> Ack:
        reason = " ".join(p.reason.split())
        if not reason:
            raise Invalid("reason: say what is wrong")
        if p.question_id is not None:
            await questions.ensure_question(p.room_id, p.question_id)
        await rooms.report(ctx.identity, p.room_id, p.user_id, p.question_id, reason)
        return {}

    async def react(ctx: EventContext, p: React) -> Ack:
        rooms.react(p.room_id, p.emoji, ctx.identity.user_id)
        return {}

    registry.add("room:members", MembersPayload, members)
    registry.add("room:remove", RemovePayload, remove)
    registry.add("room:report", Report, report, limit="reports")
    registry.add("react", React, react, limit="reactions")
