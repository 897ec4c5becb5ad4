"""Room broadcasts written once to every websocket: no task, queue or writer wake-up per
recipient.

python-socketio encodes a broadcast once, then spends a task per recipient, a put on the
socket's queue and a wake-up of the socket's writer task, which frames the message again for
each socket. At 10,000 sockets that is ≈ 100 µs per recipient and a second of event loop.
Here a broadcast is framed once (one websocket frame: header + payload) and written straight to
the transport of every socket that can take it, in one loop — the floor a hand-written server
would reach. See docs/performance.md for the measurements.

Which sockets take a direct write (:class:`OutboundWebSocket`): those that opened as websockets
(the web client and the SDK do), once nothing of theirs waits in Engine.IO's queue. Until then,
and for long-polling sockets, packets go through the queue as before, so a socket's packets
always arrive in the order they were sent. The queue counts what it holds until the websocket
wrote it (:class:`CountingQueue`).

Order across broadcasts: a broadcast to more than :data:`CHUNK` sockets is written in chunks
with the event loop let go between them (a mixer tick must not wait 150 ms), and everything
sent meanwhile — another broadcast, an ack — waits behind it in :class:`Outbox`, so each socket
still sees packets in the order they were sent.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

logger = logging.getLogger(__name__)

CHUNK = 256
"""Recipients written between two yields of the event loop (≈ 4 ms of sends)."""
MAX_BACKLOG = 64
"""Chunks of recipients that may wait; past it, the next send writes everything inline."""


def websocket_frame(message: str | bytes) -> bytes:
    """One unmasked, uncompressed, final websocket frame (RFC 6455 §5.2) carrying ``message``:
    a text frame for ``str``, a binary frame for ``bytes``."""
    if isinstance(message, str):
        payload, first = message.encode(), 0x81
    else:
        payload, first = message, 0x82
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, size)
    elif size < 65536:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


class CountingQueue(asyncio.Queue[Any]):
    """Engine.IO's queue of one websocket socket, counting packets put and not yet written."""

    def __init__(self) -> None:
        super().__init__()
        self.outstanding = 0

    def _put(self, item: Any) -> None:
        self.outstanding += 1
        super()._put(item)

    @classmethod
    def taking_over(cls, old: asyncio.Queue[Any]) -> CountingQueue:
        new = cls()
        while not old.empty():
            new.put_nowait(old.get_nowait())
        return new


class Outgoing:
    """One message for one or many sockets: Engine.IO packets, framed only if written directly."""

    __slots__ = ("_frames", "packets")

    def __init__(self, packets: Sequence[eio_packet.Packet]) -> None:
        self.packets = packets
        self._frames: bytes | None = None

    @property
    def frames(self) -> bytes:
        if self._frames is None:
            self._frames = b"".join(websocket_frame(p.encode()) for p in self.packets)
        return self._frames


Deliver = Callable[[Sequence[str], Outgoing], None]
"""Writes (or queues) one message to each of some sockets, in order."""


class _Pending:
    __slots__ = ("message", "recipients", "written")

    def __init__(self, recipients: Sequence[str], message: Outgoing) -> None:
        self.recipients = recipients
        self.message = message
        self.written = 0


class Outbox:
    """Every packet the server sends, in order: at once when nothing waits, else behind the
    broadcast being written in chunks."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._backlog: deque[_Pending] = deque()
        self._waiting = 0
        """Recipients in the backlog not written yet."""
        self._writer: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return self._waiting

    def send(self, recipients: Sequence[str], message: Outgoing) -> None:
        if not self._backlog and len(recipients) <= CHUNK:
            self._deliver(recipients, message)
            return
        self._backlog.append(_Pending(recipients, message))
        self._waiting += len(recipients)
        if self._waiting > MAX_BACKLOG * CHUNK:
            # Sending faster than the loop lets the writer write: the sender pays, inline.
            self._write_some(None)
        elif self._writer is None:
            self._write_some(CHUNK)
            if self._backlog:
                self._writer = asyncio.get_running_loop().create_task(self._write(), name="outbox")

    def flush(self) -> None:
        """Write everything waiting, now."""
        self._write_some(None)

    async def stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        self.flush()

    def _write_some(self, budget: int | None) -> None:
        """Write to ``budget`` more recipients (all with ``None``), oldest message first."""
        while self._backlog and budget != 0:
            pending = self._backlog[0]
            total = len(pending.recipients)
            end = total if budget is None else min(total, pending.written + budget)
            self._deliver(pending.recipients[pending.written : end], pending.message)
            written, pending.written = end - pending.written, end
            self._waiting -= written
            if budget is not None:
                budget -= written
            if end == total:
                self._backlog.popleft()

    async def _write(self) -> None:
        try:
            while self._backlog:
                await asyncio.sleep(0)
                self._write_some(CHUNK)
        finally:
            self._writer = None


class RoomFanout(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's manager, delivering every emit without a callback through the
    server's :class:`Outbox` (single sockets and rooms alike), and knowing each socket's rooms.

    The library finds a socket's rooms by scanning every room of the namespace — and every
    socket has a room of its own — so each disconnect cost O(sockets): churn in a 10,000-socket
    room was O(listeners²). Here an index from socket to rooms makes it O(its rooms).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[str | None]] = {}

    def basic_enter_room(
        self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        return [r for r in self._rooms_of.get((namespace, sid), ()) if r is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        for room in self._rooms_of.pop((namespace, sid), ()):
            super().basic_leave_room(sid, namespace, room)
        # The rest of the library's disconnect (its callbacks and pending entries), with an empty
        # namespace for the scan it makes to find the socket's rooms: there are none left.
        rooms = self.rooms.get(namespace)
        self.rooms[namespace] = {}
        try:
            super().basic_disconnect(sid, namespace, **kwargs)
        finally:
            if rooms is None:
                self.rooms.pop(namespace, None)
            else:
                self.rooms[namespace] = rooms

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:  # a distinct ack id per recipient: the library's own way
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to
            )
            return
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        recipients = [
            eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip
        ]
        if not recipients:
            return
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        if not isinstance(encoded, list):
            encoded = [encoded]
        message = Outgoing([eio_packet.Packet(eio_packet.MESSAGE, p) for p in encoded])
        self.server.eio.outbox.send(recipients, message)
