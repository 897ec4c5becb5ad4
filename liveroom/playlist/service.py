"""Every open room's playlist: commands decided by the pure model, written to SQL before the
ack, and told to the room at once as ``playlist:state`` (playback changes are rare and small:
one broadcast each). A ticker moves rooms on when a playing item of known length ends.

Starts are scheduled ahead so everyone starts together: ``at = now + max(2 × the highest round
trip reported by a member's socket, 500 ms)`` (clients report their round trip with
``time:sync``). In DJ mode nobody's player is waited for: the room's deck is the only one.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from liveroom.auth import Identity
from liveroom.clock import Clock
from liveroom.errors import Gone, NotFound
from liveroom.permissions import STAFF, playlist_controllers
from liveroom.playlist import model
from liveroom.playlist.dj import DjBooth, plays_in_the_room
from liveroom.playlist.model import Actor, Item, Playlist, PlaylistLimits
from liveroom.playlist.store import SqlPlaylistStore
from liveroom.rooms import model as stage_model
from liveroom.rooms.fanout import Emitter, room_channel
from liveroom.rooms.service import RoomService
from liveroom.rooms.stage import PlaylistMode, RoleChanged, RoomState, RoomStatus
from liveroom.rooms.views import user_view
from liveroom.tasks import KeyedLocks, Periodic, Spawned

logger = logging.getLogger(__name__)

TICK_S = 0.1
MIN_LEAD_MS = 500
MAX_RTT_MS = 2000
"""A reported round trip above this is a client in trouble, not a reason to delay everyone."""


class RoundTrips:
    """The latest round trip each socket reported (bounded by the sockets connected)."""

    def __init__(self) -> None:
        self._by_sid: dict[str, float] = {}

    def report(self, sid: str, rtt_ms: float) -> None:
        if math.isfinite(rtt_ms):
            self._by_sid[sid] = min(max(rtt_ms, 0.0), MAX_RTT_MS)

    def forget(self, sid: str) -> None:
        self._by_sid.pop(sid, None)

    def highest(self, sids: Iterable[str]) -> float:
        return max((self._by_sid.get(sid, 0.0) for sid in sids), default=0.0)


def item_view(item: Item, position: int | None) -> dict[str, Any]:
    """PROTOCOL.md's playlist item (uploaded media play from ``/media/{id}``)."""
    return {
        "id": item.id,
        "title": item.title,
        "url": item.url if item.url is not None else f"/media/{item.media_id}",
        "media_id": item.media_id,
        "duration_s": item.duration_s,
        "added_by": user_view(item.added_by),
        "position": position,
        "approved": item.approved,
    }


def _positions(playlist: Playlist) -> list[tuple[Item, int | None]]:
    """Each item with its place in the queue (``None`` for a suggestion)."""
    places = {item.id: n for n, item in enumerate(playlist.queue)}
    return [(item, places.get(item.id)) for item in playlist.items]


def playback_view(playlist: Playlist) -> dict[str, Any]:
    p = playlist.playback
    return {
        "item_id": p.item_id,
        "position_s": p.position_s,
        "playing": p.playing,
        "rate": p.rate,
        "at": p.at,
    }


