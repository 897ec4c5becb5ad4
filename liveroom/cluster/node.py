"""One node among several: its heartbeat, the leases of the rooms it runs, and what it does when
another node dies.

Every second the node writes its heartbeat (id, URL, load) and renews the leases of its rooms in
one round trip; a lease it lost (a long pause, Redis away) is given up at once (:attr:`lost`:
the room leaves this node, its members here join it where it runs now). Between a renewal that
did not happen and the loss being known, the node does not act on the room
(:meth:`ClusterNode.trusted`): its events wait for the room's node to be known again. It reads
which nodes are alive: the sockets of one that stopped beating leave this node's rooms, so the
counts drop within the heartbeat's time to live.

A node cut off from Redis (but not from SQL) cannot renew, nor learn that it lost anything: its
own clock decides. Once a lease may have lapsed — its last renewal that succeeded was sent a
lease's time to live ago — the node gives it up as if Redis had said so (:meth:`watch`, every
half renewal), without waiting for Redis, so the room stops here before another node may claim
it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from liveroom.clock import Clock
from liveroom.cluster.model import (
    HEARTBEAT_TTL_S,
    LEASE_TTL_S,
    NodeInfo,
    claim_delay_s,
    lease_trusted,
    least_loaded,
    renew_every_s,
    trust_margin_s,
)
from liveroom.cluster.store import ClusterStore, Fenced, Lease
from liveroom.rooms.stage import RoomEnded, RoomState
from liveroom.tasks import Periodic, Spawned

logger = logging.getLogger(__name__)

Load = Callable[[], dict[str, int]]
"""The node's load now: ``rooms``, ``sockets``, ``peers``."""
RoomHook = Callable[[str], Awaitable[None]]


