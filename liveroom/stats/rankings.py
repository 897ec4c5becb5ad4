"""The rankings, read from SQL: rooms by a metric, artists by unique listeners, listeners per
market, and a room's listeners over time.

Every ranking orders by the exact value, then by when it was reached (earlier first), then by
id, so equal values always come out in the same order. A period is a rolling window ending now
that the value must have been reached in (``peak_at``, ``unique_at`` or ``minutes_at``). Live
rooms are ranked from their last upsert (at most one sampling interval old). Rooms whose value is
0 are not ranked. How each query uses the indexes: ``docs/rankings.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveroom.db.models import UserRow
from liveroom.rooms.stage import UserInfo
from liveroom.rooms.views import user_view
from liveroom.stats.model import Metric, Sample, shown
from liveroom.stats.queries import ArtistQuery, MarketQuery, RankingQuery, SampleQuery, window_start
from liveroom.stats.store import AT_COLUMN, SIGNED_IN_COLUMN, VALUE_COLUMN
from liveroom.stats.tables import ListenerSampleRow, RoomMarketRow, RoomRecordRow

Query: TypeAlias = Select[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class RoomRank:
    rank: int
    room_id: str
    title: str
    host: UserInfo
    value: int
    value_signed_in: int
    at: int
    live: bool

    def view(self) -> dict[str, Any]:
        """PROTOCOL.md's ranking entry (and ``live``)."""
        return {
            "rank": self.rank,
            "room_id": self.room_id,
            "title": self.title,
            "host": user_view(self.host),
            "value": self.value,
            "value_signed_in": self.value_signed_in,
            "at": self.at,
            "live": self.live,
        }


