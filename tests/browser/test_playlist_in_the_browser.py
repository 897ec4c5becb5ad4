"""The playlist panel in Chromium: two fans' players follow the room's playback and stay within
250 ms of each other after the host seeks; in DJ mode a fan hears the music in the room's audio,
its own player silent, and takes over when the host switches DJ mode off."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from liveroom.app import RunningServer
from tests.browser.conftest import (
    Launch,
    Participant,
    sign_in_as_guest,
    tone_wav,
    until_hearing,
)
from tests.conftest import make_token
from tests.peers import Peers, uploaded

pytestmark = pytest.mark.browser

PLAYER_JS = """() => {
  const p = window.liveroom.view.playlist.player;
  return {t: p.currentTime, now: Date.now(), paused: p.paused, rate: p.playbackRate};
}"""


async def player(p: Participant) -> dict[str, Any]:
    state: dict[str, Any] = await p.page.evaluate(PLAYER_JS)
    return state


async def until_playing_past(p: Participant, seconds: float, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while True:
            state = await player(p)
            if not state["paused"] and state["t"] > seconds:
                return
            await asyncio.sleep(0.2)


async def upload(server: RunningServer, room_id: str, song: Path) -> dict[str, Any]:
    """The artist's upload of ``song`` to the room: the media it became."""
    token = make_token("artist", "Aurora Lights", host=True, verified=True)
    body = await asyncio.to_thread(song.read_bytes)
    return await uploaded(server, room_id, token, song.name, body)


async def test_two_fans_stay_in_step_after_the_host_seeks(
    web_server: RunningServer,
    launch: Launch,
    python: Peers,
    tmp_path: Path,
    artifacts_dir: Path,
) -> None:
    host = await python.client("artist", "Aurora Lights", host=True, verified=True)
    room_id = (await host.request("room:create", {"title": "Album premiere"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    song = await asyncio.to_thread(tone_wav, tmp_path / "First single.wav", 330, 40.0)
    media = await upload(web_server, room_id, song)
    await host.request("playlist:add", {"room_id": room_id, "media_id": media["id"]})
    await host.request("playlist:play", {"room_id": room_id})

    fans = [await launch("ann"), await launch("bob", viewport=(390, 844))]
    for fan, name in zip(fans, ("Ann", "Bob"), strict=True):
        await fan.page.goto(f"{web_server.url}/#/room/{room_id}")
        await sign_in_as_guest(fan, name)
        await expect(fan.page.get_by_text("First single").first).to_be_visible()
    for fan in fans:
        await until_playing_past(fan, 1.0)

    seek = await host.request("playlist:seek", {"room_id": room_id, "position_s": 20.0})
    playback = seek["playback"]
    for fan in fans:
        await until_playing_past(fan, 20.5)

    async def positions() -> tuple[list[float], float]:
        """Both players' positions at one common instant (same machine, same clock)."""
        states = [await player(fan) for fan in fans]
        common = max(s["now"] for s in states)
        at_common = [s["t"] + (common - s["now"]) / 1000 * s["rate"] for s in states]
        return at_common, playback["position_s"] + (common - playback["at"]) / 1000

    # Corrections come at most every 1.5 s: give them time, then the players must stay close.
    async with asyncio.timeout(15):
        while True:
            at_common, room_now = await positions()
            if abs(at_common[0] - at_common[1]) < 0.25:
                break
            await asyncio.sleep(0.25)
    for _ in range(4):  # and stay so for a while
        await asyncio.sleep(0.5)
        at_common, room_now = await positions()
        assert abs(at_common[0] - at_common[1]) < 0.25, at_common
        assert all(abs(p - room_now) < 0.5 for p in at_common), (at_common, room_now)

    await fans[1].screenshot(artifacts_dir, "fan-playlist-phone")
    for fan in fans:
        assert fan.errors == [] and fan.dialogs == []


async def test_dj_mode_plays_in_the_room_not_in_the_fans_player(
    web_server: RunningServer,
    launch: Launch,
    python: Peers,
    tmp_path: Path,
    artifacts_dir: Path,
) -> None:
    host = await python.client("artist", "Aurora Lights", host=True, verified=True)
    dj_mode = {"playlist_output": "room"}
    room = await host.request("room:create", {"title": "DJ set", "settings": dj_mode})
    room_id = room["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    song = await asyncio.to_thread(tone_wav, tmp_path / "Opening track.wav", 330, 60.0)
    media = await upload(web_server, room_id, song)
    await host.request("playlist:add", {"room_id": room_id, "media_id": media["id"]})
    await host.request("playlist:play", {"room_id": room_id})

    fan = await launch("ann")
    await fan.page.goto(f"{web_server.url}/#/room/{room_id}")
    await sign_in_as_guest(fan, "Ann")
    await expect(fan.page.get_by_text("Playing in the room")).to_be_visible()
    await until_hearing(fan)  # nobody speaks: what the fan hears is the room's deck
    state = await player(fan)
    assert state["paused"] and state["t"] == 0  # its own player stays silent
    await fan.screenshot(artifacts_dir, "fan-dj-mode")

    await host.request(
        "room:update", {"room_id": room_id, "settings": {"playlist_output": "clients"}}
    )
    await expect(fan.page.get_by_text("Playing in the room")).to_be_hidden()
    await until_playing_past(fan, 1.0)  # now the fan's own player takes over
    assert fan.errors == [] and fan.dialogs == []
