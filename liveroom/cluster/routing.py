"""Which node runs an event: the node that owns its room. Sockets stay where they connected.

The node a socket is on (its *edge*) charges the per-socket limits and parses the event; an event
about a room another node owns is sent to that node (bus kind ``event``) with who sent it, and the
ack comes back the same way. The owner runs it as if the socket were its own: its emits to the
socket and the socket's room entries go through Redis to the edge. The edge remembers which rooms
each of its sockets joined elsewhere, and tells their owners when the socket closes (``closed``).
The owner remembers the sockets of other nodes it has heard from (:class:`RemoteSockets`), and
drops those of a node that died.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from liveroom.auth import Grants, Identity
from liveroom.cluster.bus import Bus, NodeGone
from liveroom.cluster.bus import ClusterManager as Manager
from liveroom.errors import Internal, LiveroomError, error_body
from liveroom.permissions import Scope
from liveroom.signaling.dispatch import Caller, Signaling
from liveroom.signaling.payloads import Payload
from liveroom.signaling.registry import Ack, Handler
from liveroom.tasks import Spawned

logger = logging.getLogger(__name__)

OWNER_WAIT_S = 6.0
"""How long an event waits for an ownerless room to be taken over (a lease lapses in 5 s)."""
EVENT_TIMEOUT_S = 8.0

RoomOf = Callable[[Scope, Payload], Awaitable[str | None]]
"""The room an event is about (``None``: no room, run it here)."""
OwnerOf = Callable[[str], Awaitable[str | None]]
"""The node that owns a room now (``None``: nobody, for now)."""
SocketClosed = Callable[[str, str], Awaitable[None]]


def identity_body(identity: Identity) -> dict[str, Any]:
    return {
        "user_id": identity.user_id,
        "name": identity.name,
        "verified": identity.verified,
        "market": identity.market,
        "host": identity.grants.host,
        "admin": identity.grants.admin,
        "guest": identity.guest,
    }


def identity_of(body: dict[str, Any]) -> Identity:
    """The identity an edge verified from its socket's token (nodes trust each other)."""
    return Identity(
        user_id=str(body["user_id"]),
        name=str(body["name"]),
        verified=bool(body.get("verified")),
        market=body.get("market"),
        grants=Grants(host=bool(body.get("host")), admin=bool(body.get("admin"))),
        guest=bool(body.get("guest")),
    )


@dataclass
class RemoteSockets:
    """The sockets of other nodes that sent events for rooms this node owns."""

    sockets: dict[str, tuple[str, str]] = field(default_factory=dict)
    """sid → (the node it is on, its user)."""

    def note(self, sid: str, node_id: str, user_id: str) -> None:
        self.sockets[sid] = (node_id, user_id)

    def closed(self, sid: str) -> None:
        self.sockets.pop(sid, None)

    def on_node(self, node_id: str) -> list[tuple[str, str]]:
        """The (sid, user) of every socket of ``node_id``."""
        return [(sid, user) for sid, (node, user) in self.sockets.items() if node == node_id]

    def __contains__(self, sid: str) -> bool:
        return sid in self.sockets


