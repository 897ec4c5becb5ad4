"""The shared playlist through a real server: skewed clocks agree on the position, the queue and
its rules, the timer, uploads probed by PyAV, and a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
import pytest

from liveroom.app import RunningServer, start_server
from liveroom.client import CallFailed, LiveroomClient
from liveroom.client.player import PlaylistFollower, wall_ms
from liveroom.config import Config
from tests.conftest import make_token
from tests.hearing import tones, wav
from tests.peers import Peers, upload

SONG = "https://example.test/song.mp3"


@pytest.fixture
async def peers(server: RunningServer) -> AsyncIterator[Peers]:
    p = Peers(server)
    yield p
    await p.close()


async def live_room(peers: Peers, *fans: str) -> tuple[str, LiveroomClient, list[LiveroomClient]]:
    host = await peers.client("artist", "Artist", host=True)
    room_id = (await host.request("room:create", {"title": "Listening party"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    clients = [await peers.client(f, f.title()) for f in fans]
    for c in clients:
        await c.request("room:join", {"room_id": room_id})
    return room_id, host, clients


def skewed(offset_ms: float) -> Callable[[], float]:
    return lambda: wall_ms() + offset_ms


async def test_clients_with_skewed_clocks_agree_on_the_position(peers: Peers) -> None:
    room_id, host, (ahead, behind) = await live_room(peers, "ahead", "behind")
    await host.request("playlist:add", {"room_id": room_id, "url": SONG, "duration_s": 300})
    played = await host.request("playlist:play", {"room_id": room_id})
    assert played["playback"]["playing"] is True
    assert played["playback"]["at"] >= int(time.time() * 1000) + 400  # scheduled ahead

    followers = [
        PlaylistFollower(ahead, room_id, skewed(+2000)),
        PlaylistFollower(behind, room_id, skewed(-2000)),
    ]
    for f in followers:
        await f.sync_clock()
        await f.until_playing()
    assert followers[0].clock.offset_ms == pytest.approx(-2000, abs=50)
    assert followers[1].clock.offset_ms == pytest.approx(+2000, abs=50)
    await asyncio.sleep(1.0)  # past the scheduled start
    positions = [f.position_s() for f in followers]
    assert None not in positions
    a, b = (p for p in positions if p is not None)
    assert abs(a - b) < 0.1 and 0.2 < a < 5


async def test_the_queue_suggestions_vote_skip_and_the_timer(peers: Peers) -> None:
    room_id, host, fans = await live_room(peers, "ann", "bob", "cat")
    for n, duration in enumerate((1.0, 30.0, 30.0)):
        add = {"room_id": room_id, "url": f"https://example.test/{n}.mp3", "duration_s": duration}
        await host.request("playlist:add", add)
    # A fan's add is a suggestion: staff see it, fans don't, until approved.
    suggested = (await fans[0].request("playlist:add", {"room_id": room_id, "url": SONG}))["item"]
    assert suggested["approved"] is False and suggested["title"] == "song.mp3"
    staff_view = await host.next_event("playlist:state", lambda s: len(s.get("items", [])) == 4)
    assert staff_view["items"][3]["id"] == suggested["id"]
    fan_view = await fans[1].next_event("playlist:state", lambda s: "items" in s)
    assert suggested["id"] not in [i["id"] for i in fan_view["items"]]
    with pytest.raises(CallFailed) as refused:
        await fans[0].request("playlist:approve", {"item_id": suggested["id"]})
    assert refused.value.code == "forbidden"
    with pytest.raises(CallFailed) as controls:
        await fans[0].request("playlist:play", {"room_id": room_id})
    assert controls.value.code == "forbidden"
    await host.request("playlist:approve", {"item_id": suggested["id"]})

    # The first item lasts a second: the server's timer moves the room on by itself.
    fans[2].clear("playlist:state")
    first = (await host.request("playlist:play", {"room_id": room_id}))["playback"]
    moved = await fans[2].next_event(
        "playlist:state", lambda s: s["playback"]["item_id"] != first["item_id"], timeout=10
    )
    assert moved["playback"]["playing"] is True

    # Vote-skip: 4 present → 2 votes; one each.
    host.clear("playlist:state")
    await fans[0].request("playlist:vote_skip", {"room_id": room_id})
    await fans[0].request("playlist:vote_skip", {"room_id": room_id})
    stale = {"room_id": room_id, "item_id": first["item_id"]}  # the item that already ended
    with pytest.raises(CallFailed) as late:
        await fans[2].request("playlist:vote_skip", stale)
    assert late.value.code == "conflict"
    state = await host.next_event("playlist:state", lambda s: s["skip_votes"] == 1)
    assert state["skip_need"] == 2
    await fans[1].request("playlist:vote_skip", {"room_id": room_id})
    skipped = await host.next_event(
        "playlist:state",
        lambda s: s["playback"]["item_id"] not in (first["item_id"], moved["playback"]["item_id"]),
    )
    assert skipped["skip_votes"] == 0

    rtt = {"t0": 1.0, "rtt": float("nan")}  # a poisoned round trip is refused, not stored
    with pytest.raises(CallFailed) as nan:
        await fans[2].request("time:sync", rtt)
    assert nan.value.code == "invalid"
    for bad in ("ftp://example.test/x.mp3", "javascript:alert(1)", "file:///etc/passwd"):
        with pytest.raises(CallFailed) as invalid:
            await host.request("playlist:add", {"room_id": room_id, "url": bad})
        assert invalid.value.code == "invalid"


def wav_bytes(seconds: float) -> bytes:
    return wav(tones([(440, seconds)], amplitude=0.25))


async def test_uploads_are_probed_and_limited(config: Config) -> None:
    server = await start_server(replace(config, media_max_bytes=200_000))
    try:
        async with Peers(server) as peers, aiohttp.ClientSession() as http:
            room_id, host, _ = await live_room(peers, "fan")
            token = make_token("artist", "Artist", host=True)
            ok = await upload(http, server.url, room_id, token, "Intro tone.wav", wav_bytes(1.5))
            assert ok.status == 201
            media = (await ok.json())["media"]
            assert media["kind"] == "audio" and media["title"] == "Intro tone"
            assert media["duration_s"] == pytest.approx(1.5, abs=0.05)
            not_media = await upload(http, server.url, room_id, token, "notes.wav", b"hello " * 100)
            assert (
                not_media.status == 400 and "read" in (await not_media.json())["error"]["message"]
            )
            svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
            image = await upload(http, server.url, room_id, token, "x.svg", svg)
            assert image.status == 400  # not audio or video, even if FFmpeg can open it
            too_big = await upload(http, server.url, room_id, token, "long.wav", wav_bytes(5))
            assert too_big.status == 400 and "larger" in (await too_big.json())["error"]["message"]
            fan_token = make_token("fan", "Fan")
            denied = await upload(http, server.url, room_id, fan_token, "x.wav", wav_bytes(0.5))
            assert denied.status == 403
            assert sorted(p.name for p in (config.data_dir / "media").iterdir()) == [media["id"]]

            item = (
                await host.request("playlist:add", {"room_id": room_id, "media_id": media["id"]})
            )["item"]
            assert (
                item["duration_s"] == media["duration_s"] and item["url"] == f"/media/{media['id']}"
            )
            headers = {"Range": "bytes=0-43"}
            async with http.get(server.url + item["url"], headers=headers) as served:
                assert served.status == 206 and served.content_type == "audio/wav"
                assert (await served.read())[:4] == b"RIFF"
                assert served.headers["Content-Security-Policy"].startswith("sandbox")
    finally:
        await server.stop()


async def test_the_playlist_survives_a_restart_paused(config: Config) -> None:
    first = await start_server(config)
    try:
        host = await LiveroomClient.connect(first.url, make_token("artist", "A", host=True))
        room_id = (await host.request("room:create", {"title": "Keeps"}))["room"]["id"]
        await host.request("room:join", {"room_id": room_id})
        for n in range(2):
            add = {"room_id": room_id, "url": f"https://example.test/{n}.mp3", "duration_s": 60}
            await host.request("playlist:add", add)
        await host.request("playlist:next", {"room_id": room_id})
        await host.request("playlist:play", {"room_id": room_id})
        await host.request("playlist:seek", {"room_id": room_id, "position_s": 42.0})
        await host.close()
    finally:
        await first.stop()
    second = await start_server(config)
    try:
        host = await LiveroomClient.connect(second.url, make_token("artist", "A", host=True))
        await host.request("room:join", {"room_id": room_id})
        state = await host.next_event("playlist:state", lambda s: "items" in s)
        assert [i["title"] for i in state["items"]] == ["0.mp3", "1.mp3"]
        assert state["playback"]["item_id"] == state["items"][1]["id"]
        assert state["playback"]["position_s"] == 42.0 and state["playback"]["playing"] is False
        await host.close()
    finally:
        await second.stop()


async def test_a_new_item_waits_for_its_players_but_never_past_the_timeout(config: Config) -> None:
    server = await start_server(replace(config, playlist_ready_timeout_s=3.0))
    try:
        async with Peers(server) as peers:
            room_id, host, (ann, bob) = await live_room(peers, "ann", "bob")
            ids = []
            for n in range(3):
                add = {"room_id": room_id, "url": f"https://example.test/{n}.mp3", "duration_s": 60}
                ids.append((await host.request("playlist:add", add))["item"]["id"])

            async def ready(fan: LiveroomClient, item: str) -> None:
                await fan.request(
                    "playlist:ready", {"room_id": room_id, "item_id": item, "ready": True}
                )

            for fan in (ann, bob):  # both play along: they have the cued first item
                await ready(fan, ids[0])
            await host.request("playlist:play", {"room_id": room_id})

            now = time.time() * 1000
            waiting = (await host.request("playlist:next", {"room_id": room_id}))["playback"]
            assert waiting["at"] >= now + 2_500  # held for the players, up to the timeout
            await ready(ann, ids[0])  # late news about the old item: no help
            await ready(ann, ids[1])
            await asyncio.sleep(0.3)
            assert all(
                s["playback"]["at"] == waiting["at"]
                for s in host.events("playlist:state")
                if s["playback"]["item_id"] == ids[1]
            )
            # A seek while waiting keeps waiting.
            sought = await host.request("playlist:seek", {"room_id": room_id, "position_s": 5})
            assert sought["playback"]["at"] == waiting["at"]
            await ready(bob, ids[1])
            sooner = await host.next_event(
                "playlist:state",
                lambda s: (
                    s["playback"]["item_id"] == waiting["item_id"]
                    and s["playback"]["at"] < waiting["at"]
                ),
            )
            assert sooner["playback"]["at"] <= time.time() * 1000 + 1_000  # everyone ready: go

            # Bob's player never loads the next one: it starts at the timeout anyway.
            now = int(time.time() * 1000)  # whole ms, as the server's clock reads
            slow = (await host.request("playlist:next", {"room_id": room_id}))["playback"]
            answered = time.time() * 1000
            await ready(ann, ids[2])
            await asyncio.sleep(0.3)
            last = [
                s
                for s in host.events("playlist:state")
                if s["playback"]["item_id"] == slow["item_id"]
            ]
            assert all(s["playback"]["at"] == slow["at"] for s in last)
            assert now + 3_000 <= slow["at"] <= answered + 3_000  # the timeout, from the request
    finally:
        await server.stop()


async def test_open_mode_lets_speakers_control(peers: Peers) -> None:
    room_id, host, (speaker, listener) = await live_room(peers, "sam", "lee")
    await host.request("playlist:add", {"room_id": room_id, "url": SONG, "duration_s": 60})
    await host.request("stage:invite", {"room_id": room_id, "user_id": "sam", "role": "speaker"})
    await speaker.request("stage:accept", {"room_id": room_id})
    with pytest.raises(CallFailed) as host_mode:
        await speaker.request("playlist:play", {"room_id": room_id})
    assert host_mode.value.code == "forbidden"
    await host.request("room:update", {"room_id": room_id, "settings": {"playlist_mode": "open"}})
    assert (await speaker.request("playlist:play", {"room_id": room_id}))["playback"]["playing"]
    added = await speaker.request("playlist:add", {"room_id": room_id, "url": SONG + "?2"})
    assert added["item"]["approved"] is True  # a controller's add is not a suggestion
    with pytest.raises(CallFailed) as audience:
        await listener.request("playlist:pause", {"room_id": room_id})
    assert audience.value.code == "forbidden"
    repeat = await speaker.request("playlist:repeat", {"room_id": room_id, "on": True})
    assert repeat["playback"]["playing"] is True
