"""Nodes talking to nodes through Redis: python-socketio's Redis manager for emits to sockets on
any node, and a small request/reply bus beside it on the same subscription.

:class:`ClusterManager` is ``socketio.AsyncRedisManager`` listening on two channels with one
Redis subscription: the cluster's Socket.IO channel (emits, room entries, disconnects, as the
library sends them) and this node's own inbox. What arrives is handled in the order Redis
delivered it. Inbox messages of the bus go to :class:`Bus` at once, not behind the library's
queue of emits, so a reply is never late because of a big broadcast.

The bus is request/reply: ``await bus.call(node, kind, body)`` publishes to that node's inbox and
waits for its reply (bounded); the node runs its handler for ``kind``. A call to a node whose
heartbeat has lapsed fails at once with :class:`NodeGone`.

While a socket's event is being run on another node, emits addressed to that socket are held and
let go only after the event's ack was queued (:meth:`ClusterManager.hold`): a client gets its
``room:join`` ack before the room's state, as on one node.

A personal message — an emit to one socket, its entering or leaving a room, its disconnect — goes
to that socket's node only, on its inbox (:meth:`ClusterManager._publish`), not to every node;
when the socket is here it is not published at all. The inbox and the Socket.IO channel are read
on one subscription and published to through one client, so a socket still gets the room's
broadcasts and its own messages in the order the room's node sent them, and what arrives for it
while its event runs elsewhere is held as before. A socket whose node is not known (none of its
events ran here) is written to on the Socket.IO channel, as the library does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import socketio

from liveroom.cluster.model import Keys
from liveroom.errors import LiveroomError
from liveroom.signaling.fanout import RoomFanout
from liveroom.tasks import Spawned

logger = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
MAX_PENDING_CALLS = 10_000
MAX_HELD_PER_SID = 256

BusHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class NodeGone(LiveroomError):
    """The other node is gone or did not answer in time."""

    code = "internal"


class RemoteError(LiveroomError):
    """The other node's handler failed; its message says how."""

    code = "internal"


def inbox(keys: Keys, node_id: str) -> str:
    return f"{keys.namespace}:inbox:{node_id}"


class ClusterManager(socketio.AsyncRedisManager, RoomFanout):  # type: ignore[misc]
    """The Redis manager of one node: the Socket.IO channel and this node's inbox, read in one
    subscription, in order."""

    def __init__(self, url: str, keys: Keys, node_id: str) -> None:
        super().__init__(url=url, channel=keys.sio_channel)
        self.keys = keys
        self.node_id = node_id
        self.inbox = inbox(keys, node_id)
        self.on_bus: Callable[[dict[str, Any]], None] = lambda _message: None
        self.node_of: Callable[[str], str | None] = lambda _sid: None
        """The other node a socket is on, when known (the room's node learns it from the
        socket's events it runs)."""
        self._held: dict[str, list[dict[str, Any]]] = {}
        self._holds: dict[str, int] = {}

    # --- reading ------------------------------------------------------------------------------

    async def _redis_listen_with_retries(self) -> AsyncIterator[dict[str, Any]]:
        retry_s = 1.0
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel, self.inbox)
                retry_s = 1.0
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis away: the library's own behaviour, bounded
                logger.error("cluster: cannot read from Redis (%s); again in %.0f s", e, retry_s)
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, 30.0)

    async def _listen(self) -> AsyncIterator[bytes | dict[str, Any]]:
        sio_channel, own = self.channel.encode(), self.inbox.encode()
        async for message in self._redis_listen_with_retries():
            if message.get("type") != "message" or "data" not in message:
                continue
            if message["channel"] == sio_channel:
                yield message["data"]
            elif message["channel"] == own:
                try:
                    decoded = json.loads(message["data"])
                except ValueError:
                    logger.warning("cluster: dropped a malformed inbox message")
                    continue
                if isinstance(decoded, dict) and "lr" in decoded:
                    self.on_bus(decoded)
                elif isinstance(decoded, dict):
                    yield decoded

    async def publish_to(self, node_id: str, message: dict[str, Any]) -> None:
        """Publish to another node's inbox (through the same client as the emits)."""
        if not self.connected:
            self._redis_connect()
        await self.redis.publish(inbox(self.keys, node_id), json.dumps(message))

    # --- writing: personal messages to their socket's node only -------------------------------

    async def _publish(self, data: Any) -> None:
        """What the library would publish to every node: a personal message goes to its
        socket's node only (here: nowhere, the library delivered it already)."""
        sid = _socket_of(data)
        if sid is not None:
            if self.is_connected(sid, data.get("namespace") or "/"):
                return
            node_id = self.node_of(sid)
            if node_id is not None and node_id != self.node_id:
                await self._publish_to_node(node_id, data)
                return
        await super()._publish(data)

    async def _publish_to_node(self, node_id: str, data: dict[str, Any]) -> None:
        """Like the library's publish: one more try on a new connection, then logged."""
        for attempt in (1, 2):
            try:
                await self.publish_to(node_id, data)
                return
            except Exception as e:  # Redis away: what the library does, for the inbox
                self.connected = False
                if attempt == 2:
                    logger.error("cluster: a message to node %s is lost: %s", node_id, e)

    # --- holding emits for a socket whose event runs elsewhere ---------------------------------

    @asynccontextmanager
    async def hold(self, sid: str) -> AsyncIterator[None]:
        """Emits to ``sid`` that arrive meanwhile wait, and go out after the ack (which the
        caller queues as it leaves this block, before the held emits are let go)."""
        self._held.setdefault(sid, [])
        self._holds[sid] = self._holds.get(sid, 0) + 1
        try:
            yield
        finally:
            asyncio.get_running_loop().call_soon(self._let_go, sid)

    def holding(self, sid: str) -> int:
        """How many emits wait for ``sid``'s ack."""
        return len(self._held.get(sid, ()))

    def _let_go(self, sid: str) -> None:
        """After the last of the socket's events running elsewhere was acked: deliver what
        waited, in order; emits arriving meanwhile still queue behind it."""
        self._holds[sid] -= 1
        if self._holds[sid]:
            return
        del self._holds[sid]
        self.server.start_background_task(self._deliver, sid)

    async def _deliver(self, sid: str) -> None:
        held = self._held.get(sid)
        try:
            while held and not self._holds.get(sid):  # a new event of the socket: it waits again
                await super()._handle_emit(held.pop(0))
        finally:
            if not self._holds.get(sid):
                self._held.pop(sid, None)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        held = self._held.get(message.get("room") or "")
        if held is None:
            await super()._handle_emit(message)
        elif len(held) < MAX_HELD_PER_SID:
            held.append(message)
        else:
            logger.warning("cluster: dropped an emit to %s held past its ack", message.get("room"))


