"""``liveroom bot``: a scripted member that plays a file into a room or records what it hears.

It joins, accepts a pending invitation to the stage, unmutes itself and publishes when it has
something to play; it follows ``rtc:restart`` (a role change) by offering again; ``--record``
writes what it heard to a WAV file (48 kHz mono 16-bit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from liveroom.client import LiveroomClient
from liveroom.client.audio import AudioSession, Recording, open_audio
from liveroom.media.mixer import SAMPLE_RATE

logger = logging.getLogger(__name__)

ON_STAGE = {"host", "cohost", "speaker"}


@dataclass(frozen=True, slots=True)
class BotPlan:
    server: str
    token: str
    room_id: str
    play: Path | None = None
    record: Path | None = None
    seconds: float | None = None


def write_wav(recording: Recording, path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(recording.pcm().tobytes())


class RoomAudio:
    """A member's audio in one room, renegotiated whenever the server sends ``rtc:restart``."""

    def __init__(
        self,
        client: LiveroomClient,
        room_id: str,
        ice_servers: list[dict[str, Any]],
        source: Callable[[], MediaStreamTrack | None],
    ) -> None:
        self.client = client
        self.room_id = room_id
        self.ice_servers = ice_servers
        self._source = source
        self.recording = Recording()
        self.session: AudioSession | None = None
        self._follow: asyncio.Task[None] | None = None

    async def start(self, on_stage: bool) -> None:
        # Restarts sent before this connection (for the role we already have) are stale.
        self.client.clear("rtc:restart")
        await self._connect(on_stage)
        self._follow = asyncio.create_task(self._follow_restarts())

    async def _connect(self, on_stage: bool) -> None:
        if self.session is not None:
            await self.session.close()
        publish = self._source() if on_stage else None
        self.session = await open_audio(
            self.client,
            self.room_id,
            publish=publish,
            ice_servers=self.ice_servers,
            into=self.recording,
        )

    async def _follow_restarts(self) -> None:
        while True:
            restart = await self.client.next_event(
                "rtc:restart", lambda e: e.get("room_id") == self.room_id, timeout=None
            )
            logger.info("rtc:restart (%s): offering again", restart.get("reason"))
            try:
                state = await self.client.request("room:join", {"room_id": self.room_id})
                await self._connect(state["room"]["you"]["role"] in ON_STAGE)
            except Exception:
                logger.exception(
                    "renegotiating in room %s failed; waiting for the next restart", self.room_id
                )

    async def close(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        if self.session is not None:
            await self.session.close()


async def get_on_stage(client: LiveroomClient, room_id: str, you: dict[str, Any]) -> None:
    """Accept an invitation, or raise a hand and wait to be approved or invited."""
    while you["role"] not in ON_STAGE:
        if you["invited_as"] in ON_STAGE:
            await client.request("stage:accept", {"room_id": room_id})
            you = (await client.request("room:join", {"room_id": room_id}))["room"]["you"]
            continue
        if not you["hand_raised"]:
            await client.request("stage:request", {"room_id": room_id})
            logger.info("hand raised in room %s: waiting to be brought on stage", room_id)
        state = await client.next_event(
            "room:state",
            lambda s: (
                s["id"] == room_id
                and (s["you"]["role"] in ON_STAGE or s["you"]["invited_as"] in ON_STAGE)
            ),
            timeout=None,
        )
        you = state["you"]


async def run_bot(plan: BotPlan) -> int:
    """Run one bot; the exit status for the CLI."""
    client = await LiveroomClient.connect(plan.server, plan.token)
    player = MediaPlayer(str(plan.play)) if plan.play else None
    # Each connection gets its own subscription: closing one must not stop the player.
    relay = MediaRelay()
    audio: RoomAudio | None = None
    try:
        joined = await client.request("room:join", {"room_id": plan.room_id})
        you = joined["room"]["you"]
        if player is not None:
            await get_on_stage(client, plan.room_id, you)
            await client.request("stage:unmute", {"room_id": plan.room_id})
        audio = RoomAudio(
            client,
            plan.room_id,
            joined["media"]["ice_servers"],
            lambda: relay.subscribe(player.audio) if player and player.audio else None,
        )
        await audio.start(on_stage=player is not None)
        if plan.seconds is not None:
            await asyncio.sleep(plan.seconds)
        else:
            await client.disconnected.wait()
    finally:
        if audio is not None:
            await audio.close()
            if plan.record is not None:
                write_wav(audio.recording, plan.record)
        if player is not None and player.audio is not None:
            player.audio.stop()  # ends the player's decoding thread (the relay does not)
        await client.close()
    return 0
