"""What each webhook event carries (its ``data``), from the rooms' own values. Pure.

Times are epoch milliseconds, like the protocol's. Speaker events follow the stage: a user
joins it when their role becomes host, co-host or speaker, and leaves it when the role stops
being one (moved to the audience, left the room, removed, or the room ended). The host is on
stage from ``room_started`` on and is not announced separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from liveroom.permissions import STAGE
from liveroom.qa.model import Question
from liveroom.rooms.stage import AuditAction, Audited, RoleChanged, RoomEnded, RoomState
from liveroom.stats.model import RecordBroken
from liveroom.webhooks.model import ROOM_ENDED, SPEAKER_JOINED, SPEAKER_LEFT

Data = dict[str, Any]


def name_of(state: RoomState, user_id: str) -> str | None:
    return next((p.name for p in state.people if p.id == user_id), None)


def room_started(state: RoomState, reminded: Sequence[str]) -> Data:
    """``reminded``: who asked to be told when the room starts (empty for a room that was
    live from its creation)."""
    return {
        "room_id": state.id,
        "title": state.title,
        "host_id": state.host,
        "host_name": name_of(state, state.host),
        "market": state.market,
        "topics": list(state.topics),
        "scheduled_for": state.scheduled_for,
        "started_at": state.started_at,
        "reminded_user_ids": list(reminded),
    }


def room_ended(state: RoomState, ended_by: str | None, reason: str) -> Data:
    """``ended_by``: who ended it (``None``: the server, when the host's seat ran out);
    ``reason``: why, when the room ended by itself (``None`` for an ``room:end``)."""
    return {
        "room_id": state.id,
        "title": state.title,
        "host_id": state.host,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "ended_by": ended_by,
        "reason": reason or None,
    }


def speaker_change(
    state: RoomState, change: RoleChanged, known_name: str | None
) -> tuple[str, Data] | None:
    """``speaker_joined``/``speaker_left`` for a role change onto or off the stage; ``None``
    for any other (a listener made moderator, a co-host made host)."""
    was, now = change.old_role in STAGE, change.new_role in STAGE
    if was == now:
        return None
    data: Data = {
        "room_id": state.id,
        "user_id": change.user_id,
        "name": name_of(state, change.user_id) or known_name,
        "role": change.new_role.value if change.new_role else None,
        "previous_role": change.old_role.value if change.old_role else None,
    }
    return (SPEAKER_JOINED if now else SPEAKER_LEFT), data


def stage_events(
    state: RoomState, events: Iterable[Any], names: dict[str, str]
) -> list[tuple[str, Data]]:
    """The webhook events in one stage change, in order; ``names``: display names of users on
    stage seen before (those who left may be gone from ``state.people``)."""
    out: list[tuple[str, Data]] = []
    reason, ended_by = "", None
    ended = False
    for event in events:
        if isinstance(event, RoleChanged):
            change = speaker_change(state, event, names.get(event.user_id))
            if change is not None:
                out.append(change)
        elif isinstance(event, RoomEnded):
            ended = True
        elif isinstance(event, Audited) and event.action is AuditAction.END:
            reason, ended_by = event.detail, event.actor_id
    if ended:
        out.append((ROOM_ENDED, room_ended(state, ended_by, reason)))
    return out


def question_asked(question: Question) -> Data:
    """The question as staff see it: with its author, even when it is anonymous to the room
    (``anonymous`` says so; a receiver showing it to others must leave the author out)."""
    return {
        "room_id": question.room_id,
        "question_id": question.id,
        "text": question.text,
        "anonymous": question.anonymous,
        "status": question.status.value,
        "author": {"id": question.author.id, "name": question.author.name},
        "asked_at": question.created_at,
    }


def record_broken(room_id: str, broken: RecordBroken, state: RoomState | None) -> Data:
    return {
        "room_id": room_id,
        "title": state.title if state else None,
        "host_id": state.host if state else None,
        "metric": broken.metric.value,
        "scope": broken.scope.value,
        "value": broken.value,
        "previous": broken.previous,
    }
