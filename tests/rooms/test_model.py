"""The stage model: every transition and refusal, as users of a live room would notice them.

Pure tests: no event loop, no sleeping; time is an explicit ``now`` in epoch milliseconds.
"""

from __future__ import annotations

import ast
import dataclasses
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from liveroom.errors import (
    Conflict,
    Forbidden,
    Full,
    Gone,
    Invalid,
    InvalidState,
    LiveroomError,
    NotFound,
)
from liveroom.permissions import Role
from liveroom.rooms import model, stage, views
from liveroom.rooms.model import apply, away_deadline, new_room, next_deadline, role_of
from liveroom.rooms.stage import (
    DEFAULT_LIMITS,
    SERVER,
    Accept,
    Actor,
    Approve,
    AuditAction,
    Audited,
    Away,
    CancelHand,
    Command,
    Decline,
    Demote,
    Disconnect,
    EndRoom,
    Event,
    Expire,
    GraceStarted,
    HostHandedOver,
    Invitation,
    Invite,
    Invited,
    Join,
    Leave,
    Mute,
    MuteChanged,
    OnHostLeave,
    QaMode,
    RaiseHand,
    Remove,
    Removed,
    RoleChanged,
    RoomEnded,
    RoomSettings,
    RoomStarted,
    RoomState,
    RoomStatus,
    RoomUpdated,
    StaffAssignment,
    StageChanged,
    StageLimits,
    StartRoom,
    Unmute,
    UpdateRoom,
    UserInfo,
)
from liveroom.rooms.views import snapshot

T0 = 1_700_000_000_000
HOUR = 3_600_000
HOST, COHOST, MODERATOR, SPEAKER, LISTENER = (
    Role.HOST,
    Role.COHOST,
    Role.MODERATOR,
    Role.SPEAKER,
    Role.LISTENER,
)


def user(uid: str) -> UserInfo:
    return UserInfo(uid, uid.capitalize())


def act(uid: str) -> Actor:
    """The user ``uid``; the one called "admin" holds the admin grant."""
    return Actor(uid, uid.capitalize(), admin=uid == "admin")


def check_invariants(state: RoomState, limits: StageLimits = DEFAULT_LIMITS) -> None:
    """What must hold in every state a user could ever see."""
    seated = [state.host, *state.cohosts, *state.moderators, *state.speakers]
    assert len(seated) == len(set(seated)), "one role per user"
    assert len(state.requests) == len(set(state.requests)) <= limits.max_requests
    assert not set(state.requests) & set(seated), "only listeners have a raised hand"
    assert state.muted <= {state.host, *state.cohosts, *state.speakers}, "mutes are for mics"
    away = [a.user_id for a in state.away]
    assert len(away) == len(set(away))
    assert set(away) <= set(seated)
    invited = [i.user_id for i in state.invites]
    assert len(invited) == len(set(invited)), "one invitation per user"
    for invitation in state.invites:
        current = role_of(state, invitation.user_id)
        assert current is None or invitation.role.rank > current.rank
    referenced = {*seated, *state.requests, *invited}
    assert sorted(p.id for p in state.people) == sorted(referenced)
    caps = {
        COHOST: (state.cohosts, limits.max_cohosts),
        MODERATOR: (state.moderators, limits.max_moderators),
        SPEAKER: (state.speakers, limits.max_speakers),
    }
    for role, (holders, cap) in caps.items():
        taken = set(holders) | {i.user_id for i in state.invites if i.role is role}
        taken |= {a.user_id for a in state.staff_assignments if a.role is role}
        assert len(taken) <= cap, f"{role} seats over the limit"
    assert not (set(seated) | set(state.requests) | set(invited)) & state.banned
    assert (state.status is RoomStatus.ENDED) == (state.ended_at is not None)
    if state.status is RoomStatus.ENDED:
        assert state.cohosts == state.moderators == state.speakers == ()
        assert state.requests == ()
        assert state.invites == ()


def make_room(
    *,
    cohosts: Iterable[str] = (),
    moderators: Iterable[str] = (),
    speakers: Iterable[str] = (),
    requests: Iterable[str] = (),
    invites: Iterable[tuple[str, Role, str]] = (),
    muted: Iterable[str] = (),
    banned: Iterable[str] = (),
    staff: Iterable[StaffAssignment] = (),
    on_host_leave: OnHostLeave = OnHostLeave.HANDOVER,
    scheduled: bool = False,
) -> RoomState:
    """A room created by "host" a second before T0, with this stage (microphones open)."""
    base = new_room(
        "r1",
        user("host"),
        T0 - 1000,
        title="Late night talk",
        scheduled_for=T0 + HOUR if scheduled else None,
        settings=RoomSettings(on_host_leave=on_host_leave),
        staff=staff,
    )
    state = replace(
        base,
        cohosts=tuple(cohosts),
        moderators=tuple(moderators),
        speakers=tuple(speakers),
        requests=tuple(requests),
        invites=tuple(Invitation(u, r, by) for u, r, by in invites),
        muted=frozenset(muted),
        banned=frozenset(banned),
    )
    referenced = {state.host, *state.cohosts, *state.moderators, *state.speakers}
    referenced.update(state.requests, (i.user_id for i in state.invites))
    state = replace(state, people=tuple(user(u) for u in sorted(referenced)))
    check_invariants(state)
    return state


ROOM = make_room(
    cohosts=("co1", "co2"),
    moderators=("mod1", "mod2"),
    speakers=("sp1", "sp2"),
    requests=("fan1", "fan2"),
)
"""Host, two co-hosts, two moderators, two speakers, two raised hands; fan3 just listens."""

ONE_COHOST = make_room(cohosts=("co1",), moderators=("mod1",), speakers=("sp1",))
SCHEDULED = make_room(scheduled=True)


def run(
    state: RoomState,
    command: Command,
    actor: str,
    now: int = T0,
    limits: StageLimits = DEFAULT_LIMITS,
) -> tuple[RoomState, list[Event]]:
    """``apply``, checking what must hold after every accepted command."""
    new, events = apply(state, command, act(actor), now, limits)
    check_invariants(new, limits)
    if new is state:
        assert not any(isinstance(e, StageChanged) for e in events)
    else:
        assert new != state
        assert new.version == state.version + 1
    last_role = {e.user_id: e.new_role for e in events if isinstance(e, RoleChanged)}
    for uid, new_role in last_role.items():
        assert role_of(new, uid) == (None if new_role in (None, LISTENER) else new_role)
    return new, events


