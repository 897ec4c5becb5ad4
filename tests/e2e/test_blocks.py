"""The user-level block list through a real server and real Socket.IO clients: a blocker does not
get the questions or the reactions of whom they block, while everyone else does; anonymous
authors never leak; unblocking restores; the list survives a restart (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from liveroom.app import BLOCKS, SESSIONS, RunningServer, start_server
from liveroom.blocks.model import MAX_BLOCKS
from liveroom.client import LiveroomClient
from liveroom.config import Config
from liveroom.db.migrate import upgrade
from liveroom.db.models import UserBlockRow
from liveroom.db.session import create_engine
from liveroom.ratelimit import RateLimit
from tests.conftest import fresh_pg_database, make_token
from tests.peers import Peers


@pytest.fixture
def config(config: Config) -> Config:
    """Fans here ask and tap more than the default limits let one person."""
    quick = {"questions": RateLimit(1000, 1), "reactions": RateLimit(1000, 1)}
    return replace(config, rate_limits={**config.rate_limits, **quick})


@pytest.fixture
async def peers(server: RunningServer) -> AsyncIterator[Peers]:
    p = Peers(server)
    yield p
    await p.close()


@dataclass
class Room:
    id: str
    host: LiveroomClient
    ana: LiveroomClient
    """The blocker."""
    bo: LiveroomClient
    """Another fan, who blocks nobody."""
    troll: LiveroomClient
    """Whom Ana blocks."""

    def ref(self, **extra: Any) -> dict[str, Any]:
        return {"room_id": self.id, **extra}


async def _room(peers: Peers, qa_mode: str = "open") -> Room:
    host = await peers.client("artist", "Artist", host=True)
    settings = {"qa_mode": qa_mode}
    created = await host.request("room:create", {"title": "Blocks", "settings": settings})
    room = Room(
        created["room"]["id"],
        host,
        await peers.client("ana", "Ana"),
        await peers.client("bo", "Bo"),
        await peers.client("troll", "Troll"),
    )
    for client in (host, room.ana, room.bo, room.troll):
        await client.request("room:join", room.ref())
        await _full(client)
    return room


# Updates are read, never taken, from a client's inbox: all it received stays there to check.


def _fulls(client: LiveroomClient) -> list[dict[str, Any]]:
    return [e for e in client.events("qa:update") if "full" in e]


async def _full(client: LiveroomClient, after: int = 0) -> dict[str, Any]:
    """The full list after the first ``after`` the client received."""
    await _wait_for(lambda: len(_fulls(client)) > after)
    return _fulls(client)[after]


async def _seen(client: LiveroomClient, question_id: str, **fields: Any) -> None:
    """Until a ``qa:update`` carried ``question_id`` (with ``fields``)."""

    def carried() -> bool:
        for e in client.events("qa:update"):
            full = e.get("full")
            questions = [*full["questions"], full["pinned"]] if full else e["changes"]
            for q in questions:
                if q and q["id"] == question_id and all(q[k] == v for k, v in fields.items()):
                    return True
        return False

    await _wait_for(carried)


def _ids(update: dict[str, Any]) -> set[str]:
    full = update.get("full")
    if full is not None:
        pinned = [full["pinned"]] if full["pinned"] else []
        return {q["id"] for q in [*full["questions"], *pinned]}
    return {q["id"] for q in update.get("changes", ())}


def _listed(ack: dict[str, Any]) -> set[str]:
    """The ids in a ``qa:list`` ack."""
    return _ids({"full": ack})


def _everything_seen(client: LiveroomClient) -> set[str]:
    return {i for e in client.events("qa:update") for i in _ids(e)}


def _follows_without_gaps(client: LiveroomClient) -> None:
    """Applied in order as a client would, no delta needs a ``qa:list`` (blockers' copies keep
    the versions whole)."""
    version: int | None = None
    for e in client.events("qa:update"):
        if "full" in e:
            version = e["version"]
        elif version is not None and e["version"] > version:
            assert e["since"] <= version, f"a gap: {e} after version {version}"
            version = e["version"]


async def _ask(client: LiveroomClient, room: Room, text: str, **extra: Any) -> str:
    ack = await client.request("qa:ask", room.ref(text=text, **extra))
    return str(ack["question"]["id"])


async def test_a_blocker_never_gets_the_blocked_users_questions_another_fan_does(
    peers: Peers,
) -> None:
    r = await _room(peers)
    ack = await r.ana.request("user:block", {"user_id": "troll", "on": True})
    [entry] = ack["blocked"]
    assert (entry["id"], entry["name"], entry["verified"]) == ("troll", "Troll", False)
    assert (await r.ana.next_event("user:blocks"))["blocked"] == ack["blocked"]
    assert (await _full(r.ana, 1))["full"]["questions"] == []  # what she sees, sent again

    named = await _ask(r.troll, r, "Troll here, look at me")
    anonymous = await _ask(r.troll, r, "Guess who", anonymous=True)
    marker = await _ask(r.bo, r, "When is the tour?")
    for question in (named, anonymous, marker):
        await _seen(r.bo, question)
    # Votes, a pin and the answer change the troll's questions; the marker changes last.
    await r.bo.request("qa:vote", {"question_id": named})
    await r.host.request("qa:pin", {"question_id": anonymous})
    await r.host.request("qa:answered", {"question_id": named})
    await r.ana.request("qa:vote", {"question_id": marker})
    await _seen(r.ana, marker, votes=1)
    await _seen(r.bo, marker, votes=1)

    # The anonymous question stays: hiding it would tell Ana who asked it.
    assert _everything_seen(r.ana) == {anonymous, marker}
    assert {named, anonymous, marker} <= _everything_seen(r.bo)
    listing = await r.ana.request("qa:list", r.ref())
    assert _listed(listing) == {anonymous, marker}
    assert listing["pinned"]["id"] == anonymous and listing["pinned"]["author"] is None
    bo_sees = await r.bo.request("qa:list", r.ref())
    assert bo_sees["pinned"]["id"] == anonymous and bo_sees["pinned"]["author"] is None
    # Nothing Ana received about questions names the troll, and nothing Bo did names the
    # anonymous asker.
    assert "troll" not in json.dumps(r.ana.events("qa:update"))
    assert all(
        q["author"] is None
        for e in r.bo.events("qa:update")
        for q in e.get("changes", ())
        if q["id"] == anonymous
    )
    _follows_without_gaps(r.ana)
    _follows_without_gaps(r.bo)

    # Unblocked: everything is back at once, the anonymous question still without a name.
    ack = await r.ana.request("user:block", {"user_id": "troll", "on": False})
    assert ack["blocked"] == []
    back = await _full(r.ana, 2)
    assert {named, anonymous, marker} == _ids(back)
    assert back["full"]["pinned"]["author"] is None
    await r.troll.request("qa:vote", {"question_id": marker})
    later = await _ask(r.troll, r, "And now?")
    await _seen(r.ana, later, author={"id": "troll", "name": "Troll", "verified": False})


async def test_anonymous_questions_stay_unnamed_and_shown_to_a_fan_who_blocks(
    peers: Peers,
) -> None:
    """Hiding an anonymous question from a fan who blocks its author would name the author:
    block (or unblock) a suspect and compare. They stay, before and after the block."""
    r = await _room(peers)
    before_anonymous = await _ask(r.troll, r, "Secretly me", anonymous=True)
    before_named = await _ask(r.troll, r, "Openly me")
    await _seen(r.ana, before_named)
    await r.ana.request("user:block", {"user_id": "troll", "on": True})
    refreshed = await _full(r.ana, 1)
    assert _ids(refreshed) == {before_anonymous}
    after_anonymous = await _ask(r.troll, r, "Secretly me again", anonymous=True)
    marker = await _ask(r.bo, r, "Marker")
    await _seen(r.ana, marker)
    assert after_anonymous in _everything_seen(r.ana)
    assert after_anonymous in _listed(await r.ana.request("qa:list", r.ref()))
    since_the_block = r.ana.events("qa:update")[r.ana.events("qa:update").index(refreshed) :]
    assert "troll" not in json.dumps(since_the_block)


async def test_staff_who_block_stop_seeing_it_too_other_staff_do_not(
    peers: Peers, server: RunningServer
) -> None:
    r = await _room(peers, qa_mode="premoderated")
    mod = await peers.client("mod", "Mo")
    await mod.request("room:join", r.ref())
    await r.host.request("stage:invite", r.ref(user_id="mod", role="moderator"))
    await mod.request("stage:accept", r.ref())
    await r.host.request("user:block", {"user_id": "troll", "on": True})

    pending = await _ask(r.troll, r, "Pending from the troll")
    marker = await _ask(r.bo, r, "Pending from Bo")
    await _seen(mod, pending)
    await _seen(r.host, marker)
    assert pending not in _everything_seen(r.host)
    host_list = await r.host.request("qa:list", r.ref())
    assert [q["id"] for q in host_list["questions"]] == [marker]
    # Another moderator still moderates it; the host does not see it approved either.
    await mod.request("qa:approve", {"question_id": pending})
    await _seen(r.bo, pending)
    await mod.request("qa:approve", {"question_id": marker})
    await _seen(r.host, marker, status="approved")
    assert pending not in _everything_seen(r.host)
    _follows_without_gaps(r.host)

    # The exports: the host's without what they blocked, the moderator's whole.
    url = f"{server.url}/api/rooms/{r.id}/questions"
    async with aiohttp.ClientSession() as http:
        exported = {}
        for user, token in (("artist", make_token("artist", "Artist")), ("mod", make_token("mod"))):
            async with http.get(url + ".csv", headers={"Authorization": f"Bearer {token}"}) as rs:
                assert rs.status == 200
                exported[user] = [row["id"] for row in csv.DictReader(io.StringIO(await rs.text()))]
    assert exported["artist"] == [marker]
    assert sorted(exported["mod"]) == sorted([pending, marker])


def _summed(client: LiveroomClient) -> Counter[str]:
    total: Counter[str] = Counter()
    for e in client.events("reactions"):
        total.update(e["counts"])
    return total


async def test_a_blocker_gets_the_room_totals_without_the_blocked_users_taps(
    peers: Peers,
) -> None:
    r = await _room(peers)
    await r.ana.request("user:block", {"user_id": "troll", "on": True})
    for client in (r.ana, r.bo, r.host):
        client.clear("reactions")
    for _ in range(3):
        await r.troll.request("react", r.ref(emoji="❤️"))
    await r.bo.request("react", r.ref(emoji="🔥"))
    await r.troll.request("react", r.ref(emoji="🔥"))
    # The last tap: once it arrived, so did every window before it.
    await r.bo.request("react", r.ref(emoji="👏"))

    await _wait_for(lambda: _summed(r.bo)["👏"] == 1 and _summed(r.ana)["👏"] == 1)
    await _wait_for(lambda: _summed(r.host)["👏"] == 1)
    assert _summed(r.bo) == Counter({"❤️": 3, "🔥": 2, "👏": 1})
    assert _summed(r.host) == _summed(r.bo)
    assert _summed(r.ana) == Counter({"🔥": 1, "👏": 1})
    # Each message is a room's counts: the blocker never got a broadcast besides her own.
    assert all(set(e) == {"room_id", "counts"} for e in r.ana.events("reactions"))

    await r.ana.request("user:block", {"user_id": "troll", "on": False})
    await r.troll.request("react", r.ref(emoji="🎉"))
    await _wait_for(lambda: _summed(r.ana)["🎉"] == 1)


async def _wait_for(predicate: Any, timeout: float = 10) -> None:
    """Real network and the room's real ticker: poll what arrived (bounded)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_refusals_and_the_list_on_every_socket(peers: Peers) -> None:
    ana = await peers.client("ana", "Ana")
    other_tab = await peers.client("ana", "Ana")
    await peers.client("troll", "Troll")
    itself = await ana.call("user:block", {"user_id": "ana", "on": True})
    assert itself["error"]["code"] == "invalid"
    unknown = await ana.call("user:block", {"user_id": "never-seen", "on": True})
    assert unknown["error"]["code"] == "not_found"
    assert (await ana.call("user:block", {"user_id": "troll"}))["error"]["code"] == "invalid"
    assert (await ana.request("user:blocks"))["blocked"] == []

    first = await ana.request("user:block", {"user_id": "troll", "on": True})
    again = await ana.request("user:block", {"user_id": "troll", "on": True})
    assert first["blocked"] == again["blocked"]  # idempotent, the first block's time kept
    pushed = await other_tab.next_event("user:blocks")
    assert pushed["blocked"] == first["blocked"]
    assert (await other_tab.request("user:blocks"))["blocked"] == first["blocked"]
    assert (await ana.request("user:block", {"user_id": "troll", "on": False}))["blocked"] == []
    assert (await ana.request("user:block", {"user_id": "troll", "on": False}))["blocked"] == []


