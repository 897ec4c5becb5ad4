"""Rooms and the stage: the pure model applied under a per-room lock, written, then told.

Every stage command goes through :meth:`RoomService.apply`: take the room's lock (python-socketio
runs one client's events concurrently), run :func:`liveroom.rooms.model.apply`, write what must
survive (room, roles, bans, audit entries) and only then acknowledge and emit. Presence is O(1)
per join; counts, the audience's view and reactions are coalesced by a ticker.

With several nodes a room is run by the node holding its lease, and only while it holds it: under
the room's lock, before anything is written, every command checks that this node still runs the
room (:attr:`RoomService.runs`, and the room not leaving: :meth:`RoomService.let_go` marks it
before it waits for the lock). Commands that were queued on the lock of a room this node lost
answer :class:`NotRunHere` — nothing written, nothing told — and a forwarded one is sent again
to where the room runs now.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from liveroom.auth import Identity
from liveroom.blocks.model import BlockIndex, BlockLookup
from liveroom.clock import Clock
from liveroom.config import DEFAULT_REACTIONS
from liveroom.errors import Conflict, Forbidden, Gone, Internal, Invalid, LiveroomError, NotFound
from liveroom.permissions import STAFF, Role, Standing
from liveroom.rooms import model
from liveroom.rooms.fanout import (
    Due,
    Emitter,
    ReactionsDue,
    counts_without,
    room_channel,
    user_channel,
)
from liveroom.rooms.participation import ParticipationLog
from liveroom.rooms.presence import Member, Presence
from liveroom.rooms.stage import (
    SERVER,
    Actor,
    Audited,
    Away,
    Command,
    Disconnect,
    Expire,
    Invite,
    Invited,
    Join,
    Leave,
    Remove,
    Removed,
    RoomEnded,
    RoomSettings,
    RoomStarted,
    RoomState,
    RoomStatus,
    StaffAssignment,
    StageChanged,
    StageLimits,
    StartRoom,
    UserInfo,
)
from liveroom.rooms.store import SqlRoomStore, StageStore, durable_changed, report_view, restored
from liveroom.rooms.views import room_view, snapshot, you_view
from liveroom.tasks import KeyedLocks, Periodic, Spawned

logger = logging.getLogger(__name__)

TICK_S = 0.1
RECENTLY_ENDED = 10_000
_PLAIN_YOU = {"role": Role.LISTENER.value, "hand_raised": False, "invited_as": None}


@dataclass(frozen=True, slots=True)
class RoomsConfig:
    limits: StageLimits = field(default_factory=StageLimits)
    reactions: tuple[str, ...] = DEFAULT_REACTIONS
    ended_listing_limit: int = 50


@dataclass(frozen=True, slots=True)
class NewRoom:
    title: str
    topics: tuple[str, ...] = ()
    scheduled_for: int | None = None
    market: str | None = None
    settings: RoomSettings | None = None
    staff: tuple[StaffAssignment, ...] = ()


SidsOfUser = Callable[[str], set[str]]
IsConnected = Callable[[str], bool]


Claim = Callable[[str], Awaitable[bool]]
"""Several nodes: take a room for this node (``False``: another node has it)."""
Runs = Callable[[str], bool]
"""Several nodes: whether this node may act on an open room now (it holds a lease it trusts)."""
Release = Callable[[str], Awaitable[None]]
"""Several nodes: give back a room this node claimed but did not open."""
ServerBanned = Callable[[Identity, str], Awaitable[None]]
"""Several nodes: told of a server-wide ban made here, to make it on every other node."""


class StageObserver(Protocol):
    """Told about every room that opens, every stage change and every member who leaves (the
    media engine follows the stage this way without the service knowing about audio)."""

    def room_opened(self, state: RoomState) -> None: ...

    async def stage_changed(self, state: RoomState, events: Iterable[Any]) -> None: ...

    async def member_left(self, room_id: str, user_id: str) -> None: ...


class NotRunHere(Conflict):
    """Several nodes: this node does not run the room any more (its lease lapsed or was lost,
    or the room is leaving it). Nothing was done; the event is sent to where the room runs now
    (a socket of this node is told to send it again)."""

    def __init__(self) -> None:
        super().__init__("the room is moving to another node; send it again")


def actor_of(identity: Identity) -> Actor:
    return Actor(identity.user_id, identity.name, identity.verified, identity.grants.admin)


MAX_ADMINS = 10_000
"""Admin ids remembered (they rank as host as targets); tokens with the grant are the
operator's, so this is never reached in practice, and bounded all the same."""