def domain(events: list[Event]) -> list[Event]:
    return [e for e in events if not isinstance(e, StageChanged)]


def stage_changed(events: list[Event]) -> StageChanged | None:
    found = [e for e in events if isinstance(e, StageChanged)]
    assert len(found) <= 1
    return found[0] if found else None


# --- creating a room ---------------------------------------------------------------------------


def test_a_new_room_is_live_at_once_with_the_hosts_microphone_off() -> None:
    room = new_room("r1", user("host"), T0, title="  Album night  ", topics=("music",))
    assert room.status is RoomStatus.LIVE
    assert room.started_at == T0
    assert room.title == "Album night"
    assert role_of(room, "host") is HOST
    assert room.muted == {"host"}
    assert room.version == 0


def test_a_room_with_a_time_is_scheduled() -> None:
    room = new_room("r1", user("host"), T0, title="Premiere", scheduled_for=T0 + HOUR)
    assert room.status is RoomStatus.SCHEDULED
    assert room.started_at is None
    assert room.scheduled_for == T0 + HOUR


def create(
    title: str = "Talk", scheduled_for: int | None = None, staff: Iterable[StaffAssignment] = ()
) -> RoomState:
    return new_room("r1", user("host"), T0, title=title, scheduled_for=scheduled_for, staff=staff)


@pytest.mark.parametrize(
    ("create_room", "error"),
    [
        pytest.param(lambda: create(title="   "), Invalid, id="empty title"),
        pytest.param(lambda: create(scheduled_for=T0), Invalid, id="scheduled in the past"),
        pytest.param(
            lambda: create(staff=[StaffAssignment("a", SPEAKER)]),
            Invalid,
            id="staff must be staff roles",
        ),
        pytest.param(
            lambda: create(staff=[StaffAssignment("host", COHOST)]), Invalid, id="host as staff"
        ),
        pytest.param(
            lambda: create(staff=[StaffAssignment("a", COHOST), StaffAssignment("a", MODERATOR)]),
            Invalid,
            id="staff twice",
        ),
        pytest.param(
            lambda: create(staff=[StaffAssignment(u, COHOST) for u in ("a", "b", "c")]),
            Full,
            id="three co-hosts",
        ),
    ],
)
def test_creating_a_room_refuses(
    create_room: Callable[[], RoomState], error: type[LiveroomError]
) -> None:
    with pytest.raises(error):
        create_room()


# --- refusals ----------------------------------------------------------------------------------

COHOST_INVITED = make_room(
    cohosts=("co1",),
    moderators=("mod1",),
    speakers=("sp1",),
    invites=[("fan3", COHOST, "host")],
)
NINE_SPEAKERS_ONE_INVITED = make_room(
    speakers=[f"sp{i}" for i in range(1, 10)],
    requests=("fan1",),
    invites=[("fan9", SPEAKER, "host")],
)
ASSIGNED = make_room(staff=[StaffAssignment("agent", COHOST)], moderators=("mod1",))

