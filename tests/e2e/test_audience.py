"""What the audience is told, and how often: coalesced views, counts and reactions."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from liveroom.app import start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from tests.conftest import Connect, make_token

FANS = 200


async def test_200_raised_hands_cost_the_audience_a_few_states_per_second(
    config: Config,
) -> None:
    running = await start_server(replace(config, socket_inflight_limit=64))
    clients: list[LiveroomClient] = []
    try:
        host = await LiveroomClient.connect(running.url, make_token("artist", host=True))
        clients.append(host)
        room_id = (await host.request("room:create", {"title": "Q&A"}))["room"]["id"]
        await host.request("room:join", {"room_id": room_id})
        fans = await asyncio.gather(
            *(LiveroomClient.connect(running.url, make_token(f"fan{i:03}")) for i in range(FANS))
        )
        clients.extend(fans)
        await asyncio.gather(*(f.request("room:join", {"room_id": room_id}) for f in fans))
        watcher = fans[-1]
        await watcher.next_event("room:state")  # the one after its join ack
        watcher.clear("room:state")

        started = time.monotonic()
        await asyncio.gather(*(f.request("stage:request", {"room_id": room_id}) for f in fans[:-1]))
        queue = await host.next_event(
            "room:state", lambda s: len(s.get("requests", [])) == FANS - 1, timeout=20
        )
        last = await watcher.next_event(
            "room:state", lambda s: s["request_count"] == FANS - 1, timeout=20
        )
        elapsed = time.monotonic() - started

        # Staff see the whole queue in order of arrival; the audience only the count.
        assert len(queue["requests"]) == FANS - 1
        assert "requests" not in last
        audience_states = len(watcher.events("room:state")) + 1
        # ≤ 2 per second (+1 for the edge of the window), never one per raised hand.
        assert audience_states <= 2 * elapsed + 2, (audience_states, elapsed)
        assert audience_states < FANS / 10
    finally:
        await asyncio.gather(*(c.close() for c in clients))
        await running.stop()


async def test_reactions_arrive_summed_in_a_handful_of_messages(connect: Connect) -> None:
    host = await connect("artist", host=True)
    room_id = (await host.request("room:create", {"title": "Party"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    fans = [await connect(f"fan{i}") for i in range(10)]
    for fan in fans:
        await fan.request("room:join", {"room_id": room_id})

    taps = [
        fan.request("react", {"room_id": room_id, "emoji": "🔥" if i % 2 else "❤️"})
        for fan in fans
        for i in range(5)
    ]
    await asyncio.gather(*taps)

    total: Counter[str] = Counter()
    messages = 0
    while sum(total.values()) < 50:
        message = await host.next_event("reactions", timeout=5)
        assert message["room_id"] == room_id
        total.update(message["counts"])
        messages += 1
    assert total == {"🔥": 20, "❤️": 30}
    assert messages <= 6


async def test_reactions_outside_the_set_and_too_fast_are_refused(connect: Connect) -> None:
    host = await connect("artist", host=True)
    room_id = (await host.request("room:create", {"title": "Party"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    bad = await host.call("react", {"room_id": room_id, "emoji": "🍕"})
    assert bad["error"]["code"] == "invalid"
    acks = [await host.call("react", {"room_id": room_id, "emoji": "👏"}) for _ in range(15)]
    refused = [a for a in acks if not a["ok"]]
    assert refused
    assert refused[0]["error"]["code"] == "rate_limited"


async def test_listener_count_is_distinct_users_sent_at_most_once_a_second(
    connect: Connect,
) -> None:
    host = await connect("artist", host=True)
    room_id = (await host.request("room:create", {"title": "Count"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    fan_a = await connect("fan")
    fan_b = await connect("fan")  # the same user on a second socket counts once
    other = await connect("other")
    started = time.monotonic()
    for client in (fan_a, fan_b, other):
        await client.request("room:join", {"room_id": room_id})
    counts: list[dict[str, Any]] = []
    while not counts or counts[-1]["listeners"] != 3:
        counts.append(await host.next_event("room:count", timeout=5))
    assert counts[-1] == {"room_id": room_id, "listeners": 3}
    assert len(counts) <= (time.monotonic() - started) + 1
    await fan_a.request("room:leave", {"room_id": room_id})
    # fan's second socket is still in: no change, so no message for a while.
    await other.request("room:leave", {"room_id": room_id})
    assert (await host.next_event("room:count", timeout=5))["listeners"] == 2


async def test_staff_find_members_by_name(connect: Connect) -> None:
    host = await connect("artist", host=True)
    room_id = (await host.request("room:create", {"title": "Search"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    for i, name in enumerate(["Mina", "Minho", "Jisoo", "mingyu"]):
        fan = await connect(f"u{i}", name)
        await fan.request("room:join", {"room_id": room_id})
    found = await host.request("room:members", {"room_id": room_id, "query": "min"})
    assert [m["name"] for m in found["members"]] == ["Mina", "mingyu", "Minho"]
    assert found["cursor"] is None
    assert {m["role"] for m in found["members"]} == {"listener"}
    fan = await connect("u9")
    await fan.request("room:join", {"room_id": room_id})
    refused = await fan.call("room:members", {"room_id": room_id})
    assert refused["error"]["code"] == "forbidden"
