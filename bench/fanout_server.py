"""The server side of bench/fanout.py and bench/churn.py: one server in a process of its own,
measured from inside, driven over its stdin.

``python bench/fanout_server.py --mode liveroom|plain|floor [--redis-url URL] [--announce]``

Modes (each listens on a free loopback port):

- ``liveroom``: the app ``create_app`` builds, as ``liveroom serve`` would, with SQLite in
  ``--data-dir``, the secret from ``$FANOUT_SECRET``, every rate limit in
  ``DEFAULT_RATE_LIMITS`` raised and, with ``--redis-url``, as one node of a cluster (its own
  ``--cluster-name``, so it shares no key with anyone). The broadcast measured is the room's
  audience view (``room:state`` to the room's channel), which a host's ``room:update`` causes.
- ``plain``: a minimal ``socketio.AsyncServer(async_mode="aiohttp")``. A client whose connect
  ``auth`` says ``"enter": true`` is put in the one room at once; ``room:join`` / ``room:leave``
  (acked ``{"ok": true}``) enter and leave it, and with ``--announce`` each also broadcasts
  ``member_joined`` / ``member_left`` to the room: the naive design bench/churn.py compares with.
- ``floor``: a bare aiohttp server (``web.WebSocketResponse(compress=False)`` on ``/ws``); a
  broadcast is one websocket text frame, built once, written straight to every socket's
  transport (``transport.write``) in a loop: the least a Python server can do.

Both Socket.IO servers ping every ``--ping-interval`` seconds (600): no ping is due while the
benchmarks measure, so the frames counted are the broadcast's. Frames written to clients are
counted by liveroom's engine (``frames_written``) when it has one, else by patching Engine.IO's
aiohttp ``WebSocket.send`` (completed sends).

stdout carries JSON lines: ``ready`` (``url``, ``pid``, ``frames_source``), then one reply per
command. Commands on stdin, one JSON object a line:

- ``{"cmd": "arm", "seq", "n"}``: the next ``room:state`` broadcast is measured (liveroom: the
  driver's host then sends ``room:update``); ``armed`` at once, ``broadcast`` when done.
- ``{"cmd": "broadcast", "seq", "n", "frame_bytes"}``: plain and floor broadcast themselves a
  payload of that many bytes; ``broadcast`` when done.
- ``{"cmd": "quiet", "quiet_s", "timeout_s"}``: until no frame was written for ``quiet_s``.
- ``{"cmd": "idle", "seconds"}``: the process's CPU share while nothing is asked of it.
- ``{"cmd": "stats"}``: CPU seconds, packets queued, frames written, emits (all, to a room, by
  event), client events handled by name, sockets, RSS (for bench/churn.py's windows).
- ``{"cmd": "stop"}`` or stdin closing: a bounded graceful stop.

``broadcast``: ``cpu_us`` (``time.process_time()``, every thread, from the emit to the last
frame written), ``last_frame_ms`` (from the emit until frames written grew by ``n``),
``emit_ms`` (until the emit call returned), ``max_loop_stall_ms`` (the largest overshoot of a
task sleeping 5 ms in a loop, from the emit to just after the last frame), ``frame_bytes``,
``complete`` (all ``n`` frames seen before the time limit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import socketio
from aiohttp import web

from bench.swarm import (
    MARK,
    SERVER_CPU,
    EioSocket,
    Receipts,
    Started,
    Swarm,
    SwarmSpec,
    cpu_seconds,
    die_with_parent,
    raise_fd_limit,
    taskset,
)

BROADCAST_EVENT = "room:state"
PLAIN_ROOM = "bench"
RAISED = 1_000_000  # every liveroom rate limit becomes this many per second
PING_INTERVAL_S = 600.0
LAG_PERIOD_S = 0.005
FRAME_POLL_S = 0.001
BACKLOG_LIMIT = 100_000
"""plain --announce: a join or leave waits while more packets than this are queued and not yet
written (unbounded, the naive design's queues would take the machine's memory)."""
THIS_SCRIPT = str(Path(__file__).resolve())
SECRET_ENV = "FANOUT_SECRET"  # noqa: S105  (the name of a variable)


# --- what is measured ------------------------------------------------------------------------


class LagMonitor:
    """A task sleeping :data:`LAG_PERIOD_S` in a loop; ``max_s``: its largest overshoot since
    :meth:`reset` — how late a 20 ms media tick would have been."""

    def __init__(self) -> None:
        self.max_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lag-monitor")

    def reset(self) -> None:
        self.max_s = 0.0

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_PERIOD_S)
            self.max_s = max(self.max_s, time.monotonic() - before - LAG_PERIOD_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Frames:
    """Websocket frames written to clients so far; :meth:`reached` is exact when the counter
    sees each frame, None when it can only be polled."""

    source = "none"

    def value(self) -> int:
        raise NotImplementedError

    def expect(self, target: int) -> None:
        """Note when :meth:`value` reaches ``target`` (if this counter can)."""

    def reached(self) -> tuple[float, float] | None:
        """``(time.monotonic(), time.process_time())`` when the expected count was reached."""
        return None


class EngineFrames(Frames):
    """liveroom's own count (``BoundedEngineIO.frames_written``: its writer and fast path)."""

    source = "engine.frames_written"

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def value(self) -> int:
        return int(self.engine.frames_written)


