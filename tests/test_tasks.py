"""The owners of long-running tasks: a periodic call in progress is let finish when stopped."""

from __future__ import annotations

import asyncio

from liveroom.tasks import Periodic
from tests.fakes import FakeClock, eventually


async def test_stopping_lets_a_call_in_progress_finish(fake_clock: FakeClock) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def write() -> None:
        started.set()
        await release.wait()  # a transaction under way
        finished.append("written")

    periodic = Periodic("flush", 1.0, write, fake_clock)
    periodic.start()
    await eventually(lambda: fake_clock.sleepers == 1)
    await fake_clock.advance(1.0)
    await started.wait()
    stopping = asyncio.create_task(periodic.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waits for the write, does not cancel it
    release.set()
    await stopping
    assert finished == ["written"]


async def test_stopping_a_waiting_loop_is_immediate(fake_clock: FakeClock) -> None:
    calls: list[int] = []

    async def flush() -> None:
        calls.append(1)

    periodic = Periodic("flush", 10.0, flush, fake_clock, final=True)
    periodic.start()
    await eventually(lambda: fake_clock.sleepers == 1)
    await periodic.stop()
    assert calls == [1]  # only the final call
