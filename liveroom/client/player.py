"""Following a room's playlist from the SDK: the server clock (``time:sync``), the room's
playback (``playlist:state``) and where the room is now, by this client's own clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from liveroom.client import LiveroomClient
from liveroom.client.sync import ClockOffset, Sample


def wall_ms() -> float:
    return time.time() * 1000


class PlaylistFollower:
    """``now_ms`` is this client's clock (tests inject a skewed one)."""

    def __init__(
        self, client: LiveroomClient, room_id: str, now_ms: Callable[[], float] = wall_ms
    ) -> None:
        self.client = client
        self.room_id = room_id
        self.now_ms = now_ms
        self.clock = ClockOffset()

    async def sync_clock(self, samples: int = 8) -> None:
        """A few ``time:sync`` round trips (each reports the best round trip so far)."""
        for _ in range(samples):
            t0 = self.now_ms()
            payload: dict[str, Any] = {"t0": t0}
            if self.clock.ready:
                payload["rtt"] = max(
                    0.0, self.clock.rtt_ms
                )  # whole-ms server stamps: may dip below 0
            ack = await self.client.request("time:sync", payload)
            self.clock.add(Sample(t0, ack["t1"], ack["t2"], self.now_ms()))

    def playback(self) -> dict[str, Any] | None:
        """The latest playback this client was told of."""
        states = [s for s in self.client.events("playlist:state") if s["room_id"] == self.room_id]
        return states[-1]["playback"] if states else None

    async def until_playing(self, timeout: float = 10) -> dict[str, Any]:
        """Wait for a playback that plays (reads the inbox without taking from it)."""
        async with asyncio.timeout(timeout):
            while True:
                playback = self.playback()
                if playback is not None and playback["playing"]:
                    return playback
                await asyncio.sleep(0.02)

    def position_s(self) -> float | None:
        """Where the room's item is now, from the server's playback and this clock's offset."""
        playback = self.playback()
        if playback is None or playback["item_id"] is None:
            return None
        server_now = self.clock.server_time(self.now_ms())
        position = float(playback["position_s"])
        if playback["playing"] and server_now > playback["at"]:
            position += (server_now - playback["at"]) / 1000 * playback["rate"]
        states = [s for s in self.client.events("playlist:state") if "items" in s]
        items = {i["id"]: i for i in states[-1]["items"]} if states else {}
        duration = items.get(playback["item_id"], {}).get("duration_s")
        return min(position, duration) if duration is not None else position