class SendCounter(Frames):
    """Completed ``engineio.async_drivers.aiohttp.WebSocket.send`` calls (patched)."""

    source = "WebSocket.send"

    def __init__(self) -> None:
        self.count = 0
        self._target: int | None = None
        self._reached: tuple[float, float] | None = None

    def install(self) -> None:
        from engineio.async_drivers import aiohttp as eio_aiohttp  # noqa: PLC0415

        original = eio_aiohttp.WebSocket.send
        counter = self

        async def send(ws: Any, message: Any) -> None:
            await original(ws, message)
            counter.count += 1
            if counter._target is not None and counter.count >= counter._target:
                counter._reached = (time.monotonic(), time.process_time())
                counter._target = None

        eio_aiohttp.WebSocket.send = send

    def value(self) -> int:
        return self.count

    def expect(self, target: int) -> None:
        self._reached = None
        if self.count >= target:
            self._reached = (time.monotonic(), time.process_time())
        else:
            self._target = target

    def reached(self) -> tuple[float, float] | None:
        return self._reached


class FloorFrames(Frames):
    source = "transport.write"

    def __init__(self) -> None:
        self.count = 0

    def value(self) -> int:
        return self.count


@dataclass
class Probe:
    """One broadcast being measured."""

    seq: int
    n: int
    t0: float = 0.0
    cpu0: float = 0.0
    frames0: int = 0
    emit_s: float = 0.0
    frame_bytes: int = 0
    emitted0: Counter[str] = field(default_factory=Counter)
    late0: int = 0


def frame_text(event: str, data: Any) -> str:
    """The websocket payload of a Socket.IO event: Engine.IO ``4`` + Socket.IO ``2`` + JSON."""
    return "42" + json.dumps([event, data], separators=(",", ":"))


def padded(seq: int, frame_bytes: int) -> dict[str, Any]:
    """The baselines' broadcast: marked with ``seq``, padded to ``frame_bytes`` on the wire."""
    data: dict[str, Any] = {"room_id": PLAIN_ROOM, "title": f"{MARK}{seq}#", "pad": ""}
    size = len(frame_text(BROADCAST_EVENT, data).encode())
    data["pad"] = "x" * max(0, frame_bytes - size)
    return data


