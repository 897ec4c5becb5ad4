"""Several nodes as separate processes on one database and one real Redis (a private
``redis-server``): events reach members on every node, counts add up, audio crosses nodes, and a
room outlives its node's ``kill -9``."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiohttp

from liveroom.client.bot import RoomAudio
from liveroom.media.mixer import SAMPLE_RATE
from tests.e2e.server_process import STATS_INTERVAL_S, Cluster
from tests.hearing import band

TONE_HZ = 440


async def heard_now(audio: RoomAudio, timeout: float = 20) -> float:
    """Wait for 1.5 s more of received audio; the tone's share of its last second."""
    async with asyncio.timeout(timeout):
        start = audio.recording.seconds
        while audio.recording.seconds < start + 1.5:
            await asyncio.sleep(0.05)
    return band(audio.recording.pcm()[-SAMPLE_RATE:], TONE_HZ)


async def _room_with_speaker_and_listener_elsewhere(
    cluster: Cluster,
) -> tuple[dict[str, Any], str, str]:
    """A room (on the least loaded node), its host on ``a``, a speaker and a listener on the two
    nodes that do not run it: the people, the room, the node that runs it."""
    host = await cluster.client("a", "artist", host=True)
    room_id = str((await host.request("room:create", {"title": "Three nodes"}))["room"]["id"])
    await host.request("room:join", {"room_id": room_id})
    owner = await cluster.owner(room_id)
    elsewhere = sorted(set(cluster.nodes) - {owner})
    speaker = await cluster.client(elsewhere[0], "singer")
    listener = await cluster.client(elsewhere[1], "listener")
    for member in (speaker, listener):
        await member.request("room:join", {"room_id": room_id})
    await speaker.request("stage:request", {"room_id": room_id})
    await host.request("stage:approve", {"room_id": room_id, "user_id": "singer"})
    await speaker.next_event("room:state", lambda s: s["you"]["role"] == "speaker")
    await speaker.request("stage:unmute", {"room_id": room_id})
    return {"host": host, "speaker": speaker, "listener": listener}, room_id, owner


async def test_members_on_three_nodes_share_one_room(cluster: Cluster) -> None:
    people, room_id, _ = await _room_with_speaker_and_listener_elsewhere(cluster)
    host, speaker, listener = people["host"], people["speaker"], people["listener"]
    fan = await cluster.client("c", "fan")
    await fan.request("room:join", {"room_id": room_id})
    both = await cluster.client("b", "fan")  # the same user on another node counts once
    await both.request("room:join", {"room_id": room_id})
    await host.next_event("room:count", lambda e: e["listeners"] == 4, timeout=15)

    asked = await listener.request("qa:ask", {"room_id": room_id, "text": "From node C?"})
    question_id = asked["question"]["id"]
    await host.request("qa:approve", {"question_id": question_id})
    await speaker.next_event(
        "qa:update", lambda e: any(q["id"] == question_id for q in e.get("changes", ()))
    )
    url = "https://example.test/song.mp3"
    await host.request("playlist:add", {"room_id": room_id, "url": url, "title": "Song"})
    await fan.next_event(
        "playlist:state", lambda e: any(i["url"] == url for i in e.get("items", ()))
    )

    await cluster.hear(speaker, room_id, TONE_HZ)  # its media to the room's node
    hearing = await cluster.hear(listener, room_id)  # on the third node
    assert await heard_now(hearing) > 0.3, cluster.output()

    # HLS: every node answers for the room, the others through the room's node.
    owner = await cluster.owner(room_id)
    async with aiohttp.ClientSession() as http:
        for node in cluster.nodes.values():
            async with http.get(f"{node.url}/hls/{room_id}/live.m3u8") as reply:
                assert reply.status == 200, cluster.output()
                playlist = await reply.text()
        segment = next(line for line in playlist.splitlines() if line.endswith(".ts"))
        bodies = []
        for node_id in (owner, *sorted(set(cluster.nodes) - {owner})):
            async with http.get(f"{cluster.nodes[node_id].url}/hls/{room_id}/{segment}") as reply:
                assert reply.status == 200
                assert reply.headers["Content-Type"] == "video/mp2t"
                bodies.append(await reply.read())
        assert bodies[0] and bodies.count(bodies[0]) == 3  # the same bytes from every node
        # Only names the packager writes are asked of another node: nothing else is proxied.
        elsewhere = cluster.nodes[sorted(set(cluster.nodes) - {owner})[0]].url
        for name in ("..%2F..%2Fmetrics", "..%2F..%2Fapi%2Frooms", "live.m3u8%3Fx%3D1"):
            async with http.get(f"{elsewhere}/hls/{room_id}/{name}") as reply:
                assert reply.status == 404, name

    # The room's node stops dead for longer than its lease (a frozen VM); another node takes
    # the room over meanwhile. Back, the old node runs the room no more: a member whose socket
    # is on it takes part where the room runs now, and the listener hears the speaker from there.
    near = await cluster.client(owner, "near")
    await near.request("room:join", {"room_id": room_id})
    await host.next_event("room:count", lambda e: e["listeners"] == 5, timeout=15)
    cluster.nodes[owner].pause()
    new_owner = await cluster.owner(room_id, other_than=owner)
    cluster.nodes[owner].resume()
    host.clear("room:count")
    await near.next_event("rtc:restart", timeout=15)  # told by the room's new node
    await near.request("qa:ask", {"room_id": room_id, "text": "Back from the pause?"})
    async with asyncio.timeout(20):
        while await heard_now(hearing, timeout=20) < 0.3:
            pass
    assert await cluster.owner(room_id) == new_owner, cluster.output()
    await host.next_event("room:count", lambda e: e["listeners"] == 5, timeout=15)
    assert "Traceback" not in cluster.output(), cluster.output()


