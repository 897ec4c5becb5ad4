"""Where the listener counts come from: the rooms. A stage observer that starts and ends each
room's counting, and the rooms' first-join hook that counts a user in; everything else is the
stats service's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from liveroom.auth import GUEST_PREFIX
from liveroom.rooms.presence import Presence
from liveroom.rooms.stage import RoomEnded, RoomStarted, RoomState, RoomStatus, RoomUpdated
from liveroom.stats.service import StatsService


class ListenerCounting:
    def __init__(self, stats: StatsService, presence: Presence) -> None:
        self._stats = stats
        self._presence = presence

    def room_opened(self, state: RoomState) -> None:
        """A live room (created, started, or back after a restart) counts from now; whoever is
        already there (a host waiting in a scheduled room's lobby) counts in too."""
        if state.status is not RoomStatus.LIVE:
            return
        self._stats.room_started(
            state.id, state.host, state.title, market=state.market, started_at=state.started_at
        )
        for member in self._presence.members(state.id):
            guest = member.user_id.startswith(GUEST_PREFIX)
            self._stats.joined(state.id, member.user_id, guest=guest, market=member.market)

    async def stage_changed(self, state: RoomState, events: Iterable[Any]) -> None:
        for event in events:
            if isinstance(event, RoomStarted):  # a scheduled room, in its lobby until now
                self.room_opened(state)
            elif isinstance(event, RoomUpdated):
                self._stats.renamed(state.id, state.title)
            elif isinstance(event, RoomEnded):
                await self._stats.room_ended(state.id)

    async def member_left(self, room_id: str, user_id: str) -> None:
        self._stats.left(room_id, user_id)

    def first_join(self, room_id: str, user_id: str, *, guest: bool, market: str | None) -> None:
        self._stats.joined(room_id, user_id, guest=guest, market=market)
