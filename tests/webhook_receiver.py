"""A webhook receiver for tests: a real aiohttp server on 127.0.0.1 that keeps every request and
answers each path by a script (statuses in turn, then 200), or hangs until released."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HANG = -1
"""A scripted answer: hold the request until :meth:`Receiver.release` (or the sender gives up)."""


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded

    @property
    def type(self) -> str:
        return str(self.json["type"])


@dataclass
class Receiver:
    script: dict[str, list[int]] = field(default_factory=dict)
    """Per path, the statuses to answer in turn (``HANG`` holds the request); 200 after them."""
    retry_after: str | None = None
    """Sent as ``Retry-After`` with every answer that is not a 2xx."""
    requests: list[Received] = field(default_factory=list)
    hanging: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()

    def release(self) -> None:
        self._released.set()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = "/" + request.match_info["path"]
        queue = self.script.get(path, [])
        status = queue.pop(0) if queue else 200
        if status == HANG:
            self.hanging += 1
            await self._notify()
            await self._released.wait()
            status = 200
        self.requests.append(Received(path, dict(request.headers), body, status))
        await self._notify()
        headers = {}
        if self.retry_after is not None and not 200 <= status < 300:
            headers["Retry-After"] = self.retry_after
        return web.Response(status=status, headers=headers)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, done: Callable[[], bool], timeout: float = 10) -> None:
        """Wait (bounded: this is real network I/O) until ``done()`` holds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(done)

    def received(self, path: str | None = None, kind: str | None = None) -> list[Received]:
        return [
            r
            for r in self.requests
            if (path is None or r.path == path) and (kind is None or r.type == kind)
        ]

    async def event(self, kind: str, path: str = "/hook", timeout: float = 10) -> Received:
        """The first delivery of ``kind`` to ``path``, waiting for it."""
        await self.until(lambda: bool(self.received(path, kind)), timeout)
        return self.received(path, kind)[0]