class ClusterNode:
    """The node's part in the cluster: heartbeat, leases, dead nodes."""

    def __init__(
        self,
        node_id: str,
        url: str,
        store: ClusterStore,
        clock: Clock,
        load: Load,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.node_id = node_id
        self.url = url
        self._store = store
        self._clock = clock
        self._load = load
        self._ttl = lease_ttl_s
        self.leases: dict[str, Lease] = {}
        self._renewed_at: dict[str, float] = {}
        """Per room: when the last renewal that succeeded (or the claim) was sent."""
        self._alive: set[str] = set()
        self._beaten = False
        self._cpu_last = (time.monotonic(), time.process_time())
        self._beat = Periodic("cluster-heartbeat", renew_every_s(lease_ttl_s), self.tick, clock)
        self._watchdog = Periodic(
            "cluster-watchdog", renew_every_s(lease_ttl_s) / 2, self._watch_now, clock
        )
        self._tasks = Spawned("cluster-node")
        self.claimed: list[Callable[[Lease], Awaitable[None]]] = []
        """Told of each lease this node takes, before the room opens here."""
        self.lost: list[RoomHook] = []
        """Told of each room whose lease this node lost while it lived: let go of it."""
        self.handing_over: list[RoomHook] = []
        """Told of each room this node lets go on purpose, before its lease is released."""
        self.orphaned: list[Callable[[str], Awaitable[bool]]] = []
        """Told of each open room nobody holds, after this node's turn to claim it came."""
        self.died: list[RoomHook] = []
        """Told of each other node whose heartbeat lapsed (its id)."""
        self.revived: list[Callable[[], Coroutine[Any, Any, None]]] = []
        """Told when this node finds the others took it for dead (its heartbeat lapsed in a
        long pause): they dropped its sockets from their rooms."""
        self._taking: set[str] = set()
        self._releasing: set[str] = set()
        """Rooms lost whose letting go is in progress: not claimed again meanwhile."""
        self.draining = False

    async def start(self) -> None:
        await self.tick()
        self._beat.start()
        self._watchdog.start()

    async def drain(self) -> None:
        """Going away on purpose: no new room comes here, no orphan is claimed here."""
        self.draining = True
        await self._store.beat(self._info(), HEARTBEAT_TTL_S)

    async def hand_over(self) -> None:
        """Let every lease go: the other nodes take the rooms over (their stage is in Redis).
        Each room leaves this node first (:attr:`handing_over`), so what the next node reads
        is final."""
        for room_id in list(self.leases):
            for hook in self.handing_over:
                try:
                    await hook(room_id)
                except Exception:
                    logger.exception("handing room %s over failed; letting it go", room_id)
            await self.let_go(room_id)

    async def stop(self) -> None:
        """Leave the cluster at once (leases let go, heartbeat removed)."""
        await self._beat.stop()
        await self._watchdog.stop()
        await self._tasks.stop()
        await self.hand_over()
        await self._store.leave(self.node_id)

    # --- rooms ----------------------------------------------------------------------------------

    async def claim(self, room_id: str) -> bool:
        """Take ``room_id`` for this node if no node holds it. A claim that fails after the lease
        was acquired releases it (else it would be renewed here forever, the room run nowhere)."""
        asked_at = self._clock.monotonic()
        lease = await self._store.acquire(room_id, self.node_id, self._ttl)
        if lease is None:
            return False
        self.leases[room_id] = lease
        self._renewed_at[room_id] = asked_at
        try:
            await self._store.redis.sadd(self._store.keys.rooms, room_id)
            logger.info("node %s runs room %s (token %d)", self.node_id, room_id, lease.token)
            for hook in self.claimed:
                await hook(lease)
        except BaseException:
            if self.leases.get(room_id) == lease:
                del self.leases[room_id]
                self._renewed_at.pop(room_id, None)
            await self._release_quietly(lease)
            raise
        return True

    def saw(self, room_id: str, user_id: str, *, guest: bool, market: str | None) -> None:
        """A user's first time in a room run here, kept in Redis for whoever takes it over."""
        self._tasks.spawn(self._store.saw(room_id, user_id, guest, market))

    async def let_go(self, room_id: str) -> None:
        lease = self.leases.pop(room_id, None)
        self._renewed_at.pop(room_id, None)
        if lease is not None:
            await self._store.release(lease)

    def holds(self, lease: Lease) -> bool:
        """This node still holds ``lease`` (that very token: not lost and claimed again since)
        and trusts it."""
        return self.leases.get(lease.room_id) == lease and self.trusted(lease.room_id)

    def trusted(self, room_id: str) -> bool:
        """May this node still act on ``room_id``? Only while it holds the room's lease and
        that lease cannot have lapsed yet, with a margin (a long pause, Redis slow or away)."""
        renewed_at = self._renewed_at.get(room_id)
        return (
            room_id in self.leases
            and renewed_at is not None
            and lease_trusted(
                renewed_at, self._clock.monotonic(), self._ttl, trust_margin_s(self._ttl)
            )
        )

    def releasing(self, room_id: str) -> bool:
        """This node lost the room's lease and is letting go of it right now."""
        return room_id in self._releasing

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

    async def nodes_now(self) -> set[str]:
        """The live nodes as Redis has them now (not as at the last tick)."""
        return {n.id for n in await self._store.nodes()}

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
            self._give_up(state.id)

    async def member_left(self, room_id: str, user_id: str) -> None: ...

    # --- every second ---------------------------------------------------------------------------

    async def tick(self) -> None:
        started = self._clock.monotonic()
        self.watch(started)  # before Redis is asked: it may fail or hang
        was_alive = await self._store.beat(self._info(), HEARTBEAT_TTL_S)
        if self._beaten and not was_alive:
            logger.error(
                "node %s was taken for dead (a long pause?): giving up its rooms", self.node_id
            )
            for room_id in list(self.leases):
                # Released too (fenced by its token): the next node need not wait for it to lapse.
                self._give_up(room_id, release=True)
            for hook in self.revived:
                self._tasks.spawn(hook())
        self._beaten = True
        leases = list(self.leases.values())
        lost = await self._store.renew(leases, self._ttl)
        for lease in leases:
            if lease not in lost and self.leases.get(lease.room_id) == lease:
                self._renewed_at[lease.room_id] = started
        for lease in lost:
            logger.error("node %s lost the lease of room %s", self.node_id, lease.room_id)
            self._give_up(lease.room_id)
        nodes = await self._store.nodes()
        alive = {n.id for n in nodes}
        for node_id in self._alive - alive - {self.node_id}:
            # Off the heartbeat's path: however many sockets it had, renewing is not delayed.
            self._tasks.spawn(self._died(node_id))
        self._alive = alive
        if self.orphaned and not self.draining:
            self._tasks.spawn(self._find_orphans(claim_delay_s(nodes, self.node_id)))

    def watch(self, now: float) -> None:
        """Give up every lease that may have lapsed by this node's own clock: its last renewal
        that succeeded was sent a lease's time to live before ``now`` (Redis away, slow, or
        answering errors). Nothing is asked of Redis; the lease is released there too, fenced by
        its token, if Redis answers."""
        for room_id, renewed_at in list(self._renewed_at.items()):
            if now >= renewed_at + self._ttl and room_id in self.leases:
                logger.error(
                    "node %s: the lease of room %s was not renewed for %.1f s: giving it up",
                    self.node_id,
                    room_id,
                    now - renewed_at,
                    extra={"room_id": room_id},
                )
                self._give_up(room_id, release=True)

    async def _watch_now(self) -> None:
        self.watch(self._clock.monotonic())

    async def _died(self, node_id: str) -> None:
        for hook in self.died:
            await hook(node_id)

    async def _find_orphans(self, delay_s: float) -> None:
        """Open rooms nobody holds (their node died): claim them after this node's turn."""
        for room_id in await self._store.open_rooms():
            if room_id in self.leases or room_id in self._taking or room_id in self._releasing:
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

    def _give_up(self, room_id: str, *, release: bool = False) -> None:
        """The lease is lost: this node stops acting on the room at once, and lets go of it off
        the heartbeat's path (renewing the other leases must not wait for it). ``release``: the
        lease may still be this node's in Redis (taken for dead, or not renewed in time): once
        the room stopped here, it is released, fenced by its token."""
        lease = self.leases.pop(room_id, None)
        if lease is None:
            return
        self._renewed_at.pop(room_id, None)
        self._releasing.add(room_id)
        self._tasks.spawn(self._let_go_lost(lease, release=release))

    async def _let_go_lost(self, lease: Lease, *, release: bool) -> None:
        room_id = lease.room_id
        try:
            for hook in self.lost:
                try:
                    await hook(room_id)
                except Exception:
                    logger.exception("letting go of room %s failed", room_id)
            if release:  # once the room stopped here
                await self._release_quietly(lease)
        finally:
            self._releasing.discard(room_id)

    async def _release_quietly(self, lease: Lease) -> None:
        """Release ``lease`` if this node still holds it in Redis; Redis away: it lapses."""
        try:
            await self._store.release(lease)
        except Exception as e:
            logger.warning(
                "node %s: releasing the lease of room %s failed (%s); it lapses by itself",
                self.node_id,
                lease.room_id,
                e,
            )

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