REFUSALS = [
    # room lifecycle
    pytest.param(ROOM, StartRoom(), "host", InvalidState, id="start a live room"),
    pytest.param(SCHEDULED, StartRoom(), "co1", Forbidden, id="only the host starts"),
    pytest.param(ROOM, UpdateRoom(title="x"), "co1", Forbidden, id="only the host updates"),
    pytest.param(ROOM, UpdateRoom(title=" "), "host", Invalid, id="update to an empty title"),
    pytest.param(ROOM, EndRoom(), "co1", Forbidden, id="only the host ends"),
    pytest.param(SCHEDULED, Join(), "fan1", InvalidState, id="join before the start"),
    pytest.param(SCHEDULED, RaiseHand(), "fan1", InvalidState, id="raise a hand before the start"),
    pytest.param(make_room(banned=["fan1"]), Join(), "fan1", Forbidden, id="banned rejoin"),
    # raised hands
    pytest.param(ROOM, RaiseHand(), "sp1", Forbidden, id="a speaker raises a hand"),
    pytest.param(ROOM, RaiseHand(), "mod1", Forbidden, id="a moderator raises a hand"),
    pytest.param(ROOM, CancelHand(), "sp1", Forbidden, id="a speaker cancels a hand"),
    pytest.param(ROOM, Approve("fan1"), "sp1", Forbidden, id="a speaker approves"),
    pytest.param(ROOM, Approve("fan1"), "fan2", Forbidden, id="a listener approves"),
    pytest.param(ROOM, Approve("fan3"), "host", Conflict, id="approve without a raised hand"),
    pytest.param(
        NINE_SPEAKERS_ONE_INVITED, Approve("fan1"), "host", Full, id="approve: seats held"
    ),
    # invitations
    pytest.param(ROOM, Invite("fan3", HOST, user("fan3")), "host", Invalid, id="invite as host"),
    pytest.param(
        ROOM, Invite("fan3", LISTENER, user("fan3")), "host", Invalid, id="invite as listener"
    ),
    pytest.param(
        ROOM, Invite("fan3", SPEAKER, user("fan4")), "host", Invalid, id="invitee mismatch"
    ),
    pytest.param(
        ONE_COHOST,
        Invite("sp1", COHOST),
        "co1",
        Forbidden,
        id="co-host cannot invite a co-host",
    ),
    pytest.param(
        ONE_COHOST,
        Invite("fan3", MODERATOR, user("fan3")),
        "mod1",
        Forbidden,
        id="moderator cannot invite a moderator",
    ),
    pytest.param(
        ROOM, Invite("fan3", SPEAKER, user("fan3")), "sp1", Forbidden, id="a speaker invites"
    ),
    pytest.param(
        ROOM, Invite("fan3", SPEAKER, user("fan3")), "fan1", Forbidden, id="a listener invites"
    ),
    pytest.param(ROOM, Invite("host", COHOST), "admin", Forbidden, id="invite the host"),
    pytest.param(ROOM, Invite("fan3", SPEAKER), "host", NotFound, id="invitee not in the room"),
    pytest.param(
        make_room(banned=["fan3"]),
        Invite("fan3", SPEAKER, user("fan3")),
        "host",
        Conflict,
        id="invite a banned user",
    ),
    pytest.param(ROOM, Invite("co1", SPEAKER), "host", Conflict, id="invite a co-host to speak"),
    pytest.param(ROOM, Invite("sp1", SPEAKER), "co1", Conflict, id="invite a speaker to speak"),
    pytest.param(
        NINE_SPEAKERS_ONE_INVITED,
        Invite("fan3", SPEAKER, user("fan3")),
        "host",
        Full,
        id="invite: speaker seats held by an invitation",
    ),
    pytest.param(ROOM, Invite("sp1", COHOST), "host", Full, id="invite a third co-host"),
    pytest.param(
        COHOST_INVITED,
        Invite("sp1", COHOST),
        "host",
        Full,
        id="invite: co-host seat held by an invitation",
    ),
    pytest.param(
        make_room(cohosts=("co1",), staff=[StaffAssignment("agent", COHOST)], speakers=["sp1"]),
        Invite("sp1", COHOST),
        "host",
        Full,
        id="invite: co-host seat held by a pre-assignment",
    ),
    pytest.param(
        COHOST_INVITED,
        Invite("fan3", SPEAKER, user("fan3")),
        "mod1",
        Forbidden,
        id="moderator cannot replace the host's invitation",
    ),
    pytest.param(ROOM, Accept(), "fan3", Conflict, id="accept without an invitation"),
    pytest.param(ROOM, Decline(), "fan3", Conflict, id="decline without an invitation"),
    # demote
    pytest.param(ROOM, Demote("mod2"), "mod1", Forbidden, id="moderator demotes a moderator"),
    pytest.param(ROOM, Demote("co2"), "co1", Forbidden, id="co-host demotes a co-host"),
    pytest.param(ROOM, Demote("co1"), "mod1", Forbidden, id="moderator demotes a co-host"),
    pytest.param(ROOM, Demote("mod1"), "co1", Forbidden, id="co-host demotes a moderator"),
    pytest.param(ROOM, Demote("sp2"), "sp1", Forbidden, id="speaker demotes a speaker"),
    pytest.param(ROOM, Demote("host"), "co1", Forbidden, id="co-host demotes the host"),
    pytest.param(ROOM, Demote("host"), "admin", Forbidden, id="admin demotes the host"),
    pytest.param(ROOM, Demote("host"), "host", Conflict, id="host steps down"),
    pytest.param(ROOM, Demote("fan3"), "host", Conflict, id="demote a listener"),
    pytest.param(
        COHOST_INVITED,
        Demote("fan3"),
        "mod1",
        Forbidden,
        id="moderator withdraws the host's co-host invitation",
    ),
    pytest.param(
        ASSIGNED, Demote("agent"), "mod1", Forbidden, id="moderator drops a pre-assigned co-host"
    ),
    # mute and unmute
    pytest.param(ROOM, Mute("co1"), "mod1", Forbidden, id="moderator mutes a co-host"),
    pytest.param(ROOM, Mute("host"), "co1", Forbidden, id="co-host mutes the host"),
    pytest.param(ROOM, Mute("co2"), "co1", Forbidden, id="co-host mutes a co-host"),
    pytest.param(ROOM, Mute("sp2"), "sp1", Forbidden, id="speaker mutes a speaker"),
    pytest.param(ROOM, Mute("sp1"), "fan1", Forbidden, id="listener mutes a speaker"),
    pytest.param(ROOM, Mute("mod1"), "host", Conflict, id="mute a moderator: no microphone"),
    pytest.param(ROOM, Mute("mod1"), "mod1", Conflict, id="moderator mutes self: no mic"),
    pytest.param(ROOM, Mute("fan1"), "host", Conflict, id="mute a listener"),
    pytest.param(ROOM, Unmute(), "mod1", Forbidden, id="moderator unmutes"),
    pytest.param(ROOM, Unmute(), "fan1", Forbidden, id="listener unmutes"),
    pytest.param(ROOM, Unmute(), "admin", Conflict, id="admin without a microphone unmutes"),
    # remove and ban
    pytest.param(ROOM, Remove("host"), "co1", Forbidden, id="co-host removes the host"),
    pytest.param(ROOM, Remove("host", ban=True), "admin", Forbidden, id="admin bans the host"),
    pytest.param(ROOM, Remove("host"), "host", Forbidden, id="host removes self"),
    pytest.param(ROOM, Remove("co1"), "mod1", Forbidden, id="moderator removes a co-host"),
    pytest.param(ROOM, Remove("co2"), "co1", Forbidden, id="co-host removes a co-host"),
    pytest.param(ROOM, Remove("mod1"), "co1", Forbidden, id="co-host removes a moderator"),
    pytest.param(ROOM, Remove("mod2"), "mod1", Forbidden, id="moderator removes a moderator"),
    pytest.param(ROOM, Remove("fan1"), "sp1", Forbidden, id="speaker removes a listener"),
    pytest.param(
        ASSIGNED, Remove("agent", ban=True), "mod1", Forbidden, id="moderator bans the agency"
    ),
]


@pytest.mark.parametrize(("state", "command", "actor", "error"), REFUSALS)
def test_refused(
    state: RoomState, command: Command, actor: str, error: type[LiveroomError]
) -> None:
    with pytest.raises(LiveroomError) as refused:
        apply(state, command, act(actor), T0)
    assert type(refused.value) is error
    assert refused.value.code == error.code


def test_a_full_hand_queue_refuses_the_501st_hand() -> None:
    room = make_room(requests=[f"fan{i}" for i in range(499)])
    room, _ = run(room, RaiseHand(), "late")
    assert len(room.requests) == 500
    with pytest.raises(Full):
        apply(room, RaiseHand(), act("later"), T0)
    assert room.requests[-1] == "late"


EVERY_COMMAND: list[Command] = [
    StartRoom(),
    UpdateRoom(title="x"),
    Join(),
    Leave(),
    Disconnect(),
    Expire(),
    EndRoom(),
    RaiseHand(),
    CancelHand(),
    Approve("fan1"),
    Invite("fan3", SPEAKER, user("fan3")),
    Accept(),
    Decline(),
    Demote("sp1"),
    Mute("sp1"),
    Unmute(),
    Remove("fan1", ban=True),
]


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: type(c).__name__)
def test_an_ended_room_answers_gone_to_everything(command: Command) -> None:
    ended, _ = run(ROOM, EndRoom(), "host")
    with pytest.raises(Gone):
        apply(ended, command, act("host"), T0 + 1)


# --- accepted commands -------------------------------------------------------------------------

INVITED_FAN3 = make_room(
    cohosts=("co1",),
    speakers=("sp1",),
    moderators=("mod1",),
    invites=[("fan3", SPEAKER, "co1"), ("sp1", COHOST, "host"), ("fan4", MODERATOR, "host")],
    muted=["sp1"],
)

