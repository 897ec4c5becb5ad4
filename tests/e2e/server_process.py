"""``liveroom serve`` as a separate OS process on a free loopback port: what an operator runs,
killed or stopped by a real signal. Configured by flags only (no ``LIVEROOM_*`` from the
environment leaks in), with the tests' secret and every rate limit raised."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from liveroom.client import LiveroomClient
from liveroom.client.audio import ToneTrack
from liveroom.client.bot import RoomAudio
from liveroom.cluster.model import Keys, parse_holder
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine
from liveroom.ratelimit import DEFAULT_RATE_LIMITS
from tests.conftest import TEST_SECRET, free_port, fresh_pg_database, make_token

ROOT = Path(__file__).resolve().parents[2]
RAISED_COUNT = 1_000_000
LEASE_TTL_S = 3
STATS_INTERVAL_S = 2


def raised_rate_limits() -> str:
    """``--rate-limits`` raising every named limit, however many there are: a load test must
    not be refused by a limit meant for people."""
    return ",".join(f"{name}={RAISED_COUNT}/1" for name in DEFAULT_RATE_LIMITS)


class ServerProcess:
    """One ``python -m liveroom serve`` process; its output goes to ``log`` (appended to across
    lives, so a restart's output follows the first life's)."""

    def __init__(
        self, data_dir: Path, database_url: str | None, log: Path, extra: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.log = log
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self._offset = 0

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "liveroom", "serve", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        args += ["--secret", TEST_SECRET, "--rate-limits", raised_rate_limits()]
        if self.database_url is not None:
            args += ["--database-url", self.database_url]
        return [*args, *self.extra]

    async def start(self, timeout: float = 60) -> None:
        """Start it and wait until ``/healthz`` answers."""
        assert self.proc is None or self.proc.returncode is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEROOM_")}
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    await self.kill()
                    pytest.fail(f"liveroom serve did not come up:\n{self.output()}")
                await asyncio.sleep(0.1)

    def kill_now(self) -> None:
        """SIGKILL, returning at once (no await: nothing else runs between the kill and
        the caller's next statement). No handler, no cleanup, no flush — a crash."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    def pause(self) -> None:
        """SIGSTOP: the process stops dead with its sockets open (a long pause: a frozen VM)."""
        assert self.proc is not None and self.proc.returncode is None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: it carries on from where it stopped, as if no time had passed."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)

    async def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        self.kill_now()
        if self.proc is not None:
            await self.proc.wait()

    async def stop_with(self, sig: signal.Signals, timeout: float = 30) -> int:
        """Send ``sig`` and wait for the process to exit: its exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            async with asyncio.timeout(timeout):
                return await self.proc.wait()
        except TimeoutError:
            await self.kill()
            pytest.fail(f"liveroom serve did not stop on {sig.name}:\n{self.output()}")

    def output(self, *, this_life: bool = False) -> str:
        """What the process wrote (all lives, or only the current one)."""
        if not self.log.exists():
            return ""
        data = self.log.read_bytes()
        return data[self._offset if this_life else 0 :].decode(errors="replace")


async def ack_unless_gone(
    client: LiveroomClient, event: str, payload: dict[str, Any]
) -> dict[str, Any] | None:
    """The ack of ``event``, or ``None`` when the connection dropped (the server went away)
    before it came — without waiting out the call's timeout."""
    call = asyncio.ensure_future(client.call(event, payload, timeout=60))
    gone = asyncio.ensure_future(client.disconnected.wait())
    try:
        await asyncio.wait({call, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not call.done():
            # An ack read before the connection dropped is still on its way to the caller.
            await asyncio.wait({call}, timeout=1)
        if not call.done():
            call.cancel()
            return None
        try:
            return call.result()
        except Exception:
            if client.disconnected.is_set():  # sent after the connection had dropped
                return None
            raise
    finally:
        gone.cancel()


@contextlib.asynccontextmanager
async def server_process(kind: str, tmp_path: Path, *extra: str) -> AsyncIterator[ServerProcess]:
    """A server process (not started) on a new, empty database of ``kind``: a SQLite file in
    its data dir, or a migrated PostgreSQL database (``serve`` refuses an un-migrated one);
    ``extra``: more ``serve`` flags. Killed, if still running, on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        url: str | None = None
        if kind == "postgresql":
            url = await stack.enter_async_context(fresh_pg_database())
            engine = create_engine(url)
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()
        server = ServerProcess(tmp_path / "data", url, tmp_path / "server.log", extra)
        try:
            yield server
        finally:
            await server.kill()  # before the PostgreSQL database is dropped


class Cluster:
    """Nodes ``a``, ``b``, ``c``: ``liveroom serve`` processes sharing a SQLite file and Redis."""

    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        self.database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        self.redis_url = redis_url
        self.name = name = f"t-{uuid.uuid4().hex[:8]}"
        self.nodes = {
            node_id: ServerProcess(
                tmp_path / node_id,
                self.database,
                tmp_path / f"{node_id}.log",
                extra=(
                    *("--redis-url", redis_url, "--cluster-name", name, "--node-id", node_id),
                    *("--lease-ttl", str(LEASE_TTL_S), "--ice-loopback"),
                    *("--stats-sample-interval", str(STATS_INTERVAL_S)),
                    # Not shared: another node's HLS is proxied from the room's node.
                    *("--media-dir", str(tmp_path / node_id / "media")),
                ),
            )
            for node_id in ("a", "b", "c")
        }
        self.clients: list[LiveroomClient] = []
        self.audio: list[RoomAudio] = []

    async def start(self) -> None:
        engine = create_engine(self.database)
        await upgrade(engine)  # once, before the nodes: they would race to migrate
        await engine.dispose()
        await asyncio.gather(*(node.start() for node in self.nodes.values()))

    async def owner(self, room_id: str, *, other_than: str | None = None) -> str:
        """The node whose lease holds the room now; ``other_than``: waiting (bounded) until a
        node other than that one holds it."""
        redis = Redis.from_url(self.redis_url)
        try:
            async with asyncio.timeout(15):
                while True:
                    holder = parse_holder(await redis.get(Keys(self.name).lease(room_id)))
                    if other_than is None or (holder is not None and holder[0] != other_than):
                        break
                    await asyncio.sleep(0.1)
        finally:
            await redis.aclose()
        assert holder is not None, f"nobody runs room {room_id}"
        return holder[0]

    async def until_remembered(self, room_id: str, user_id: str) -> None:
        redis = Redis.from_url(self.redis_url)
        try:
            async with asyncio.timeout(10):
                while not await redis.hexists(Keys(self.name).listeners(room_id), user_id):
                    await asyncio.sleep(0.05)
        finally:
            await redis.aclose()

    async def client(self, node: str, user_id: str, **claims: Any) -> LiveroomClient:
        url = self.nodes[node].url
        self.clients.append(await LiveroomClient.connect(url, make_token(user_id, **claims)))
        return self.clients[-1]

    async def hear(self, client: LiveroomClient, room_id: str, hz: int | None = None) -> RoomAudio:
        """Audio that offers again on every ``rtc:restart``; publishing a tone when ``hz``."""
        audio = RoomAudio(client, room_id, [], (lambda: ToneTrack(hz)) if hz else lambda: None)
        await audio.start(on_stage=hz is not None)
        self.audio.append(audio)
        return audio

    async def close(self) -> None:
        for audio in self.audio:
            with contextlib.suppress(Exception):
                await audio.close()
        for node in self.nodes.values():
            node.resume()
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
        for node in self.nodes.values():
            await node.kill()

    def output(self) -> str:
        return "\n".join(f"--- {n}\n{p.output()[-4000:]}" for n, p in self.nodes.items())
