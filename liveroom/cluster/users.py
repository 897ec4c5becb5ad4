"""What every node must hear about a user: a server-wide ban, and a changed block list.

SQL holds both for good; each node keeps what it needs of them in memory (the bans, to refuse
connections and joins; the lists of blockers present in its rooms). A change is made on one node,
written, then told to every other live node on the bus:

- ``banned``: each node refuses the user from now on, removes them from the rooms it runs, and
  closes their sockets there. The admin's ack waits until every node has done so.
- ``blocks``: each node reads the user's list again if it holds it (the user is connected there,
  or in a room run there), and sends them what they see there again. A list it does not hold is
  read from SQL when the user comes (:meth:`~liveroom.blocks.service.BlockService.admit`).
"""

from __future__ import annotations

import logging
from typing import Any

from liveroom.auth import Identity
from liveroom.blocks.service import BlockService
from liveroom.cluster.bus import Bus
from liveroom.cluster.node import ClusterNode
from liveroom.cluster.routing import identity_body, identity_of
from liveroom.rooms.service import RoomService

logger = logging.getLogger(__name__)


class UserNews:
    def __init__(
        self, node: ClusterNode, bus: Bus, rooms: RoomService, blocks: BlockService
    ) -> None:
        self._node = node
        self._bus = bus
        self._rooms = rooms
        self._blocks = blocks
        bus.handle("banned", self._banned)
        bus.handle("blocks", self._blocks_changed)
        rooms.server_banned.append(self.banned)
        blocks.changed.append(self.blocks_changed)

    async def banned(self, actor: Identity, user_id: str) -> None:
        """A server-wide ban made here: made on every other node before this returns."""
        body = {"actor": identity_body(actor), "user_id": user_id}
        missed = await self._bus.call_each(await self._node.nodes_now(), "banned", body)
        if missed:
            logger.error(
                "server ban of user %s: nodes %s did not answer; they refuse the user once they "
                "restart",
                user_id,
                ", ".join(missed),
                extra={"user_id": user_id},
            )

    async def blocks_changed(self, identity: Identity) -> None:
        """A user's block list changed here: every other node reads it again."""
        body = {"identity": identity_body(identity)}
        await self._bus.call_each(await self._node.nodes_now(), "blocks", body)

    async def _banned(self, body: dict[str, Any]) -> dict[str, Any]:
        await self._rooms.banned_everywhere(identity_of(body["actor"]), str(body["user_id"]))
        return {}

    async def _blocks_changed(self, body: dict[str, Any]) -> dict[str, Any]:
        await self._blocks.reload(identity_of(body["identity"]))
        return {}
