"""Soak: minutes of churn against one server, watching its memory, tasks and peer connections.

``python bench/soak.py [--minutes 30] [--warmup 5] [--rooms 3] [--json]``

The server runs in its own process, pinned to core 0 (``bench/soak_server.py``: the app as
``liveroom serve`` builds it, every rate limit raised, SQLite in a temporary directory, loopback
ICE). Every ``--sample-interval`` seconds it writes one line to its stdout: its RSS (``VmRSS``),
``len(asyncio.all_tasks())`` (and their coroutines by name), the media engine's peer
connections, every ``RTCPeerConnection`` still open in the process, Socket.IO connections, live
rooms, members, file descriptors and threads. It takes no new endpoint: the numbers come from
the app's own objects.

This driver, pinned to core 1, keeps ``--rooms`` rooms live, each with a host on stage publishing
a tone over real WebRTC (aiortc), and churns them until ``--minutes`` have passed:

- ``--fans`` seats per room, each filled by one visit after another (a fan from a fixed pool:
  connect, join, stay about ``--visit`` seconds, leave); ``--listener-share`` of the visits
  also listen over WebRTC (``rtc:offer`` recvonly, closed when they go); ``--abrupt`` of them end
  with the socket reset instead of ``room:leave`` (a phone in a tunnel);
- questions asked by fans (``--questions`` a minute), approved by the host, voted on
  (``--votes`` a second) and marked answered to keep a few open; reactions (``--reactions`` a
  second);
- every ``--room-minutes`` (staggered) the host ends the room with its fans in it and opens the
  next one.

Listeners receive and decrypt but never decode (aiortc's ``_handle_rtp_packet`` is a counter in
this driver), so the load costs little CPU.

Before the churn the server is sampled idle (``baseline``); after it, every client leaves, every
room ends, and the server is sampled until it is back to that baseline (``drained``). The goal
(issue #12): after the warm-up, RSS grows less than 10 % to the end, tasks and peer connections
do not grow, and once the clients are gone no socket, peer connection or task is left over. RSS
and the loaded trend are judged when at least 10 minutes follow the warm-up; the drain always.
Exit status 1 when the goal is missed. ``--tracemalloc`` traces the server's allocations from the
end of the warm-up and lists what is still held after the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from bench.listeners import LOAD_CPU, SERVER_CPU, pin
from bench.soak_server import Sample, ServerChild, idle_tasks, is_drained, two_cores
from liveroom.auth import Grants, Identity, TokenService
from liveroom.client import CallFailed, LiveroomClient
from liveroom.client.audio import AudioSession, ToneTrack, open_audio
from liveroom.clock import SystemClock
from liveroom.config import DEFAULT_REACTIONS
from liveroom.media.ice import use_loopback_candidates

RSS_GOAL_PCT = 10.0
JUDGE_AFTER_S = 600.0  # RSS and the loaded trend need this much run after the warm-up
TREND_FACTOR, TREND_SLACK = 1.2, 10  # "no growth" under load: at most 20 % (+10) over warm-up
DRAIN_S = 60.0  # how long the server may take to drop what the departed clients held
CALL_S = 5.0  # a call to a fan who is just leaving is not waited on for long
OPEN_QUESTIONS = 8  # the host marks older approved questions answered
TOKEN_TTL_S = 7 * 24 * 3600


# --- the load: rooms, fans, and what they do -------------------------------------------------

_RECEIVED: weakref.WeakKeyDictionary[RTCRtpReceiver, int] = weakref.WeakKeyDictionary()


async def _count_rtp(self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
    """Replaces ``RTCRtpReceiver._handle_rtp_packet`` in this driver: the packet arrived and was
    decrypted; count it, never decode it."""
    _RECEIVED[self] = _RECEIVED.get(self, 0) + 1


def count_instead_of_decoding() -> None:
    RTCRtpReceiver._handle_rtp_packet = _count_rtp  # type: ignore[method-assign]


def packets_received(session: AudioSession) -> int:
    return sum(_RECEIVED.get(r, 0) for r in session.pc.getReceivers())


@dataclass(frozen=True, slots=True)
class Plan:
    minutes: float
    warmup: float
    rooms: int
    fans: int
    visit_s: float
    listener_share: float
    abrupt: float
    questions: float  # a minute, per room
    votes: float  # a second, per room
    reactions: float  # a second, per room
    room_minutes: float
    users: int
    sample_interval: float
    seed: int
    tracemalloc: bool

    @property
    def churn_s(self) -> float:
        return self.minutes * 60

    @property
    def warmup_s(self) -> float:
        return self.warmup * 60


@dataclass
class Churn:
    """What the load did; failures by event and error code (races with leaving are expected)."""

    joins: int = 0
    leaves: int = 0
    drops: int = 0  # sockets reset without leaving
    ended_with_room: int = 0  # visits the host's room:end sent home
    questions: int = 0
    approvals: int = 0
    answered: int = 0
    votes: int = 0
    reactions: int = 0
    listeners_opened: int = 0
    listeners_closed: int = 0
    listeners_heard: int = 0  # closed listeners that had received audio
    rooms_opened: int = 0
    rooms_ended: int = 0
    failures: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "failures"}


@dataclass
class LiveRoom:
    room_id: str
    host: LiveroomClient
    present: dict[str, LiveroomClient] = field(default_factory=dict)
    open_questions: deque[str] = field(default_factory=deque)
    over: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False  # by the host, with fans in it (not the end of the run)


def every(n: int, share: float) -> bool:
    """Whether the ``n``-th of a series is one of the ``share`` picked, spread evenly."""
    return math.floor((n + 1) * share) > math.floor(n * share)


async def set_within(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` is (or gets) set within ``seconds`` (``math.inf``: ever)."""
    try:
        async with asyncio.timeout(None if math.isinf(seconds) else max(0.0, seconds)):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def drop_abruptly(client: LiveroomClient) -> None:
    """The socket vanishes: its TCP connection is reset, no ``room:leave``, no goodbye."""
    ws: Any = getattr(client.sio.eio, "ws", None)
    conn = getattr(ws, "_conn", None)
    transport = getattr(conn, "transport", None)
    if transport is not None:
        transport.abort()
        await set_within(client.disconnected, 5)
    await client.close()


