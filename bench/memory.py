"""What an idle Socket.IO member and a WebRTC listener cost the server in memory (RSS).

``python bench/memory.py [--sockets 2000] [--listeners 100] [--json]``

Four phases, each on a fresh server pinned to core 0 (``taskset -c 0``), the load — worker
processes and this driver — on core 1. RSS is ``VmRSS`` of the server process
(/proc/PID/status), read once it is *steady*: sampled every 0.5 s until it moves by less than
256 KB over ``--steady-s`` (3 s; at most 30 s).

1. **idle sockets, liveroom**: ``liveroom serve`` (SQLite in a temporary directory, every rate
   limit raised), a host with a live room. A few warm-up sockets connect and join first (the
   first ones pay for code paths run once, Engine.IO's service task, caches) and stay; RSS
   *before*; then N raw Engine.IO websocket clients (worker processes, about 500 each) connect
   (``40{"token": …}``), join the room as listeners (``42N["room:join", …]``), read everything
   they are sent and answer pings; RSS *after*. ``kb_per_socket`` = (after − before) / joined.
2. **idle sockets, baseline**: a minimal python-socketio server (``--socketio-server PORT``,
   this file: accepts any token, ``room:join`` = ``enter_room``) with the same clients.
3. **WebRTC listeners, liveroom**: a fresh ``liveroom serve``; the host publishes a 440 Hz tone;
   2 warm-up listeners (in this driver, through the SDK; they stay); RSS before; N listeners
   as ``bench/listeners.py`` runs them (worker processes, a token each, ``room:join`` then a
   ``recvonly`` offer; they receive and decrypt RTP but do not decode), each connected once its
   first packet arrived; RSS after.
   ``kb_per_listener`` includes the listener's Socket.IO connection and membership
   (``detail.kb_per_listener_media`` takes ``kb_per_socket`` off).
4. **WebRTC listeners, baseline**: ``bench/listeners.py --baseline-server`` (stock aiortc, an
   encoder and a tone track per listener) with the same listeners.

RSS counts what the allocator holds, not what is live: a measurement that follows freed memory
would reuse it, hence a fresh server each phase and deltas only (the baselines' absolute RSS
includes the modules this file imports — liveroom, aiortc, PyAV — which do not move the delta).

Goals (shown, not asserted): ≤ 30 KB per idle socket, ≤ 200 KB per WebRTC listener. Prints a
table, then one JSON line (``--json``: only that line). Loopback only; bounded by
``--timeout``; every process started here is killed at the end and dies with this driver
(``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import resource
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import listeners as webrtc
from bench.listeners import (
    LOAD_CPU,
    SERVER_CPU,
    Processes,
    _two_cores,
    die_with_parent,
    drive,
    free_port,
    pin,
    recv,
    server,
    server_env,
    split,
)
from liveroom.auth import Grants, Identity, TokenService
from liveroom.client import LiveroomClient
from liveroom.client.audio import AudioSession, Recording, ToneTrack, open_audio, record
from liveroom.clock import SystemClock
from liveroom.media.ice import rtc_configuration, use_loopback_candidates

RATE_LIMITS = ",".join(
    f"{name}=1000000/1"
    for name in (
        "events",
        "events_per_ip",
        "connects",
        "connects_per_ip",
        "guest_tokens",
        "joins",
        "joins_per_ip",
        "offers",
        "offers_per_ip",
    )
)
SOCKETS_PER_WORKER = 500
MAX_WORKERS = 6
HANDSHAKES_IN_FLIGHT = 16  # per worker
WARM_LISTENERS = 2
LISTEN_TIMEOUT_S = 20.0
STEADY_S = 3.0
STEADY_KB = 256
STEADY_TIMEOUT_S = 30.0
GOAL_KB_PER_SOCKET = 30.0
GOAL_KB_PER_LISTENER = 200.0
THIS_SCRIPT = str(Path(__file__).resolve())


# --- RSS ------------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def steady_rss_kb(pid: int, steady_s: float = STEADY_S) -> tuple[int, float]:
    """RSS once it moved by less than ``STEADY_KB`` over ``steady_s`` (or after
    ``STEADY_TIMEOUT_S``), and how long that took."""
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    while True:
        t = time.monotonic()
        samples.append((t, rss_kb(pid)))
        window = [kb for at, kb in samples if at >= t - steady_s]
        if t - started >= steady_s and max(window) - min(window) < STEADY_KB:
            return samples[-1][1], t - started
        if t - started >= STEADY_TIMEOUT_S:
            return samples[-1][1], t - started
        await asyncio.sleep(min(0.5, steady_s / 4))


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one (children inherit it); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- idle sockets: raw Engine.IO v4 websocket clients ----------------------------------------


@dataclass(frozen=True, slots=True)
class SocketSpec:
    url: str  # http://127.0.0.1:PORT
    room_id: str
    warm_tokens: tuple[str, ...]
    tokens: tuple[str, ...]
    timeout_s: float


@dataclass
class RawSocket:
    """One Socket.IO client as few bytes as it takes: connect, join, answer pings, read."""

    ws: aiohttp.ClientWebSocketResponse
    reader: asyncio.Task[None] | None = None
    joined: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    received: int = 0

    async def read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = str(message.data)
            self.received += 1
            if data == "2":  # Engine.IO ping
                await self.ws.send_str("3")
            elif data.startswith("431") and not self.joined.done():  # the join's ack (id 1)
                ack = json.loads(data[3:])
                self.joined.set_result(bool(ack and isinstance(ack[0], dict) and ack[0].get("ok")))
        if not self.joined.done():
            self.joined.set_result(False)


async def open_raw_socket(http: aiohttp.ClientSession, spec: SocketSpec, token: str) -> RawSocket:
    url = spec.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await http.ws_connect(url, autoping=True, max_msg_size=0)
    sock = RawSocket(ws)
    try:
        opened = await ws.receive_str()
        if not opened.startswith("0"):
            raise RuntimeError(f"no Engine.IO open packet: {opened[:80]!r}")
        await ws.send_str("40" + json.dumps({"token": token}))
        connected = await ws.receive_str()
        if not connected.startswith("40"):
            raise RuntimeError(f"refused: {connected[:120]!r}")
        sock.reader = asyncio.create_task(sock.read())
        await ws.send_str("421" + json.dumps(["room:join", {"room_id": spec.room_id}]))
        if not await sock.joined:
            raise RuntimeError("room:join was not ok")
    except BaseException:
        await close_raw(sock)
        raise
    return sock


async def close_raw(sock: RawSocket) -> None:
    with contextlib.suppress(Exception):
        await sock.ws.close()
    if sock.reader is not None:
        sock.reader.cancel()
        await asyncio.gather(sock.reader, return_exceptions=True)


def socket_worker_main(conn: Connection, spec: SocketSpec) -> None:
    """A load process: warm-up sockets, then its share, each joined and idle until told."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver ends us
    pin(LOAD_CPU)
    raise_fd_limit()
    asyncio.run(_socket_worker(conn, spec))