class FirstJoin(Protocol):
    """Told when a user's first socket enters a room (listener counting)."""

    def __call__(self, room_id: str, user_id: str, *, guest: bool, market: str | None) -> None: ...


class RoomStart(Protocol):
    """Told when a room goes live: one created live (nobody was reminded), or a scheduled one
    started, with the users who set a reminder (webhooks: an outside push service tells them)."""

    def __call__(self, state: RoomState, reminded: Sequence[str]) -> None: ...


class RoomService:
    def __init__(
        self,
        live: StageStore,
        records: SqlRoomStore,
        presence: Presence,
        participation: ParticipationLog,
        emitter: Emitter,
        sids_of_user: SidsOfUser,
        connected: IsConnected,
        clock: Clock,
        config: RoomsConfig,
        blocks: BlockLookup | None = None,
    ) -> None:
        self._live = live
        self._records = records
        self.presence = presence
        self._participation = participation
        self._emit = emitter
        self._sids_of_user = sids_of_user
        self._connected = connected
        self._clock = clock
        self.config = config
        self._blocks: BlockLookup = blocks if blocks is not None else BlockIndex()
        self._lock = KeyedLocks()
        # Rooms that ended lately: commands that were queued on their lock answer `gone`.
        self._ended: OrderedDict[str, None] = OrderedDict()
        # Several nodes: rooms let go (or leaving) lately: those commands answer `NotRunHere`.
        self._let_go: OrderedDict[str, None] = OrderedDict()
        self._due = Due()
        self._server_bans: set[str] = set()
        self._tasks = Spawned("rooms")
        self._stopping = False
        self._ticker = Periodic("rooms-ticker", TICK_S, self.tick, clock)
        self.observers: list[StageObserver] = []
        self.first_joins: list[FirstJoin] = []
        self.starts: list[RoomStart] = []
        self._admins: set[str] = set()  # users seen with the admin grant (operator-issued: few)
        self.claim: Claim | None = None
        """Several nodes: a room is opened here only if this node could claim it."""
        self.release: Release | None = None
        """Several nodes: a room claimed that could not be opened here is given back."""
        self.runs: Runs = lambda _room_id: True
        """Several nodes: the timers act only on rooms whose lease this node trusts."""
        self.server_banned: list[ServerBanned] = []
        """Several nodes: told of each server-wide ban made here, before the admin's ack."""

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild open rooms from SQL (stage members away until they rejoin) and start ticking."""
        now = self._clock.now_ms()
        limits = self.config.limits
        for stored in await self._records.open_rooms():
            if self.claim is not None and not await self.claim(stored.id):
                continue  # another node runs it
            if not self.runs(stored.id):  # lost while it was claimed (a pause): not opened
                await self._give_back(stored.id)
                continue
            state = restored(stored, now, limits.speaker_grace_ms, limits.host_grace_ms)
            self._live.put(state)
            for observer in self.observers:
                observer.room_opened(state)
        self._server_bans = await self._records.server_bans()
        self._ticker.start()
        self._participation.start()

    async def admit(self, identity: Identity) -> None:
        """Connect guard: a user banned server-wide cannot connect at all. Admins are noted as
        they connect: as targets they rank as host."""
        if identity.user_id in self._server_bans:
            raise Forbidden("you are banned from this server")
        self._note_admin(identity)

    def _note_admin(self, identity: Identity) -> None:
        if identity.grants.admin and len(self._admins) < MAX_ADMINS:
            self._admins.add(identity.user_id)

    async def stop(self) -> None:
        """Stop ticking. Sockets closing after this are a shutdown, not members leaving: their
        seats stay in SQL and are held again when the server comes back."""
        if self._stopping:
            return
        self._stopping = True
        await self._ticker.stop()
        await self._tasks.stop()
        self._participation.close_all()
        await self._participation.stop()

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` after the current event's ack is queued (it is queued before any task
        created during the handler runs), owned by this service."""
        self._tasks.spawn(coro)

    # --- reading ----------------------------------------------------------------------------

    def get(self, room_id: str) -> RoomState | None:
        """An open room's state, or ``None``."""
        return self._live.get(room_id)

    def state(self, room_id: str) -> RoomState:
        """An open room; ``Gone`` for one that ended on this node lately, else ``NotFound``."""
        state = self._live.get(room_id)
        if state is None:
            if room_id in self._ended:
                raise Gone("the room has ended")
            raise NotFound("no such room")
        return state

    async def find(self, room_id: str) -> RoomState:
        """A live or scheduled room from memory, an ended one from SQL; ``NotFound`` else."""
        state = self._live.get(room_id)
        if state is None:
            state = await self._records.get(room_id)
        if state is None:
            raise NotFound("no such room")
        return state

    async def standing(self, identity: Identity, room_id: str) -> Standing:
        """The user's standing in an open room (for the permission check)."""
        state = self._live.get(room_id)
        if state is None:
            if room_id not in self._ended:
                await self.find(room_id)  # NotFound for unknown ids
            raise Gone("the room has ended")
        # Staff act by their role, joined or not (a host starts a scheduled room from the
        # lobby); anyone else is a member only while present.
        role = model.role_of(state, identity.user_id)
        if role not in STAFF:
            present = self.presence.is_present(room_id, identity.user_id)
            role = (role or Role.LISTENER) if present else None
        return Standing(
            role=role,
            banned=self.is_banned(state, identity.user_id),
            admin=identity.grants.admin,
            host_grant=identity.grants.host,
            playlist_open=state.settings.playlist_mode.value == "open",
        )

    def target_standing(self, room_id: str, user_id: str, *, moderated: bool) -> Standing:
        """The target of an event. Of a moderating one (mute, demote, remove), an admin ranks
        as host: nobody in a room moderates them. An offer (approve, invite) goes by role."""
        state = self.state(room_id)
        role = model.role_of(state, user_id) or Role.LISTENER
        return Standing(role=role, admin=moderated and user_id in self._admins)

    def is_banned(self, state: RoomState, user_id: str) -> bool:
        return user_id in state.banned or user_id in self._server_bans

    def view_for(
        self, state: RoomState, user_id: str | None, *, admin: bool = False
    ) -> dict[str, Any]:
        return snapshot(state, user_id, self.presence.count(state.id), admin=admin)

    def listing(self, status: RoomStatus) -> list[dict[str, Any]]:
        rooms = [s for s in self._live if s.status is status]
        rooms.sort(key=lambda s: -self.presence.count(s.id))
        return [self.view_for(s, None) for s in rooms]

    def live_listeners(self) -> dict[str, int]:
        """Each live room's members present, as ``room:count`` tells them (metrics)."""
        return {s.id: self.presence.count(s.id) for s in self._live if s.status is RoomStatus.LIVE}

    async def ended_listing(self) -> list[dict[str, Any]]:
        rooms = await self._records.ended(self.config.ended_listing_limit)
        return [snapshot(s, None, 0) for s in rooms]

    # --- commands ---------------------------------------------------------------------------

    async def create(self, identity: Identity, new: NewRoom) -> dict[str, Any]:
        now = self._clock.now_ms()
        if new.scheduled_for is not None and new.scheduled_for <= now:
            raise Invalid("scheduled_for must be in the future")
        state = model.new_room(
            secrets.token_hex(8),
            UserInfo(identity.user_id, identity.name, identity.verified),
            now,
            title=new.title,
            topics=new.topics,
            market=new.market,
            scheduled_for=new.scheduled_for,
            settings=new.settings,
            staff=new.staff,
            limits=self.config.limits,
        )
        if state.status is RoomStatus.LIVE:
            # Until the host joins, the room is held for them as for a host who dropped.
            grace = self.config.limits.host_grace_ms
            state = replace(state, away=(Away(state.host, now + grace),))
        if self.claim is not None and not await self.claim(state.id):
            raise Internal("the room could not be opened on this node; try again")
        try:
            await self._records.save(state, now_ms=now)
        except BaseException:
            await self._give_back(state.id)
            raise
        if not self._runs_here(state.id):
            # Its lease was lost while it was written (a long pause): it is not opened here. Its
            # row is taken over from SQL like any room whose node is gone.
            await self._give_back(state.id)
            raise Internal("the room could not be opened on this node; try again")
        # No await from the check on: a lease lost from here finds the room open and lets it go.
        self._live.put(state)
        for observer in self.observers:
            observer.room_opened(state)
        if state.status is RoomStatus.LIVE:
            self._started(state, ())
        logger.info(
            "user %s created room %s (%s)",
            identity.user_id,
            state.id,
            state.status,
            extra={"room_id": state.id, "user_id": identity.user_id},
        )
        return self.view_for(state, identity.user_id)

    async def adopt(self, state: RoomState) -> bool:
        """Several nodes: run a room another node ran until it died or handed it over, its stage
        as that node last wrote it. Nobody is present yet: they are gathered next
        (:meth:`join`), then :meth:`settle`. ``False`` if it is open here already;
        :class:`NotRunHere` if this node lost the room's lease meanwhile (it is not opened)."""
        async with self._lock(state.id):
            if self._live.get(state.id) is not None:
                return False
            if not self.runs(state.id):
                raise NotRunHere()
            self._let_go.pop(state.id, None)
            self._live.put(state)
            for observer in self.observers:
                observer.room_opened(state)
        logger.info("room %s adopted at version %d", state.id, state.version)
        return True

    async def let_go(self, room_id: str) -> RoomState | None:
        """Several nodes: another node runs ``room_id`` from now on (this one lost its lease,
        or hands the room over). The room leaves this node without a write or a word to anyone
        — it goes on there — and its members' presence here with it (their sockets stay in the
        room's Socket.IO room, so what its new node sends reaches them). The state it had here,
        or ``None`` if it was not open here. The features are told by the caller.

        The room is marked leaving before the lock is taken: commands queued on it before this
        answer :class:`NotRunHere` when their turn comes, with nothing written or told."""
        self._let_go[room_id] = None
        self._let_go.move_to_end(room_id)
        while len(self._let_go) > RECENTLY_ENDED:
            self._let_go.popitem(last=False)
        async with self._lock(room_id):
            state = self._live.get(room_id)
            if state is None:
                return None
            self._live.drop(room_id)
            for member in list(self.presence.members(room_id)):
                for sid in list(member.sids):
                    self.presence.exit(room_id, sid, member.user_id)
            self._participation.close_room(room_id)
            self._due.forget(room_id)
        self._lock.drop(room_id)
        logger.info(
            "room %s let go at version %d: another node runs it",
            room_id,
            state.version,
            extra={"room_id": room_id},
        )
        return state

    async def stored(self, room_id: str) -> RoomState | None:
        """An open room as SQL has it, as after a restart (several nodes: a taken-over room
        whose stage its node never wrote to Redis)."""
        limits = self.config.limits
        for stored in await self._records.open_rooms():
            if stored.id == room_id:
                now = self._clock.now_ms()
                return restored(stored, now, limits.speaker_grace_ms, limits.host_grace_ms)
        return None

    async def settle(self, room_id: str) -> None:
        """After an adoption's gathering: whoever holds a place in the room and was found on no
        node left as if their connection dropped (a stage member gets their grace period)."""
        state = self._live.get(room_id)
        if state is None:
            return
        away = {a.user_id for a in state.away}
        for person in state.people:
            if person.id in away or self.presence.is_present(room_id, person.id):
                continue
            try:
                await self.apply(room_id, Disconnect(), Actor(person.id, person.name))
            except LiveroomError as e:
                logger.info("room %s: settling %s: %s", room_id, person.id, e.message)

    async def join(
        self,
        sid: str,
        identity: Identity,
        room_id: str,
        market: str | None,
        region: str | None = None,
    ) -> dict[str, Any]:
        """``market``: what the client asked for; ``region``: its browser's language region.
        The token's market wins; a guest cannot choose its own (rankings per market must not be
        gamed), so its market is at most its region."""
        actor = actor_of(identity)
        market = identity.market or (None if identity.guest else market) or region
        self._note_admin(identity)
        async with self._lock(room_id):
            state = self._run_here(room_id)
            if self.is_banned(state, identity.user_id):
                raise Forbidden("you are banned from this room")
            state, events = await self._apply_locked(state, Join(), actor)
            # The socket may have closed while this join waited (lock, SQL). Checked with no
            # await before presence.enter: from here on its disconnect sees this room.
            if not self._connected(sid):
                if not self.presence.is_present(room_id, identity.user_id):
                    state, more = await self._apply_locked(state, Disconnect(), actor)
                    events += more
                await self._tell(state, events)
                raise Gone("the connection closed while joining")
            first = self.presence.enter(
                room_id,
                sid,
                identity.user_id,
                identity.name,
                verified=identity.verified,
                market=market,
                now_ms=self._clock.now_ms(),
                admin=identity.grants.admin,
            )
        await self._emit.enter_room(sid, room_channel(room_id))
        if first:
            role = model.role_of(state, identity.user_id) or Role.LISTENER
            self._participation.joined(room_id, identity.user_id, role.value, market)
            for hook in self.first_joins:
                hook(room_id, identity.user_id, guest=identity.guest, market=market)
        await self._tell(state, events)
        logger.debug(
            "user %s joined room %s",
            identity.user_id,
            room_id,
            extra={"room_id": room_id, "user_id": identity.user_id},
        )
        view = self.view_for(state, identity.user_id, admin=identity.grants.admin)
        self._later(self._emit.emit("room:state", view, to=sid))
        return view

    async def leave(self, sid: str, identity: Identity, room_id: str) -> None:
        """``room:leave`` from one socket: the user leaves when their last socket does."""
        if self._live.get(room_id) is not None:
            self._check_runs(room_id)  # else: the room's node takes them out, not this one
        member = self.presence.exit(room_id, sid, identity.user_id)
        await self._emit.leave_room(sid, room_channel(room_id))
        if member is not None:
            await self._departed(room_id, member, Leave())

    async def socket_closed(self, sid: str, user_id: str) -> None:
        for room_id in self.presence.rooms_of(sid):
            member = self.presence.exit(room_id, sid, user_id)
            if member is None or self._stopping:
                continue
            try:
                await self._departed(room_id, member, Disconnect())
            except NotRunHere:  # its new node hears of the close from the socket's node
                logger.info(
                    "user %s left room %s as it left this node",
                    user_id,
                    room_id,
                    extra={"room_id": room_id, "user_id": user_id},
                )
            except Exception:  # one room's trouble must not leave ghosts in the others
                logger.exception(
                    "user %s leaving room %s failed",
                    user_id,
                    room_id,
                    extra={"room_id": room_id, "user_id": user_id},
                )

    async def _departed(self, room_id: str, member: Member, command: Command) -> None:
        logger.debug(
            "user %s left room %s",
            member.user_id,
            room_id,
            extra={"room_id": room_id, "user_id": member.user_id},
        )
        self._participation.left(room_id, member.user_id)
        await self._left(room_id, member.user_id)
        state = self._live.get(room_id)
        # Plain listeners are not in the stage state: their leaving costs no lock and no apply.
        if state is None or not any(p.id == member.user_id for p in state.people):
            return
        actor = Actor(member.user_id, member.name, member.verified)
        async with self._lock(room_id):
            if self.presence.is_present(room_id, member.user_id):
                return  # back on another socket while this waited: they have not left
            current = self._live.get(room_id)
            if current is None:
                return  # the room ended meanwhile
            try:
                state, events = await self._apply_locked(current, command, actor)
            except Gone:
                return
        await self._tell(state, events)

    async def apply(self, room_id: str, command: Command, actor: Actor) -> RoomState:
        """Run one stage command for ``actor``: write, then tell. Raises on refusal."""
        async with self._lock(room_id):
            state, events = await self._apply_locked(self._run_here(room_id), command, actor)
        await self._tell(state, events)
        return state

    async def start_room(self, room_id: str, actor: Actor) -> RoomState:
        """``room:start``: the scheduled room goes live, its host on stage — present, or away
        within their grace period until they join."""
        async with self._lock(room_id):
            state = self._run_here(room_id)
            present = self.presence.is_present(room_id, state.host)
            state, events = await self._apply_locked(state, StartRoom(present), actor)
        await self._tell(state, events)
        return state

    async def invite(self, room_id: str, actor: Actor, user_id: str, role: Role) -> None:
        member = self.presence.member(room_id, user_id)
        invitee = UserInfo(member.user_id, member.name, member.verified) if member else None
        await self.apply(room_id, Invite(user_id, role, invitee), actor)

    async def remind(self, identity: Identity, room_id: str, on: bool) -> None:
        async with self._lock(room_id):  # a start waits for this write, so it sees it
            if self._run_here(room_id).status is not RoomStatus.SCHEDULED:
                raise Conflict("reminders are for scheduled rooms")
            await self._records.set_reminder(room_id, identity.user_id, on, self._clock.now_ms())

    async def ban_everywhere(self, actor: Identity, user_id: str) -> None:
        """An admin's server-wide ban: written, then made here (:meth:`banned_everywhere`) and,
        with several nodes, on every other node before this returns."""
        await self._records.ban_everywhere(user_id, actor.user_id, self._clock.now_ms())
        await self.banned_everywhere(actor, user_id)
        for hook in self.server_banned:
            await hook(actor, user_id)

    async def banned_everywhere(self, actor: Identity, user_id: str) -> None:
        """A server-wide ban (written already): from now on the user cannot connect or join
        here; they are removed (and banned) from every room run here that they are in or hold a
        seat in, through the stage model like any removal; a room they host is handed over or
        ended as if they left; their sockets here are closed."""
        self._server_bans.add(user_id)
        for state in list(self._live):
            seated = any(p.id == user_id for p in state.people)
            if not seated and not self.presence.is_present(state.id, user_id):
                continue
            try:
                if state.host == user_id:
                    member = self.presence.member(state.id, user_id)
                    await self._kick(state.id, user_id, ban=True)
                    name = member.name if member else user_id
                    await self.apply(state.id, Leave(), Actor(user_id, name))
                else:
                    await self.apply(state.id, Remove(user_id, ban=True), actor_of(actor))
            except (Gone, NotRunHere):
                continue  # ended meanwhile, or moved: its new node was told of the ban too
            except Exception:
                logger.exception(
                    "server ban of user %s in room %s",
                    user_id,
                    state.id,
                    extra={"room_id": state.id, "user_id": user_id},
                )
        for sid in self._sids_of_user(user_id):
            await self._emit.disconnect(sid)

    async def report(
        self,
        identity: Identity,
        room_id: str,
        user_id: str | None,
        question_id: str | None,
        reason: str,
    ) -> None:
        """A member reports a user or a question to the room's moderators (kept in SQL)."""
        if (user_id is None) == (question_id is None):
            raise Invalid("report either a user_id or a question_id")
        if user_id == identity.user_id:
            raise Invalid("you cannot report yourself")
        row = await self._records.add_report(
            room_id, identity.user_id, user_id, question_id, reason, self._clock.now_ms()
        )
        logger.info(
            "user %s reported user %s in room %s",
            identity.user_id,
            user_id,
            room_id,
            extra={"room_id": room_id, "user_id": identity.user_id},
        )
        state = self._live.get(room_id)
        if state is not None:  # the staff present see it in their queue at once
            payload = {"room_id": room_id, "report": report_view(row)}
            for staff_id in self.staff_ids(state):
                for sid in self.presence.sids_of(room_id, staff_id):
                    self._later(self._emit.emit("room:reported", payload, to=sid))

    async def audit_log(self, room_id: str) -> list[dict[str, Any]]:
        """Every moderation action in the room, oldest first (the host's export)."""
        return [
            {
                "at": e.at,
                "actor_id": e.actor_id,
                "action": e.action,
                "target_id": e.target_id,
                "detail": e.detail,
            }
            for e in await self._records.audit_log(room_id)
        ]

    async def reports(self, room_id: str) -> list[dict[str, Any]]:
        """Members' reports in the room, oldest first (the staff's queue)."""
        return [report_view(r) for r in await self._records.reports(room_id)]

    def react(self, room_id: str, emoji: str, user_id: str) -> None:
        if emoji not in self.config.reactions:
            raise Invalid(f"emoji must be one of {' '.join(self.config.reactions)}")
        # Whose tap it was matters only to someone who blocks them: everyone else's is a count.
        blocked = user_id if self._blocks.watched(user_id) else None
        self._due.add_reaction(room_id, emoji, blocked)

    def members(
        self, room_id: str, query: str, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        state = self.state(room_id)
        page, next_cursor = self.presence.search(room_id, query, cursor)
        return [
            {
                "id": m.user_id,
                "name": m.name,
                "verified": m.verified,
                "role": (model.role_of(state, m.user_id) or Role.LISTENER).value,
            }
            for m in page
        ], next_cursor

    # --- applying and telling ---------------------------------------------------------------

    def _run_here(self, room_id: str) -> RoomState:
        """Under the room's lock: the open room, if this node still runs it. ``NotRunHere`` for
        a room leaving this node or let go lately (the command was queued behind its letting
        go), ``Gone`` for one ended here lately, else ``NotFound``."""
        if self._live.get(room_id) is None and room_id in self._let_go:
            raise NotRunHere()
        state = self.state(room_id)
        self._check_runs(room_id)
        return state

    def _runs_here(self, room_id: str) -> bool:
        """This node still runs the room: its lease held and trusted, the room not leaving
        (always, with one node)."""
        return room_id not in self._let_go and self.runs(room_id)

    def _check_runs(self, room_id: str) -> None:
        if not self._runs_here(room_id):
            raise NotRunHere()

    async def _give_back(self, room_id: str) -> None:
        if self.release is not None:
            await self.release(room_id)

    async def _apply_locked(
        self, state: RoomState, command: Command, actor: Actor
    ) -> tuple[RoomState, list[Any]]:
        # Checked again at each write: a join applies twice, a lease lapses while SQL is slow.
        self._check_runs(state.id)
        now = self._clock.now_ms()
        new, events = model.apply(state, command, actor, now, self.config.limits)
        bans = [(e.user_id, actor.id or None) for e in events if isinstance(e, Removed) and e.ban]
        audit = [e for e in events if isinstance(e, Audited)]
        if bans or audit or durable_changed(state, new):
            await self._records.save(new, new_bans=bans, audit=audit, now_ms=now)
        for entry in audit:
            logger.info(
                "room %s: %s of user %s by %s",
                state.id,
                entry.action.value,
                entry.target_id,
                entry.actor_id or "the server",
                extra={"room_id": state.id, "user_id": entry.target_id},
            )
        if new is state:
            return state, events
        if new.status is RoomStatus.ENDED:
            self._live.drop(new.id)  # from now on the room answers `gone`
            self._ended[new.id] = None
            while len(self._ended) > RECENTLY_ENDED:
                self._ended.popitem(last=False)
        else:
            self._live.put(new)
        return new, events

    async def _tell(self, state: RoomState, events: list[Any]) -> None:
        if events:
            await self._changed(state, events)
        for event in events:
            match event:
                case StageChanged(audience=audience, users=users):
                    if self._due.staff_now(state.id, self._clock.monotonic()):
                        await self._send_staff_views(state)
                    for user_id in users:
                        await self._send_personal(state, user_id)
                    if audience:
                        self._due.mark_audience(state.id)
                case Invited(user_id=user_id, role=role, by=by):
                    payload = {
                        "room_id": state.id,
                        "role": role.value,
                        "by": {"id": by.id, "name": by.name, "verified": by.verified},
                    }
                    for sid in self.presence.sids_of(state.id, user_id):
                        await self._emit.emit("stage:invited", payload, to=sid)
                case Removed(user_id=user_id, ban=ban):
                    await self._kick(state.id, user_id, ban=ban)
                case RoomStarted(room_id=room_id, title=title):
                    self._later(self._announce_start(room_id, title))
                case RoomEnded(room_id=room_id):
                    await self._close(room_id)

    async def _changed(self, state: RoomState, events: list[Any]) -> None:
        for observer in self.observers:
            try:
                await observer.stage_changed(state, events)
            except Exception:  # a feature's trouble must not stop the stage telling people
                logger.exception("%s failed on a stage change", type(observer).__name__)

    async def _left(self, room_id: str, user_id: str) -> None:
        """Tell the features; one failing must not leave the member half gone."""
        for observer in self.observers:
            try:
                await observer.member_left(room_id, user_id)
            except Exception:
                logger.exception("%s failed on a member leaving", type(observer).__name__)

    async def _kick(self, room_id: str, user_id: str, *, ban: bool) -> None:
        sids = self.presence.sids_of(room_id, user_id)
        self.presence.remove_user(room_id, user_id)
        self._participation.left(room_id, user_id)
        await self._left(room_id, user_id)
        for sid in sids:
            await self._emit.emit("room:removed", {"room_id": room_id, "ban": ban}, to=sid)
            await self._emit.leave_room(sid, room_channel(room_id))

    async def _close(self, room_id: str) -> None:
        await self._emit.emit("room:ended", {"room_id": room_id}, room=room_channel(room_id))
        for member in list(self.presence.members(room_id)):
            for sid in list(member.sids):
                self.presence.exit(room_id, sid, member.user_id)
                await self._emit.leave_room(sid, room_channel(room_id))
        self._participation.close_room(room_id)
        self._live.drop(room_id)
        self._due.forget(room_id)
        self._lock.drop(room_id)
        logger.info("room %s ended", room_id, extra={"room_id": room_id})

    async def _announce_start(self, room_id: str, title: str) -> None:
        payload = {"room_id": room_id, "title": title}
        reminded = await self._records.reminded(room_id)
        state = self._live.get(room_id)
        if state is not None:
            self._started(state, reminded)
        for user_id in reminded:  # wherever they are connected
            await self._emit.emit("room:started", payload, room=user_channel(user_id))

    def _started(self, state: RoomState, reminded: Sequence[str]) -> None:
        for hook in self.starts:
            try:
                hook(state, reminded)
            except Exception:  # a hook's trouble must not stop the room starting
                logger.exception("a room-start hook failed for room %s", state.id)

    def staff_ids(self, state: RoomState) -> list[str]:
        """Host, co-hosts, moderators, and admins present (they act as host anywhere)."""
        staff = [state.host, *state.cohosts, *state.moderators]
        return staff + sorted(self.presence.admins(state.id) - set(staff))

    async def _send_staff_views(self, state: RoomState) -> None:
        count = self.presence.count(state.id)
        for user_id in self.staff_ids(state):
            sids = self.presence.sids_of(state.id, user_id)
            if sids:
                view = snapshot(state, user_id, count, admin=True)
                for sid in sids:
                    await self._emit.emit("room:state", view, to=sid)

    async def _send_personal(self, state: RoomState, user_id: str) -> None:
        sids = self.presence.sids_of(state.id, user_id)
        if sids:
            view = snapshot(state, user_id, self.presence.count(state.id))
            for sid in sids:
                await self._emit.emit("room:state", view, to=sid)

    async def _send_audience_view(self, state: RoomState) -> None:
        """One broadcast for plain listeners; personal views for the few whose ``you`` differs
        (they are skipped by the broadcast); staff have theirs already."""
        count = self.presence.count(state.id)
        view = {**room_view(state, count, staff=False), "you": _PLAIN_YOU}
        staff = set(self.staff_ids(state))
        skip: list[str] = []
        personal: list[tuple[str, dict[str, Any]]] = []
        for user_id in {p.id for p in state.people}:
            sids = self.presence.sids_of(state.id, user_id)
            if user_id in staff:
                skip.extend(sids)
                continue
            you = you_view(state, user_id)
            if you != _PLAIN_YOU:
                skip.extend(sids)
                personal.extend((sid, {**view, "you": you}) for sid in sids)
        await self._emit.emit("room:state", view, room=room_channel(state.id), skip_sid=skip)
        for sid, own in personal:
            await self._emit.emit("room:state", own, to=sid)

    # --- the ticker -------------------------------------------------------------------------

    async def tick(self) -> None:
        """Grace periods that ran out; the audience's view, counts and reactions that are due."""
        now_ms, now = self._clock.now_ms(), self._clock.monotonic()
        for state in self._live:
            deadline = model.next_deadline(state)
            if deadline is not None and deadline <= now_ms and self._runs_here(state.id):
                try:
                    await self.apply(state.id, Expire(), SERVER)
                except Exception:
                    logger.exception(
                        "expiring grace periods failed in room %s",
                        state.id,
                        extra={"room_id": state.id},
                    )
        # What is due of a room whose lease is not trusted now is not sent: it may run
        # elsewhere already (it is dropped here once the loss is known).
        for room_id in self._due.staff_due(now):
            open_room = self._live.get(room_id)
            if open_room is not None and self._runs_here(room_id):
                await self._send_staff_views(open_room)
        for room_id in self._due.audience_due(now):
            open_room = self._live.get(room_id)
            if open_room is not None and self._runs_here(room_id):
                await self._send_audience_view(open_room)
        open_ids = {s.id for s in self._live}
        self._due.retain(open_ids)
        self._lock.retain(open_ids)
        counts = ((s.id, self.presence.count(s.id)) for s in self._live if self._runs_here(s.id))
        for room_id, listeners in self._due.counts_due(now, counts):
            await self._emit.emit(
                "room:count",
                {"room_id": room_id, "listeners": listeners},
                room=room_channel(room_id),
            )
        for due in self._due.reactions_due(now):
            if self._runs_here(due.room_id):
                await self._send_reactions(due)

    async def _send_reactions(self, due: ReactionsDue) -> None:
        """One broadcast of the room's taps. A member present who blocks someone who tapped gets
        the counts without those taps instead (nothing when none are left), and is skipped by
        the broadcast: these are the only personal messages, however many people block."""
        hidden: dict[str, list[str]] = {}
        for tapper in due.taps:
            for blocker in self._blocks.blockers_of(tapper):
                hidden.setdefault(blocker, []).append(tapper)
        skip: list[str] = []
        personal: list[tuple[str, dict[str, int]]] = []
        for blocker, tappers in hidden.items():
            sids = self.presence.sids_of(due.room_id, blocker)
            if not sids:
                continue
            skip.extend(sids)
            own = counts_without(due.counts, due.taps, tappers)
            if own:
                personal.extend((sid, own) for sid in sids)
        channel = room_channel(due.room_id)
        payload = {"room_id": due.room_id, "counts": due.counts}
        await self._emit.emit("reactions", payload, room=channel, skip_sid=skip or None)
        for sid, own in personal:
            await self._emit.emit("reactions", {"room_id": due.room_id, "counts": own}, to=sid)
