"""The cluster's shared state in Redis: node heartbeats, room leases with fencing tokens, and each
room's stage state written with an atomic compare-and-set.

Every multi-key decision is one Lua script, so it is atomic in Redis: acquiring a lease (only if
nobody holds it; the token from the room's counter), renewing or releasing it (only by its
holder), and writing the stage (only by the lease's holder, only over the version it read).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import TypeAdapter
from redis.asyncio import Redis

from liveroom.cluster.model import Keys, NodeInfo, holder, parse_holder
from liveroom.errors import LiveroomError
from liveroom.rooms.stage import RoomState

logger = logging.getLogger(__name__)

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_PUT_STAGE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local version = redis.call('HGET', KEYS[2], 'version')
if version and tonumber(version) ~= tonumber(ARGV[2]) then return -2 end
redis.call('HSET', KEYS[2], 'version', ARGV[3], 'holder', ARGV[1], 'state', ARGV[4])
return 1
"""

_STATE = TypeAdapter(RoomState)


class Fenced(LiveroomError):
    """This node no longer holds the room's lease: it must stop acting on the room."""

    code = "internal"


class StaleStage(LiveroomError):
    """The stage in Redis is not the version this node read: someone else wrote it."""

    code = "conflict"


def encode_state(state: RoomState) -> bytes:
    return _STATE.dump_json(state)


def decode_state(data: bytes | str) -> RoomState:
    return _STATE.validate_json(data)


@dataclass(frozen=True, slots=True)
class Lease:
    room_id: str
    node_id: str
    token: int

    @property
    def holder(self) -> str:
        return holder(self.node_id, self.token)


class ClusterStore:
    """Leases, heartbeats and stages of one cluster in one Redis."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._put_stage = redis.register_script(_PUT_STAGE)

    # --- leases ------------------------------------------------------------------------------

    async def acquire(self, room_id: str, node_id: str, ttl_s: float) -> Lease | None:
        """The room's lease for ``node_id`` with a new token, or ``None`` if someone holds it."""
        keys = [self.keys.lease(room_id), self.keys.epoch(room_id)]
        token = int(await self._acquire(keys=keys, args=[node_id, int(ttl_s * 1000)]))
        return Lease(room_id, node_id, token) if token else None

    async def renew(self, leases: list[Lease], ttl_s: float) -> list[Lease]:
        """Renew each lease still held; the ones that were lost (one round trip for all)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease in leases:
                await self._renew(
                    keys=[self.keys.lease(lease.room_id)],
                    args=[lease.holder, int(ttl_s * 1000)],
                    client=pipe,
                )
            results = await pipe.execute()
        return [lease for lease, ok in zip(leases, results, strict=True) if not int(ok)]

    async def release(self, lease: Lease) -> bool:
        keys = [self.keys.lease(lease.room_id)]
        return bool(int(await self._release(keys=keys, args=[lease.holder])))

    async def owner(self, room_id: str) -> Lease | None:
        parsed = parse_holder(await self.redis.get(self.keys.lease(room_id)))
        return Lease(room_id, *parsed) if parsed else None

    # --- stage --------------------------------------------------------------------------------

    async def put_stage(self, lease: Lease, expected_version: int | None, state: RoomState) -> None:
        """Write ``state`` if ``lease`` still holds the room and the stored version is
        ``expected_version`` (anything, when ``None`` and nothing is stored yet)."""
        keys = [self.keys.lease(lease.room_id), self.keys.stage(lease.room_id)]
        expected = -1 if expected_version is None else expected_version
        args: list[str | int | bytes] = [lease.holder, expected, state.version, encode_state(state)]
        result = int(await self._put_stage(keys=keys, args=args))
        if result == -1:
            raise Fenced(f"room {lease.room_id}: the lease (token {lease.token}) is lost")
        if result == -2:
            raise StaleStage(f"room {lease.room_id}: the stage changed since version {expected}")

    async def stage(self, room_id: str) -> RoomState | None:
        data = await self.redis.hget(self.keys.stage(room_id), "state")
        return decode_state(data) if data is not None else None

    async def forget_room(self, room_id: str) -> None:
        """An ended room: its stage, counter and listener set go (the SQL row stays)."""
        await self.redis.delete(
            self.keys.stage(room_id), self.keys.epoch(room_id), self.keys.listeners(room_id)
        )
        await self.redis.srem(self.keys.rooms, room_id)

    # --- nodes -------------------------------------------------------------------------------

    async def beat(self, info: NodeInfo, ttl_s: float) -> bool:
        """Write the node's heartbeat; ``False`` if its previous one had lapsed (the others took
        it for dead: it must drop what it held)."""
        previous = await self.redis.set(
            self.keys.node(info.id), info.to_json(), px=int(ttl_s * 1000), get=True
        )
        await self.redis.sadd(self.keys.nodes, info.id)
        return previous is not None

    async def nodes(self) -> list[NodeInfo]:
        """The live nodes (a dead one's id is pruned from the set)."""
        members = await self.redis.smembers(self.keys.nodes)
        ids = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        if not ids:
            return []
        values = await self.redis.mget([self.keys.node(i) for i in ids])
        dead = [node_id for node_id, value in zip(ids, values, strict=True) if value is None]
        if dead:
            await self.redis.srem(self.keys.nodes, *dead)
        return [NodeInfo.from_json(v) for v in values if v is not None]

    async def leave(self, node_id: str) -> None:
        """A node going away on purpose: gone at once, not after its heartbeat lapses."""
        await self.redis.delete(self.keys.node(node_id))
        await self.redis.srem(self.keys.nodes, node_id)
