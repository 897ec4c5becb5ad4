"""Hand-written fakes for tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

START_MS = 1_795_000_000_000  # 2026-11-18, a fixed "now" so tests never depend on the date


class FakeClock:
    """A :class:`liveroom.clock.Clock` that moves only when a test calls :meth:`advance`."""

    def __init__(self, start_ms: int = START_MS) -> None:
        self._now = start_ms / 1000
        self._origin = self._now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now_ms(self) -> int:
        return round(self._now * 1000)

    def monotonic(self) -> float:
        return self._now - self._origin

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose time has come, in order."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            if not future.done():
                future.set_result(None)
            # Let the woken task run (and maybe sleep again) before time moves on.
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target

    @property
    def sleepers(self) -> int:
        return sum(1 for *_, f in self._sleepers if not f.done())


class StallableClock:
    """The real clock, whose timers a test can hold as in a long pause of the process (a GC
    storm, a VM frozen): every periodic task stops at its next sleep while sockets are still
    served, and monotonic time jumps ahead by the pause's length. :meth:`resume` lets them go."""

    def __init__(self) -> None:
        self._ahead = 0.0
        self._running = asyncio.Event()
        self._running.set()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic() + self._ahead

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._running.wait()

    def stall(self, paused_s: float) -> None:
        self._running.clear()
        self._ahead += paused_s

    def resume(self) -> None:
        self._running.set()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) for real I/O started by a fake-clock tick to finish: a thread-pool database
    call, a socket write. Fails the test on timeout."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)