class Load:
    """``plan.rooms`` room slots, each a host's room after room, with fans churning through."""

    def __init__(self, url: str, tokens: TokenService, plan: Plan) -> None:
        self.url = url
        self.plan = plan
        self.churn = Churn()
        self.stopping = asyncio.Event()
        self._tokens = tokens
        self._rng = random.Random(plan.seed)
        self._free = [f"soak-fan-{n}" for n in range(plan.users)]
        self._visits = 0
        self._token_of: dict[str, str] = {}

    def token(self, user_id: str, *, host: bool = False) -> str:
        if user_id not in self._token_of:
            identity = Identity(user_id, user_id.replace("soak-", "").title(), grants=Grants(host))
            self._token_of[user_id] = self._tokens.issue(identity, TOKEN_TTL_S)
        return self._token_of[user_id]

    async def run(self) -> None:
        life_s = self.plan.room_minutes * 60 or math.inf
        await asyncio.gather(
            *(
                self._slot(slot, life_s * (slot + 1) / self.plan.rooms, life_s)
                for slot in range(self.plan.rooms)
            )
        )

    async def _slot(self, slot: int, first_life_s: float, life_s: float) -> None:
        life = first_life_s
        while not self.stopping.is_set():
            try:
                await self._room(slot, life)
            except Exception as e:
                self.failed("room", e)
                await set_within(self.stopping, 2)
            life = life_s

    async def _room(self, slot: int, life_s: float) -> None:
        """One room of a slot: opened, churned, ended (by its life's end or the run's)."""
        host = await LiveroomClient.connect(self.url, self.token(f"soak-host-{slot}", host=True))
        session: AudioSession | None = None
        try:
            ack = await host.request("room:create", {"title": f"Soak {slot}"})
            room = LiveRoom(str(ack["room"]["id"]), host)
            ref = {"room_id": room.room_id}
            await host.request("room:join", ref)
            await host.request("stage:unmute", ref)
            session = await open_audio(host, room.room_id, publish=ToneTrack(220 + 110 * slot))
            self.churn.rooms_opened += 1
            async with asyncio.TaskGroup() as tg:
                seats = [tg.create_task(self._seat(room)) for _ in range(self.plan.fans)]
                loops = (self._questions, self._votes, self._reactions, self._housekeeping)
                activities = [tg.create_task(loop(room)) for loop in loops]
                await set_within(self.stopping, life_s)
                last = self.stopping.is_set()
                if last:  # the run is over: the fans leave first, as they would
                    room.over.set()
                    await asyncio.gather(*seats)
                for task in activities:  # a call in flight from a fan who left: not awaited
                    task.cancel()
                await self._end(room)
                if not last:  # the host ended the room with its audience in it
                    room.ended = True
                    room.over.set()
        finally:
            if session is not None:
                await session.close()
            await host.close()

    async def _end(self, room: LiveRoom) -> None:
        if await self.call(room.host, "room:end", {"room_id": room.room_id}, timeout=30):
            self.churn.rooms_ended += 1

    async def _seat(self, room: LiveRoom) -> None:
        while not room.over.is_set():
            if not self._free:
                await set_within(room.over, 0.2)
                continue
            user = self._free.pop(self._rng.randrange(len(self._free)))
            try:
                await self._visit(room, user)
            except Exception as e:
                self.failed("visit", e)
                await set_within(room.over, 0.5)
            finally:
                self._free.append(user)

    async def _visit(self, room: LiveRoom, user: str) -> None:
        """One fan's visit: join, maybe listen over WebRTC, stay a while, go (one of three ways)."""
        n, self._visits = self._visits, self._visits + 1
        stay_s = self._rng.uniform(0.25, 1.75) * self.plan.visit_s
        client = await LiveroomClient.connect(self.url, self.token(user))
        session: AudioSession | None = None
        abrupt = every(n, self.plan.abrupt)
        try:
            await client.request("room:join", {"room_id": room.room_id})
            self.churn.joins += 1
            room.present[user] = client
            if every(n, self.plan.listener_share) and not room.over.is_set():
                session = await open_audio(client, room.room_id)
                self.churn.listeners_opened += 1
            await set_within(room.over, stay_s)
        finally:
            room.present.pop(user, None)
            if abrupt and not room.ended:
                await drop_abruptly(client)
                self.churn.drops += 1
            if session is not None:
                self.churn.listeners_heard += packets_received(session) > 0
                await session.close()
                self.churn.listeners_closed += 1
            if room.ended:
                self.churn.ended_with_room += 1
            elif not abrupt and client.sio.connected:
                ref = {"room_id": room.room_id}
                if await self.call(client, "room:leave", ref):
                    self.churn.leaves += 1
            await client.close()

    def _someone(self, room: LiveRoom) -> tuple[str, LiveroomClient] | None:
        if not room.present:
            return None
        return self._rng.choice(list(room.present.items()))

    async def _paced(self, room: LiveRoom, per_s: float) -> bool:
        """Wait for the next event of a Poisson process of ``per_s``; False once the room is
        over."""
        if per_s <= 0:
            await room.over.wait()
            return False
        return not await set_within(room.over, self._rng.expovariate(per_s))

    async def _questions(self, room: LiveRoom) -> None:
        asked = 0
        while await self._paced(room, self.plan.questions / 60):
            fan = self._someone(room)
            if fan is None:
                continue
            asked += 1
            text = f"Question {asked} from {fan[0]}: will you play it again?"
            ask = {"room_id": room.room_id, "text": text}
            ack = await self.call(fan[1], "qa:ask", ask)
            if ack is None:
                continue
            self.churn.questions += 1
            ref = {"question_id": str(ack["question"]["id"])}
            if await self.call(room.host, "qa:approve", ref):
                self.churn.approvals += 1
                room.open_questions.append(ref["question_id"])
            while len(room.open_questions) > OPEN_QUESTIONS:
                old = {"question_id": room.open_questions.popleft()}
                if await self.call(room.host, "qa:answered", old):
                    self.churn.answered += 1

    async def _votes(self, room: LiveRoom) -> None:
        while await self._paced(room, self.plan.votes):
            fan = self._someone(room)
            if fan is None or not room.open_questions:
                continue
            ref = {"question_id": self._rng.choice(room.open_questions)}
            if await self.call(fan[1], "qa:vote", ref):
                self.churn.votes += 1

    async def _reactions(self, room: LiveRoom) -> None:
        while await self._paced(room, self.plan.reactions):
            fan = self._someone(room)
            if fan is None:
                continue
            tap = {"room_id": room.room_id, "emoji": self._rng.choice(DEFAULT_REACTIONS)}
            if await self.call(fan[1], "react", tap):
                self.churn.reactions += 1

    async def _housekeeping(self, room: LiveRoom) -> None:
        """The host's inbox keeps every event it is sent: empty it now and then."""
        while not await set_within(room.over, 30):
            room.host.clear()

    async def call(
        self, client: LiveroomClient, event: str, payload: dict[str, Any], timeout: float = CALL_S
    ) -> dict[str, Any] | None:
        """The ack, or ``None`` with the failure counted (a call racing a leave fails)."""
        try:
            return await client.request(event, payload, timeout=timeout)
        except Exception as e:
            self.failed(event, e)
            return None

    def failed(self, what: str, error: Exception) -> None:
        code = error.code if isinstance(error, CallFailed) else type(error).__name__
        self.churn.failures[f"{what}: {code}"] += 1


