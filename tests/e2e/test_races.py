"""Interleavings the review found: joins racing disconnects, rejoins racing old sockets'
departures, removals of plain listeners, hosts who never join, ended rooms."""

from __future__ import annotations

import asyncio

from liveroom.app import ROOMS, SESSIONS, RunningServer
from liveroom.client import LiveroomClient
from liveroom.rooms.store import SqlRoomStore
from tests.conftest import Connect, make_token


async def _live_room(connect: Connect) -> tuple[LiveroomClient, str]:
    host = await connect("artist", host=True)
    room_id = str((await host.request("room:create", {"title": "Race"}))["room"]["id"])
    await host.request("room:join", {"room_id": room_id})
    return host, room_id


async def test_joins_racing_their_disconnects_leave_no_ghosts(
    server: RunningServer, connect: Connect
) -> None:
    host, room_id = await _live_room(connect)
    rooms = server.app[ROOMS]
    for round_ in range(20):
        fan = await LiveroomClient.connect(server.url, make_token(f"fan{round_}"))
        # Hold the room's lock so the join waits, then drop the socket meanwhile.
        async with rooms._lock(room_id):
            join = asyncio.create_task(fan.call("room:join", {"room_id": room_id}))
            await asyncio.sleep(0.01)
            await fan.close()
        join.cancel()  # its ack will never come: the socket is gone
        await asyncio.gather(join, return_exceptions=True)
    await asyncio.sleep(0.1)
    assert [m.user_id for m in rooms.presence.members(room_id)] == ["artist"]
    assert rooms.presence.count(room_id) == 1
    await host.close()


async def test_a_rejoin_racing_the_old_sockets_departure_keeps_the_seat(
    server: RunningServer, connect: Connect
) -> None:
    host, room_id = await _live_room(connect)
    first = await connect("co")
    await first.request("room:join", {"room_id": room_id})
    await host.request("stage:invite", {"room_id": room_id, "user_id": "co", "role": "cohost"})
    await first.request("stage:accept", {"room_id": room_id})
    rooms = server.app[ROOMS]
    second = await connect("co")
    async with rooms._lock(room_id):  # the new join and the old departure queue on the lock
        rejoin = asyncio.create_task(second.request("room:join", {"room_id": room_id}))
        await asyncio.sleep(0.01)
        await first.close()
        await asyncio.sleep(0.05)
    ack = await rejoin
    await asyncio.sleep(0.1)
    state = rooms.state(room_id)
    assert ack["room"]["you"]["role"] == "cohost"
    assert state.cohosts == ("co",)
    assert "co" not in {a.user_id for a in state.away}  # present, so not held as away


async def test_removing_a_plain_listener_is_audited(
    server: RunningServer, connect: Connect
) -> None:
    host, room_id = await _live_room(connect)
    fan = await connect("fan")
    await fan.request("room:join", {"room_id": room_id})
    await host.request("room:remove", {"room_id": room_id, "user_id": "fan"})
    log = await SqlRoomStore(server.app[SESSIONS]).audit_log(room_id)
    assert [(r.action, r.target_id) for r in log] == [("remove", "fan")]


async def test_ended_rooms_answer_gone_at_once(connect: Connect) -> None:
    host, room_id = await _live_room(connect)
    fan = await connect("fan")
    await fan.request("room:join", {"room_id": room_id})
    await host.request("room:end", {"room_id": room_id})
    for event, payload in (("react", {"emoji": "🔥"}), ("stage:request", {}), ("room:join", {})):
        ack = await fan.call(event, {"room_id": room_id, **payload})
        assert ack["error"]["code"] == "gone", event
