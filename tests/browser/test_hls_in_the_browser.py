"""HLS in Chromium: a fan arriving past the WebRTC cap listens through hls.js, is told the room is
recorded, and finds the replay when the room ends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from liveroom.app import RunningServer
from liveroom.config import Config
from tests.browser.conftest import Launch, Participant, sign_in_as_guest
from tests.peers import Peers

pytestmark = pytest.mark.browser


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, webrtc_audience=1)  # the host on WebRTC; everyone after on HLS


async def element(p: Participant, selector: str) -> dict[str, Any]:
    state: dict[str, Any] = await p.page.evaluate(
        """(s) => { const e = document.querySelector(s);
        return {t: e.currentTime, paused: e.paused, src: e.currentSrc}; }""",
        selector,
    )
    return state


async def test_a_crowd_listens_over_hls_and_finds_the_replay(
    web_server: RunningServer, launch: Launch, python: Peers, artifacts_dir: Path
) -> None:
    host = await python.client("artist", "Aurora Lights", host=True, verified=True)
    room_id = (await host.request("room:create", {"title": "Big night"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    await host.request("stage:unmute", {"room_id": room_id})
    await python.audio(host, room_id, 440)

    fan = await launch("fan")
    await fan.page.goto(f"{web_server.url}/#/room/{room_id}")
    await sign_in_as_guest(fan, "Fan")
    await expect(fan.page.get_by_text("● REC")).to_be_visible()
    async with asyncio.timeout(30):  # hls.js plays the live edge: time moves on
        while True:
            state = await element(fan, "#room-audio")
            if not state["paused"] and state["t"] > 1.0 and state["src"].startswith("blob:"):
                break
            await asyncio.sleep(0.25)
    assert (await fan.page.evaluate("() => window.liveroom.view.media.mode")) == "hls"
    await fan.screenshot(artifacts_dir, "fan-over-hls")

    await host.request("room:end", {"room_id": room_id})
    replay = fan.page.get_by_label("Replay of this room")
    await expect(replay).to_be_visible(timeout=15_000)
    await replay.evaluate("(e) => { e.muted = true; return e.play(); }")
    async with asyncio.timeout(20):
        while (await element(fan, "audio[aria-label='Replay of this room']"))["t"] < 1.0:
            await asyncio.sleep(0.25)
    await fan.screenshot(artifacts_dir, "replay")
    assert fan.errors == [] and fan.dialogs == []
