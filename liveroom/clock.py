"""Time, injected: services take a :class:`Clock` so tests can advance it instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time for timestamps, monotonic time for intervals, and a sleep that honours both."""

    def now_ms(self) -> int:
        """Epoch milliseconds, UTC: the protocol's ``at``/``t1``/``t2``."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes back. For rates, timers and durations."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
