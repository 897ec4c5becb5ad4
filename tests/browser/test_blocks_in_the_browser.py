"""Blocking in Chromium: a fan blocks someone from a question; their questions leave that fan's
panel but not another fan's; the blocked people's list unblocks them again; the stage's member
menu blocks too. Screenshots saved as artifacts."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import expect

from liveroom.app import RunningServer
from liveroom.config import Config
from liveroom.ratelimit import RateLimit
from tests.browser.conftest import Launch, Participant, sign_in_as_guest
from tests.peers import Peers

pytestmark = pytest.mark.browser


@pytest.fixture
def config(config: Config) -> Config:
    """The asker here asks more often than one question per 30 s."""
    return replace(config, rate_limits={**config.rate_limits, "questions": RateLimit(100, 1)})


async def _fan(launch: Launch, url: str, room_id: str, name: str) -> Participant:
    fan = await launch(name)
    await fan.page.goto(f"{url}/#/room/{room_id}")
    await sign_in_as_guest(fan, name)
    await expect(fan.page.get_by_role("heading", name="Questions")).to_be_visible()
    return fan


async def test_a_fan_blocks_an_asker_and_no_longer_sees_their_questions(
    web_server: RunningServer, launch: Launch, python: Peers, artifacts_dir: Path
) -> None:
    host = await python.client("artist", "Artist", host=True)
    settings = {"qa_mode": "open"}
    created = await host.request("room:create", {"title": "Ask freely", "settings": settings})
    room_id = created["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    troll = await python.client("troll", "Troll Face")
    carol = await python.client("carol", "Carol")
    for client in (troll, carol):
        await client.request("room:join", {"room_id": room_id})

    ana = await _fan(launch, web_server.url, room_id, "Ana")
    bo = await _fan(launch, web_server.url, room_id, "Bo")
    await troll.request("qa:ask", {"room_id": room_id, "text": "Look at me!"})

    def questions(p: Participant):  # type: ignore[no-untyped-def]
        return p.page.get_by_role("list", name="Questions", exact=True).get_by_role("article")

    for p in (ana, bo):
        await expect(questions(p).filter(has_text="Look at me!")).to_have_count(1)

    # Ana blocks the asker from the question itself.
    await (
        questions(ana)
        .filter(has_text="Look at me!")
        .get_by_role("button", name="Block Troll Face")
        .click()
    )
    await expect(ana.page.get_by_text("Blocked Troll Face")).to_be_visible()
    await expect(questions(ana).filter(has_text="Look at me!")).to_have_count(0)
    await expect(questions(bo).filter(has_text="Look at me!")).to_have_count(1)

    # New questions: the troll's reach Bo only; Carol's reach both.
    await troll.request("qa:ask", {"room_id": room_id, "text": "Still here!"})
    await carol.request("qa:ask", {"room_id": room_id, "text": "Which song is next?"})
    for p in (ana, bo):
        await expect(questions(p).filter(has_text="Which song is next?")).to_have_count(1)
    await expect(questions(bo).filter(has_text="Still here!")).to_have_count(1)
    await expect(questions(ana)).to_have_count(1)
    await ana.screenshot(artifacts_dir, "blocker-questions")
    await bo.screenshot(artifacts_dir, "other-fan-questions")

    # The list of blocked people, from the top bar: unblocking brings the questions back.
    await ana.page.get_by_role("button", name="Blocked people").click()
    blocked = ana.page.get_by_role("list", name="Blocked people")
    await expect(blocked.get_by_text("Troll Face")).to_be_visible()
    await ana.screenshot(artifacts_dir, "blocked-people")
    await blocked.get_by_role("button", name="Unblock Troll Face").click()
    await expect(ana.page.get_by_text("You haven't blocked anyone.")).to_be_visible()
    await ana.page.get_by_role("button", name="Close").click()
    await expect(questions(ana)).to_have_count(3)

    # From the stage: Bo blocks the host in the member menu, and finds them in the list.
    stage = bo.page.get_by_role("list", name="On stage")
    await stage.get_by_role("button", name=re.compile(r"^Artist")).click()
    menu = bo.page.get_by_role("dialog")
    await menu.get_by_role("button", name="Block Artist").click()
    await expect(menu.get_by_role("button", name="Unblock Artist")).to_be_visible()
    await menu.get_by_role("button", name="Close").click()
    await bo.page.get_by_role("button", name="Blocked people").click()
    blocked = bo.page.get_by_role("list", name="Blocked people")
    await expect(blocked.get_by_text("Artist")).to_be_visible()

    for p in (ana, bo):
        assert p.dialogs == [] and p.errors == []