ACCEPTED = [
    pytest.param(
        ROOM,
        Approve("fan1"),
        "mod1",
        [
            RoleChanged("fan1", LISTENER, SPEAKER, muted=True),
            Audited(AuditAction.APPROVE, "mod1", "fan1", "speaker"),
        ],
        id="approved hand becomes a muted speaker",
    ),
    pytest.param(
        ROOM,
        Invite("fan3", SPEAKER, user("fan3")),
        "co1",
        [
            Invited("fan3", SPEAKER, user("co1")),
            Audited(AuditAction.INVITE, "co1", "fan3", "speaker"),
        ],
        id="co-host invites a speaker",
    ),
    pytest.param(
        ROOM,
        Invite("fan1", SPEAKER, user("fan1")),
        "mod1",
        [
            Invited("fan1", SPEAKER, user("mod1")),
            Audited(AuditAction.INVITE, "mod1", "fan1", "speaker"),
        ],
        id="moderator invites a raised hand",
    ),
    pytest.param(
        ONE_COHOST,
        Invite("sp1", COHOST),
        "host",
        [
            Invited("sp1", COHOST, user("host")),
            Audited(AuditAction.INVITE, "host", "sp1", "cohost"),
        ],
        id="host invites a speaker to co-host",
    ),
    pytest.param(
        ONE_COHOST,
        Invite("fan3", MODERATOR, user("fan3")),
        "admin",
        [
            Invited("fan3", MODERATOR, act("admin").user),
            Audited(AuditAction.INVITE, "admin", "fan3", "moderator"),
        ],
        id="admin names a moderator as host",
    ),
    pytest.param(
        INVITED_FAN3,
        Accept(),
        "fan3",
        [
            RoleChanged("fan3", LISTENER, SPEAKER, muted=True),
            Audited(AuditAction.ACCEPT, "fan3", "fan3", "speaker"),
        ],
        id="invitee accepts the stage, microphone off",
    ),
    pytest.param(
        INVITED_FAN3,
        Accept(),
        "sp1",
        [
            RoleChanged("sp1", SPEAKER, COHOST, muted=True),
            Audited(AuditAction.ACCEPT, "sp1", "sp1", "cohost"),
        ],
        id="promoted speaker keeps their mute",
    ),
    pytest.param(
        INVITED_FAN3,
        Accept(),
        "fan4",
        [
            RoleChanged("fan4", LISTENER, MODERATOR, muted=False),
            Audited(AuditAction.ACCEPT, "fan4", "fan4", "moderator"),
        ],
        id="moderators have no microphone",
    ),
    pytest.param(INVITED_FAN3, Decline(), "fan3", [], id="invitee declines"),
    pytest.param(
        INVITED_FAN3,
        Demote("fan3"),
        "mod1",
        [Audited(AuditAction.WITHDRAW_INVITE, "mod1", "fan3", "speaker")],
        id="demote withdraws an invitation",
    ),
    pytest.param(
        ASSIGNED,
        Demote("agent"),
        "host",
        [Audited(AuditAction.WITHDRAW_INVITE, "host", "agent", "cohost")],
        id="host drops a pre-assigned co-host",
    ),
    pytest.param(
        ROOM,
        Demote("sp1"),
        "mod1",
        [
            RoleChanged("sp1", SPEAKER, LISTENER, muted=False),
            Audited(AuditAction.DEMOTE, "mod1", "sp1", "speaker"),
        ],
        id="moderator demotes a speaker",
    ),
    pytest.param(
        ROOM,
        Demote("co1"),
        "host",
        [
            RoleChanged("co1", COHOST, LISTENER, muted=False),
            Audited(AuditAction.DEMOTE, "host", "co1", "cohost"),
        ],
        id="host demotes a co-host",
    ),
    pytest.param(
        ROOM,
        Demote("mod1"),
        "host",
        [
            RoleChanged("mod1", MODERATOR, LISTENER, muted=False),
            Audited(AuditAction.DEMOTE, "host", "mod1", "moderator"),
        ],
        id="host demotes a moderator",
    ),
    pytest.param(
        ROOM,
        Mute("sp1"),
        "mod1",
        [MuteChanged("sp1", muted=True), Audited(AuditAction.MUTE, "mod1", "sp1")],
        id="moderator mutes a speaker",
    ),
    pytest.param(
        ROOM,
        Mute("co1"),
        "host",
        [MuteChanged("co1", muted=True), Audited(AuditAction.MUTE, "host", "co1")],
        id="host mutes a co-host",
    ),
    pytest.param(
        ROOM,
        Mute("co1"),
        "admin",
        [MuteChanged("co1", muted=True), Audited(AuditAction.MUTE, "admin", "co1")],
        id="admin mutes a co-host",
    ),
    pytest.param(
        INVITED_FAN3,
        Unmute(),
        "sp1",
        [MuteChanged("sp1", muted=False)],
        id="speaker unmutes self",
    ),
    pytest.param(
        ROOM,
        Remove("fan1"),
        "mod1",
        [Removed("fan1", ban=False), Audited(AuditAction.REMOVE, "mod1", "fan1")],
        id="moderator removes a raised hand",
    ),
    pytest.param(
        ROOM,
        Remove("fan3"),
        "mod1",
        [Removed("fan3", ban=False), Audited(AuditAction.REMOVE, "mod1", "fan3")],
        id="moderator removes a listener",
    ),
    pytest.param(
        ROOM,
        Remove("sp1", ban=True),
        "co1",
        [
            RoleChanged("sp1", SPEAKER, None, muted=False),
            Removed("sp1", ban=True),
            Audited(AuditAction.BAN, "co1", "sp1"),
        ],
        id="co-host bans a speaker",
    ),
    pytest.param(
        ROOM,
        Remove("mod1"),
        "host",
        [
            RoleChanged("mod1", MODERATOR, None, muted=False),
            Removed("mod1", ban=False),
            Audited(AuditAction.REMOVE, "host", "mod1"),
        ],
        id="host removes a moderator",
    ),
    pytest.param(
        ROOM,
        Remove("co1", ban=True),
        "admin",
        [
            RoleChanged("co1", COHOST, None, muted=False),
            Removed("co1", ban=True),
            Audited(AuditAction.BAN, "admin", "co1"),
        ],
        id="admin bans a co-host",
    ),
    pytest.param(
        SCHEDULED,
        Remove("troll", ban=True),
        "host",
        [Removed("troll", ban=True), Audited(AuditAction.BAN, "host", "troll")],
        id="ban before the start",
    ),
    pytest.param(
        SCHEDULED,
        StartRoom(),
        "host",
        [RoomStarted("r1", "Late night talk")],
        id="host starts a scheduled room",
    ),
    pytest.param(
        ROOM,
        UpdateRoom(title="After hours", recording=False, qa_mode=QaMode.OPEN),
        "host",
        [
            RoomUpdated("After hours", RoomSettings(qa_mode=QaMode.OPEN, recording=False)),
            Audited(AuditAction.UPDATE, "host", None, "title, qa_mode, recording"),
        ],
        id="host renames the room and stops recording",
    ),
    pytest.param(
        ONE_COHOST,
        EndRoom(),
        "host",
        [
            RoleChanged("co1", COHOST, None, muted=False),
            RoleChanged("mod1", MODERATOR, None, muted=False),
            RoleChanged("sp1", SPEAKER, None, muted=False),
            RoomEnded("r1"),
            Audited(AuditAction.END, "host", None),
        ],
        id="host ends the room",
    ),
    pytest.param(
        ROOM, Leave(), "sp1", [RoleChanged("sp1", SPEAKER, None, muted=False)], id="speaker leaves"
    ),
    pytest.param(ROOM, Leave(), "fan1", [], id="raised hand leaves"),
    pytest.param(ROOM, Disconnect(), "fan1", [], id="raised hand loses connection"),
    pytest.param(ROOM, RaiseHand(), "fan3", [], id="listener raises a hand"),
    pytest.param(ROOM, CancelHand(), "fan1", [], id="listener lowers a hand"),
    pytest.param(
        ASSIGNED,
        Join(),
        "agent",
        [RoleChanged("agent", None, COHOST, muted=True)],
        id="pre-assigned co-host joins",
    ),
]