class PlaylistService:
    def __init__(
        self,
        store: SqlPlaylistStore,
        rooms: RoomService,
        emitter: Emitter,
        clock: Clock,
        limits: PlaylistLimits,
        round_trips: RoundTrips,
        ready_timeout_ms: int = 5000,
        booth: DjBooth | None = None,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._emit = emitter
        self._clock = clock
        self.limits = limits
        self.round_trips = round_trips
        self.ready_timeout_ms = ready_timeout_ms
        self._booth = booth
        self._players: dict[str, dict[str, str | None]] = {}
        """Per room, who plays along (reported ``playlist:ready``) and the item they have ready."""
        self._versions: dict[str, int] = {}
        """Per room, grows with every change: clients keep the newest ``playlist:state``."""
        self._playlists: dict[str, Playlist] = {}
        self._room_of: dict[str, str] = {}
        self._lock = KeyedLocks()
        self._tasks = Spawned("playlist")
        self._ticker = Periodic("playlist-timer", TICK_S, self.tick, clock)

    async def start(self) -> None:
        self._ticker.start()

    async def stop(self) -> None:
        await self._ticker.stop()
        await self._tasks.stop()

    # --- reading -------------------------------------------------------------------------------

    async def room_of(self, item_id: str) -> str:
        room_id = self._room_of.get(item_id) or await self._store.room_of_item(item_id)
        if room_id is None:
            raise NotFound("no such playlist item")
        return room_id

    def start_at(self, room_id: str) -> int:
        """When a start asked for now should happen: everyone's commands have arrived by then."""
        sids = (sid for m in self._rooms.presence.members(room_id) for sid in m.sids)
        lead = max(2 * self.round_trips.highest(sids), MIN_LEAD_MS)
        return self._clock.now_ms() + round(lead)

    def state_view(self, playlist: Playlist, *, staff: bool, items: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "room_id": playlist.room_id,
            "version": self._versions.get(playlist.room_id, 0),
            "playback": playback_view(playlist),
            "repeat": playlist.repeat,
            "skip_votes": len(playlist.skip_votes),
            "skip_need": model.skip_need(self._rooms.presence.count(playlist.room_id), self.limits),
        }
        if items:
            view["items"] = [
                item_view(i, position)
                for i, position in _positions(playlist)
                if staff or i.approved
            ]
        return view

    # --- commands ------------------------------------------------------------------------------

    async def add(
        self,
        identity: Identity,
        room_id: str,
        title: str | None,
        url: str | None,
        media_id: str | None,
        duration_s: float | None,
    ) -> dict[str, Any]:
        if media_id is not None:
            media = await self._store.media(media_id)
            if media is None or media.room_id != room_id:
                raise NotFound("no such media in this room")
            title, duration_s = title or media.title, media.duration_s
        elif url is not None and not title:
            title = (url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or url)[:200]
        command = model.Add(secrets.token_hex(8), title or "", url, media_id, duration_s)
        playlist = await self._run(identity, room_id, lambda _: command)
        item = playlist.item(command.item_id)
        return {"item": item_view(item, dict(_positions(playlist))[item])}

    async def control(
        self, identity: Identity, room_id: str, make: Callable[[int], model.Command]
    ) -> dict[str, Any]:
        """A playback or queue command; ``make`` gets the scheduled start time."""
        playlist = await self._run(identity, room_id, make)
        return {"playback": playback_view(playlist)}

    async def _run(
        self, identity: Identity, room_id: str, make: Callable[[int], model.Command]
    ) -> Playlist:
        async with self._lock(room_id):
            state = self._rooms.state(room_id)
            old = await self._playlist(room_id)
            command = make(self.start_at(room_id))
            if isinstance(command, model.VoteSkip):
                present = self._rooms.presence.count(room_id)
                command = model.VoteSkip(present, command.start_at, command.item_id)
            actor = Actor(
                identity.user_id,
                identity.name,
                identity.verified,
                controls=self._controls(state, identity),
            )
            new = model.decide(old, command, actor, self._clock.now_ms(), self.limits)
            new = self._waiting(room_id, old, new)
            await self._commit(old, new)
        return new

    def _waiting(self, room_id: str, old: Playlist, new: Playlist) -> Playlist:
        """A new item waits for its players (up to the ready timeout) unless nobody plays along
        or all of them already have it; a seek or a pause and play during that wait keeps
        waiting for the same deadline."""
        state = self._rooms.get(room_id)
        in_room = state is not None and plays_in_the_room(state) and model.room_music(new)
        if state is None or in_room or self.ready_timeout_ms <= 0:
            return new
        if self._all_ready(room_id, new):
            return new
        now = self._clock.now_ms()
        held = old.playback
        if held.playing and held.at > now and held.item_id == new.playback.item_id:
            return model.start_later(new, held.at)
        return model.wait_for_players(old, new, now + self.ready_timeout_ms)

    def _all_ready(self, room_id: str, playlist: Playlist) -> bool:
        players = self._players.get(room_id, {})
        present = self._rooms.presence.is_present
        item_id = playlist.playback.item_id
        return all(ready == item_id for u, ready in players.items() if present(room_id, u))

    async def ready(
        self, identity: Identity, room_id: str, item_id: str, ready: bool
    ) -> dict[str, Any]:
        """A member's player has (or lost) ``item_id`` loaded; when every player has the current
        item, a start waiting for them happens now (plus the usual lead)."""
        async with self._lock(room_id):
            self._rooms.state(room_id)
            playlist = await self._playlist(room_id)
            players = self._players.setdefault(room_id, {})
            players[identity.user_id] = item_id if ready else None
            if self._all_ready(room_id, playlist):
                await self._commit(playlist, model.start_sooner(playlist, self.start_at(room_id)))
        return {}

    async def _commit(self, old: Playlist, new: Playlist) -> None:
        if new == old:
            return
        await self._store.write(old, new)
        self._playlists[new.room_id] = new
        self._versions[new.room_id] = self._versions.get(new.room_id, 0) + 1
        kept = {item.id for item in new.items}
        for item_id in kept:
            self._room_of[item_id] = new.room_id
        for item in old.items:
            if item.id not in kept:
                self._room_of.pop(item.id, None)
        self._follow(new.room_id)
        self._tasks.spawn(self._tell(new, items=new.items != old.items))

    def _follow(self, room_id: str) -> None:
        """DJ mode: the room's deck plays what the playlist now says."""
        state, playlist = self._rooms.get(room_id), self._playlists.get(room_id)
        if self._booth is not None and state is not None and playlist is not None:
            self._booth.follow(state, playlist)

    async def _tell(self, playlist: Playlist, *, items: bool) -> None:
        state = self._rooms.get(playlist.room_id)
        if state is None:
            return
        presence = self._rooms.presence
        staff_sids = [
            sid for u in self._rooms.staff_ids(state) for sid in presence.sids_of(state.id, u)
        ]
        if items:  # staff see suggestions; the rest the queue
            staff_view = self.state_view(playlist, staff=True, items=True)
            for sid in staff_sids:
                await self._emit.emit("playlist:state", staff_view, to=sid)
            audience = self.state_view(playlist, staff=False, items=True)
            await self._emit.emit(
                "playlist:state", audience, room=room_channel(state.id), skip_sid=staff_sids
            )
        else:
            view = self.state_view(playlist, staff=False, items=False)
            await self._emit.emit("playlist:state", view, room=room_channel(state.id))

    def _controls(self, state: RoomState, identity: Identity) -> bool:
        if identity.grants.admin:
            return True
        role = stage_model.role_of(state, identity.user_id)
        return role in playlist_controllers(state.settings.playlist_mode is PlaylistMode.OPEN)

    # --- joining, the timer, the stage ----------------------------------------------------------

    def joined(self, sid: str, identity: Identity, room_id: str) -> None:
        self._tasks.spawn(self._send_state(sid, identity.user_id, room_id, identity.grants.admin))

    async def _send_state(self, sid: str, user_id: str, room_id: str, admin: bool) -> None:
        state = self._rooms.state(room_id)
        playlist = await self._playlist(room_id)
        staff = admin or user_id in self._rooms.staff_ids(state)
        view = self.state_view(playlist, staff=staff, items=True)
        await self._emit.emit("playlist:state", view, to=sid)

    async def tick(self) -> None:
        now = self._clock.now_ms()
        for room_id, playlist in list(self._playlists.items()):
            if self._rooms.get(room_id) is None:
                self.forget(room_id)
                continue
            if not self._rooms.runs(room_id):  # several nodes: it may run elsewhere already
                continue
            deadline = model.ends_at(playlist)
            if deadline is None or deadline > now:
                continue
            try:
                async with self._lock(room_id):
                    current = self._playlists.get(room_id)
                    if current is not None:
                        moved = model.expire(current, now, self.start_at(room_id))
                        await self._commit(current, self._waiting(room_id, current, moved))
            except Exception:
                logger.exception(
                    "advancing the playlist of room %s failed",
                    room_id,
                    extra={"room_id": room_id},
                )
        self._lock.retain(set(self._playlists))

    def room_opened(self, state: RoomState) -> None:
        """A room back after a restart in DJ mode plays on: its deck follows the stored
        playlist (loaded now, not at its next change)."""
        if self._booth is not None and plays_in_the_room(state):
            self._tasks.spawn(self._load_and_follow(state.id))

    async def _load_and_follow(self, room_id: str) -> None:
        async with self._lock(room_id):
            await self._playlist(room_id)

    async def member_left(self, room_id: str, user_id: str) -> None:
        """Called while the room service takes the member out: only note it and go."""
        players = self._players.get(room_id)
        if players is not None and user_id in players:
            del players[user_id]
            self._tasks.spawn(self._maybe_start(room_id))

    async def _maybe_start(self, room_id: str) -> None:
        """The one everyone was waiting for left: the others may be ready."""
        async with self._lock(room_id):
            playlist = self._playlists.get(room_id)
            open_room = playlist is not None and self._rooms.get(room_id) is not None
            if open_room and playlist is not None and self._all_ready(room_id, playlist):
                sooner = model.start_sooner(playlist, self.start_at(room_id))
                await self._commit(playlist, sooner)

    async def stage_changed(self, state: RoomState, events: Iterable[Any]) -> None:
        if state.status is RoomStatus.ENDED:
            self.forget(state.id)
            return
        if state.id not in self._playlists:
            return
        self._follow(state.id)  # the host may have switched DJ mode on or off
        for event in events:  # staff see suggestions: a new view for whoever gained or lost it
            if isinstance(event, RoleChanged) and (event.old_role in STAFF) != (
                event.new_role in STAFF
            ):
                admin = event.user_id in self._rooms.presence.admins(state.id)
                for sid in self._rooms.presence.sids_of(state.id, event.user_id):
                    self._tasks.spawn(self._send_state(sid, event.user_id, state.id, admin))

    # --- housekeeping --------------------------------------------------------------------------

    async def _playlist(self, room_id: str) -> Playlist:
        playlist = self._playlists.get(room_id)
        if playlist is None:
            loaded = await self._store.load(room_id)
            if self._rooms.get(room_id) is None:
                raise Gone("the room has ended")
            playlist = self._playlists.setdefault(room_id, loaded)
            for item in playlist.items:
                self._room_of[item.id] = room_id
            self._follow(room_id)
        return playlist

    def forget(self, room_id: str) -> None:
        """Drop what is held of the room: it is over, or no longer runs on this node."""
        self._players.pop(room_id, None)
        self._versions.pop(room_id, None)
        playlist = self._playlists.pop(room_id, None)
        for item in playlist.items if playlist else ():
            self._room_of.pop(item.id, None)