class ClusterRouter:
    """The :class:`~liveroom.signaling.dispatch.Router` of a node among several."""

    def __init__(
        self,
        node_id: str,
        bus: Bus,
        manager: Manager,
        signaling: Signaling,
        room_of: RoomOf,
        owner_of: OwnerOf,
        place: Callable[[], Awaitable[str]],
        socket_closed: SocketClosed,
        remote: RemoteSockets,
    ) -> None:
        self.node_id = node_id
        self.remote = remote
        self._bus = bus
        self._manager = manager
        self._signaling = signaling
        self._room_of = room_of
        self._owner_of = owner_of
        self._place = place
        self._socket_closed = socket_closed
        self._joined: dict[str, set[str]] = {}
        """This node's sockets and the rooms they joined that other nodes run."""
        self._tasks = Spawned("cluster-router")
        bus.handle("event", self._run_forwarded)
        bus.handle("closed", self._closed_elsewhere)
        signaling.disconnect_hooks.append(lambda conn: self._closed_here(conn.sid, conn.identity))

    async def stop(self) -> None:
        await self._tasks.stop()

    # --- the edge -----------------------------------------------------------------------------

    async def route(
        self, caller: Caller, event: str, handler: Handler[Any], payload: Payload, data: Any
    ) -> Ack | None:
        if event == "room:create":  # a new room goes to the least loaded node
            owner: str | None = await self._place()
        else:
            room_id = await self._room_of(handler.rule.scope, payload)
            if room_id is None:
                return None
            owner = await self._owner(room_id)
        if owner is None or owner == self.node_id:
            return None  # ours, or nobody's: answered here (not_found, gone)
        body = {
            "node": self.node_id,
            "event": event,
            "data": data,
            "sid": caller.sid,
            "identity": identity_body(caller.identity),
            "remote": caller.remote,
            "region": caller.region,
        }
        if event == "room:join":  # before: a close while it runs must reach the room's node
            self._joined.setdefault(caller.sid, set()).add(str(data["room_id"]))
        try:
            async with self._manager.hold(caller.sid):
                reply = await self._bus.call(owner, "event", body, timeout=EVENT_TIMEOUT_S)
        except NodeGone:
            logger.warning("node %s did not answer %s from %s", owner, event, caller.sid)
            return error_body(Internal("the room is moving to another node; try again"))
        ack = dict(reply.get("ack") or {})
        if event in ("room:join", "room:leave"):
            self._followed(caller, event, str(data["room_id"]), ok=bool(ack.get("ok")))
        return ack

    async def _owner(self, room_id: str) -> str | None:
        """The room's node, waiting a little for one while it is being taken over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OWNER_WAIT_S
        while True:
            owner = await self._owner_of(room_id)
            if owner is not None or loop.time() >= deadline:
                return owner
            await asyncio.sleep(0.2)

    def _followed(self, caller: Caller, event: str, room_id: str, *, ok: bool) -> None:
        sid = caller.sid
        if event == "room:join" and sid not in self._signaling.connections:
            # The socket closed while its join ran: its close went out before the join was
            # done there; tell the room's node again now.
            self._tasks.spawn(self._tell_closed(room_id, sid, caller.identity))
        elif event == "room:leave" and ok:
            self._joined.get(sid, set()).discard(room_id)

    async def _closed_here(self, sid: str, identity: Identity) -> None:
        for room_id in self._joined.pop(sid, set()):
            self._tasks.spawn(self._tell_closed(room_id, sid, identity))

    async def _tell_closed(self, room_id: str, sid: str, identity: Identity | None) -> None:
        """Tell the node running ``room_id`` now (it may have moved since the join)."""
        owner = await self._owner_of(room_id)
        if owner is None or owner == self.node_id:
            return  # nobody runs it (it is being taken over: its members are gathered), or us
        user_id = identity.user_id if identity else None
        try:
            await self._bus.call(owner, "closed", {"sid": sid, "user_id": user_id})
        except LiveroomError as e:  # that node is gone: its rooms are rebuilt without us
            logger.info("telling node %s that socket %s closed: %s", owner, sid, e.message)

    # --- the owner ----------------------------------------------------------------------------

    async def _run_forwarded(self, body: dict[str, Any]) -> dict[str, Any]:
        caller = Caller(
            str(body["sid"]),
            identity_of(body["identity"]),
            body.get("remote"),
            body.get("region"),
        )
        self.remote.note(caller.sid, str(body["node"]), caller.identity.user_id)
        ack = await self._signaling.run_forwarded(caller, str(body["event"]), body.get("data"))
        return {"ack": ack}

    async def _closed_elsewhere(self, body: dict[str, Any]) -> dict[str, Any]:
        sid = str(body["sid"])
        user_id = body.get("user_id")
        self.remote.closed(sid)
        if user_id:
            await self._socket_closed(sid, str(user_id))
        return {}

    async def node_died(self, node_id: str) -> int:
        """Every socket of a dead node leaves the rooms here, as if it had closed; how many."""
        gone = self.remote.on_node(node_id)
        for sid, user_id in gone:
            self.remote.closed(sid)
            await self._socket_closed(sid, user_id)
        return len(gone)
