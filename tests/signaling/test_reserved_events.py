"""A client cannot send an event named like one of the server's own handlers: python-socketio
dispatches by name, so a client's `disconnect` used to take its user out of every room while the
socket stayed open and subscribed (found by the fuzzer)."""

from __future__ import annotations

import pytest

from liveroom.app import ROOMS, RunningServer
from tests.conftest import Connect


@pytest.mark.parametrize("event", ["disconnect", "connect", "connect_error", "message"])
async def test_reserved_names_are_refused_and_change_nothing(
    server: RunningServer, connect: Connect, event: str
) -> None:
    host = await connect("artist", host=True)
    room_id = (await host.request("room:create", {"title": "Reserved"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    fan = await connect("fan")
    await fan.request("room:join", {"room_id": room_id})

    ack = await fan.call(event, {"room_id": room_id})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    rooms = server.app[ROOMS]
    assert rooms.presence.is_present(room_id, "fan") and rooms.presence.count(room_id) == 2
    # The socket still works as itself.
    assert (await fan.call("room:leave", {"room_id": room_id}))["ok"] is True
    assert rooms.presence.count(room_id) == 1
