"""A fan's browser on one node hears the room run by another, and hears it again by itself after
that node is killed: the web client follows ``rtc:restart`` (media moved) with no reload."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import Launch, sign_in_as_guest, until_hearing
from tests.e2e.server_process import Cluster
from tests.e2e.test_cluster import TONE_HZ


async def test_a_browser_hears_the_room_again_after_its_node_dies(
    cluster: Cluster, launch: Launch
) -> None:
    host = await cluster.client("a", "artist", host=True)
    room_id = str((await host.request("room:create", {"title": "Failover"}))["room"]["id"])
    owner = await cluster.owner(room_id)
    speaker_node, browser_node = sorted(set(cluster.nodes) - {owner})
    await host.request("room:join", {"room_id": room_id})
    singer = await cluster.client(speaker_node, "singer")
    await singer.request("room:join", {"room_id": room_id})
    await host.request("stage:invite", {"room_id": room_id, "user_id": "singer", "role": "speaker"})
    await singer.next_event("stage:invited")
    await singer.request("stage:accept", {"room_id": room_id})
    await singer.request("stage:unmute", {"room_id": room_id})
    await cluster.hear(singer, room_id, TONE_HZ)  # follows rtc:restart too

    fan = await launch("fan")
    await fan.page.goto(f"{cluster.nodes[browser_node].url}/#/room/{room_id}")
    await sign_in_as_guest(fan, "Mina")
    await expect(fan.page.get_by_role("heading", name="Failover")).to_be_visible()
    await until_hearing(fan)
    await fan.page.evaluate("() => { window.before = window.liveroom.view.audio.pc; }")

    cluster.nodes[owner].kill_now()
    await until_hearing(fan, timeout=45)  # a new connection, to the node that took the room
    assert await fan.page.evaluate("() => window.liveroom.view.audio.pc !== window.before")
    assert fan.errors == []
