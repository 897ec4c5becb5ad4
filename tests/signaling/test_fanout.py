"""Broadcasts written once to every websocket: in order per socket, framed right, chunked."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import aiohttp
from engineio import packet as eio_packet

from liveroom.app import SIGNALING, SIO, RunningServer
from liveroom.client import LiveroomClient
from liveroom.signaling import fanout
from liveroom.signaling.fanout import CHUNK, MAX_BACKLOG, Outbox, Outgoing
from tests.conftest import make_token

SOCKETS = CHUNK + 44  # more than one chunk: the broadcast is written in two turns of the loop
SIZES = (10, 125, 126, 65_535, 70_000)  # around each websocket length encoding's edge


def _message(text: str) -> Outgoing:
    return Outgoing([eio_packet.Packet(eio_packet.MESSAGE, text)])


async def test_outbox_keeps_each_sockets_order_across_a_chunked_broadcast() -> None:
    delivered: dict[str, list[str]] = defaultdict(list)

    def deliver(sids: Sequence[str], m: Outgoing) -> None:
        for sid in sids:
            delivered[sid].append(str(m.packets[0].data))

    outbox = Outbox(deliver)
    everyone = [f"s{i}" for i in range(3 * CHUNK)]
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_work())
    try:
        await asyncio.sleep(0)
        outbox.send(everyone, _message("first"))
        seen_mid_broadcast = turns
        # The first chunk went out at once; the rest waits for the loop.
        assert sum(1 for s in everyone if delivered[s]) == CHUNK
        outbox.send(["s0", everyone[-1]], _message("after"))
        outbox.send(everyone[:5], _message("second"))
        while outbox.waiting:
            await asyncio.sleep(0)
        assert turns > seen_mid_broadcast  # other work ran between the chunks
    finally:
        ticker.cancel()
    assert delivered["s0"] == ["first", "after", "second"]
    assert delivered[everyone[-1]] == ["first", "after"]
    assert all(delivered[s] == ["first"] for s in everyone[5:-1])


async def test_outbox_writes_inline_when_sends_outrun_the_loop_and_on_stop() -> None:
    delivered: list[tuple[str, str]] = []
    outbox = Outbox(lambda sids, m: delivered.extend((s, str(m.packets[0].data)) for s in sids))
    group = [f"s{i}" for i in range(2 * CHUNK)]
    for n in range(MAX_BACKLOG + 1):  # no yield in between: the writer never gets a turn
        outbox.send(group, _message(str(n)))
    assert outbox.waiting <= MAX_BACKLOG * CHUNK  # bounded: the sender wrote inline
    outbox.send(group, _message("last"))
    await outbox.stop()
    assert outbox.waiting == 0
    assert len(delivered) == (MAX_BACKLOG + 2) * len(group)
    for_s0 = [text for sid, text in delivered if sid == "s0"]
    assert for_s0 == [str(n) for n in range(MAX_BACKLOG + 1)] + ["last"]


def test_frames_carry_each_length_encoding() -> None:
    for size in SIZES:
        frame = fanout.websocket_frame("x" * size)
        header = len(frame) - size
        assert header == (2 if size < 126 else 4 if size < 65536 else 10)
        assert frame[0] == 0x81  # final text frame, no compression bit
    assert fanout.websocket_frame(b"\x00\x01")[0] == 0x82


async def _raw_socket(session: aiohttp.ClientSession, url: str, user: str) -> Any:
    ws = await session.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
    assert (await ws.receive_str()).startswith("0")
    await ws.send_str("40" + json.dumps({"token": make_token(user)}))
    assert (await ws.receive_str()).startswith("40")
    return ws


async def _events(ws: Any, count: int) -> list[tuple[str, dict[str, Any]]]:
    got: list[tuple[str, dict[str, Any]]] = []
    async with asyncio.timeout(30):
        while len(got) < count:
            text = await ws.receive_str()
            if text == "2":
                await ws.send_str("3")
            elif text.startswith("42"):
                name, body = json.loads(text[2:])
                got.append((name, body))
    return got


async def test_broadcasts_and_personal_messages_arrive_in_order_on_every_socket(
    server: RunningServer,
) -> None:
    sio, signaling = server.app[SIO], server.app[SIGNALING]
    polling = await LiveroomClient.connect(
        server.url, make_token("poller"), transports=["polling", "websocket"]
    )
    # aiohttp's default connector holds at most 100 connections: unlimited here.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = [await _raw_socket(session, server.url, f"fan{i}") for i in range(SOCKETS)]
        sids = list(signaling.connections)
        assert len(sids) == SOCKETS + 1
        for sid in sids:
            await sio.enter_room(sid, "hall")
        direct_before = sio.engine.frames_direct

        expected: list[tuple[str, dict[str, Any]]] = []
        for k, size in enumerate(SIZES):
            await sio.emit("hall", {"k": k, "pad": "x" * size}, room="hall")
            expected.append(("hall", {"k": k, "pad": "x" * size}))
            for sid in sids:
                await sio.emit("you", {"k": k}, to=sid)
            expected.append(("you", {"k": k}))

        for ws in sockets:
            assert await _events(ws, len(expected)) == expected
        async with asyncio.timeout(30):
            while len(polling.events("you")) < len(SIZES):
                await asyncio.sleep(0.01)
        assert [e["k"] for e in polling.events("hall")] == list(range(len(SIZES)))
        # The websockets were written to directly, not through Engine.IO's queue and writer.
        assert sio.engine.frames_direct - direct_before >= SOCKETS * len(expected) * 0.9
        for ws in sockets:
            await ws.close()
    await polling.close()


def test_a_sockets_rooms_are_known_without_a_scan_and_forgotten_on_disconnect() -> None:
    manager = fanout.RoomFanout()
    first, second = "s1", "s2"
    for sid, eio_sid in ((first, "eio1"), (second, "eio2")):  # as a connect enters them
        manager.basic_enter_room(sid, "/", None, eio_sid=eio_sid)
        manager.basic_enter_room(sid, "/", sid, eio_sid=eio_sid)
    for sid in (first, second):
        manager.basic_enter_room(sid, "/", "hall")
    manager.basic_enter_room(first, "/", "backstage")
    assert sorted(manager.get_rooms(first, "/")) == sorted([first, "hall", "backstage"])

    manager.basic_disconnect(first, "/")
    assert manager.get_rooms(first, "/") == []
    assert dict(manager.rooms["/"]["hall"]) == {second: "eio2"}
    assert "backstage" not in manager.rooms["/"]  # emptied, so closed
    assert first not in manager.rooms["/"]  # its own room too
    assert sorted(manager.get_rooms(second, "/")) == sorted([second, "hall"])
    manager.basic_leave_room(second, "/", "hall")
    assert manager.get_rooms(second, "/") == [second]

    # The last socket of the namespace: its rooms go, and so does what the library keeps of it.
    manager.callbacks[second] = {}
    manager.basic_disconnect(second, "/")
    assert manager.get_rooms(second, "/") == []
    assert second not in manager.callbacks
    assert "/" not in manager.rooms
