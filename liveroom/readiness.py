"""``GET /readyz``: may this node take traffic now?

``/healthz`` says the process is alive (restart it if not); ``/readyz`` says whether what it
depends on answers: the database (``SELECT 1``), Redis when ``--redis-url`` is given (``PING``)
and the media dir (a file created and deleted). Checks run side by side, each bounded by
:data:`CHECK_TIMEOUT_S`, so a hung dependency makes the answer a 503 in about that long rather
than no answer. The body names each check; a failure says only what kind of failure it was —
the details (host names, paths) go to the log, once per change, not to whoever asks.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0

Check = Callable[[], Awaitable[None]]
"""Returns when the dependency answers; raises (or hangs) when it does not."""


class Readiness:
    def __init__(self, checks: Mapping[str, Check], timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self._checks = dict(checks)
        self._timeout_s = timeout_s
        self._failing: dict[str, str] = {}  # what each failing check last said, to log changes
        self._round: asyncio.Future[dict[str, dict[str, Any]]] | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/readyz", self.readyz)

    async def readyz(self, request: web.Request) -> web.Response:
        checks = await self.run()
        ok = all(c["ok"] for c in checks.values())
        return web.json_response(
            {"ok": ok, "checks": checks},
            status=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def run(self) -> dict[str, dict[str, Any]]:
        """Every check's outcome: ``{"ok": bool, "ms": float}``, and ``error`` when failed.
        Requests that arrive while a round of checks is running share it: a flood of probes
        costs the database one ``SELECT 1`` at a time."""
        if self._round is None or self._round.done():
            self._round = asyncio.ensure_future(self._run_round())
        return await asyncio.shield(self._round)

    async def _run_round(self) -> dict[str, dict[str, Any]]:
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._one(n, self._checks[n]) for n in names))
        return dict(zip(names, outcomes, strict=True))

    async def _one(self, name: str, check: Check) -> dict[str, Any]:
        began = time.perf_counter()
        error: str | None = None
        try:
            async with asyncio.timeout(self._timeout_s):  # real I/O, not the product's clock
                await check()
        except TimeoutError:
            error = f"no answer within {self._timeout_s:g} s"
            self._note(name, error, None)
        except Exception as e:
            error = type(e).__name__
            self._note(name, error, e)
        else:
            if self._failing.pop(name, None) is not None:
                logger.info("readiness: %s answers again", name)
        outcome: dict[str, Any] = {"ok": error is None}
        outcome["ms"] = round((time.perf_counter() - began) * 1000, 1)
        if error is not None:
            outcome["error"] = error
        return outcome

    def _note(self, name: str, error: str, exc: Exception | None) -> None:
        if self._failing.get(name) != error:
            self._failing[name] = error
            logger.warning("readiness: %s failed: %s", name, exc or error, exc_info=exc)


def database_check(engine: AsyncEngine) -> Check:
    """``SELECT 1`` on a pooled connection (pre-pinged on PostgreSQL: a dead one is replaced)."""

    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def redis_check(redis: Redis, timer: Callable[[], AbstractContextManager[None]]) -> Check:
    """``PING`` on the node's own Redis client, its round trip observed by ``timer``."""

    async def check() -> None:
        with timer():
            await redis.ping()

    return check


class MediaDirProbe:
    """The media dir (uploads, HLS, replays) takes a new file: one is created and deleted.

    The file system is reached from a thread. A probe still stuck there from an earlier
    request (a hung mount) is waited on again rather than joined by another thread, so repeated
    probes of a hung disk never pile up threads."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._pending: asyncio.Future[None] | None = None

    async def check(self) -> None:
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(asyncio.to_thread(_write_and_delete, self._dir))
            self._pending.add_done_callback(_retrieved)
        await asyncio.shield(self._pending)


def _write_and_delete(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".readyz-") as probe:
        probe.write(b"ready\n")
        probe.flush()


def _retrieved(future: asyncio.Future[None]) -> None:
    """An abandoned probe's failure was reported as a timeout already: not again by asyncio."""
    if not future.cancelled():
        future.exception()
