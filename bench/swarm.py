"""A swarm of raw Socket.IO websocket clients in worker processes: the load of bench/fanout.py
and bench/churn.py.

Each client is one aiohttp websocket speaking Engine.IO v4 / Socket.IO v5 text frames itself
(:class:`EioSocket`): ``0{...}`` open, ``40{"token": ...}`` connect, ``42N["event", {...}]`` events
with ack ids answered by ``43N[...]``, every ping ``2`` answered ``3``. No python-socketio client:
at thousands of sockets per process its per-socket tasks and parsing would measure the client.
``raw`` clients (the bare-websocket floor) only read.

Every client records ``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every process of
the machine) when a frame carrying :data:`MARK` + a sequence number + ``#`` arrives, once per
sequence number, so the driver can tell that every socket got every broadcast and how late.

:func:`worker_main` is a worker process: pinned to the load core (:data:`LOAD_CPU`), killed with
its parent (``PR_SET_PDEATHSIG``), its file limit raised; it obeys commands from the driver on a
pipe (:class:`Swarm` is the driver's side). Connections are opened a few at a time
(``connects_in_flight`` per worker), each bounded by ``connect_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import math
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp

SERVER_CPU = 0
LOAD_CPU = 1
MARK = "fanout#"
"""Broadcast payloads carry ``fanout#<seq>#``: a room title, or a field of the baselines'."""
PR_SET_PDEATHSIG = 1
CLOSE_TIMEOUT_S = 10.0
CHURN_ACK_TIMEOUT_S = 15.0

_CPUS_AT_START = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


# --- processes: pinned, killed with their parent, enough file descriptors -------------------
# (bench/listeners.py has the same few lines; importing it would load aiortc in every worker.)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def two_cores() -> bool:
    """Whether both cores were ours to pin to (decided at import, before any pinning)."""
    return _CPUS_AT_START is not None and {SERVER_CPU, LOAD_CPU} <= _CPUS_AT_START


def pin(cpu: int) -> None:
    if two_cores() and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def taskset(cpu: int) -> list[str]:
    """The argv prefix that starts a process pinned to ``cpu`` (nothing on fewer cores)."""
    return ["taskset", "-c", str(cpu)] if two_cores() else []


def raise_fd_limit() -> int:
    """RLIMIT_NOFILE's soft limit raised to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` so far (/proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / float(os.sysconf("SC_CLK_TCK"))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0–1) of ``values``, nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 0.5)


# --- one client ------------------------------------------------------------------------------


class Receipts:
    """When each broadcast (by sequence number) reached each socket of this process."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {}

    def add(self, seq: int, at: float) -> None:
        self.times.setdefault(seq, []).append(at)

    def take(self) -> dict[int, list[float]]:
        taken, self.times = self.times, {}
        return taken


