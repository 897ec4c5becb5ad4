"""Every event is answered: unknown and malformed events are `invalid`, a crashing handler is
`internal` with a logged id, refusals are `forbidden`, and the connection lives through all of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import replace

import aiohttp
import pytest

from liveroom.app import REGISTRY, SIGNALING, RunningServer, start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from liveroom.permissions import Role, Rule, Scope, Who
from liveroom.ratelimit import RateLimit
from liveroom.signaling.payloads import Payload
from liveroom.signaling.registry import Ack, EventContext, EventRegistry
from tests.conftest import Connect, make_token
from tests.fakes import eventually


class Boom(Payload):
    room_id: str


async def _explode(ctx: EventContext, payload: Boom) -> Ack:
    raise RuntimeError("kaboom")


@pytest.mark.parametrize(
    ("event", "payload", "message"),
    [
        ("no:such_event", {}, "unknown event"),
        ("time:sync", {"t0": "soon"}, "t0"),
        ("time:sync", {}, "t0: required"),
        ("time:sync", {"t0": 1, "extra": True}, "extra: unknown field"),
        ("time:sync", ["t0", 1], "must be an object"),
        ("time:sync", "t0=1", "must be an object"),
    ],
    ids=["unknown", "wrong-type", "missing", "extra-field", "list", "string"],
)
async def test_bad_events_are_invalid_and_harmless(
    connect: Connect, event: str, payload: object, message: str
) -> None:
    client = await connect("fan")
    ack = await client.sio.call(event, payload, timeout=5)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid"
    assert message in ack["error"]["message"]
    assert (await client.call("time:sync", {"t0": 5}))["ok"] is True


async def test_time_sync_brackets_the_server_clock(connect: Connect) -> None:
    client = await connect("fan")
    ack = await client.request("time:sync", {"t0": 123.5})
    assert ack["t0"] == 123.5
    assert isinstance(ack["t1"], int) and ack["t1"] <= ack["t2"]


async def test_crashing_handler_answers_internal_and_keeps_the_connection(
    server: RunningServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    server.app[REGISTRY].add(
        "test:explode", Boom, _explode, Rule("test:explode", Scope.SERVER, Who.ANYONE)
    )
    client = await connect("fan")
    with caplog.at_level(logging.ERROR, logger="liveroom.signaling.dispatch"):
        ack = await client.call("test:explode", {"room_id": "r1"})
    assert ack["ok"] is False and ack["error"]["code"] == "internal"
    error_id = re.search(r"logged as (\w+)", ack["error"]["message"])
    assert error_id is not None
    logged = [r for r in caplog.records if error_id.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None and "fan" in logged[0].getMessage()
    assert "kaboom" not in ack["error"]["message"]  # the client learns the id, not the internals
    assert client.sio.connected
    assert (await client.call("time:sync", {"t0": 0}))["ok"] is True


async def test_permission_table_is_checked_before_the_handler_runs(
    server: RunningServer, connect: Connect
) -> None:
    ran: list[str] = []

    async def create(ctx: EventContext, payload: Boom) -> Ack:
        ran.append(ctx.identity.user_id)
        return {"created": payload.room_id}

    server.app[REGISTRY].add(
        "test:create", Boom, create, Rule("test:create", Scope.SERVER, Who.HOST_GRANT)
    )
    fan, artist = await connect("fan"), await connect("artist", host=True)
    refused = await fan.call("test:create", {"room_id": "r"})
    assert refused["error"]["code"] == "forbidden"
    assert (await artist.request("test:create", {"room_id": "r"}))["created"] == "r"
    assert ran == ["artist"]


def test_handlers_need_a_resolver_for_their_scope() -> None:
    registry = EventRegistry()
    rule = Rule("test:room", Scope.ROOM, Who.ROLES, roles=frozenset({Role.HOST}))
    with pytest.raises(ValueError, match="resolver"):
        registry.add("test:room", Boom, _explode, rule)
    with pytest.raises(ValueError, match="permission table"):
        registry.add("test:unlisted", Boom, _explode)
    assert registry.handlers == {}


async def test_oversized_frame_closes_only_that_connection(
    server: RunningServer, connect: Connect
) -> None:
    bystander = await connect("bystander")
    token = make_token("big")
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        assert (await ws.receive_str()).startswith("0")  # engine.io open
        await ws.send_str("40" + json.dumps({"token": token}))
        assert (await ws.receive_str()).startswith("40")  # socket.io connected
        await ws.send_str('42["time:sync",{"t0":"' + "x" * 100_000 + '"}]')
        closing = await asyncio.wait_for(ws.receive(), 5)
        while closing.type == aiohttp.WSMsgType.TEXT:  # a ping may come first
            closing = await asyncio.wait_for(ws.receive(), 5)
        assert closing.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert bystander.sio.connected
    assert (await bystander.call("time:sync", {"t0": 0}))["ok"] is True


async def test_event_rate_limit_answers_rate_limited_with_retry_after(config: Config) -> None:
    running = await start_server(replace(config, rate_limits={"events": RateLimit(5, 10)}))
    try:
        async with await LiveroomClient.connect(running.url, make_token("spammer")) as client:
            acks = [await client.call("time:sync", {"t0": i}) for i in range(8)]
    finally:
        await running.stop()
    assert [a["ok"] for a in acks] == [True] * 5 + [False] * 3
    error = acks[5]["error"]
    assert error["code"] == "rate_limited" and 0 < error["retry_after"] <= 2.1


async def test_shutdown_answers_the_events_in_progress_and_refuses_new_ones(
    config: Config,
) -> None:
    running = await start_server(config)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx: EventContext, payload: Boom) -> Ack:
        started.set()
        await release.wait()
        return {"saved": payload.room_id}

    running.app[REGISTRY].add("test:slow", Boom, slow, Rule("test:slow", Scope.SERVER, Who.ANYONE))
    client = await LiveroomClient.connect(running.url, make_token("fan"))
    try:
        in_progress = asyncio.create_task(client.call("test:slow", {"room_id": "r1"}))
        await started.wait()
        stopping = asyncio.create_task(running.stop())
        await eventually(lambda: running.app[SIGNALING].closing)  # waiting for the slow event
        late = await client.call("time:sync", {"t0": 0})
        assert late["ok"] is False and late["error"]["code"] == "conflict"
        release.set()
        assert await in_progress == {"ok": True, "saved": "r1"}  # answered before the close
        await stopping
    finally:
        release.set()
        await client.close()
