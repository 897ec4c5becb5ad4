"""The cluster's shared state in Redis: node heartbeats, room leases with fencing tokens, and each
room's stage state written with an atomic compare-and-set.

Every multi-key decision is one Lua script, so it is atomic in Redis: acquiring a lease (only if
nobody holds it; the token from the room's counter), renewing or releasing it (only by its
holder), and writing the stage (only by the lease's holder, only over the version it read).
"""

from __future__ import annotations

import json
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
if version and tonumber(version) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], 'version', ARGV[2], 'holder', ARGV[1], 'state', ARGV[3])
return 1
"""

_STATE = TypeAdapter(RoomState)


class Fenced(LiveroomError):
    """This node no longer holds the room's lease: it must stop acting on the room."""

    code = "internal"


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

    async def put_stage(self, lease: Lease, state: RoomState) -> bool:
        """Write ``state`` if ``lease`` still holds the room and ``state`` is newer than what is
        stored (``False``: an older version, arriving late, is not written). One transition
        after another, as the pure model made them: the stage in Redis only moves forward, and
        only its owner moves it."""
        keys = [self.keys.lease(lease.room_id), self.keys.stage(lease.room_id)]
        args: list[str | int | bytes] = [lease.holder, state.version, encode_state(state)]
        result = int(await self._put_stage(keys=keys, args=args))
        if result == -1:
            raise Fenced(f"room {lease.room_id}: the lease (token {lease.token}) is lost")
        return result == 1

    async def saw(self, room_id: str, user_id: str, guest: bool, market: str | None) -> None:
        """``user_id`` was in the room (first time only: unique listeners survive its node)."""
        value = json.dumps({"guest": guest, "market": market})
        await self.redis.hsetnx(self.keys.listeners(room_id), user_id, value)

    async def listeners(self, room_id: str) -> dict[str, tuple[bool, str | None]]:
        """Everyone ever in the room: user → (guest, market)."""
        raw = await self.redis.hgetall(self.keys.listeners(room_id))
        seen: dict[str, tuple[bool, str | None]] = {}
        for user, value in raw.items():
            data = json.loads(value)
            key = user.decode() if isinstance(user, bytes) else str(user)
            seen[key] = (bool(data.get("guest")), data.get("market"))
        return seen

    async def stage_writer(self, room_id: str) -> str | None:
        """The node that last wrote the room's stage (its owner until it died or let go)."""
        parsed = parse_holder(await self.redis.hget(self.keys.stage(room_id), "holder"))
        return parsed[0] if parsed else None

    async def stage(self, room_id: str) -> RoomState | None:
        data = await self.redis.hget(self.keys.stage(room_id), "state")
        return decode_state(data) if data is not None else None

    async def open_rooms(self) -> set[str]:
        """Every room some node claimed and that has not ended."""
        members = await self.redis.smembers(self.keys.rooms)
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

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

    async def beating(self, node_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.node(node_id)))

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