async def _socket_worker(conn: Connection, spec: SocketSpec) -> None:
    sockets: list[RawSocket] = []
    gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def batch(tokens: Sequence[str]) -> list[str]:
            failures: list[str] = []

            async def one(token: str) -> None:
                async with gate:
                    try:
                        async with asyncio.timeout(spec.timeout_s):
                            sockets.append(await open_raw_socket(http, spec, token))
                    except Exception as e:
                        failures.append(f"{type(e).__name__}: {e}")

            await asyncio.gather(*(one(t) for t in tokens))
            return failures

        try:
            failures = await batch(spec.warm_tokens)
            conn.send(("warm", len(sockets), failures[:3]))
            if (await recv(conn, None))[0] != "go":
                return
            warm = len(sockets)
            failures = await batch(spec.tokens)
            conn.send(("ready", len(sockets) - warm, failures[:3]))
            await recv(conn, None)  # "stop"
            alive = sum(1 for s in sockets if not s.ws.closed)
            received = sum(s.received for s in sockets)
            conn.send(("stopped", alive, received))
        finally:
            await asyncio.gather(*(close_raw(s) for s in sockets))


# --- the socket baseline: python-socketio, nothing else ---------------------------------------


def socketio_app() -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        max_http_buffer_size=65536,
        logger=False,
        engineio_logger=False,
    )
    app = web.Application()
    sio.attach(app, socketio_path="socket.io")

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        return isinstance(auth, dict) and isinstance(auth.get("token"), str)

    async def join(sid: str, data: Any = None) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("room_id"), str):
            return {"ok": False, "error": {"code": "invalid"}}
        await sio.enter_room(sid, data["room_id"])
        return {"ok": True}

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    sio.on("connect", connect)
    sio.on("room:join", join)
    app.router.add_get("/health", health)
    return app