class EioSocket:
    """One websocket: Socket.IO over Engine.IO v4 (``engineio=True``), or a raw one that only
    reads. Counts what it receives and records each marked broadcast once."""

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, receipts: Receipts, *, engineio: bool
    ) -> None:
        self.ws = ws
        self.receipts = receipts
        self.engineio = engineio
        self.received = 0
        self.last_seq = -1
        self.closed = False
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        http: aiohttp.ClientSession,
        url: str,
        auth: dict[str, Any],
        receipts: Receipts,
    ) -> EioSocket:
        """Connect to ``url``'s ``/socket.io/`` over a websocket and to the namespace ``/``
        with ``auth``; refused: ``ConnectionRefusedError`` with the server's reason."""
        ws_url = url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(ws_url, compress=0, max_msg_size=0, autoping=True)
        try:
            opened = await ws.receive()
            if opened.type is not aiohttp.WSMsgType.TEXT or not str(opened.data).startswith("0"):
                raise ConnectionError(f"no Engine.IO open packet: {opened.type} {opened.data!r}")
            await ws.send_str("40" + json.dumps(auth, separators=(",", ":")))
            while True:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"closed while connecting: {msg.type} {msg.data!r}")
                text = str(msg.data)
                if text.startswith("40"):
                    break
                if text.startswith("44"):
                    raise ConnectionRefusedError(text[2:200])
                if text == "2":
                    await ws.send_str("3")
        except BaseException:
            await ws.close()
            raise
        sock = cls(ws, receipts, engineio=True)
        sock._reader = asyncio.create_task(sock._read())
        return sock

    @classmethod
    async def open_raw(cls, http: aiohttp.ClientSession, url: str, receipts: Receipts) -> EioSocket:
        ws_url = url.replace("http://", "ws://", 1) + "/ws"
        ws = await http.ws_connect(ws_url, compress=0, max_msg_size=0, autoping=True)
        sock = cls(ws, receipts, engineio=False)
        sock._reader = asyncio.create_task(sock._read())
        return sock

    async def _read(self) -> None:
        ws = self.ws
        try:
            async for msg in ws:
                now = time.monotonic()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                text: str = msg.data
                self.received += 1
                if self.engineio:
                    if text == "2":
                        await ws.send_str("3")
                        continue
                    if text.startswith("43"):
                        self._answer(text)
                        continue
                i = text.find(MARK)
                if i >= 0:
                    start = i + len(MARK)
                    end = text.find("#", start)
                    with contextlib.suppress(ValueError):
                        seq = int(text[start:end])
                        if seq > self.last_seq:
                            self.last_seq = seq
                            self.receipts.add(seq, now)
        except (aiohttp.ClientError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.closed = True
            for future in self._acks.values():
                if not future.done():
                    future.set_exception(ConnectionError("the socket closed"))

    def _answer(self, text: str) -> None:
        digits = 2
        while digits < len(text) and text[digits].isdigit():
            digits += 1
        future = self._acks.pop(int(text[2:digits] or 0), None)
        if future is not None and not future.done():
            args = json.loads(text[digits:] or "[]")
            future.set_result(args[0] if args else None)

    async def call(self, event: str, data: dict[str, Any], timeout: float = 30.0) -> Any:
        """Send ``event`` with an ack id; the ack's first argument."""
        if self.closed:
            raise ConnectionError("the socket is closed")
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        try:
            body = json.dumps([event, data], separators=(",", ":"))
            await self.ws.send_str(f"42{ack_id}{body}")
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._acks.pop(ack_id, None)

    async def request(self, event: str, data: dict[str, Any], timeout: float = 30.0) -> Any:
        """:meth:`call`, raising unless the ack is ``{"ok": true, ...}``."""
        ack = await self.call(event, data, timeout)
        if not isinstance(ack, dict) or not ack.get("ok"):
            raise RuntimeError(f"{event} refused: {str(ack)[:300]}")
        return ack

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


# --- a worker process ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SwarmSpec:
    """What one worker connects to, and how.

    ``protocol``: ``socketio``, or ``raw`` (the floor's bare websockets). ``secret``: tokens are
    minted here with it (liveroom), one user per socket; None: a placeholder token. ``room_id``:
    listeners send ``room:join`` for it after connecting (liveroom); None: the server seats them
    itself (``listen_auth`` goes into their connect packet). Churners always join with
    ``room:join`` / ``room:leave`` (``churn_room``)."""

    index: int
    url: str
    protocol: str = "socketio"
    secret: str | None = None
    room_id: str | None = None
    churn_room: str = ""
    listen_auth: dict[str, Any] = field(default_factory=dict)
    connects_in_flight: int = 8
    connect_timeout_s: float = 30.0


@dataclass
class ChurnCounts:
    joins: int = 0
    leaves: int = 0
    late: int = 0  # acked after the window
    failed: int = 0
    skipped: int = 0  # no churner free, or the in-flight cap reached (the server was behind)
    join_ms: list[float] = field(default_factory=list)
    leave_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class SwarmWorker:
    def __init__(self, conn: Connection, spec: SwarmSpec) -> None:
        self.conn = conn
        self.spec = spec
        self.receipts = Receipts()
        self.listeners: list[EioSocket] = []
        self.churners_in: deque[EioSocket] = deque()
        self.churners_out: deque[EioSocket] = deque()
        self.failures: list[str] = []
        self.failed = 0
        self._gate = asyncio.Semaphore(spec.connects_in_flight)
        self._minted = 0
        self._tokens: Any = None
        if spec.secret is not None:
            from liveroom.auth import TokenService  # noqa: PLC0415  (liveroom workers only)
            from liveroom.clock import SystemClock  # noqa: PLC0415

            self._tokens = TokenService(spec.secret, SystemClock(), 6 * 3600)

    def _token(self, kind: str) -> str:
        if self._tokens is None:
            return "-"
        from liveroom.auth import Identity  # noqa: PLC0415

        self._minted += 1
        user_id = f"w{self.spec.index}{kind}{self._minted}"
        token: str = self._tokens.issue(Identity(user_id, user_id), 6 * 3600)
        return token

    async def _open(self, http: aiohttp.ClientSession, kind: str) -> EioSocket | None:
        spec = self.spec
        async with self._gate:
            sock: EioSocket | None = None
            try:
                async with asyncio.timeout(spec.connect_timeout_s):
                    if spec.protocol == "raw":
                        return await EioSocket.open_raw(http, spec.url, self.receipts)
                    auth: dict[str, Any] = {"token": self._token(kind)}
                    if kind == "l":
                        auth.update(spec.listen_auth)
                    sock = await EioSocket.open(http, spec.url, auth, self.receipts)
                    if kind == "l" and spec.room_id is not None:
                        await sock.request("room:join", {"room_id": spec.room_id})
                    return sock
            except Exception as e:
                if sock is not None:
                    await sock.close()
                self.failed += 1
                if len(self.failures) < 5:
                    self.failures.append(f"{type(e).__name__}: {str(e)[:200]}")
                return None

    async def grow(self, http: aiohttp.ClientSession, total: int) -> None:
        self.listeners = [s for s in self.listeners if not s.closed]
        want = max(0, total - len(self.listeners))
        opened = await asyncio.gather(*(self._open(http, "l") for _ in range(want)))
        self.listeners += [s for s in opened if s is not None]

    async def add_churners(self, http: aiohttp.ClientSession, count: int) -> None:
        opened = await asyncio.gather(*(self._open(http, "c") for _ in range(count)))
        fresh = [s for s in opened if s is not None]
        half = len(fresh) // 2
        joined = await asyncio.gather(
            *(self._churn_call(s, "room:join") for s in fresh[:half]), return_exceptions=True
        )
        for sock, ok in zip(fresh[:half], joined, strict=True):
            (self.churners_in if ok is True else self.churners_out).append(sock)
        self.churners_out.extend(fresh[half:])

    async def _churn_call(self, sock: EioSocket, event: str) -> bool:
        await sock.request(event, {"room_id": self.spec.churn_room}, timeout=CHURN_ACK_TIMEOUT_S)
        return True

    async def churn(
        self, rate: float, start_at: float, seconds: float, in_flight: int
    ) -> ChurnCounts:
        """``rate`` joins and ``rate`` leaves a second from ``start_at`` for ``seconds``: each
        tick one churner outside joins and one inside leaves. A churner busy with its previous
        call is not picked; none free, or ``in_flight`` calls already unanswered, is a skipped
        call (the server is behind: an unbounded pile of calls would spill into the next
        window)."""
        counts = ChurnCounts()
        end = start_at + seconds
        pending: set[asyncio.Task[None]] = set()

        async def one(sock: EioSocket, joining: bool) -> None:
            sent = time.monotonic()
            try:
                await self._churn_call(sock, "room:join" if joining else "room:leave")
            except Exception as e:
                counts.failed += 1
                if len(counts.errors) < 5:
                    counts.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
                if not sock.closed:  # refused, or a timeout: try it again later
                    (self.churners_out if joining else self.churners_in).append(sock)
                return
            done = time.monotonic()
            if done > end:
                counts.late += 1
            elif joining:
                counts.joins += 1
                counts.join_ms.append((done - sent) * 1000)
            else:
                counts.leaves += 1
                counts.leave_ms.append((done - sent) * 1000)
            (self.churners_in if joining else self.churners_out).append(sock)

        def spawn(sock: EioSocket, joining: bool) -> None:
            task = asyncio.create_task(one(sock, joining))
            pending.add(task)
            task.add_done_callback(pending.discard)

        interval = 1.0 / rate if rate > 0 else math.inf
        for tick in itertools.count():
            at = start_at + tick * interval
            if at >= end:
                break
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            for source, joining in ((self.churners_out, True), (self.churners_in, False)):
                if source and len(pending) < in_flight:
                    spawn(source.popleft(), joining)
                else:
                    counts.skipped += 1
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT_S)
        return counts

    def all_sockets(self) -> list[EioSocket]:
        return [*self.listeners, *self.churners_in, *self.churners_out]

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.spec.connect_timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            try:
                while True:
                    command = await receive(self.conn, None)
                    if not await self._obey(http, command):
                        break
            finally:
                sockets = self.all_sockets()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await asyncio.gather(*(s.close() for s in sockets))

    async def _obey(self, http: aiohttp.ClientSession, command: tuple[Any, ...]) -> bool:
        kind = command[0]
        if kind == "grow":
            self.failures.clear()
            failed_before = self.failed
            await self.grow(http, int(command[1]))
            self.conn.send(
                ("grown", len(self.listeners), self.failed - failed_before, self.failures[:5])
            )
        elif kind == "churners":
            self.failures.clear()
            failed_before = self.failed
            await self.add_churners(http, int(command[1]))
            held = len(self.churners_in) + len(self.churners_out)
            self.conn.send(("churners", held, self.failed - failed_before, self.failures[:5]))
        elif kind == "churn":
            rate, start_at, seconds, in_flight = command[1:5]
            counts = await self.churn(float(rate), float(start_at), float(seconds), int(in_flight))
            self.conn.send(("churned", counts))
        elif kind == "receipts":
            received = sum(s.received for s in self.all_sockets())
            alive = sum(1 for s in self.listeners if not s.closed)
            self.conn.send(("receipts", self.receipts.take(), received, alive))
        elif kind == "stop":
            return False
        return True


