"""One node among several: its heartbeat, the leases of the rooms it runs, and what it does when
another node dies.

Every second the node writes its heartbeat (id, URL, load) and renews the leases of its rooms in
one round trip; a lease it lost (a long pause, Redis away) is given up at once. It reads which
nodes are alive: the sockets of one that stopped beating leave this node's rooms, so the counts
drop within the heartbeat's time to live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from liveroom.clock import Clock
from liveroom.cluster.model import (
    HEARTBEAT_TTL_S,
    LEASE_TTL_S,
    RENEW_EVERY_S,
    TRUST_MARGIN_S,
    NodeInfo,
    claim_delay_s,
    lease_trusted,
    least_loaded,
)
from liveroom.cluster.routing import ClusterRouter
from liveroom.cluster.store import ClusterStore, Fenced, Lease
from liveroom.rooms.stage import RoomEnded, RoomState
from liveroom.tasks import Periodic, Spawned

logger = logging.getLogger(__name__)

Load = Callable[[], dict[str, int]]
"""The node's load now: ``rooms``, ``sockets``, ``peers``."""


class ClusterNode:
    """The node's part in the cluster: heartbeat, leases, dead nodes."""

    def __init__(
        self,
        node_id: str,
        url: str,
        store: ClusterStore,
        router: ClusterRouter,
        clock: Clock,
        load: Load,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.node_id = node_id
        self.url = url
        self._store = store
        self._router = router
        self._clock = clock
        self._load = load
        self._ttl = lease_ttl_s
        self.leases: dict[str, Lease] = {}
        self._renewed_at: float = 0.0
        self._alive: set[str] = set()
        self._beaten = False
        self._cpu_last = (time.monotonic(), time.process_time())
        self._beat = Periodic("cluster-heartbeat", RENEW_EVERY_S, self.tick, clock)
        self._tasks = Spawned("cluster-node")
        self.lost: list[Callable[[str], Awaitable[None]]] = []
        """Told of each room whose lease this node lost: let go of it."""
        self.orphaned: list[Callable[[str], Awaitable[bool]]] = []
        """Told of each open room nobody holds, after this node's turn to claim it came."""
        self._taking: set[str] = set()
        self.draining = False

    async def start(self) -> None:
        await self.tick()
        self._beat.start()

    async def drain(self) -> None:
        """Going away on purpose: no new room comes here, no orphan is claimed here."""
        self.draining = True
        await self._store.beat(self._info(), HEARTBEAT_TTL_S)

    async def hand_over(self) -> None:
        """Let every lease go: the other nodes take the rooms over (their stage is in Redis)."""
        for room_id in list(self.leases):
            await self.let_go(room_id)

    async def stop(self) -> None:
        """Leave the cluster at once (leases let go, heartbeat removed)."""
        await self._beat.stop()
        await self._tasks.stop()
        await self.hand_over()
        await self._store.leave(self.node_id)

    # --- rooms ----------------------------------------------------------------------------------

    async def claim(self, room_id: str) -> bool:
        """Take ``room_id`` for this node if no node holds it."""
        lease = await self._store.acquire(room_id, self.node_id, self._ttl)
        if lease is None:
            return False
        self.leases[room_id] = lease
        await self._store.redis.sadd(self._store.keys.rooms, room_id)
        logger.info("node %s runs room %s (token %d)", self.node_id, room_id, lease.token)
        return True

    def saw(self, room_id: str, user_id: str, *, guest: bool, market: str | None) -> None:
        """A user's first time in a room run here, kept in Redis for whoever takes it over."""
        self._tasks.spawn(self._store.saw(room_id, user_id, guest, market))

    async def let_go(self, room_id: str) -> None:
        lease = self.leases.pop(room_id, None)
        if lease is not None:
            await self._store.release(lease)

    def trusted(self, room_id: str) -> bool:
        """May this node still act on ``room_id``?"""
        return room_id in self.leases and lease_trusted(
            self._renewed_at, time.monotonic(), self._ttl, TRUST_MARGIN_S
        )

    async def place(self) -> str:
        """The node a new room goes to: the least loaded (this one on a near tie)."""
        return least_loaded(await self._store.nodes(), self.node_id)

    async def url_of_room(self, room_id: str) -> str | None:
        """The base URL of the node running ``room_id`` (``None``: this one, or nobody)."""
        owner = await self.owner_of(room_id)
        if owner is None or owner == self.node_id:
            return None
        return next((n.url for n in await self._store.nodes() if n.id == owner), None)

    async def owner_of(self, room_id: str) -> str | None:
        if room_id in self.leases:
            return self.node_id
        lease = await self._store.owner(room_id)
        return lease.node_id if lease else None

    @property
    def alive_nodes(self) -> frozenset[str]:
        """The nodes whose heartbeat was seen at the last tick."""
        return frozenset(self._alive)

    async def alive(self, node_id: str) -> bool:
        """Seen at the last tick, or beating now (a node that started since)."""
        if node_id == self.node_id or node_id in self._alive:
            return True
        return await self._store.beating(node_id)

    # --- told by the rooms ------------------------------------------------------------------

    def room_opened(self, state: RoomState) -> None:
        self._tasks.spawn(self._write_stage(state))

    async def stage_changed(self, state: RoomState, events: Iterable[Any]) -> None:
        if any(isinstance(e, RoomEnded) for e in events):
            if state.id in self.leases:  # forgotten first: nobody may take an ended room over
                await self._store.forget_room(state.id)
            await self.let_go(state.id)
        else:
            await self._write_stage(state)

    async def _write_stage(self, state: RoomState) -> None:
        """The stage as the owner has it, for whoever takes the room over (only forward)."""
        lease = self.leases.get(state.id)
        if lease is None:
            return
        try:
            await self._store.put_stage(lease, state)
        except Fenced:
            logger.error("node %s: room %s belongs to another node now", self.node_id, state.id)
            await self._give_up(state.id)

    async def member_left(self, room_id: str, user_id: str) -> None: ...

    # --- every second ---------------------------------------------------------------------------

    async def tick(self) -> None:
        started = time.monotonic()
        was_alive = await self._store.beat(self._info(), HEARTBEAT_TTL_S)
        if self._beaten and not was_alive:
            logger.error(
                "node %s was taken for dead (a long pause?): giving up its rooms", self.node_id
            )
            for room_id in list(self.leases):
                await self._give_up(room_id)
        self._beaten = True
        lost = await self._store.renew(list(self.leases.values()), self._ttl)
        self._renewed_at = started
        for lease in lost:
            logger.error("node %s lost the lease of room %s", self.node_id, lease.room_id)
            await self._give_up(lease.room_id)
        nodes = await self._store.nodes()
        alive = {n.id for n in nodes}
        for node_id in self._alive - alive - {self.node_id}:
            # Off the heartbeat's path: however many sockets it had, renewing is not delayed.
            self._tasks.spawn(self._died(node_id))
        self._alive = alive
        if self.orphaned and not self.draining:
            self._tasks.spawn(self._find_orphans(claim_delay_s(nodes, self.node_id)))

    async def _died(self, node_id: str) -> None:
        left = await self._router.node_died(node_id)
        logger.warning("node %s is gone: %d of its sockets left rooms here", node_id, left)

    async def _find_orphans(self, delay_s: float) -> None:
        """Open rooms nobody holds (their node died): claim them after this node's turn."""
        for room_id in await self._store.open_rooms():
            if room_id in self.leases or room_id in self._taking:
                continue
            if await self._store.owner(room_id) is None:
                self._taking.add(room_id)
                self._tasks.spawn(self._take(room_id, delay_s))

    async def _take(self, room_id: str, delay_s: float) -> None:
        try:
            await self._clock.sleep(delay_s)
            if await self._store.owner(room_id) is not None:
                return  # a less loaded node took it
            for hook in self.orphaned:
                if await hook(room_id):
                    return
        except Exception:
            logger.exception("taking room %s over failed", room_id)
        finally:
            self._taking.discard(room_id)

    async def _give_up(self, room_id: str) -> None:
        self.leases.pop(room_id, None)
        for hook in self.lost:
            try:
                await hook(room_id)
            except Exception:
                logger.exception("letting go of room %s failed", room_id)

    def _info(self) -> NodeInfo:
        now, cpu = time.monotonic(), time.process_time()
        last_now, last_cpu = self._cpu_last
        self._cpu_last = (now, cpu)
        share = (cpu - last_cpu) / (now - last_now) if now > last_now else 0.0
        load = self._load()
        return NodeInfo(
            self.node_id,
            self.url,
            rooms=len(self.leases),
            sockets=load.get("sockets", 0),
            peers=load.get("peers", 0),
            cpu=round(share, 3),
            draining=self.draining,
            beat_ms=self._clock.now_ms(),
        )