def run_socketio_server(port: int) -> None:
    web.run_app(socketio_app(), host="127.0.0.1", port=port, print=None, access_log=None)


# --- phases ----------------------------------------------------------------------------------


@dataclass
class Phase:
    """One server's RSS before and after N clients, and what connected."""

    name: str
    clients: int
    connected: int
    rss_before_kb: int
    rss_after_kb: int
    steady_s: float
    setup_s: float
    failures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kb_per_client(self) -> float | None:
        if not self.connected:
            return None
        return round((self.rss_after_kb - self.rss_before_kb) / self.connected, 1)

    def as_json(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "connected": self.connected,
            "kb_per_client": self.kb_per_client,
            "rss_before_mb": round(self.rss_before_kb / 1024, 1),
            "rss_after_mb": round(self.rss_after_kb / 1024, 1),
            "steady_s": round(self.steady_s, 1),
            "setup_s": round(self.setup_s, 1),
            "failures": self.failures[:3],
            **self.extra,
        }


def start_workers(
    procs: Processes, target: Callable[..., None], specs: Sequence[Any]
) -> list[Connection]:
    ctx = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    for spec in specs:
        parent, child = ctx.Pipe()
        worker = ctx.Process(target=target, args=(child, spec), daemon=True)
        worker.start()
        child.close()
        procs.workers.append(worker)
        pipes.append(parent)
    return pipes


async def sockets_phase(
    procs: Processes,
    name: str,
    pid: int,
    url: str,
    room_id: str,
    tokens: Sequence[str],
    warm_tokens: Sequence[str],
    workers: int,
    steady_s: float,
) -> Phase:
    timeout_s = 30 + 0.02 * len(tokens)
    shares = split(tokens, workers)
    warm_shares = [tuple(warm_tokens[i :: len(shares)]) for i in range(len(shares))]
    specs = [
        SocketSpec(url, room_id, warm, share, timeout_s)
        for warm, share in zip(warm_shares, shares, strict=True)
    ]
    pipes = start_workers(procs, socket_worker_main, specs)
    try:
        warmed = await asyncio.gather(*(recv(p, timeout_s * 2 + 30) for p in pipes))
        failures = [f for w in warmed for f in w[2]]
        rss_before, _ = await steady_rss_kb(pid, steady_s)
        started = time.monotonic()
        for p in pipes:
            p.send(("go",))
        readies = await asyncio.gather(*(recv(p, timeout_s * 2 + 30) for p in pipes))
        setup_s = time.monotonic() - started
        connected = sum(r[1] for r in readies)
        failures += [f for r in readies for f in r[2]]
        rss_after, settled_s = await steady_rss_kb(pid, steady_s)
        for p in pipes:
            p.send(("stop",))
        stopped = await asyncio.gather(*(recv(p, 30) for p in pipes))
    finally:
        await asyncio.to_thread(procs.stop_workers, 10.0)
    return Phase(
        name,
        len(tokens),
        connected,
        rss_before,
        rss_after,
        settled_s,
        setup_s,
        failures,
        {
            "warm_sockets": sum(w[1] for w in warmed),
            "open_at_end": sum(s[1] for s in stopped),
            "messages_received": sum(s[2] for s in stopped),
            "workers": len(pipes),
        },
    )