def ws_text_frame(payload: bytes) -> bytes:
    """An unmasked, final websocket text frame (server to client, RFC 6455)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def say(kind: str, **data: Any) -> None:
    print(json.dumps({"kind": kind, **data}), flush=True)


# --- the server under test -------------------------------------------------------------------


class Instrumented:
    """One server under test and its counters."""

    def __init__(self, mode: str, frames: Frames) -> None:
        self.mode = mode
        self.frames = frames
        self.lag = LagMonitor()
        self.packets: Callable[[], int] = lambda: 0
        self.sockets: Callable[[], int] = lambda: 0
        self.emits = 0
        self.broadcasts = 0
        self.emitted: Counter[str] = Counter()
        """Emits by event name (a room broadcast counts once)."""
        self.handled: Counter[str] = Counter()
        """Client events handled (the handler returned and its ack was queued), by name."""
        self.armed: Probe | None = None
        self.sio: Any = None
        self.url = ""
        self.floor_transports: set[asyncio.Transport] = set()
        self.stop_server: Callable[[], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.late_ticks: Callable[[], int] | None = None
        """Mixer ticks lost so far (liveroom's room; the other servers have no mixer)."""

    def spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def begin(self, probe: Probe) -> None:
        probe.t0 = time.monotonic()
        probe.cpu0 = time.process_time()
        probe.frames0 = self.frames.value()
        probe.emitted0 = self.emitted.copy()
        probe.late0 = self.late_ticks() if self.late_ticks else 0
        self.lag.reset()
        self.frames.expect(probe.frames0 + probe.n)

    async def finish(self, probe: Probe, timeout_s: float) -> None:
        target = probe.frames0 + probe.n
        deadline = probe.t0 + timeout_s
        # Polled every millisecond: liveroom's counter is a plain attribute, nothing to wait on.
        while self.frames.value() < target and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(FRAME_POLL_S)
        done_at, cpu_at = time.monotonic(), time.process_time()
        complete = self.frames.value() >= target
        exact = self.frames.reached()
        if complete and exact is not None:
            done_at, cpu_at = exact
        await asyncio.sleep(3 * LAG_PERIOD_S)  # the monitor wakes and records the stall
        say(
            "broadcast",
            seq=probe.seq,
            n=probe.n,
            t0=probe.t0,
            complete=complete,
            frames=self.frames.value() - probe.frames0,
            cpu_us=round((cpu_at - probe.cpu0) * 1e6, 1),
            emit_ms=round(probe.emit_s * 1000, 3),
            last_frame_ms=round((done_at - probe.t0) * 1000, 3),
            max_loop_stall_ms=round(self.lag.max_s * 1000, 3),
            mixer_late_ticks=self.late_ticks() - probe.late0 if self.late_ticks else None,
            frame_bytes=probe.frame_bytes,
            # Other emits meanwhile, by event: another broadcast in the window would share the
            # frames counted and the CPU.
            emitted=dict(self.emitted - probe.emitted0),
        )

    def wrap_emit(self, sio: Any) -> None:
        """Count emits; time the armed probe's broadcast (``room:state`` to a room) from the
        moment ``sio.emit`` is called (an instance attribute: every caller goes through it)."""
        original = sio.emit

        async def emit(event: str, *args: Any, **kwargs: Any) -> Any:
            self.emits += 1
            self.emitted[event] += 1
            to_room = kwargs.get("room") is not None and kwargs.get("to") is None
            self.broadcasts += to_room
            probe = self.armed
            if probe is None or event != BROADCAST_EVENT or not to_room:
                return await original(event, *args, **kwargs)
            self.armed = None
            data = args[0] if args else kwargs.get("data")
            probe.frame_bytes = len(frame_text(event, data).encode())
            self.begin(probe)
            try:
                return await original(event, *args, **kwargs)
            finally:
                probe.emit_s = time.monotonic() - probe.t0
                self.spawn(self.finish(probe, timeout_s=30 + probe.n / 500))

        sio.emit = emit
        handle = sio._handle_event_internal

        async def handled(server: Any, sid: str, eio_sid: str, data: Any, *rest: Any) -> Any:
            result = await handle(server, sid, eio_sid, data, *rest)
            if data and isinstance(data[0], str):
                self.handled[data[0]] += 1
            return result

        sio._handle_event_internal = handled

    async def floor_broadcast(self, seq: int, frame_bytes: int) -> None:
        text = frame_text(BROADCAST_EVENT, padded(seq, frame_bytes)).encode()
        frame = ws_text_frame(text)
        transports = list(self.floor_transports)
        probe = Probe(seq, len(transports), frame_bytes=len(text))
        assert isinstance(self.frames, FloorFrames)
        self.begin(probe)
        for transport in transports:
            transport.write(frame)
        self.frames.count += len(transports)
        probe.emit_s = time.monotonic() - probe.t0
        await self.finish(probe, timeout_s=1)

    async def backlog_below(self, limit: int) -> None:
        while self.packets() - self.frames.value() > limit:  # noqa: ASYNC110  (counters)
            await asyncio.sleep(0.002)

    def stats(self) -> dict[str, Any]:
        return {
            "t": time.monotonic(),
            "cpu_s": time.process_time(),
            "packets": self.packets(),
            "frames": self.frames.value(),
            "emits": self.emits,
            "broadcasts": self.broadcasts,
            "emitted": dict(self.emitted),
            "handled": dict(self.handled),
            "sockets": self.sockets(),
            "rss_mb": round(rss_mb(), 1),
        }


async def start_liveroom(args: argparse.Namespace) -> Instrumented:
    # liveroom is loaded by its own mode only: the baselines' processes stay small.
    from liveroom.app import AUDIO, SIO, create_app, start_server  # noqa: PLC0415
    from liveroom.config import Config  # noqa: PLC0415
    from liveroom.ratelimit import DEFAULT_RATE_LIMITS, RateLimit  # noqa: PLC0415

    config = Config(
        host="127.0.0.1",
        port=0,
        data_dir=Path(args.data_dir),
        secret=os.environ[SECRET_ENV],
        rate_limits={name: RateLimit(RAISED, 1) for name in DEFAULT_RATE_LIMITS},
        log_level="warning",
        ice_loopback=True,
        redis_url=args.redis_url,
        node_id="fanout-bench" if args.redis_url else None,
        cluster_name=args.cluster_name,
        shutdown_timeout_s=2.0,
    )
    app = create_app(config)
    sio = app[SIO]
    engine = sio.eio
    engine.ping_interval = args.ping_interval
    if hasattr(engine, "frames_written"):
        frames: Frames = EngineFrames(engine)
    else:  # the engine's own count has not landed: count Engine.IO's websocket sends
        counter = SendCounter()
        counter.install()
        frames = counter
    server = Instrumented("liveroom", frames)
    server.sio = sio
    server.packets = lambda: int(engine.packets_sent)
    server.sockets = lambda: len(engine.sockets)
    server.late_ticks = lambda: app[AUDIO].engine.mixer_totals().late_ticks
    server.wrap_emit(sio)
    running = await start_server(config, app=app)
    server.url = running.url
    server.stop_server = running.stop
    return server


async def start_plain(args: argparse.Namespace) -> Instrumented:
    counter = SendCounter()
    counter.install()
    server = Instrumented("plain", counter)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        ping_interval=args.ping_interval,
        logger=False,
        engineio_logger=False,
    )
    app = web.Application()
    sio.attach(app)
    packets = 0
    send_packet = sio.eio.send_packet

    async def counted_send_packet(sid: str, pkt: Any) -> None:
        nonlocal packets
        packets += 1
        await send_packet(sid, pkt)

    sio.eio.send_packet = counted_send_packet
    server.packets = lambda: packets
    server.sockets = lambda: len(sio.eio.sockets)
    server.sio = sio
    server.wrap_emit(sio)
    announce: bool = args.announce

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if isinstance(auth, dict) and auth.get("enter"):
            await sio.enter_room(sid, PLAIN_ROOM)

    def member(sid: str) -> dict[str, Any]:
        return {"room_id": PLAIN_ROOM, "user": {"id": sid, "name": f"fan {sid[:8]}"}}

    async def join(sid: str, data: Any) -> dict[str, Any]:
        if announce:
            await server.backlog_below(BACKLOG_LIMIT)
        await sio.enter_room(sid, PLAIN_ROOM)
        if announce:
            await sio.emit("member_joined", member(sid), room=PLAIN_ROOM, skip_sid=sid)
        return {"ok": True}

    async def leave(sid: str, data: Any) -> dict[str, Any]:
        if announce:
            await server.backlog_below(BACKLOG_LIMIT)
        await sio.leave_room(sid, PLAIN_ROOM)
        if announce:
            await sio.emit("member_left", member(sid), room=PLAIN_ROOM)
        return {"ok": True}

    sio.on("connect", connect)
    sio.on("room:join", join)
    sio.on("room:leave", leave)
    server.url, server.stop_server = await _listen(app)
    return server


