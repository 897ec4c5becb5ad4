"""``time:sync``: the client estimates its offset from the server clock (NTP-style t0/t1/t2)."""

from __future__ import annotations

from liveroom.clock import Clock
from liveroom.signaling.payloads import TimeSync
from liveroom.signaling.registry import Ack, EventContext, EventRegistry


def register(registry: EventRegistry, clock: Clock) -> None:
    async def time_sync(ctx: EventContext, payload: TimeSync) -> Ack:
        t1 = clock.now_ms()
        return {"t0": payload.t0, "t1": t1, "t2": clock.now_ms()}

    registry.add("time:sync", TimeSync, time_sync)
