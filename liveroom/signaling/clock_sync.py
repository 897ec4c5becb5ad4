"""``time:sync``: the client estimates its offset from the server clock (NTP-style t0/t1/t2),
and may report its latest round trip (synchronized starts are scheduled after the slowest)."""

from __future__ import annotations

from typing import Protocol

from liveroom.clock import Clock
from liveroom.signaling.payloads import TimeSync
from liveroom.signaling.registry import Ack, EventContext, EventRegistry


class RoundTripBook(Protocol):
    def report(self, sid: str, rtt_ms: float) -> None: ...


def register(registry: EventRegistry, clock: Clock, round_trips: RoundTripBook) -> None:
    async def time_sync(ctx: EventContext, payload: TimeSync) -> Ack:
        t1 = clock.now_ms()
        if payload.rtt is not None:
            round_trips.report(ctx.sid, payload.rtt)
        return {"t0": payload.t0, "t1": t1, "t2": clock.now_ms()}

    registry.add("time:sync", TimeSync, time_sync)
