"""Block lists: SQL is the truth; the lists of connected blockers are held in memory
(:class:`~liveroom.blocks.model.BlockIndex`) for the rooms' and the Q&A's fan-out.

A connect costs nothing more for a user who blocks nobody: who blocks anyone at all is read once,
and only those users' lists are loaded, as they connect — before the connection is accepted, so
none of their events runs before their list is held. A list is dropped when its user's last
socket closes. A change is written before its ack; then the user's sockets are told
(``user:blocks``) and sent what they see again (the Q&A's full lists), at once and then at most
once per :data:`REFRESH_GAP_S` however fast someone clicks block and unblock.

Several nodes: a room's node hides what its members block, so it holds the list of every blocker
present in its rooms, whichever node their socket is on: loaded before their first event runs
there (:meth:`BlockService.admit`), let go when they have no socket left there. A change made on
one node is told to the others (:attr:`BlockService.changed`), which read the list again
(:meth:`BlockService.reload`) and send their members what they see again; ``user:blocks`` goes to
the user's sockets on every node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from liveroom.auth import Identity
from liveroom.blocks import model
from liveroom.blocks.model import MAX_BLOCKS, BlockedUser, BlockIndex
from liveroom.blocks.store import BlockStore
from liveroom.clock import Clock
from liveroom.errors import Internal, NotFound
from liveroom.rooms.fanout import Emitter, user_channel
from liveroom.tasks import KeyedLocks, Spawned
from liveroom.users.store import UserRecord

logger = logging.getLogger(__name__)

REFRESH_GAP_S = 0.5
"""After telling a user their list changed, further changes wait this long to be told, together."""


class UserLookup(Protocol):
    async def find(self, user_id: str) -> UserRecord | None: ...


SidsOfUser = Callable[[str], set[str]]
"""The user's sockets this node serves: its own, and (several nodes) those in rooms it runs."""
Changed = Callable[[Identity], Awaitable[None]]
ViewChanged = Callable[[Identity, set[str]], Awaitable[None]]
"""Told, with the user's sockets, that what the user may see changed: send it again."""


def blocked_view(user: BlockedUser) -> dict[str, Any]:
    """One entry of ``blocked`` in acks and ``user:blocks``: a User, and when it was blocked."""
    return {"id": user.id, "name": user.name, "verified": user.verified, "at": user.at}