@pytest.mark.parametrize(("state", "command", "actor", "expected"), ACCEPTED)
def test_accepted(state: RoomState, command: Command, actor: str, expected: list[Event]) -> None:
    _, events = run(state, command, actor)
    assert domain(events) == expected


@pytest.mark.parametrize(
    ("state", "command", "actor"),
    [
        pytest.param(ROOM, RaiseHand(), "fan1", id="second raise"),
        pytest.param(ROOM, CancelHand(), "fan3", id="cancel without a hand"),
        pytest.param(make_room(speakers=["sp1"], muted=["sp1"]), Mute("sp1"), "host", id="mute"),
        pytest.param(ROOM, Unmute(), "sp1", id="unmute the unmuted"),
        pytest.param(ROOM, Join(), "fan3", id="listener joins"),
        pytest.param(ROOM, Join(), "sp1", id="second socket of a speaker"),
        pytest.param(ROOM, Leave(), "fan3", id="listener leaves"),
        pytest.param(ROOM, Expire(), "", id="nothing to expire"),
        pytest.param(ROOM, UpdateRoom(title="Late night talk"), "host", id="same title"),
        pytest.param(
            INVITED_FAN3, Invite("fan3", SPEAKER, user("fan3")), "host", id="same invitation"
        ),
        pytest.param(SCHEDULED, Leave(), "host", id="host leaves the green room"),
        pytest.param(SCHEDULED, Disconnect(), "host", id="host disconnects before the start"),
    ],
)
def test_repeats_and_no_ops_change_nothing(state: RoomState, command: Command, actor: str) -> None:
    new, events = run(state, command, actor)
    assert new is state
    assert events == []


# --- what the service is told to send ----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "command", "actor", "expected"),
    [
        pytest.param(
            ROOM,
            RaiseHand(),
            "fan3",
            StageChanged(audience=True, users=("fan3",)),
            id="a raised hand changes everyone's request_count",
        ),
        pytest.param(
            ROOM,
            Invite("fan3", SPEAKER, user("fan3")),
            "host",
            StageChanged(audience=False, users=("fan3",)),
            id="invitations are staff-only",
        ),
        pytest.param(
            ROOM,
            Approve("fan1"),
            "host",
            StageChanged(audience=True, users=("fan1",)),
            id="a new speaker is seen by all",
        ),
        pytest.param(
            ROOM, Mute("sp1"), "host", StageChanged(audience=True), id="mutes are seen by all"
        ),
        pytest.param(
            ROOM, UpdateRoom(title="New"), "host", StageChanged(audience=True), id="a new title"
        ),
        pytest.param(
            INVITED_FAN3,
            Demote("fan3"),
            "host",
            StageChanged(audience=False, users=("fan3",)),
            id="withdrawn invitation reaches the invitee",
        ),
        pytest.param(ROOM, EndRoom(), "host", None, id="the end is told by RoomEnded"),
        pytest.param(ROOM, Remove("fan3"), "host", None, id="removing a listener"),
    ],
)
def test_stage_changed_says_who_needs_a_new_view(
    state: RoomState, command: Command, actor: str, expected: StageChanged | None
) -> None:
    _, events = run(state, command, actor)
    assert stage_changed(events) == expected


def test_version_grows_by_one_with_each_change_and_only_then() -> None:
    room = ROOM
    versions = [room.version]
    steps: list[tuple[Command, str]] = [
        (RaiseHand(), "fan3"),
        (RaiseHand(), "fan3"),  # repeated: no change
        (Approve("fan3"), "host"),
        (Unmute(), "fan3"),
        (Mute("fan3"), "mod1"),
    ]
    for command, actor in steps:
        room, _ = run(room, command, actor)
        versions.append(room.version)
    assert versions == [0, 1, 1, 2, 3, 4]
    with pytest.raises(Forbidden):
        apply(room, Mute("co1"), act("mod1"), T0)
    assert room.version == 4


# --- authority ---------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", ["co1", "mod1", "sp1"])
def test_anyone_on_stage_may_step_down(uid: str) -> None:
    role = role_of(ROOM, uid)
    room, events = run(ROOM, Demote(uid), uid)
    assert role_of(room, uid) is None
    assert RoleChanged(uid, role, LISTENER, muted=False) in events


@pytest.mark.parametrize("uid", ["host", "co1", "sp1"])
def test_anyone_with_a_microphone_may_mute_themself(uid: str) -> None:
    room, events = run(ROOM, Mute(uid), uid)
    assert uid in room.muted
    assert domain(events) == [MuteChanged(uid, muted=True)]  # not a moderation action


def test_nobody_can_unmute_someone_else() -> None:
    assert dataclasses.fields(Unmute) == ()  # the command has no one else to name
    room, _ = run(ROOM, Mute("sp1"), "mod1")
    room, _ = run(room, Mute("host"), "host")
    room, _ = run(room, Unmute(), "host")
    assert room.muted == {"sp1"}
    room, _ = run(room, Unmute(), "sp1")
    assert room.muted == frozenset()