# --- the run and its verdict -----------------------------------------------------------------


@dataclass
class Report:
    plan: Plan
    churn: Churn
    t0: float
    churn_s: float
    baseline: Sample
    drained: Sample
    drain_s: float  # from the end of the churn: the clients leaving, the rooms ending, the rest
    samples: list[Sample]
    server_cpu: float
    load_cpu: float
    objects_grown: dict[str, int]
    trace: list[dict[str, Any]]


def around(samples: Sequence[Sample], start: float, end: float) -> list[Sample]:
    """The samples in ``[start, end]``, or the one nearest to ``start`` when none is."""
    inside = [s for s in samples if start <= s.t <= end]
    if inside or not samples:
        return inside
    return [min(samples, key=lambda s: abs(s.t - start))]


def level(samples: Sequence[Sample]) -> dict[str, float]:
    """Median RSS and mean counts over a window (the churn makes counts wobble)."""
    if not samples:
        return {"rss_mb": 0.0, "tasks": 0.0, "peers": 0.0, "sockets": 0.0, "samples": 0}
    return {
        "rss_mb": round(statistics.median(s.rss_mb for s in samples), 1),
        "tasks": round(statistics.fmean(s.tasks for s in samples), 1),
        "peers": round(statistics.fmean(s.peers for s in samples), 1),
        "sockets": round(statistics.fmean(s.sockets for s in samples), 1),
        "samples": len(samples),
    }


