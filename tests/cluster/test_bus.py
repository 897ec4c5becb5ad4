"""Two nodes' Socket.IO servers on one real Redis: emits reach sockets on the other node (a
personal one through that node's inbox only, in order with the room's broadcasts), calls get
their replies, and emits to a socket whose event runs elsewhere wait for its ack."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import socketio
from aiohttp import web
from redis.asyncio import Redis

from liveroom.cluster.bus import Bus, ClusterManager, NodeGone, RemoteError
from liveroom.cluster.model import Keys
from liveroom.errors import Conflict
from liveroom.signaling.transport import LiveroomSocketServer
from tests.fakes import eventually


@dataclass
class Node:
    sio: LiveroomSocketServer
    manager: ClusterManager
    bus: Bus
    url: str
    runner: web.AppRunner


async def start_node(redis_url: str, keys: Keys, node_id: str, alive: set[str]) -> Node:
    manager = ClusterManager(redis_url, keys, node_id)
    sio = LiveroomSocketServer(queue_limit=100, async_mode="aiohttp", client_manager=manager)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sio.manager_initialized = True
    manager.initialize()

    async def is_alive(node: str) -> bool:
        return node in alive

    return Node(sio, manager, Bus(manager, is_alive), f"http://127.0.0.1:{port}", runner)


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[tuple[Node, Node]]:
    keys = Keys(f"t-{uuid.uuid4().hex[:8]}")
    alive = {"a", "b"}
    a = await start_node(redis_url, keys, "a", alive)
    b = await start_node(redis_url, keys, "b", alive)
    yield a, b
    for node in (a, b):
        await node.bus.stop()
        node.manager.thread.cancel()
        await node.runner.cleanup()


async def client(node: Node) -> tuple[socketio.AsyncClient, list[tuple[str, Any]]]:
    got: list[tuple[str, Any]] = []
    sio = socketio.AsyncClient(reconnection=False)

    async def any_event(event: str, data: Any) -> None:
        got.append((event, data))

    sio.on("*", any_event)

    await sio.connect(node.url, transports=["websocket"])
    return sio, got


async def subscribed(node: Node) -> None:
    """The node's Redis subscription is up (its first message is a subscribe)."""
    await eventually(lambda: node.manager.pubsub is not None and node.manager.pubsub.subscribed)


async def test_an_emit_on_one_node_reaches_a_socket_on_the_other(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await subscribed(a)
    await subscribed(b)
    fan, got = await client(b)
    try:
        sid = fan.get_sid()
        await a.sio.enter_room(sid, "room:r1")  # the room's node puts B's socket in its room
        await eventually(lambda: "room:r1" in b.sio.rooms(sid), timeout=5)
        await a.sio.emit("room:count", {"listeners": 7}, room="room:r1")
        await a.sio.emit("you", {"only": "you"}, to=sid)
        await eventually(lambda: len(got) == 2, timeout=5)
        assert got == [("room:count", {"listeners": 7}), ("you", {"only": "you"})]
    finally:
        await fan.disconnect()


async def test_a_call_gets_its_reply_or_the_reason_it_failed(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await subscribed(a)
    await subscribed(b)

    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {"echo": body["text"], "on": "b"}

    async def refuse(body: dict[str, Any]) -> dict[str, Any]:
        raise Conflict("not now")

    b.bus.handle("echo", echo)
    b.bus.handle("refuse", refuse)
    replies = await asyncio.gather(*(a.bus.call("b", "echo", {"text": str(i)}) for i in range(50)))
    assert replies == [{"echo": str(i), "on": "b"} for i in range(50)]
    with pytest.raises(RemoteError, match="not now"):
        await a.bus.call("b", "refuse", {})
    with pytest.raises(RemoteError, match="no handler"):
        await a.bus.call("b", "nothing", {})
    with pytest.raises(NodeGone):
        await a.bus.call("c", "echo", {"text": "x"})  # not alive: fails at once


async def test_personal_messages_go_to_their_sockets_node_only_in_order(
    nodes: tuple[Node, Node], redis_url: str
) -> None:
    a, b = nodes
    await subscribed(a)
    await subscribed(b)
    spy = Redis.from_url(redis_url)
    shared = spy.pubsub(ignore_subscribe_messages=True)
    await shared.subscribe(a.manager.keys.sio_channel)  # what every node reads
    await shared.get_message(timeout=1)  # subscribed
    fan, got = await client(b)
    try:
        sid = fan.get_sid()
        a.manager.node_of = lambda s: "b" if s == sid else None  # as the room's node learns it
        await a.sio.enter_room(sid, "room:r1")
        await eventually(lambda: "room:r1" in b.sio.rooms(sid), timeout=5)
        for n in range(5):
            await a.sio.emit("room:count", {"n": n}, room="room:r1")
            await a.sio.emit("you", {"n": n}, to=sid)
        await eventually(lambda: len(got) == 10, timeout=5)
        assert got == [(e, {"n": n}) for n in range(5) for e in ("room:count", "you")]
        # One of B's own sockets: nothing is published at all.
        await b.sio.emit("yours", {"here": True}, to=sid)
        await eventually(lambda: len(got) == 11, timeout=5)

        published = []
        for _ in range(10):  # what arrived, and a while longer
            message = await shared.get_message(timeout=0.05)
            if message is not None:
                published.append(json.loads(message["data"]))
        assert [(m["method"], m.get("room")) for m in published] == [("emit", "room:r1")] * 5
    finally:
        await fan.disconnect()
        await shared.aclose()  # type: ignore[no-untyped-call]
        await spy.aclose()


async def test_emits_to_a_socket_wait_for_the_ack_of_its_event_run_elsewhere(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    await subscribed(a)
    await subscribed(b)
    fan, got = await client(b)
    try:
        sid = fan.get_sid()
        a.manager.node_of = lambda s: "b" if s == sid else None  # to B's inbox
        async with b.manager.hold(sid):
            await a.sio.emit("room:state", {"version": 1}, to=sid)
            await eventually(lambda: b.manager.holding(sid) == 1, timeout=5)  # arrived, waits
            assert got == []
            # An ack is written to the socket directly, not through the manager.
            await b.sio.emit("ack-stand-in", {"first": True}, to=sid, ignore_queue=True)
        await eventually(lambda: len(got) == 2, timeout=5)
        assert [event for event, _ in got] == ["ack-stand-in", "room:state"]
    finally:
        await fan.disconnect()