def test_new_speakers_start_muted_and_unmute_themselves() -> None:
    room, _ = run(ROOM, Approve("fan1"), "mod1")
    assert "fan1" in room.muted
    room, events = run(room, Unmute(), "fan1")
    assert "fan1" not in room.muted
    assert domain(events) == [MuteChanged("fan1", muted=False)]


# --- seats and limits --------------------------------------------------------------------------


def test_a_pending_invitation_holds_a_speaker_seat_until_declined() -> None:
    room = NINE_SPEAKERS_ONE_INVITED
    with pytest.raises(Full):
        apply(room, Approve("fan1"), act("host"), T0)
    room, _ = run(room, Decline(), "fan9")
    room, _ = run(room, Approve("fan1"), "host")
    assert room.speakers[-1] == "fan1"
    assert len(room.speakers) == 10


def test_accepting_fills_the_seat_the_invitation_held() -> None:
    room, _ = run(NINE_SPEAKERS_ONE_INVITED, Accept(), "fan9")
    assert len(room.speakers) == 10
    with pytest.raises(Full):
        apply(room, Invite("fan3", SPEAKER, user("fan3")), act("host"), T0)


def test_promoting_a_speaker_frees_their_speaker_seat() -> None:
    room = make_room(speakers=[f"sp{i}" for i in range(1, 11)], requests=["fan1"])
    room, _ = run(room, Invite("sp1", COHOST), "host")
    room, _ = run(room, Accept(), "sp1")
    assert room.cohosts == ("sp1",)
    room, _ = run(room, Approve("fan1"), "host")
    assert len(room.speakers) == 10


def test_a_user_has_one_invitation_and_a_new_one_replaces_it() -> None:
    room, _ = run(ONE_COHOST, Invite("fan3", SPEAKER, user("fan3")), "co1")
    room, _ = run(room, Invite("fan3", MODERATOR, user("fan3")), "host")
    assert room.invites == (Invitation("fan3", MODERATOR, "host"),)


def test_limits_are_configurable() -> None:
    limits = StageLimits(max_speakers=2, max_moderators=2)  # ROOM has two of each
    with pytest.raises(Full):
        apply(ROOM, Approve("fan1"), act("host"), T0, limits)
    with pytest.raises(Full):
        apply(ROOM, Invite("fan3", MODERATOR, user("fan3")), act("host"), T0, limits)
    room, _ = run(ROOM, Invite("fan3", MODERATOR, user("fan3")), "host")
    assert model.invitation_for(room, "fan3") == Invitation("fan3", MODERATOR, "host")


# --- the queue of raised hands -----------------------------------------------------------------


def test_raised_hands_are_kept_oldest_first() -> None:
    room, _ = run(ROOM, RaiseHand(), "fan3")
    assert room.requests == ("fan1", "fan2", "fan3")
    room, _ = run(room, CancelHand(), "fan1")
    room, _ = run(room, RaiseHand(), "fan1")
    assert room.requests == ("fan2", "fan3", "fan1")
    room, _ = run(room, Approve("fan3"), "mod1")
    assert room.requests == ("fan2", "fan1")
    assert room.speakers == ("sp1", "sp2", "fan3")


def test_leaving_drops_the_hand_and_the_invitation() -> None:
    room, _ = run(ROOM, Invite("fan1", SPEAKER, user("fan1")), "host")
    room, _ = run(room, Leave(), "fan1")
    assert "fan1" not in room.requests
    assert model.invitation_for(room, "fan1") is None
    assert "fan1" not in {p.id for p in room.people}


# --- grace periods -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uid", "grace"),
    [("host", 60_000), ("co1", 30_000), ("mod1", 30_000), ("sp1", 30_000)],
)
def test_a_member_who_reconnects_in_time_gets_the_seat_back(uid: str, grace: int) -> None:
    mics = [u for u in ("host", "co1", "sp1") if u == uid]
    room = make_room(cohosts=["co1"], moderators=["mod1"], speakers=["sp1"], muted=mics)
    role = role_of(room, uid)
    assert role is not None
    room, events = run(room, Disconnect(), uid, now=T0)
    assert domain(events) == [GraceStarted(uid, role, T0 + grace)]
    assert next_deadline(room) == T0 + grace
    room, _ = run(room, Disconnect(), uid, now=T0 + 1000)  # a second socket closing
    assert next_deadline(room) == T0 + grace
    room, events = run(room, Join(), uid, now=T0 + grace - 1)
    assert role_of(room, uid) is role
    assert room.muted == set(mics)  # a muted microphone stays muted
    assert room.away == ()
    assert domain(events) == []


@pytest.mark.parametrize("uid", ["co1", "mod1", "sp1"])
def test_a_seat_is_lost_at_the_deadline(uid: str) -> None:
    room = make_room(cohosts=["co1"], moderators=["mod1"], speakers=["sp1"], muted=["co1", "sp1"])
    role = role_of(room, uid)
    room, _ = run(room, Disconnect(), uid, now=T0)
    early, events = run(room, Expire(), "", now=T0 + 29_999)
    assert early is room
    gone, events = run(room, Expire(), "", now=T0 + 30_000)
    assert role_of(gone, uid) is None
    assert uid not in gone.muted
    assert domain(events) == [RoleChanged(uid, role, None, muted=False)]


def test_rejoining_after_the_deadline_finds_no_seat_even_if_the_timer_is_late() -> None:
    room, _ = run(ROOM, Disconnect(), "sp1", now=T0)
    room, events = run(room, Join(), "sp1", now=T0 + 31_000)
    assert role_of(room, "sp1") is None
    assert domain(events) == [RoleChanged("sp1", SPEAKER, None, muted=False)]


def test_expire_takes_any_actor() -> None:
    room, _ = run(ROOM, Disconnect(), "sp1", now=T0)
    gone, _ = apply(room, Expire(), SERVER, T0 + 30_000)
    assert "sp1" not in gone.speakers


def test_a_refused_command_does_not_keep_a_settled_grace_period() -> None:
    room, _ = run(ROOM, Disconnect(), "sp1", now=T0)
    with pytest.raises(Conflict):  # sp1's seat is gone by now, so there is nothing to mute
        apply(room, Mute("sp1"), act("host"), T0 + 30_000)
    assert role_of(room, "sp1") is SPEAKER


