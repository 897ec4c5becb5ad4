"""Q&A through a real server with real Socket.IO clients: visibility, votes, moderation, bringing
the asker on stage, deltas, export and the rate limit."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from liveroom.app import RunningServer, start_server
from liveroom.client import CallFailed, LiveroomClient
from liveroom.config import Config
from tests.conftest import make_token
from tests.peers import Peers


@dataclass
class QaRoom:
    room_id: str
    host: LiveroomClient
    moderator: LiveroomClient
    fans: list[LiveroomClient]


async def latest(client: LiveroomClient, room_id: str, **match: Any) -> dict[str, Any]:
    """The next qa:update of ``room_id`` whose fields equal ``match``."""
    return await client.next_event(
        "qa:update",
        lambda e: e["room_id"] == room_id and all(e.get(k) == v for k, v in match.items()),
    )


@pytest.fixture
async def peers(server: RunningServer) -> AsyncIterator[Peers]:
    p = Peers(server)
    yield p
    await p.close()


@pytest.fixture
async def qa_room(peers: Peers) -> QaRoom:
    """A live room: the host, a moderator and 20 fans joined, each with their first full list."""
    host = await peers.client("artist", "Artist", host=True)
    room_id = (await host.request("room:create", {"title": "Ask me anything"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    moderator = await peers.client("mod", "Mo")
    await moderator.request("room:join", {"room_id": room_id})
    await host.request("stage:invite", {"room_id": room_id, "user_id": "mod", "role": "moderator"})
    await moderator.request("stage:accept", {"room_id": room_id})
    fans = await asyncio.gather(*(peers.client(f"fan{i}", f"Fan {i}") for i in range(20)))
    await asyncio.gather(*(f.request("room:join", {"room_id": room_id}) for f in fans))
    for client in (host, moderator, moderator, *fans):  # the moderator's second: on promotion
        full = await latest(client, room_id)
        assert full["full"]["questions"] == [] and full["full"]["pinned"] is None
    return QaRoom(room_id, host, moderator, list(fans))


async def test_premoderation_shows_pending_questions_to_staff_and_author_only(
    qa_room: QaRoom,
) -> None:
    r = qa_room
    asker, other = r.fans[0], r.fans[1]
    ack = await asker.request("qa:ask", {"room_id": r.room_id, "text": "  What's next?  "})
    question = ack["question"]
    assert question["status"] == "pending" and question["text"] == "What's next?"
    assert question["author"]["id"] == "fan0" and question["voted"] is False

    staff_sees = await latest(r.moderator, r.room_id)
    assert [q["id"] for q in staff_sees["changes"]] == [question["id"]]
    author_sees = await latest(asker, r.room_id)
    assert author_sees["changes"][0]["status"] == "pending"
    listing = await other.request("qa:list", {"room_id": r.room_id})
    assert listing["questions"] == []  # the audience never sees another fan's pending question
    assert other.events("qa:update") == []  # nor a delta about it

    # Approved: now everyone sees it, as one changed question.
    await r.moderator.request("qa:approve", {"question_id": question["id"]})
    public = await latest(other, r.room_id)
    assert [q["id"] for q in public["changes"]] == [question["id"]]
    assert public["changes"][0]["status"] == "approved" and public["removed"] == []
    assert "voted" not in public["changes"][0]  # a broadcast carries nobody's own vote

    # Rejected with a reason: gone for the audience, the reason shown to its author.
    await r.host.request("qa:reject", {"question_id": question["id"], "reason": "Off topic"})
    gone = await latest(other, r.room_id, removed=[question["id"]])
    assert gone["changes"] == []
    told = await asker.next_event(
        "qa:update", lambda e: any(q["status"] == "rejected" for q in e.get("changes", []))
    )
    assert told["changes"][0]["reason"] == "Off topic"


async def test_twenty_fans_voting_at_once_count_exactly_twenty(qa_room: QaRoom) -> None:
    r = qa_room
    await r.host.request("room:update", {"room_id": r.room_id, "settings": {"qa_mode": "open"}})
    question = (await r.fans[0].request("qa:ask", {"room_id": r.room_id, "text": "Tour?"}))[
        "question"
    ]
    assert question["status"] == "approved"
    qid = question["id"]
    await latest(r.fans[5], r.room_id)  # the question arrived
    r.fans[5].clear("qa:update")

    await asyncio.gather(*(f.request("qa:vote", {"question_id": qid}) for f in r.fans))
    listing = await r.fans[3].request("qa:list", {"room_id": r.room_id})
    assert listing["questions"][0]["votes"] == 20 and listing["questions"][0]["voted"] is True

    # A vote again is accepted and counts nothing; an unvote takes one back.
    await r.fans[3].request("qa:vote", {"question_id": qid})
    await r.fans[3].request("qa:unvote", {"question_id": qid})
    listing = await r.fans[3].request("qa:list", {"room_id": r.room_id})
    assert listing["questions"][0]["votes"] == 19 and listing["questions"][0]["voted"] is False

    # Deltas: each carries the one changed question, never the whole list; versions chain.
    last = await r.fans[5].next_event("qa:update", lambda e: e["changes"][0]["votes"] == 19)
    deltas = [*r.fans[5].events("qa:update"), last]
    assert deltas and all(len(d["changes"]) == 1 for d in deltas)
    assert all(d["changes"][0]["id"] == qid and "full" not in d for d in deltas)
    assert all(a["version"] == b["since"] for a, b in itertools.pairwise(deltas))
    assert len(deltas) <= 6  # 22 changes in a few seconds: coalesced to ≤ 2 a second


async def test_votes_only_on_open_approved_questions(qa_room: QaRoom) -> None:
    r = qa_room
    qid = (await r.fans[0].request("qa:ask", {"room_id": r.room_id, "text": "Pending one"}))[
        "question"
    ]["id"]
    with pytest.raises(CallFailed) as refused:
        await r.fans[1].request("qa:vote", {"question_id": qid})
    assert refused.value.code == "conflict"
    with pytest.raises(CallFailed) as unknown:
        await r.fans[1].request("qa:vote", {"question_id": "nope"})
    assert unknown.value.code == "not_found"
    await r.host.request("qa:approve", {"question_id": qid})
    await r.host.request("qa:answered", {"question_id": qid})
    with pytest.raises(CallFailed) as answered:
        await r.fans[1].request("qa:vote", {"question_id": qid})
    assert answered.value.code == "conflict"


async def test_asking_is_rate_limited_and_duplicates_refused(qa_room: QaRoom) -> None:
    r = qa_room
    fan = r.fans[2]
    await fan.request("qa:ask", {"room_id": r.room_id, "text": "First"})
    with pytest.raises(CallFailed) as limited:
        await fan.request("qa:ask", {"room_id": r.room_id, "text": "Second"})
    assert limited.value.code == "rate_limited"
    assert 20 < limited.value.error["retry_after"] <= 30
    other = r.fans[3]
    await other.request("qa:ask", {"room_id": r.room_id, "text": "Same  words"})
    # (A second identical question is refused before the rate limit would refuse it.)
    with pytest.raises(CallFailed) as duplicate:
        await other.request("qa:ask", {"room_id": r.room_id, "text": "same words"})
    assert duplicate.value.code == "conflict"
    with pytest.raises(CallFailed) as too_long:
        await r.fans[4].request("qa:ask", {"room_id": r.room_id, "text": "x" * 281})
    assert too_long.value.code == "invalid"
    await r.fans[4].request("qa:ask", {"room_id": r.room_id, "text": "é" * 280})  # code points
    await r.host.request("room:update", {"room_id": r.room_id, "settings": {"qa_mode": "off"}})
    with pytest.raises(CallFailed) as off:
        await r.fans[5].request("qa:ask", {"room_id": r.room_id, "text": "Hello?"})
    assert off.value.code == "conflict"


async def test_anonymous_author_hidden_from_fans_shown_to_moderator(qa_room: QaRoom) -> None:
    r = qa_room
    ask = {"room_id": r.room_id, "text": "Secret crush?", "anonymous": True}
    qid = (await r.fans[6].request("qa:ask", ask))["question"]["id"]
    await r.moderator.request("qa:approve", {"question_id": qid})
    fan_view = (await r.fans[7].request("qa:list", {"room_id": r.room_id}))["questions"][0]
    assert fan_view["anonymous"] is True and fan_view["author"] is None
    broadcast = await latest(r.fans[7], r.room_id, removed=[])
    assert broadcast["changes"][0]["author"] is None
    mod_view = (await r.moderator.request("qa:list", {"room_id": r.room_id}))["questions"][0]
    assert mod_view["author"] == {"id": "fan6", "name": "Fan 6", "verified": False}
    own = (await r.fans[6].request("qa:list", {"room_id": r.room_id}))["questions"][0]
    assert own["author"]["id"] == "fan6"  # the author sees their own name


async def test_bring_the_asker_on_stage_and_back(qa_room: QaRoom) -> None:
    r = qa_room
    asker = r.fans[8]
    qid = (await asker.request("qa:ask", {"room_id": r.room_id, "text": "Can I sing?"}))[
        "question"
    ]["id"]
    await r.moderator.request("qa:approve", {"question_id": qid})
    await r.moderator.request("qa:bring_to_stage", {"question_id": qid})
    invited = await asker.next_event("stage:invited")
    assert invited["role"] == "speaker" and invited["by"]["id"] == "mod"
    await asker.request("stage:accept", {"room_id": r.room_id})

    pinned = await latest(r.fans[9], r.room_id, removed=[])
    while not pinned["changes"][0]["pinned"]:
        pinned = await latest(r.fans[9], r.room_id)
    listing = await r.fans[9].request("qa:list", {"room_id": r.room_id})
    assert listing["pinned"]["id"] == qid and listing["pinned"]["author"]["id"] == "fan8"

    await r.moderator.request("qa:answered", {"question_id": qid})
    back = await asker.next_event("room:state", lambda s: s["you"]["role"] == "listener")
    assert "fan8" not in [u["id"] for u in back["speakers"]]
    listing = await r.fans[9].request("qa:list", {"room_id": r.room_id})
    assert listing["pinned"] is None
    assert listing["questions"][0]["status"] == "answered"

    # An asker who is not in the room: a clear refusal, nothing changes.
    gone_fan = r.fans[10]
    qid2 = (await gone_fan.request("qa:ask", {"room_id": r.room_id, "text": "Bye?"}))["question"][
        "id"
    ]
    await r.host.request("qa:approve", {"question_id": qid2})
    await gone_fan.request("room:leave", {"room_id": r.room_id})
    with pytest.raises(CallFailed) as absent:
        await r.host.request("qa:bring_to_stage", {"question_id": qid2})
    assert absent.value.code == "conflict" and "not in the room" in absent.value.error["message"]


async def test_fans_cannot_moderate_and_only_authors_withdraw(qa_room: QaRoom) -> None:
    r = qa_room
    qid = (await r.fans[11].request("qa:ask", {"room_id": r.room_id, "text": "Mine"}))["question"][
        "id"
    ]
    for event in ("qa:approve", "qa:pin", "qa:answered", "qa:delete", "qa:bring_to_stage"):
        with pytest.raises(CallFailed) as refused:
            await r.fans[12].request(event, {"question_id": qid})
        assert refused.value.code == "forbidden", event
    with pytest.raises(CallFailed) as not_author:
        await r.fans[12].request("qa:withdraw", {"question_id": qid})
    assert not_author.value.code == "forbidden"
    await r.fans[11].request("qa:withdraw", {"question_id": qid})
    staff_sees = await latest(r.host, r.room_id, removed=[qid])
    assert staff_sees["changes"] == []
    await r.host.request("qa:delete", {"question_id": qid})


async def test_export_gives_staff_real_authors(qa_room: QaRoom, server: RunningServer) -> None:
    r = qa_room
    ask = {"room_id": r.room_id, "text": "=HYPERLINK(1)", "anonymous": True}
    qid = (await r.fans[13].request("qa:ask", ask))["question"]["id"]
    await r.host.request("qa:approve", {"question_id": qid})
    await r.fans[14].request("qa:vote", {"question_id": qid})
    url = f"{server.url}/api/rooms/{r.room_id}/questions"
    headers = {"Authorization": f"Bearer {make_token('mod', 'Mo')}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(url + ".json", headers=headers) as resp:
            assert resp.status == 200
            [row] = (await resp.json())["questions"]
        assert row["author_name"] == "Fan 13" and row["anonymous"] is True
        assert row["votes"] == 1 and row["status"] == "approved"
        async with http.get(url + ".csv", headers=headers) as resp:
            assert resp.status == 200 and resp.content_type == "text/csv"
            rows = list(csv.DictReader(io.StringIO(await resp.text())))
        assert rows[0]["text"] == "'=HYPERLINK(1)"  # no formula for a spreadsheet to run
        assert rows[0]["author_name"] == "Fan 13"
        fan = {"Authorization": f"Bearer {make_token('fan1', 'Fan 1')}"}
        async with http.get(url + ".json", headers=fan) as resp:
            assert resp.status == 403
        async with http.get(url + ".json") as resp:
            assert resp.status == 401


async def test_questions_and_votes_survive_a_restart(config: Config) -> None:
    first = await start_server(config)
    try:
        host = await LiveroomClient.connect(first.url, make_token("artist", "A", host=True))
        fan = await LiveroomClient.connect(first.url, make_token("fan", "Fan"))
        room_id = (await host.request("room:create", {"title": "Keeps"}))["room"]["id"]
        for client in (host, fan):
            await client.request("room:join", {"room_id": room_id})
        ask = {"room_id": room_id, "text": "Still there?", "anonymous": True}
        qid = (await fan.request("qa:ask", ask))["question"]["id"]
        await host.request("qa:approve", {"question_id": qid})
        await fan.request("qa:vote", {"question_id": qid})
        await host.request("qa:pin", {"question_id": qid})
        before = await host.request("qa:list", {"room_id": room_id})
        await asyncio.gather(host.close(), fan.close())
    finally:
        await first.stop()

    second = await start_server(config)
    try:
        fan = await LiveroomClient.connect(second.url, make_token("fan", "Fan"))
        await fan.request("room:join", {"room_id": room_id})
        after = await fan.request("qa:list", {"room_id": room_id})
        assert after["pinned"]["id"] == qid and after["pinned"]["votes"] == 1
        assert after["pinned"]["voted"] is True and after["pinned"]["author"]["id"] == "fan"
        assert before["pinned"]["text"] == after["pinned"]["text"] == "Still there?"
        await fan.close()
    finally:
        await second.stop()


async def test_pending_questions_stay_private_even_when_deleted(qa_room: QaRoom) -> None:
    r = qa_room
    secret = (await r.fans[15].request("qa:ask", {"room_id": r.room_id, "text": "Private"}))[
        "question"
    ]["id"]
    # Another fan's own question changes in the same moments: their personal delta must not
    # name the pending one.
    await r.host.request("room:update", {"room_id": r.room_id, "settings": {"qa_mode": "open"}})
    mine = (await r.fans[16].request("qa:ask", {"room_id": r.room_id, "text": "Public"}))[
        "question"
    ]["id"]
    await r.host.request("qa:delete", {"question_id": secret})
    told = await latest(r.fans[15], r.room_id, removed=[secret])  # its author is told
    assert told["changes"] == [] or all(q["id"] != secret for q in told["changes"])
    await r.fans[16].next_event("qa:update", lambda e: any(q["id"] == mine for q in e["changes"]))
    await r.host.request("qa:pin", {"question_id": mine})
    await r.fans[17].next_event("qa:update", lambda e: any(q["pinned"] for q in e["changes"]))
    for fan in (r.fans[16], r.fans[17]):
        for update in fan.events("qa:update"):
            assert secret not in update.get("removed", [])
            assert secret not in [q["id"] for q in update.get("changes", [])]


async def test_a_cohost_brought_up_for_a_question_stays_cohost(qa_room: QaRoom) -> None:
    r = qa_room
    cohost = r.fans[18]
    await r.host.request(
        "stage:invite", {"room_id": r.room_id, "user_id": "fan18", "role": "cohost"}
    )
    await cohost.request("stage:accept", {"room_id": r.room_id})
    await r.host.request("room:update", {"room_id": r.room_id, "settings": {"qa_mode": "open"}})
    qid = (await cohost.request("qa:ask", {"room_id": r.room_id, "text": "From the stage"}))[
        "question"
    ]["id"]
    brought = await r.host.request("qa:bring_to_stage", {"question_id": qid})
    assert brought["question"]["pinned"] is True  # a microphone already: pinned at once
    await r.host.request("qa:answered", {"question_id": qid})
    state = await r.host.request("room:join", {"room_id": r.room_id})
    assert "fan18" in [u["id"] for u in state["room"]["cohosts"]]
