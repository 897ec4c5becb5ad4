"""``GET /readyz``: 200 while the database, Redis (when configured) and the media dir answer;
503 naming what does not, in bounded time; 200 again once it is back."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from liveroom.app import CONFIG, METRICS, RunningServer, start_server
from liveroom.config import Config
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine
from liveroom.readiness import Readiness, database_check, redis_check
from tests.conftest import free_port


async def readyz(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as r:
        assert r.headers["Cache-Control"] == "no-store"
        body: dict[str, Any] = await r.json()
        return r.status, body


async def test_ready_when_everything_answers(server: RunningServer) -> None:
    status, body = await readyz(server.url)
    assert status == 200
    assert body["ok"] is True
    assert set(body["checks"]) == {"database", "media_dir"}  # no Redis on one node
    assert all(c["ok"] and c["ms"] >= 0 for c in body["checks"].values())
    leftovers = list(server.app[CONFIG].effective_media_dir.glob(".readyz-*"))
    assert leftovers == []  # the probe file is gone again


async def test_a_media_dir_that_takes_no_file_is_not_ready(config: Config, tmp_path: Path) -> None:
    media = tmp_path / "media"
    running = await start_server(replace(config, media_dir=media))
    try:
        assert (await readyz(running.url))[0] == 200
        # Root writes through any mode bits: a file where the directory was refuses all.
        shutil.rmtree(media)
        media.write_text("not a directory")
        status, body = await readyz(running.url)
        assert status == 503
        assert body["ok"] is False
        assert body["checks"]["media_dir"]["ok"] is False
        assert body["checks"]["media_dir"]["error"]  # what kind of failure, no path
        assert str(media) not in body["checks"]["media_dir"]["error"]
        assert body["checks"]["database"]["ok"] is True
        media.unlink()
        assert (await readyz(running.url))[0] == 200  # made again: ready again
    finally:
        await running.stop()


class TcpRelay:
    """A TCP relay to a PostgreSQL server that can be cut (its listener and every connection
    closed) and restored: the database going away and coming back, as the server sees it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for pump in (self._pump(reader, up_writer), self._pump(up_reader, writer)):
            task = asyncio.create_task(pump)
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


@pytest.fixture
async def relayed_pg(pg_url: str) -> AsyncIterator[tuple[str, TcpRelay]]:
    """A migrated PostgreSQL database, and a URL that reaches it through a :class:`TcpRelay`."""
    engine = create_engine(pg_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    url = make_url(pg_url)
    relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
    await relay.start()
    relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    yield relayed, relay
    await relay.cut()


@pytest.mark.postgres
async def test_a_database_that_went_away_is_named_and_its_return_noticed(
    config: Config, relayed_pg: tuple[str, TcpRelay]
) -> None:
    url, relay = relayed_pg
    running = await start_server(replace(config, database_url=url))
    try:
        assert (await readyz(running.url))[0] == 200
        await relay.cut()
        began = time.monotonic()
        status, body = await readyz(running.url)
        assert time.monotonic() - began < 10  # bounded, even with the database gone
        assert status == 503
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["media_dir"]["ok"] is True
        assert "127.0.0.1" not in body["checks"]["database"]["error"]  # details go to the log
        await relay.start()
        status, body = await readyz(running.url)
        assert (status, body["checks"]["database"]["ok"]) == (200, True)
    finally:
        await running.stop()


async def test_a_hung_check_is_cut_off_and_named() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    async def answers() -> None:
        return None

    readiness = Readiness({"hung": hangs, "fine": answers}, timeout_s=0.2)
    began = time.monotonic()
    checks = await readiness.run()
    assert time.monotonic() - began < 2
    assert checks["hung"]["ok"] is False
    assert "0.2 s" in checks["hung"]["error"]
    assert checks["fine"]["ok"] is True


async def test_an_unreachable_database_fails_its_check_quickly() -> None:
    engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        checks = await Readiness({"database": database_check(engine)}, timeout_s=5).run()
    finally:
        await engine.dispose()
    assert checks["database"]["ok"] is False
    assert checks["database"]["error"]


@pytest.mark.redis
async def test_redis_is_pinged_and_its_round_trip_measured(
    server: RunningServer, redis_url: str
) -> None:
    metrics = server.app[METRICS]
    good = Redis.from_url(redis_url)
    gone = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        checks = await Readiness(
            {"redis": redis_check(good, metrics.redis_timer)}, timeout_s=5
        ).run()
        assert checks["redis"]["ok"] is True
        checks = await Readiness(
            {"redis": redis_check(gone, metrics.redis_timer)}, timeout_s=5
        ).run()
        assert checks["redis"]["ok"] is False
    finally:
        await good.aclose()
        await gone.aclose()
    # Both round trips observed, the refused one too: a slow or failing Redis shows.
    assert metrics.registry.get_sample_value("liveroom_redis_command_seconds_count") == 2


async def test_probes_arriving_together_share_one_round_of_checks() -> None:
    calls = 0

    async def counted() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)

    readiness = Readiness({"database": counted})
    answers = await asyncio.gather(*(readiness.run() for _ in range(50)))
    assert calls == 1
    assert all(a["database"]["ok"] for a in answers)
    await readiness.run()
    assert calls == 2  # a later probe checks again: nothing is cached
