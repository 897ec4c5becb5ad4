"""Graceful shutdown: ``liveroom serve`` stopped by SIGTERM (or SIGINT, Ctrl-C) in the middle
of a live room — host and co-host on stage, the host's microphone heard over WebRTC, fans
listening, a question, a playlist, writes still coming in — tells every connected client why it
is closing them (``server:shutdown``) before it does, keeps the room and every acknowledged
write for the next start, exits 0 promptly and logs no error or traceback. On SQLite and on
PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from liveroom.client import LiveroomClient
from liveroom.client.audio import AudioSession, ToneTrack, open_audio
from tests.conftest import make_token
from tests.e2e.server_process import ServerProcess, ack_unless_gone, server_process
from tests.hearing import until_heard

SONG = "https://example.test/encore.mp3"
QUESTION = "Will you play the encore?"
WRITES_BEFORE_SIGNAL = 10
STOPS_WITHIN_S = 5.0
"""The shutdown's own timeout: a server that waits it out did not close its sockets cleanly."""


@dataclass
class LiveRoom:
    room_id: str
    question_id: str
    item_id: str
    asked: dict[str, str] = field(default_factory=dict)  # question id → text, acknowledged
    added: dict[str, str] = field(default_factory=dict)  # item id → url, acknowledged
    some_acked: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self) -> None:
        if len(self.asked) + len(self.added) >= WRITES_BEFORE_SIGNAL:
            self.some_acked.set()


async def _client(url: str, user_id: str, *, host: bool = False) -> LiveroomClient:
    return await LiveroomClient.connect(url, make_token(user_id, user_id.title(), host=host))


async def _live_room(server: ServerProcess, clients: dict[str, LiveroomClient]) -> LiveRoom:
    """The host on stage with a co-host, two fans listening, an approved question and a
    playlist item."""
    for user_id in ("artist", "cohost", "fan-a", "fan-b"):
        clients[user_id] = await _client(server.url, user_id, host=user_id == "artist")
    host, cohost, fan_a = clients["artist"], clients["cohost"], clients["fan-a"]
    room_id = str((await host.request("room:create", {"title": "Last song"}))["room"]["id"])
    for client in clients.values():
        await client.request("room:join", {"room_id": room_id})
    invite = {"room_id": room_id, "user_id": "cohost", "role": "cohost"}
    await host.request("stage:invite", invite)
    await cohost.next_event("stage:invited")
    await cohost.request("stage:accept", {"room_id": room_id})

    asked = await fan_a.request("qa:ask", {"room_id": room_id, "text": QUESTION})
    question_id = str(asked["question"]["id"])
    await host.request("qa:approve", {"question_id": question_id})
    added = await host.request("playlist:add", {"room_id": room_id, "url": SONG, "title": "Encore"})
    return LiveRoom(room_id, question_id, str(added["item"]["id"]))


async def _on_air(room: LiveRoom, clients: dict[str, LiveroomClient]) -> list[AudioSession]:
    """The host speaks (a tone) and fan B hears the room over WebRTC."""
    host, fan_b = clients["artist"], clients["fan-b"]
    await host.request("stage:unmute", {"room_id": room.room_id})
    speaking = await open_audio(host, room.room_id, publish=ToneTrack(440))
    listening = await open_audio(fan_b, room.room_id)
    await until_heard(listening.recording, 1)
    return [speaking, listening]


def _refused_while_stopping(ack: dict[str, Any]) -> bool:
    """Sent after the shutdown began: refused, nothing done (docs/protocol.md)."""
    error = ack.get("error") or {}
    return error.get("code") == "conflict" and "shutting down" in error.get("message", "")


async def _asking(room: LiveRoom, fan: LiveroomClient, fan_id: str) -> None:
    """Questions (pending: the room premoderates) until the server goes away."""
    for i in range(1_000_000):
        text = f"{fan_id} wonders, {i}th time: is the server going down?"
        ack = await ack_unless_gone(fan, "qa:ask", {"room_id": room.room_id, "text": text})
        if ack is None or _refused_while_stopping(ack):
            return
        assert ack["ok"], ack
        room.asked[str(ack["question"]["id"])] = text
        room.count()


