"""What the rooms tell the webhooks: a stage observer, and hooks for room starts, questions and
listener records. Every method only queues (see :class:`~liveroom.webhooks.sender.WebhookSender`),
so a room never waits for a receiver."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from liveroom.clock import Clock
from liveroom.qa.model import Question
from liveroom.rooms.stage import RoomState, RoomStatus
from liveroom.stats.model import RecordBroken
from liveroom.webhooks import payloads
from liveroom.webhooks.model import (
    QUESTION_ASKED,
    RECORD_BROKEN,
    ROOM_STARTED,
    SPEAKER_JOINED,
    SPEAKER_LEFT,
    make_event,
)
from liveroom.webhooks.sender import WebhookSender

logger = logging.getLogger(__name__)

RoomLookup = Callable[[str], RoomState | None]


class WebhookNotifier:
    """Turns the product's events into webhook events. Does nothing when no URL is set."""

    def __init__(self, sender: WebhookSender, clock: Clock, room: RoomLookup) -> None:
        self._sender = sender
        self._clock = clock
        self._room = room
        # Names of those on stage, by room: a speaker who left the room may be gone from the
        # state's people by the time their speaker_left is sent. At most a stage's worth a room.
        self._names: dict[str, dict[str, str]] = {}

    def _send(self, event_type: str, data: dict[str, Any]) -> None:
        event = make_event(secrets.token_hex(16), event_type, self._clock.now_ms(), data)
        self._sender.send(event)
        logger.debug("webhook %s %s queued for room %s", event_type, event.id, data.get("room_id"))

    # --- hooks ---------------------------------------------------------------------------------

    def room_started(self, state: RoomState, reminded: Sequence[str]) -> None:
        if self._sender.enabled:
            self._send(ROOM_STARTED, payloads.room_started(state, reminded))

    def question_asked(self, question: Question) -> None:
        if self._sender.enabled:
            self._send(QUESTION_ASKED, payloads.question_asked(question))

    def record_broken(self, room_id: str, broken: RecordBroken) -> None:
        if self._sender.enabled:
            self._send(RECORD_BROKEN, payloads.record_broken(room_id, broken, self._room(room_id)))

    # --- a stage observer ----------------------------------------------------------------------

    def room_opened(self, state: RoomState) -> None:
        pass

    async def member_left(self, room_id: str, user_id: str) -> None:
        pass

    async def stage_changed(self, state: RoomState, events: Iterable[Any]) -> None:
        if not self._sender.enabled:
            return
        names = self._names.setdefault(state.id, {})
        for event_type, data in payloads.stage_events(state, events, names):
            if event_type == SPEAKER_JOINED and data["name"] is not None:
                names[data["user_id"]] = data["name"]
            elif event_type == SPEAKER_LEFT:
                names.pop(data["user_id"], None)
            self._send(event_type, data)
        if state.status is RoomStatus.ENDED or not names:
            self._names.pop(state.id, None)