async def heard(rec: Recording) -> None:
    async with asyncio.timeout(LISTEN_TIMEOUT_S):
        while True:
            if rec.chunks:
                return
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def warm_listeners(
    mode: str, url: str, room_id: str, tokens: Sequence[str]
) -> AsyncIterator[int]:
    """Listeners in this driver (they decode: a couple cost the load core nothing) that connect
    before RSS is first read, and stay: the first ones pay for what is done once (the
    program feed's first sender, DTLS and SRTP contexts, caches)."""
    async with contextlib.AsyncExitStack() as stack:
        for token in tokens:
            if mode == "liveroom":
                client = await LiveroomClient.connect(url, token)
                stack.push_async_callback(client.close)
                await client.request("room:join", {"room_id": room_id})
                session = await open_audio(client, room_id, timeout=LISTEN_TIMEOUT_S)
                stack.push_async_callback(session.close)
                await heard(session.recording)
                continue
            pc = RTCPeerConnection(rtc_configuration([]))
            stack.push_async_callback(pc.close)
            pc.addTransceiver("audio", direction="recvonly")
            arrived: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
            pc.on("track", arrived.set_result)
            await pc.setLocalDescription(await pc.createOffer())
            offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
            async with aiohttp.ClientSession() as http, http.post(f"{url}/offer", json=offer) as r:
                r.raise_for_status()
                answer = await r.json()
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
            rec = Recording()
            reader = asyncio.create_task(
                record(await asyncio.wait_for(arrived, LISTEN_TIMEOUT_S), rec)
            )
            stack.push_async_callback(_cancel, reader)
            await heard(rec)
        yield len(tokens)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def listeners_phase(
    procs: Processes,
    name: str,
    pid: int,
    mode: str,
    url: str,
    room_id: str,
    tokens: Sequence[str],
    warm_tokens: Sequence[str],
    workers: int,
    steady_s: float,
) -> Phase:
    """Warm-up listeners (kept), RSS, then N listeners in ``bench/listeners.py``'s workers."""
    timeout_s = 30 + 0.5 * len(tokens)
    specs = [
        webrtc.WorkerSpec(mode, url, room_id, share, timeout_s) for share in split(tokens, workers)
    ]
    async with warm_listeners(mode, url, room_id, warm_tokens) as warm:
        try:
            rss_before, _ = await steady_rss_kb(pid, steady_s)
            started = time.monotonic()
            pipes = start_workers(procs, webrtc.worker_main, specs)
            readies = await asyncio.gather(*(recv(p, timeout_s * 2 + 30) for p in pipes))
            setup_s = time.monotonic() - started
            connected = sum(r[1] for r in readies)
            failures = [f for r in readies for f in r[2]]
            rss_after, settled_s = await steady_rss_kb(pid, steady_s)
            # The workers' protocol: a (here empty) counting window, their counts, then "stop".
            end = time.monotonic() + 0.2
            for p in pipes:
                p.send(("window", end - 0.1, end))
            results = await asyncio.gather(*(recv(p, 30) for p in pipes))
            alive = sum(r[2] for r in results)
            for p in pipes:
                with contextlib.suppress(OSError):
                    p.send(("stop",))
        finally:
            await asyncio.to_thread(procs.stop_workers, 10.0)
    return Phase(
        name,
        len(tokens),
        connected,
        rss_before,
        rss_after,
        settled_s,
        setup_s,
        failures,
        {"warm_listeners": warm, "connected_at_end": alive, "workers": len(specs)},
    )


