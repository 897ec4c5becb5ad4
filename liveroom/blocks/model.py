"""A user's block list and the index of who blocks whom among connected users. No I/O.

A block is one user hiding another one's reactions and questions from their own view, everywhere
(also when they are staff). The blocked user is never told, and nobody else's view changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from liveroom.errors import Full, Invalid

MAX_BLOCKS = 1000
"""The most users one user may block."""

_NONE: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BlockedUser:
    """Someone on a block list, named as the server last knew them, and when they were blocked."""

    id: str
    name: str
    verified: bool
    at: int


def needs_change(
    blocker_id: str, user_id: str, blocked: Mapping[str, int], on: bool, limit: int = MAX_BLOCKS
) -> bool:
    """Whether ``user:block`` changes anything (``False``: it is already so, and is accepted).

    Raises :class:`Invalid` for blocking oneself and :class:`Full` for a block past ``limit``.
    """
    if user_id == blocker_id:
        raise Invalid("user_id: you cannot block yourself")
    if not on:
        return user_id in blocked
    if user_id in blocked:
        return False
    if len(blocked) >= limit:
        raise Full(f"you block {limit} users already, the most there can be: unblock someone first")
    return True


class BlockLookup(Protocol):
    """What rooms and Q&A ask of the blocks: in memory, for connected blockers only."""

    def blocked_by(self, user_id: str) -> Mapping[str, int]:
        """Whom ``user_id`` blocks, with when (epoch ms); empty for a user who blocks nobody."""
        ...

    def blockers_of(self, user_id: str) -> Set[str]:
        """Connected users who block ``user_id``."""
        ...

    def watched(self, user_id: str) -> bool:
        """Whether some connected user blocks ``user_id``."""
        ...


class BlockIndex:
    """Who blocks whom, for the blockers it holds (those connected), both ways in O(1).

    Only users with at least one block are held: a connected user who blocks nobody costs
    nothing here.
    """

    def __init__(self) -> None:
        self._lists: dict[str, dict[str, int]] = {}
        self._blockers: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._lists)

    def holds(self, blocker_id: str) -> bool:
        return blocker_id in self._lists

    def put(self, blocker_id: str, blocked: Mapping[str, int]) -> None:
        """Hold ``blocker_id``'s whole list (replacing what was held)."""
        self.drop(blocker_id)
        for user_id, at in blocked.items():
            self.block(blocker_id, user_id, at)

    def drop(self, blocker_id: str) -> None:
        for user_id in self._lists.pop(blocker_id, {}):
            self._forget(user_id, blocker_id)

    def block(self, blocker_id: str, user_id: str, at: int) -> None:
        self._lists.setdefault(blocker_id, {})[user_id] = at
        self._blockers.setdefault(user_id, set()).add(blocker_id)

    def unblock(self, blocker_id: str, user_id: str) -> None:
        blocked = self._lists.get(blocker_id)
        if blocked is None or blocked.pop(user_id, None) is None:
            return
        self._forget(user_id, blocker_id)
        if not blocked:
            del self._lists[blocker_id]

    def _forget(self, user_id: str, blocker_id: str) -> None:
        blockers = self._blockers.get(user_id)
        if blockers is not None:
            blockers.discard(blocker_id)
            if not blockers:
                del self._blockers[user_id]

    def blocked_by(self, user_id: str) -> Mapping[str, int]:
        blocked = self._lists.get(user_id)
        return MappingProxyType(blocked) if blocked else _NONE

    def blockers_of(self, user_id: str) -> Set[str]:
        return frozenset(self._blockers.get(user_id, ()))

    def watched(self, user_id: str) -> bool:
        return user_id in self._blockers
