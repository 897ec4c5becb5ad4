"""The stage's values, commands and events: plain frozen data, no logic.

:func:`liveroom.rooms.model.apply` takes a :class:`RoomState` and a command, and returns the next
state with the events that tell the service what to send and persist.

Only the stage is here: host, co-hosts, moderators, speakers, mutes, raised hands, invitations,
bans and seats held for members who lost their connection. The audience is counted elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

from liveroom.permissions import Role

# --- values ------------------------------------------------------------------------------------


class RoomStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class QaMode(StrEnum):
    PREMODERATED = "premoderated"
    OPEN = "open"
    OFF = "off"


class PlaylistMode(StrEnum):
    HOST = "host"
    OPEN = "open"


class PlaylistOutput(StrEnum):
    CLIENTS = "clients"
    ROOM = "room"  # DJ mode: the playlist plays into the program mix


class OnHostLeave(StrEnum):
    HANDOVER = "handover"
    END = "end"


@dataclass(frozen=True, slots=True)
class RoomSettings:
    qa_mode: QaMode = QaMode.PREMODERATED
    playlist_mode: PlaylistMode = PlaylistMode.HOST
    playlist_output: PlaylistOutput = PlaylistOutput.CLIENTS
    recording: bool = True
    """The program mix is kept and becomes the replay when the room ends."""
    on_host_leave: OnHostLeave = OnHostLeave.HANDOVER
    qa_return_to_audience: bool = True
    """A fan brought on stage for a question goes back to the audience when it is answered."""


@dataclass(frozen=True, slots=True)
class StageLimits:
    """Seats, queue length and grace periods. Pending invitations and pre-assignments take seats."""

    max_cohosts: int = 2
    max_speakers: int = 10
    """Besides the host and the co-hosts."""
    max_moderators: int = 10
    max_requests: int = 500
    speaker_grace_ms: int = 30_000
    """How long a co-host, moderator or speaker keeps their seat after losing the connection."""
    host_grace_ms: int = 60_000


DEFAULT_LIMITS = StageLimits()


@dataclass(frozen=True, slots=True)
class UserInfo:
    """PROTOCOL.md's User."""

    id: str
    name: str
    verified: bool = False


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sent a command, from their token. ``admin`` acts in any room as its host."""

    id: str
    name: str
    verified: bool = False
    admin: bool = False

    @property
    def user(self) -> UserInfo:
        return UserInfo(self.id, self.name, self.verified)


SERVER = Actor(id="", name="liveroom")
"""The actor to pass with :class:`Expire`, which nobody sends (the actor is ignored)."""


@dataclass(frozen=True, slots=True)
class Invitation:
    """A pending ``stage:invite``: ``user_id`` may accept ``role``, offered by ``by``."""

    user_id: str
    role: Role
    by: str


@dataclass(frozen=True, slots=True)
class StaffAssignment:
    """A co-host or moderator named at creation, who gets the role whenever they join."""

    user_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class Away:
    """A stage member who lost their connection; their seat is held until ``deadline_ms``."""

    user_id: str
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class RoomState:
    """The small, immutable stage state of one room. Lists are in stage order (oldest first).

    ``people`` holds the :class:`UserInfo` of everyone the state refers to (host, stage, raised
    hands, invitees) and nobody else. ``version`` grows by one with every accepted change.
    """

    id: str
    title: str
    host: str
    status: RoomStatus
    created_at: int
    topics: tuple[str, ...] = ()
    market: str | None = None
    scheduled_for: int | None = None
    started_at: int | None = None
    ended_at: int | None = None
    cohosts: tuple[str, ...] = ()
    moderators: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    muted: frozenset[str] = frozenset()
    requests: tuple[str, ...] = ()
    invites: tuple[Invitation, ...] = ()
    banned: frozenset[str] = frozenset()
    staff_assignments: tuple[StaffAssignment, ...] = ()
    away: tuple[Away, ...] = ()
    people: tuple[UserInfo, ...] = ()
    settings: RoomSettings = field(default_factory=RoomSettings)
    version: int = 0


# --- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartRoom:
    """``room:start``: a scheduled room goes live (host). ``host_present``: whether the host is
    in the room now (the service knows); if not, they hold their seat for the host's grace
    period, as when a live room is created for a host who has not joined yet."""

    host_present: bool = True


@dataclass(frozen=True, slots=True)
class UpdateRoom:
    """``room:update`` (host): fields left ``None`` keep their value."""

    title: str | None = None
    qa_mode: QaMode | None = None
    playlist_mode: PlaylistMode | None = None
    playlist_output: PlaylistOutput | None = None
    recording: bool | None = None
    on_host_leave: OnHostLeave | None = None
    qa_return_to_audience: bool | None = None


@dataclass(frozen=True, slots=True)
class Join:
    """``room:join``: gives back a held seat, and pre-assigned staff their role."""


@dataclass(frozen=True, slots=True)
class Leave:
    """``room:leave``: seat, raised hand and invitation go at once; the host hands over or ends."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The actor's last socket in the room closed: stage members keep their seat for a grace
    period, listeners leave."""


@dataclass(frozen=True, slots=True)
class Expire:
    """The server settles every grace period with ``deadline_ms <= now_ms`` (see
    :func:`~liveroom.rooms.model.next_deadline`)."""


@dataclass(frozen=True, slots=True)
class EndRoom:
    """``room:end`` (host)."""


@dataclass(frozen=True, slots=True)
class RaiseHand:
    """``stage:request``: a listener asks to speak; the queue is kept oldest first."""


@dataclass(frozen=True, slots=True)
class CancelHand:
    """``stage:cancel``."""


@dataclass(frozen=True, slots=True)
class Approve:
    """``stage:approve``: a raised hand becomes a speaker."""

    user_id: str


@dataclass(frozen=True, slots=True)
class Invite:
    """``stage:invite``: offer ``role`` (speaker, cohost or moderator) to ``user_id``.

    ``invitee`` is that user as the service found them present in the room, or ``None`` when
    they are not there (refused with NotFound unless they hold a seat).
    """

    user_id: str
    role: Role
    invitee: UserInfo | None = None


@dataclass(frozen=True, slots=True)
class Accept:
    """``stage:accept``: the invitee takes the offered role."""


@dataclass(frozen=True, slots=True)
class Decline:
    """``stage:decline``."""


@dataclass(frozen=True, slots=True)
class Demote:
    """``stage:demote``: back to the audience (by authority, or self); withdraws an invitation."""

    user_id: str


@dataclass(frozen=True, slots=True)
class Mute:
    """``stage:mute`` (by authority, or self)."""

    user_id: str


@dataclass(frozen=True, slots=True)
class Unmute:
    """``stage:unmute``: self only — there is no way to unmute someone else."""


@dataclass(frozen=True, slots=True)
class Remove:
    """``room:remove``: out of the room; with ``ban`` they cannot come back."""

    user_id: str
    ban: bool = False


Command: TypeAlias = (
    StartRoom
    | UpdateRoom
    | Join
    | Leave
    | Disconnect
    | Expire
    | EndRoom
    | RaiseHand
    | CancelHand
    | Approve
    | Invite
    | Accept
    | Decline
    | Demote
    | Mute
    | Unmute
    | Remove
)


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageChanged:
    """Send ``room:state`` to staff now; to the audience (≤ 2/s) when ``audience``; and at once to
    each of ``users``, whose own ``you`` (role, hand, invitation) changed."""

    audience: bool
    users: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """Persist the role; tell the media engine (``muted``: the microphone in the new role) and send
    the user ``rtc:restart``. ``None``: not in the room (before joining, after leaving)."""

    user_id: str
    old_role: Role | None
    new_role: Role | None
    muted: bool


@dataclass(frozen=True, slots=True)
class MuteChanged:
    """Tell the media engine: a muted speaker is out of every mix within one tick."""

    user_id: str
    muted: bool


@dataclass(frozen=True, slots=True)
class Invited:
    """Send ``stage:invited`` to the invitee."""

    user_id: str
    role: Role
    by: UserInfo


@dataclass(frozen=True, slots=True)
class Removed:
    """Send ``room:removed`` to the user and take them out of the room; persist the ban."""

    user_id: str
    ban: bool


@dataclass(frozen=True, slots=True)
class GraceStarted:
    """A seat is held: issue :class:`Expire` at ``deadline_ms``."""

    user_id: str
    role: Role
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class RoomStarted:
    """Persist; send ``room:started`` to those who set a reminder."""

    room_id: str
    title: str


@dataclass(frozen=True, slots=True)
class RoomUpdated:
    """Persist the title and settings."""

    title: str
    settings: RoomSettings


@dataclass(frozen=True, slots=True)
class RoomEnded:
    """Persist; send ``room:ended``; close the media."""

    room_id: str


@dataclass(frozen=True, slots=True)
class HostHandedOver:
    old_host: str
    new_host: str


class AuditAction(StrEnum):
    UPDATE = "update"
    APPROVE = "approve"
    INVITE = "invite"
    WITHDRAW_INVITE = "withdraw_invite"
    ACCEPT = "accept"
    DEMOTE = "demote"
    MUTE = "mute"
    REMOVE = "remove"
    BAN = "ban"
    HANDOVER = "handover"
    END = "end"


@dataclass(frozen=True, slots=True)
class Audited:
    """Write a moderation action to the audit log. ``actor_id`` is ``None`` when the server acted
    (a grace period ran out)."""

    action: AuditAction
    actor_id: str | None
    target_id: str | None
    detail: str = ""


Event: TypeAlias = (
    StageChanged
    | RoleChanged
    | MuteChanged
    | Invited
    | Removed
    | GraceStarted
    | RoomStarted
    | RoomUpdated
    | RoomEnded
    | HostHandedOver
    | Audited
)
