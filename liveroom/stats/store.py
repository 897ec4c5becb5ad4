"""Where the stats service keeps its figures: one transaction per flush, whatever it holds.

:class:`SqlStatsStore` is the real one (SQLite and PostgreSQL); :class:`MemoryStatsStore` keeps
the same in dicts, for service tests. Rankings read the SQL tables directly
(:mod:`liveroom.stats.rankings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveroom.stats.model import (
    Batch,
    Figures,
    Metric,
    RecordBars,
    RoomInfo,
    RoomRecord,
    Seen,
)
from liveroom.stats.tables import (
    ListenerSampleRow,
    RoomListenerRow,
    RoomMarketRow,
    RoomRecordRow,
)

_MARKET_KEY = ("room_id", "market")

# Each metric's columns: the value rankings order by, and when it was reached.
VALUE_COLUMN = {
    Metric.PEAK: "peak",
    Metric.UNIQUE: "unique_listeners",
    Metric.MINUTES: "listen_ms",
}
SIGNED_IN_COLUMN = {
    Metric.PEAK: "peak_signed_in",
    Metric.UNIQUE: "unique_signed_in",
    Metric.MINUTES: "listen_ms_signed_in",
}
AT_COLUMN = {Metric.PEAK: "peak_at", Metric.UNIQUE: "unique_at", Metric.MINUTES: "minutes_at"}


@dataclass(frozen=True, slots=True)
class Resumed:
    """A room's stored state, to carry on counting after a restart."""

    record: RoomRecord
    seen: tuple[Seen, ...]


class StatsStore(Protocol):
    async def write(self, batch: Batch) -> None:
        """Everything in ``batch`` in one transaction, or nothing."""
        ...

    async def resume(self, room_id: str) -> Resumed | None:
        """The room's last written figures and listeners; ``None`` when none were written."""
        ...

    async def bars(self, host_id: str, room_id: str) -> RecordBars:
        """The records ``room_id`` may break: other rooms' best, everyone's and its host's."""
        ...


def _figure_columns(f: Figures) -> dict[str, Any]:
    return {
        "peak": f.peak,
        "peak_signed_in": f.peak_signed_in,
        "peak_at": f.peak_at,
        "unique_listeners": f.unique,
        "unique_signed_in": f.unique_signed_in,
        "unique_at": f.unique_at,
        "listen_ms": f.listen_ms,
        "listen_ms_signed_in": f.listen_ms_signed_in,
        "minutes_at": f.minutes_at,
        "presences": f.presences,
    }


def _figures(row: RoomRecordRow | RoomMarketRow) -> Figures:
    return Figures(
        peak=row.peak,
        peak_signed_in=row.peak_signed_in,
        peak_at=row.peak_at,
        unique=row.unique_listeners,
        unique_signed_in=row.unique_signed_in,
        unique_at=row.unique_at,
        listen_ms=row.listen_ms,
        listen_ms_signed_in=row.listen_ms_signed_in,
        minutes_at=row.minutes_at,
        presences=row.presences,
    )


def record_row(record: RoomRecord) -> dict[str, Any]:
    info = record.info
    return {
        "room_id": info.room_id,
        "host_id": info.host_id,
        "title": info.title,
        "market": info.market,
        "started_at": info.started_at,
        "ended_at": record.ended_at,
        "updated_at": record.updated_at,
        **_figure_columns(record.figures),
    }


def market_rows(record: RoomRecord) -> list[dict[str, Any]]:
    return [
        {
            "room_id": record.info.room_id,
            "market": market,
            "host_id": record.info.host_id,
            **_figure_columns(f),
        }
        for market, f in record.markets.items()
    ]


class SqlStatsStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def write(self, batch: Batch) -> None:
        if not batch:
            return
        samples = [
            {"room_id": s.room_id, "at": s.at, "listeners": s.listeners, "peak": s.peak}
            for s in batch.samples
        ]
        records = [record_row(r) for r in batch.records]
        markets = [row for r in batch.records for row in market_rows(r)]
        seen = [
            {
                "room_id": room_id,
                "user_id": s.user_id,
                "guest": s.guest,
                "market": s.market,
                "first_at": s.first_at,
            }
            for room_id, s in batch.seen
        ]
        async with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            # One statement each, executed for many rows: SQLAlchemy sends them in multi-row
            # batches within the drivers' bound-parameter limits.
            if samples:
                stmt = insert(ListenerSampleRow)
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["room_id", "at"],
                        set_={"listeners": stmt.excluded.listeners, "peak": stmt.excluded.peak},
                    ),
                    samples,
                )
            if records:
                stmt = insert(RoomRecordRow)
                # replay_plays is not the live counter's: an upsert never resets it.
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["room_id"],
                        set_={c: stmt.excluded[c] for c in records[0] if c != "room_id"},
                    ),
                    records,
                )
            if markets:
                stmt = insert(RoomMarketRow)
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["room_id", "market"],
                        set_={c: stmt.excluded[c] for c in markets[0] if c not in _MARKET_KEY},
                    ),
                    markets,
                )
            if seen:
                await session.execute(insert(RoomListenerRow).on_conflict_do_nothing(), seen)
            for room_id, plays in batch.replay_plays:
                await session.execute(
                    update(RoomRecordRow)
                    .where(RoomRecordRow.room_id == room_id)
                    .values(replay_plays=RoomRecordRow.replay_plays + plays)
                )

    async def resume(self, room_id: str) -> Resumed | None:
        async with self._sessions() as session:
            row = await session.get(RoomRecordRow, room_id)
            if row is None:
                return None
            markets = (
                await session.scalars(select(RoomMarketRow).where(RoomMarketRow.room_id == room_id))
            ).all()
            listeners = (
                await session.execute(
                    select(
                        RoomListenerRow.user_id,
                        RoomListenerRow.guest,
                        RoomListenerRow.market,
                        RoomListenerRow.first_at,
                    ).where(RoomListenerRow.room_id == room_id)
                )
            ).all()
        record = RoomRecord(
            info=RoomInfo(row.room_id, row.host_id, row.title, row.market, row.started_at),
            figures=_figures(row),
            markets={m.market: _figures(m) for m in markets},
            updated_at=row.updated_at,
            ended_at=row.ended_at,
        )
        return Resumed(record, tuple(Seen(u, g, m, t) for u, g, m, t in listeners))

    async def bars(self, host_id: str, room_id: str) -> RecordBars:
        all_time: dict[Metric, int] = {}
        host: dict[Metric, int] = {}
        async with self._sessions() as session:
            for metric, name in VALUE_COLUMN.items():
                column = getattr(RoomRecordRow, name)
                # ORDER BY … LIMIT 1 walks the ranking index backwards: no scan for a max that
                # must skip the room itself.
                best = await session.scalar(
                    select(column)
                    .where(RoomRecordRow.room_id != room_id)
                    .order_by(column.desc())
                    .limit(1)
                )
                if best is not None:
                    all_time[metric] = int(best)
                own = await session.scalar(
                    select(column)
                    .where(RoomRecordRow.host_id == host_id, RoomRecordRow.room_id != room_id)
                    .order_by(column.desc())
                    .limit(1)
                )
                if own is not None:
                    host[metric] = int(own)
        return RecordBars(all_time, host)


class MemoryStatsStore:
    """The same contract in dicts; ``writes`` counts the transactions a SQL store would run."""

    def __init__(self) -> None:
        self.samples: dict[tuple[str, int], tuple[int, int]] = {}
        self.records: dict[str, RoomRecord] = {}
        self.seen: dict[str, dict[str, Seen]] = {}
        self.replay_plays: dict[str, int] = {}
        self.writes = 0
        self.fail = False

    async def write(self, batch: Batch) -> None:
        if not batch:
            return
        if self.fail:
            raise ConnectionError("the database is away")
        self.writes += 1
        for s in batch.samples:
            self.samples[(s.room_id, s.at)] = (s.listeners, s.peak)
        for r in batch.records:
            self.records[r.info.room_id] = r
        for room_id, first in batch.seen:
            self.seen.setdefault(room_id, {}).setdefault(first.user_id, first)
        for room_id, plays in batch.replay_plays:
            if room_id in self.records:
                self.replay_plays[room_id] = self.replay_plays.get(room_id, 0) + plays

    async def resume(self, room_id: str) -> Resumed | None:
        record = self.records.get(room_id)
        if record is None:
            return None
        return Resumed(record, tuple(self.seen.get(room_id, {}).values()))

    async def bars(self, host_id: str, room_id: str) -> RecordBars:
        others = [r for r in self.records.values() if r.info.room_id != room_id]
        mine = [r for r in others if r.info.host_id == host_id]
        return RecordBars(
            {m: max(r.figures.value(m) for r in others) for m in Metric} if others else {},
            {m: max(r.figures.value(m) for r in mine) for m in Metric} if mine else {},
        )
