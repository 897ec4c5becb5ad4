"""The Socket.IO server with bounded outbound traffic per socket.

Engine.IO queues every outgoing packet for a socket in an unbounded ``asyncio.Queue`` that its
writer drains into the websocket (or the next long-poll). A client that stops reading blocks the
writer on the TCP send buffer while the queue grows with every room event. Here each socket may
hold at most ``queue_limit`` packets: the next send to a full socket drops that client, aborting
its transport so the writer, the queue and the socket are released. Other clients never wait on
it: queueing is ``put``-without-wait on the slow socket's own queue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import engineio
import socketio
from socketio import packet

from liveroom.signaling.tally import Tally

logger = logging.getLogger(__name__)


def _tracking(websocket_driver: type[Any]) -> type[Any]:
    """Engine.IO's aiohttp websocket driver, telling the server which request carries a socket."""

    class TrackedWebSocket(websocket_driver):  # type: ignore[misc]
        async def __call__(self, environ: dict[str, Any]) -> Any:
            socket = getattr(self.handler, "__self__", None)
            request = environ.get("aiohttp.request")
            if socket is not None and request is not None:
                self.server.remember_transport(socket.sid, request)
            return await super().__call__(environ)

    return TrackedWebSocket


class BoundedEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *args: Any, queue_limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue_limit = queue_limit
        self.dropped_slow = 0
        self.packets_sent = 0
        """Packets queued to sockets: a room broadcast counts once per recipient."""
        self._dropping: set[str] = set()
        self._transports: dict[str, Any] = {}
        self._requests = 0
        self._idle = asyncio.Event()
        self._idle.set()
        drivers: dict[str, Any] = dict(getattr(self, "_async"))  # noqa: B009  (untyped base)
        drivers["websocket"] = _tracking(drivers["websocket"])
        setattr(self, "_async", drivers)  # noqa: B010

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        """Every Engine.IO request, counted while in progress: a websocket's lasts as long as
        its connection, a long-poll until it is answered."""
        self._requests += 1
        self._idle.clear()
        try:
            return await super().handle_request(*args, **kwargs)
        finally:
            self._requests -= 1
            if not self._requests:
                self._idle.set()

    async def idle(self) -> None:
        """Until no request is in progress. After every socket was closed (shutdown): until
        every client has read its close and hung up."""
        await self._idle.wait()

    def remember_transport(self, eio_sid: str, request: Any) -> None:
        self._transports[eio_sid] = request

    def forget_transport(self, eio_sid: str) -> None:
        self._transports.pop(eio_sid, None)
        self._dropping.discard(eio_sid)

    async def send_packet(self, sid: str, pkt: Any) -> None:
        socket = self.sockets.get(sid)
        if socket is None or socket.closed:
            return
        if socket.queue.qsize() >= self.queue_limit:
            await self._drop_slow(sid)
            return
        self.packets_sent += 1
        await super().send_packet(sid, pkt)

    async def _drop_slow(self, sid: str) -> None:
        if sid in self._dropping:
            return
        self._dropping.add(sid)
        self.dropped_slow += 1
        logger.warning("dropping socket %s: %d packets queued and unread", sid, self.queue_limit)
        await self.abort(sid)

    async def abort(self, sid: str) -> None:
        """Cut an Engine.IO socket off as a network failure would (its client reconnects)."""
        # Aborting the transport unblocks a writer stuck on a full TCP buffer; closing the
        # socket fires the disconnect handlers now, not after the ping timeout.
        request = self._transports.get(sid)
        if request is not None and request.transport is not None:
            request.transport.abort()
        socket = self.sockets.get(sid)
        if socket is not None:
            await socket.close(wait=False, abort=True)


RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "message"})
"""Names python-socketio gives its own handlers: never a client's event."""


class LiveroomSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, on a :class:`BoundedEngineIO`."""

    def __init__(self, *, queue_limit: int, **kwargs: Any) -> None:
        self._queue_limit = queue_limit
        self.events_out = Tally()
        """Events emitted, by name (a room broadcast counts once)."""
        super().__init__(**kwargs)

    async def emit(self, event: str, *args: Any, **kwargs: Any) -> None:
        self.events_out.add(event)
        await super().emit(event, *args, **kwargs)

    def _engineio_server_class(self) -> type[BoundedEngineIO]:
        limit = self._queue_limit

        class _Engine(BoundedEngineIO):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, queue_limit=limit, **kwargs)

        return _Engine

    @property
    def engine(self) -> BoundedEngineIO:
        eio: BoundedEngineIO = self.eio
        return eio

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: list[Any]
    ) -> None:
        """A client's event named like one of the server's own (``connect``, ``disconnect``)
        would run that handler: python-socketio dispatches events by name alone. Answered
        ``invalid`` and dropped."""
        if data and data[0] in RESERVED_EVENTS:
            if id is not None:
                message = f"{data[0]} is not an event a client may send"
                refused = {"ok": False, "error": {"code": "invalid", "message": message}}
                ack = self.packet_class(
                    packet.ACK, namespace=namespace or "/", id=id, data=[refused]
                )
                await self._send_packet(eio_sid, ack)
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_eio_disconnect(self, eio_sid: str, *args: Any) -> Any:
        self.engine.forget_transport(eio_sid)
        return await super()._handle_eio_disconnect(eio_sid, *args)
