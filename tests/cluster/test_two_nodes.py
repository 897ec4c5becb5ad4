"""Two nodes in one process on one database and one real Redis: a room runs on the node that
created it, and a fan whose socket is on the other node joins, asks, raises a hand and is heard
of there, with the room's events reaching them and the count exact."""

from __future__ import annotations

import asyncio

import pytest

from liveroom.app import ROOMS
from liveroom.client import CallFailed, LiveroomClient
from liveroom.errors import NotFound
from tests.cluster.conftest import TwoNodes
from tests.conftest import make_token


async def test_a_fan_on_another_node_takes_part_in_the_room(two_nodes: TwoNodes) -> None:
    host = await LiveroomClient.connect(two_nodes.a.url, make_token("artist", "Artist", host=True))
    fan: LiveroomClient | None = None
    try:
        created = await host.request("room:create", {"title": "Across nodes"})
        room_id = created["room"]["id"]
        await host.request("room:join", {"room_id": room_id})
        # The room went to the least loaded node; the fan connects to the other one.
        running, other = two_nodes.running(room_id)
        a, b = running.server, other.server
        fan = await LiveroomClient.connect(b.url, make_token("fan", "Fan"))

        joined = await fan.request("room:join", {"room_id": room_id})
        assert joined["room"]["title"] == "Across nodes"
        with pytest.raises(NotFound):  # B only carries the fan's events
            b.app[ROOMS].state(room_id)
        await host.next_event("room:count", lambda e: e["listeners"] == 2)
        assert a.app[ROOMS].presence.count(room_id) == 2
        await fan.next_event("qa:update", lambda e: "full" in e)  # after the join's ack

        asked = await fan.request("qa:ask", {"room_id": room_id, "text": "Hello from B"})
        question_id = asked["question"]["id"]
        await host.next_event(
            "qa:update", lambda e: any(q["id"] == question_id for q in e.get("changes", ()))
        )
        await host.request("qa:approve", {"question_id": question_id})
        await fan.next_event(
            "qa:update",
            lambda e: any(
                q["id"] == question_id and q["status"] == "approved" for q in e.get("changes", ())
            ),
        )

        await fan.request("stage:request", {"room_id": room_id})
        await host.next_event("room:state", lambda s: [u["id"] for u in s["requests"]] == ["fan"])
        await host.request("stage:approve", {"room_id": room_id, "user_id": "fan"})
        state = await fan.next_event("room:state", lambda s: s["you"]["role"] == "speaker")
        assert [p["id"] for p in state["speakers"]] == ["fan"]

        await fan.close()  # its node tells the room's node
        await host.next_event("room:count", lambda e: e["listeners"] == 1, timeout=10)
    finally:
        await asyncio.gather(host.close(), *([fan.close()] if fan else []))


async def test_the_rooms_node_forgets_the_sockets_of_others_that_left(two_nodes: TwoNodes) -> None:
    """What the room's node remembers of other nodes' sockets stays within its rooms' members:
    one that left the room, or only asked something, is forgotten though still connected."""
    host = await two_nodes.client(two_nodes.a, "artist", host=True)
    room_id = (await host.request("room:create", {"title": "Comings and goings"}))["room"]["id"]
    running, other = two_nodes.running(room_id)
    remote = running.cluster.router.remote
    fans = [await two_nodes.client(other, f"fan-{i}") for i in range(3)]
    for fan in fans:
        await fan.request("room:join", {"room_id": room_id})
    assert len(remote) == 3
    for fan in fans[:2]:
        await fan.request("room:leave", {"room_id": room_id})
    await fans[2].request("qa:list", {"room_id": room_id})
    assert set(remote.sockets) == {fans[2].sio.get_sid()}  # the member who stayed
    visitor = await two_nodes.client(other, "visitor")
    for event, payload in (("qa:list", {}), ("room:remind", {"on": True})):
        with pytest.raises(CallFailed):  # refused there: not remembered either
            await visitor.request(event, {"room_id": room_id, **payload})
    assert set(remote.sockets) == {fans[2].sio.get_sid()}
