"""The stage of a room, as one pure function.

:func:`apply` takes a :class:`~liveroom.rooms.stage.RoomState`, a command, the
:class:`~liveroom.rooms.stage.Actor` who sent it and the time, and returns the next state with the
events that tell the service what to send and persist — or raises a kind of
:class:`~liveroom.errors.LiveroomError`, and then nothing changed. No I/O, no clock: the service
runs it under a per-room lock (one node) or an optimistic check of ``RoomState.version`` (Redis).
Every authority decision goes through :func:`liveroom.permissions.authorize`, so the permission
table stays the one source of truth. The values, commands and events are in
:mod:`liveroom.rooms.stage`.

An actor without a stage role is taken to be a listener who is present (the signaling layer
refuses room events from users who did not join).

Where the protocol is silent, this module decides:

- Raising a hand twice, cancelling a hand that is not raised, muting the muted and unmuting the
  unmuted are accepted and change nothing: double taps and retries after a lost ack are common.
- A microphone is off when someone first gets it (approved, invited, staff joining, and the
  host of a new room): since nobody can unmute someone else, putting a fan on stage must not open
  their microphone for them. A speaker promoted to co-host keeps their mute state.
- Pre-assigned staff (``room:create``'s ``staff``) hold their seat while away, like a pending
  invitation: they count toward the limits and get their role each time they join (the role the
  host last gave them), until they are demoted or removed. Moderators are limited too
  (:attr:`~liveroom.rooms.stage.StageLimits.max_moderators`) so that the stage state stays small.
- An invitation must offer a higher rank than the invitee holds (a speaker can be invited to be
  a co-host). Inviting someone again replaces their invitation. ``stage:demote`` aimed at someone
  who only has a pending invitation or pre-assignment withdraws it — otherwise a seat could be
  blocked for good by a fan who never answers.
- The host cannot demote themself (Conflict): the room needs a host, so the host leaves or ends it.
- Every command first settles the grace periods that ran out (``deadline <= now_ms``), exactly as
  :class:`~liveroom.rooms.stage.Expire` does, so a seat is never given back after its deadline
  however late the service's timer fires. A refused command discards that settlement too; the
  timer redoes it.
- When the host leaves, the first co-host who is connected becomes host, else the first co-host.
- A scheduled room has no seats to hold: the host leaving it changes nothing. Removing and banning
  work before the start too, so a known troll can be kept out.
- An ended room keeps its host, title and bans; its stage, hands, invitations and seats are cleared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TypeAlias, assert_never

from liveroom.errors import Conflict, Full, Gone, Invalid, InvalidState, NotFound
from liveroom.permissions import RULES, STAFF, STAGE, Role, Standing, authorize
from liveroom.rooms.stage import (
    DEFAULT_LIMITS,
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

_Result: TypeAlias = tuple[RoomState, list[Event]]

# --- queries -----------------------------------------------------------------------------------


def role_of(state: RoomState, user_id: str) -> Role | None:
    """The stage role ``user_id`` holds (also while their seat is held), or ``None``: a listener
    if present, else not in the room."""
    if user_id == state.host:
        return Role.HOST
    if user_id in state.cohosts:
        return Role.COHOST
    if user_id in state.moderators:
        return Role.MODERATOR
    if user_id in state.speakers:
        return Role.SPEAKER
    return None


def invitation_for(state: RoomState, user_id: str) -> Invitation | None:
    return next((i for i in state.invites if i.user_id == user_id), None)


def assignment_for(state: RoomState, user_id: str) -> StaffAssignment | None:
    return next((a for a in state.staff_assignments if a.user_id == user_id), None)


def away_deadline(state: RoomState, user_id: str) -> int | None:
    return next((a.deadline_ms for a in state.away if a.user_id == user_id), None)


def next_deadline(state: RoomState) -> int | None:
    """When :class:`~liveroom.rooms.stage.Expire` next has work to do (e.g. to re-arm timers after
    a restart)."""
    return min((a.deadline_ms for a in state.away), default=None)


def person(state: RoomState, user_id: str) -> UserInfo:
    """The user as last seen; the id stands in for the name of someone the state forgot."""
    return next((p for p in state.people if p.id == user_id), UserInfo(user_id, user_id))


# --- creation ----------------------------------------------------------------------------------

_SEATS = (Role.COHOST, Role.MODERATOR, Role.SPEAKER)


def new_room(
    room_id: str,
    host: UserInfo,
    now_ms: int,
    *,
    title: str,
    topics: Iterable[str] = (),
    market: str | None = None,
    scheduled_for: int | None = None,
    settings: RoomSettings | None = None,
    staff: Iterable[StaffAssignment] = (),
    limits: StageLimits = DEFAULT_LIMITS,
) -> RoomState:
    """The state of a room ``host`` just created: live at once, unless ``scheduled_for`` is given.

    ``staff`` names co-hosts and moderators who get their role when they join.
    """
    if scheduled_for is not None and scheduled_for <= now_ms:
        raise Invalid("scheduled_for must be in the future")
    assignments = tuple(staff)
    named = [a.user_id for a in assignments]
    if len(set(named)) != len(named) or host.id in named:
        raise Invalid("staff: each user at most once, and not the host")
    if any(a.role not in (Role.COHOST, Role.MODERATOR) for a in assignments):
        raise Invalid("staff: role must be cohost or moderator")
    state = RoomState(
        id=room_id,
        title=_clean_title(title),
        host=host.id,
        status=RoomStatus.LIVE if scheduled_for is None else RoomStatus.SCHEDULED,
        created_at=now_ms,
        topics=tuple(topics),
        market=market,
        scheduled_for=scheduled_for,
        started_at=now_ms if scheduled_for is None else None,
        muted=frozenset({host.id}),
        staff_assignments=assignments,
        people=(host,),
        settings=settings or RoomSettings(),
    )
    for role in (Role.COHOST, Role.MODERATOR):
        if _seats_taken(state, role, excluding=None) > _cap(role, limits):
            raise Full(f"staff: at most {_cap(role, limits)} {role}s")
    return state


def _clean_title(title: str) -> str:
    title = title.strip()
    if not title:
        raise Invalid("the title must not be empty")
    return title


# --- apply -------------------------------------------------------------------------------------


def apply(
    state: RoomState,
    command: Command,
    actor: Actor,
    now_ms: int,
    limits: StageLimits = DEFAULT_LIMITS,
) -> tuple[RoomState, list[Event]]:
    """The state after ``actor`` sent ``command`` at ``now_ms``, and what the service must do.

    Raises a kind of :class:`~liveroom.errors.LiveroomError` when refused; the state is
    immutable, so a refusal changes nothing. Events come in the order to act on them; the
    returned state is ``state`` itself (same version) when nothing in it changed.
    """
    if state.status is RoomStatus.ENDED:
        raise Gone("the room has ended")
    settled, events = _settle(state, now_ms)
    if settled.status is RoomStatus.ENDED and not isinstance(command, Expire):
        raise Gone("the room has ended")
    new, more = _dispatch(settled, command, actor, now_ms, limits)
    events += more
    new = _forget_strangers(new)
    if new == state:
        return state, events
    stage_changed = _stage_changed(state, new)
    if stage_changed is not None:
        events.append(stage_changed)
    return replace(new, version=state.version + 1), events


def _dispatch(  # noqa: PLR0912 - one case per command; mypy checks that none is missing
    state: RoomState, command: Command, actor: Actor, now_ms: int, limits: StageLimits
) -> _Result:
    match command:
        case StartRoom():
            return _start(state, command, actor, now_ms, limits)
        case UpdateRoom():
            return _update(state, command, actor)
        case Join():
            return _join(state, actor)
        case Leave():
            return _leave(state, actor, now_ms)
        case Disconnect():
            return _disconnect(state, actor, now_ms, limits)
        case Expire():
            return state, []  # _settle did the work
        case EndRoom():
            _authorize(state, "room:end", actor)
            return _end(state, now_ms, actor.id, "")
        case RaiseHand():
            return _raise_hand(state, actor, limits)
        case CancelHand():
            _authorize(state, "stage:cancel", actor)
            _require_live(state, "cancel a hand")
            return replace(state, requests=_without(state.requests, actor.id)), []
        case Approve(user_id):
            return _approve(state, user_id, actor, limits)
        case Invite():
            return _invite(state, command, actor, limits)
        case Accept():
            return _accept(state, actor, limits)
        case Decline():
            _authorize(state, "stage:decline", actor)
            _require_live(state, "decline")
            if invitation_for(state, actor.id) is None:
                raise Conflict("you have no invitation to the stage")
            return _drop_claims(state, actor.id), []
        case Demote(user_id):
            return _demote(state, user_id, actor)
        case Mute(user_id):
            return _mute(state, user_id, actor)
        case Unmute():
            return _unmute(state, actor)
        case Remove(user_id, ban):
            return _remove(state, user_id, ban, actor)
        case _:
            assert_never(command)


# --- authority ---------------------------------------------------------------------------------


def _standing(state: RoomState, actor: Actor) -> Standing:
    return Standing(
        role=role_of(state, actor.id) or Role.LISTENER,
        banned=actor.id in state.banned,
        admin=actor.admin,
    )


def _target(state: RoomState, user_id: str) -> Standing:
    """A pre-assigned co-host or moderator who has not joined yet ranks as their role."""
    assigned = assignment_for(state, user_id)
    role = role_of(state, user_id) or (assigned.role if assigned else Role.LISTENER)
    return Standing(role=role, banned=user_id in state.banned)


def _authorize(
    state: RoomState,
    event: str,
    actor: Actor,
    target: str | None = None,
    granted_role: Role | None = None,
) -> None:
    authorize(
        RULES[event],
        _standing(state, actor),
        target=None if target is None else _target(state, target),
        is_self=target == actor.id,
        granted_role=granted_role,
    )


def _require_live(state: RoomState, what: str) -> None:
    if state.status is RoomStatus.SCHEDULED:
        raise InvalidState(f"cannot {what}: the room has not started")


# --- seats -------------------------------------------------------------------------------------


def _cap(role: Role, limits: StageLimits) -> int:
    caps = {
        Role.COHOST: limits.max_cohosts,
        Role.MODERATOR: limits.max_moderators,
        Role.SPEAKER: limits.max_speakers,
    }
    return caps[role]


def _seats_taken(state: RoomState, role: Role, excluding: str | None) -> int:
    """Holders of ``role``, with pending invitations and pre-assignments for it."""
    holders = {Role.COHOST: state.cohosts, Role.MODERATOR: state.moderators}
    taken = set(holders.get(role, state.speakers))
    taken.update(i.user_id for i in state.invites if i.role is role)
    taken.update(a.user_id for a in state.staff_assignments if a.role is role)
    if excluding is not None:
        taken.discard(excluding)
    return len(taken)


def _check_seat(state: RoomState, role: Role, user_id: str, limits: StageLimits) -> None:
    cap = _cap(role, limits)
    if _seats_taken(state, role, excluding=user_id) >= cap:
        raise Full(f"no free {role} seat: {cap} of {cap} taken, pending invitations included")


def _without(members: tuple[str, ...], user_id: str) -> tuple[str, ...]:
    return tuple(m for m in members if m != user_id) if user_id in members else members


def _placed(members: tuple[str, ...], user_id: str, here: bool) -> tuple[str, ...]:
    if not here:
        return _without(members, user_id)
    return members if user_id in members else (*members, user_id)


def _remember(state: RoomState, user: UserInfo) -> RoomState:
    if user in state.people:
        return state
    return replace(state, people=(*(p for p in state.people if p.id != user.id), user))


def _drop_claims(state: RoomState, user_id: str) -> RoomState:
    """Without ``user_id``'s raised hand and invitation."""
    return replace(
        state,
        requests=_without(state.requests, user_id),
        invites=tuple(i for i in state.invites if i.user_id != user_id),
    )


