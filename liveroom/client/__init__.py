"""Python client SDK: a liveroom connection with acked calls and a bounded inbox of events.

Used by the bot CLI, the tests and the benchmarks::

    async with await LiveroomClient.connect(url, token) as client:
        ack = await client.call("time:sync", {"t0": 0})
        state = await client.next_event("room:state")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import aiohttp
import socketio

Predicate = Callable[[dict[str, Any]], bool]


class CallFailed(Exception):
    """An ack with ``ok: false`` from :meth:`LiveroomClient.request`."""

    def __init__(self, event: str, error: dict[str, Any]) -> None:
        super().__init__(f"{event}: {error.get('code')}: {error.get('message')}")
        self.event = event
        self.error = error

    @property
    def code(self) -> str:
        return str(self.error.get("code"))


class Refused(Exception):
    """The server refused the connection; ``reason`` is what it said."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def guest_token(base_url: str, name: str) -> tuple[str, dict[str, Any]]:
    """``POST /api/tokens``: a guest token and its user."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base_url}/api/tokens", json={"name": name}) as resp,
    ):
        body = await resp.json()
        if resp.status != 200:
            raise CallFailed("POST /api/tokens", body.get("error", {}))
    return str(body["token"]), dict(body["user"])


class LiveroomClient:
    """One Socket.IO connection to a liveroom server.

    Every server event is kept in an inbox (at most ``max_events`` per event name, oldest
    dropped first) that :meth:`next_event` waits on and :meth:`events` reads.
    """

    def __init__(self, url: str, token: str, *, max_events: int = 10_000) -> None:
        self.url = url
        self.token = token
        self.sio = socketio.AsyncClient(reconnection=False)
        self._max = max_events
        self._inbox: dict[str, deque[dict[str, Any]]] = {}
        self.received = 0
        """Server events received (benchmarks count deliveries with it; reset it at will)."""
        self._arrived = asyncio.Condition()
        self.disconnected = asyncio.Event()
        self.refusal: str | None = None
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("*", self._on_event)
        self.sio.on("disconnect", self._on_disconnect)

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str,
        *,
        transports: list[str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> Self:
        """Connect, or raise :class:`Refused` with the server's reason. ``headers``: sent with
        the connection (``Accept-Language`` gives a member without a market claim theirs)."""
        client = cls(url, token)
        try:
            await client.sio.connect(
                url,
                headers=headers or {},
                auth={"token": token},
                transports=transports or ["websocket"],
                wait_timeout=timeout,
            )
        except socketio.exceptions.ConnectionError as e:
            raise Refused(client.refusal or str(e)) from None
        return client

    async def call(
        self, event: str, payload: dict[str, Any] | None = None, *, timeout: float = 10
    ) -> dict[str, Any]:
        """Send ``event`` and return its ack (``{"ok": ...}``) as it came."""
        ack = await self.sio.call(event, payload if payload is not None else {}, timeout=timeout)
        if not isinstance(ack, dict):
            raise TypeError(f"{event}: the ack is not an object: {ack!r}")
        return ack

    async def request(
        self, event: str, payload: dict[str, Any] | None = None, *, timeout: float = 10
    ) -> dict[str, Any]:
        """Like :meth:`call`, raising :class:`CallFailed` unless the ack is ``ok``."""
        ack = await self.call(event, payload, timeout=timeout)
        if not ack.get("ok"):
            raise CallFailed(event, ack.get("error", {}))
        return ack

    def events(self, name: str) -> list[dict[str, Any]]:
        """What arrived of ``name`` so far, oldest first."""
        return list(self._inbox.get(name, ()))

    def clear(self, name: str | None = None) -> None:
        if name is None:
            self._inbox.clear()
        else:
            self._inbox.pop(name, None)

    async def next_event(
        self, name: str, predicate: Predicate | None = None, *, timeout: float | None = 10
    ) -> dict[str, Any]:
        """Take the oldest ``name`` event (matching ``predicate``), waiting for one to arrive."""

        def take() -> dict[str, Any] | None:
            queue = self._inbox.get(name)
            for item in list(queue or ()):
                if predicate is None or predicate(item):
                    assert queue is not None
                    queue.remove(item)
                    return item
            return None

        async with asyncio.timeout(timeout), self._arrived:
            while (found := take()) is None:
                await self._arrived.wait()
        return found

    async def _on_event(self, event: str, data: Any = None) -> None:
        self.received += 1
        queue = self._inbox.setdefault(event, deque(maxlen=self._max))
        queue.append(data if isinstance(data, dict) else {"data": data})
        async with self._arrived:
            self._arrived.notify_all()

    async def _on_connect_error(self, data: Any = None) -> None:
        message = data.get("message") if isinstance(data, dict) else data
        self.refusal = str(message) if message is not None else None

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnected.set()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
