"""Who connected is remembered in SQL in batches: one transaction per interval, not per join."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from liveroom.auth import Identity
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine, session_factory
from liveroom.users.service import UserDirectory
from liveroom.users.store import SqlUserStore, UserRecord
from tests.fakes import FakeClock, eventually


class CountingStore(SqlUserStore):
    def __init__(self, inner: SqlUserStore) -> None:
        self.inner = inner
        self.batches: list[int] = []

    async def upsert(self, users: Iterable[UserRecord]) -> None:
        batch = list(users)
        await self.inner.upsert(batch)
        self.batches.append(len(batch))

    async def get(self, user_id: str) -> UserRecord | None:
        return await self.inner.get(user_id)


async def test_a_thousand_connects_are_one_transaction(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    await upgrade(engine)
    store = CountingStore(SqlUserStore(session_factory(engine)))
    directory = UserDirectory(store, fake_clock, flush_interval_s=1.0)
    directory.start()
    await eventually(lambda: fake_clock.sleepers == 1)  # the flusher is waiting on the clock
    try:
        for i in range(1000):
            directory.seen(Identity(f"fan-{i}", f"Fan {i}"))
        directory.seen(Identity("fan-1", "Fan One, renamed"))
        assert store.batches == []  # nothing written per connect
        await fake_clock.advance(1.0)
        await eventually(lambda: bool(store.batches))
        assert store.batches == [1000]
        record = await store.get("fan-1")
        assert record is not None and record.name == "Fan One, renamed"
        directory.seen(Identity("late", "Late"))
    finally:
        await directory.stop()  # the last sightings are written at shutdown
        await engine.dispose()
    assert store.batches == [1000, 1]


async def test_pending_sightings_are_bounded(fake_clock: FakeClock, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    directory = UserDirectory(SqlUserStore(session_factory(engine)), fake_clock, max_pending=10)
    for i in range(100):
        directory.seen(Identity(f"fan-{i}", "Fan"))
    assert len(directory._pending) == 10
    assert "fan-99" in directory._pending  # the newest are kept
    await engine.dispose()


async def test_a_user_is_found_before_and_after_their_sighting_is_written(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    """``user:block`` names someone who may have connected a moment ago."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    await upgrade(engine)
    directory = UserDirectory(SqlUserStore(session_factory(engine)), fake_clock)
    try:
        directory.seen(Identity("fan", "Fan"))
        pending = await directory.find("fan")
        assert pending is not None and pending.name == "Fan"
        await directory.flush()
        written = await directory.find("fan")
        assert written is not None and written.name == "Fan"
        assert await directory.find("nobody") is None
    finally:
        await engine.dispose()