def _drop_assignment(state: RoomState, user_id: str) -> RoomState:
    kept = tuple(a for a in state.staff_assignments if a.user_id != user_id)
    return replace(state, staff_assignments=kept)


def _move(
    state: RoomState, user_id: str, to: Role | None, *, was_present: bool = True
) -> tuple[RoomState, RoleChanged]:
    """Give a non-host ``user_id`` the role ``to``: a seat, ``LISTENER`` (off the stage, still in
    the room) or ``None`` (out of the room). Their hand goes, and so does an invitation that
    offers no more than the new role."""
    old = role_of(state, user_id)
    assert old is not Role.HOST, "the host changes only by handover"
    seat = to if to in _SEATS else None
    muted = state.muted
    if to in STAGE and old not in STAGE:
        muted = muted | {user_id}  # a new microphone starts off: nobody unmutes someone else
    elif to not in STAGE:
        muted = muted - {user_id}
    new = replace(
        state,
        cohosts=_placed(state.cohosts, user_id, to is Role.COHOST),
        moderators=_placed(state.moderators, user_id, to is Role.MODERATOR),
        speakers=_placed(state.speakers, user_id, to is Role.SPEAKER),
        muted=muted,
        requests=_without(state.requests, user_id),
        invites=tuple(
            i
            for i in state.invites
            if i.user_id != user_id or (seat is not None and i.role.rank > seat.rank)
        ),
        away=state.away if seat else tuple(a for a in state.away if a.user_id != user_id),
    )
    before = old or (Role.LISTENER if was_present else None)
    return new, RoleChanged(user_id, before, to, user_id in new.muted)


