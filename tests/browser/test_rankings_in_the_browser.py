"""The rankings page in Chromium: rooms that really ran (real sockets) ranked by listeners, a bar
chart of the top, and a room's listeners over time and markets; a live room shows its chart and
tells its listeners when it breaks the record."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import expect

from liveroom.app import STATS, RunningServer
from liveroom.client import LiveroomClient
from liveroom.config import Config
from tests.browser.conftest import Launch
from tests.conftest import make_token
from tests.peers import Peers

pytestmark = pytest.mark.browser

ROOMS = (("Showcase", 12), ("Fan meeting", 7), ("Late night talk", 3))


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, stats_sample_interval_s=0.2)


async def run_room(python: Peers, server: RunningServer, title: str, fans: int) -> str:
    host = await python.client(f"host-{fans}", f"Artist {fans}", host=True, market="KR")
    room_id: str = (await host.request("room:create", {"title": title}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    markets = ("KR", "JP", "BR")
    clients = await asyncio.gather(
        *(
            LiveroomClient.connect(server.url, make_token(f"{room_id}-{n}", market=markets[n % 3]))
            for n in range(fans)
        )
    )
    await asyncio.gather(*(c.request("room:join", {"room_id": room_id}) for c in clients))
    stats = server.app[STATS]
    async with asyncio.timeout(10):
        while stats.live(room_id) != fans + 1:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # a few samples for the chart
    await host.request("room:end", {"room_id": room_id})
    await asyncio.gather(*(c.close() for c in clients))
    return room_id


async def test_the_rankings_page_ranks_charts_and_breaks_down_by_market(
    web_server: RunningServer, launch: Launch, python: Peers, artifacts_dir: Path
) -> None:
    for title, fans in ROOMS:
        await run_room(python, web_server, title, fans)
    visitor = await launch("visitor")
    await visitor.page.goto(f"{web_server.url}/#/rankings")  # public: no sign-in
    ranked = visitor.page.locator(".rankings .ranking-list").first.locator("li")
    await expect(ranked).to_have_count(3)
    texts = await ranked.all_inner_texts()
    assert [t.split("\n")[1] for t in texts] == [title for title, _ in ROOMS], texts
    assert "13 listeners" in texts[0] and "(13 signed in)" in texts[0]
    await expect(visitor.page.locator(".rankings .chart canvas").first).to_be_visible()

    markets = visitor.page.get_by_role("group", name="Market")
    await markets.get_by_role("button", name="JP").click()
    await expect(ranked.first).to_contain_text("4 listeners")  # Showcase's fans from JP
    await markets.get_by_role("button", name="Every market").click()
    await visitor.page.get_by_role("button", name="Details: Showcase").click()
    detail = visitor.page.locator(".rankings section[aria-labelledby='detail-title']")
    await expect(detail.get_by_text("KR: 5")).to_be_visible()  # 4 fans and the host
    await expect(detail.locator("figure.chart")).to_have_count(2)
    label = await detail.locator("figure.chart").first.get_attribute("aria-label")
    assert label is not None and "peak 13" in label
    await visitor.screenshot(artifacts_dir, "rankings")
    assert visitor.errors == [] and visitor.dialogs == []
