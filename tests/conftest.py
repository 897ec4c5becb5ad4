"""Fixtures for every tier: configs, a real server on a loopback port, clients with tokens,
PostgreSQL from ``LIVEROOM_TEST_DATABASE_URL`` and a private ``redis-server``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from liveroom.app import RunningServer, start_server
from liveroom.auth import Grants, Identity, TokenService
from liveroom.client import LiveroomClient
from liveroom.clock import SystemClock
from liveroom.config import Config
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine
from liveroom.media.ice import use_loopback_candidates
from liveroom.ratelimit import LIMITS, PER_IP, RateLimit
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from tests.e2e.server_process import Cluster

TEST_SECRET = "test-secret-" + "x" * 60
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need_service(reason: str) -> None:
    """Skip on a developer machine without the service; in CI a missing service is a failure."""
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


LOOPBACK_LIMITS: dict[str, RateLimit] = {
    "events": RateLimit(1000, 1),
    "connects": RateLimit(1000, 1),
    **{name: RateLimit(1_000_000, 1) for name in LIMITS if name.endswith(PER_IP)},
}
"""Every test client comes from 127.0.0.1, and the tests' users each act quickly: the per-IP
limits and the per-user event and connect limits are raised; the other per-user limits keep their
defaults (tests check them)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A test server's config: any free loopback port, a temporary data dir, generous limits."""
    return Config(
        host="127.0.0.1",
        port=0,
        data_dir=tmp_path / "data",
        secret=TEST_SECRET,
        rate_limits=LOOPBACK_LIMITS,
        shutdown_timeout_s=1.0,
    )


@pytest.fixture
async def server(config: Config) -> AsyncIterator[RunningServer]:
    running = await start_server(config)
    yield running
    await running.stop()


def make_token(
    user_id: str,
    name: str | None = None,
    *,
    host: bool = False,
    admin: bool = False,
    verified: bool = False,
    market: str | None = None,
    guest: bool = False,
    ttl_s: int = 3600,
    secret: str = TEST_SECRET,
) -> str:
    identity = Identity(user_id, name or user_id, verified, market, Grants(host, admin), guest)
    return TokenService(secret, SystemClock(), ttl_s).issue(identity, ttl_s)


@pytest.fixture
async def audio_server(config: Config) -> AsyncIterator[RunningServer]:
    """A server whose media offers 127.0.0.1 candidates only (loopback-only audio tests)."""
    running = await start_server(replace(config, ice_loopback=True))
    yield running
    await running.stop()
    use_loopback_candidates(False)


Connect = Callable[..., Awaitable[LiveroomClient]]


@pytest.fixture
async def connect(server: RunningServer) -> AsyncIterator[Connect]:
    """``await connect("alice", host=True)``: a connected client, closed after the test."""
    clients: list[LiveroomClient] = []

    async def _connect(user_id: str, name: str | None = None, **claims: Any) -> LiveroomClient:
        client = await LiveroomClient.connect(server.url, make_token(user_id, name, **claims))
        clients.append(client)
        return client

    yield _connect
    await asyncio.gather(*(c.close() for c in clients))


@contextlib.asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on ``LIVEROOM_TEST_DATABASE_URL``'s server, dropped after.

    Tests never write to the configured database itself, so they can run side by side."""
    base = os.environ.get("LIVEROOM_TEST_DATABASE_URL")
    if not base:
        need_service("LIVEROOM_TEST_DATABASE_URL is not set")
        raise AssertionError("unreachable")
    name = f"liveroom_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(base).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


@contextlib.contextmanager
def private_redis_server() -> Iterator[str]:
    """A ``redis-server`` of its own on a free loopback port, nothing kept on disk; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        need_service("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            *(binary or "redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``LIVEROOM_TEST_REDIS_URL``, or a private ``redis-server`` on a free loopback port.

    Never a shared Redis that a test might flush."""
    given = os.environ.get("LIVEROOM_TEST_REDIS_URL")
    if given:
        yield given
        return
    with private_redis_server() as url:
        yield url


def with_overrides(config: Config, **changes: Any) -> Config:
    return replace(config, **changes)


async def database_url(kind: str, tmp_path: Path, stack: contextlib.AsyncExitStack) -> str:
    """A new, empty database for one test: a SQLite file, or a PostgreSQL database dropped when
    ``stack`` closes."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return await stack.enter_async_context(fresh_pg_database())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database of each kind."""
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(await database_url(request.param, tmp_path, stack))
        stack.push_async_callback(engine.dispose)
        await upgrade(engine)
        yield engine


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """This process's WebRTC peers offer 127.0.0.1 only, as a server with ``--ice-loopback``."""
    use_loopback_candidates(True)
    yield
    use_loopback_candidates(False)


@pytest.fixture
async def cluster(tmp_path: Path, redis_url: str, loopback_ice: None) -> AsyncIterator[Cluster]:
    """Nodes ``a``, ``b``, ``c`` as ``liveroom serve`` processes on one SQLite file and Redis."""
    from tests.e2e.server_process import Cluster  # noqa: PLC0415  (it imports this module)

    made = Cluster(tmp_path, redis_url)
    await made.start()
    try:
        yield made
    finally:
        await made.close()