def kinds_grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in {*before, *after}}
    return dict(sorted(((k, d) for k, d in grown.items() if d > 0), key=lambda kd: -kd[1]))


def verdict(report: Report) -> dict[str, Any]:
    plan = report.plan
    start = report.t0 + plan.warmup_s
    end = report.t0 + report.churn_s
    samples = [s for s in report.samples if s.t <= end]
    warm = level(around(samples, start, start + 60))
    last = level(around(samples, end - 60, end))
    growth = 100 * (last["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"] if warm["rss_mb"] else 0.0
    # Tracing allocations slows the server and adds to its RSS: such a run is not judged by it.
    judged = report.churn_s - plan.warmup_s >= JUDGE_AFTER_S and not plan.tracemalloc
    reasons = []
    drained, base = report.drained, report.baseline
    if not is_drained(drained, base):
        reasons.append(
            f"after the clients left the server still holds {drained.sockets} sockets, "
            f"{drained.peers} engine peers, {drained.pcs_open} open peer connections, "
            f"{drained.members} members, {drained.rooms} rooms, {drained.tasks} tasks "
            f"(idle before: {idle_tasks(base)})"
        )
    if judged:
        if growth >= RSS_GOAL_PCT:
            reasons.append(f"RSS grew {growth:.1f} % after the warm-up (goal < {RSS_GOAL_PCT:g} %)")
        for key, slack in (("tasks", TREND_SLACK), ("peers", 2)):
            if last[key] > warm[key] * TREND_FACTOR + slack:
                reasons.append(f"{key} grew under the same load: {warm[key]:g} → {last[key]:g}")
    return {
        "warm": warm,
        "end": last,
        "rss_growth_pct": round(growth, 2),
        "judged": judged,
        "ok": not reasons,
        "reasons": reasons,
    }


def as_json(report: Report) -> dict[str, Any]:
    judgement = verdict(report)
    t0 = report.t0
    return {
        "minutes": report.plan.minutes,
        "warmup_min": report.plan.warmup,
        "plan": asdict(report.plan),
        "churn": report.churn.counts(),
        "failures": dict(report.churn.failures.most_common()),
        **judgement,
        "baseline": _brief(report.baseline, t0),
        "idle_tasks": idle_tasks(report.baseline),
        "drained": _brief(report.drained, t0),
        "drain_s": round(report.drain_s, 1),
        "tasks_left": kinds_grown(report.baseline.task_kinds, report.drained.task_kinds),
        "objects_grown": report.objects_grown,
        "server_cpu": round(report.server_cpu, 3),
        "load_cpu": round(report.load_cpu, 3),
        "pinned": two_cores(),
        "samples": [
            [round((s.t - t0) / 60, 2), s.rss_mb, s.tasks, s.peers, s.pcs_open, s.sockets]
            for s in report.samples
        ],
        "sample_columns": ["min", "rss_mb", "tasks", "peers", "pcs_open", "sockets"],
        "trace": report.trace,
    }


def _brief(sample: Sample, t0: float) -> dict[str, Any]:
    out = asdict(sample)
    out.pop("task_kinds")
    out["t"] = round((sample.t - t0) / 60, 2)
    return out


def table(report: Report) -> str:
    t0, plan = report.t0, report.plan
    rows = list(report.samples)
    if report.churn_s > 180:  # one row a minute (the first sample of each), and the last
        picked: dict[int, Sample] = {}
        for s in rows:
            picked.setdefault(int((s.t - t0) // 60), s)
        rows = [*picked.values(), *(rows[-1:] if rows[-1] not in picked.values() else [])]
    header = (
        f"{'min':>6} {'RSS MB':>8} {'tasks':>6} {'peers':>6} {'pcs':>5} {'sockets':>8} "
        f"{'members':>8} {'rooms':>6} {'fds':>5} {'threads':>8}"
    )
    lines = [header]
    warmed = False
    for s in [report.baseline, *rows, report.drained]:
        minute = (s.t - t0) / 60
        if not warmed and minute >= plan.warmup and s is not report.drained:
            warmed = True
            lines.append(f"{'':>6} --- warm-up over ({plan.warmup:g} min) ---")
        tag = "  idle, before" if s is report.baseline else ""
        tag = "  drained, after" if s is report.drained else tag
        lines.append(
            f"{minute:>6.1f} {s.rss_mb:>8.1f} {s.tasks:>6} {s.peers:>6} {s.pcs_open:>5} "
            f"{s.sockets:>8} {s.members:>8} {s.rooms:>6} {s.fds:>5} {s.threads:>8}{tag}"
        )
    return "\n".join(lines)


def summary(report: Report, out: dict[str, Any]) -> str:
    c, w, e, d, b = report.churn, out["warm"], out["end"], report.drained, report.baseline
    lines = [
        f"soak: {report.plan.rooms} rooms × {report.plan.fans} fan seats, "
        f"{report.churn_s / 60:.1f} min of churn, server on core {SERVER_CPU}, load on core "
        f"{LOAD_CPU}" + ("" if out["pinned"] else " (NOT pinned: fewer than two cores)"),
        "",
        table(report),
        "",
        f"churn: {c.joins} joins, {c.leaves} leaves, {c.drops} dropped sockets, "
        f"{c.ended_with_room} sent home by room:end; {c.questions} questions "
        f"({c.approvals} approved, {c.answered} answered), {c.votes} votes, {c.reactions} "
        f"reactions; {c.listeners_opened} WebRTC listeners opened, {c.listeners_closed} closed "
        f"({c.listeners_heard} heard audio); {c.rooms_opened} rooms opened, {c.rooms_ended} ended",
        f"failures: {dict(c.failures.most_common(8)) or 'none'}",
        f"server CPU {out['server_cpu']:.0%} of a core, load {out['load_cpu']:.0%}",
        f"after the warm-up: RSS {w['rss_mb']:g} → {e['rss_mb']:g} MB "
        f"({out['rss_growth_pct']:+.1f} %, goal < {RSS_GOAL_PCT:g} %); "
        f"tasks {w['tasks']:g} → {e['tasks']:g}; peers {w['peers']:g} → {e['peers']:g}; "
        f"sockets {w['sockets']:g} → {e['sockets']:g} (means over a minute)",
        f"drained in {report.drain_s:.1f} s: tasks {d.tasks} (idle before: {idle_tasks(b)}), peers "
        f"{d.peers}, open peer connections {d.pcs_open}, sockets {d.sockets}, members "
        f"{d.members}, rooms {d.rooms}; RSS {b.rss_mb:g} → {d.rss_mb:g} MB",
    ]
    if out["tasks_left"]:
        lines.append(f"tasks left over, by coroutine: {out['tasks_left']}")
    if report.objects_grown:
        top = dict(list(report.objects_grown.items())[:8])
        lines.append(f"objects more than before the churn (after gc): {top}")
    for stat in report.trace[:8]:
        lines.append(f"  held {stat['kb']:>8.1f} KB in {stat['count']:>6} blocks: {stat['where']}")
    if not out["judged"]:
        lines.append(
            f"verdict: drain {'OK' if out['ok'] else 'FAILED'}; RSS and the loaded trend not "
            f"judged (needs ≥ {JUDGE_AFTER_S / 60:g} min after the warm-up, untraced)"
        )
    else:
        lines.append(f"verdict: {'PASS' if out['ok'] else 'FAIL'}")
    lines += [f"  goal missed: {reason}" for reason in out["reasons"]]
    return "\n".join(lines)


async def run(plan: Plan) -> Report:
    with tempfile.TemporaryDirectory(prefix="liveroom-soak-") as tmpdir:
        tmp = Path(tmpdir)
        secret = secrets.token_urlsafe(48)
        server = await ServerChild.start(
            tmp / "data", secret, plan.sample_interval, tmp / "server.log"
        )
        try:
            return await _soak(plan, server, secret)
        except BaseException:
            sys.stderr.write(f"--- server log ---\n{server.log_tail()}\n")
            raise
        finally:
            await server.stop()


async def _soak(plan: Plan, server: ServerChild, secret: str) -> Report:
    load = Load(server.url, TokenService(secret, SystemClock(), TOKEN_TTL_S), plan)
    # Engine.IO starts its service task on the first connection and keeps it: start it now.
    primer = await LiveroomClient.connect(server.url, load.token("soak-primer"))
    await primer.close()
    await asyncio.sleep(1)
    baseline = await server.sample("baseline")
    before = (await server.ask("checkpoint", "baseline"))["objects"]
    t0, cpu0, load0 = time.monotonic(), server.cpu_seconds(), _own_cpu()
    churning = asyncio.create_task(load.run())
    progress = asyncio.create_task(_progress(server, load, t0))
    try:
        if plan.tracemalloc:
            await _until(server, churning, t0 + plan.warmup_s)
            await server.ask("trace", "warm")
        await _until(server, churning, t0 + plan.churn_s)
    finally:
        stopped = time.monotonic()
        server_cpu = (server.cpu_seconds() - cpu0) / (stopped - t0)
        load_cpu = (_own_cpu() - load0) / (stopped - t0)
        progress.cancel()
        load.stopping.set()  # from here on every client leaves and every room ends
        async with asyncio.timeout(120):
            await asyncio.gather(churning, progress, return_exceptions=True)
    churn_s, gone = stopped - t0, time.monotonic()  # every client has left by now
    drained = await server.sample("drain")
    while not is_drained(drained, baseline) and time.monotonic() < gone + DRAIN_S:
        await asyncio.sleep(1)
        drained = await server.sample("drain")
    drain_s = time.monotonic() - stopped
    after = await server.ask("checkpoint", "drained", timeout=120)
    grown = kinds_grown(before, after["objects"])
    return Report(
        plan,
        load.churn,
        t0,
        churn_s,
        baseline,
        drained,
        drain_s,
        [s for s in server.samples if s.t <= t0 + churn_s],
        server_cpu,
        load_cpu,
        dict(list(grown.items())[:15]),
        after["trace"],
    )


async def _until(server: ServerChild, churning: asyncio.Task[None], deadline: float) -> None:
    """Sleep until ``deadline``; raise if the server or the load died first."""
    while (left := deadline - time.monotonic()) > 0:
        if await set_within(server.exited, min(left, 1.0)):
            raise RuntimeError(f"the server exited during the soak:\n{server.log_tail()}")
        if churning.done():
            churning.result()  # its exception, if any
            raise RuntimeError("the load stopped early")


async def _progress(server: ServerChild, load: Load, t0: float) -> None:
    """A line on stderr per minute (long runs in the background)."""
    while True:
        await asyncio.sleep(60)
        s = server.samples[-1] if server.samples else None
        if s is not None:
            c = load.churn
            sys.stderr.write(
                f"soak: {(time.monotonic() - t0) / 60:.1f} min, RSS {s.rss_mb:g} MB, tasks "
                f"{s.tasks}, peers {s.peers}, sockets {s.sockets}; {c.joins} joins, "
                f"{c.listeners_opened} listeners, {sum(c.failures.values())} failures\n"
            )


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--minutes", type=float, default=30.0, help="churn, warm-up included")
    p.add_argument("--warmup", type=float, default=5.0, help="minutes before RSS is judged")
    p.add_argument("--rooms", type=int, default=3, help="live rooms at once")
    p.add_argument("--fans", type=int, default=12, help="fan seats per room (concurrent fans)")
    p.add_argument("--visit", type=float, default=20.0, help="mean seconds a fan stays")
    p.add_argument("--listener-share", type=float, default=0.5, help="visits that use WebRTC")
    p.add_argument("--abrupt", type=float, default=0.2, help="visits ending in a socket reset")
    p.add_argument("--questions", type=float, default=6.0, help="a minute, per room")
    p.add_argument("--votes", type=float, default=1.0, help="a second, per room")
    p.add_argument("--reactions", type=float, default=3.0, help="a second, per room")
    p.add_argument("--room-minutes", type=float, default=10.0, help="a room's life (0: forever)")
    p.add_argument("--users", type=int, default=0, help="fan pool (default: 3 × seats)")
    p.add_argument("--sample-interval", type=float, default=10.0, help="seconds")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--tracemalloc", action="store_true", help="trace the server's allocations")
    p.add_argument("--timeout", type=float, default=0, help="overall limit, s (default: auto)")
    p.add_argument("--json", action="store_true", help="print only one JSON line")
    p.add_argument("--samples-file", type=Path, help="write every sample (JSON lines) here")
    args = p.parse_args(argv)
    seats = args.rooms * args.fans
    args.users = args.users or 3 * seats
    if args.minutes <= 0 or not 0 <= args.warmup < args.minutes:
        p.error("--minutes must be > 0 and --warmup within it")
    if args.rooms < 1 or args.fans < 1 or args.users < seats:
        p.error("--rooms and --fans must be ≥ 1, --users ≥ rooms × fans")
    if not (0 <= args.listener_share <= 1 and 0 <= args.abrupt <= 1):
        p.error("--listener-share and --abrupt are shares: 0–1")
    if args.visit <= 0 or args.sample_interval <= 0:
        p.error("--visit and --sample-interval must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(
        **{k: getattr(args, k) for k in (f.name for f in fields(Plan)) if k != "visit_s"},
        visit_s=args.visit,
    )
    pin(LOAD_CPU)
    use_loopback_candidates(True)
    count_instead_of_decoding()
    timeout = args.timeout or plan.churn_s + 300

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        report = asyncio.run(_bounded(run(plan), timeout))
    except TimeoutError:
        sys.stderr.write(f"soak.py: gave up after {timeout:.0f} s (--timeout)\n")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.stderr.write("soak.py: interrupted\n")
        return 130
    out = as_json(report)
    if args.samples_file is not None:
        with args.samples_file.open("w") as f:
            for sample in [report.baseline, *report.samples, report.drained]:
                f.write(json.dumps({**asdict(sample), "min": (sample.t - report.t0) / 60}) + "\n")
    if not args.json:
        print(summary(report, out))
    print(json.dumps(out, ensure_ascii=False))
    if not out["ok"]:
        sys.stderr.write("soak.py: the goal was missed: " + "; ".join(out["reasons"]) + "\n")
        return 1
    return 0


async def _bounded(work: Awaitable[Report], timeout: float) -> Report:
    async with asyncio.timeout(timeout):
        return await work


if __name__ == "__main__":
    raise SystemExit(main())
