"""Webhooks from a real server to a real receiver on 127.0.0.1: every event with its payload,
signed as docs/webhooks.md says; retries that deliver once; a receiver that hangs costs the room
nothing; and with no URL nothing is sent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from liveroom.app import STATS, WEBHOOKS, RunningServer, StartupError, create_app, start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from liveroom.webhooks.model import WebhookPolicy
from tests.conftest import make_token
from tests.webhook_receiver import HANG, Received, Receiver

SECRET = "webhook-secret-for-tests"
FAST = WebhookPolicy(timeout_s=5.0, backoff_s=0.05, backoff_max_s=0.2)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def serving(config: Config, receiver: Receiver, *paths: str) -> RunningServer:
    urls = tuple(receiver.url + path for path in paths)
    hooked = replace(
        config,
        webhook_urls=urls,
        webhook_secret=SECRET,
        webhooks=FAST,
        stats_sample_interval_s=0.2,
    )
    return await start_server(hooked)


@pytest.fixture
async def server(config: Config, receiver: Receiver) -> AsyncIterator[RunningServer]:
    running = await serving(config, receiver, "/hook")
    yield running
    await running.stop()


@pytest.fixture
async def clients(server: RunningServer) -> AsyncIterator[list[LiveroomClient]]:
    made: list[LiveroomClient] = []
    yield made
    await asyncio.gather(*(c.close() for c in made))


async def client(
    server: RunningServer, made: list[LiveroomClient], user_id: str, *, host: bool = False
) -> LiveroomClient:
    c = await LiveroomClient.connect(server.url, make_token(user_id, user_id.title(), host=host))
    made.append(c)
    return c


def assert_signed(delivery: Received) -> None:
    """Exactly what docs/webhooks.md tells a receiver to check, done by hand."""
    h = delivery.headers
    timestamp = h["X-Liveroom-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + delivery.body, hashlib.sha256)
    assert hmac.compare_digest(h["X-Liveroom-Signature"], "sha256=" + expected.hexdigest())
    body = delivery.json
    assert set(body) == {"id", "type", "at", "data"}
    assert h["X-Liveroom-Event"] == body["type"] and h["X-Liveroom-Delivery"] == body["id"]
    assert h["Content-Type"] == "application/json"
    assert h["User-Agent"].startswith("liveroom/")


async def test_a_rooms_life_reaches_the_receiver_signed(
    server: RunningServer, receiver: Receiver, clients: list[LiveroomClient]
) -> None:
    host = await client(server, clients, "artist", host=True)
    fan, asker = await client(server, clients, "fan"), await client(server, clients, "asker")
    soon = int(time.time() * 1000) + 3_600_000
    created = await host.request("room:create", {"title": "Album night", "scheduled_for": soon})
    room_id = created["room"]["id"]
    await fan.request("room:remind", {"room_id": room_id, "on": True})
    assert not receiver.requests  # scheduled is not started

    await host.request("room:start", {"room_id": room_id})
    started = (await receiver.event("room_started")).json["data"]
    assert started["room_id"] == room_id and started["reminded_user_ids"] == ["fan"]
    assert started["title"] == "Album night" and started["host_id"] == "artist"
    assert started["scheduled_for"] == soon and started["started_at"] is not None

    for member in (host, fan, asker):
        await member.request("room:join", {"room_id": room_id})
    await fan.request("stage:request", {"room_id": room_id})
    await host.request("stage:approve", {"room_id": room_id, "user_id": "fan"})
    joined = (await receiver.event("speaker_joined")).json["data"]
    assert joined == {
        "room_id": room_id,
        "user_id": "fan",
        "name": "Fan",
        "role": "speaker",
        "previous_role": "listener",
    }
    await host.request("stage:demote", {"room_id": room_id, "user_id": "fan"})
    left = (await receiver.event("speaker_left")).json["data"]
    assert (left["user_id"], left["role"], left["previous_role"]) == ("fan", "listener", "speaker")

    ack = await asker.request("qa:ask", {"room_id": room_id, "text": "When is the tour?"})
    asked = (await receiver.event("question_asked")).json["data"]
    assert asked["question_id"] == ack["question"]["id"] and asked["text"] == "When is the tour?"
    assert asked["author"] == {"id": "asker", "name": "Asker"} and asked["status"] == "pending"
    assert asked["anonymous"] is False

    await host.request("room:end", {"room_id": room_id})
    ended = (await receiver.event("room_ended")).json["data"]
    assert ended["room_id"] == room_id and ended["ended_at"] >= started["started_at"]
    assert (ended["ended_by"], ended["reason"]) == ("artist", None)

    # A room created live starts at once, with nobody to remind.
    live = (await host.request("room:create", {"title": "Impromptu"}))["room"]["id"]
    await receiver.until(lambda: len(receiver.received(kind="room_started")) == 2)
    impromptu = receiver.received(kind="room_started")[1].json["data"]
    assert impromptu["room_id"] == live and impromptu["reminded_user_ids"] == []

    for delivery in receiver.requests:
        assert_signed(delivery)
    ids = [d.json["id"] for d in receiver.requests]
    assert len(set(ids)) == len(ids)


async def test_a_broken_record_is_told(
    server: RunningServer, receiver: Receiver, clients: list[LiveroomClient]
) -> None:
    stats = server.app[STATS]
    first_host = await client(server, clients, "veteran", host=True)
    old = (await first_host.request("room:create", {"title": "The old record"}))["room"]["id"]
    await first_host.request("room:join", {"room_id": old})
    early = await client(server, clients, "early")
    await early.request("room:join", {"room_id": old})
    async with asyncio.timeout(10):
        while stats.live(old) != 2:
            await asyncio.sleep(0.05)
    await first_host.request("room:end", {"room_id": old})

    host = await client(server, clients, "artist", host=True)
    room_id = (await host.request("room:create", {"title": "Comeback"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    for n in range(2):
        fan = await client(server, clients, f"fan{n}")
        await fan.request("room:join", {"room_id": room_id})
    record = await receiver.event("record_broken")
    data = record.json["data"]
    assert data["room_id"] == room_id and data["scope"] == "all_time"
    assert data["metric"] in {"peak", "unique"} and (data["value"], data["previous"]) == (3, 2)
    assert data["title"] == "Comeback" and data["host_id"] == "artist"
    assert_signed(record)


async def test_retries_deliver_once_with_the_same_delivery_id(
    config: Config, receiver: Receiver
) -> None:
    receiver.script["/flaky"] = [500, 500]
    receiver.script["/refuses"] = [400]
    running = await serving(config, receiver, "/flaky", "/refuses")
    host = await LiveroomClient.connect(running.url, make_token("artist", host=True))
    try:
        await host.request("room:create", {"title": "Third time lucky"})
        await receiver.until(lambda: any(r.status == 200 for r in receiver.received("/flaky")))
        await asyncio.sleep(3 * FAST.backoff_max_s)  # room for a wrong extra try to show up
        counts = running.app[WEBHOOKS].counts()
    finally:
        await host.close()
        await running.stop()
    flaky = receiver.received("/flaky")
    assert [r.status for r in flaky] == [500, 500, 200]
    assert len({r.headers["X-Liveroom-Delivery"] for r in flaky}) == 1
    assert len({r.body for r in flaky}) == 1  # the same event; each try freshly signed
    for attempt in flaky:
        assert_signed(attempt)
    assert [r.status for r in receiver.received("/refuses")] == [400]  # a 4xx is final
    by_path = {url.rsplit("/", 1)[1]: c for url, c in counts.items()}
    assert (by_path["flaky"].delivered, by_path["flaky"].retried) == (1, 2)
    assert (by_path["refuses"].failed, by_path["refuses"].retried) == (1, 0)


async def test_a_receiver_that_hangs_costs_the_room_nothing(
    config: Config, receiver: Receiver
) -> None:
    receiver.script["/hang"] = [HANG] * 1000
    hung = replace(FAST, timeout_s=30.0, queue_limit=5, concurrency=2)
    running = await start_server(
        replace(
            config, webhook_urls=(receiver.url + "/hang",), webhook_secret=SECRET, webhooks=hung
        )
    )
    host = await LiveroomClient.connect(running.url, make_token("artist", host=True))
    fans = [await LiveroomClient.connect(running.url, make_token(f"fan{n}")) for n in range(3)]
    try:
        room_id = (await host.request("room:create", {"title": "Busy night"}))["room"]["id"]
        await host.request("room:join", {"room_id": room_id})
        await receiver.until(lambda: receiver.hanging == 1)
        began = time.monotonic()
        for n, fan in enumerate(fans):
            await fan.request("room:join", {"room_id": room_id})
            await fan.request("stage:request", {"room_id": room_id})
            await host.request("stage:approve", {"room_id": room_id, "user_id": f"fan{n}"})
            await fan.next_event("room:state", lambda s: s["you"]["role"] == "speaker")
            await fan.request("qa:ask", {"room_id": room_id, "text": f"From fan {n}?"})
        for n in range(6):  # more events than the queue holds: the oldest go
            await host.request("room:create", {"title": f"Side room {n}"})
        elapsed = time.monotonic() - began
        assert elapsed < 5, f"the room waited on the webhook receiver: {elapsed:.1f} s"
        assert receiver.hanging == 2 and not receiver.requests  # both workers stuck there
        counts = running.app[WEBHOOKS].counts()[receiver.url + "/hang"]
        assert counts.queued == 5 and counts.dropped > 0
        stopping = time.monotonic()
    finally:
        await asyncio.gather(host.close(), *(f.close() for f in fans))
        await running.stop()
    assert time.monotonic() - stopping < 5  # stopping does not wait for the receiver either


async def test_no_url_no_request(config: Config, receiver: Receiver) -> None:
    running = await start_server(config)
    host = await LiveroomClient.connect(running.url, make_token("artist", host=True))
    try:
        await host.request("room:create", {"title": "Quiet"})
        webhooks = running.app[WEBHOOKS]
        assert not webhooks.enabled and webhooks.counts() == {}
    finally:
        await host.close()
        await running.stop()
    assert not receiver.requests


@pytest.mark.parametrize("secret", [None, "too short"])
def test_a_url_needs_a_long_enough_secret(config: Config, secret: str | None) -> None:
    hooked = replace(config, webhook_urls=("https://hooks.example/in",), webhook_secret=secret)
    with pytest.raises(StartupError, match="--webhook-secret"):
        create_app(hooked)
