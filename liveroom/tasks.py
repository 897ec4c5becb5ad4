"""Long-running tasks with an owner: whoever starts one stops it and awaits it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from liveroom.clock import Clock

logger = logging.getLogger(__name__)


class Periodic:
    """Calls ``action`` every ``interval_s`` until stopped; a failing call is logged, not fatal.

    ``stop()`` cancels the loop, awaits it and, when ``final`` is set, runs ``action`` once more
    (a flusher's last batch is written at shutdown).
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

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self._final:
                await self._action()

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            try:
                await self._action()
            except Exception:
                logger.exception("%s failed; next try in %ss", self.name, self._interval)