# --- lifecycle ---------------------------------------------------------------------------------


def _start(
    state: RoomState, command: StartRoom, actor: Actor, now_ms: int, limits: StageLimits
) -> _Result:
    _authorize(state, "room:start", actor)
    if state.status is not RoomStatus.SCHEDULED:
        raise InvalidState("cannot start: the room is already live")
    started = replace(state, status=RoomStatus.LIVE, started_at=now_ms)
    if not command.host_present and away_deadline(state, state.host) is None:
        # On stage from the start, so present or away: away until they join, within grace.
        started = replace(
            started, away=(*started.away, Away(state.host, now_ms + limits.host_grace_ms))
        )
    return started, [RoomStarted(state.id, state.title)]


def _update(state: RoomState, command: UpdateRoom, actor: Actor) -> _Result:
    _authorize(state, "room:update", actor)
    title = state.title if command.title is None else _clean_title(command.title)
    current = state.settings
    settings = RoomSettings(
        qa_mode=command.qa_mode or current.qa_mode,
        playlist_mode=command.playlist_mode or current.playlist_mode,
        playlist_output=command.playlist_output or current.playlist_output,
        recording=current.recording if command.recording is None else command.recording,
        on_host_leave=command.on_host_leave or current.on_host_leave,
        qa_return_to_audience=(
            current.qa_return_to_audience
            if command.qa_return_to_audience is None
            else command.qa_return_to_audience
        ),
    )
    if title == state.title and settings == current:
        return state, []
    changed = [name for name in _SETTING_NAMES if getattr(settings, name) != getattr(current, name)]
    if title != state.title:
        changed.insert(0, "title")
    return replace(state, title=title, settings=settings), [
        RoomUpdated(title, settings),
        Audited(AuditAction.UPDATE, actor.id, None, ", ".join(changed)),
    ]


