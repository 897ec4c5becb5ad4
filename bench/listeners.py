"""How many receive-only WebRTC listeners one server core carries, against aiortc's own way.

``python bench/listeners.py --listeners N --seconds S [--json]``

Two phases, each on a fresh server pinned to core 0 (``taskset -c 0``), with the load — the
listeners, in several worker processes, and this driver — pinned to core 1:

1. **liveroom**: ``liveroom serve`` in a subprocess; a host (in this driver) creates a live room,
   unmutes and publishes a 440 Hz tone; N listeners each connect with their own token, join and
   offer ``recvonly``. The server encodes the program mix once per 20 ms and one loop per room
   sends that same packet to every listener.
2. **baseline**: a minimal aiortc server (this file, ``--baseline-server PORT``, a tiny aiohttp
   ``POST /offer``) where every listener's sender reads its own PCM tone track, so aiortc
   encodes once per listener — the design's anti-pattern.

Listeners only receive, decrypt (SRTP, in aiortc's DTLS transport) and count: in the worker
processes ``RTCRtpReceiver._handle_rtp_packet`` is replaced by a counter, so no packet reaches a
jitter buffer or a decoder (a decoding client would measure itself).

Over the steady-state window of S seconds:

- ``loss``: 1 − packets received / (50 per second × S × N) — a listener that never connected
  counts as lost, a late or skipped mixer tick counts as lost.
- ``server_cpu``: the server process's utime+stime delta (/proc/PID/stat, every thread) over the
  window, as a fraction of one core.
- ``us_per_packet``: server CPU µs / packets the server sent to listeners in the window (from
  each listener's RTP sequence-number span, so client-side drops do not flatter it). It includes
  the server's fixed costs (the mixer, the host's decode, signaling); ``detail`` also gives the
  marginal figure with the idle cost (host only, no listeners) taken off.
- ``listeners_per_core``: listeners served / ``server_cpu``, where listeners served is the
  connected count, or fewer when packets were lost (packets received / 50 / S): a linear
  extrapolation from this N, trustworthy only while the server is not saturated
  (``detail.saturated``: ``server_cpu`` > 0.9) and loss is low. Without loss it is exactly
  N / ``server_cpu``.

Loopback only: the servers offer 127.0.0.1 host candidates and nothing else; no STUN.
Everything is bounded by ``--timeout``; every process started here is killed at the end (and
dies with this driver, through ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
from aiohttp import web
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.rtp import RtpPacket

from liveroom.auth import Grants, Identity, TokenService
from liveroom.client import LiveroomClient
from liveroom.client.audio import AudioSession, ToneTrack, open_audio
from liveroom.clock import SystemClock
from liveroom.media.ice import rtc_configuration, use_loopback_candidates
from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from liveroom.ratelimit import DEFAULT_RATE_LIMITS

SERVER_CPU = 0
LOAD_CPU = 1
PACKETS_PER_S = SAMPLE_RATE // FRAME_SAMPLES  # 50: one Opus packet per 20 ms
RATE_LIMITS = ",".join(f"{name}=1000000/1" for name in DEFAULT_RATE_LIMITS)  # none in the way
LISTENERS_PER_WORKER = 25
MAX_WORKERS = 8
CONNECTS_IN_FLIGHT = 6  # per worker: the servers' DTLS set-up is the bottleneck anyway
WARMUP_S = 2.0
IDLE_S = 2.0
PR_SET_PDEATHSIG = 1
THIS_SCRIPT = str(Path(__file__).resolve())


# --- processes: pinned, bounded, killed ------------------------------------------------------


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})


def user_system_seconds(pid: int) -> tuple[float, float]:
    """utime and stime of every thread of ``pid`` so far (/proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    return sum(user_system_seconds(pid))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    """Everything this driver started; :meth:`kill_all` ends each of them by its own id."""

    def __init__(self) -> None:
        self.popens: list[subprocess.Popen[bytes]] = []
        self.workers: list[BaseProcess] = []

    def start_server(self, argv: Sequence[str], env: dict[str, str], log: Path) -> int:
        taskset = ["taskset", "-c", str(SERVER_CPU)] if _two_cores() else []
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
                [*taskset, *argv],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # noqa: PLW1509  (no threads started before this)
            )
        self.popens.append(proc)
        return proc.pid

    def stop_server(self, pid: int, grace_s: float = 5.0) -> None:
        for proc in [p for p in self.popens if p.pid == pid]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(grace_s)
            self.popens.remove(proc)

    def stop_workers(self, grace_s: float = 5.0) -> None:
        deadline = time.monotonic() + grace_s
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            if worker.is_alive():
                worker.kill()
                worker.join(2)
        self.workers.clear()

    def kill_all(self) -> None:
        for worker in self.workers:
            if worker.is_alive():
                worker.kill()
        for worker in self.workers:
            worker.join(2)
        self.workers.clear()
        for proc in self.popens:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self.popens.clear()


