"""Who is in which room, on which sockets: O(1) per join and leave, no I/O.

A user with several sockets counts once. The audience is only here, never in the stage state:
a 10,000-listener room is a dict of 10,000 entries and a counter, and nobody is told about each
join.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_PAGE = 50


@dataclass(slots=True)
class Member:
    user_id: str
    name: str
    verified: bool
    market: str | None
    joined_at: int
    admin: bool = False
    sids: set[str] = field(default_factory=set)


@dataclass(slots=True)
class RoomPresence:
    members: dict[str, Member] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)


class Presence:
    """Members of every room on this node, and the rooms of every socket."""

    def __init__(self) -> None:
        self._rooms: dict[str, RoomPresence] = {}
        self._rooms_of_sid: dict[str, set[str]] = {}

    def enter(
        self,
        room_id: str,
        sid: str,
        user_id: str,
        name: str,
        *,
        verified: bool,
        market: str | None,
        now_ms: int,
        admin: bool = False,
    ) -> bool:
        """Add ``sid`` to the room; True when ``user_id`` was not present before."""
        room = self._rooms.setdefault(room_id, RoomPresence())
        member = room.members.get(user_id)
        first = member is None
        if member is None:
            member = room.members[user_id] = Member(user_id, name, verified, market, now_ms, admin)
            if admin:
                room.admins.add(user_id)
        member.sids.add(sid)
        self._rooms_of_sid.setdefault(sid, set()).add(room_id)
        return first

    def exit(self, room_id: str, sid: str, user_id: str) -> Member | None:
        """Remove ``sid``; the member when that was their last socket in the room."""
        rooms = self._rooms_of_sid.get(sid)
        if rooms is not None:
            rooms.discard(room_id)
            if not rooms:
                del self._rooms_of_sid[sid]
        room = self._rooms.get(room_id)
        member = room.members.get(user_id) if room else None
        if room is None or member is None:
            return None
        member.sids.discard(sid)
        if member.sids:
            return None
        del room.members[user_id]
        room.admins.discard(user_id)
        if not room.members:
            del self._rooms[room_id]
        return member

    def remove_user(self, room_id: str, user_id: str) -> Member | None:
        """Take ``user_id`` out of the room with all their sockets (removed, room ended)."""
        room = self._rooms.get(room_id)
        member = room.members.get(user_id) if room else None
        if member is None:
            return None
        for sid in list(member.sids):
            self.exit(room_id, sid, user_id)
        return member

    def rooms_of(self, sid: str) -> set[str]:
        return set(self._rooms_of_sid.get(sid, ()))

    def is_present(self, room_id: str, user_id: str) -> bool:
        room = self._rooms.get(room_id)
        return room is not None and user_id in room.members

    def member(self, room_id: str, user_id: str) -> Member | None:
        room = self._rooms.get(room_id)
        return room.members.get(user_id) if room else None

    def admins(self, room_id: str) -> set[str]:
        """Admins present (they act as host in any room)."""
        room = self._rooms.get(room_id)
        return set(room.admins) if room else set()

    def count(self, room_id: str) -> int:
        room = self._rooms.get(room_id)
        return len(room.members) if room else 0

    def members(self, room_id: str) -> Iterator[Member]:
        room = self._rooms.get(room_id)
        return iter(list(room.members.values())) if room else iter(())

    def sids_of(self, room_id: str, user_id: str) -> set[str]:
        member = self.member(room_id, user_id)
        return set(member.sids) if member else set()

    def search(
        self, room_id: str, query: str, cursor: str | None, limit: int = MAX_PAGE
    ) -> tuple[list[Member], str | None]:
        """Members whose name contains ``query`` (case-insensitive), by name then id, a page after
        ``cursor`` (the last name/id of the previous page)."""
        needle = query.casefold()
        matches = sorted(
            (m for m in self.members(room_id) if needle in m.name.casefold()),
            key=lambda m: (m.name.casefold(), m.user_id),
        )
        if cursor is not None:
            matches = [m for m in matches if _key(m) > cursor]
        page = matches[: min(limit, MAX_PAGE)]
        more = len(matches) > len(page)
        return page, (_key(page[-1]) if more and page else None)


def _key(member: Member) -> str:
    return f"{member.name.casefold()}\x00{member.user_id}"
