"""The stats service with a fake clock: counts in memory, one write per interval for every room,
records told once, and exact counts across a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.db.session import session_factory
from liveroom.stats.model import (
    Figures,
    Metric,
    RecordBars,
    RecordBroken,
    RoomInfo,
    RoomRecord,
    Scope,
)
from liveroom.stats.service import StatsConfig, StatsService
from liveroom.stats.store import MemoryStatsStore, Resumed, SqlStatsStore, StatsStore
from tests.fakes import START_MS, FakeClock, eventually
from tests.stats.test_store import Transactions

INTERVAL_S = 10.0


@contextlib.asynccontextmanager
async def running(
    store: StatsStore,
    clock: FakeClock,
    records: list[tuple[str, RecordBroken]] | None = None,
) -> AsyncIterator[StatsService]:
    async def told(room_id: str, record: RecordBroken) -> None:
        if records is not None:
            records.append((room_id, record))

    service = StatsService(store, clock, StatsConfig(sample_interval_s=INTERVAL_S), told)
    service.start()
    try:
        await eventually(lambda: clock.sleepers == 1)  # the sampler waits on the clock
        yield service
    finally:
        await service.stop()


async def started(service: StatsService, room_id: str, host_id: str = "host") -> None:
    service.room_started(room_id, host_id, f"Room {room_id}")
    await eventually(lambda: service.figures(room_id) is not None)  # stored figures loaded


async def interval(clock: FakeClock) -> None:
    """Let one sampling interval pass and its write finish (the sampler sleeps again)."""
    await clock.advance(INTERVAL_S)
    await eventually(lambda: clock.sleepers == 1)


async def test_a_thousand_joins_in_ten_rooms_are_one_transaction_per_interval(
    engine: AsyncEngine, fake_clock: FakeClock
) -> None:
    rooms = [f"room-{i}" for i in range(10)]
    async with running(SqlStatsStore(session_factory(engine)), fake_clock) as stats:
        for room in rooms:
            await started(stats, room)
        sql = Transactions(engine)
        for i in range(1000):
            stats.joined(rooms[i % 10], f"fan-{i}", guest=i % 2 == 0, market="KR")
        for i in range(250):
            stats.left(rooms[i % 10], f"fan-{i}")
        assert (sql.commits, sql.writes) == (0, 0)  # nothing is written per join or leave

        await interval(fake_clock)
        assert sql.commits == 1

        await fake_clock.advance(1)
        stats.joined("room-0", "late", guest=False, market=None)
        await interval(fake_clock)
        assert sql.commits == 2

    async with engine.connect() as conn:
        samples = (
            await conn.execute(
                text("SELECT listeners FROM listener_samples WHERE at = :t"),
                {"t": START_MS + 10_000},
            )
        ).scalars()
        assert sorted(samples) == [75] * 10  # 100 joined each room, 25 left
        seen = await conn.scalar(text("SELECT count(*) FROM room_listeners"))
        assert seen == 1001
        unique = await conn.scalar(
            text("SELECT unique_listeners FROM room_records WHERE room_id = 'room-0'")
        )
        assert unique == 101


async def test_counts_carry_on_exactly_across_a_restart(
    engine: AsyncEngine, fake_clock: FakeClock
) -> None:
    store = SqlStatsStore(session_factory(engine))
    async with running(store, fake_clock) as stats:
        await started(stats, "r")
        for fan in ("ana", "bo", "cy"):
            stats.joined("r", fan, guest=False, market="KR")
        await interval(fake_clock)
        await fake_clock.advance(5)
    # stop() wrote the figures as of now: 3 present for 15 s.

    await fake_clock.advance(60)  # the server is down for a minute
    async with running(store, fake_clock) as stats:
        await started(stats, "r")
        stats.joined("r", "ana", guest=False, market="KR")  # back: not a new unique listener
        stats.joined("r", "dee", guest=True, market=None)
        await fake_clock.advance(10)
        await stats.room_ended("r")
        assert stats.figures("r") is None

    resumed = await store.resume("r")
    assert resumed is not None
    final = resumed.record.figures
    assert (final.unique, final.unique_signed_in) == (4, 3)
    assert final.peak == 3 and final.peak_at == START_MS
    assert final.listen_ms == (3 * 15 + 2 * 10) * 1000  # the minute down is nobody's time
    assert resumed.record.ended_at == START_MS + 85_000
    assert set(resumed.record.markets) == {"KR", "unknown"}


def stored(room_id: str, host_id: str, peak: int, unique: int) -> RoomRecord:
    return RoomRecord(
        RoomInfo(room_id, host_id, room_id, None, 0),
        Figures(peak=peak, unique=unique),
        {},
        updated_at=1,
        ended_at=1,
    )


async def test_each_record_is_told_once_even_after_a_restart(fake_clock: FakeClock) -> None:
    store = MemoryStatsStore()
    store.records = {
        "old": stored("old", "host", peak=2, unique=2),
        "big": stored("big", "star", peak=3, unique=10),
    }
    told: list[tuple[str, RecordBroken]] = []
    async with running(store, fake_clock, told) as stats:
        await started(stats, "r")
        for i in range(5):
            stats.joined("r", f"fan-{i}", guest=False, market=None)
        for i in range(5):
            stats.left("r", f"fan-{i}")
            stats.joined("r", f"fan-{i}", guest=False, market=None)
        await interval(fake_clock)
        await eventually(lambda: len(told) >= 3)
    async with running(store, fake_clock, told) as stats:
        await started(stats, "r")
        stats.joined("r", "fan-9", guest=False, market=None)
        await interval(fake_clock)

    assert told == [
        ("r", RecordBroken(Metric.PEAK, Scope.HOST, 3, 2)),
        ("r", RecordBroken(Metric.UNIQUE, Scope.HOST, 3, 2)),
        ("r", RecordBroken(Metric.PEAK, Scope.ALL_TIME, 4, 3)),
    ]


class SlowStore(MemoryStatsStore):
    """Loading waits until the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def resume(self, room_id: str) -> Resumed | None:
        await self.release.wait()
        return await super().resume(room_id)

    async def bars(self, host_id: str, room_id: str) -> RecordBars:
        return RecordBars()