async def _adding(room: LiveRoom, host: LiveroomClient) -> None:
    """Playlist items until the server goes away."""
    for i in range(400):  # a playlist holds 500
        url = f"https://example.test/queue/{i}.mp3"
        ack = await ack_unless_gone(host, "playlist:add", {"room_id": room.room_id, "url": url})
        if ack is None or _refused_while_stopping(ack):
            return
        assert ack["ok"], ack
        room.added[str(ack["item"]["id"])] = url
        room.count()


async def _told_and_closed(user_id: str, client: LiveroomClient) -> None:
    """The client was told why, once, and then disconnected (not left to time out)."""
    async with asyncio.timeout(STOPS_WITHIN_S):
        await client.disconnected.wait()
    told = await client.next_event("server:shutdown", timeout=2)
    assert isinstance(told["at"], int), (user_id, told)
    assert client.events("server:shutdown") == [], f"{user_id} was told twice"


def _clean(output: str) -> None:
    assert "Traceback" not in output, output
    assert "are cut off" not in output, output  # every client hung up when told
    errors = [line for line in output.splitlines() if " ERROR " in line or " CRITICAL " in line]
    assert errors == [], output


async def _all_kept(server: ServerProcess, room: LiveRoom) -> None:
    """The restarted server has the room live, with its roles, questions and playlist."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/rooms/{room.room_id}") as resp,
    ):
        assert resp.status == 200
        listed = (await resp.json())["room"]
    assert listed["status"] == "live"
    assert listed["host"]["id"] == "artist"
    assert [c["id"] for c in listed["cohosts"]] == ["cohost"]
    assert sorted(listed["away"]) == ["artist", "cohost"]  # seats held for them

    host = await _client(server.url, "artist", host=True)
    cohost = await _client(server.url, "cohost")
    try:
        joined = await host.request("room:join", {"room_id": room.room_id})
        assert joined["room"]["you"]["role"] == "host"
        rejoined = await cohost.request("room:join", {"room_id": room.room_id})
        assert rejoined["room"]["you"]["role"] == "cohost"

        listing = await host.request("qa:list", {"room_id": room.room_id})
        questions = {q["id"]: q for q in listing["questions"]}
        first = questions[room.question_id]
        assert (first["text"], first["status"]) == (QUESTION, "approved")
        assert first["author"]["id"] == "fan-a"
        for question_id, text in room.asked.items():
            assert questions[question_id]["text"] == text

        playlist = await host.next_event("playlist:state", lambda e: "items" in e)
        items = {i["id"]: i["url"] for i in playlist["items"]}
        assert items[room.item_id] == SONG
        for item_id, url in room.added.items():
            assert items[item_id] == url
    finally:
        await asyncio.gather(host.close(), cohost.close())


@pytest.mark.usefixtures("loopback_ice")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_a_signal_stops_the_server_gracefully(
    kind: str, sig: signal.Signals, tmp_path: Path
) -> None:
    async with server_process(kind, tmp_path, "--ice-loopback") as server:
        await server.start()
        clients: dict[str, LiveroomClient] = {}
        audio: list[AudioSession] = []
        try:
            room = await _live_room(server, clients)
            audio += await _on_air(room, clients)
            writers = [
                asyncio.ensure_future(_asking(room, clients["fan-a"], "fan-a")),
                asyncio.ensure_future(_asking(room, clients["fan-b"], "fan-b")),
                asyncio.ensure_future(_adding(room, clients["artist"])),
            ]
            async with asyncio.timeout(30):
                await room.some_acked.wait()
            signalled = time.monotonic()
            code = await server.stop_with(sig)
            stopped_in = time.monotonic() - signalled
            await asyncio.gather(*(_told_and_closed(u, c) for u, c in clients.items()))
            await asyncio.gather(*writers)
        finally:
            await asyncio.gather(*(a.close() for a in audio))
            await asyncio.gather(*(c.close() for c in clients.values()))
        output = server.output()
        assert code == 0, output
        assert "stopped" in output
        assert stopped_in < STOPS_WITHIN_S, output
        _clean(output)

        await server.start()
        await _all_kept(server, room)
        assert await server.stop_with(sig) == 0
        _clean(server.output())