async def test_the_rooms_node_killed_its_room_lives_on_another(cluster: Cluster) -> None:
    people, room_id, owner = await _room_with_speaker_and_listener_elsewhere(cluster)
    host, speaker, listener = people["host"], people["speaker"], people["listener"]
    questions = []
    for i in range(5):
        asked = await listener.request("qa:ask", {"room_id": room_id, "text": f"Question {i}?"})
        questions.append(asked["question"]["id"])
        await host.request("qa:approve", {"question_id": questions[-1]})
    await speaker.request("qa:vote", {"question_id": questions[0]})
    await cluster.hear(speaker, room_id, TONE_HZ)
    hearing = await cluster.hear(listener, room_id)
    assert await heard_now(hearing) > 0.3, cluster.output()

    # A fan on the room's node, who dies with it before the room's next write to SQL: counted
    # once all the same (the room's node keeps who was there in Redis).
    await asyncio.sleep(STATS_INTERVAL_S + 0.5)  # everyone before is in SQL by now
    ghost = await cluster.client(owner, "ghost")
    await ghost.request("room:join", {"room_id": room_id})
    await cluster.until_remembered(room_id, "ghost")  # in Redis (written just after the ack)
    killed = time.monotonic()
    cluster.nodes[owner].kill_now()
    # The listener hears the speaker again once B or C has the room: lease, claim, rebuild,
    # renegotiation — within 10 s.
    async with asyncio.timeout(30):
        while await heard_now(hearing, timeout=30) < 0.3:
            pass
    assert time.monotonic() - killed < 10 + 1.5, cluster.output()

    # The host comes back through another node and is still the host; nothing acked is lost.
    survivor = sorted(set(cluster.nodes) - {owner})[0]
    host_again = await cluster.client(survivor, "artist", host=True)
    joined = await host_again.request("room:join", {"room_id": room_id})
    assert joined["room"]["you"]["role"] == "host"
    assert [s["id"] for s in joined["room"]["speakers"]] == ["singer"]
    listing = await host_again.request("qa:list", {"room_id": room_id})
    by_id = {q["id"]: q for q in listing["questions"]}
    assert set(questions) <= set(by_id)
    assert by_id[questions[0]]["votes"] == 1

    # Unique listeners stay exact: the host, the singer, the listener and the ghost, once each.
    async with aiohttp.ClientSession() as http:
        url = f"{cluster.nodes[survivor].url}/api/rankings?metric=unique&period=day"
        async with asyncio.timeout(20):
            while True:
                async with http.get(url) as reply:
                    ranked = {r["room_id"]: r["value"] for r in (await reply.json())["rankings"]}
                if ranked.get(room_id) == 4:
                    break
                assert ranked.get(room_id, 0) <= 4, ranked
                await asyncio.sleep(0.5)


async def test_a_dead_nodes_members_drop_out_of_the_count(cluster: Cluster) -> None:
    host = await cluster.client("a", "artist", host=True)
    room_id = str((await host.request("room:create", {"title": "Crowd"}))["room"]["id"])
    await host.request("room:join", {"room_id": room_id})
    # The crowd's node: neither the room's nor the host's (the room may be on ``a`` or not).
    owner = await cluster.owner(room_id)
    crowded = sorted(set(cluster.nodes) - {owner, "a"})[-1]
    fan = await cluster.client(sorted(set(cluster.nodes) - {crowded})[-1], "fan")
    await fan.request("room:join", {"room_id": room_id})
    for batch in range(5):
        crowd = await asyncio.gather(
            *(cluster.client(crowded, f"fan-{batch}-{i}") for i in range(20))
        )
        await asyncio.gather(*(c.request("room:join", {"room_id": room_id}) for c in crowd))
    await host.next_event("room:count", lambda e: e["listeners"] == 102, timeout=20)

    killed = time.monotonic()
    cluster.nodes[crowded].kill_now()
    await host.next_event("room:count", lambda e: e["listeners"] == 2, timeout=20)
    # The heartbeat's time to live (5 s), a tick to notice, one to send the count; slack for a
    # loaded machine.
    assert time.monotonic() - killed < 5 + 5, cluster.output()


async def test_sigterm_on_the_rooms_node_hands_the_room_over(cluster: Cluster) -> None:
    people, room_id, owner = await _room_with_speaker_and_listener_elsewhere(cluster)
    speaker, listener = people["speaker"], people["listener"]
    await cluster.hear(speaker, room_id, TONE_HZ)
    hearing = await cluster.hear(listener, room_id)
    assert await heard_now(hearing) > 0.3, cluster.output()

    assert await cluster.nodes[owner].stop_with(signal.SIGTERM) == 0
    async with asyncio.timeout(30):
        while await heard_now(hearing, timeout=30) < 0.3:
            pass
    state = await listener.call("qa:list", {"room_id": room_id})
    assert state["ok"], state
    assert listener.events("server:shutdown") == []  # only that node's sockets were told
    rejoined = await cluster.client(sorted(set(cluster.nodes) - {owner})[0], "late-fan")
    room = (await rejoined.request("room:join", {"room_id": room_id}))["room"]
    assert [s["id"] for s in room["speakers"]] == ["singer"]
    assert room["host"]["id"] == "artist"
    if owner == "a":  # the host's socket went with its node: the seat is held for them
        assert "artist" in room["away"]
    assert "Traceback" not in cluster.nodes[owner].output(), cluster.output()