def test_an_invitation_waits_while_its_holder_reconnects() -> None:
    room, _ = run(ONE_COHOST, Invite("sp1", COHOST), "host")
    room, _ = run(room, Disconnect(), "sp1", now=T0)
    assert model.invitation_for(room, "sp1") is not None
    room, _ = run(room, Expire(), "", now=T0 + 30_000)
    assert model.invitation_for(room, "sp1") is None


# --- the host leaving --------------------------------------------------------------------------


def test_the_host_hands_over_to_the_first_cohost_when_the_grace_period_ends() -> None:
    room = make_room(cohosts=["co1", "co2"], speakers=["sp1"], muted=["co1"])
    room, _ = run(room, Disconnect(), "host", now=T0)
    still, _ = run(room, Expire(), "", now=T0 + 59_999)
    assert still.host == "host"
    room, events = run(room, Expire(), "", now=T0 + 60_000)
    assert room.host == "co1"
    assert room.cohosts == ("co2",)
    assert "co1" in room.muted
    assert domain(events) == [
        RoleChanged("host", HOST, None, muted=False),
        RoleChanged("co1", COHOST, HOST, muted=True),
        HostHandedOver("host", "co1"),
        Audited(AuditAction.HANDOVER, None, "co1", "the host did not come back in time"),
    ]
    assert room.status is RoomStatus.LIVE


def test_the_handover_prefers_a_connected_cohost() -> None:
    room = make_room(cohosts=["co1", "co2"])
    room, _ = run(room, Disconnect(), "host", now=T0)
    room, _ = run(room, Disconnect(), "co1", now=T0 + 50_000)
    room, events = run(room, Expire(), "", now=T0 + 60_000)
    assert room.host == "co2"
    assert room.cohosts == ("co1",)
    assert HostHandedOver("host", "co2") in events


def test_a_cohost_whose_grace_ran_out_first_is_not_handed_the_room() -> None:
    room = make_room(cohosts=["co1", "co2"])
    room, _ = run(room, Disconnect(), "co1", now=T0)
    room, _ = run(room, Disconnect(), "host", now=T0 + 1)
    room, _ = run(room, Expire(), "", now=T0 + 60_001)
    assert room.host == "co2"
    assert room.cohosts == ()


def test_the_host_leaving_hands_over_at_once() -> None:
    room, events = run(ROOM, Leave(), "host")
    assert room.host == "co1"
    assert Audited(AuditAction.HANDOVER, "host", "co1", "the host left") in events


@pytest.mark.parametrize(
    ("state", "command", "now"),
    [
        pytest.param(make_room(speakers=["sp1"]), Leave(), T0, id="no cohost, host leaves"),
        pytest.param(make_room(speakers=["sp1"]), Expire(), T0 + 60_000, id="no cohost, expiry"),
        pytest.param(
            make_room(cohosts=["co1"], speakers=["sp1"], on_host_leave=OnHostLeave.END),
            Leave(),
            T0,
            id="on_host_leave=end",
        ),
        pytest.param(
            make_room(cohosts=["co1"], speakers=["sp1"], on_host_leave=OnHostLeave.END),
            Expire(),
            T0 + 60_000,
            id="on_host_leave=end, expiry",
        ),
    ],
)
def test_the_room_ends_when_the_host_goes_and_nobody_takes_over(
    state: RoomState, command: Command, now: int
) -> None:
    if isinstance(command, Expire):
        state, _ = run(state, Disconnect(), "host", now=T0)
    room, events = run(state, command, "host", now=now)
    assert room.status is RoomStatus.ENDED
    assert room.ended_at == now
    assert RoomEnded("r1") in events
    assert RoleChanged("sp1", SPEAKER, None, muted=False) in events
    with pytest.raises(Gone):
        apply(room, Join(), act("fan1"), now)


def test_a_grace_period_that_ends_the_room_answers_other_commands_gone() -> None:
    room, _ = run(make_room(), Disconnect(), "host", now=T0)
    with pytest.raises(Gone):
        apply(room, RaiseHand(), act("fan1"), T0 + 60_000)


# --- joining -----------------------------------------------------------------------------------


def test_a_banned_user_cannot_come_back_but_a_removed_one_can() -> None:
    room, _ = run(ROOM, Remove("fan1"), "mod1")
    room, _ = run(room, Join(), "fan1")
    room, _ = run(room, Remove("fan1", ban=True), "mod1")
    with pytest.raises(Forbidden):
        apply(room, Join(), act("fan1"), T0)
    with pytest.raises(Forbidden):
        apply(room, RaiseHand(), act("fan1"), T0)


def test_a_scheduled_room_opens_to_listeners_once_started() -> None:
    room, _ = run(SCHEDULED, Join(), "host")
    room, _ = run(room, Join(), "admin")
    with pytest.raises(Conflict):
        apply(room, Join(), act("fan1"), T0)
    room, _ = run(room, StartRoom(), "host", now=T0 + 5)
    assert room.status is RoomStatus.LIVE
    assert room.started_at == T0 + 5
    run(room, Join(), "fan1")


def test_a_host_starting_a_room_they_are_not_in_holds_their_seat_until_they_join() -> None:
    # The fuzzer's find: started from elsewhere, the host was on stage, neither present nor away.
    room, _ = run(SCHEDULED, StartRoom(host_present=False), "host", now=T0 + 5)
    assert away_deadline(room, "host") == T0 + 5 + DEFAULT_LIMITS.host_grace_ms
    room, _ = run(room, Join(), "host", now=T0 + 6)
    assert away_deadline(room, "host") is None
    started, _ = run(SCHEDULED, StartRoom(host_present=True), "host")
    assert started.away == ()


def test_pre_assigned_staff_get_their_role_back_each_time_they_join() -> None:
    room, _ = run(ASSIGNED, Join(), "agent")
    assert role_of(room, "agent") is COHOST
    room, _ = run(room, Leave(), "agent")
    assert role_of(room, "agent") is None
    room, _ = run(room, Join(), "agent")
    assert role_of(room, "agent") is COHOST
    room, _ = run(room, Demote("agent"), "agent")
    room, _ = run(room, Leave(), "agent")
    room, events = run(room, Join(), "agent")
    assert role_of(room, "agent") is None
    assert events == []


def test_a_promoted_pre_assigned_moderator_comes_back_as_cohost() -> None:
    room = make_room(staff=[StaffAssignment("agent", MODERATOR)])
    room, _ = run(room, Join(), "agent")
    room, _ = run(room, Invite("agent", COHOST), "host")
    room, _ = run(room, Accept(), "agent")
    room, _ = run(room, Leave(), "agent")
    room, events = run(room, Join(), "agent")
    assert domain(events) == [RoleChanged("agent", None, COHOST, muted=True)]
    assert room.moderators == ()


