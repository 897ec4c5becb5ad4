"""Rankings on SQLite and PostgreSQL: order, periods, filters, tie-breaks, limits, the artists
ranking, the world map and the listeners chart."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.db.session import session_factory
from liveroom.rooms.stage import UserInfo
from liveroom.stats.model import Batch, Figures, Metric, RoomInfo, RoomRecord, Sample
from liveroom.stats.queries import ArtistQuery, MarketQuery, Period, RankingQuery, SampleQuery
from liveroom.stats.rankings import SqlRankings, render_rooms
from liveroom.stats.store import SqlStatsStore
from liveroom.users.store import SqlUserStore, UserRecord

NOW = 1_795_000_000_000
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def fig(peak: int, unique: int, minutes: int, at: int) -> Figures:
    """Figures reached at ``at``; signed-in figures are about half."""
    return Figures(
        peak=peak,
        peak_signed_in=peak // 2,
        peak_at=at,
        unique=unique,
        unique_signed_in=unique // 2,
        unique_at=at,
        listen_ms=minutes * MIN,
        listen_ms_signed_in=minutes * MIN // 2,
        minutes_at=at,
    )


def room(
    room_id: str, host: str, f: Figures, *, live: bool = False, **markets: Figures
) -> RoomRecord:
    return RoomRecord(
        info=RoomInfo(room_id, host, f"Title {room_id}", None, f.peak_at - HOUR),
        figures=f,
        markets=markets,
        updated_at=NOW,
        ended_at=None if live else f.minutes_at,
    )


ROOMS = (
    room(
        "a",
        "ana",
        fig(100, 300, 50, NOW - 2 * HOUR),
        KR=fig(70, 200, 30, NOW - 2 * HOUR),
        JP=fig(30, 100, 20, NOW - 2 * HOUR),
    ),
    room(
        "b",
        "bo",
        fig(100, 250, 80, NOW - 3 * HOUR),
        KR=fig(40, 50, 10, NOW - 3 * HOUR),
        US=fig(60, 200, 70, NOW - 3 * HOUR),
    ),
    room("c", "ana", fig(150, 150, 10, NOW - 3 * DAY), KR=fig(150, 150, 10, NOW - 3 * DAY)),
    room("d", "cy", fig(500, 900, 900, NOW - 40 * DAY), unknown=fig(500, 900, 900, NOW - 40 * DAY)),
    room("e", "bo", fig(20, 30, 5, NOW - 10 * MIN), live=True, KR=fig(20, 30, 5, NOW - 10 * MIN)),
    room("z", "ana", fig(0, 0, 0, NOW - HOUR)),
    room("old", "ana", fig(1000, 5, 1, NOW - 400 * DAY)),
)


async def seeded(engine: AsyncEngine) -> SqlRankings:
    """:data:`ROOMS` and two of their hosts stored, and rankings over them."""
    sessions = session_factory(engine)
    await SqlStatsStore(sessions).write(Batch(records=ROOMS))
    await SqlUserStore(sessions).upsert(
        [
            UserRecord("ana", "Ana", True, False, "KR", 0, 0),
            UserRecord("bo", "Bo", False, False, None, 0, 0),
        ]
    )
    return SqlRankings(sessions)


@pytest.fixture
async def rankings(engine: AsyncEngine) -> SqlRankings:
    return await seeded(engine)


async def ids(rankings: SqlRankings, query: RankingQuery) -> list[str]:
    return [r.room_id for r in await rankings.rooms(query, NOW)]


@pytest.mark.parametrize(
    ("metric", "period", "expected"),
    [
        (Metric.PEAK, Period.ALL, ["old", "d", "c", "b", "a", "e"]),
        (Metric.PEAK, Period.YEAR, ["d", "c", "b", "a", "e"]),
        (Metric.PEAK, Period.MONTH, ["c", "b", "a", "e"]),
        (Metric.PEAK, Period.WEEK, ["c", "b", "a", "e"]),
        (Metric.PEAK, Period.DAY, ["b", "a", "e"]),
        (Metric.UNIQUE, Period.ALL, ["d", "a", "b", "c", "e", "old"]),
        (Metric.UNIQUE, Period.DAY, ["a", "b", "e"]),
        (Metric.MINUTES, Period.ALL, ["d", "b", "a", "c", "e", "old"]),
        (Metric.MINUTES, Period.WEEK, ["b", "a", "c", "e"]),
    ],
)
async def test_rooms_rank_by_metric_within_rolling_periods(
    rankings: SqlRankings, metric: Metric, period: Period, expected: list[str]
) -> None:
    # Rooms with nothing (z) never rank; equal peaks (a, b) go to the one reached first (b).
    assert await ids(rankings, RankingQuery(metric=metric, period=period)) == expected


async def test_an_entry_says_who_what_and_when(rankings: SqlRankings) -> None:
    top = await rankings.rooms(RankingQuery(Metric.MINUTES, Period.DAY, limit=2), NOW)
    assert [r.view() for r in top] == [
        {
            "rank": 1,
            "room_id": "b",
            "title": "Title b",
            "host": {"id": "bo", "name": "Bo", "verified": False},
            "value": 80,
            "value_signed_in": 40,
            "at": NOW - 3 * HOUR,
            "live": False,
        },
        {
            "rank": 2,
            "room_id": "a",
            "title": "Title a",
            "host": {"id": "ana", "name": "Ana", "verified": True},
            "value": 50,
            "value_signed_in": 25,
            "at": NOW - 2 * HOUR,
            "live": False,
        },
    ]
    (first,) = await rankings.rooms(RankingQuery(Metric.PEAK, Period.DAY, "bo", limit=1), NOW)
    assert first.room_id == "b"
    everyone = await rankings.rooms(RankingQuery(Metric.PEAK, Period.ALL), NOW)
    assert [r.live for r in everyone if r.room_id == "e"] == [True]
    # A host the users table does not know yet shows by id.
    assert [r.host for r in everyone if r.room_id == "d"] == [UserInfo("cy", "cy", False)]


async def test_filters_by_host_and_by_listeners_market(rankings: SqlRankings) -> None:
    assert await ids(rankings, RankingQuery(host_id="ana")) == ["old", "c", "a"]
    assert await ids(rankings, RankingQuery(host_id="ana", period=Period.WEEK)) == ["c", "a"]
    assert await ids(rankings, RankingQuery(host_id="nobody")) == []
    # In-market: rooms ranked by their audience from that market.
    kr = await rankings.rooms(RankingQuery(Metric.UNIQUE, market="KR"), NOW)
    assert [(r.room_id, r.value, r.value_signed_in) for r in kr] == [
        ("a", 200, 100),
        ("c", 150, 75),
        ("b", 50, 25),
        ("e", 30, 15),
    ]
    assert await ids(rankings, RankingQuery(market="KR", host_id="bo")) == ["b", "e"]
    assert await ids(rankings, RankingQuery(market="US", metric=Metric.MINUTES)) == ["b"]
    assert await ids(rankings, RankingQuery(market="unknown", period=Period.WEEK)) == []
    assert await ids(rankings, RankingQuery(market="FR")) == []


async def test_limit_cuts_the_list_and_ranks_count_from_one(rankings: SqlRankings) -> None:
    top = await rankings.rooms(RankingQuery(Metric.UNIQUE, limit=3), NOW)
    assert [(r.rank, r.room_id) for r in top] == [(1, "d"), (2, "a"), (3, "b")]
    assert "Title d" in render_rooms(top, Metric.UNIQUE)


async def test_ties_go_to_the_earlier_time_then_the_room_id(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    same = fig(10, 10, 10, NOW - 5 * HOUR)
    await SqlStatsStore(sessions).write(
        Batch(
            records=(
                room("t3", "x", same),
                room("t2", "y", fig(10, 10, 10, NOW - 6 * HOUR)),
                room("t1", "z", same),
            )
        )
    )
    rankings = SqlRankings(sessions)
    for metric in Metric:
        assert await ids(rankings, RankingQuery(metric=metric)) == ["t2", "t1", "t3"]
    artists = await rankings.artists(ArtistQuery(), NOW)
    assert [a.host.id for a in artists] == ["y", "x", "z"]


async def test_artists_sum_unique_listeners_of_their_rooms_in_the_period(
    rankings: SqlRankings,
) -> None:
    everyone = await rankings.artists(ArtistQuery(), NOW)
    assert [(a.rank, a.host.id, a.value, a.rooms) for a in everyone] == [
        (1, "cy", 900, 1),
        (2, "ana", 455, 3),
        (3, "bo", 280, 2),
    ]
    assert everyone[1].view() == {
        "rank": 2,
        "host": {"id": "ana", "name": "Ana", "verified": True},
        "value": 455,
        "value_signed_in": 150 + 75 + 2,
        "rooms": 3,
        "at": NOW - 2 * HOUR,
    }
    today = await rankings.artists(ArtistQuery(Period.DAY), NOW)
    assert [(a.host.id, a.value) for a in today] == [("ana", 300), ("bo", 280)]
    korea = await rankings.artists(ArtistQuery(market="KR", limit=1), NOW)
    assert [(a.host.id, a.value) for a in korea] == [("ana", 350)]


async def test_markets_of_a_room_and_of_a_host(rankings: SqlRankings) -> None:
    of_a = await rankings.markets(MarketQuery(room_id="a"), NOW)
    assert [s.view() for s in of_a] == [
        {"market": "KR", "listeners": 200, "listeners_signed_in": 100, "minutes": 30},
        {"market": "JP", "listeners": 100, "listeners_signed_in": 50, "minutes": 20},
    ]
    of_ana = await rankings.markets(MarketQuery(host_id="ana"), NOW)
    assert [(s.market, s.listeners, s.minutes) for s in of_ana] == [
        ("KR", 350, 40),
        ("JP", 100, 20),
    ]
    this_week = await rankings.markets(MarketQuery(host_id="bo", period=Period.DAY), NOW)
    assert [(s.market, s.listeners) for s in this_week] == [("US", 200), ("KR", 80)]
    assert await rankings.markets(MarketQuery(room_id="nothing"), NOW) == []


async def test_the_listeners_chart_of_a_room(engine: AsyncEngine, rankings: SqlRankings) -> None:
    samples = tuple(Sample("a", NOW + k * 10_000, k, k + 1) for k in range(5))
    await SqlStatsStore(session_factory(engine)).write(Batch(samples=samples))
    assert await rankings.samples("a", SampleQuery()) == list(samples)
    assert await rankings.samples("a", SampleQuery(since=NOW + 20_000, limit=1)) == [samples[3]]
    assert await rankings.samples("b", SampleQuery()) == []  # counted, never sampled
    assert await rankings.samples("nowhere", SampleQuery()) is None