_PERSONAL = frozenset({"enter_room", "leave_room", "disconnect"})


def _socket_of(data: Any) -> str | None:
    """The one socket a manager message is for (``None``: a room, everyone, or a reply)."""
    if not isinstance(data, dict):
        return None
    method = data.get("method")
    if method == "emit" and data.get("callback") is None:
        room = data.get("room")  # a socket is a room of its own
        return room if isinstance(room, str) else None
    if method in _PERSONAL:
        sid = data.get("sid")
        return sid if isinstance(sid, str) else None
    return None


class Bus:
    """Request/reply between nodes over their inboxes."""

    def __init__(self, manager: ClusterManager, alive: Callable[[str], Awaitable[bool]]) -> None:
        self._manager = manager
        self._alive = alive
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, BusHandler] = {}
        self._tasks = Spawned("bus")
        manager.on_bus = self._received

    @property
    def node_id(self) -> str:
        return self._manager.node_id

    def handle(self, kind: str, handler: BusHandler) -> None:
        self._handlers[kind] = handler

    async def stop(self) -> None:
        await self._tasks.stop()
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

    async def call(
        self, node_id: str, kind: str, body: dict[str, Any], timeout: float = CALL_TIMEOUT_S
    ) -> dict[str, Any]:
        """Run ``kind`` on ``node_id`` and return its reply."""
        if not await self._alive(node_id):
            raise NodeGone(f"node {node_id} is gone")
        if len(self._pending) >= MAX_PENDING_CALLS:
            raise NodeGone("too many calls to other nodes in progress")
        call_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        message = {"lr": "call", "id": call_id, "from": self.node_id, "kind": kind, "body": body}
        try:
            await self._manager.publish_to(node_id, message)
            async with asyncio.timeout(timeout):  # real network, not the product's clock
                return await future
        except TimeoutError:
            raise NodeGone(f"node {node_id} did not answer {kind} in {timeout:g} s") from None
        finally:
            self._pending.pop(call_id, None)

    async def call_each(
        self, node_ids: Iterable[str], kind: str, body: dict[str, Any]
    ) -> list[str]:
        """Run ``kind`` on every one of ``node_ids`` at once; those that did not (gone, failed,
        or no answer in time), each logged."""
        targets = sorted(set(node_ids) - {self.node_id})
        results = await asyncio.gather(
            *(self.call(n, kind, body) for n in targets), return_exceptions=True
        )
        failed = []
        for node_id, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancelled
                logger.warning("cluster: node %s did not take %s: %s", node_id, kind, result)
                failed.append(node_id)
        return failed

    def _received(self, message: dict[str, Any]) -> None:
        match message.get("lr"):
            case "reply":
                future = self._pending.get(str(message.get("id")))
                if future is None or future.done():
                    return  # timed out meanwhile
                if "error" in message:
                    future.set_exception(RemoteError(str(message["error"])))
                else:
                    future.set_result(dict(message.get("body") or {}))
            case "call":
                self._tasks.spawn(self._answer(message))
            case _:
                logger.warning("cluster: dropped a bus message of kind %r", message.get("lr"))

    async def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"lr": "reply", "id": message.get("id")}
        handler = self._handlers.get(str(message.get("kind")))
        if handler is None:
            reply["error"] = f"no handler for {message.get('kind')!r}"
        else:
            try:
                reply["body"] = await handler(dict(message.get("body") or {}))
            except LiveroomError as e:
                reply["error"] = e.message
            except Exception:
                logger.exception(
                    "cluster: %s from node %s failed", message.get("kind"), message.get("from")
                )
                reply["error"] = "the other node failed; it was logged there"
        await self._manager.publish_to(str(message.get("from")), reply)
