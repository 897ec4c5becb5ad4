"""A room leaving a node that lives on: handed over on purpose (SIGTERM), or lost (its lease
lapsed in a long pause or while Redis was away, and another node may run it already).

Either way the room stops here at once: its state and presence go (:meth:`RoomService.let_go`),
its mixer, peer connections and HLS writer close (the HLS left open: the room goes on elsewhere),
its Q&A and playlist are forgotten, its listener counting stops, and the other nodes' sockets
that were only here for it are forgotten. Its stage is no longer written to Redis (the lease is
gone from this node, and the write is fenced by the lease's holder anyway).

- **Handed over**: the figures are written before the lease is released, so the next node counts
  on from them and nothing written here later overwrites its own. This node's sockets are about
  to close (a shutdown): they come back through another node.
- **Lost**: the figures are not written (the node that has the room may have counted on already);
  this node's sockets that were in the room join it where it runs now and are told there to offer
  their media again (:meth:`~liveroom.cluster.routing.ClusterRouter.rehome`). The node that took
  the room over gathered the members of every other node.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from liveroom.cluster.node import ClusterNode
from liveroom.cluster.routing import ClusterRouter
from liveroom.media.stage_audio import StageAudio
from liveroom.playlist.service import PlaylistService
from liveroom.qa.service import QaService
from liveroom.rooms.fanout import room_channel
from liveroom.rooms.service import RoomService
from liveroom.stats.service import StatsService

logger = logging.getLogger(__name__)

MembersHere = Callable[[str], list[str]]
"""This node's sockets in a Socket.IO room."""


class Handover:
    def __init__(
        self,
        node: ClusterNode,
        router: ClusterRouter,
        rooms: RoomService,
        audio: StageAudio,
        qa: QaService,
        playlists: PlaylistService,
        stats: StatsService,
        members_here: MembersHere,
    ) -> None:
        self._router = router
        self._rooms = rooms
        self._audio = audio
        self._qa = qa
        self._playlists = playlists
        self._stats = stats
        self._members_here = members_here
        node.handing_over.append(self.hand_over)
        node.lost.append(self.lost)

    async def hand_over(self, room_id: str) -> None:
        """Before the lease is released on purpose."""
        await self.leave(room_id, write_figures=True)

    async def lost(self, room_id: str) -> None:
        """After this node found it no longer holds the room's lease."""
        sids = self._members_here(room_channel(room_id))
        if await self.leave(room_id, write_figures=False):
            logger.warning(
                "room %s: lost while this node lived; its %d sockets here join it where it runs",
                room_id,
                len(sids),
                extra={"room_id": room_id},
            )
            self._router.rehome(room_id, sids)

    async def leave(self, room_id: str, *, write_figures: bool) -> bool:
        """The room stops here (also a takeover that failed half way); ``False`` if it was not
        open here."""
        state = await self._rooms.let_go(room_id)
        if state is None:
            return False
        await self._stats.moved(room_id, write=write_figures)
        await self._audio.room_left(room_id)
        self._qa.forget(room_id)
        self._playlists.forget(room_id)
        await self._router.forget_absent()
        return True
