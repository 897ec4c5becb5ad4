"""Leases, stage writes and heartbeats on a real Redis (a private ``redis-server``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from liveroom.cluster.model import NodeInfo
from liveroom.cluster.node import ClusterNode
from liveroom.cluster.store import ClusterStore, Fenced
from liveroom.permissions import Role
from liveroom.rooms.model import new_room
from liveroom.rooms.stage import Invitation, RoomState, UserInfo
from tests.fakes import FakeClock, eventually


def live_room(room_id: str = "r1") -> RoomState:
    state = new_room(room_id, UserInfo("host", "Host"), 1_000, title="Live")
    return replace(
        state,
        muted=frozenset({"host"}),
        invites=(Invitation("fan", Role.SPEAKER, "host"),),
        version=3,
    )


async def test_one_node_of_many_gets_a_lease_and_tokens_grow(store: ClusterStore) -> None:
    got = await asyncio.gather(*(store.acquire("r1", f"n{i}", 5) for i in range(10)))
    winners = [lease for lease in got if lease is not None]
    assert len(winners) == 1
    first = winners[0]
    assert await store.owner("r1") == first
    assert await store.release(first)
    assert not await store.release(first)  # released already: nothing to do
    second = await store.acquire("r1", "n9", 5)
    assert second is not None and second.token > first.token


async def test_a_lapsed_lease_cannot_be_renewed_and_another_node_takes_the_room(
    store: ClusterStore,
) -> None:
    old = await store.acquire("r1", "a", 0.2)
    assert old is not None
    assert await store.renew([old], 0.2) == []
    await asyncio.sleep(0.4)
    new = await store.acquire("r1", "b", 5)
    assert new is not None
    assert await store.renew([old], 5) == [old]  # lost: reported, not revived
    assert (await store.owner("r1")) == new
    assert not await store.release(old)  # the old owner cannot drop the new owner's lease


async def test_the_stage_only_moves_forward_and_only_by_the_lease_holder(
    store: ClusterStore,
) -> None:
    lease = await store.acquire("r1", "a", 5)
    assert lease is not None
    state = live_room()
    assert await store.put_stage(lease, state)
    assert await store.stage("r1") == state  # every field round-trips
    moved_on = replace(state, version=4, title="Renamed")
    assert await store.put_stage(lease, moved_on)
    assert not await store.put_stage(lease, replace(state, title="Late, older"))  # version 3
    assert not await store.put_stage(lease, replace(moved_on, title="Same version"))
    assert await store.release(lease)
    with pytest.raises(Fenced):  # a lapsed lease, nobody holding it
        await store.put_stage(lease, replace(moved_on, version=5))
    thief = await store.acquire("r1", "b", 5)
    assert thief is not None
    with pytest.raises(Fenced):  # the old owner, back from a pause
        await store.put_stage(lease, replace(moved_on, version=5))
    assert (await store.stage("r1")) == moved_on
    await store.forget_room("r1")
    assert await store.stage("r1") is None


async def test_heartbeats_list_live_nodes_and_tell_a_node_it_was_taken_for_dead(
    store: ClusterStore,
) -> None:
    assert await store.beat(NodeInfo("a", "http://a", rooms=2), 5) is False  # its first
    assert await store.beat(NodeInfo("a", "http://a", rooms=3), 5) is True
    assert await store.beat(NodeInfo("b", "http://b"), 0.2) is False
    assert [n.id for n in await store.nodes()] == ["a", "b"]
    await asyncio.sleep(0.4)
    assert [(n.id, n.rooms) for n in await store.nodes()] == [("a", 3)]
    assert await store.beat(NodeInfo("b", "http://b"), 5) is False  # lapsed: drop everything
    await store.leave("a")
    assert [n.id for n in await store.nodes()] == ["b"]


async def test_an_owner_acts_on_its_lease_only_while_it_cannot_have_lapsed(
    store: ClusterStore, fake_clock: FakeClock
) -> None:
    node = ClusterNode("a", "http://a", store, fake_clock, dict, lease_ttl_s=5)
    lost: list[str] = []

    async def let_go(room_id: str) -> None:
        lost.append(room_id)

    node.lost.append(let_go)
    assert await node.claim("r1")
    assert node.trusted("r1")
    await fake_clock.advance(3.4)  # no renewal since: a pause
    assert node.trusted("r1")
    await fake_clock.advance(0.2)  # it could lapse within the margin: not acted on
    assert not node.trusted("r1")
    await node.tick()  # renewed
    assert node.trusted("r1")
    await store.redis.delete(store.keys.lease("r1"))  # lapsed, or another node's now
    await node.tick()
    assert not node.trusted("r1")
    assert "r1" not in node.leases
    await eventually(lambda: lost == ["r1"])
    await node.stop()
