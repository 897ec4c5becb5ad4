"""The stats tables on SQLite and PostgreSQL: one transaction per batch, and what was written is
what a restarted server reads back."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.db import models  # noqa: F401  (the other tables, for the comparison)
from liveroom.db.base import Base
from liveroom.db.migrate import alembic_config
from liveroom.db.session import session_factory
from liveroom.stats import tables  # noqa: F401  (the stats tables, likewise)
from liveroom.stats.model import (
    Batch,
    Figures,
    Metric,
    RecordBars,
    RoomInfo,
    RoomRecord,
    Sample,
    Seen,
)
from liveroom.stats.store import SqlStatsStore

T0 = 1_795_000_000_000


class Transactions:
    """Commits and write statements sent on an engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.commits = 0
        self.writes = 0
        event.listen(engine.sync_engine, "commit", self._committed)
        event.listen(engine.sync_engine, "before_cursor_execute", self._executed)

    def _committed(self, *_: Any) -> None:
        self.commits += 1

    def _executed(self, *args: Any) -> None:
        if str(args[2]).lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            self.writes += 1


def figures(peak: int, unique: int, minutes: int, at: int = T0) -> Figures:
    return Figures(
        peak=peak,
        peak_signed_in=peak // 2,
        peak_at=at,
        unique=unique,
        unique_signed_in=unique // 2,
        unique_at=at + 1,
        listen_ms=minutes * 60_000,
        listen_ms_signed_in=minutes * 30_000,
        minutes_at=at + 2,
        presences=unique + 1,
    )


def record(
    room_id: str, host_id: str, f: Figures, *, ended: bool = True, **markets: Figures
) -> RoomRecord:
    return RoomRecord(
        info=RoomInfo(room_id, host_id, f"Room {room_id}", "KR", T0 - 1000),
        figures=f,
        markets=markets,
        updated_at=T0 + 5,
        ended_at=T0 + 5 if ended else None,
    )


async def test_migrations_match_the_stats_tables(engine: AsyncEngine) -> None:
    def diff(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_a_batch_is_one_transaction_and_reads_back_after_a_restart(
    engine: AsyncEngine,
) -> None:
    store = SqlStatsStore(session_factory(engine))
    live = record(
        "r1",
        "host",
        figures(30, 70, 90),
        ended=False,
        KR=figures(20, 50, 60),
        JP=figures(10, 20, 30),
    )
    seen = tuple(("r1", Seen(f"fan-{i}", i % 3 == 0, "KR", T0 + i)) for i in range(1500))
    samples = tuple(Sample("r1", T0 + k * 10_000, k, k + 1) for k in range(1200))
    seen_sql = Transactions(engine)

    await store.write(
        Batch(samples=samples, records=(live, record("r0", "other", figures(1, 1, 1))), seen=seen)
    )

    assert seen_sql.commits == 1
    resumed = await store.resume("r1")
    assert resumed is not None
    assert resumed.record == live
    assert sorted(resumed.seen, key=lambda s: s.first_at) == [s for _, s in seen]
    assert await store.resume("nobody") is None
    async with engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM listener_samples"))
    assert count == 1200


async def test_upserts_update_figures_but_never_replay_plays(engine: AsyncEngine) -> None:
    store = SqlStatsStore(session_factory(engine))
    await store.write(Batch(records=(record("r1", "h", figures(3, 4, 5), ended=False),)))
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE room_records SET replay_plays = 7"))
    final = record("r1", "h", figures(9, 9, 9), KR=figures(9, 9, 9))
    await store.write(
        Batch(
            samples=(Sample("r1", T0, 1, 1), Sample("r1", T0, 2, 3)),  # the same instant twice
            records=(final,),
            seen=(("r1", Seen("a", False, "KR", T0)), ("r1", Seen("a", False, "JP", T0 + 9))),
        )
    )
    resumed = await store.resume("r1")
    assert resumed is not None and resumed.record == final
    assert resumed.seen == (Seen("a", False, "KR", T0),)  # first sighting kept
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT replay_plays FROM room_records")) == 7
        assert (await conn.execute(text("SELECT listeners, peak FROM listener_samples"))).one() == (
            2,
            3,
        )


async def test_record_bars_are_other_rooms_best_everyone_s_and_the_host_s(
    engine: AsyncEngine,
) -> None:
    store = SqlStatsStore(session_factory(engine))
    assert await store.bars("ana", "r1") == RecordBars({}, {})
    await store.write(
        Batch(
            records=(
                record("r1", "ana", figures(500, 500, 500), ended=False),  # the room itself
                record("r2", "ana", figures(40, 90, 10)),
                record("r3", "ana", figures(60, 30, 20)),
                record("r4", "bo", figures(100, 80, 300)),
            )
        )
    )
    bars = await store.bars("ana", "r1")
    assert bars.all_time == {Metric.PEAK: 100, Metric.UNIQUE: 90, Metric.MINUTES: 300 * 60_000}
    assert bars.host == {Metric.PEAK: 60, Metric.UNIQUE: 90, Metric.MINUTES: 20 * 60_000}
    assert (await store.bars("new-host", "r9")).host == {}


async def test_the_migration_goes_down_and_up_again(engine: AsyncEngine) -> None:
    def migrate(connection: Connection, revision: str, up: bool) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        (command.upgrade if up else command.downgrade)(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(migrate, "0005", False)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert not tables & {"room_records", "room_markets", "room_listeners", "listener_samples"}
    async with engine.begin() as conn:
        await conn.run_sync(migrate, "head", True)
    store = SqlStatsStore(session_factory(engine))
    await store.write(Batch(records=(record("r1", "h", figures(1, 1, 1)),)))
    assert await store.resume("r1") is not None