async def start_floor(args: argparse.Namespace) -> Instrumented:
    server = Instrumented("floor", FloorFrames())
    server.sockets = lambda: len(server.floor_transports)

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        transport = request.transport
        if transport is not None:
            server.floor_transports.add(transport)
        try:
            async for _ in ws:
                pass
        finally:
            if transport is not None:
                server.floor_transports.discard(transport)
        return ws

    app = web.Application()
    app.router.add_get("/ws", websocket)
    server.url, server.stop_server = await _listen(app)
    return server


async def _listen(app: web.Application) -> tuple[str, Callable[[], Awaitable[None]]]:
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}", runner.cleanup


STARTERS = {"liveroom": start_liveroom, "plain": start_plain, "floor": start_floor}


async def quiet(server: Instrumented, quiet_s: float, timeout_s: float) -> dict[str, Any]:
    """Until no frame was written for ``quiet_s``; ``idle_cpu_share``: the process's CPU over
    that quiet stretch (its mixer, timers, Engine.IO's service task: the cost of nothing)."""
    started = time.monotonic()
    last, since, cpu_since = server.frames.value(), started, time.process_time()
    ok = False
    while time.monotonic() - started < timeout_s:
        await asyncio.sleep(0.05)
        now, value = time.monotonic(), server.frames.value()
        if value != last:
            last, since, cpu_since = value, now, time.process_time()
        elif now - since >= quiet_s:
            ok = True
            break
    now = time.monotonic()
    share = (time.process_time() - cpu_since) / max(1e-3, now - since)
    return {"ok": ok, "waited_s": round(now - started, 2), "idle_cpu_share": round(share, 4)}


