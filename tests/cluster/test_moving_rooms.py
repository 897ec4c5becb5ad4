"""A room moving between two live nodes: one that lost the room's lease in a long pause stops
running it and sends its members to the room's new node (as does one the others took for dead);
a takeover that fails lets the room go (even if leaving fails too); a node handing its rooms
over writes their figures first and never after."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from liveroom.app import AUDIO, CONFIG, ROOMS, SESSIONS, STATS
from liveroom.cluster.model import SEQUENCES_PER_LEASE
from liveroom.media.hls import SEGMENT_NAME
from liveroom.stats.store import SqlStatsStore
from tests.cluster.conftest import Node, TwoNodes
from tests.fakes import eventually


def _segments(node: Node, room_id: str) -> list[int]:
    directory = node.server.app[CONFIG].effective_media_dir / "hls" / room_id
    names = [p.name for p in directory.iterdir()] if directory.is_dir() else []
    return sorted(int(m.group(1)) for n in names if (m := SEGMENT_NAME.fullmatch(n)))


async def test_a_node_that_lost_a_room_in_a_pause_stops_running_it(
    two_nodes: TwoNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    room_id, host, old, new = await two_nodes.room()
    two_nodes.takes_over_only_when_told(new, monkeypatch)
    near = await two_nodes.client(old, "near")  # its socket on the room's node
    far = await two_nodes.client(new, "far")
    for fan in (near, far):
        await fan.request("room:join", {"room_id": room_id})
    await host.next_event("room:count", lambda e: e["listeners"] == 3)

    # The room's node pauses for longer than its lease; meanwhile the other takes the room over.
    old.clock.stall(10)
    await two_nodes.redis.delete(two_nodes.keys.lease(room_id))
    assert await new.cluster.takeover.take_over(room_id)

    # Its lease is not to be trusted: an event it gets meanwhile is not run on its copy.
    asking = asyncio.create_task(near.call("stage:request", {"room_id": room_id}))
    await asyncio.sleep(0.5)
    assert not asking.done()

    old.clock.resume()  # back: it finds the lease lost
    assert (await asking)["ok"]
    rooms = new.server.app[ROOMS]
    assert rooms.state(room_id).requests == ("near",)  # run on the new node
    await eventually(lambda: rooms.presence.count(room_id) == 3, timeout=10)
    restart = await near.next_event("rtc:restart", timeout=10)
    assert restart == {"room_id": room_id, "reason": "media moved"}

    # Nothing of the room runs on the old node any more.
    assert old.server.app[ROOMS].get(room_id) is None
    assert old.server.app[AUDIO].engine.room(room_id) is None
    assert old.server.app[STATS].figures(room_id) is None
    assert room_id not in old.cluster.node.leases
    # The new node numbers its HLS past anything the old one wrote.
    await eventually(lambda: bool(_segments(new, room_id)), timeout=10)
    assert _segments(new, room_id)[0] == SEQUENCES_PER_LEASE
    assert all(n < SEQUENCES_PER_LEASE for n in _segments(old, room_id))

    # Everyone takes part through the room's new node.
    await host.request("stage:approve", {"room_id": room_id, "user_id": "near"})
    await near.next_event("room:state", lambda s: s["you"]["role"] == "speaker")
    await far.next_event("room:state", lambda s: [u["id"] for u in s["speakers"]] == ["near"])


async def test_a_node_taken_for_dead_sends_its_sockets_back_to_their_rooms(
    two_nodes: TwoNodes,
) -> None:
    room_id, _, running, other = await two_nodes.room()
    fan = await two_nodes.client(other, "fan")
    await fan.request("room:join", {"room_id": room_id})
    presence = running.server.app[ROOMS].presence
    assert presence.is_present(room_id, "fan")

    other.clock.stall(0)  # a pause long enough for its heartbeat to lapse
    await two_nodes.redis.delete(two_nodes.keys.node(other.id))
    await eventually(lambda: not presence.is_present(room_id, "fan"), timeout=10)  # dropped
    other.clock.resume()
    await eventually(lambda: presence.is_present(room_id, "fan"), timeout=10)  # and back
    assert (await fan.next_event("rtc:restart", timeout=10))["reason"] == "media moved"
    await fan.request("qa:ask", {"room_id": room_id, "text": "Still with you"})


async def test_a_takeover_that_fails_lets_the_room_go(
    two_nodes: TwoNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    room_id, _, old, new = await two_nodes.room()
    two_nodes.takes_over_only_when_told(new, monkeypatch)
    old.clock.stall(10)  # paused: its lease lapses
    await two_nodes.redis.delete(two_nodes.keys.lease(room_id))

    async def broken(*_: Any) -> bool:
        raise RuntimeError("the database went away")

    async def leave_broken(*_: Any, **__: Any) -> bool:
        raise RuntimeError("the mixer would not close")

    with monkeypatch.context() as trouble:
        trouble.setattr(new.server.app[ROOMS], "adopt", broken)
        assert not await new.cluster.takeover.take_over(room_id)
        assert await two_nodes.redis.get(two_nodes.keys.lease(room_id)) is None  # free at once
        assert room_id not in new.cluster.node.leases

        trouble.setattr(new.cluster.handover, "leave", leave_broken)
        assert not await new.cluster.takeover.take_over(room_id)  # leaving fails half way too
        assert await two_nodes.redis.get(two_nodes.keys.lease(room_id)) is None  # free all same
        assert room_id not in new.cluster.node.leases
    assert await new.cluster.takeover.take_over(room_id)  # the next try runs it


async def test_a_room_handed_over_goes_on_from_its_final_figures(two_nodes: TwoNodes) -> None:
    room_id, host, old, new = await two_nodes.room()
    fans = [await two_nodes.client(new, f"fan-{i}") for i in range(2)]
    for fan in fans:
        await fan.request("room:join", {"room_id": room_id})
    await host.next_event("room:count", lambda e: e["listeners"] == 3)
    # Not written yet (one sample interval): handing the room over writes them first.
    await old.cluster.node.drain()
    await old.cluster.node.hand_over()
    await eventually(lambda: room_id in new.cluster.node.leases, timeout=10)
    stats = new.server.app[STATS]
    await eventually(lambda: stats.figures(room_id) is not None, timeout=10)
    figures = stats.figures(room_id)
    assert figures is not None and figures.peak == 3

    # The old node's last flush (at its stop) writes nothing of the room over the new one's.
    await stats.flush()
    store = SqlStatsStore(new.server.app[SESSIONS])
    written = await store.resume(room_id)
    assert written is not None and written.record.figures.peak == 3
    await old.server.app[STATS].stop()
    assert await store.resume(room_id) == written
