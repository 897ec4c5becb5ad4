"""Keeps the media engine in step with the stage, and tells members what they need to know.

- Who is audible is a pure function of the stage (:func:`audible`): host, co-hosts and speakers,
  minus the muted and the away. It is pushed to the engine after every stage change, so a muted,
  demoted or removed speaker is out of every mix from the next tick, whatever their client does.
- A role change that gains or loses the microphone sends that user ``rtc:restart``: their
  client offers again with the new direction.
- Leaving, removal and room end close the user's (or room's) peer connections.
- ``speaking``: each speaker's loudest level since the last message, at most 4 per second per
  room, only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from liveroom.clock import Clock
from liveroom.errors import Conflict, Forbidden, Gone
from liveroom.media.engine import MediaEngine
from liveroom.permissions import STAGE, Role
from liveroom.rooms.fanout import Emitter, room_channel
from liveroom.rooms.stage import RoleChanged, RoomEnded, RoomState, RoomStatus
from liveroom.tasks import Periodic

SPEAKING_INTERVAL_S = 0.25
SPEAKING_FLOOR_DBOV = -60  # quieter than this is not speaking; reported as -127
SPEAKING_STEP_DB = 6  # levels in 6 dB steps: rings need no more, and steady speech sends less

SidsInRoom = Callable[[str, str], set[str]]


def audible(state: RoomState) -> frozenset[str]:
    """Who is in the mix: everyone on stage who is neither muted nor away."""
    away = {a.user_id for a in state.away}
    on_stage = {state.host, *state.cohosts, *state.speakers}
    return frozenset(on_stage - state.muted - away)


def speaking_levels(levels: dict[str, float], audible_now: frozenset[str]) -> dict[str, int]:
    """Whole dBov per audible speaker; silence and the inaudible are -127."""
    return {
        user_id: (
            int(round(level / SPEAKING_STEP_DB) * SPEAKING_STEP_DB)
            if level >= SPEAKING_FLOOR_DBOV
            else -127
        )
        for user_id, level in levels.items()
        if user_id in audible_now
    }


class StageAudio:
    def __init__(
        self,
        engine: MediaEngine,
        emitter: Emitter,
        sids_in_room: SidsInRoom,
        is_present: Callable[[str, str], bool],
        clock: Clock,
        webrtc_audience: int | None = None,
    ) -> None:
        self.engine = engine
        self._webrtc_audience = webrtc_audience
        self._emit = emitter
        self._sids = sids_in_room
        self._present = is_present
        self._audible: dict[str, frozenset[str]] = {}
        self._last_levels: dict[str, dict[str, int]] = {}
        self._speaking = Periodic("speaking", SPEAKING_INTERVAL_S, self.send_levels, clock)

    def start(self) -> None:
        self._speaking.start()

    async def stop(self) -> None:
        await self._speaking.stop()
        await self.engine.close()

    def room_opened(self, state: RoomState) -> None:
        if state.status is RoomStatus.LIVE:
            self.engine.open_room(state.id, recording=state.settings.recording)
            self.engine.set_recording(state.id, state.settings.recording)
            self._set_audible(state)

    async def stage_changed(self, state: RoomState, events: Iterable[Any]) -> None:
        self.room_opened(state)  # a scheduled room that just started
        for event in events:
            if isinstance(event, RoleChanged):
                await self._role_changed(state.id, event)
            elif isinstance(event, RoomEnded):
                await self.engine.close_room(state.id)
                self._forget(state.id)

    async def room_left(self, room_id: str) -> None:
        """The room goes on on another node: its media closes here, its HLS left open."""
        await self.engine.close_room(room_id, ended=False)
        self._forget(room_id)

    def _forget(self, room_id: str) -> None:
        self._audible.pop(room_id, None)
        self._last_levels.pop(room_id, None)

    async def member_left(self, room_id: str, user_id: str) -> None:
        await self.engine.drop_user(room_id, user_id)

    async def offer(
        self, state: RoomState, user_id: str, role: Role, sdp: str, kind: str
    ) -> dict[str, str]:
        """Answer a member's offer. Only members present in the room get a connection (staff
        included): its owner is their presence, which closes it when they leave."""
        if not self._present(state.id, user_id):
            raise Forbidden("rtc:offer: join the room first")
        if role not in STAGE and self._webrtc_full(state.id, user_id):
            raise Conflict("the room's WebRTC listener seats are taken: listen over HLS")
        answer, answer_type = await self.engine.offer(
            state.id, user_id, sdp, kind, may_publish=role in STAGE
        )
        if not self._present(state.id, user_id):  # left while the answer was made
            await self.engine.drop_user(state.id, user_id)
            raise Gone("no longer in the room")
        return {"sdp": answer, "type": answer_type}

    def _webrtc_full(self, room_id: str, user_id: str) -> bool:
        """The audience past ``--webrtc-audience`` listens over HLS (the join ack tells them);
        a listener who already has a connection keeps it (an offer again replaces it)."""
        room = self.engine.room(room_id)
        if self._webrtc_audience is None or room is None or user_id in room.peers:
            return False
        listening = sum(1 for peer in room.peers.values() if not peer.publishing)
        return listening >= self._webrtc_audience

    def _set_audible(self, state: RoomState) -> None:
        now = audible(state)
        if self._audible.get(state.id) != now:
            self._audible[state.id] = now
            self.engine.set_audible(state.id, now)

    async def _role_changed(self, room_id: str, event: RoleChanged) -> None:
        if event.new_role is None:
            await self.engine.drop_user(room_id, event.user_id)
            return
        had_mic = event.old_role in STAGE
        has_mic = event.new_role in STAGE
        if not has_mic:
            # Out of every mix already (audible set); stop decoding and encoding for them too,
            # whether or not their client ever offers again.
            await self.engine.unpublish(room_id, event.user_id)
        if had_mic != has_mic or self.engine.is_publishing(room_id, event.user_id) != has_mic:
            reason = "on stage" if has_mic else "off stage"
            for sid in self._sids(room_id, event.user_id):
                await self._emit.emit("rtc:restart", {"room_id": room_id, "reason": reason}, to=sid)

    async def send_levels(self) -> None:
        for room_id, audible_now in list(self._audible.items()):
            levels = speaking_levels(self.engine.levels.take(room_id), audible_now)
            if levels != self._last_levels.get(room_id, {}):
                self._last_levels[room_id] = levels
                await self._emit.emit(
                    "speaking", {"room_id": room_id, "levels": levels}, room=room_channel(room_id)
                )
