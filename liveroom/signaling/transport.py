"""The Socket.IO server with bounded outbound traffic per socket.

Engine.IO queues every outgoing packet for a socket in an unbounded ``asyncio.Queue`` that its
writer drains into the websocket (or the next long-poll). A client that stops reading blocks the
writer on the TCP send buffer while the queue grows with every room event. Here each socket may
hold at most ``queue_limit`` packets: the next send to a full socket drops that client, aborting
its transport so the writer, the queue and the socket are released. Other clients never wait on
it: queueing is ``put``-without-wait on the slow socket's own queue.

A socket that opened as a websocket is written to directly while its queue is empty and its
transport holds less than :data:`DIRECT_WRITE_LIMIT` unsent (see :mod:`liveroom.signaling.fanout`);
a client that falls behind gets its packets queued again, under the same limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import engineio
import socketio
from aiohttp import web
from socketio import packet

from liveroom.signaling.fanout import CountingQueue, Outbox, Outgoing, RoomFanout
from liveroom.signaling.tally import Tally

logger = logging.getLogger(__name__)

DIRECT_WRITE_LIMIT = 64 * 1024
"""Unsent bytes a transport may hold and still be written to directly; past it, packets queue
for the socket's writer, which waits for the client to read (and ``queue_limit`` applies)."""


def _tracking(websocket_driver: type[Any]) -> type[Any]:
    """Engine.IO's aiohttp websocket driver, telling the server which request carries a socket
    and, for a socket that opened as a websocket, taking direct writes (:mod:`fanout`)."""

    class OutboundWebSocket(websocket_driver):  # type: ignore[misc]
        queue: CountingQueue | None = None
        transport: asyncio.Transport | None = None

        async def __call__(self, environ: dict[str, Any]) -> Any:
            socket = getattr(self.handler, "__self__", None)
            request = environ["aiohttp.request"]
            if socket is not None:
                self.server.remember_transport(socket.sid, request)
            # Uncompressed: a broadcast is framed once for every socket. Compression would be
            # a deflate per socket per message, with each socket's own context.
            self._sock = web.WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=False
            )
            await self._sock.prepare(request)
            if socket is not None and not socket.connected:  # a websocket from the start
                socket.queue = self.queue = CountingQueue.taking_over(socket.queue)
                self.transport = request.transport
                self.server.remember_websocket(socket.sid, self)
            self.environ = environ
            await self.handler(self)
            return self._sock

        def writable(self) -> bool:
            """Whether a frame written now would arrive after everything sent before it."""
            return (
                self.queue is not None
                and not self.queue.outstanding
                and self.transport is not None
                and not self.transport.is_closing()
                and not self._sock.closed
            )

        async def send(self, message: str | bytes) -> None:
            await super().send(message)
            self.server.frames_written += 1
            if self.queue is not None:
                self.queue.outstanding -= 1

    return OutboundWebSocket


class BoundedEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *args: Any, queue_limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue_limit = queue_limit
        self.dropped_slow = 0
        self.packets_sent = 0
        """Packets queued to sockets: a room broadcast counts once per recipient."""
        self.frames_written = 0
        """Websocket frames written to clients, by the sockets' writers or directly."""
        self.frames_direct = 0
        """Of which written directly (:mod:`liveroom.signaling.fanout`)."""
        self.outbox = Outbox(self._deliver)
        self._dropping: set[str] = set()
        self._transports: dict[str, Any] = {}
        self._websockets: dict[str, Any] = {}
        self._dropping_tasks: set[asyncio.Task[None]] = set()
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

    def remember_websocket(self, eio_sid: str, websocket: Any) -> None:
        self._websockets[eio_sid] = websocket

    def forget_transport(self, eio_sid: str) -> None:
        self._transports.pop(eio_sid, None)
        self._websockets.pop(eio_sid, None)
        self._dropping.discard(eio_sid)

    async def send_packet(self, sid: str, pkt: Any) -> None:
        self.outbox.send((sid,), Outgoing((pkt,)))

    def _deliver(self, sids: Sequence[str], message: Outgoing) -> None:
        """``message`` to each socket: written now if its websocket can take it, else queued
        for its writer (or its next long-poll). The loop of every room broadcast: kept lean."""
        sockets, websockets, queue_limit = self.sockets, self._websockets, self.queue_limit
        frames: bytes | None = None
        direct = queued = 0
        for sid in sids:
            socket = sockets.get(sid)
            if socket is None or socket.closed:
                continue
            websocket = websockets.get(sid)
            if websocket is not None and websocket.writable():
                transport = websocket.transport
                if transport.get_write_buffer_size() <= DIRECT_WRITE_LIMIT:
                    if frames is None:
                        frames = message.frames
                    transport.write(frames)
                    direct += 1
                    continue
            if socket.queue.qsize() >= queue_limit:
                self._drop_later(sid)
                continue
            for pkt in message.packets:
                socket.queue.put_nowait(pkt)
            queued += 1
        packets = len(message.packets)
        self.frames_written += direct * packets
        self.frames_direct += direct * packets
        self.packets_sent += (direct + queued) * packets

    def _drop_later(self, sid: str) -> None:
        if sid in self._dropping:
            return
        self._dropping.add(sid)
        self.dropped_slow += 1
        logger.warning("dropping socket %s: it does not read what it is sent", sid)
        task = asyncio.get_running_loop().create_task(self.abort(sid))
        self._dropping_tasks.add(task)
        task.add_done_callback(self._dropping_tasks.discard)

    async def stop_sending(self) -> None:
        """Write what waits in the outbox and end the drops in progress (at shutdown)."""
        await self.outbox.stop()
        await asyncio.gather(*self._dropping_tasks, return_exceptions=True)

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

    def __init__(self, *, queue_limit: int, client_manager: Any = None, **kwargs: Any) -> None:
        self._queue_limit = queue_limit
        self.events_out = Tally()
        """Events emitted, by name (a room broadcast counts once)."""
        super().__init__(client_manager=client_manager or RoomFanout(), **kwargs)

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
