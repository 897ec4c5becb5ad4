"""Long-running tasks with an owner: whoever starts one stops it and awaits it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from liveroom.clock import Clock
from liveroom.errors import LiveroomError

logger = logging.getLogger(__name__)


class Periodic:
    """Calls ``action`` every ``interval_s`` until stopped; a failing call is logged, not fatal.

    ``stop()`` cancels the loop while it waits, lets a call in progress finish (a write cancelled
    mid-transaction would leave its connection to fail the next one), and, when ``final`` is
    set, runs ``action`` once more (a flusher's last batch is written at shutdown).
    """

    def __init__(
        self,
        name: str,
        interval_s: float,
        action: Callable[[], Awaitable[None]],
        clock: Clock,
        *,
        final: bool = False,
    ) -> None:
        self.name = name
        self._interval = interval_s
        self._action = action
        self._clock = clock
        self._final = final
        self._task: asyncio.Task[None] | None = None
        self._acting = False
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            if not self._acting:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self._final:
                await self._action()

    async def _run(self) -> None:
        while not self._stopping:
            await self._clock.sleep(self._interval)
            self._acting = True
            try:
                await self._action()
            except Exception:
                logger.exception("%s failed; next try in %ss", self.name, self._interval)
            finally:
                self._acting = False


class Spawned:
    """One-off tasks an owner starts (say, a message sent after the current event's ack) and
    cancels and awaits when it stops. A task's failure is logged, not lost; a
    :class:`~liveroom.errors.LiveroomError` (a room that ended meanwhile) is expected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, LiveroomError):
            logger.error("%s: a task failed", self.name, exc_info=error)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class KeyedLocks:
    """One lock per key (a room), made on first use; :meth:`retain` forgets idle ones."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def drop(self, key: str) -> None:
        self._locks.pop(key, None)

    def release(self, key: str) -> None:
        """Forget ``key``'s lock unless it is held."""
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]

    def retain(self, keys: set[str]) -> None:
        """Forget the locks of other keys that nobody holds."""
        for key in [k for k, lock in self._locks.items() if k not in keys and not lock.locked()]:
            del self._locks[key]
