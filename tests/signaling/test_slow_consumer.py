"""A client that stops reading is dropped at its queue limit; everyone else is unaffected."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from dataclasses import replace
from urllib.parse import urlsplit

from liveroom.app import SIGNALING, SIO, start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from tests.conftest import make_token

QUEUE_LIMIT = 64
PACE = 16
MESSAGES = 1500
BLOB = "x" * 16_000


class RawSocketIO:
    """A hand-rolled websocket Socket.IO client whose reading a test can simply stop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str, token: str) -> RawSocketIO:
        host, port = urlsplit(url).hostname, urlsplit(url).port
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up fast
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        client = cls(reader, writer)
        assert (await client.receive()).startswith("0")
        client.send("40" + json.dumps({"token": token}))
        assert (await client.receive()).startswith("40")
        return client

    def send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        header = (
            bytes([0x81, 0x80 | len(data)])
            if len(data) < 126
            else (bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(data)))
        )
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    async def receive(self) -> str:
        head = await self.reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return (await self.reader.readexactly(length)).decode()

    async def read_to_eof(self) -> None:
        while await self.reader.read(65536):
            pass

    def close(self) -> None:
        self.writer.close()


async def _received(client: LiveroomClient, index: int) -> None:
    async with asyncio.timeout(10):
        while not any(e["i"] >= index for e in client.events("blob")[-PACE * 2 :]):
            await asyncio.sleep(0.001)


async def test_reader_that_stops_is_dropped_and_others_get_everything(config: Config) -> None:
    running = await start_server(replace(config, socket_queue_limit=QUEUE_LIMIT))
    sio, signaling = running.app[SIO], running.app[SIGNALING]
    slow = await RawSocketIO.connect(running.url, make_token("slow"))
    fast = await LiveroomClient.connect(running.url, make_token("fast"))
    try:
        sids = {c.identity.user_id: sid for sid, c in signaling.connections.items()}
        max_queued = 0
        for i in range(MESSAGES):
            for user in ("slow", "fast"):
                await sio.emit("blob", {"i": i, "data": BLOB}, to=sids[user])
            socket_ = sio.eio.sockets.get(sio.manager.eio_sid_from_sid(sids["slow"], "/"))
            if socket_ is not None:
                max_queued = max(max_queued, socket_.queue.qsize())
            await asyncio.sleep(0)
            if i % PACE == PACE - 1:
                # A reading client in this process reads only when the loop lets it: the
                # sender here is paced by it, as a client in its own process would be by its
                # own speed. (Emits no longer yield per recipient.)
                await _received(fast, i - PACE)

        # The slow reader was dropped: gone from the server, its queue never past the limit.
        assert "slow" not in {c.identity.user_id for c in signaling.connections.values()}
        assert sio.engine.dropped_slow == 1
        assert max_queued <= QUEUE_LIMIT
        # Its transport was aborted, not left hanging until a ping timeout.
        await asyncio.wait_for(slow.read_to_eof(), 10)

        # The fast client got every message, in order.
        await _received(fast, MESSAGES - 1)
        assert fast.events("blob")[-1]["data"] == BLOB
        assert [e["i"] for e in fast.events("blob")] == list(range(MESSAGES))
        assert (await fast.call("time:sync", {"t0": 0}))["ok"] is True
    finally:
        slow.close()
        await fast.close()
        await running.stop()