_SETTING_NAMES = (
    "qa_mode",
    "playlist_mode",
    "playlist_output",
    "recording",
    "on_host_leave",
    "qa_return_to_audience",
)


def _end(state: RoomState, now_ms: int, actor_id: str | None, reason: str) -> _Result:
    events: list[Event] = [
        RoleChanged(u, role_of(state, u), None, muted=False)
        for u in (*state.cohosts, *state.moderators, *state.speakers)
    ]
    ended = replace(
        state,
        status=RoomStatus.ENDED,
        ended_at=now_ms,
        cohosts=(),
        moderators=(),
        speakers=(),
        muted=frozenset(),
        requests=(),
        invites=(),
        away=(),
    )
    events += [RoomEnded(state.id), Audited(AuditAction.END, actor_id, None, reason)]
    return ended, events


def _host_departs(state: RoomState, now_ms: int, actor_id: str | None, reason: str) -> _Result:
    """The host is gone: the first connected co-host takes over, or the room ends."""
    if state.settings.on_host_leave is OnHostLeave.END or not state.cohosts:
        return _end(state, now_ms, actor_id, reason)
    old = state.host
    away = {a.user_id for a in state.away}
    new = next((c for c in state.cohosts if c not in away), state.cohosts[0])
    handed = replace(
        _drop_assignment(state, new),
        host=new,
        cohosts=_without(state.cohosts, new),
        muted=state.muted - {old},
        away=tuple(a for a in state.away if a.user_id != old),
    )
    return handed, [
        RoleChanged(old, Role.HOST, None, muted=False),
        RoleChanged(new, Role.COHOST, Role.HOST, muted=new in handed.muted),
        HostHandedOver(old, new),
        Audited(AuditAction.HANDOVER, actor_id, new, reason),
    ]


