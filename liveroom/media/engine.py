"""The media engine behind a narrow boundary.

The rest of the server opens and closes rooms, hands over offers and gets answers, says who is
audible, and reads speaking levels; it never touches an aiortc object. That keeps the engine
movable into its own worker process when signaling load would make mixer ticks late.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from liveroom.errors import Conflict
from liveroom.media.counters import MixerStats, RtpCounts
from liveroom.media.deck import MusicCue
from liveroom.media.hls import HlsPackager
from liveroom.media.ice import announce_address, loopback_only_candidates, use_loopback_candidates
from liveroom.media.room import RoomMedia


class LevelWindow:
    """The loudest level of each speaker since the last :meth:`take`, per room."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, float]] = {}

    def add(self, room_id: str, levels: Mapping[str, float]) -> None:
        room = self._rooms.setdefault(room_id, {})
        for user_id, level in levels.items():
            room[user_id] = max(level, room.get(user_id, -127.0))

    def take(self, room_id: str) -> dict[str, float]:
        return self._rooms.pop(room_id, {})

    def forget(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)


@dataclass(frozen=True, slots=True)
class HlsSettings:
    """Where each room's HLS goes (``directory/room_id``) and how it is cut."""

    directory: Path
    segment_s: float = 1.0
    window: int = 6


class MediaEngine:
    def __init__(
        self,
        ice_urls: Sequence[str],
        now_ms: Callable[[], int],
        *,
        hls: HlsSettings | None = None,
        loopback_candidates: bool = False,
        public_address: str | None = None,
    ) -> None:
        self._ice_urls = list(ice_urls)
        self._public_address = public_address
        self._now_ms = now_ms
        self.hls = hls
        self._loopback = loopback_candidates
        self._rooms: dict[str, RoomMedia] = {}
        self.levels = LevelWindow()
        # What closed rooms counted: the totals below only ever grow (Prometheus counters).
        self._closed_mixer = MixerStats()
        self._closed_rtp = RtpCounts()
        self._closing: set[RoomMedia] = set()  # out of _rooms, not yet in the totals
        # Process-wide in aioice: set it either way, so one server's switch never leaks into
        # the next one made in the same process.
        use_loopback_candidates(loopback_candidates)

    def open_room(self, room_id: str, *, recording: bool) -> None:
        if room_id not in self._rooms:
            packager = None
            if self.hls is not None:
                packager = HlsPackager(
                    room_id,
                    self.hls.directory / room_id,
                    segment_s=self.hls.segment_s,
                    window=self.hls.window,
                    recording=recording,
                )
            room = RoomMedia(room_id, self._ice_urls, self.levels.add, self._now_ms, packager)
            self._rooms[room_id] = room
            room.start()

    def set_recording(self, room_id: str, on: bool) -> None:
        """From the next segment: keep every segment for the replay, or only the live window."""
        room = self._rooms.get(room_id)
        if room is not None and room.hls is not None:
            room.hls.recording = on

    async def close_room(self, room_id: str, *, ended: bool = True) -> None:
        room = self._rooms.pop(room_id, None)
        self.levels.forget(room_id)
        if room is not None:
            self._closing.add(room)
            try:
                # Not recorded: the live window stays for the listeners still a few seconds
                # behind; the retention sweep deletes it an hour later.
                await room.close(ended=ended)
            finally:
                self._closing.discard(room)
                self._closed_mixer.add(room.stats)
                self._closed_rtp.add(room.rtp_closed)

    async def offer(
        self, room_id: str, user_id: str, sdp: str, kind: str, *, may_publish: bool
    ) -> tuple[str, str]:
        room = self._rooms.get(room_id)
        if room is None:
            raise Conflict("the room has no audio: it is not live")
        if self._loopback:
            sdp = loopback_only_candidates(sdp)
        answer, answer_type = await room.offer(user_id, sdp, kind, may_publish)
        if self._public_address:
            answer = announce_address(answer, self._public_address)
        return answer, answer_type

    def set_audible(self, room_id: str, user_ids: frozenset[str]) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            room.set_audible(user_ids)

    def play(self, room_id: str, cue: MusicCue | None) -> None:
        """DJ mode: what the room's own deck plays into the mix (``None``: nothing)."""
        room = self._rooms.get(room_id)
        if room is not None:
            room.play(cue)

    async def drop_user(self, room_id: str, user_id: str) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            await room.drop(user_id)

    async def unpublish(self, room_id: str, user_id: str) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            await room.unpublish(user_id)

    def is_publishing(self, room_id: str, user_id: str) -> bool:
        room = self._rooms.get(room_id)
        peer = room.peers.get(user_id) if room else None
        return peer is not None and peer.publishing

    def room(self, room_id: str) -> RoomMedia | None:
        return self._rooms.get(room_id)

    @property
    def peer_connections(self) -> int:
        return sum(len(r.peers) for r in self._rooms.values())

    @property
    def open_rooms(self) -> int:
        return len(self._rooms)

    def mixer_totals(self) -> MixerStats:
        """Every room's mixer counts since the engine started, closed rooms' included."""
        totals = MixerStats()
        totals.add(self._closed_mixer)
        for room in (*self._rooms.values(), *self._closing):
            totals.add(room.stats)
        return totals

    async def rtp_totals(self) -> RtpCounts:
        """RTP packets of every connection since the engine started, closed ones' included."""
        totals = RtpCounts()
        totals.add(self._closed_rtp)
        # Taken in the same instant as the closed rooms' totals: a room closing meanwhile is
        # counted once, by itself.
        for room in (*self._rooms.values(), *self._closing):
            totals.add(await room.rtp_counts())
        return totals

    def hls_troubles(self) -> dict[str, str]:
        """Rooms whose HLS cannot write (a full or unwritable media dir), and what is wrong."""
        return {
            room_id: f"{room.hls.stats.write_errors} failed writes"
            for room_id, room in self._rooms.items()
            if room.hls is not None and not room.hls.stats.healthy
        }

    async def close(self) -> None:
        """The server is stopping: rooms stay live for its restart, so no HLS ends."""
        for room_id in list(self._rooms):
            await self.close_room(room_id, ended=False)
