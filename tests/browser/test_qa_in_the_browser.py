"""The Q&A panel in Chromium: a fan asks, the host approves and pins, the fan sees it on stage
now; other fans vote; markup-like text is shown as text. Screenshots saved as artifacts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import expect

from liveroom.app import RunningServer
from tests.browser.conftest import Launch, sign_in_as_guest, sign_in_with_token
from tests.conftest import make_token
from tests.peers import Peers

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


async def test_a_fan_asks_the_host_approves_and_pins_everyone_sees_it(
    web_server: RunningServer, launch: Launch, python: Peers, artifacts_dir: Path
) -> None:
    host = await launch("host")
    await host.page.goto(web_server.url + "/#/signin")
    await sign_in_with_token(host, make_token("artist", "Aurora Lights", host=True, verified=True))
    await host.page.get_by_label("Title").fill("Ask Aurora anything")
    await host.page.get_by_role("button", name="Start room").click()
    await expect(host.page.get_by_role("heading", name="Questions")).to_be_visible()
    room_id = host.page.url.rsplit("/", 1)[1]

    fan = await launch("fan", viewport=(390, 844))
    await fan.page.goto(f"{web_server.url}/#/room/{room_id}")
    await sign_in_as_guest(fan, "Mina")
    question_box = fan.page.get_by_role("textbox", name="Your question")
    await question_box.fill("x" * 290)
    await expect(fan.page.get_by_text("10 characters too many")).to_be_visible()
    await expect(fan.page.get_by_role("button", name="Ask", exact=True)).to_be_disabled()
    await question_box.fill(XSS)
    await fan.page.get_by_role("button", name="Ask", exact=True).click()
    mine = fan.page.get_by_role("list", name="Your questions waiting")
    await expect(mine.get_by_text(XSS, exact=True)).to_be_visible()
    await expect(mine.get_by_text("Waiting for approval")).to_be_visible()

    # Another fan (Python) asks anonymously in the same room and votes later.
    voter = await python.client("voter", "Voter")
    await voter.request("room:join", {"room_id": room_id})
    ask = {"room_id": room_id, "text": "Favourite song?", "anonymous": True}
    other = (await voter.request("qa:ask", ask))["question"]["id"]

    # The host approves both from the queue and pins the fan's.
    queue = host.page.get_by_role("list", name="Waiting for approval")
    await expect(queue.get_by_role("article")).to_have_count(2)
    for _ in range(2):
        await queue.get_by_role("button", name="Approve").first.click()
    await expect(queue).to_have_count(0)
    questions = host.page.get_by_role("list", name="Questions")
    fans_question = questions.get_by_role("article").filter(has_text=XSS)
    await fans_question.get_by_role("button", name="Pin").click()

    pinned = fan.page.get_by_role("region", name="On stage now")
    await expect(pinned.get_by_text(XSS, exact=True)).to_be_visible()
    listed = fan.page.get_by_role("list", name="Questions").get_by_role("article")
    await expect(listed).to_have_count(1)
    await expect(listed.get_by_text("Anonymous")).to_be_visible()  # author hidden from fans
    await expect(
        questions.get_by_role("article").filter(has_text="Favourite song?").get_by_text("Voter")
    ).to_be_visible()  # and shown to the host

    # The fan upvotes it; the host sees the count.
    await listed.get_by_role("button", name="Upvote (0 votes)").click()
    await expect(listed.get_by_role("button", name="Upvote (1 votes)")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(
        questions.get_by_role("article").filter(has_text="Favourite song?").get_by_text("1")
    ).to_be_visible()
    assert other

    # Staff download the questions with their real authors.
    async with host.page.expect_download() as download_info:
        await host.page.get_by_role("button", name="Download (CSV)").click()
    download = await download_info.value
    exported = await asyncio.to_thread(Path(await download.path()).read_text)
    assert "Mina" in exported and "Voter" in exported and "Favourite song?" in exported

    # The host turns questions off: the fan's form goes, and says so.
    await host.page.get_by_text("Room settings").click()
    await host.page.get_by_role("combobox", name="Questions in this room").select_option("off")
    await host.page.get_by_role("button", name="Save").click()
    await expect(fan.page.get_by_text("Questions are off in this room.")).to_be_visible()
    await expect(fan.page.get_by_role("textbox", name="Your question")).to_be_hidden()

    for p in (host, fan):
        assert await p.page.locator("img").count() == 0
        assert p.dialogs == [] and p.errors == []
    await host.screenshot(artifacts_dir, "host-qa")
    await fan.screenshot(artifacts_dir, "fan-qa-phone")