class BlockService:
    def __init__(
        self,
        store: BlockStore,
        users: UserLookup,
        emitter: Emitter,
        sids_of_user: SidsOfUser,
        clock: Clock,
        limit: int = MAX_BLOCKS,
    ) -> None:
        self.index = BlockIndex()
        self._store = store
        self._users = users
        self._emit = emitter
        self._sids_of_user = sids_of_user
        self._clock = clock
        self._limit = limit
        self._blockers: set[str] | None = None
        """Everyone who blocks someone (read from SQL at the first connect, then kept)."""
        self._blockers_read = asyncio.Lock()
        self._lock = KeyedLocks()
        self._tasks = Spawned("blocks")
        self._telling: dict[str, Identity] = {}
        self._owed: set[str] = set()
        self.view_changed: list[ViewChanged] = []
        self.changed: list[Changed] = []
        """Told of each user whose list changed here (several nodes: the others read it again)."""

    async def stop(self) -> None:
        await self._tasks.stop()

    async def _known_blockers(self) -> set[str]:
        async with self._blockers_read:
            if self._blockers is None:
                self._blockers = await self._store.blockers()
            return self._blockers

    # --- connections -----------------------------------------------------------------------

    async def admit(self, identity: Identity) -> None:
        """Connect guard: hold a blocker's list before their connection is accepted."""
        user_id = identity.user_id
        try:
            if self.index.holds(user_id) or user_id not in await self._known_blockers():
                return
            async with self._lock(user_id):
                if not self.index.holds(user_id):
                    self.index.put(user_id, await self._store.blocks_of(user_id))
        except (SQLAlchemyError, OSError):
            # Without their list they would see whom they block: no connection rather than that.
            logger.exception("loading the block list of user %s failed", user_id)
            raise Internal("your block list could not be loaded; try again shortly") from None

    async def socket_closed(self, user_id: str) -> None:
        """Their last socket closed: let go of their list (SQL keeps it). Under their lock, so
        a change being written meanwhile finds the list gone and does not bring back half."""
        if self._sids_of_user(user_id):
            return
        async with self._lock(user_id):
            if not self._sids_of_user(user_id):
                self.index.drop(user_id)
        self._lock.release(user_id)

    # --- reading -----------------------------------------------------------------------------

    async def listing(self, user_id: str) -> list[dict[str, Any]]:
        """Whom ``user_id`` blocks, latest first."""
        return [blocked_view(u) for u in await self._store.listing(user_id)]

    async def blocks_for(self, user_id: str) -> Mapping[str, int]:
        """Whom ``user_id`` blocks, connected or not (HTTP exports)."""
        if self.index.holds(user_id):
            return self.index.blocked_by(user_id)
        if user_id not in await self._known_blockers():
            return {}
        return await self._store.blocks_of(user_id)

    # --- changing ----------------------------------------------------------------------------

    async def block(self, identity: Identity, user_id: str, on: bool) -> list[dict[str, Any]]:
        """``user:block``: hide (``on``) or show again ``user_id``'s reactions and questions;
        the list as it is now, latest first. Doing what is already so is accepted."""
        blocker = identity.user_id
        known = await self._known_blockers()
        async with self._lock(blocker):
            if not self.index.holds(blocker) and blocker in known:
                self.index.put(blocker, await self._store.blocks_of(blocker))
            current = self.index.blocked_by(blocker)
            changed = model.needs_change(blocker, user_id, current, on, self._limit)
            if changed and on:
                record = await self._users.find(user_id)
                if record is None:
                    raise NotFound("no such user")
                user = BlockedUser(user_id, record.name, record.verified, self._clock.now_ms())
                await self._store.add(blocker, user)
            elif changed:
                await self._store.remove(blocker, user_id)
            # The whole list again from SQL, not the held one patched: it may have been let go
            # (their last socket closed) while this wrote.
            remaining = await self._store.blocks_of(blocker)
            if self._sids_of_user(blocker):
                self.index.put(blocker, remaining)
            else:
                self.index.drop(blocker)
            if remaining:
                known.add(blocker)
            else:
                known.discard(blocker)
            listing = await self._store.listing(blocker)
        if changed:
            logger.info("user %s %s user %s", blocker, "blocked" if on else "unblocked", user_id)
            self._tell_later(identity)
        return [blocked_view(u) for u in listing]

    def _tell_later(self, identity: Identity) -> None:
        """Tell the user's sockets after this ack: now if not told lately, else after the gap."""
        user_id = identity.user_id
        if user_id in self._telling:
            self._telling[user_id] = identity
            self._owed.add(user_id)
            return
        self._telling[user_id] = identity
        self._tasks.spawn(self._tell_until_done(user_id))

    async def _tell_until_done(self, user_id: str) -> None:
        try:
            while True:
                self._owed.discard(user_id)
                await self._tell(self._telling[user_id])
                await self._clock.sleep(REFRESH_GAP_S)
                if user_id not in self._owed:
                    return
        finally:
            self._telling.pop(user_id, None)
            self._owed.discard(user_id)

    async def _tell(self, identity: Identity) -> None:
        user_id = identity.user_id
        payload = {"blocked": await self.listing(user_id)}
        await self._emit.emit("user:blocks", payload, room=user_channel(user_id))
        await self._views_changed(identity)
        for tell in self.changed:
            try:
                await tell(identity)
            except Exception:
                logger.exception("telling the other nodes of user %s's blocks failed", user_id)

    async def _views_changed(self, identity: Identity) -> None:
        sids = self._sids_of_user(identity.user_id)
        if not sids:
            return
        for hook in self.view_changed:
            try:
                await hook(identity, sids)
            except Exception:  # one feature's trouble must not keep the others from updating
                logger.exception("telling user %s of their blocks failed", identity.user_id)

    async def reload(self, identity: Identity) -> None:
        """Several nodes: the user's list changed on another node. Read again (if they are
        here: connected, or in a room run here), and what they see here sent again."""
        user_id = identity.user_id
        known = await self._known_blockers()
        async with self._lock(user_id):
            blocked = await self._store.blocks_of(user_id)
            if blocked:
                known.add(user_id)
            else:
                known.discard(user_id)
            if self._sids_of_user(user_id):
                self.index.put(user_id, blocked)
            else:
                self.index.drop(user_id)
        self._lock.release(user_id)
        await self._views_changed(identity)
