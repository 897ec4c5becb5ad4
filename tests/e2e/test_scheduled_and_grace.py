"""Scheduled rooms and reminders; seats held through a dropped connection (fake clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from liveroom.app import ROOMS, SIGNALING, RunningServer, start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from tests.conftest import Connect, make_token
from tests.fakes import FakeClock, eventually


async def test_reminded_fan_hears_the_room_start(connect: Connect) -> None:
    host = await connect("artist", "Artist", host=True)
    fan, other = await connect("fan"), await connect("other")
    soon = 2_000_000_000_000
    created = await host.request("room:create", {"title": "Album premiere", "scheduled_for": soon})
    room = created["room"]
    assert room["status"] == "scheduled"
    assert room["scheduled_for"] == soon
    # A fan cannot walk into a room that has not started, but can ask to be reminded.
    assert (await fan.call("room:join", {"room_id": room["id"]}))["error"]["code"] == "conflict"
    await fan.request("room:remind", {"room_id": room["id"], "on": True})
    await other.request("room:remind", {"room_id": room["id"], "on": True})
    await other.request("room:remind", {"room_id": room["id"], "on": False})
    assert (await fan.call("room:start", {"room_id": room["id"]}))["error"]["code"] == "forbidden"

    started = await host.request("room:start", {"room_id": room["id"]})
    assert started["room"]["status"] == "live"
    heard = await fan.next_event("room:started")
    assert heard == {"room_id": room["id"], "title": "Album premiere"}
    assert other.events("room:started") == []
    assert (await fan.request("room:join", {"room_id": room["id"]}))["room"]["status"] == "live"
    # Reminders are for rooms that have not started.
    late = await other.call("room:remind", {"room_id": room["id"], "on": True})
    assert late["error"]["code"] == "conflict"


async def test_scheduled_for_must_be_in_the_future(connect: Connect) -> None:
    host = await connect("artist", host=True)
    ack = await host.call("room:create", {"title": "Yesterday", "scheduled_for": 1_000})
    assert ack["error"]["code"] == "invalid"


@pytest.fixture
async def clocked(config: Config, fake_clock: FakeClock) -> AsyncIterator[RunningServer]:
    running = await start_server(config, clock=fake_clock)
    yield running
    await running.stop()


async def _client(server: RunningServer, user: str, *, host: bool = False) -> LiveroomClient:
    return await LiveroomClient.connect(server.url, make_token(user, host=host))


async def _drop(
    server: RunningServer, client: LiveroomClient, room_id: str, clock: FakeClock
) -> None:
    """Lose ``client``'s connection and let the server notice it (staff views are spaced at
    least 100 ms apart, so fake time moves on a little too)."""
    user_id = next(
        c.identity.user_id
        for c in server.app[SIGNALING].connections.values()
        if c.sid == client.sio.get_sid()
    )
    await client.close()
    await eventually(lambda: not server.app[ROOMS].presence.is_present(room_id, user_id))
    await clock.advance(0.25)


async def test_speaker_keeps_the_seat_through_a_short_drop(
    clocked: RunningServer, fake_clock: FakeClock
) -> None:
    host = await _client(clocked, "artist", host=True)
    speaker = await _client(clocked, "fan")
    room_id = (await host.request("room:create", {"title": "Live"}))["room"]["id"]
    for client in (host, speaker):
        await client.request("room:join", {"room_id": room_id})
    await host.request("stage:invite", {"room_id": room_id, "user_id": "fan", "role": "speaker"})
    await speaker.request("stage:accept", {"room_id": room_id})

    await _drop(clocked, speaker, room_id, fake_clock)
    await host.next_event("room:state", lambda s: "fan" in s.get("away", []))
    await fake_clock.advance(20)  # within the 30 s grace period
    back = await _client(clocked, "fan")
    rejoined = await back.request("room:join", {"room_id": room_id})
    assert rejoined["room"]["you"]["role"] == "speaker"

    await _drop(clocked, back, room_id, fake_clock)
    await host.next_event("room:state", lambda s: "fan" in s.get("away", []))
    host.clear("room:state")
    await fake_clock.advance(31)
    gone = await host.next_event("room:state", lambda s: not s["speakers"])
    assert "fan" not in gone.get("away", [])
    again = await _client(clocked, "fan")
    assert (await again.request("room:join", {"room_id": room_id}))["room"]["you"]["role"] == (
        "listener"
    )
    await host.close()
    await again.close()


async def test_host_who_does_not_come_back_hands_over_to_the_cohost(
    clocked: RunningServer, fake_clock: FakeClock
) -> None:
    host = await _client(clocked, "artist", host=True)
    cohost = await _client(clocked, "manager")
    room_id = (await host.request("room:create", {"title": "Live"}))["room"]["id"]
    for client in (host, cohost):
        await client.request("room:join", {"room_id": room_id})
    await host.request("stage:invite", {"room_id": room_id, "user_id": "manager", "role": "cohost"})
    await cohost.request("stage:accept", {"room_id": room_id})

    await _drop(clocked, host, room_id, fake_clock)
    await cohost.next_event("room:state", lambda s: "artist" in s.get("away", []))
    await fake_clock.advance(58.8)
    assert not [s for s in cohost.events("room:state") if s["host"]["id"] == "manager"]
    await fake_clock.advance(2)
    handed = await cohost.next_event("room:state", lambda s: s["host"]["id"] == "manager")
    assert handed["you"]["role"] == "host"
    assert handed["status"] == "live"
    await cohost.close()


async def test_host_alone_past_the_grace_period_ends_the_room(
    clocked: RunningServer, fake_clock: FakeClock
) -> None:
    host = await _client(clocked, "artist", host=True)
    fan = await _client(clocked, "fan")
    room_id = (await host.request("room:create", {"title": "Live"}))["room"]["id"]
    for client in (host, fan):
        await client.request("room:join", {"room_id": room_id})
    await host.close()
    await eventually(lambda: fake_clock.sleepers > 0)
    await fake_clock.advance(61)
    assert (await fan.next_event("room:ended"))["room_id"] == room_id
    await fan.close()


async def test_a_live_room_whose_host_never_joins_ends(
    clocked: RunningServer, fake_clock: FakeClock
) -> None:
    host = await _client(clocked, "artist", host=True)
    room_id = (await host.request("room:create", {"title": "Forgotten"}))["room"]["id"]
    await eventually(lambda: fake_clock.sleepers > 0)
    await fake_clock.advance(61)
    await eventually(lambda: clocked.app[ROOMS]._live.get(room_id) is None)
    ack = await host.call("room:join", {"room_id": room_id})
    assert ack["error"]["code"] == "gone"
    await host.close()