# --- snapshots ---------------------------------------------------------------------------------

PROTOCOL_FIELDS = {
    "id",
    "title",
    "topics",
    "market",
    "status",
    "scheduled_for",
    "host",
    "cohosts",
    "moderators",
    "speakers",
    "muted",
    "request_count",
    "listener_count",
    "settings",
    "you",
}


@pytest.mark.parametrize("viewer", ["fan1", "fan3", "sp1", None])
def test_the_audience_never_sees_the_queue_or_the_invitations(viewer: str | None) -> None:
    room, _ = run(ROOM, Invite("fan3", SPEAKER, user("fan3")), "host")
    view = snapshot(room, viewer, listener_count=1234)
    assert "requests" not in view
    assert "invites" not in view
    assert set(view) >= PROTOCOL_FIELDS
    assert view["request_count"] == 2
    assert view["listener_count"] == 1234


@pytest.mark.parametrize("viewer", ["host", "co1", "mod1", "admin"])
def test_staff_see_the_queue_oldest_first_and_the_invitations(viewer: str) -> None:
    room, _ = run(ROOM, Invite("fan3", SPEAKER, user("fan3")), "host")
    view = snapshot(room, viewer, listener_count=10, admin=viewer == "admin")
    assert view["requests"] == [
        {"id": "fan1", "name": "Fan1", "verified": False},
        {"id": "fan2", "name": "Fan2", "verified": False},
    ]
    assert view["invites"] == [{"id": "fan3", "name": "Fan3", "role": "speaker"}]


def test_a_snapshot_shows_the_stage_in_order() -> None:
    room, _ = run(ROOM, Mute("sp2"), "host")
    room, _ = run(room, Mute("host"), "host")
    room, _ = run(room, Disconnect(), "sp1")
    view = snapshot(room, "sp2", listener_count=7)
    assert view["id"] == "r1"
    assert view["status"] == "live"
    assert view["host"] == {"id": "host", "name": "Host", "verified": False}
    assert [u["id"] for u in view["cohosts"]] == ["co1", "co2"]
    assert [u["id"] for u in view["moderators"]] == ["mod1", "mod2"]
    assert [u["id"] for u in view["speakers"]] == ["sp1", "sp2"]
    assert view["muted"] == ["host", "sp2"]
    assert view["away"] == ["sp1"]
    assert view["settings"] == {
        "qa_mode": "premoderated",
        "playlist_mode": "host",
        "playlist_output": "clients",
        "recording": True,
        "on_host_leave": "handover",
        "qa_return_to_audience": True,
    }
    assert view["you"] == {"role": "speaker", "hand_raised": False, "invited_as": None}


@pytest.mark.parametrize(
    ("viewer", "you"),
    [
        ("fan1", {"role": "listener", "hand_raised": True, "invited_as": None}),
        ("fan3", {"role": "listener", "hand_raised": False, "invited_as": "speaker"}),
        ("co1", {"role": "cohost", "hand_raised": False, "invited_as": None}),
        (None, {"role": None, "hand_raised": False, "invited_as": None}),
    ],
)
def test_you_tells_viewers_where_they_stand(viewer: str | None, you: dict[str, object]) -> None:
    room, _ = run(ROOM, Invite("fan3", SPEAKER, user("fan3")), "host")
    assert snapshot(room, viewer, listener_count=0)["you"] == you


# --- properties --------------------------------------------------------------------------------

PEOPLE = ["host", "co1", "mod1", "sp1", "fan1", "fan2", "agent", "admin", "@invited", "@hand"]
MODERATING = ["host", "admin", "co1", "mod1", "agent"]
OWN_COMMANDS: list[Command] = [
    Join(),
    Leave(),
    Disconnect(),
    Expire(),
    RaiseHand(),
    CancelHand(),
    Accept(),
    Decline(),
    Unmute(),
    StartRoom(),
]


def resolve(room: RoomState, who: str) -> str:
    """``@invited`` and ``@hand`` name whoever is first invited / in the queue, so that random
    walks reach accepting and approving."""
    if who == "@invited":
        return room.invites[0].user_id if room.invites else "fan1"
    if who == "@hand":
        return room.requests[0] if room.requests else "fan2"
    return who


def random_step(rng: random.Random, room: RoomState) -> tuple[Command, str]:
    target = resolve(room, rng.choice(PEOPLE))
    if rng.random() < 0.5:
        return rng.choice(OWN_COMMANDS), resolve(room, rng.choice(PEOPLE))
    moderation: list[Command] = [
        Approve(target),
        Demote(target),
        Mute(target),
        Remove(target, ban=rng.random() < 0.5),
        Invite(target, rng.choice([SPEAKER, COHOST, MODERATOR]), user(target)),
    ]
    return rng.choice(moderation), rng.choice(MODERATING)


@pytest.mark.parametrize("seed", range(100))
def test_any_sequence_of_commands_keeps_the_stage_consistent(seed: int) -> None:
    """A seeded random walk; ``run`` checks the invariants after every accepted command."""
    rng = random.Random(seed)
    limits = StageLimits(max_cohosts=2, max_speakers=2, max_requests=2)
    room = make_room(
        moderators=["mod1"],
        speakers=["sp1"],
        muted=["sp1"],
        staff=[StaffAssignment("agent", COHOST)],
    )
    now = T0
    for _ in range(120):
        now += rng.choice([0, 1, 5_000, 20_000, 40_000])
        command, actor = random_step(rng, room)
        try:
            room, _ = run(room, command, actor, now, limits)
        except (Gone, Forbidden, Conflict, Full, NotFound, Invalid):
            continue
        if room.status is RoomStatus.ENDED:
            return


# --- purity ------------------------------------------------------------------------------------

ALLOWED_IMPORTS = {
    "__future__",
    "collections",
    "collections.abc",
    "dataclasses",
    "enum",
    "typing",
    "liveroom.errors",
    "liveroom.permissions",
    "liveroom.rooms.model",
    "liveroom.rooms.stage",
}


@pytest.mark.parametrize("module", [model.__file__, stage.__file__, views.__file__])
def test_the_stage_model_does_no_io(module: str) -> None:
    tree = ast.parse(Path(module).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= ALLOWED_IMPORTS


def test_an_away_entry_is_a_held_seat() -> None:
    room, _ = run(ROOM, Disconnect(), "co1", now=T0)
    assert room.away == (Away("co1", T0 + 30_000),)
    assert role_of(room, "co1") is COHOST