def _settle(state: RoomState, now_ms: int) -> _Result:
    """Every grace period that ran out, oldest deadline first."""
    events: list[Event] = []
    for away in sorted(state.away, key=lambda a: a.deadline_ms):
        if away.deadline_ms > now_ms or state.status is RoomStatus.ENDED:
            break
        if away.user_id == state.host:
            state, more = _host_departs(state, now_ms, None, "the host did not come back in time")
            events += more
        else:
            state, changed = _move(state, away.user_id, None)
            events.append(changed)
    return state, events


# --- presence ----------------------------------------------------------------------------------


def _join(state: RoomState, actor: Actor) -> _Result:
    _authorize(state, "room:join", actor)
    standing = _standing(state, actor)
    if standing.effective_role is not Role.HOST:
        _require_live(state, "join")
    if role_of(state, actor.id) is not None:  # back within the grace period, or a second socket
        back = replace(state, away=tuple(a for a in state.away if a.user_id != actor.id))
        return _remember(back, actor.user), []
    assigned = assignment_for(state, actor.id)
    if assigned is None:
        return state, []
    seated, changed = _move(
        _remember(state, actor.user), actor.id, assigned.role, was_present=False
    )
    return seated, [changed]


def _leave(state: RoomState, actor: Actor, now_ms: int) -> _Result:
    role = role_of(state, actor.id)
    if role is Role.HOST:
        if state.status is RoomStatus.SCHEDULED:
            return state, []
        return _host_departs(state, now_ms, actor.id, "the host left")
    if role is None:
        return _drop_claims(state, actor.id), []
    left, changed = _move(state, actor.id, None)
    return left, [changed]


def _disconnect(state: RoomState, actor: Actor, now_ms: int, limits: StageLimits) -> _Result:
    role = role_of(state, actor.id)
    if role is None:
        return _drop_claims(state, actor.id), []
    if state.status is RoomStatus.SCHEDULED or away_deadline(state, actor.id) is not None:
        return state, []
    grace = limits.host_grace_ms if role is Role.HOST else limits.speaker_grace_ms
    deadline = now_ms + grace
    held = replace(state, away=(*state.away, Away(actor.id, deadline)))
    return held, [GraceStarted(actor.id, role, deadline)]


# --- the stage ---------------------------------------------------------------------------------


def _raise_hand(state: RoomState, actor: Actor, limits: StageLimits) -> _Result:
    _authorize(state, "stage:request", actor)
    _require_live(state, "raise a hand")
    if actor.id in state.requests:
        return state, []
    if len(state.requests) >= limits.max_requests:
        raise Full(f"the queue of raised hands is full ({limits.max_requests})")
    raised = replace(state, requests=(*state.requests, actor.id))
    return _remember(raised, actor.user), []


