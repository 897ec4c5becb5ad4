"""The web client in real Chromium: a host and a fan run a room with live audio, the fan comes on
stage, a Python aiortc listener hears both; names are text, never markup; the client survives a
network drop; the staff's tools act; a scheduled room starts in place, and its host is asked
before leaving ends it. Screenshots of each view are saved as artifacts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from liveroom.app import SIGNALING, SIO, RunningServer
from liveroom.client.audio import AudioSession
from liveroom.media.mixer import SAMPLE_RATE
from tests.browser.conftest import (
    Launch,
    audio_stats,
    sign_in_as_guest,
    sign_in_with_token,
    until_hearing,
)
from tests.conftest import make_token
from tests.hearing import band, until_heard
from tests.peers import Peers

pytestmark = pytest.mark.browser

HOST_HZ, FAN_HZ = 440, 880
XSS_NAME = "<img src=x onerror=alert(1)>"
PHONE = (390, 844)
# Keep the names of the events the page sends from now on, in window.calls.
RECORD_CALLS_JS = """() => {
  const c = window.liveroom.connection, call = c.call.bind(c);
  window.calls = [];
  c.call = (event, ...rest) => { window.calls.push(event); return call(event, ...rest); };
}"""


async def heard_after(session: AudioSession, seconds: float = 3.0) -> Any:
    """``seconds`` of what ``session`` hears, starting one second from now."""
    heard = session.recording
    start = heard.sample_at(time.monotonic()) + SAMPLE_RATE
    await until_heard(heard, start / SAMPLE_RATE + seconds, timeout=30)
    return heard.pcm()[start : start + int(seconds * SAMPLE_RATE)]


async def test_host_and_fan_run_a_room_and_everyone_hears_both(
    web_server: RunningServer, launch: Launch, python: Peers, artifacts_dir: Path
) -> None:
    host = await launch("host", HOST_HZ)
    fan = await launch("fan", FAN_HZ, viewport=PHONE)

    # The host signs in with an operator token, starts a room and opens the microphone.
    await host.page.goto(web_server.url + "/#/signin")
    await sign_in_with_token(host, make_token("artist", "Aurora Lights", host=True, verified=True))
    await host.page.get_by_label("Title").fill("Midnight premiere: the new album, live")
    await host.page.get_by_label("Topics").fill("music, premiere, Q&A")
    await host.page.get_by_role("button", name="Start room").click()
    await expect(host.page.get_by_role("heading", name="Midnight premiere")).to_be_visible()
    await host.page.get_by_label("Original sound").check()  # a sine survives no voice processing
    await host.page.get_by_role("button", name="Unmute").click()
    await expect(host.page.get_by_role("button", name="Mute", exact=True)).to_be_visible()
    room_id = host.page.url.rsplit("/", 1)[1]

    listener = await python.client("ears", "Python listener")
    await listener.request("room:join", {"room_id": room_id})
    ears = await python.audio(listener, room_id, None)

    # The fan opens the room's link, signs in as a guest on the way, and hears the host.
    await fan.page.goto(f"{web_server.url}/#/room/{room_id}")
    await sign_in_as_guest(fan, XSS_NAME)
    await expect(fan.page.get_by_role("button", name="Raise hand")).to_be_visible()
    heard = await until_hearing(fan)
    assert heard["packetsLost"] <= heard["packetsReceived"] // 10, heard
    fan_id = await fan.page.evaluate("() => window.liveroom.session.user.id")

    # Hand up; the host approves it from the queue; the fan opens their microphone.
    await fan.page.get_by_role("button", name="Raise hand").click()
    await expect(fan.page.get_by_role("button", name="Lower hand")).to_be_visible()
    await expect(host.page.get_by_role("heading", name="Raised hands (1)")).to_be_visible()
    await host.page.get_by_role("button", name=f"Approve {XSS_NAME}").click()
    await expect(fan.page.get_by_role("button", name="Unmute")).to_be_visible()
    fan_on_host_stage = host.page.locator(f'li.person[data-key="{fan_id}"]')
    await expect(fan_on_host_stage).to_have_class("person muted")  # new microphones start muted
    await fan.page.get_by_label("Original sound").check()
    await fan.page.get_by_role("button", name="Unmute").click()
    await expect(fan.page.get_by_role("button", name="Mute", exact=True)).to_be_visible()

    # The Python listener hears both tones; the host's page shows the fan speaking.
    await expect(host.page.locator(f'li.person.speaking[data-key="{fan_id}"]')).to_be_visible(
        timeout=20_000
    )
    both = await heard_after(ears)
    assert band(both, HOST_HZ) > 0.1, band(both, HOST_HZ)
    assert band(both, FAN_HZ) > 0.1, band(both, FAN_HZ)
    assert (await audio_stats(fan))["outbound"]["packetsSent"] > 0

    # The markup-like name is text on every page: no element made of it, no script run.
    await expect(host.page.get_by_text(XSS_NAME, exact=True).first).to_be_visible()
    await expect(fan.page.get_by_text(XSS_NAME, exact=True).first).to_be_visible()
    for p in (host, fan):
        assert await p.page.locator("img").count() == 0
        assert p.dialogs == []

    await fan.page.get_by_role("button", name="React 🔥").click()
    await expect(host.page.locator(".burst").first).to_be_attached(timeout=5_000)

    # Home lists the live room with its listeners, and a scheduled one to be reminded of.
    later = int(time.time() * 1000) + 26 * 3600 * 1000
    await python.client("band", "The Band", host=True, verified=True)
    party = {"title": "Album listening party", "scheduled_for": later, "topics": ["pop"]}
    await python.clients[-1].request("room:create", party)
    home = await host.context.new_page()
    await home.goto(web_server.url + "/#/")
    await expect(home.get_by_role("link", name="Join Midnight premiere")).to_be_visible()
    await expect(home.get_by_text("3 listening")).to_be_visible(timeout=15_000)
    remind = home.get_by_role("button", name="Remind me about Album listening party")
    await remind.click()
    await expect(remind).to_have_attribute("aria-pressed", "true")
    await home.screenshot(path=artifacts_dir / f"{host.test_name}-home.png", full_page=True)
    await home.close()
    await host.screenshot(artifacts_dir, "host-view")
    await fan.screenshot(artifacts_dir, "fan-view-phone")
    assert host.errors == [] and fan.errors == []


async def test_fan_comes_back_by_itself_after_a_network_drop(
    web_server: RunningServer, launch: Launch, python: Peers
) -> None:
    artist = await python.client("artist", "Artist", host=True)
    room_id = (await artist.request("room:create", {"title": "Still here?"}))["room"]["id"]
    await artist.request("room:join", {"room_id": room_id})
    await artist.request("stage:unmute", {"room_id": room_id})
    await python.audio(artist, room_id, HOST_HZ)

    fan = await launch("fan")
    await fan.page.goto(f"{web_server.url}/#/room/{room_id}")
    await sign_in_as_guest(fan, "Mina")
    await until_hearing(fan)
    fan_id = await fan.page.evaluate("() => window.liveroom.session.user.id")
    await fan.page.evaluate("() => { window.firstConnection = window.liveroom.view.audio.pc; }")

    # Keyboard only: Tab to "Raise hand", Enter; the host sees the hand.
    for _ in range(60):
        await fan.page.keyboard.press("Tab")
        focused = await fan.page.evaluate("() => document.activeElement?.textContent?.trim()")
        if focused == "Raise hand":
            break
    else:
        pytest.fail("“Raise hand” can't be reached with the Tab key")
    await fan.page.keyboard.press("Enter")
    await artist.next_event("room:state", lambda s: [u["id"] for u in s["requests"]] == [fan_id])

    # The network drops under the fan's socket: the server sees its transport die.
    sio, signaling = web_server.app[SIO], web_server.app[SIGNALING]
    for sid in signaling.sids_of_user(fan_id):
        await sio.engine.abort(sio.manager.eio_sid_from_sid(sid, "/"))

    # The client reconnects, joins the room again and offers audio again, on its own.
    await expect(fan.page.get_by_text("Reconnected")).to_be_visible(timeout=20_000)
    state = await artist.next_event("room:count", lambda e: e["listeners"] == 2, timeout=20)
    assert state["room_id"] == room_id
    await until_hearing(fan)
    assert await fan.page.evaluate("() => window.liveroom.view.audio.pc !== window.firstConnection")
    assert fan.errors == []


async def test_a_fan_told_the_server_is_restarting_says_so_and_comes_back(
    web_server: RunningServer, launch: Launch, python: Peers
) -> None:
    artist = await python.client("artist", "Artist", host=True)
    room_id = (await artist.request("room:create", {"title": "Deploy day"}))["room"]["id"]
    await artist.request("room:join", {"room_id": room_id})
    fan = await launch("fan")
    await fan.page.goto(f"{web_server.url}/#/room/{room_id}")
    await sign_in_as_guest(fan, "Mina")
    await expect(fan.page.get_by_role("heading", name="Deploy day")).to_be_visible()
    await artist.next_event("room:count", lambda e: e["listeners"] == 2)
    fan_id = await fan.page.evaluate("() => window.liveroom.session.user.id")
    await fan.page.evaluate(
        "() => { window.statuses = [];"
        " window.liveroom.connection.addEventListener('status',"
        " (e) => window.statuses.push(e.detail)); }"
    )

    # What the server does on its way down, to this fan alone: the notice, then the close.
    sio, signaling = web_server.app[SIO], web_server.app[SIGNALING]
    for sid in signaling.sids_of_user(fan_id):
        await sio.emit("server:shutdown", {"at": 0}, to=sid)
        await sio.disconnect(sid)

    await expect(fan.page.get_by_text("Reconnected")).to_be_visible(timeout=20_000)  # rejoined
    statuses = await fan.page.evaluate("() => window.statuses")
    assert "restarting" in statuses and "reconnecting" not in statuses, statuses
    assert statuses[-1] == "online"
    assert fan.errors == []


async def test_staff_tools_search_invite_mute_ban_and_end(
    web_server: RunningServer, launch: Launch, python: Peers, artifacts_dir: Path
) -> None:
    host = await launch("host")
    await host.page.goto(web_server.url + "/#/signin")
    await sign_in_with_token(host, make_token("artist", "Artist", host=True))
    await host.page.get_by_label("Title").fill("Fan meeting")
    await host.page.get_by_role("button", name="Start room").click()
    await expect(host.page.get_by_role("heading", name="Fan meeting")).to_be_visible()
    room_id = host.page.url.rsplit("/", 1)[1]

    one = await python.client("one", "Fan One")
    two = await python.client("two", "Fan Two", verified=True)
    for fan in (one, two):
        await fan.request("room:join", {"room_id": room_id})

    # Search the room, invite Fan Two to speak from the member menu; they accept.
    await host.page.get_by_role("searchbox", name="Find people").fill("Fan")
    await host.page.get_by_role("button", name="Search").click()
    await expect(host.page.get_by_role("button", name="Actions for Fan One")).to_be_visible()
    menu = host.page.get_by_role("dialog")
    await host.page.get_by_role("button", name="Actions for Fan Two").click()
    await menu.get_by_role("button", name="Invite to speak").click()
    invited = await two.next_event("stage:invited")
    assert invited["role"] == "speaker" and invited["by"]["id"] == "artist"
    await two.request("stage:accept", {"room_id": room_id})
    await two.request("stage:unmute", {"room_id": room_id})
    on_stage = host.page.get_by_role("button", name="Fan Two, verified, Speaker", exact=True)
    await expect(on_stage).to_be_visible()

    # A refused action shows the server's words: Fan One left after the search was made.
    await one.request("room:leave", {"room_id": room_id})
    await host.page.get_by_role("button", name="Actions for Fan One").click()
    await menu.get_by_role("button", name="Invite to speak").click()
    await expect(host.page.get_by_role("alert")).to_contain_text("not in this room")
    await menu.get_by_role("button", name="Close").click()
    await one.request("room:join", {"room_id": room_id})

    # From the stage: mute, then remove with a ban.
    await on_stage.click()
    await menu.get_by_role("button", name="Mute").click()
    muted = await two.next_event("room:state", lambda s: "two" in s["muted"])
    assert muted["you"]["role"] == "speaker"
    await host.page.get_by_role("button", name="Fan Two, verified, Speaker, muted").click()
    await menu.get_by_role("button", name="Remove and ban").click()
    assert (await two.next_event("room:removed"))["ban"] is True
    await expect(on_stage).to_have_count(0)
    await host.screenshot(artifacts_dir, "host-moderation")

    # The host ends the room for everyone, after confirming.
    await host.page.get_by_role("button", name="End room").click()
    await host.page.get_by_role("dialog").get_by_role("button", name="End room").click()
    await one.next_event("room:ended")
    await expect(host.page.get_by_text("This room has ended")).to_be_visible()
    assert host.errors == []


async def test_a_scheduled_room_starts_in_place_and_the_host_confirms_leaving(
    web_server: RunningServer, launch: Launch, artifacts_dir: Path
) -> None:
    host = await launch("host")
    fan = await launch("fan")
    await host.page.goto(web_server.url + "/#/signin")
    await sign_in_with_token(host, make_token("artist", "Artist", host=True))
    await host.page.get_by_label("Title").fill("Later on")
    await host.page.get_by_label("Start later").fill("2099-01-01T20:00")
    await host.page.get_by_role("button", name="Schedule room").click()
    await host.page.get_by_role("link", name="Later on").click()
    await expect(host.page.get_by_role("button", name="Start the room now")).to_be_visible()
    room_id = host.page.url.rsplit("/", 1)[1]

    # Not started yet: the fan can ask to be reminded from the room's own page.
    await fan.page.goto(f"{web_server.url}/#/room/{room_id}")
    await sign_in_as_guest(fan, "Mina")
    await expect(fan.page.get_by_role("heading", name="hasn't started yet")).to_be_visible()
    await fan.page.get_by_role("button", name="Remind me").click()
    await expect(fan.page.get_by_role("button", name="🔔 Reminder set")).to_be_visible()

    # The host starts it: the same view goes live with audio, without leaving and joining again.
    await host.page.evaluate(RECORD_CALLS_JS)
    await host.page.get_by_role("button", name="Start the room now").click()
    await expect(host.page.get_by_role("button", name="Unmute")).to_be_visible()
    await expect(host.page.get_by_role("status").filter(has_text="Audio connected")).to_be_visible()
    assert not {"room:join", "room:leave"} & set(await host.page.evaluate("() => window.calls"))

    # The reminder arrives on the fan's page; "Join" joins that same page.
    await fan.page.get_by_role("button", name="Join").click()
    await expect(fan.page.get_by_role("button", name="Raise hand")).to_be_visible()
    await fan.page.evaluate(RECORD_CALLS_JS)
    await fan.page.locator(".skip-link").focus()
    await fan.page.keyboard.press("Enter")  # moves the focus, and stays in the room
    await expect(fan.page.locator("main")).to_be_focused()
    assert fan.page.url.endswith(room_id)

    # Leaving would end the room: the host is asked first; cancelling stays.
    await host.page.get_by_role("link", name="liveroom home").click()
    dialog = host.page.get_by_role("dialog")
    await expect(dialog).to_contain_text("leaving ends the room for everyone")
    await dialog.get_by_role("button", name="Cancel").click()
    assert host.page.url.endswith(room_id)
    await host.page.get_by_role("link", name="Leave", exact=True).click()
    await dialog.get_by_role("button", name="Leave").click()
    await expect(host.page.get_by_role("heading", name="Live now")).to_be_visible()
    await expect(fan.page.get_by_role("heading", name="This room has ended")).to_be_focused()
    assert "room:leave" not in await fan.page.evaluate("() => window.calls")
    await fan.screenshot(artifacts_dir, "fan-room-ended")
    assert host.errors == [] and fan.errors == []
