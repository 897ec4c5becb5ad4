"""A node that lost a room's lease, or cannot know that it still holds it, does nothing more in the
room: commands that were waiting on the room's lock write and tell nothing, a node cut off from
Redis gives its leases up by its own clock, a claim or a creation that fails half way leaves no
lease behind, and a room lost while it was being taken over is not opened."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from liveroom.app import ROOMS
from liveroom.cluster.model import holder, parse_holder
from liveroom.cluster.node import ClusterNode
from liveroom.cluster.store import ClusterStore, Lease
from liveroom.config import DEFAULT_REACTIONS
from liveroom.rooms.stage import RoomState, RoomStatus
from liveroom.rooms.store import SqlRoomStore
from liveroom.stats.service import StatsService
from liveroom.stats.store import MemoryStatsStore
from tests.cluster.conftest import TwoNodes
from tests.fakes import FakeClock, eventually


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Like :func:`eventually`, for a condition read from Redis."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


def _node(store: ClusterStore, clock: FakeClock, lost: list[str]) -> ClusterNode:
    node = ClusterNode("a", "http://a", store, clock, dict, lease_ttl_s=5)

    async def let_go(room_id: str) -> None:
        lost.append(room_id)

    node.lost.append(let_go)
    return node


# --- 1. the lease is checked where the room is written --------------------------------------


async def test_commands_waiting_on_a_room_its_node_lost_write_and_tell_nothing(
    two_nodes: TwoNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    room_id, host, old, new = await two_nodes.room()
    two_nodes.takes_over_only_when_told(new, monkeypatch)
    far = await two_nodes.client(new, "far")
    await far.request("room:join", {"room_id": room_id})
    here = await two_nodes.client(old, "artist", host=True)  # the host, on the room's node too
    rooms = old.server.app[ROOMS]
    async with rooms._lock(room_id):  # the host's end and a fan's request wait on its lock...
        ending = asyncio.create_task(here.call("room:end", {"room_id": room_id}))
        asking = asyncio.create_task(far.call("stage:request", {"room_id": room_id}))
        await asyncio.sleep(0.2)
        # ... while the room's node pauses past its lease and the other node takes the room.
        old.clock.stall(10)
        await two_nodes.redis.delete(two_nodes.keys.lease(room_id))
        assert await new.cluster.takeover.take_over(room_id)
        old.clock.resume()
        await eventually(lambda: room_id not in old.cluster.node.leases, timeout=5)

    ack = await ending
    assert not ack["ok"] and ack["error"]["code"] == "conflict"  # send it again: not run
    assert (await asking)["ok"]  # forwarded from the other node: sent again, to the room's node
    new_rooms = new.server.app[ROOMS]
    assert new_rooms.state(room_id).requests == ("far",)
    assert await new_rooms.stored(room_id) is not None  # not ended in SQL
    assert new_rooms.state(room_id).status is RoomStatus.LIVE
    # Nobody was told it ended: a broadcast of the room's new node after it arrives, not that.
    await far.request("react", {"room_id": room_id, "emoji": DEFAULT_REACTIONS[0]})
    await far.next_event("reactions")
    assert far.events("room:ended") == [] and host.events("room:ended") == []


# --- 2. a node cut off from Redis ------------------------------------------------------------


async def test_a_node_cut_off_from_redis_gives_its_leases_up_by_its_own_clock(
    store: ClusterStore, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost: list[str] = []
    node = _node(store, fake_clock, lost)
    await node.start()
    assert await node.claim("r1")

    async def away(*_: Any) -> Any:
        raise RedisConnectionError("Redis is away")

    for name in ("beat", "renew", "nodes", "release"):  # SQL works; Redis does not answer
        monkeypatch.setattr(store, name, away)
    await eventually(lambda: fake_clock.sleepers == 2)  # heartbeat and watchdog
    await fake_clock.advance(4.9)
    assert not node.trusted("r1") and "r1" in node.leases  # not acted on; it may not have lapsed
    await fake_clock.advance(0.2)  # it may have: the room stops here, Redis or not
    assert "r1" not in node.leases
    await eventually(lambda: lost == ["r1"])
    monkeypatch.undo()
    await node.stop()


async def test_figures_of_a_room_not_run_here_are_neither_sampled_nor_written(
    fake_clock: FakeClock,
) -> None:
    written = MemoryStatsStore()
    stats = StatsService(written, fake_clock)
    stats.runs = lambda room_id: room_id == "kept"  # "lost": its lease is not trusted now
    rooms = ("kept", "lost")
    for room_id in rooms:
        stats.room_started(room_id, "host", "Title")
        stats.joined(room_id, "fan", guest=False, market=None)
    await eventually(lambda: all(stats.figures(r) is not None for r in rooms))
    await stats.tick()
    assert set(written.records) == {"kept"}
    assert {room_id for room_id, _ in written.samples} == {"kept"}


# --- 3. error paths that would leave a lease held ---------------------------------------------


async def test_a_claim_that_fails_half_way_lets_the_lease_go(
    store: ClusterStore, fake_clock: FakeClock
) -> None:
    node = _node(store, fake_clock, [])

    async def unwritable(_: Lease) -> None:
        raise OSError("the media dir is not writable")

    node.claimed.append(unwritable)
    with pytest.raises(OSError, match="not writable"):
        await node.claim("r1")
    assert "r1" not in node.leases
    assert await store.owner("r1") is None  # free for the next node at once
    node.claimed.clear()
    assert await node.claim("r1")
    await node.stop()


async def test_a_room_that_could_not_be_written_leaves_no_lease(
    two_nodes: TwoNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def database_away(*_: Any, **__: Any) -> None:
        raise OSError("the database went away")

    monkeypatch.setattr(SqlRoomStore, "save", database_away)
    host = await two_nodes.client(two_nodes.a, "artist", host=True)
    assert not (await host.call("room:create", {"title": "Never"}))["ok"]

    async def no_lease() -> bool:
        pattern = two_nodes.keys.lease("*")
        return not [key async for key in two_nodes.redis.scan_iter(match=pattern)]

    await until(no_lease)  # none renewed by anyone
    assert not two_nodes.a.cluster.node.leases and not two_nodes.b.cluster.node.leases


async def test_a_node_taken_for_dead_releases_its_leases(
    store: ClusterStore, fake_clock: FakeClock
) -> None:
    lost: list[str] = []
    node = _node(store, fake_clock, lost)
    await node.tick()  # its first heartbeat
    assert await node.claim("r1")
    await store.redis.delete(store.keys.node("a"))  # its heartbeat lapsed in a pause
    await node.tick()
    await eventually(lambda: lost == ["r1"] and not node.releasing("r1"))
    assert await store.owner("r1") is None  # the next node need not wait for it to lapse
    await node.stop()


# --- 4. a room lost while it is being taken over ----------------------------------------------


async def test_a_room_lost_while_it_was_being_taken_over_is_not_opened(
    two_nodes: TwoNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    room_id, _, old, new = await two_nodes.room()
    two_nodes.takes_over_only_when_told(new, monkeypatch)
    old.clock.stall(10)  # paused: its lease lapses
    lease_key = two_nodes.keys.lease(room_id)
    await two_nodes.redis.delete(lease_key)
    read = ClusterStore.stage

    async def read_in_a_pause(store: ClusterStore, room: str) -> RoomState | None:
        state = await read(store, room)
        # Meanwhile another node holds the room, and this one found its lease lost.
        await two_nodes.redis.set(lease_key, holder("c", 999), px=10_000)
        await eventually(lambda: room_id not in new.cluster.node.leases, timeout=5)
        await eventually(lambda: not new.cluster.node.releasing(room_id), timeout=5)
        return state

    monkeypatch.setattr(ClusterStore, "stage", read_in_a_pause)
    assert not await new.cluster.takeover.take_over(room_id)
    assert new.server.app[ROOMS].get(room_id) is None  # not run here, by nobody's lease
    assert room_id not in new.cluster.node.leases
    assert parse_holder(await two_nodes.redis.get(lease_key)) == ("c", 999)  # left alone