async def test_a_list_at_its_limit_refuses_one_more(server: RunningServer, peers: Peers) -> None:
    """Loaded from SQL when its owner connects, the full list is enforced like a built one."""
    rows = [
        {"blocker_id": "ana", "blocked_id": f"bot{i}", "name": "Bot", "verified": False, "at": i}
        for i in range(MAX_BLOCKS)
    ]
    async with server.app[SESSIONS].begin() as session:
        await session.execute(sqlite_insert(UserBlockRow), rows)
    ana = await peers.client("ana", "Ana")
    await peers.client("troll", "Troll")
    assert len(server.app[BLOCKS].index.blocked_by("ana")) == MAX_BLOCKS
    refused = await ana.call("user:block", {"user_id": "troll", "on": True})
    assert refused["error"]["code"] == "full"
    assert len((await ana.request("user:blocks"))["blocked"]) == MAX_BLOCKS
    await ana.request("user:block", {"user_id": "bot0", "on": False})
    await ana.request("user:block", {"user_id": "troll", "on": True})
    # Let go of when she leaves; SQL keeps it.
    await ana.close()
    await _wait_for(lambda: not server.app[BLOCKS].index.holds("ana"))
    assert not server.app[BLOCKS].index.watched("troll")


async def _first_life(config: Config) -> None:
    server = await start_server(config)
    async with Peers(server) as peers:
        await peers.client("troll", "Troll")
        ana = await peers.client("ana", "Ana")
        await ana.request("user:block", {"user_id": "troll", "on": True})
    await server.stop()


