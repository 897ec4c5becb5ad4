"""Every Socket.IO connection and event passes through here, and every error becomes an ack here.

An event goes: rate limit (per user and per IP) → in-flight cap (per socket) → look up the
handler (unknown → ``invalid``) → parse the payload (→ ``invalid``) → resolve who the actor is in
the room → authorize against the permission table (→ ``forbidden``) → the event's own rate limit,
if it has one → run the handler. With several nodes, an event for a room another node runs is
sent there after parsing (:class:`Router`), and that node resolves, authorizes and runs it. A
:class:`LiveroomError` becomes ``{"ok": false, "error": ...}``; anything else becomes an
``internal`` ack whose message names the id it was logged under. The connection always lives.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from socketio.exceptions import ConnectionRefusedError as SioConnectionRefused

from liveroom.auth import Identity, TokenService, accept_language_region
from liveroom.errors import Conflict, Internal, Invalid, LiveroomError, RateLimited, error_body
from liveroom.logs import log_context
from liveroom.permissions import authorize
from liveroom.ratelimit import PER_IP, RateLimits, ip_key
from liveroom.rooms.fanout import user_channel
from liveroom.signaling.payloads import Payload, parse
from liveroom.signaling.registry import Ack, EventContext, EventRegistry, Handler
from liveroom.signaling.tally import Tally
from liveroom.signaling.transport import LiveroomSocketServer
from liveroom.users.service import UserDirectory

logger = logging.getLogger(__name__)

_Answer = TypeVar("_Answer", Ack, Ack | None)


@dataclass
class Connection:
    """One connected socket: who it is and how many of its events are in progress."""

    sid: str
    identity: Identity
    remote: str | None
    region: str | None = None
    """From the browser's ``Accept-Language``: a market for whoever has no better one."""
    inflight: int = 0


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent an event, from which socket — on this node or, forwarded, on another."""

    sid: str
    identity: Identity
    remote: str | None = None
    region: str | None = None


class Router(Protocol):
    """Several nodes: runs an event where its room is run. ``None``: run it here."""

    async def route(
        self, caller: Caller, event: str, handler: Handler[Any], payload: Payload, data: Any
    ) -> Ack | None: ...


Here = Callable[[Handler[Any], Payload], Awaitable[bool]]
"""Several nodes: whether a forwarded event, parsed, is for this node to run (``False``: its
room is run elsewhere now, or not to be acted on here yet)."""

ConnectGuard = Callable[[Identity], Awaitable[None]]
"""Runs before a connection is accepted; raising a :class:`LiveroomError` refuses it."""
DisconnectHook = Callable[[Connection], Awaitable[None]]


class Signaling:
    """The Socket.IO edge of the server: connections, and events routed through the registry."""

    def __init__(
        self,
        sio: LiveroomSocketServer,
        registry: EventRegistry,
        tokens: TokenService,
        limits: RateLimits,
        users: UserDirectory,
        inflight_limit: int,
    ) -> None:
        self.sio = sio
        self.registry = registry
        self._tokens = tokens
        self._limits = limits
        self._users = users
        self._inflight_limit = inflight_limit
        self.connections: dict[str, Connection] = {}
        self._running = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._closing = False
        self._by_user: dict[str, set[str]] = {}
        self.connect_guards: list[ConnectGuard] = []
        self.disconnect_hooks: list[DisconnectHook] = []
        self.router: Router | None = None
        # The registry bounds the names; the limit is only a backstop.
        self.events_in = Tally(lambda name: name in registry.handlers, limit=1000)
        """Events received, by name: the registry's names, any other as ``other``."""
        self.refusals = Tally()
        """Events answered with an error, by its code (``internal`` included)."""
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        sio.on("*", self.on_event)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        request = environ.get("aiohttp.request")
        remote = request.remote if request is not None else None
        languages = request.headers.get("Accept-Language") if request is not None else None
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            identity = self._verified(token, remote)
            self._limits.charge("connects", identity.user_id, remote)
            for guard in self.connect_guards:
                await guard(identity)
        except LiveroomError as e:
            logger.info("refused connection %s from %s: %s", sid, remote, e.message)
            raise SioConnectionRefused(e.message) from None
        self.connections[sid] = Connection(sid, identity, remote, accept_language_region(languages))
        self._by_user.setdefault(identity.user_id, set()).add(sid)
        # What is for the user wherever they are connected (several nodes: on every node).
        await self.sio.enter_room(sid, user_channel(identity.user_id))
        self._users.seen(identity)
        logger.debug("user %s connected as %s", identity.user_id, sid)

    def _verified(self, token: Any, remote: str | None) -> Identity:
        """The token's identity; a refused token still counts against its address's connects
        (a guesser is slowed down like anyone)."""
        try:
            return self._tokens.verify(token)
        except LiveroomError:
            self._limits.hit("connects" + PER_IP, ip_key(remote))
            raise

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.connections.pop(sid, None)
        if conn is None:
            return
        sids = self._by_user.get(conn.identity.user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._by_user[conn.identity.user_id]
        logger.debug("user %s disconnected %s (%s)", conn.identity.user_id, sid, reason)
        for hook in self.disconnect_hooks:
            try:
                await hook(conn)
            except Exception:
                logger.exception(
                    "disconnect hook failed for user %s",
                    conn.identity.user_id,
                    extra={"user_id": conn.identity.user_id},
                )

    async def on_event(self, event: str, sid: str, *args: Any) -> Ack:
        self.events_in.add(event)
        conn = self.connections.get(sid)
        if conn is None:  # an event racing its own disconnect
            return error_body(Invalid("not connected"))
        if self._closing:
            return error_body(Conflict("the server is shutting down: reconnect and send it again"))
        # Every line logged while this event is handled names its user and room.
        with log_context(user_id=conn.identity.user_id, room_id=_room_named(args)):
            return await self._answered(event, conn.identity, self._dispatch(conn, event, args))

    async def run_forwarded(
        self,
        caller: Caller,
        event: str,
        data: Any,
        *,
        charge: bool = True,
        here: Here | None = None,
    ) -> Ack | None:
        """An event a socket on another node sent, for a room this node runs: parsed again,
        then authorized and run as if the socket were here (the sender charged its per-socket
        limits). The whole ack, ``ok`` included; ``None`` when ``here`` said the event is not
        this node's to run (nothing was done: the sender asks the room's node again)."""

        async def forwarded() -> Ack | None:
            handler = self.registry.handlers.get(event)
            if handler is None:
                raise Invalid(f"unknown event {event[:64]!r}")
            payload = parse(handler.payload, data)
            if here is not None and not await here(handler, payload):
                return None
            return {"ok": True, **await self.run(caller, handler, payload, charge=charge)}

        with log_context(user_id=caller.identity.user_id, room_id=_room_named((data,))):
            return await self._answered(event, caller.identity, forwarded())

    async def _answered(
        self, event: str, identity: Identity, work: Awaitable[_Answer]
    ) -> _Answer | Ack:
        """The ack of ``work``: a refusal as its error, anything else as ``internal``, logged."""
        try:
            return await work
        except LiveroomError as e:
            self.refusals.add(e.code)
            return error_body(e)
        except Exception:
            self.refusals.add("internal")
            error_id = uuid.uuid4().hex[:12]
            logger.exception(
                "internal error %s handling %s from user %s", error_id, event, identity.user_id
            )
            return error_body(Internal(f"internal error, logged as {error_id}"))

    async def _dispatch(self, conn: Connection, event: str, args: tuple[Any, ...]) -> Ack:
        self._limits.charge("events", conn.identity.user_id, conn.remote)
        if conn.inflight >= self._inflight_limit:
            raise RateLimited("too many events in progress", retry_after=0.5)
        handler = self.registry.handlers.get(event) if isinstance(event, str) else None
        if handler is None:
            raise Invalid(f"unknown event {str(event)[:64]!r}")
        if len(args) > 1:
            raise Invalid("an event carries one payload object")
        data = args[0] if args else {}
        payload = parse(handler.payload, data)
        conn.inflight += 1
        self._running += 1
        self._quiet.clear()
        try:
            caller = Caller(conn.sid, conn.identity, conn.remote, conn.region)
            if self.router is not None:
                routed = await self.router.route(caller, event, handler, payload, data)
                if routed is not None:
                    return routed
            return {"ok": True, **await self.run(caller, handler, payload)}
        finally:
            conn.inflight -= 1
            self._running -= 1
            if not self._running:
                self._quiet.set()

    async def run(
        self, caller: Caller, handler: Handler[Any], payload: Payload, *, charge: bool = True
    ) -> Ack:
        """Resolve where the caller stands, authorize, charge the event's own limit, run."""
        identity = caller.identity
        subject = await self.registry.resolvers[handler.rule.scope](identity, payload)
        authorize(
            handler.rule,
            subject.actor,
            target=subject.target,
            is_self=subject.is_self,
            granted_role=subject.granted_role,
        )
        if handler.limit is not None and charge:
            self._limits.charge(handler.limit, identity.user_id, caller.remote)
        ctx = EventContext(caller.sid, identity, subject, caller.remote, caller.region)
        return await handler.run(ctx, payload)

    @property
    def closing(self) -> bool:
        """Shutting down: new events are refused."""
        return self._closing

    async def drain(self, timeout: float) -> None:
        """Shutdown: refuse new events (``conflict``: nothing done, send it again after
        reconnecting) and wait, at most ``timeout`` seconds, for those in progress to be
        answered, so every write a client was told about is also acknowledged."""
        self._closing = True
        try:
            async with asyncio.timeout(timeout):  # real work in progress, not the product's clock
                await self._quiet.wait()
        except TimeoutError:
            logger.warning("shutdown: %d events still in progress are cut off", self._running)

    def sids_of_user(self, user_id: str) -> set[str]:
        """This node's sockets of ``user_id``."""
        return set(self._by_user.get(user_id, ()))

    async def disconnect_all(self) -> None:
        """Close every socket (shutdown): clients see a server disconnect and reconnect later."""
        # Not engineio's disconnect-all: it waits for each socket's queue to drain, which never
        # happens for a socket whose peer is closing at the same moment.
        for socket in list(self.sio.eio.sockets.values()):
            if not socket.closed and not socket.closing:
                await socket.close(wait=False)


def _room_named(args: tuple[Any, ...]) -> str | None:
    """The ``room_id`` an event's payload names, for its log lines (not validated here: the
    handler's parse does that)."""
    payload = args[0] if len(args) == 1 else None
    room_id = payload.get("room_id") if isinstance(payload, dict) else None
    return room_id if isinstance(room_id, str) and 0 < len(room_id) <= 64 else None
