"""Which node runs an event: the node that owns its room. Sockets stay where they connected.

The node a socket is on (its *edge*) charges the per-socket limits and parses the event; an event
about a room another node owns is sent to that node (bus kind ``event``) with who sent it, and the
ack comes back the same way. The owner runs it as if the socket were its own: its emits to the
socket and the socket's room entries go through Redis to the edge. The edge remembers which rooms
each of its sockets joined elsewhere, and tells their owners when the socket closes (``closed``).
The owner remembers the sockets of other nodes it runs events for (:class:`RemoteSockets`) while
they are in its rooms, and drops those of a node that died.

A node runs an event only for a room it runs *now*: its lease held and trusted
(:meth:`~liveroom.cluster.node.ClusterNode.trusted`) and the room open here — checked when the
event arrives, and again under the room's lock before anything is written
(:class:`~liveroom.rooms.service.NotRunHere`: it waited there while the room left). Otherwise
nothing is done and the edge is told so (``moved``); it asks where the room runs again and sends
the event there, for a few seconds, then answers ``conflict`` (send it again). A room whose lease
this node lost while it lived is run elsewhere from then on: its sockets here join it there
(:meth:`ClusterRouter.rehome`), and are told there to offer their media again. So do the sockets
of a node the others took for dead while it lived (they left their rooms then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from liveroom.auth import Grants, Identity
from liveroom.blocks.service import BlockService
from liveroom.cluster.bus import Bus, NodeGone
from liveroom.cluster.bus import ClusterManager as Manager
from liveroom.cluster.node import ClusterNode
from liveroom.errors import Conflict, Internal, LiveroomError, error_body
from liveroom.permissions import Scope
from liveroom.rooms.service import NotRunHere, RoomService
from liveroom.signaling.dispatch import Caller, Signaling
from liveroom.signaling.payloads import Payload
from liveroom.signaling.registry import Ack, Handler
from liveroom.tasks import Spawned

logger = logging.getLogger(__name__)

OWNER_WAIT_S = 6.0
"""How long an event waits for its room's node to be known and to take it (a lease lapses in at
most 5 s; a room being taken over is run once its stage is read back)."""
REHOME_WAIT_S = 20.0
"""How long a socket of a room this node lost waits for the room to be run somewhere."""
REHOME_BATCH = 50
RETRY_S = 0.2
EVENT_TIMEOUT_S = 8.0
MOVING = "the room is moving to another node; send it again"
_NOT_RUN_HERE = error_body(NotRunHere())["error"]

RoomOf = Callable[[Scope, Payload], Awaitable[str | None]]
"""The room an event is about (``None``: no room, run it here)."""


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
    """The sockets of other nodes this node runs events for: while one runs, and while the socket
    is in a room run here. Then forgotten (:meth:`closed`), so this holds no more than the rooms
    here have members elsewhere."""

    sockets: dict[str, tuple[str, str]] = field(default_factory=dict)
    """sid → (the node it is on, its user)."""
    _by_user: dict[str, set[str]] = field(default_factory=dict)
    _running: dict[str, int] = field(default_factory=dict)
    """sid → its events running here now."""

    def note(self, sid: str, node_id: str, user_id: str) -> None:
        self.sockets[sid] = (node_id, user_id)
        self._by_user.setdefault(user_id, set()).add(sid)

    def begin(self, sid: str, node_id: str, user_id: str) -> None:
        """One of the socket's events starts running here."""
        self.note(sid, node_id, user_id)
        self._running[sid] = self._running.get(sid, 0) + 1

    def end(self, sid: str) -> None:
        running = self._running.get(sid, 0) - 1
        if running > 0:
            self._running[sid] = running
        else:
            self._running.pop(sid, None)

    def busy(self, sid: str) -> bool:
        return sid in self._running

    def closed(self, sid: str) -> str | None:
        """Forget the socket; its user, if it was known."""
        known = self.sockets.pop(sid, None)
        if known is None:
            return None
        user_id = known[1]
        sids = self._by_user.get(user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._by_user[user_id]
        return user_id

    def node_of(self, sid: str) -> str | None:
        known = self.sockets.get(sid)
        return known[0] if known else None

    def sids_of(self, user_id: str) -> set[str]:
        """The user's sockets on other nodes that this node knows of."""
        return set(self._by_user.get(user_id, ()))

    def on_node(self, node_id: str) -> list[tuple[str, str]]:
        """The (sid, user) of every socket of ``node_id``."""
        return [(sid, user) for sid, (node, user) in self.sockets.items() if node == node_id]

    def __contains__(self, sid: str) -> bool:
        return sid in self.sockets

    def __len__(self) -> int:
        return len(self.sockets)


class ClusterRouter:
    """The :class:`~liveroom.signaling.dispatch.Router` of a node among several."""

    def __init__(
        self,
        node: ClusterNode,
        bus: Bus,
        manager: Manager,
        signaling: Signaling,
        rooms: RoomService,
        blocks: BlockService,
        room_of: RoomOf,
        remote: RemoteSockets,
    ) -> None:
        self.node_id = node.node_id
        self.remote = remote
        self._node = node
        self._bus = bus
        self._manager = manager
        self._signaling = signaling
        self._rooms = rooms
        self._blocks = blocks
        self._room_of = room_of
        self._joined: dict[str, set[str]] = {}
        """This node's sockets and the rooms they joined that other nodes run."""
        self._moving: dict[tuple[str, str], asyncio.Event] = {}
        """(sid, room) of this node's sockets joining a room this node lost where it runs now:
        set once they did (or failed to)."""
        self._tasks = Spawned("cluster-router")
        bus.handle("event", self._run_forwarded)
        bus.handle("closed", self._closed_elsewhere)
        signaling.disconnect_hooks.append(lambda conn: self._closed_here(conn.sid, conn.identity))
        node.died.append(self.node_died)
        node.revived.append(self._revived)
        manager.node_of = remote.node_of

    async def stop(self) -> None:
        await self._tasks.stop()

    def runs_here(self, room_id: str) -> bool:
        """This node runs the room now: it holds a lease it trusts, and the room is open here
        (not still being taken over)."""
        return self._node.trusted(room_id) and self._rooms.get(room_id) is not None

    # --- the edge -----------------------------------------------------------------------------

    async def route(
        self, caller: Caller, event: str, handler: Handler[Any], payload: Payload, data: Any
    ) -> Ack | None:
        if event == "room:create":  # a new room goes to the least loaded node
            owner = await self._node.place()
            if owner == self.node_id:
                return None
            return await self._forward(owner, caller, event, data)
        room_id = await self._room_of(handler.rule.scope, payload)
        if room_id is None:
            return None
        return await self._where_run(caller, event, data, room_id, OWNER_WAIT_S)

    async def _where_run(
        self,
        caller: Caller,
        event: str,
        data: Any,
        room_id: str,
        wait_s: float,
        *,
        rehoming: bool = False,
    ) -> Ack | None:
        """The event run by the node that runs the room (``None``: this one, or nobody — then it
        is answered here: ``not_found``, ``gone``). While the room is moving (its lease lapsed,
        not trusted, or being taken over) it waits, at most ``wait_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            owner = None
            if not self._node.releasing(room_id):  # else: its sockets here are not sent yet
                if not rehoming:  # the socket's own event: after its join there
                    await self._moved_with(caller.sid, room_id, deadline - loop.time())
                owner = await self._node.owner_of(room_id)
            if owner == self.node_id:
                if self.runs_here(room_id):
                    return None
            elif owner is not None:
                ack = await self._forward(owner, caller, event, data, rehoming=rehoming)
                if ack is not None:
                    return ack
            if loop.time() >= deadline:
                if owner is None:
                    return None
                logger.warning("room %s: %s waited for the room's node in vain", room_id, event)
                return error_body(Conflict(MOVING))
            await asyncio.sleep(RETRY_S)  # real time: another node's lease and takeover

    async def _forward(
        self, owner: str, caller: Caller, event: str, data: Any, *, rehoming: bool = False
    ) -> Ack | None:
        """The event run on ``owner``: its ack, or ``None`` if that node does not run the room
        (any more, or yet): nothing was done there."""
        body = {
            "node": self.node_id,
            "event": event,
            "data": data,
            "sid": caller.sid,
            "identity": identity_body(caller.identity),
            "remote": caller.remote,
            "region": caller.region,
            "rehoming": rehoming,
        }
        if event == "room:join":  # before: a close while it runs must reach the room's node
            self._joined.setdefault(caller.sid, set()).add(str(data["room_id"]))
        try:
            async with self._manager.hold(caller.sid):
                reply = await self._bus.call(owner, "event", body, timeout=EVENT_TIMEOUT_S)
        except NodeGone:
            logger.warning("node %s did not answer %s from %s", owner, event, caller.sid)
            return error_body(Internal("the room is moving to another node; try again"))
        if reply.get("moved"):
            return None
        ack = dict(reply.get("ack") or {})
        if event in ("room:join", "room:leave"):
            self._followed(caller, event, str(data["room_id"]), ok=bool(ack.get("ok")))
        return ack

    def _followed(self, caller: Caller, event: str, room_id: str, *, ok: bool) -> None:
        sid = caller.sid
        if event == "room:join" and sid not in self._signaling.connections:
            # The socket closed while its join ran: its close went out before the join was
            # done there; tell the room's node again now.
            self._tasks.spawn(self._tell_closed(room_id, sid, caller.identity))
        elif event == "room:leave" and ok:
            self._joined.get(sid, set()).discard(room_id)

    def rehome(self, room_id: str, sids: list[str]) -> None:
        """This node's sockets that were in ``room_id`` when it lost the room's lease (or were
        dropped from it while this node was taken for dead): each joins the room again where it
        runs now (uncharged, as a takeover joins the members it finds) and is told there to
        offer its media again. Their own events about the room wait for it. Nothing is sent for
        a room that came back here: the takeover here finds them."""
        for sid in sids:
            self._moving[(sid, room_id)] = asyncio.Event()
        self._tasks.spawn(self._rehome_all(room_id, sids))

    async def _rehome_all(self, room_id: str, sids: list[str]) -> None:
        joined = 0
        for start in range(0, len(sids), REHOME_BATCH):
            batch = sids[start : start + REHOME_BATCH]
            joined += sum(await asyncio.gather(*(self._rehome(room_id, s) for s in batch)))
        logger.warning(
            "room %s: %d of %d sockets here joined it where it runs now",
            room_id,
            joined,
            len(sids),
            extra={"room_id": room_id},
        )

    async def _rehome(self, room_id: str, sid: str) -> bool:
        try:
            conn = self._signaling.connections.get(sid)
            if conn is None:
                return False
            caller = Caller(sid, conn.identity, conn.remote, conn.region)
            data = {"room_id": room_id}
            ack = await self._where_run(
                caller, "room:join", data, room_id, REHOME_WAIT_S, rehoming=True
            )
            return ack is not None and bool(ack.get("ok"))
        finally:
            moved = self._moving.pop((sid, room_id), None)
            if moved is not None:
                moved.set()

    async def _revived(self) -> None:
        """The other nodes took this one for dead (a long pause) and its sockets left their
        rooms: each joins again, as it does a room this node lost, the rooms it had joined."""
        by_room: dict[str, list[str]] = {}
        for sid, rooms in self._joined.items():
            for room_id in rooms:
                by_room.setdefault(room_id, []).append(sid)
        for room_id, sids in by_room.items():
            self.rehome(room_id, sids)

    async def _moved_with(self, sid: str, room_id: str, wait_s: float) -> None:
        """Until the socket joined the room where it runs now, if it is being sent there."""
        moved = self._moving.get((sid, room_id))
        if moved is not None and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):  # real time: another node's work
                    await moved.wait()

    async def _closed_here(self, sid: str, identity: Identity) -> None:
        for room_id in self._joined.pop(sid, set()):
            self._tasks.spawn(self._tell_closed(room_id, sid, identity))

    async def _tell_closed(self, room_id: str, sid: str, identity: Identity | None) -> None:
        """Tell the node running ``room_id`` now (it may have moved since the join)."""
        owner = await self._node.owner_of(room_id)
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
        rehoming = bool(body.get("rehoming"))

        async def here(handler: Handler[Any], payload: Payload) -> bool:
            room_id = await self._room_of(handler.rule.scope, payload)
            if room_id is not None and not self.runs_here(room_id):
                return False
            # What they block is hidden from them here too: their list, held while they are.
            await self._blocks.admit(caller.identity)
            return True

        self.remote.begin(caller.sid, str(body["node"]), caller.identity.user_id)
        try:
            ack = await self._signaling.run_forwarded(
                caller, str(body["event"]), body.get("data"), charge=not rehoming, here=here
            )
        finally:
            self.remote.end(caller.sid)
            await self._forget_if_absent(caller.sid)
        if ack is None or ack.get("error") == _NOT_RUN_HERE:  # nothing was done here
            return {"moved": True}
        if rehoming and ack.get("ok"):  # its media was on the node that lost the room
            restart = {"room_id": str(body["data"]["room_id"]), "reason": "media moved"}
            self._tasks.spawn(self._signaling.sio.emit("rtc:restart", restart, to=caller.sid))
        return {"ack": ack}

    async def join_found(self, caller: Caller, node_id: str, payload: dict[str, Any]) -> bool:
        """A member a takeover found on ``node_id`` (this node included) joins the room here,
        as if it had sent ``room:join`` (not its own: nothing charged). Whether it did."""
        elsewhere = node_id != self.node_id
        if elsewhere:
            self.remote.begin(caller.sid, node_id, caller.identity.user_id)
        try:
            if elsewhere:
                await self._blocks.admit(caller.identity)
            ack = await self._signaling.run_forwarded(caller, "room:join", payload, charge=False)
        except LiveroomError as e:  # their block list could not be read: not joined, for now
            logger.warning("user %s not joined again: %s", caller.identity.user_id, e.message)
            ack = None
        finally:
            if elsewhere:
                self.remote.end(caller.sid)
                await self._forget_if_absent(caller.sid)
        return ack is not None and bool(ack.get("ok"))

    async def _closed_elsewhere(self, body: dict[str, Any]) -> dict[str, Any]:
        sid = str(body["sid"])
        known = self.remote.closed(sid)
        user_id = body.get("user_id") or known
        if user_id:
            await self._rooms.socket_closed(sid, str(user_id))
            await self._blocks.socket_closed(str(user_id))
        return {}

    async def node_died(self, node_id: str) -> None:
        """Every socket of a dead node leaves the rooms here, as if it had closed."""
        gone = self.remote.on_node(node_id)
        for sid, user_id in gone:
            self.remote.closed(sid)
            await self._rooms.socket_closed(sid, user_id)
            await self._blocks.socket_closed(user_id)
        logger.warning("node %s is gone: %d of its sockets left rooms here", node_id, len(gone))

    async def forget_absent(self) -> None:
        """Forget the other nodes' sockets that are in no room here any more (a room let go)."""
        for sid in list(self.remote.sockets):
            await self._forget_if_absent(sid)

    async def _forget_if_absent(self, sid: str) -> None:
        if sid in self.remote and not self.remote.busy(sid) and not self._present(sid):
            user_id = self.remote.closed(sid)
            if user_id is not None:
                await self._blocks.socket_closed(user_id)

    def _present(self, sid: str) -> bool:
        return bool(self._rooms.presence.rooms_of(sid))
