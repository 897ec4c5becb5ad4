"""What a room's members are told, and how often.

- Staff (host, co-hosts, moderators) get their own ``room:state`` at once after a stage change,
  at most ten a second (:data:`STAFF_INTERVAL_S`): a change within 100 ms of the last view
  goes out on the next tick. A burst of 500 raised hands is then a few views carrying the queue,
  not 500 — which could otherwise fill a host's socket queue and get the host dropped.
- Anyone whose own ``you`` changed gets theirs at once.
- The audience gets one shared view at most twice a second (:data:`AUDIENCE_INTERVAL_S`): one
  broadcast for everyone whose ``you`` is a plain listener's, a personal one for the few whose
  is not (raised hand, invitation, on stage).
- ``room:count`` at most once a second, only when the count changed.
- ``reactions``: the taps since the previous message, about twice a second: one broadcast, and
  a message of its own (skipped by the broadcast) only for a member who blocks someone who
  tapped in that window — the counts without their taps. Taps are told apart by user only for
  users some connected member blocks (:func:`counts_without`); everyone else's are a counter.

:class:`Due` is the pure part: which rooms are owed which message at ``now``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

STAFF_INTERVAL_S = 0.1
AUDIENCE_INTERVAL_S = 0.5
COUNT_INTERVAL_S = 1.0
REACTIONS_INTERVAL_S = 0.5


def room_channel(room_id: str) -> str:
    """The Socket.IO room every member socket of ``room_id`` is in."""
    return f"room:{room_id}"


def user_channel(user_id: str) -> str:
    """The Socket.IO room every socket of ``user_id`` is in, on whichever node (a reminder, a
    changed block list: one emit reaches all of them)."""
    return f"user:{user_id}"


class Emitter(Protocol):
    """The part of python-socketio's ``AsyncServer`` the rooms feature uses."""

    async def emit(
        self,
        event: str,
        data: Any = None,
        to: str | None = None,
        room: str | None = None,
        skip_sid: list[str] | str | None = None,
    ) -> None: ...

    async def enter_room(self, sid: str, room: str) -> None: ...

    async def leave_room(self, sid: str, room: str) -> None: ...

    async def disconnect(self, sid: str) -> None: ...


@dataclass
class Throttle:
    """A message owed at most once per ``interval`` seconds: sent at once when the last one is
    old enough, else owed until :meth:`take_due` finds its time has come."""

    interval: float
    owed: bool = False
    sent_at: float = float("-inf")

    def now_or_later(self, now: float) -> bool:
        if now - self.sent_at >= self.interval:
            self.owed, self.sent_at = False, now
            return True
        self.owed = True
        return False

    def take_due(self, now: float) -> bool:
        if self.owed and now - self.sent_at >= self.interval:
            self.owed, self.sent_at = False, now
            return True
        return False


@dataclass
class RoomDue:
    """What one room owes its members, and when it last paid."""

    staff: Throttle = field(default_factory=lambda: Throttle(STAFF_INTERVAL_S))
    audience: Throttle = field(default_factory=lambda: Throttle(AUDIENCE_INTERVAL_S))
    count_sent: int = -1
    count_sent_at: float = float("-inf")
    reactions: Counter[str] = field(default_factory=Counter)
    taps: dict[str, Counter[str]] = field(default_factory=dict)
    """The part of ``reactions`` tapped by users someone blocks, by user."""
    reactions_sent_at: float = float("-inf")


@dataclass(frozen=True, slots=True)
class ReactionsDue:
    """A room's taps since its previous ``reactions``: all of them, and those of blocked users."""

    room_id: str
    counts: dict[str, int]
    taps: dict[str, dict[str, int]]


def counts_without(
    counts: Mapping[str, int], taps: Mapping[str, Mapping[str, int]], hidden: Iterable[str]
) -> dict[str, int]:
    """``counts`` less the taps of the ``hidden`` users; emoji left at none are left out."""
    left = Counter(counts)
    for user_id in hidden:
        left.subtract(taps.get(user_id, {}))
    return {emoji: n for emoji, n in left.items() if n > 0}


class Due:
    """Per room: is a staff view, an audience view, a count or a reactions message due?"""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomDue] = {}

    def _room(self, room_id: str) -> RoomDue:
        return self.rooms.setdefault(room_id, RoomDue())

    def staff_now(self, room_id: str, now: float) -> bool:
        """A stage change: True if staff views go out now, else they are owed for later."""
        return self._room(room_id).staff.now_or_later(now)

    def staff_due(self, now: float) -> list[str]:
        return [room_id for room_id, r in self.rooms.items() if r.staff.take_due(now)]

    def mark_audience(self, room_id: str) -> None:
        self._room(room_id).audience.owed = True

    def audience_due(self, now: float) -> list[str]:
        return [room_id for room_id, r in self.rooms.items() if r.audience.take_due(now)]

    def add_reaction(self, room_id: str, emoji: str, blocked_user: str | None = None) -> None:
        """A tap; ``blocked_user``: who tapped, when some connected member blocks them."""
        room = self._room(room_id)
        room.reactions[emoji] += 1
        if blocked_user is not None:
            room.taps.setdefault(blocked_user, Counter())[emoji] += 1

    def forget(self, room_id: str) -> None:
        self.rooms.pop(room_id, None)

    def retain(self, open_rooms: set[str]) -> None:
        """Forget rooms that are no longer open (a late change may have re-created one)."""
        for room_id in [r for r in self.rooms if r not in open_rooms]:
            del self.rooms[room_id]

    def counts_due(self, now: float, counts: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        due = []
        for room_id, count in counts:
            r = self._room(room_id)
            if count != r.count_sent and now - r.count_sent_at >= COUNT_INTERVAL_S:
                r.count_sent, r.count_sent_at = count, now
                due.append((room_id, count))
        return due

    def reactions_due(self, now: float) -> list[ReactionsDue]:
        due = []
        for room_id, r in self.rooms.items():
            if r.reactions and now - r.reactions_sent_at >= REACTIONS_INTERVAL_S:
                taps = {user_id: dict(c) for user_id, c in r.taps.items()}
                due.append(ReactionsDue(room_id, dict(r.reactions), taps))
                r.reactions.clear()
                r.taps.clear()
                r.reactions_sent_at = now
        return due