@dataclass
class Bench:
    procs: Processes
    tmp: Path
    args: argparse.Namespace

    @contextlib.asynccontextmanager
    async def liveroom(
        self, label: str
    ) -> AsyncIterator[tuple[int, str, TokenService, LiveroomClient, str]]:
        """A fresh ``liveroom serve`` with a host in a live room."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        secret = secrets.token_urlsafe(48)
        tokens = TokenService(secret, SystemClock(), 3600)
        env = server_env(port, self.tmp / f"data-{label}", secret)
        env["LIVEROOM_RATE_LIMITS"] = RATE_LIMITS
        argv = [sys.executable, "-m", "liveroom", "serve"]
        async with server(self.procs, argv, env, url, self.tmp / f"{label}.log") as pid:
            host_token = tokens.issue(
                Identity("mem_host", "Memory host", grants=Grants(host=True)), 3600
            )
            host = await LiveroomClient.connect(url, host_token)
            try:
                created = await host.request("room:create", {"title": "Memory"})
                room_id = str(created["room"]["id"])
                await host.request("room:join", {"room_id": room_id})
                yield pid, url, tokens, host, room_id
            finally:
                await host.close()

    @contextlib.asynccontextmanager
    async def baseline(self, argv: Sequence[str], label: str) -> AsyncIterator[tuple[int, str]]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        async with server(
            self.procs, [*argv, str(port)], env, f"{url}/health", self.tmp / f"{label}.log"
        ) as pid:
            yield pid, url


def user_tokens(tokens: TokenService | None, prefix: str, n: int) -> list[str]:
    if tokens is None:
        return [f"{prefix}{i}" for i in range(n)]  # the baselines check no signature
    return [tokens.issue(Identity(f"{prefix}{i}", f"{prefix}{i}"), 3600) for i in range(n)]


async def measure_sockets(bench: Bench) -> tuple[Phase, Phase | None]:
    n = bench.args.sockets
    warm = min(50, max(2, n // 20))
    workers = min(MAX_WORKERS, max(1, math.ceil(n / SOCKETS_PER_WORKER)))
    async with bench.liveroom("sockets") as (pid, url, tokens, _, room_id):
        ours = await sockets_phase(
            bench.procs,
            "liveroom",
            pid,
            url,
            room_id,
            user_tokens(tokens, "s", n),
            user_tokens(tokens, "w", warm),
            workers,
            bench.args.steady_s,
        )
    if bench.args.no_baseline:
        return ours, None
    argv = [sys.executable, THIS_SCRIPT, "--socketio-server"]
    async with bench.baseline(argv, "socketio") as (pid, url):
        base = await sockets_phase(
            bench.procs,
            "python-socketio",
            pid,
            url,
            "room",
            user_tokens(None, "s", n),
            user_tokens(None, "w", warm),
            workers,
            bench.args.steady_s,
        )
    return ours, base


async def measure_listeners(bench: Bench) -> tuple[Phase, Phase | None]:
    n = bench.args.listeners
    workers = min(webrtc.MAX_WORKERS, max(1, math.ceil(n / webrtc.LISTENERS_PER_WORKER)))
    async with bench.liveroom("webrtc") as (pid, url, tokens, host, room_id):
        session: AudioSession | None = None
        try:
            await host.request("stage:unmute", {"room_id": room_id})
            session = await open_audio(host, room_id, publish=ToneTrack(440))
            ours = await listeners_phase(
                bench.procs,
                "liveroom",
                pid,
                "liveroom",
                url,
                room_id,
                user_tokens(tokens, "l", n),
                user_tokens(tokens, "wl", WARM_LISTENERS),
                workers,
                bench.args.steady_s,
            )
        finally:
            if session is not None:
                await session.close()
    if bench.args.no_baseline:
        return ours, None
    argv = [sys.executable, webrtc.THIS_SCRIPT, "--baseline-server"]
    async with bench.baseline(argv, "aiortc") as (pid, url):
        base = await listeners_phase(
            bench.procs,
            "aiortc",
            pid,
            "baseline",
            url,
            "",
            user_tokens(None, "l", n),
            user_tokens(None, "wl", WARM_LISTENERS),
            workers,
            bench.args.steady_s,
        )
    return ours, base


async def run(args: argparse.Namespace, procs: Processes) -> dict[str, Any]:
    out: dict[str, Any] = {"sockets": args.sockets, "listeners": args.listeners}
    try:
        with tempfile.TemporaryDirectory(prefix="liveroom-memory-") as tmpdir:
            bench = Bench(procs, Path(tmpdir), args)
            started = time.monotonic()
            sockets, sockets_base = await measure_sockets(bench) if args.sockets else (None, None)
            wall_s = {"sockets": round(time.monotonic() - started, 1)}
            started = time.monotonic()
            webrtc_ours, webrtc_base = (
                await measure_listeners(bench) if args.listeners else (None, None)
            )
            wall_s["listeners"] = round(time.monotonic() - started, 1)
    finally:
        await asyncio.to_thread(procs.kill_all)
    per_socket = sockets.kb_per_client if sockets else None
    per_listener = webrtc_ours.kb_per_client if webrtc_ours else None
    out |= {
        "kb_per_socket": per_socket,
        "kb_per_listener": per_listener,
        "baseline_kb_per_socket": sockets_base.kb_per_client if sockets_base else None,
        "baseline_kb_per_listener": webrtc_base.kb_per_client if webrtc_base else None,
        "goals": {"kb_per_socket": GOAL_KB_PER_SOCKET, "kb_per_listener": GOAL_KB_PER_LISTENER},
        "detail": {
            "kb_per_listener_media": (
                round(per_listener - per_socket, 1)
                if per_listener is not None and per_socket is not None
                else None
            ),
            "sockets": sockets.as_json() if sockets else None,
            "sockets_baseline": sockets_base.as_json() if sockets_base else None,
            "listeners": webrtc_ours.as_json() if webrtc_ours else None,
            "listeners_baseline": webrtc_base.as_json() if webrtc_base else None,
            "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "wall_s": wall_s,
        },
        "pinned": _two_cores(),
    }
    return out


# --- output ----------------------------------------------------------------------------------


def summary(out: dict[str, Any]) -> str:
    d = out["detail"]

    def row(label: str, phase: dict[str, Any] | None, goal: float | None) -> str:
        if phase is None:
            return f"{label:34} {'—':>9} {'—':>9} {'—':>9} {'—':>11}"
        per = phase["kb_per_client"]
        verdict = ""
        if goal is not None and per is not None:
            verdict = f"   goal ≤ {goal:g} KB: " + ("met" if per <= goal else "missed")
        return (
            f"{label:34} {phase['connected']:>5}/{phase['clients']:<5} "
            f"{phase['rss_before_mb']:>9.1f} {phase['rss_after_mb']:>9.1f} "
            f"{_num(per):>11}{verdict}"
        )

    lines = [
        f"server on core {SERVER_CPU}, load on core {LOAD_CPU}"
        + ("" if out["pinned"] else " (NOT pinned: fewer than two cores)"),
        f"{'':34} {'connected':>11} {'RSS MB':>9} {'→ MB':>9} {'KB each':>11}",
        row("idle sockets: liveroom", d["sockets"], GOAL_KB_PER_SOCKET),
        row("idle sockets: python-socketio", d["sockets_baseline"], None),
        row("WebRTC listeners: liveroom", d["listeners"], GOAL_KB_PER_LISTENER),
        row("WebRTC listeners: aiortc", d["listeners_baseline"], None),
        f"liveroom listener less its socket: {_num(d['kb_per_listener_media'])} KB",
    ]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sockets", type=int, default=2000, help="idle sockets (0: skip)")
    parser.add_argument("--listeners", type=int, default=100, help="WebRTC listeners (0: skip)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baselines")
    parser.add_argument(
        "--steady-s",
        type=float,
        default=STEADY_S,
        help=f"RSS is steady when it moved < {STEADY_KB} KB over this long (default {STEADY_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print only one JSON line")
    parser.add_argument("--timeout", type=float, default=0, help="overall limit, s (default: auto)")
    parser.add_argument("--socketio-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.socketio_server is None and (
        args.sockets < 0
        or args.listeners < 0
        or args.sockets + args.listeners == 0
        or args.steady_s <= 0
    ):
        parser.error("--sockets and --listeners ≥ 0 and not both 0; --steady-s > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.socketio_server is not None:
        die_with_parent()
        run_socketio_server(args.socketio_server)
        return 0
    fd_limit = raise_fd_limit()
    if args.sockets + 200 > fd_limit:
        sys.stderr.write(f"memory.py: {args.sockets} sockets need more than {fd_limit} fds\n")
        return 2
    pin(LOAD_CPU)
    use_loopback_candidates(True)
    timeout = args.timeout or 2 * (240 + 0.05 * args.sockets + 1.5 * args.listeners)

    return drive(
        "memory.py", lambda procs: run(args, procs), timeout, None if args.json else summary
    )


if __name__ == "__main__":
    raise SystemExit(main())
