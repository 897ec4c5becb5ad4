"""Who may send which event, as data.

One :data:`RULES` table covers every client event of PROTOCOL.md. The signaling layer checks it
before any service runs (:func:`authorize`); the stage model calls the same function under the
room's lock, where the target's role is authoritative. ``docs/permissions.md`` is generated from
this module (``liveroom docs permissions``) and a test keeps it current.

Authority (PROTOCOL.md "Roles and authority"): host > cohost > moderator > speaker > listener. A
moderating action may only target a strictly lower rank; only the host names or removes co-hosts
and moderators; a user may always demote or mute themself; nobody unmutes someone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum

from liveroom.errors import Forbidden


class Role(StrEnum):
    HOST = "host"
    COHOST = "cohost"
    MODERATOR = "moderator"
    SPEAKER = "speaker"
    LISTENER = "listener"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.HOST: 4, Role.COHOST: 3, Role.MODERATOR: 2, Role.SPEAKER: 1, Role.LISTENER: 0}

STAFF: frozenset[Role] = frozenset({Role.HOST, Role.COHOST, Role.MODERATOR})
"""Moderate the stage and Q&A."""

STAGE: frozenset[Role] = frozenset({Role.HOST, Role.COHOST, Role.SPEAKER})
"""On stage, with a microphone."""

MEMBERS: frozenset[Role] = frozenset(Role)


class Scope(Enum):
    """What an event's payload names, so the signaling layer can find the actor's room."""

    SERVER = "server"  # no room: room:create, user:block, user:blocks, time:sync
    ROOM = "room"  # payload.room_id
    QUESTION = "question"  # payload.question_id → its room
    PLAYLIST_ITEM = "playlist_item"  # payload.item_id → its room


class Who(Enum):
    ANYONE = "anyone"
    HOST_GRANT = "token with grants.host"
    ROLES = "roles"
    PLAYLIST_CONTROLLERS = "playlist controllers"


class Target(Enum):
    NONE = "—"
    LOWER_RANK = "strictly lower rank"
    LOWER_RANK_OR_SELF = "strictly lower rank, or self"


@dataclass(frozen=True, slots=True)
class Standing:
    """Who the actor (or a target) is where an event applies.

    ``role`` is ``None`` for someone who is not a member of the room. ``admin`` (token grant)
    acts in any room as its host.
    """

    role: Role | None = None
    banned: bool = False
    admin: bool = False
    host_grant: bool = False
    playlist_open: bool = False

    @property
    def effective_role(self) -> Role | None:
        return Role.HOST if self.admin else self.role

    @property
    def rank(self) -> int:
        role = self.effective_role
        return role.rank if role is not None else -1


@dataclass(frozen=True, slots=True)
class Rule:
    event: str
    scope: Scope
    who: Who
    roles: frozenset[Role] = frozenset()
    target: Target = Target.NONE
    host_only_targets: frozenset[Role] = frozenset()
    """Target roles only the host may act on (naming and removing co-hosts and moderators)."""
    host_only_grants: frozenset[Role] = frozenset()
    """Roles only the host may hand out (``stage:invite``)."""
    banned_allowed: bool = False
    note: str = ""


def _rule(
    event: str,
    scope: Scope,
    who: Who | Iterable[Role],
    *,
    target: Target = Target.NONE,
    host_only_targets: frozenset[Role] = frozenset(),
    host_only_grants: frozenset[Role] = frozenset(),
    banned_allowed: bool = False,
    note: str = "",
) -> Rule:
    roles: frozenset[Role] = frozenset()
    if not isinstance(who, Who):
        roles, who = frozenset(who), Who.ROLES
    return Rule(
        event,
        scope,
        who,
        roles=roles,
        target=target,
        host_only_targets=host_only_targets,
        host_only_grants=host_only_grants,
        banned_allowed=banned_allowed,
        note=note,
    )


_R, _Q, _I, _S = Scope.ROOM, Scope.QUESTION, Scope.PLAYLIST_ITEM, Scope.SERVER
_HOST = {Role.HOST}

RULES: dict[str, Rule] = {
    r.event: r
    for r in (
        _rule("room:create", _S, Who.HOST_GRANT, note="the creator becomes host"),
        _rule("room:start", _R, _HOST),
        _rule("room:update", _R, _HOST),
        _rule("room:remind", _R, Who.ANYONE, note="scheduled rooms"),
        _rule("room:join", _R, Who.ANYONE),
        _rule("room:leave", _R, MEMBERS),
        _rule("room:end", _R, _HOST),
        _rule("room:members", _R, STAFF),
        _rule(
            "room:remove",
            _R,
            STAFF,
            target=Target.LOWER_RANK,
            host_only_targets=frozenset({Role.COHOST, Role.MODERATOR}),
            note="with `ban`, the user cannot rejoin; an admin may ban server-wide",
        ),
        _rule("room:report", _R, MEMBERS),
        _rule("user:block", _S, Who.ANYONE, banned_allowed=True, note="hides from oneself only"),
        _rule("user:blocks", _S, Who.ANYONE, banned_allowed=True, note="one's own block list"),
        _rule("stage:request", _R, {Role.LISTENER}),
        _rule("stage:cancel", _R, {Role.LISTENER}),
        _rule("stage:approve", _R, STAFF, target=Target.LOWER_RANK, note="a raised hand"),
        _rule(
            "stage:invite",
            _R,
            STAFF,
            target=Target.LOWER_RANK,
            host_only_grants=frozenset({Role.COHOST, Role.MODERATOR}),
            note="co-hosts and moderators may invite speakers only",
        ),
        _rule("stage:accept", _R, MEMBERS, note="the invitee"),
        _rule("stage:decline", _R, MEMBERS, note="the invitee"),
        _rule(
            "stage:demote",
            _R,
            STAFF,
            target=Target.LOWER_RANK_OR_SELF,
            host_only_targets=frozenset({Role.COHOST, Role.MODERATOR}),
        ),
        _rule("stage:mute", _R, STAFF, target=Target.LOWER_RANK_OR_SELF),
        _rule("stage:unmute", _R, STAGE, note="self only: remote unmute does not exist"),
        _rule("rtc:offer", _R, MEMBERS, note="publishing only when on stage"),
        _rule("react", _R, MEMBERS),
        _rule("qa:ask", _R, MEMBERS),
        _rule("qa:list", _R, MEMBERS),
        _rule("qa:vote", _Q, MEMBERS),
        _rule("qa:unvote", _Q, MEMBERS),
        _rule("qa:approve", _Q, STAFF),
        _rule("qa:reject", _Q, STAFF),
        _rule("qa:pin", _Q, STAFF),
        _rule("qa:answered", _Q, STAFF),
        _rule("qa:bring_to_stage", _Q, STAFF),
        _rule("qa:delete", _Q, STAFF),
        _rule("qa:withdraw", _Q, MEMBERS, note="the author"),
        _rule("playlist:add", _R, MEMBERS, note="in `host` mode, non-staff adds are suggestions"),
        _rule("playlist:approve", _I, STAFF, note="a suggestion joins the queue"),
        _rule("playlist:remove", _I, Who.PLAYLIST_CONTROLLERS),
        _rule("playlist:move", _I, Who.PLAYLIST_CONTROLLERS),
        _rule("playlist:play", _R, Who.PLAYLIST_CONTROLLERS),
        _rule("playlist:pause", _R, Who.PLAYLIST_CONTROLLERS),
        _rule("playlist:seek", _R, Who.PLAYLIST_CONTROLLERS),
        _rule("playlist:next", _R, Who.PLAYLIST_CONTROLLERS),
        _rule("playlist:previous", _R, Who.PLAYLIST_CONTROLLERS),
        _rule("playlist:repeat", _R, Who.PLAYLIST_CONTROLLERS),
        _rule("playlist:vote_skip", _R, MEMBERS),
        _rule("playlist:ready", _R, MEMBERS),
        _rule("time:sync", _S, Who.ANYONE, banned_allowed=True),
    )
}


def playlist_controllers(playlist_open: bool) -> frozenset[Role]:
    """Staff control the playlist; in ``open`` mode everyone on stage does too."""
    return STAFF | STAGE if playlist_open else STAFF


def _actor_allowed(rule: Rule, actor: Standing) -> bool:
    if rule.who is Who.ANYONE:
        return True
    if rule.who is Who.HOST_GRANT:
        return actor.host_grant or actor.admin
    # An admin acts as host, and may still do what their own role does (raise a hand).
    roles = {r for r in (actor.effective_role, actor.role) if r is not None}
    if not roles:
        return False
    if rule.who is Who.PLAYLIST_CONTROLLERS:
        return bool(roles & playlist_controllers(actor.playlist_open))
    return bool(roles & rule.roles)


def authorize(
    rule: Rule,
    actor: Standing,
    *,
    target: Standing | None = None,
    is_self: bool = False,
    granted_role: Role | None = None,
) -> None:
    """Raise :class:`Forbidden` unless ``actor`` may send ``rule.event`` (at ``target``).

    ``target`` is the standing of the user the event acts on, when it has one; ``is_self`` says
    that user is the actor. ``granted_role`` is the role an invitation hands out.
    """
    if actor.banned and not rule.banned_allowed:
        raise Forbidden("you are banned from this room")
    self_action = is_self and rule.target is Target.LOWER_RANK_OR_SELF
    if self_action:
        if actor.effective_role is None:
            raise Forbidden(f"{rule.event}: join the room first")
        return
    if not _actor_allowed(rule, actor):
        if rule.scope is not Scope.SERVER and actor.effective_role is None:
            raise Forbidden(f"{rule.event}: join the room first")
        raise Forbidden(f"{rule.event} is not allowed for {_describe(actor)}")
    if granted_role in rule.host_only_grants and actor.effective_role is not Role.HOST:
        raise Forbidden(f"only the host can make someone {granted_role}")
    if rule.target is Target.NONE or target is None:
        return
    if is_self:
        raise Forbidden(f"{rule.event} cannot target yourself")
    if target.role in rule.host_only_targets and actor.effective_role is not Role.HOST:
        raise Forbidden(f"only the host can {rule.event.split(':')[1]} a {target.role}")
    if target.rank >= actor.rank:
        raise Forbidden(f"{rule.event}: the target's role is not below yours")


def _describe(actor: Standing) -> str:
    role = actor.effective_role
    return "non-members" if role is None else f"a {role}"


def rule_for(event: str) -> Rule | None:
    return RULES.get(event)