async def test_joins_while_the_room_loads_are_replayed_in_order(fake_clock: FakeClock) -> None:
    store = SlowStore()
    async with running(store, fake_clock) as stats:
        stats.room_started("r", "host", "Room")
        stats.joined("r", "ana", guest=False, market="JP")
        await fake_clock.advance(2)
        stats.joined("r", "bo", guest=True, market=None)
        stats.left("r", "ana")
        assert stats.figures("r") is None
        store.release.set()
        await eventually(lambda: stats.figures("r") is not None)
        figures = stats.figures("r")
        assert figures is not None
        assert (stats.live("r"), figures.unique, figures.peak) == (1, 2, 2)
        assert figures.listen_ms == 2000


class SlowStoreWithRecords(SlowStore):
    async def bars(self, host_id: str, room_id: str) -> RecordBars:
        return RecordBars({Metric.PEAK: 2, Metric.UNIQUE: 2})


async def test_a_record_passed_while_the_room_loads_is_told_at_the_count_that_passed_it(
    fake_clock: FakeClock,
) -> None:
    store = SlowStoreWithRecords()
    told: list[tuple[str, RecordBroken]] = []
    async with running(store, fake_clock, told) as stats:
        stats.room_started("r", "host", "Room")
        for i in range(10):  # 3 passed the record of 2; the other 7 came before it loaded too
            stats.joined("r", f"fan-{i}", guest=False, market=None)
        store.release.set()
        await eventually(lambda: len(told) == 2)
    assert told == [
        ("r", RecordBroken(Metric.PEAK, Scope.ALL_TIME, 3, 2)),
        ("r", RecordBroken(Metric.UNIQUE, Scope.ALL_TIME, 3, 2)),
    ]


async def test_the_end_is_written_at_once_with_a_last_sample(fake_clock: FakeClock) -> None:
    store = MemoryStatsStore()
    async with running(store, fake_clock) as stats:
        await started(stats, "r")
        stats.joined("r", "ana", guest=False, market="KR")
        stats.joined("r", "bo", guest=False, market="KR")
        await fake_clock.advance(4)
        stats.left("r", "bo")
        stats.renamed("r", "Encore")
        await stats.room_ended("r")
        assert store.writes == 1
        final = store.records["r"]
        assert final.ended_at == START_MS + 4000
        assert final.info.title == "Encore"
        assert final.figures.listen_ms == 8000
        assert store.samples == {("r", START_MS + 4000): (1, 2)}  # 1 now, 2 at most since
        stats.joined("r", "late", guest=False, market=None)  # after the end: not counted
        assert stats.live("r") == 0


async def test_while_the_database_is_away_samples_wait_and_go_in_one_write(
    fake_clock: FakeClock,
) -> None:
    store = MemoryStatsStore()
    async with running(store, fake_clock) as stats:
        await started(stats, "r")
        stats.joined("r", "ana", guest=False, market=None)
        store.fail = True
        await interval(fake_clock)  # fails, logged; kept
        stats.joined("r", "bo", guest=False, market=None)
        await interval(fake_clock)
        assert store.writes == 0
        store.fail = False
        await interval(fake_clock)
        assert store.writes == 1
        assert sorted(store.samples.values()) == [(1, 1), (2, 2), (2, 2)]
        assert set(store.seen["r"]) == {"ana", "bo"}
