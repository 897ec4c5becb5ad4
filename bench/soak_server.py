"""The soak's server (bench/soak.py): the app in a process of its own, sampled from inside.

``LIVEROOM_*=... python bench/soak_server.py --sample-interval S``

It builds the app as ``liveroom serve`` does (``start_server`` from the ``LIVEROOM_*``
variables) and writes JSON lines to stdout: ``ready`` with its URL, then a ``sample`` every
``S`` seconds: RSS (``VmRSS``), ``len(asyncio.all_tasks())`` and the tasks by coroutine, the
media engine's peer connections, every ``RTCPeerConnection`` of the process not closed, Socket.IO
and Engine.IO connections, live rooms, members, fds and threads. On stdin it takes ``sample``,
``trace`` (start tracemalloc) and ``checkpoint`` (live objects by type after a collection, and
what tracemalloc sees held); stdin closing or SIGTERM stops it. No endpoint is added: the
numbers come from the app's own objects. :class:`ServerChild` is the driver's side of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web
from aiortc import RTCPeerConnection

from bench.listeners import LOAD_CPU, SERVER_CPU, cpu_seconds, die_with_parent
from liveroom.app import AUDIO, ROOMS, SIGNALING, SIO, start_server
from liveroom.config import load_config
from liveroom.ratelimit import DEFAULT_RATE_LIMITS
from liveroom.rooms.stage import RoomStatus

RAISED = 1_000_000  # every rate limit becomes this many per second: the churn is the load
TRACE_FRAMES = 12
THIS_SCRIPT = str(Path(__file__).resolve())
_CPUS_AT_START = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


# --- the server: build the app, sample it, answer the driver on stdin ------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """What the server holds at one moment (``t``: ``time.monotonic()``, system-wide)."""

    t: float
    rss_mb: float
    tasks: int
    peers: int  # the media engine's peer connections (one per member with audio)
    pcs_open: int  # every RTCPeerConnection of the process not closed, owned or not
    sockets: int  # Socket.IO connections the signaling layer knows
    eio_sockets: int  # Engine.IO sockets under them
    rooms: int  # live rooms
    media_rooms: int  # rooms with a mixer running
    members: int  # present in live rooms
    fds: int
    threads: int
    task_kinds: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Sample:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


_PEER_CONNECTIONS: weakref.WeakSet[RTCPeerConnection] = weakref.WeakSet()


def track_peer_connections() -> None:
    """Know every ``RTCPeerConnection`` made in this process (the server child only), so one
    that fell out of the engine's books but was never closed still shows."""
    original = RTCPeerConnection.__init__

    def init(self: RTCPeerConnection, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _PEER_CONNECTIONS.add(self)

    RTCPeerConnection.__init__ = init  # type: ignore[method-assign]


def own_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def task_kind(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return str(getattr(coro, "__qualname__", type(coro).__name__))


def sample_of(app: web.Application) -> Sample:
    engine = app[AUDIO].engine
    rooms = app[ROOMS]
    live = rooms.listing(RoomStatus.LIVE)
    kinds = Counter(task_kind(t) for t in asyncio.all_tasks())
    return Sample(
        t=time.monotonic(),
        rss_mb=round(own_rss_mb(), 1),
        tasks=sum(kinds.values()),
        peers=engine.peer_connections,
        pcs_open=sum(1 for pc in list(_PEER_CONNECTIONS) if pc.connectionState != "closed"),
        sockets=len(app[SIGNALING].connections),
        eio_sockets=len(app[SIO].eio.sockets),
        rooms=len(live),
        media_rooms=engine.open_rooms,
        members=sum(rooms.presence.count(str(view["id"])) for view in live),
        fds=len(os.listdir("/proc/self/fd")),
        threads=threading.active_count(),
        task_kinds=dict(kinds),
    )


def object_counts(minimum: int = 50) -> dict[str, int]:
    """Live objects by type (after a full collection), types with at least ``minimum``."""
    gc.collect()
    counts = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
    return {name: n for name, n in counts.items() if n >= minimum}


def traced(limit: int = 15) -> list[dict[str, Any]]:
    """The lines holding the most memory allocated since tracing began (``trace``)."""
    if not tracemalloc.is_tracing():
        return []
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
            tracemalloc.Filter(False, "<unknown>"),
        ]
    )
    top = snapshot.statistics("traceback")[:limit]
    return [
        {
            "kb": round(stat.size / 1024, 1),
            "count": stat.count,
            "where": [f"{frame.filename}:{frame.lineno}" for frame in stat.traceback][-6:],
        }
        for stat in top
    ]


def _say(kind: str, **data: Any) -> None:
    print(json.dumps({"kind": kind, **data}), flush=True)