def worker_main(conn: Connection, spec: SwarmSpec) -> None:
    """A load process: pinned to the load core, dies with the driver, obeys it until ``stop``."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver ends us
    pin(LOAD_CPU)
    raise_fd_limit()
    asyncio.run(SwarmWorker(conn, spec).run())


async def receive(conn: Connection, timeout: float | None) -> Any:
    """The next message from a pipe, without blocking the event loop."""

    def wait() -> Any:
        if not conn.poll(timeout):
            raise TimeoutError("no message from the other process")
        return conn.recv()

    return await asyncio.to_thread(wait)


# --- the driver's side -----------------------------------------------------------------------


def kill_if_ours(pid: int) -> None:
    """SIGKILL ``pid`` if it is still a live child of this process (never anyone else's)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[1]) == os.getpid():
            os.kill(pid, signal.SIGKILL)


@dataclass
class Started:
    """Every process a driver started, so that each can be ended by its own id whatever
    happens (the event loop may be gone by then)."""

    pids: list[int] = field(default_factory=list)
    swarms: list[Swarm] = field(default_factory=list)

    def kill_all(self) -> None:
        for pid in self.pids:
            kill_if_ours(pid)
        for swarm in self.swarms:
            swarm.kill()


def drive(
    name: str,
    work: Callable[[Started], Awaitable[dict[str, Any]]],
    timeout: float,
) -> dict[str, Any] | int:
    """Run a driver's ``work`` bounded by ``timeout`` seconds, Ctrl-C and SIGTERM included;
    every process it started is killed after. Its result, or an exit status."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = Started()

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await work(started)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        sys.stderr.write(f"{name}: gave up after {timeout:.0f} s (--timeout)\n")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.stderr.write(f"{name}: interrupted\n")
        return 130
    finally:
        started.kill_all()  # again, in case the event loop could not


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` nearly equal whole shares."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@dataclass
class Grown:
    held: int
    failed: int
    failures: list[str]


class Swarm:
    """The worker processes of one phase; :meth:`kill` ends each by its own handle."""

    def __init__(self, specs: Sequence[SwarmSpec]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for spec in specs:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    @property
    def size(self) -> int:
        return len(self.pipes)

    def cpu_seconds(self) -> float:
        """CPU of the worker processes so far (every thread)."""
        total = 0.0
        for proc in self.procs:
            if proc.pid is not None:
                with contextlib.suppress(OSError):
                    total += cpu_seconds(proc.pid)
        return total

    async def _each(self, commands: Sequence[tuple[Any, ...]], timeout: float) -> list[Any]:
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)
        return list(await asyncio.gather(*(receive(p, timeout) for p in self.pipes)))

    async def grow(self, total: int, timeout: float) -> Grown:
        """Until ``total`` listeners are connected (and joined) across the workers."""
        replies = await self._each([("grow", n) for n in shares(total, self.size)], timeout)
        return Grown(
            held=sum(r[1] for r in replies),
            failed=sum(r[2] for r in replies),
            failures=[f for r in replies for f in r[3]][:5],
        )

    async def add_churners(self, total: int, timeout: float) -> Grown:
        replies = await self._each([("churners", n) for n in shares(total, self.size)], timeout)
        return Grown(
            held=sum(r[1] for r in replies),
            failed=sum(r[2] for r in replies),
            failures=[f for r in replies for f in r[3]][:5],
        )

    async def churn(
        self, rate: float, start_at: float, seconds: float, in_flight: int, timeout: float
    ) -> list[ChurnCounts]:
        per_worker = rate / self.size
        cap = max(2, math.ceil(in_flight / self.size))
        commands = [("churn", per_worker, start_at, seconds, cap)] * self.size
        return [r[1] for r in await self._each(commands, timeout)]

    async def receipts(self, timeout: float) -> tuple[dict[int, list[float]], int, int]:
        """Every socket's receipt times by sequence number; frames received; listeners open."""
        merged: dict[int, list[float]] = {}
        received = alive = 0
        for reply in await self._each([("receipts",)] * self.size, timeout):
            for seq, times in reply[1].items():
                merged.setdefault(seq, []).extend(times)
            received += reply[2]
            alive += reply[3]
        return merged, received, alive

    async def stop(self, timeout: float = CLOSE_TIMEOUT_S + 5) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        await asyncio.to_thread(self._join, timeout)
        self.kill()

    def _join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))

    def kill(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
        for proc in self.procs:
            proc.join(2)
        for pipe in self.pipes:
            pipe.close()
        self.procs.clear()
        self.pipes.clear()
