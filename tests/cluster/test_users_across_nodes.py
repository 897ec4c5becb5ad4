"""What concerns a user reaches every node: a server-wide ban cuts them off everywhere, a block
made through one node hides what they block in a room another node runs, and a reminder reaches
them wherever they are connected."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from liveroom.app import USERS
from liveroom.client import LiveroomClient, Refused
from tests.cluster.conftest import TwoNodes
from tests.conftest import make_token
from tests.fakes import eventually


async def test_a_server_ban_cuts_the_user_off_on_every_node(two_nodes: TwoNodes) -> None:
    host = await two_nodes.client(two_nodes.a, "artist", host=True)
    room_id = (await host.request("room:create", {"title": "Banned"}))["room"]["id"]
    running, other = two_nodes.running(room_id)
    trolls = [await two_nodes.client(node, "troll") for node in (running, other)]
    await trolls[1].request("room:join", {"room_id": room_id})
    admin = await two_nodes.client(other, "root", admin=True)
    await admin.request("room:join", {"room_id": room_id})

    ban = {"room_id": room_id, "user_id": "troll", "everywhere": True}
    await admin.request("room:remove", ban)  # run on the room's node
    for troll in trolls:  # both of their sockets, on either node
        await asyncio.wait_for(troll.disconnected.wait(), timeout=5)
    for node in (running, other):
        with pytest.raises(Refused, match="banned"):
            await LiveroomClient.connect(node.url, make_token("troll"))


def _question_ids(client: LiveroomClient) -> set[str]:
    seen = set()
    for update in client.events("qa:update"):
        full = update.get("full")
        for q in (full["questions"] if full else update.get("changes", ())) or ():
            seen.add(q["id"])
    return seen


def _taps(client: LiveroomClient) -> Counter[str]:
    total: Counter[str] = Counter()
    for update in client.events("reactions"):
        total.update(update["counts"])
    return total


async def test_a_block_made_on_one_node_hides_in_a_room_run_on_the_other(
    two_nodes: TwoNodes,
) -> None:
    host = await two_nodes.client(two_nodes.a, "artist", host=True)
    created = await host.request(
        "room:create", {"title": "Blocks", "settings": {"qa_mode": "open"}}
    )
    room_id = created["room"]["id"]
    running, other = two_nodes.running(room_id)
    ref = {"room_id": room_id}
    ana = await two_nodes.client(other, "ana")  # blocks once in the room
    cy = await two_nodes.client(other, "cy")  # blocked before joining
    bo = await two_nodes.client(other, "bo")  # blocks nobody
    troll = await two_nodes.client(running, "troll")
    await running.server.app[USERS].flush()  # the troll is known: he can be blocked
    await cy.request("user:block", {"user_id": "troll", "on": True})
    for client in (ana, cy, bo, troll):
        await client.request("room:join", ref)
    await ana.next_event("qa:update", lambda e: "full" in e)
    ack = await ana.request("user:block", {"user_id": "troll", "on": True})
    assert (await ana.next_event("user:blocks"))["blocked"] == ack["blocked"]
    # What she sees there is sent again, from the room's node, without the troll.
    await ana.next_event("qa:update", lambda e: "full" in e)

    hidden = (await troll.request("qa:ask", {**ref, "text": "Look at me"}))["question"]["id"]
    marker = (await bo.request("qa:ask", {**ref, "text": "When is the tour?"}))["question"]["id"]
    await troll.request("react", {**ref, "emoji": "🔥"})
    await bo.request("react", {**ref, "emoji": "👏"})
    for client in (ana, cy, bo):
        await eventually(lambda c=client: marker in _question_ids(c), timeout=5)  # type: ignore[misc]
        await eventually(lambda c=client: _taps(c)["👏"] == 1, timeout=5)  # type: ignore[misc]
    assert hidden in _question_ids(bo)
    assert _taps(bo)["🔥"] == 1
    for blocker in (ana, cy):
        assert hidden not in _question_ids(blocker)
        assert _taps(blocker)["🔥"] == 0
        assert "troll" not in json.dumps(blocker.events("qa:update"))
        listing = await blocker.request("qa:list", ref)
        assert hidden not in {q["id"] for q in listing["questions"]}


async def test_a_reminder_reaches_the_user_on_any_node(two_nodes: TwoNodes) -> None:
    host = await two_nodes.client(two_nodes.a, "artist", host=True)
    soon = 2_000_000_000_000
    created = await host.request("room:create", {"title": "Premiere", "scheduled_for": soon})
    room_id = created["room"]["id"]
    running, other = two_nodes.running(room_id)
    fans = {node.id: await two_nodes.client(node, "fan") for node in (running, other)}
    await fans[other.id].request("room:remind", {"room_id": room_id, "on": True})
    await host.request("room:start", {"room_id": room_id})
    for fan in fans.values():  # both of the fan's sockets, on either node
        heard = await fan.next_event("room:started")
        assert heard == {"room_id": room_id, "title": "Premiere"}