async def idle_share(seconds: float) -> float:
    cpu, t = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    return (time.process_time() - cpu) / (time.monotonic() - t)


async def obey(server: Instrumented, command: dict[str, Any]) -> bool:
    """One command from the driver; False: stop."""
    cmd = command.get("cmd")
    if cmd == "arm":
        server.armed = Probe(int(command["seq"]), int(command["n"]))
        say("armed", seq=command["seq"])
    elif cmd == "broadcast":
        seq, frame_bytes = int(command["seq"]), int(command["frame_bytes"])
        if server.mode == "floor":
            await server.floor_broadcast(seq, frame_bytes)
        else:
            server.armed = Probe(seq, int(command["n"]))
            await server.sio.emit(BROADCAST_EVENT, padded(seq, frame_bytes), room=PLAIN_ROOM)
    elif cmd == "quiet":
        say("quiet", **await quiet(server, float(command["quiet_s"]), float(command["timeout_s"])))
    elif cmd == "idle":
        say("idle", cpu_share=round(await idle_share(float(command["seconds"])), 4))
    elif cmd == "stats":
        say("stats", **server.stats())
    elif cmd == "stop":
        return False
    else:
        say("error", message=f"unknown command {command!r}")
    return True


async def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    server = await STARTERS[args.mode](args)
    server.lag.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    say(
        "ready",
        url=server.url,
        pid=os.getpid(),
        frames_source=server.frames.source,
        fd_limit=raise_fd_limit(),
    )

    async def commands() -> None:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if line.strip() and not await obey(server, json.loads(line)):
                break
        stop.set()  # "stop", or stdin closed: the driver is done or gone

    listener = asyncio.create_task(commands(), name="commands")
    await stop.wait()
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    await server.lag.stop()
    if server.stop_server is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(20):
                await server.stop_server()
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mode", choices=sorted(STARTERS), required=True)
    parser.add_argument("--data-dir", default="", help="liveroom: its SQLite file and media")
    parser.add_argument("--redis-url", default=None, help="liveroom: one node of a cluster")
    parser.add_argument("--cluster-name", default="liveroom", help="liveroom: its Redis prefix")
    parser.add_argument("--announce", action="store_true", help="plain: broadcast joins, leaves")
    parser.add_argument("--ping-interval", type=float, default=PING_INTERVAL_S, help="seconds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops us (stdin, SIGTERM)
    raise_fd_limit()
    return asyncio.run(serve(args))


# --- the driver's side -----------------------------------------------------------------------


def host_token(secret: str) -> str:
    """A token for a liveroom server started with ``secret``: a host, who may create rooms."""
    from liveroom.auth import Grants, Identity, TokenService  # noqa: PLC0415
    from liveroom.clock import SystemClock  # noqa: PLC0415

    identity = Identity("bench_host", "Bench host", grants=Grants(host=True))
    return TokenService(secret, SystemClock(), 6 * 3600).issue(identity, 6 * 3600)


class ServerProc:
    """A server process pinned to the server core: its replies in order, its log kept."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.url = ""
        self.frames_source = ""
        self._messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, mode: str, extra: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> ServerProc:
        argv = [*taskset(SERVER_CPU), sys.executable, THIS_SCRIPT, "--mode", mode, *extra]
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env={**os.environ, **(env or {})},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                limit=16 * 1024 * 1024,
                preexec_fn=die_with_parent,  # no thread of ours has started yet
            )
        server = cls(proc, log)
        try:
            ready = await server.expect("ready", 90)
        except BaseException:
            await server.stop()
            raise
        server.url = str(ready["url"])
        server.frames_source = str(ready["frames_source"])
        return server

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            with contextlib.suppress(ValueError):
                self._messages.put_nowait(json.loads(line))
        self._messages.put_nowait({"kind": "exited"})

    async def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        """The next message of ``kind`` (others before it are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self._messages.get()
                if message["kind"] == kind:
                    return message
                if message["kind"] == "exited":
                    self._messages.put_nowait(message)
                    raise RuntimeError(f"the {kind!r} server exited:\n{self.log_tail()}")

    async def ask(self, kind: str, timeout: float = 60, **command: Any) -> dict[str, Any]:
        await self.send(**command)
        return await self.expect(kind, timeout)

    def cpu_seconds(self) -> float:
        """utime + stime of every thread of the server so far (/proc/PID/stat)."""
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def problems(self, limit: int = 8) -> tuple[int, list[str]]:
        """Warnings, errors and tracebacks the server logged: how many, and the first few."""
        with contextlib.suppress(OSError):
            lines = self.log.read_text(errors="replace").splitlines()
            bad = [
                line
                for line in lines
                if " WARNING " in line or " ERROR " in line or line.startswith("Traceback")
            ]
            return len(bad), [line[:300] for line in bad[:limit]]
        return 0, []

    async def stop(self, grace_s: float = 25.0) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(OSError, RuntimeError):
                await self.send(cmd="stop")
            try:
                async with asyncio.timeout(grace_s):
                    await self.proc.wait()
            except TimeoutError:
                self.kill()
                await self.proc.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


@dataclass
class Phase:
    """One server under load: its process, the host's live room (liveroom), the client swarm."""

    kind: str
    server: ServerProc
    swarm: Swarm
    secret: str | None
    host: EioSocket | None
    room_id: str | None


SpecMaker = Callable[[int, str, str | None, str | None], SwarmSpec]
"""``(worker index, server URL, liveroom secret, room id)`` → that worker's :class:`SwarmSpec`."""


@contextlib.asynccontextmanager
async def phase(
    kind: str,
    mode: str,
    extra: Sequence[str],
    tmp: Path,
    workers: int,
    make_spec: SpecMaker,
    started: Started,
) -> AsyncIterator[Phase]:
    """Start the server (liveroom: with a secret of its own, a host, a live room), then the
    client workers; at the end stop the clients first (a server with no connection left stops
    at once), then the server."""
    env: dict[str, str] = {}
    secret: str | None = None
    extra = list(extra)
    if mode == "liveroom":
        secret = secrets.token_urlsafe(48)
        env[SECRET_ENV] = secret
        extra += ["--data-dir", str(tmp / kind)]
    server = await ServerProc.start(mode, extra, tmp / f"{kind}.log", env)
    started.pids.append(server.pid)
    swarm: Swarm | None = None
    host: EioSocket | None = None
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            room_id: str | None = None
            if secret is not None:
                auth = {"token": host_token(secret)}
                host = await EioSocket.open(http, server.url, auth, Receipts())
                room = await host.request("room:create", {"title": f"{kind} room"})
                room_id = str(room["room"]["id"])
                await host.request("room:join", {"room_id": room_id})
            swarm = Swarm([make_spec(i, server.url, secret, room_id) for i in range(workers)])
            started.swarms.append(swarm)
            try:
                yield Phase(kind, server, swarm, secret, host, room_id)
            finally:
                await swarm.stop()
                if host is not None:
                    await host.close()
    finally:
        if swarm is not None:
            swarm.kill()
        await server.stop(grace_s=20)


if __name__ == "__main__":
    raise SystemExit(main())
