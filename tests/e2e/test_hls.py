"""HLS and replays through a real server: a speaker's tone is in the live playlist's segments
(fetched over HTTP, decoded with PyAV); after the room ends its replay is complete and the host
can delete it; HTTP fit for a cache; crowds get HLS, the stage WebRTC; an unwritable media dir
costs HLS, never the WebRTC audio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import numpy as np
import pytest
from sqlalchemy import select

from liveroom.app import SESSIONS, STATS, RunningServer, start_server
from liveroom.client import CallFailed, LiveroomClient
from liveroom.client.hls import decode_segment
from liveroom.config import Config
from liveroom.media.mixer import SAMPLE_RATE
from liveroom.stats.tables import RoomRecordRow
from tests.conftest import make_token
from tests.hearing import band, until_heard
from tests.peers import Peers

TONE_HZ = 440


@pytest.fixture
def hls_config(config: Config) -> Config:
    return replace(config, ice_loopback=True, webrtc_audience=1, stats_sample_interval_s=0.2)


@pytest.fixture
async def server(hls_config: Config) -> AsyncIterator[RunningServer]:
    running = await start_server(hls_config)
    yield running
    await running.stop()


def segments_of(playlist: str) -> list[tuple[float, str]]:
    """(duration, uri) of each segment a media playlist lists."""
    lines = playlist.splitlines()
    return [
        (float(line.split(":", 1)[1].rstrip(",").split(",")[0]), lines[n + 1])
        for n, line in enumerate(lines)
        if line.startswith("#EXTINF:")
    ]


async def fetch(http: aiohttp.ClientSession, url: str, **kw: Any) -> aiohttp.ClientResponse:
    response = await http.get(url, **kw)
    await response.read()
    return response


async def test_live_hls_carries_the_room_and_becomes_a_replay(server: RunningServer) -> None:
    async with Peers(server) as peers, aiohttp.ClientSession() as http:
        host = await peers.client("artist", "Artist", host=True)
        room_id = (await host.request("room:create", {"title": "On air"}))["room"]["id"]
        opened = time.monotonic()
        joined = await host.request("room:join", {"room_id": room_id})
        assert joined["media"]["mode"] == "webrtc"  # the stage: always WebRTC
        assert joined["media"]["recording"] is True
        await host.request("stage:unmute", {"room_id": room_id})
        await peers.audio(host, room_id, TONE_HZ)
        fan = await peers.client("fan", "Fan")
        media = (await fan.request("room:join", {"room_id": room_id}))["media"]
        assert media["mode"] == "hls" and media["hls_delay_ms"] >= 1000  # past the audience cap
        listener = await peers.client("early", "Early")  # had a WebRTC seat: the cap is 1
        await listener.request("room:join", {"room_id": room_id})
        await peers.audio(listener, room_id, None)
        with pytest.raises(CallFailed) as full:  # the cap holds: a seat is not taken by asking
            await peers.audio(fan, room_id, None)
        assert full.value.code == "conflict"
        live_url = server.url + media["hls_url"]

        await asyncio.sleep(5)
        live = await fetch(http, live_url)
        assert live.status == 200 and live.content_type == "application/vnd.apple.mpegurl"
        text = await live.text()
        assert "#EXT-X-TARGETDURATION:1" in text and "#EXT-X-ENDLIST" not in text
        assert live.headers["Cache-Control"] == "public, max-age=1"
        listed = segments_of(text)
        assert 2 <= len(listed) <= 6
        heard = []
        for _, uri in listed:
            segment = await fetch(http, f"{server.url}/hls/{room_id}/{uri}")
            assert segment.status == 200 and segment.content_type == "video/mp2t"
            assert "immutable" in segment.headers["Cache-Control"]
            assert segment.headers["ETag"] and segment.headers["Last-Modified"]
            heard.append(decode_segment(await segment.read()))
        pcm = np.concatenate(heard)
        assert band(pcm[-2 * SAMPLE_RATE :], TONE_HZ) > 0.5  # the speaker, in the last segments
        part = await fetch(
            http, f"{server.url}/hls/{room_id}/{listed[0][1]}", headers={"Range": "bytes=0-187"}
        )
        assert part.status == 206 and len(await part.read()) == 188  # one TS packet

        await host.request("room:end", {"room_id": room_id})
        lasted = time.monotonic() - opened

    async with aiohttp.ClientSession() as http:
        replay_url = f"{server.url}/hls/{room_id}/replay.m3u8"
        async with asyncio.timeout(10):
            while (replay := await fetch(http, replay_url)).status != 200:
                await asyncio.sleep(0.1)
        text = await replay.text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
        listed = segments_of(text)
        total = sum(duration for duration, _ in listed)
        assert abs(total - lasted) < 2, (total, lasted)
        decoded = 0
        for duration, uri in listed:
            samples = decode_segment(
                await (await fetch(http, f"{server.url}/hls/{room_id}/{uri}")).read()
            )
            assert abs(len(samples) / SAMPLE_RATE - duration) < 0.1  # every segment decodes
            decoded += len(samples)
        assert abs(decoded / SAMPLE_RATE - total) < 0.5
        await fetch(http, replay_url)  # a second play

        # Replay plays are counted (batched with the listener counts).
        await server.app[STATS].flush()
        async with server.app[SESSIONS]() as session:
            plays = await session.scalar(
                select(RoomRecordRow.replay_plays).where(RoomRecordRow.room_id == room_id)
            )
        assert plays == 2

        delete = f"{server.url}/api/rooms/{room_id}/replay"
        fan_auth = {"Authorization": f"Bearer {make_token('fan')}"}
        async with http.delete(delete, headers=fan_auth) as refused:
            assert refused.status == 403
        artist = {"Authorization": f"Bearer {make_token('artist', host=True)}"}
        async with http.delete(delete, headers=artist) as deleted:
            assert deleted.status == 204
        assert (await fetch(http, replay_url)).status == 404
        async with http.delete(delete, headers=artist) as again:
            assert again.status == 404


async def test_only_what_the_packager_writes_is_served(server: RunningServer) -> None:
    host = await LiveroomClient.connect(server.url, make_token("artist", host=True))
    try:
        room_id = (await host.request("room:create", {"title": "Paths"}))["room"]["id"]
        await host.request("room:join", {"room_id": room_id})
        async with aiohttp.ClientSession() as http:
            base = f"{server.url}/hls/{room_id}"
            async with asyncio.timeout(10):
                while (await fetch(http, f"{base}/live.m3u8")).status != 200:
                    await asyncio.sleep(0.1)
            for path in (
                "/hls/0123456789abcdef/live.m3u8",  # no such room
                "/hls/ROOM/live.m3u8",
                f"/hls/{room_id}/replay.m3u8",  # live: no replay yet
                f"/hls/{room_id}/seg-999999.ts",
                f"/hls/{room_id}/.seg-000001.ts.tmp",
                f"/hls/{room_id}/..%2F..%2Fliveroom.db",
                f"/hls/{room_id}/%2e%2e/secret",
                "/hls/..%2F..%2F/secret",
            ):
                response = await fetch(http, server.url + path)
                assert response.status == 404, path
    finally:
        await host.close()


async def test_an_unwritable_media_dir_costs_hls_not_the_live_audio(config: Config) -> None:
    blocked = config.data_dir / "not-a-dir"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where the media dir should be")
    running = await start_server(replace(config, ice_loopback=True, media_dir=blocked))
    try:
        async with Peers(running) as peers, aiohttp.ClientSession() as http:
            host = await peers.client("artist", host=True)
            room_id = (await host.request("room:create", {"title": "Disk full"}))["room"]["id"]
            await host.request("room:join", {"room_id": room_id})
            await host.request("stage:unmute", {"room_id": room_id})
            await peers.audio(host, room_id, TONE_HZ)
            fan = await peers.client("fan")
            await fan.request("room:join", {"room_id": room_id})
            heard = (await peers.audio(fan, room_id, None)).recording
            await until_heard(heard, 3)
            assert band(heard.pcm()[SAMPLE_RATE:], TONE_HZ) > 0.5
            async with asyncio.timeout(10):
                while True:
                    health = await (await fetch(http, f"{running.url}/healthz")).json()
                    if not health["media"]["ok"]:
                        break
                    await asyncio.sleep(0.2)
            assert health["ok"] is True and room_id in health["media"]["rooms"]
    finally:
        await running.stop()