_CPUS_AT_START = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def _two_cores() -> bool:
    """Whether both cores were ours to pin to (decided before this driver pinned itself)."""
    return _CPUS_AT_START is not None and {SERVER_CPU, LOAD_CPU} <= _CPUS_AT_START


async def wait_http(url: str, pid_alive: Callable[[], bool], timeout: float) -> None:
    """Until ``url`` answers anything at all (the server is listening)."""
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
        while True:
            if not pid_alive():
                raise RuntimeError(f"the server exited before listening on {url}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url) as resp:
                    await resp.read()
                    return
            await asyncio.sleep(0.1)


# --- listeners: receive, decrypt, count ------------------------------------------------------


def unwrap(previous: int | None, value: int, bits: int) -> int:
    """``value`` (mod 2**bits) extended to the integer nearest ``previous``."""
    if previous is None:
        return value
    modulus = 1 << bits
    delta = (value - previous) % modulus
    if delta >= modulus // 2:
        delta -= modulus
    return previous + delta


@dataclass
class WindowCount:
    """One listener's packets that arrived within the measuring window."""

    received: int = 0
    seq_min: int = 0
    seq_max: int = 0
    ts_min: int = 0
    ts_max: int = 0
    max_gap_s: float = 0.0

    @property
    def sent(self) -> int:
        """Packets the server sent this listener in the window, by sequence-number span."""
        return self.seq_max - self.seq_min + 1 if self.received else 0

    @property
    def ticks(self) -> int:
        """Mix ticks the window spans, by RTP timestamp."""
        return (self.ts_max - self.ts_min) // FRAME_SAMPLES + 1 if self.received else 0


class PacketCounter:
    """Counts what one receiver gets; the window is the same for every counter of a process."""

    window: tuple[float, float] = (math.inf, math.inf)

    def __init__(self) -> None:
        self.total = 0
        self.first = asyncio.get_running_loop().create_future()
        self.count = WindowCount()
        self._seq: int | None = None
        self._ts: int | None = None
        self._last_arrival: float | None = None

    def add(self, sequence_number: int, timestamp: int) -> None:
        self.total += 1
        if not self.first.done():
            self.first.set_result(None)
        now = time.monotonic()
        start, end = PacketCounter.window
        if not start <= now < end:
            return
        self._seq = seq = unwrap(self._seq, sequence_number, 16)
        self._ts = ts = unwrap(self._ts, timestamp, 32)
        c = self.count
        if c.received == 0:
            c.seq_min = c.seq_max = seq
            c.ts_min = c.ts_max = ts
        else:
            c.seq_min, c.seq_max = min(c.seq_min, seq), max(c.seq_max, seq)
            c.ts_min, c.ts_max = min(c.ts_min, ts), max(c.ts_max, ts)
        if self._last_arrival is not None:
            c.max_gap_s = max(c.max_gap_s, now - self._last_arrival)
        self._last_arrival = now
        c.received += 1


COUNTERS: dict[RTCRtpReceiver, PacketCounter] = {}


async def _count_rtp(self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
    """Replaces ``RTCRtpReceiver._handle_rtp_packet`` in listener workers: the packet was
    received and SRTP-decrypted by the DTLS transport; count it, never depacketize or decode."""
    counter = COUNTERS.get(self)
    if counter is not None:
        counter.add(packet.sequence_number, packet.timestamp)


def count_instead_of_decoding() -> None:
    RTCRtpReceiver._handle_rtp_packet = _count_rtp  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    mode: str  # "liveroom" | "baseline"
    url: str
    room_id: str
    tokens: tuple[str, ...]
    connect_timeout_s: float


@dataclass
class Listener:
    pc: RTCPeerConnection
    counter: PacketCounter
    client: LiveroomClient | None = None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pc.close()
        if self.client is not None:
            await self.client.close()


async def _recvonly_pc() -> tuple[RTCPeerConnection, PacketCounter]:
    pc = RTCPeerConnection(rtc_configuration([]))
    transceiver = pc.addTransceiver("audio", direction="recvonly")
    counter = PacketCounter()
    COUNTERS[transceiver.receiver] = counter
    await pc.setLocalDescription(await pc.createOffer())
    return pc, counter


async def connect_liveroom(spec: WorkerSpec, token: str) -> Listener:
    client = await LiveroomClient.connect(spec.url, token)
    try:
        await client.request("room:join", {"room_id": spec.room_id})
        pc, counter = await _recvonly_pc()
        listener = Listener(pc, counter, client)
        answer = await client.request(
            "rtc:offer",
            {"room_id": spec.room_id, "sdp": pc.localDescription.sdp, "type": "offer"},
            timeout=spec.connect_timeout_s,
        )
    except BaseException:
        await client.close()
        raise
    try:
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await counter.first
    except BaseException:
        await listener.close()
        raise
    return listener


async def connect_baseline(spec: WorkerSpec, http: aiohttp.ClientSession) -> Listener:
    pc, counter = await _recvonly_pc()
    listener = Listener(pc, counter)
    try:
        async with http.post(
            f"{spec.url}/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}
        ) as resp:
            resp.raise_for_status()
            answer = await resp.json()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await counter.first
    except BaseException:
        await listener.close()
        raise
    return listener


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """A load process: connect its share of listeners, count one window, report, close."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver ends us
    pin(LOAD_CPU)
    use_loopback_candidates(True)
    count_instead_of_decoding()
    asyncio.run(_worker(conn, spec))


async def _worker(conn: Connection, spec: WorkerSpec) -> None:
    listeners: list[Listener] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)
    async with aiohttp.ClientSession() as http:

        async def one(token: str) -> None:
            async with gate:
                try:
                    async with asyncio.timeout(spec.connect_timeout_s):
                        if spec.mode == "liveroom":
                            listeners.append(await connect_liveroom(spec, token))
                        else:
                            listeners.append(await connect_baseline(spec, http))
                except Exception as e:
                    failures.append(f"{type(e).__name__}: {e}")

        try:
            await asyncio.gather(*(one(t) for t in spec.tokens))
            conn.send(("ready", len(listeners), failures[:3]))
            message = await recv(conn, None)
            if message[0] != "window":
                return
            PacketCounter.window = (message[1], message[2])
            await asyncio.sleep(max(0.0, message[2] - time.monotonic()) + 0.1)
            counts = [asdict(listener.counter.count) for listener in listeners]
            alive = sum(1 for listener in listeners if listener.pc.connectionState == "connected")
            conn.send(("result", counts, alive))
            await recv(conn, None)  # "stop"
        finally:
            await asyncio.gather(*(listener.close() for listener in listeners))


async def recv(conn: Connection, timeout: float | None) -> Any:
    """The next message from a pipe, without blocking the event loop."""

    def wait() -> Any:
        if not conn.poll(timeout):
            raise TimeoutError("no message from the other process")
        return conn.recv()

    return await asyncio.to_thread(wait)


# --- the baseline server: aiortc, one encoder per listener -----------------------------------


PEERS = web.AppKey("peers", set[RTCPeerConnection])


def baseline_app() -> web.Application:
    app = web.Application()
    app[PEERS] = set()

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        pc = RTCPeerConnection(rtc_configuration([]))
        request.app[PEERS].add(pc)
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        transceiver = next(t for t in pc.getTransceivers() if t.kind == "audio")
        transceiver.direction = "sendonly"
        transceiver.sender.replaceTrack(ToneTrack(440))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp, "type": "answer"})

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def close_peers(app: web.Application) -> None:
        await asyncio.gather(*(pc.close() for pc in app[PEERS]), return_exceptions=True)

    app.router.add_post("/offer", offer)
    app.router.add_get("/health", health)
    app.on_shutdown.append(close_peers)
    return app


def run_baseline_server(port: int) -> None:
    use_loopback_candidates(True)
    web.run_app(baseline_app(), host="127.0.0.1", port=port, print=None, access_log=None)


# --- the driver ------------------------------------------------------------------------------


@dataclass
class Result:
    listeners: int
    seconds: float
    listeners_per_core: float | None
    us_per_packet: float | None
    loss: float
    server_cpu: float
    connected: int
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    n: int,
    seconds: float,
    connected: int,
    counts: list[dict[str, Any]],
    cpu_s: float,
    idle_cpu: float,
    extra: dict[str, Any],
) -> Result:
    window = [WindowCount(**c) for c in counts]
    received = sum(c.received for c in window)
    sent = sum(c.sent for c in window)
    ticks = sum(c.ticks for c in window)
    expected = PACKETS_PER_S * seconds * n
    server_cpu = cpu_s / seconds
    # Listeners fully served: the connected ones, when nothing is lost; a saturated server that
    # delivers half its packets serves half as many (N / server_cpu would flatter it).
    served = min(connected, received / (PACKETS_PER_S * seconds))
    us = cpu_s * 1e6 / sent if sent else None
    marginal = (cpu_s - idle_cpu * seconds) * 1e6 / sent if sent else None
    gaps = sorted(c.max_gap_s for c in window if c.received)
    return Result(
        listeners=n,
        seconds=seconds,
        listeners_per_core=round(served / server_cpu, 1) if server_cpu > 0 else None,
        us_per_packet=round(us, 1) if us is not None else None,
        loss=round(max(0.0, 1 - received / expected), 5) if expected else 0.0,
        server_cpu=round(server_cpu, 4),
        connected=connected,
        detail={
            "packets_expected": round(expected),
            "packets_received": received,
            "packets_sent": sent,
            "rtp_ticks_spanned": ticks,
            "network_loss": round(1 - received / sent, 5) if sent else None,
            "saturated": server_cpu > 0.9,
            "idle_server_cpu": round(idle_cpu, 4),
            "us_per_packet_marginal": round(marginal, 1) if marginal is not None else None,
            "max_gap_ms": round(gaps[-1] * 1000, 1) if gaps else None,
            "median_listener_max_gap_ms": round(gaps[len(gaps) // 2] * 1000, 1) if gaps else None,
            **extra,
        },
    )


@dataclass(frozen=True, slots=True)
class Plan:
    listeners: int
    seconds: float
    workers: int
    connect_timeout_s: float


def split(items: Sequence[str], parts: int) -> list[tuple[str, ...]]:
    return [tuple(items[i::parts]) for i in range(parts) if items[i::parts]]


async def run_load(
    procs: Processes,
    plan: Plan,
    mode: str,
    url: str,
    room_id: str,
    tokens: Sequence[str],
    server_pid: int,
    idle_cpu: float,
) -> Result:
    """Start the workers, wait for their listeners, measure one window, collect."""
    ctx = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    for share in split(tokens, plan.workers):
        parent, child = ctx.Pipe()
        spec = WorkerSpec(mode, url, room_id, share, plan.connect_timeout_s)
        worker = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
        worker.start()
        child.close()
        procs.workers.append(worker)
        pipes.append(parent)
    setup_started = time.monotonic()
    readies = await asyncio.gather(*(recv(p, plan.connect_timeout_s * 2 + 30) for p in pipes))
    setup_s = time.monotonic() - setup_started
    connected = sum(r[1] for r in readies)
    failures = [f for r in readies for f in r[2]]
    await asyncio.sleep(WARMUP_S)

    start = time.monotonic() + 0.2
    end = start + plan.seconds
    for p in pipes:
        p.send(("window", start, end))
    load_pids = [w.pid for w in procs.workers if w.pid is not None] + [os.getpid()]
    await asyncio.sleep(start - time.monotonic())
    (user0, sys0), load0 = user_system_seconds(server_pid), _sum_cpu(load_pids)
    fanout0 = await fanout_totals(url) if mode == "liveroom" else None
    await asyncio.sleep(end - time.monotonic())
    (user1, sys1), load1 = user_system_seconds(server_pid), _sum_cpu(load_pids)
    fanout1 = await fanout_totals(url) if mode == "liveroom" else None
    cpu_s = (user1 - user0) + (sys1 - sys0)
    rss = rss_mb(server_pid)

    results = await asyncio.gather(*(recv(p, 30) for p in pipes))
    counts = [c for r in results for c in r[1]]
    alive = sum(r[2] for r in results)
    for p in pipes:
        with contextlib.suppress(OSError):
            p.send(("stop",))
    await asyncio.to_thread(procs.stop_workers, 10.0)
    extra = {
        "setup_s": round(setup_s, 1),
        "connected_at_end": alive,
        "server_system_cpu": round((sys1 - sys0) / plan.seconds, 4),  # kernel: sendto, epoll
        "server_rss_mb": round(rss, 1),
        "load_cpu": round((load1 - load0) / plan.seconds, 4),
        "workers": len(pipes),
        "connect_failures": failures,
    }
    if fanout0 is not None and fanout1 is not None and fanout1[0] > fanout0[0]:
        # The fan-out loop's own clock: stamp + SRTP + sendto per listener, nothing else.
        packets, seconds = fanout1[0] - fanout0[0], fanout1[1] - fanout0[1]
        extra["fanout_us_per_packet"] = round(seconds / packets * 1e6, 1)
    return measure(plan.listeners, plan.seconds, connected, counts, cpu_s, idle_cpu, extra)


async def fanout_totals(url: str) -> tuple[float, float] | None:
    """The listeners' fan-out loop's packets and seconds so far, from the server's /metrics."""
    wanted = {
        "liveroom_listener_fanout_packets_total": 0,
        "liveroom_listener_fanout_seconds_total": 1,
    }
    found = [0.0, 0.0]
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
            text = await response.text()
    except aiohttp.ClientError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[wanted[name]] = float(value)
    return found[0], found[1]


def _sum_cpu(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


async def idle_cpu_of(pid: int, seconds: float = IDLE_S) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def server_env(port: int, data_dir: Path, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEROOM_")}
    env.update(
        LIVEROOM_HOST="127.0.0.1",
        LIVEROOM_PORT=str(port),
        LIVEROOM_DATA_DIR=str(data_dir),
        LIVEROOM_SECRET=secret,
        LIVEROOM_ICE_LOOPBACK="1",
        LIVEROOM_RATE_LIMITS=RATE_LIMITS,
        LIVEROOM_LOG_LEVEL="warning",
    )
    return env


@contextlib.asynccontextmanager
async def server(
    procs: Processes, argv: Sequence[str], env: dict[str, str], url: str, log: Path
) -> AsyncIterator[int]:
    pid = procs.start_server(argv, env, log)
    try:
        await wait_http(url, lambda: _alive(procs, pid), timeout=60)
        yield pid
    except Exception:
        sys.stderr.write(f"--- server log ({log}) ---\n{_tail(log)}\n")
        raise
    finally:
        await asyncio.to_thread(procs.stop_server, pid)


def _alive(procs: Processes, pid: int) -> bool:
    return any(p.pid == pid and p.poll() is None for p in procs.popens)


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


async def liveroom_phase(procs: Processes, plan: Plan, tmp: Path) -> Result:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(48)
    tokens = TokenService(secret, SystemClock(), 3600)
    env = server_env(port, tmp / "liveroom-data", secret)
    argv = [sys.executable, "-m", "liveroom", "serve"]
    async with server(procs, argv, env, url, tmp / "liveroom.log") as pid:
        host_token = tokens.issue(
            Identity("bench_host", "Bench host", grants=Grants(host=True)), 3600
        )
        host = await LiveroomClient.connect(url, host_token)
        session: AudioSession | None = None
        try:
            room = await host.request("room:create", {"title": "Bench"})
            room_id = str(room["room"]["id"])
            await host.request("room:join", {"room_id": room_id})
            await host.request("stage:unmute", {"room_id": room_id})
            session = await open_audio(host, room_id, publish=ToneTrack(440))
            await asyncio.sleep(1)
            idle = await idle_cpu_of(pid)
            listener_tokens = [
                tokens.issue(Identity(f"bench_l{i}", f"Listener {i}"), 3600)
                for i in range(plan.listeners)
            ]
            result = await run_load(
                procs, plan, "liveroom", url, room_id, listener_tokens, pid, idle
            )
            heard = session.recording.seconds
            result.detail["host_heard_s"] = round(heard, 1)
            return result
        finally:
            if session is not None:
                await session.close()
            await host.close()


async def baseline_phase(procs: Processes, plan: Plan, tmp: Path) -> Result:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, THIS_SCRIPT, "--baseline-server", str(port)]
    env = dict(os.environ)
    async with server(procs, argv, env, f"{url}/health", tmp / "baseline.log") as pid:
        idle = await idle_cpu_of(pid)
        tokens = [str(i) for i in range(plan.listeners)]  # no auth: just one entry per listener
        return await run_load(procs, plan, "baseline", url, "", tokens, pid, idle)


async def run(args: argparse.Namespace, procs: Processes) -> dict[str, Any]:
    n, seconds = args.listeners, args.seconds
    workers = args.workers or min(MAX_WORKERS, max(1, math.ceil(n / LISTENERS_PER_WORKER)))
    plan = Plan(n, seconds, workers, connect_timeout_s=30 + 0.5 * n)
    try:
        with tempfile.TemporaryDirectory(prefix="liveroom-bench-") as tmpdir:
            tmp = Path(tmpdir)
            ours = await liveroom_phase(procs, plan, tmp)
            base = None if args.no_baseline else await baseline_phase(procs, plan, tmp)
    finally:
        await asyncio.to_thread(procs.kill_all)
    out = ours.as_json()
    out["baseline"] = base.as_json() if base is not None else None
    out["pinned"] = _two_cores()
    return out


def summary(out: dict[str, Any]) -> str:
    rows = [("liveroom (encode once)", out)]
    if out.get("baseline"):
        rows.append(("aiortc, encoder per listener", out["baseline"]))
    lines = [
        f"{out['listeners']} listeners, {out['seconds']:g} s window, "
        f"server on core {SERVER_CPU}, load on core {LOAD_CPU}"
        + ("" if out["pinned"] else " (NOT pinned: fewer than two cores)"),
        f"{'':30} {'connected':>9} {'server_cpu':>10} {'µs/packet':>10} {'marginal':>9} "
        f"{'loss':>8} {'listeners/core':>15}",
    ]
    for name, r in rows:
        d = r["detail"]
        lines.append(
            f"{name:30} {r['connected']:>9} {r['server_cpu']:>10.3f} "
            f"{_num(r['us_per_packet']):>10} {_num(d['us_per_packet_marginal']):>9} "
            f"{r['loss']:>8.2%} {_num(r['listeners_per_core']):>15}"
        )
    lines.append(
        "listeners/core = listeners served (connected, less what was lost) / server_cpu: "
        "a linear extrapolation, meaningless once saturated (server_cpu > 0.9)."
    )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--listeners", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print only one JSON line")
    parser.add_argument("--workers", type=int, default=0, help="listener processes (default: auto)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline phase")
    parser.add_argument("--timeout", type=float, default=0, help="overall limit, s (default: auto)")
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server is None and (args.listeners < 1 or args.seconds <= 0):
        parser.error("--listeners must be ≥ 1 and --seconds > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_server is not None:
        die_with_parent()
        run_baseline_server(args.baseline_server)
        return 0
    pin(LOAD_CPU)
    use_loopback_candidates(True)
    timeout = args.timeout or 2 * (120 + 3 * args.seconds + 1.2 * args.listeners)

    return drive(
        "listeners.py", lambda procs: run(args, procs), timeout, None if args.json else summary
    )


def drive(
    script: str,
    work: Callable[[Processes], Awaitable[dict[str, Any]]],
    timeout: float,
    show: Callable[[dict[str, Any]], str] | None,
) -> int:
    """A bench's whole run, bounded by ``timeout``: SIGTERM and Ctrl-C end it, every process it
    started is killed, and it prints ``show(result)`` (unless ``None``) then the JSON line."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    procs = Processes()
    try:
        out = asyncio.run(_bounded(work(procs), timeout))
    except TimeoutError:
        sys.stderr.write(f"{script}: gave up after {timeout:.0f} s (--timeout)\n")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.stderr.write(f"{script}: interrupted\n")
        return 130
    finally:
        procs.kill_all()  # again, in case the event loop could not
    if show is not None:
        print(show(out))
    print(json.dumps(out, ensure_ascii=False))
    return 0


async def _bounded(work: Awaitable[dict[str, Any]], timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        return await work


if __name__ == "__main__":
    raise SystemExit(main())
