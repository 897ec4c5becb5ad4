"""Crash safety: whatever the server acknowledged survives ``kill -9``.

A real ``liveroom serve`` process takes a concurrent burst of writes from several clients —
questions (the room's Q&A is open, so they are approved as asked), votes, bans and playlist
items — and is killed with SIGKILL in the middle of it. A new process on the same data must have
every write whose ack said ``ok: true``; writes still in flight at the kill may or may not be
there. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from liveroom.client import LiveroomClient
from tests.conftest import make_token
from tests.e2e.server_process import ROOT, ServerProcess, ack_unless_gone, server_process

FANS = 6
KILL_AFTER_ACKS = 300
"""Acknowledged writes, all kinds together, before the kill (or the deadline, whichever first)."""
BURST_DEADLINE_S = 12.0
MIN_ACKED = 50
MIN_ACKED_PER_KIND = 15
MAX_PLAYLIST_ADDS = 450  # a room's playlist holds 500
KINDS = ("questions", "votes", "bans", "playlist")


@dataclass
class Ledger:
    """What was sent and what was acknowledged, by kind."""

    questions: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (author, text)
    votes: set[tuple[str, str]] = field(default_factory=set)  # (question id, voter)
    votes_sent: Counter[str] = field(default_factory=Counter)  # question id → votes sent
    bans: set[str] = field(default_factory=set)
    items: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (url, title)
    sent: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)
    refused: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    inflight: int = 0
    inflight_at_kill: int = 0

    @property
    def total_acked(self) -> int:
        return sum(self.acked.values())


class Burst:
    """Writers that run until the server dies under them: each fan asks questions and votes for
    the others' acknowledged ones; the host bans users and adds playlist items."""

    def __init__(self, room_id: str, host: LiveroomClient, fans: dict[str, LiveroomClient]):
        self.room_id = room_id
        self.host = host
        self.fans = fans
        self.ledger = Ledger()
        self.killed = asyncio.Event()
        self.enough = asyncio.Event()
        self._to_vote: dict[str, asyncio.Queue[str]] = {f: asyncio.Queue() for f in fans}

    def writers(self) -> list[Callable[[], Awaitable[None]]]:
        writers: list[Callable[[], Awaitable[None]]] = [self._bans, self._playlist]
        for fan_id in self.fans:
            writers += [partial(self._questions, fan_id), partial(self._votes, fan_id)]
        return writers

    async def write(
        self, kind: str, client: LiveroomClient, event: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The ``ok`` ack of one write, or ``None`` when the server died before answering."""
        self.ledger.sent[kind] += 1
        self.ledger.inflight += 1
        try:
            ack = await ack_unless_gone(client, event, payload)
        except Exception:
            if self.killed.is_set():  # sent to a server already dead
                return None
            raise
        finally:
            self.ledger.inflight -= 1
        if ack is None:
            return None
        if not ack.get("ok"):
            self.ledger.refused.append((event, ack))
            return None
        self.ledger.acked[kind] += 1
        if self.ledger.total_acked >= KILL_AFTER_ACKS and all(
            self.ledger.acked[k] >= MIN_ACKED_PER_KIND for k in KINDS
        ):
            self.enough.set()
        return ack

    async def _questions(self, fan_id: str) -> None:
        for i in range(1_000_000):
            if self.killed.is_set():
                return
            text = f"{fan_id}, question {i}: does this survive a crash? ✓"
            payload = {"room_id": self.room_id, "text": text}
            ack = await self.write("questions", self.fans[fan_id], "qa:ask", payload)
            if ack is not None:
                question_id = str(ack["question"]["id"])
                assert ack["question"]["status"] == "approved"  # the room's Q&A is open
                self.ledger.questions[question_id] = (fan_id, text)
                for other, queue in self._to_vote.items():
                    if other != fan_id:
                        queue.put_nowait(question_id)

    async def _votes(self, fan_id: str) -> None:
        while not self.killed.is_set():
            question_id = await self._to_vote[fan_id].get()
            payload = {"question_id": question_id}
            self.ledger.votes_sent[question_id] += 1
            if await self.write("votes", self.fans[fan_id], "qa:vote", payload) is not None:
                self.ledger.votes.add((question_id, fan_id))

    async def _bans(self) -> None:
        for i in range(1_000_000):
            if self.killed.is_set():
                return
            user_id = f"banned-{i}"
            payload = {"room_id": self.room_id, "user_id": user_id, "ban": True}
            if await self.write("bans", self.host, "room:remove", payload) is not None:
                self.ledger.bans.add(user_id)

    async def _playlist(self) -> None:
        for i in range(MAX_PLAYLIST_ADDS):
            if self.killed.is_set():
                return
            url, title = f"https://example.test/crash/{i}.mp3", f"Track {i}"
            payload = {"room_id": self.room_id, "url": url, "title": title, "duration_s": 180}
            ack = await self.write("playlist", self.host, "playlist:add", payload)
            if ack is not None:
                self.ledger.items[str(ack["item"]["id"])] = (url, title)


async def _client(url: str, user_id: str, *, host: bool = False) -> LiveroomClient:
    return await LiveroomClient.connect(url, make_token(user_id, user_id.title(), host=host))


async def _first_life(server: ServerProcess, clients: list[LiveroomClient]) -> Burst:
    """A live room with open Q&A and its fans joined; the burst; SIGKILL in the middle of it."""
    host = await _client(server.url, "artist", host=True)
    clients.append(host)
    settings = {"qa_mode": "open"}
    created = await host.request("room:create", {"title": "Crash test", "settings": settings})
    room_id = str(created["room"]["id"])
    await host.request("room:join", {"room_id": room_id})
    fans = {f"fan-{i}": await _client(server.url, f"fan-{i}") for i in range(FANS)}
    clients += fans.values()
    await asyncio.gather(*(f.request("room:join", {"room_id": room_id}) for f in fans.values()))

    burst = Burst(room_id, host, fans)
    writers = [asyncio.ensure_future(w()) for w in burst.writers()]
    try:
        async with asyncio.timeout(BURST_DEADLINE_S):
            await burst.enough.wait()
    except TimeoutError:
        pass  # a slow machine: kill at the deadline, and check below that enough was acked
    for w in writers:
        if w.done():  # a writer that failed before the kill is the test's failure
            w.result()
    server.kill_now()
    burst.killed.set()  # no await since the kill: these are the writes it caught in flight
    burst.ledger.inflight_at_kill = burst.ledger.inflight
    await server.kill()  # reaped

    async with asyncio.timeout(30):
        await asyncio.gather(*(c.disconnected.wait() for c in clients))
    _, waiting = await asyncio.wait(writers, timeout=5)
    for w in waiting:  # only voters waiting for a question that will never come
        w.cancel()
    await asyncio.gather(*writers, return_exceptions=True)
    for w in writers:
        if not w.cancelled() and w.exception() is not None:
            raise AssertionError("a writer failed") from w.exception()
    return burst


@dataclass
class Found:
    """What the restarted server has of the burst's writes."""

    questions: int = 0
    votes: int = 0
    bans: int = 0
    items: int = 0
    extra_questions: int = 0
    extra_items: int = 0


async def _check_questions(
    server: ServerProcess, room_id: str, ledger: Ledger, host: LiveroomClient, found: Found
) -> None:
    """Every acknowledged question with its author and text; every acknowledged vote counted,
    and shown as the voter's own."""
    listing = await host.request("qa:list", {"room_id": room_id, "sort": "new"})
    stored = {q["id"]: q for q in listing["questions"]}
    for question_id, (author, text) in ledger.questions.items():
        question = stored.get(question_id)
        assert question is not None, f"acknowledged question {question_id} ({text!r}) is lost"
        assert (question["text"], question["author"]["id"]) == (text, author)
        assert question["status"] == "approved"
        acked_votes = sum(1 for q, _ in ledger.votes if q == question_id)
        assert question["votes"] >= acked_votes, f"votes lost on {question_id}"
        assert question["votes"] <= ledger.votes_sent[question_id], "votes counted twice"
        found.questions += 1
    found.extra_questions = len(stored) - found.questions

    voters = {voter for _, voter in ledger.votes}
    for voter in sorted(voters):
        fan = await _client(server.url, voter)
        try:
            await fan.request("room:join", {"room_id": room_id})
            mine = await fan.request("qa:list", {"room_id": room_id})
            voted = {q["id"] for q in mine["questions"] if q["voted"]}
        finally:
            await fan.close()
        for question_id, who in ledger.votes:
            if who == voter:
                assert question_id in voted, f"{voter}'s acknowledged vote on {question_id} lost"
                found.votes += 1


async def _check_bans(server: ServerProcess, room_id: str, ledger: Ledger, found: Found) -> None:
    """Every acknowledged ban holds: that user's join is refused, whatever their token."""
    gate = asyncio.Semaphore(8)

    async def refused(user_id: str) -> None:
        async with gate:
            client = await _client(server.url, user_id)
            try:
                ack = await client.call("room:join", {"room_id": room_id})
            finally:
                await client.close()
        assert not ack["ok"] and ack["error"]["code"] == "forbidden", (user_id, ack)
        found.bans += 1

    await asyncio.gather(*(refused(u) for u in sorted(ledger.bans)))


async def _second_life(server: ServerProcess, room_id: str, ledger: Ledger) -> Found:
    await server.start()
    found = Found()
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/rooms/{room_id}") as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["room"]["status"] == "live"

    host = await _client(server.url, "artist", host=True)
    try:
        joined = await host.request("room:join", {"room_id": room_id})
        assert joined["room"]["you"]["role"] == "host"
        state = await host.next_event("playlist:state", lambda e: "items" in e)
        stored = {i["id"]: i for i in state["items"]}
        for item_id, (url, title) in ledger.items.items():
            item = stored.get(item_id)
            assert item is not None, f"acknowledged playlist item {item_id} ({url}) is lost"
            assert (item["url"], item["title"]) == (url, title)
            found.items += 1
        found.extra_items = len(stored) - found.items
        await _check_questions(server, room_id, ledger, host, found)
    finally:
        await host.close()
    await _check_bans(server, room_id, ledger, found)
    return found


def _record(kind: str, ledger: Ledger, found: Found) -> dict[str, Any]:
    numbers = {
        "database": kind,
        "acked": dict(ledger.acked),
        "sent": dict(ledger.sent),
        "in_flight_at_kill": ledger.inflight_at_kill,
        "verified": {
            "questions": found.questions,
            "votes": found.votes,
            "bans": found.bans,
            "playlist": found.items,
        },
        "unacked_but_kept": {"questions": found.extra_questions, "playlist": found.extra_items},
    }
    given = os.environ.get("LIVEROOM_ARTIFACTS_DIR")
    directory = Path(given) if given else ROOT / "artifacts"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"crash-safety-{kind}.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(f"\ncrash safety on {kind}: {json.dumps(numbers)}")  # noqa: T201  (the run's record)
    return numbers


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_every_acknowledged_write_survives_kill_9(kind: str, tmp_path: Path) -> None:
    async with server_process(kind, tmp_path) as server:
        await server.start()
        clients: list[LiveroomClient] = []
        try:
            burst = await _first_life(server, clients)
        finally:
            await asyncio.gather(*(c.close() for c in clients))
        ledger = burst.ledger
        assert ledger.refused == [], ledger.refused[:5]  # every limit was raised
        assert ledger.total_acked >= MIN_ACKED, ledger.acked
        assert all(ledger.acked[k] >= MIN_ACKED_PER_KIND for k in KINDS), ledger.acked

        found = await _second_life(server, burst.room_id, ledger)
        numbers = _record(kind, ledger, found)
        assert numbers["verified"] == {
            "questions": ledger.acked["questions"],
            "votes": ledger.acked["votes"],
            "bans": ledger.acked["bans"],
            "playlist": ledger.acked["playlist"],
        }
        assert "Traceback" not in server.output(this_life=True)