@dataclass(frozen=True, slots=True)
class ArtistRank:
    rank: int
    host: UserInfo
    value: int
    """Unique listeners summed over the host's rooms in the period."""
    value_signed_in: int
    rooms: int
    at: int
    """When the last of those rooms reached its unique count."""

    def view(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "host": user_view(self.host),
            "value": self.value,
            "value_signed_in": self.value_signed_in,
            "rooms": self.rooms,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class MarketShare:
    market: str
    listeners: int
    listeners_signed_in: int
    minutes: int

    def view(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "listeners": self.listeners,
            "listeners_signed_in": self.listeners_signed_in,
            "minutes": self.minutes,
        }


def _host(host_id: str, name: str | None, verified: bool | None) -> UserInfo:
    """The host as the users table knows them; a host not written there yet shows their id."""
    return UserInfo(host_id, name or host_id, bool(verified))


class SqlRankings:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def rooms_query(self, q: RankingQuery, now_ms: int) -> Query:
        """The statement behind :meth:`rooms` (``bench/`` and the docs explain it)."""
        source: type[RoomRecordRow] | type[RoomMarketRow] = (
            RoomMarketRow if q.market else RoomRecordRow
        )
        value = getattr(source, VALUE_COLUMN[q.metric])
        at = getattr(source, AT_COLUMN[q.metric])
        stmt = select(
            RoomRecordRow.room_id,
            RoomRecordRow.title,
            RoomRecordRow.host_id,
            RoomRecordRow.ended_at,
            UserRow.name,
            UserRow.verified,
            value,
            getattr(source, SIGNED_IN_COLUMN[q.metric]),
            at,
        )
        if source is RoomMarketRow:
            stmt = stmt.select_from(RoomMarketRow).join(
                RoomRecordRow, RoomRecordRow.room_id == RoomMarketRow.room_id
            )
        conditions: list[ColumnElement[bool]] = [value > 0]
        if q.market:
            conditions.append(RoomMarketRow.market == q.market)
        if q.host_id is not None:
            conditions.append(source.host_id == q.host_id)
        start = window_start(q.period, now_ms)
        if start is not None:
            conditions.append(at >= start)
        return (
            stmt.outerjoin(UserRow, UserRow.id == RoomRecordRow.host_id)
            .where(*conditions)
            .order_by(value.desc(), at.asc(), source.room_id.asc())
            .limit(q.limit)
        )

    async def rooms(self, q: RankingQuery, now_ms: int) -> list[RoomRank]:
        async with self._sessions() as session:
            rows = (await session.execute(self.rooms_query(q, now_ms))).all()
        return [
            RoomRank(
                rank=i,
                room_id=room_id,
                title=title,
                host=_host(host_id, name, verified),
                value=shown(q.metric, value),
                value_signed_in=shown(q.metric, signed_in),
                at=at,
                live=ended_at is None,
            )
            for i, (room_id, title, host_id, ended_at, name, verified, value, signed_in, at) in (
                enumerate(rows, start=1)
            )
        ]

    def artists_query(self, q: ArtistQuery, now_ms: int) -> Query:
        source: type[RoomRecordRow] | type[RoomMarketRow] = (
            RoomMarketRow if q.market else RoomRecordRow
        )
        conditions: list[ColumnElement[bool]] = [source.unique_listeners > 0]
        if q.market:
            conditions.append(RoomMarketRow.market == q.market)
        start = window_start(q.period, now_ms)
        if start is not None:
            conditions.append(source.unique_at >= start)
        total = func.sum(source.unique_listeners).label("total")
        reached = func.max(source.unique_at).label("reached")
        per_host = (
            select(
                source.host_id.label("host_id"),
                total,
                func.sum(source.unique_signed_in).label("signed_in"),
                func.count().label("rooms"),
                reached,
            )
            .where(*conditions)
            .group_by(source.host_id)
            .order_by(total.desc(), reached.asc(), source.host_id.asc())
            .limit(q.limit)
            .subquery()
        )
        return (
            select(per_host, UserRow.name, UserRow.verified)
            .outerjoin(UserRow, UserRow.id == per_host.c.host_id)
            .order_by(per_host.c.total.desc(), per_host.c.reached.asc(), per_host.c.host_id)
        )

    async def artists(self, q: ArtistQuery, now_ms: int) -> list[ArtistRank]:
        async with self._sessions() as session:
            rows = (await session.execute(self.artists_query(q, now_ms))).all()
        return [
            ArtistRank(
                rank=i,
                host=_host(host_id, name, verified),
                value=int(total),
                value_signed_in=int(signed_in),
                rooms=int(rooms),
                at=int(reached),
            )
            for i, (host_id, total, signed_in, rooms, reached, name, verified) in enumerate(
                rows, start=1
            )
        ]

    def markets_query(self, q: MarketQuery, now_ms: int) -> Query:
        m = RoomMarketRow
        if q.room_id is not None:
            return select(m.market, m.unique_listeners, m.unique_signed_in, m.listen_ms).where(
                m.room_id == q.room_id, m.unique_listeners > 0
            )
        listeners = func.sum(m.unique_listeners).label("listeners")
        conditions: list[ColumnElement[bool]] = [m.host_id == q.host_id, m.unique_listeners > 0]
        start = window_start(q.period, now_ms)
        if start is not None:
            conditions.append(m.unique_at >= start)
        return (
            select(m.market, listeners, func.sum(m.unique_signed_in), func.sum(m.listen_ms))
            .where(*conditions)
            .group_by(m.market)
        )

    async def markets(self, q: MarketQuery, now_ms: int) -> list[MarketShare]:
        """Unique listeners per market, most first: of one room (any period), or summed over a
        host's rooms that reached their count in the period."""
        async with self._sessions() as session:
            rows = (await session.execute(self.markets_query(q, now_ms))).all()
        shares = [
            MarketShare(market, int(n), int(signed_in), shown(Metric.MINUTES, int(ms)))
            for market, n, signed_in, ms in rows
        ]
        shares.sort(key=lambda s: (-s.listeners, s.market))
        return shares

    async def samples(self, room_id: str, q: SampleQuery) -> list[Sample] | None:
        """The room's samples, oldest first: the newest ``limit`` of them, or with ``since`` the
        first ``limit`` after it (paging forward); ``None`` for a room never counted."""
        s = ListenerSampleRow
        conditions: list[ColumnElement[bool]] = [s.room_id == room_id]
        if q.since is not None:
            conditions.append(s.at > q.since)
        order = s.at.asc() if q.since is not None else s.at.desc()
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(s.at, s.listeners, s.peak)
                    .where(*conditions)
                    .order_by(order)
                    .limit(q.limit)
                )
            ).all()
            if not rows and await session.get(RoomRecordRow, room_id) is None:
                return None
        samples = [Sample(room_id, at, listeners, peak) for at, listeners, peak in rows]
        return samples if q.since is not None else samples[::-1]


def render_rooms(ranks: list[RoomRank], metric: Metric) -> str:
    """A plain-text table of a ranking (``liveroom rankings``)."""
    rows = [
        (
            str(r.rank),
            str(r.value),
            str(r.value_signed_in),
            r.title,
            r.host.name + (" ✓" if r.host.verified else ""),
            r.room_id + (" (live)" if r.live else ""),
        )
        for r in ranks
    ]
    header = ("#", metric.value, "signed in", "title", "host", "room")
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)