async def _serve(interval_s: float) -> int:
    config = load_config()  # the LIVEROOM_* variables the driver set
    logging.basicConfig(
        level=config.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    track_peer_connections()
    server = await start_server(config)
    app = server.app
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    _say("ready", url=server.url, pid=os.getpid())

    async def every_interval() -> None:
        while True:
            await asyncio.sleep(interval_s)
            _say("sample", **asdict(sample_of(app)))

    async def commands() -> None:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            word, _, label = line.decode().strip().partition(" ")
            if word == "sample":
                _say("reply", label=label, sample=asdict(sample_of(app)))
            elif word == "trace":
                tracemalloc.start(TRACE_FRAMES)
                _say("reply", label=label, tracing=True)
            elif word == "checkpoint":
                _say("reply", label=label, objects=object_counts(), trace=traced())
        stop.set()  # stdin closed: the driver is gone

    sampler = asyncio.create_task(every_interval(), name="soak-sampler")
    listener = asyncio.create_task(commands(), name="soak-commands")
    await stop.wait()
    for task in (sampler, listener):
        task.cancel()
    await asyncio.gather(sampler, listener, return_exceptions=True)
    await server.stop()
    return 0


def serve_main(interval_s: float) -> int:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops us (SIGTERM, or stdin)
    try:
        return asyncio.run(_serve(interval_s))
    except ValueError as e:  # a LIVEROOM_* variable that does not parse
        print(f"soak_server.py: {e}", file=sys.stderr)
        return 1


# --- the driver's side -----------------------------------------------------------------------


def raised_rate_limits() -> str:
    """``--rate-limits`` raising every limit the server has, including ones added later."""
    return ",".join(f"{name}={RAISED}/1" for name in DEFAULT_RATE_LIMITS)


def two_cores() -> bool:
    return _CPUS_AT_START is not None and {SERVER_CPU, LOAD_CPU} <= _CPUS_AT_START


class ServerChild:
    """The server process: its samples as they come, and requests answered in turn."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.samples: list[Sample] = []
        self.url = ""
        self._ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self.exited = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, data_dir: Path, secret: str, interval_s: float, log: Path) -> ServerChild:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEROOM_")}
        env.update(
            LIVEROOM_HOST="127.0.0.1",
            LIVEROOM_PORT="0",
            LIVEROOM_DATA_DIR=str(data_dir),
            LIVEROOM_SECRET=secret,
            LIVEROOM_ICE_LOOPBACK="1",
            LIVEROOM_RATE_LIMITS=raised_rate_limits(),
            LIVEROOM_LOG_LEVEL="warning",
        )
        taskset = ["taskset", "-c", str(SERVER_CPU)] if two_cores() else []
        argv = [*taskset, sys.executable, THIS_SCRIPT]
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                "--sample-interval",
                str(interval_s),
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                limit=16 * 1024 * 1024,
                preexec_fn=die_with_parent,  # before any thread of ours starts
            )
        child = cls(proc, log)
        try:
            async with asyncio.timeout(60):
                child.url = await child._ready
        except BaseException:
            await child.stop()
            raise
        return child

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                message = json.loads(line)
                kind = message.pop("kind")
                if kind == "ready" and not self._ready.done():
                    self._ready.set_result(str(message["url"]))
                elif kind == "sample":
                    self.samples.append(Sample.parse(message))
                elif kind == "reply":
                    self._replies.put_nowait(message)
        finally:
            self.exited.set()
            if not self._ready.done():
                self._ready.set_exception(RuntimeError(f"the server exited:\n{self.log_tail()}"))

    async def ask(self, command: str, label: str = "", timeout: float = 60) -> dict[str, Any]:
        """Send one command line; its reply."""
        if self.exited.is_set():
            raise RuntimeError(f"the server exited:\n{self.log_tail()}")
        async with self._lock, asyncio.timeout(timeout):
            assert self.proc.stdin is not None
            self.proc.stdin.write(f"{command} {label}\n".encode())
            await self.proc.stdin.drain()
            return await self._replies.get()

    async def sample(self, label: str) -> Sample:
        return Sample.parse((await self.ask("sample", label))["sample"])

    def cpu_seconds(self) -> float:
        with contextlib.suppress(OSError):
            return cpu_seconds(self.proc.pid)
        return 0.0

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                async with asyncio.timeout(15):
                    await self.proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


LINGERING_PING = "AsyncSocket._send_ping"
"""Engine.IO's ping task of a socket: it sleeps out the ping interval (25 s) after its socket
closed before it ends."""


def idle_tasks(sample: Sample) -> int:
    """The tasks of an idle server: without pings of sockets that already closed."""
    return sample.tasks - (sample.task_kinds.get(LINGERING_PING, 0) if not sample.sockets else 0)


def is_drained(now: Sample, baseline: Sample) -> bool:
    return (
        now.sockets == now.eio_sockets == now.peers == now.pcs_open == 0
        and now.rooms == now.media_rooms == now.members == 0
        and now.tasks <= idle_tasks(baseline)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sample-interval", type=float, default=10.0, help="seconds")
    return serve_main(parser.parse_args(argv).sample_interval)


if __name__ == "__main__":
    raise SystemExit(main())