def _approve(state: RoomState, user_id: str, actor: Actor, limits: StageLimits) -> _Result:
    _authorize(state, "stage:approve", actor, target=user_id)
    _require_live(state, "approve")
    if user_id not in state.requests:
        raise Conflict(f"{person(state, user_id).name} has not raised a hand")
    _check_seat(state, Role.SPEAKER, user_id, limits)
    approved, changed = _move(state, user_id, Role.SPEAKER)
    return approved, [changed, Audited(AuditAction.APPROVE, actor.id, user_id, Role.SPEAKER.value)]


def _invite(state: RoomState, command: Invite, actor: Actor, limits: StageLimits) -> _Result:
    user_id, role, invitee = command.user_id, command.role, command.invitee
    if role not in _SEATS:
        raise Invalid("role must be speaker, cohost or moderator")
    if invitee is not None and invitee.id != user_id:
        raise Invalid("invitee does not match user_id")
    _authorize(state, "stage:invite", actor, target=user_id, granted_role=role)
    _require_live(state, "invite")
    current = role_of(state, user_id)
    if current is None and invitee is None:
        raise NotFound("that user is not in this room")
    if user_id in state.banned:
        raise Conflict("that user is banned from this room")
    if current is not None and current.rank >= role.rank:
        raise Conflict(f"{person(state, user_id).name} is already a {current}")
    pending = invitation_for(state, user_id)
    if pending is not None and pending.role is role:
        return state, []
    if pending is not None:  # replacing an invitation takes the authority to have made it
        _authorize(state, "stage:invite", actor, target=user_id, granted_role=pending.role)
    _check_seat(state, role, user_id, limits)
    invited = replace(
        state,
        invites=(
            *(i for i in state.invites if i.user_id != user_id),
            Invitation(user_id, role, actor.id),
        ),
    )
    if invitee is not None and current is None:
        invited = _remember(invited, invitee)
    return invited, [
        Invited(user_id, role, actor.user),
        Audited(AuditAction.INVITE, actor.id, user_id, role.value),
    ]


def _accept(state: RoomState, actor: Actor, limits: StageLimits) -> _Result:
    _authorize(state, "stage:accept", actor)
    _require_live(state, "accept")
    invitation = invitation_for(state, actor.id)
    if invitation is None:
        raise Conflict("you have no invitation to the stage")
    role = invitation.role
    _check_seat(state, role, actor.id, limits)  # holds already: the invitation took the seat
    if assignment_for(state, actor.id) is not None:  # promoted staff come back as what they are
        kept = (a for a in state.staff_assignments if a.user_id != actor.id)
        state = replace(state, staff_assignments=(*kept, StaffAssignment(actor.id, role)))
    seated, changed = _move(_remember(state, actor.user), actor.id, role)
    return seated, [changed, Audited(AuditAction.ACCEPT, actor.id, actor.id, role.value)]


def _demote(state: RoomState, user_id: str, actor: Actor) -> _Result:
    _authorize(state, "stage:demote", actor, target=user_id)
    _require_live(state, "demote")
    role = role_of(state, user_id)
    if role is Role.HOST:
        raise Conflict("the host cannot step down: leave or end the room")
    pending = invitation_for(state, user_id)
    assigned = assignment_for(state, user_id)
    if role is None and pending is None and assigned is None:
        raise Conflict(f"{person(state, user_id).name} is not on the stage")
    if pending is not None and user_id != actor.id:
        _authorize(state, "stage:invite", actor, target=user_id, granted_role=pending.role)
    demoted = _drop_assignment(state, user_id)
    if role is None:
        withdrawn = pending.role if pending else assigned.role if assigned else Role.LISTENER
        return _drop_claims(demoted, user_id), [
            Audited(AuditAction.WITHDRAW_INVITE, actor.id, user_id, withdrawn.value)
        ]
    demoted, changed = _move(demoted, user_id, Role.LISTENER)
    return demoted, [changed, Audited(AuditAction.DEMOTE, actor.id, user_id, role.value)]


