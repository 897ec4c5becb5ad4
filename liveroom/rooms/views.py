"""Room snapshots: PROTOCOL.md's "Room snapshot", as each viewer may see it.

Staff (host, co-hosts, moderators, and admins acting as host) also get the raised hands and the
invitations; the audience gets ``request_count`` only, so that a room where everyone raises a
hand never sends the queue to everyone. The service sending the audience view to thousands
builds :func:`room_view` once and adds each listener's :func:`you_view`.

Values are JSON-ready: enums become their strings, times stay epoch milliseconds.
"""

from __future__ import annotations

from typing import Any

from liveroom.permissions import Role
from liveroom.rooms.model import invitation_for, is_staff, role_of
from liveroom.rooms.stage import RoomSettings, RoomState, UserInfo


def user_view(user: UserInfo) -> dict[str, Any]:
    """PROTOCOL.md's User."""
    return {"id": user.id, "name": user.name, "verified": user.verified}


def settings_view(settings: RoomSettings) -> dict[str, Any]:
    return {
        "qa_mode": settings.qa_mode.value,
        "playlist_mode": settings.playlist_mode.value,
        "playlist_output": settings.playlist_output.value,
        "recording": settings.recording,
        "on_host_leave": settings.on_host_leave.value,
        "qa_return_to_audience": settings.qa_return_to_audience,
    }


def room_view(state: RoomState, listener_count: int, *, staff: bool) -> dict[str, Any]:
    """The snapshot without ``you``; with ``requests`` and ``invites`` only when ``staff``.

    Besides PROTOCOL.md's fields it carries ``away``: stage members whose seat is held while they
    reconnect, in stage order.
    """
    people = {p.id: p for p in state.people}

    def who(user_id: str) -> UserInfo:
        return people.get(user_id) or UserInfo(user_id, user_id)

    def users(ids: tuple[str, ...]) -> list[dict[str, Any]]:
        return [user_view(who(i)) for i in ids]

    on_stage = (state.host, *state.cohosts, *state.speakers)
    held = {a.user_id for a in state.away}
    view: dict[str, Any] = {
        "id": state.id,
        "title": state.title,
        "topics": list(state.topics),
        "market": state.market,
        "status": state.status.value,
        "scheduled_for": state.scheduled_for,
        "created_at": state.created_at,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "host": user_view(who(state.host)),
        "cohosts": users(state.cohosts),
        "moderators": users(state.moderators),
        "speakers": users(state.speakers),
        "muted": [u for u in on_stage if u in state.muted],
        "away": [u for u in (*on_stage, *state.moderators) if u in held],
        "request_count": len(state.requests),
        "listener_count": listener_count,
        "settings": settings_view(state.settings),
        "version": state.version,
    }
    if staff:
        view["requests"] = users(state.requests)
        view["invites"] = [
            {"id": i.user_id, "name": who(i.user_id).name, "role": i.role.value}
            for i in state.invites
        ]
    return view


def you_view(state: RoomState, viewer_id: str | None) -> dict[str, Any]:
    """The viewer's own standing. ``viewer_id`` is ``None`` for someone outside the room (an HTTP
    listing); any other viewer without a stage role is a listener."""
    if viewer_id is None:
        return {"role": None, "hand_raised": False, "invited_as": None}
    invitation = invitation_for(state, viewer_id)
    return {
        "role": (role_of(state, viewer_id) or Role.LISTENER).value,
        "hand_raised": viewer_id in state.requests,
        "invited_as": invitation.role.value if invitation else None,
    }


def snapshot(
    state: RoomState, viewer_id: str | None, listener_count: int, *, admin: bool = False
) -> dict[str, Any]:
    """The room as ``viewer_id`` sees it (``room`` in acks, and ``room:state``).

    The viewer's role comes from the state, the one source of truth; ``admin`` (token grant)
    sees the staff view in any room.
    """
    staff = is_staff(state, viewer_id, admin=admin)
    return {**room_view(state, listener_count, staff=staff), "you": you_view(state, viewer_id)}
