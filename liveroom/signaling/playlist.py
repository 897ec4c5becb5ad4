"""Socket.IO handlers of the shared playlist: parse, call the playlist service, map the result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field

from liveroom.auth import Identity
from liveroom.errors import Invalid
from liveroom.permissions import Scope
from liveroom.playlist import model
from liveroom.playlist.service import PlaylistService
from liveroom.rooms.service import RoomService
from liveroom.signaling.payloads import Payload
from liveroom.signaling.registry import Ack, EventContext, EventRegistry, Subject
from liveroom.signaling.rooms import RoomRef


def _web_url(url: str) -> str:
    # The server never fetches it (no request forgery); players do. Only http(s).
    if not url.lower().startswith(("http://", "https://")) or len(url) < 9:
        raise ValueError("url must be an http(s) address")
    return url


WebUrl = Annotated[str, Field(min_length=9, max_length=2000), AfterValidator(_web_url)]


class AddPayload(RoomRef):
    url: WebUrl | None = None
    media_id: str | None = Field(default=None, min_length=1, max_length=32)
    title: str | None = Field(default=None, max_length=200)
    duration_s: float | None = Field(default=None, gt=0, le=24 * 3600)


class ItemRef(Payload):
    item_id: str = Field(min_length=1, max_length=32)


class MovePayload(ItemRef):
    position: int = Field(ge=0, le=10_000)


class PlayPayload(RoomRef):
    item_id: str | None = Field(default=None, min_length=1, max_length=32)


class SeekPayload(RoomRef):
    position_s: float = Field(ge=0, le=24 * 3600)


class RepeatPayload(RoomRef):
    on: bool


class ReadyPayload(RoomRef):
    item_id: str = Field(min_length=1, max_length=32)
    ready: bool


class SkipPayload(RoomRef):
    item_id: str | None = Field(default=None, min_length=1, max_length=32)


def register(registry: EventRegistry, rooms: RoomService, playlists: PlaylistService) -> None:
    async def resolve(identity: Identity, payload: Payload) -> Subject:
        assert isinstance(payload, ItemRef)
        room_id = await playlists.room_of(payload.item_id)
        return Subject(await rooms.standing(identity, room_id))

    registry.resolve_with(Scope.PLAYLIST_ITEM, resolve)

    async def add(ctx: EventContext, p: AddPayload) -> Ack:
        if (p.url is None) == (p.media_id is None):
            raise Invalid("give either url or media_id")
        return await playlists.add(
            ctx.identity, p.room_id, p.title, p.url, p.media_id, p.duration_s
        )

    async def on_item(ctx: EventContext, item_id: str, make: Callable[[int], model.Command]) -> Ack:
        room_id = await playlists.room_of(item_id)
        return await playlists.control(ctx.identity, room_id, make)

    async def approve(ctx: EventContext, p: ItemRef) -> Ack:
        return await on_item(ctx, p.item_id, lambda _: model.Approve(p.item_id))

    async def remove(ctx: EventContext, p: ItemRef) -> Ack:
        return await on_item(ctx, p.item_id, lambda at: model.Remove(p.item_id, at))

    async def move(ctx: EventContext, p: MovePayload) -> Ack:
        return await on_item(ctx, p.item_id, lambda _: model.Move(p.item_id, p.position))

    async def play(ctx: EventContext, p: PlayPayload) -> Ack:
        return await playlists.control(
            ctx.identity, p.room_id, lambda at: model.Play(start_at=at, item_id=p.item_id)
        )

    async def pause(ctx: EventContext, p: RoomRef) -> Ack:
        return await playlists.control(ctx.identity, p.room_id, lambda _: model.Pause())

    async def seek(ctx: EventContext, p: SeekPayload) -> Ack:
        return await playlists.control(
            ctx.identity, p.room_id, lambda at: model.Seek(p.position_s, at)
        )

    async def next_(ctx: EventContext, p: RoomRef) -> Ack:
        return await playlists.control(ctx.identity, p.room_id, model.Next)

    async def previous(ctx: EventContext, p: RoomRef) -> Ack:
        return await playlists.control(ctx.identity, p.room_id, model.Previous)

    async def repeat(ctx: EventContext, p: RepeatPayload) -> Ack:
        return await playlists.control(ctx.identity, p.room_id, lambda _: model.SetRepeat(p.on))

    async def vote_skip(ctx: EventContext, p: SkipPayload) -> Ack:
        # The service fills in who is present.
        return await playlists.control(
            ctx.identity, p.room_id, lambda at: model.VoteSkip(0, at, p.item_id)
        )

    registry.add("playlist:add", AddPayload, add)
    registry.add("playlist:approve", ItemRef, approve)
    registry.add("playlist:remove", ItemRef, remove)
    registry.add("playlist:move", MovePayload, move)
    registry.add("playlist:play", PlayPayload, play)
    registry.add("playlist:pause", RoomRef, pause)
    registry.add("playlist:seek", SeekPayload, seek)
    registry.add("playlist:next", RoomRef, next_)
    registry.add("playlist:previous", RoomRef, previous)
    registry.add("playlist:repeat", RepeatPayload, repeat)
    registry.add("playlist:vote_skip", SkipPayload, vote_skip)

    async def ready(ctx: EventContext, p: ReadyPayload) -> Ack:
        return await playlists.ready(ctx.identity, p.room_id, p.item_id, p.ready)

    registry.add("playlist:ready", ReadyPayload, ready)