async def _second_life(config: Config) -> None:
    server = await start_server(config)
    try:
        async with Peers(server) as peers:
            r = Room(
                "",
                await peers.client("artist", "Artist", host=True),
                await peers.client("ana", "Ana"),
                await peers.client("bo", "Bo"),
                await peers.client("troll", "Troll"),
            )
            [kept] = (await r.ana.request("user:blocks"))["blocked"]
            assert kept["id"] == "troll" and kept["name"] == "Troll"
            settings = {"qa_mode": "open"}
            created = await r.host.request("room:create", {"title": "Again", "settings": settings})
            r.id = created["room"]["id"]
            for client in (r.host, r.troll, r.bo):
                await client.request("room:join", r.ref())
            question = await _ask(r.troll, r, "Remember me?")
            await _seen(r.bo, question)
            await r.ana.request("room:join", r.ref())
            assert _ids(await _full(r.ana)) == set()
            assert [q["id"] for q in (await r.bo.request("qa:list", r.ref()))["questions"]] == [
                question
            ]
    finally:
        await server.stop()


async def test_the_list_survives_a_restart_on_sqlite(config: Config) -> None:
    await _first_life(config)
    await _second_life(config)


@pytest.mark.postgres
async def test_the_list_survives_a_restart_on_postgresql(config: Config) -> None:
    async with fresh_pg_database() as url:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        on_pg = replace(config, database_url=url)
        await _first_life(on_pg)
        assert not any(config.data_dir.glob("*.db"))
        await _second_life(on_pg)