def _mute(state: RoomState, user_id: str, actor: Actor) -> _Result:
    _authorize(state, "stage:mute", actor, target=user_id)
    _require_live(state, "mute")
    if role_of(state, user_id) not in STAGE:
        raise Conflict(f"{person(state, user_id).name} is not on the stage")
    if user_id in state.muted:
        return state, []
    events: list[Event] = [MuteChanged(user_id, muted=True)]
    if user_id != actor.id:
        events.append(Audited(AuditAction.MUTE, actor.id, user_id))
    return replace(state, muted=state.muted | {user_id}), events


def _unmute(state: RoomState, actor: Actor) -> _Result:
    _authorize(state, "stage:unmute", actor)
    _require_live(state, "unmute")
    if role_of(state, actor.id) not in STAGE:  # an admin passes the rule without a microphone
        raise Conflict("you are not on the stage")
    if actor.id not in state.muted:
        return state, []
    return replace(state, muted=state.muted - {actor.id}), [MuteChanged(actor.id, muted=False)]


def _remove(state: RoomState, user_id: str, ban: bool, actor: Actor) -> _Result:
    _authorize(state, "room:remove", actor, target=user_id)
    removed = _drop_assignment(_drop_claims(state, user_id), user_id)
    events: list[Event] = []
    if role_of(state, user_id) is not None:
        removed, changed = _move(removed, user_id, None)
        events.append(changed)
    if ban:
        removed = replace(removed, banned=removed.banned | {user_id})
    action = AuditAction.BAN if ban else AuditAction.REMOVE
    return removed, [*events, Removed(user_id, ban), Audited(action, actor.id, user_id)]


# --- bookkeeping -------------------------------------------------------------------------------


def _forget_strangers(state: RoomState) -> RoomState:
    """``people`` keeps only those the state still refers to."""
    known = {state.host, *state.cohosts, *state.moderators, *state.speakers, *state.requests}
    known.update(i.user_id for i in state.invites)
    if all(p.id in known for p in state.people):
        return state
    return replace(state, people=tuple(p for p in state.people if p.id in known))


def _roles(state: RoomState) -> dict[str, Role]:
    roles = {state.host: Role.HOST}
    roles.update(dict.fromkeys(state.cohosts, Role.COHOST))
    roles.update(dict.fromkeys(state.moderators, Role.MODERATOR))
    roles.update(dict.fromkeys(state.speakers, Role.SPEAKER))
    return roles


def _changed_keys(old: dict[str, Role], new: dict[str, Role]) -> set[str]:
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def _audience_view(state: RoomState) -> tuple[object, ...]:
    on_stage = {state.host, *state.cohosts, *state.moderators, *state.speakers}
    return (
        state.title,
        state.topics,
        state.market,
        state.status,
        state.scheduled_for,
        state.settings,
        state.host,
        state.cohosts,
        state.moderators,
        state.speakers,
        state.muted,
        len(state.requests),
        tuple(a.user_id for a in state.away),
        tuple(p for p in state.people if p.id in on_stage),
    )


def _stage_changed(old: RoomState, new: RoomState) -> StageChanged | None:
    """What a snapshot shows changed (the end is told by
    :class:`~liveroom.rooms.stage.RoomEnded`)."""
    if new.status is RoomStatus.ENDED:
        return None
    audience = _audience_view(old) != _audience_view(new)
    staff = (old.requests, old.invites, old.people) != (new.requests, new.invites, new.people)
    if not (audience or staff):
        return None
    # whose own `you` (role, hand_raised, invited_as) changed, in O(stage + queue)
    users = set(old.requests).symmetric_difference(new.requests)
    users |= _changed_keys(_roles(old), _roles(new))
    users |= _changed_keys(
        {i.user_id: i.role for i in old.invites}, {i.user_id: i.role for i in new.invites}
    )
    return StageChanged(audience=audience, users=tuple(sorted(users)))


def is_staff(state: RoomState, user_id: str | None, *, admin: bool = False) -> bool:
    """Whether the user sees the staff view (raised hands and invitations)."""
    return admin or (user_id is not None and role_of(state, user_id) in STAFF)
