"""A room whose node died is taken over by another: its stage from Redis, its members gathered
from the nodes still alive, its media rebuilt, every member told to renegotiate.

1. The lease lapsed (≤ its TTL after the owner's last renewal); the least loaded node claims it
   first (:func:`~liveroom.cluster.model.claim_delay_s`), atomically.
2. The stage is read back as the dead owner last wrote it (hands, invitations, mutes, grace
   deadlines, version), else from SQL as after a restart.
3. Every node says which of its sockets were in the room (``members``); each is joined again
   here as if it had sent ``room:join``, so it gets the room's state, the whole Q&A and the
   playlist again. Members whose sockets died with the node start their grace period: they
   reconnect to another node and join again in time to keep their place.
4. ``rtc:restart`` (reason ``media moved``) to the room: clients offer again, to this node.

A takeover that fails after its claim lets the room go again at once (the lease released), for
the next node's turn, rather than holding it unrun until this node stops renewing it — even if
leaving fails half way. So does one whose lease is lost while it runs (a pause while the stage is
read): the lease is checked again once the room is open here, and once its members are gathered,
so a room lost before it opened here does not stay open here unowned.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from liveroom.cluster.bus import Bus
from liveroom.cluster.handover import Handover
from liveroom.cluster.node import ClusterNode
from liveroom.cluster.routing import ClusterRouter, identity_body, identity_of
from liveroom.cluster.store import ClusterStore, Lease
from liveroom.errors import LiveroomError
from liveroom.rooms.fanout import Emitter, room_channel
from liveroom.rooms.service import NotRunHere, RoomService
from liveroom.rooms.stage import RoomStatus
from liveroom.signaling.dispatch import Caller, Signaling
from liveroom.stats.service import StatsService

logger = logging.getLogger(__name__)

GATHER_TIMEOUT_S = 2.0


class Takeover:
    def __init__(
        self,
        node: ClusterNode,
        store: ClusterStore,
        bus: Bus,
        router: ClusterRouter,
        rooms: RoomService,
        signaling: Signaling,
        emitter: Emitter,
        members_here: Any,
        stats: StatsService,
        handover: Handover,
    ) -> None:
        self._stats = stats
        self._handover = handover
        self._node = node
        self._store = store
        self._bus = bus
        self._router = router
        self._rooms = rooms
        self._signaling = signaling
        self._emit = emitter
        self._members_here = members_here
        bus.handle("members", self._members)
        node.orphaned.append(self.take_over)

    async def take_over(self, room_id: str) -> bool:
        previous = await self._store.stage_writer(room_id)  # before this node writes it
        if not await self._node.claim(room_id):
            return False  # another node was quicker
        lease = self._node.leases.get(room_id)
        if lease is None:
            return False  # lost while it was claimed: given up by the node
        try:
            return await self._run(lease, previous)
        except NotRunHere:
            logger.warning(
                "room %s: its lease was lost while it was taken over; letting it go",
                room_id,
                extra={"room_id": room_id},
            )
        except Exception:
            logger.exception("room %s: taking it over failed; letting it go", room_id)
        await self._abandon(room_id)
        return False

    async def _abandon(self, room_id: str) -> None:
        """The room leaves this node, and its lease goes even if leaving fails half way."""
        try:
            await self._handover.leave(room_id, write_figures=False)
        except Exception:
            logger.exception("room %s: leaving it after a failed takeover failed", room_id)
        finally:
            await self._node.let_go(room_id)

    def _still_held(self, lease: Lease) -> None:
        """``NotRunHere`` if the lease was lost since the claim (with no await before the room
        opened here, or after it was opened: a lease lost from then on finds it open)."""
        if not self._node.holds(lease):
            raise NotRunHere()

    async def _run(self, lease: Lease, previous: str | None) -> bool:
        room_id = lease.room_id
        state = await self._store.stage(room_id)
        if state is None:
            state = await self._rooms.stored(room_id)
        if state is None or state.status is RoomStatus.ENDED:
            await self._node.let_go(room_id)
            await self._store.forget_room(room_id)
            return False
        if not await self._rooms.adopt(state):  # NotRunHere: the lease lapsed meanwhile
            return True
        self._still_held(lease)  # the same token: not lost, and not claimed again since
        # Everyone the room ever had, as its node kept them in Redis: those it had not written
        # to SQL yet still count once (a join and a leave; those written are returning users).
        for user_id, (guest, market) in (await self._store.listeners(room_id)).items():
            self._stats.joined(room_id, user_id, guest=guest, market=market)
            self._stats.left(room_id, user_id)
        # Every node but the one that ran the room, at once: it is dead, or going away on
        # purpose, or it lost the room while it lived and sends its members here itself. When
        # that node is this one (the room lost and taken back), its members are gathered too.
        me = self._node.node_id
        nodes = (self._node.alive_nodes | {me}) - ({previous} - {me})
        joined = sum(await asyncio.gather(*(self._gather(room_id, n) for n in sorted(nodes))))
        await self._rooms.settle(room_id)
        self._still_held(lease)
        restart = {"room_id": room_id, "reason": "media moved"}
        await self._emit.emit("rtc:restart", restart, room=room_channel(room_id))
        logger.warning(
            "room %s taken over by node %s: %d sockets joined again",
            room_id,
            self._node.node_id,
            joined,
            extra={"room_id": room_id},
        )
        return True

    async def _gather(self, room_id: str, node_id: str) -> int:
        if node_id == self._node.node_id:
            found = await self._members({"room_id": room_id})
        else:
            try:
                found = await self._bus.call(
                    node_id, "members", {"room_id": room_id}, timeout=GATHER_TIMEOUT_S
                )
            except LiveroomError as e:
                logger.info("room %s: node %s did not say who is there: %s", room_id, node_id, e)
                return 0
        joined = 0
        for member in found.get("members", []):
            caller = Caller(str(member["sid"]), identity_of(member["identity"]))
            payload = {"room_id": room_id, **({"market": m} if (m := member.get("market")) else {})}
            joined += await self._router.join_found(caller, node_id, payload)
        return joined

    async def _members(self, body: dict[str, Any]) -> dict[str, Any]:
        """This node's sockets in a room (another node is taking it over)."""
        room_id = str(body["room_id"])
        members = []
        for sid in self._members_here(room_channel(room_id)):
            conn = self._signaling.connections.get(sid)
            if conn is not None:
                members.append({"sid": sid, "identity": identity_body(conn.identity)})
        return {"members": members}
