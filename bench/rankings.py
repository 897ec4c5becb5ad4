"""How fast the rankings answer with 100,000 stored rooms.

``python bench/rankings.py [--rooms N] [--repeat R] [--json] [--explain]``

Seeds N ``room_records`` (and their per-market rows, about 4 a room, and one room's day of
samples) through :class:`~liveroom.stats.store.SqlStatsStore` into a temporary SQLite file —
and into a new PostgreSQL database as well when ``LIVEROOM_TEST_DATABASE_URL`` is set (dropped
afterwards) — then times every ranking query R times and reports the median and the slowest,
in milliseconds, through the same :class:`~liveroom.stats.rankings.SqlRankings` the API uses.

The data looks like a busy server's two years: 5,000 hosts of very unequal popularity, rooms
spread evenly over the two years, listener counts spread over four orders of magnitude with many
ties (so the tie-break is exercised), markets drawn from 30 countries and ``unknown``.

SQLite is measured as liveroom leaves it (no ``ANALYZE``: the planner has no statistics);
PostgreSQL after ``VACUUM ANALYZE``, as autovacuum would leave it. ``--explain`` prints each query's
plan (``EXPLAIN QUERY PLAN`` / ``EXPLAIN ANALYZE``), which ``docs/rankings.md`` quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine, session_factory
from liveroom.stats.model import Batch, Figures, Metric, RoomInfo, RoomRecord, Sample
from liveroom.stats.queries import ArtistQuery, MarketQuery, Period, RankingQuery, SampleQuery
from liveroom.stats.rankings import Query, SqlRankings
from liveroom.stats.store import SqlStatsStore
from liveroom.users.store import SqlUserStore, UserRecord

NOW_MS = 1_795_000_000_000
DAY_MS = 86_400_000
SPAN_MS = 730 * DAY_MS
HOSTS = 5_000
MARKETS = (
    *("KR", "JP", "US", "BR", "ID", "PH", "MX", "TH", "VN", "FR", "DE", "GB", "ES", "IT", "CA"),
    *("AU", "IN", "TR", "AR", "CL", "PE", "MY", "SG", "TW", "HK", "SA", "AE", "EG", "NG", "ZA"),
)
SEED_BATCH = 5_000
SAMPLE_ROOM = "room-000000"
TOP_HOST = "host-00000"


def figures(rng: random.Random, start: int, length: int) -> Figures:
    peak = int(10 ** rng.uniform(0, 4))
    unique = peak + int(peak * rng.uniform(0, 4))
    signed_share = rng.uniform(0.3, 1.0)
    listen_ms = int(peak * length * rng.uniform(0.3, 0.9))
    return Figures(
        peak=peak,
        peak_signed_in=int(peak * signed_share),
        peak_at=start + rng.randrange(length),
        unique=unique,
        unique_signed_in=int(unique * signed_share),
        unique_at=start + rng.randrange(length),
        listen_ms=listen_ms,
        listen_ms_signed_in=int(listen_ms * signed_share),
        minutes_at=start + length,
        presences=unique + unique // 5,
    )


def split(rng: random.Random, whole: Figures, start: int, length: int) -> dict[str, Figures]:
    """``whole`` shared among 1–8 markets (the biggest share first), uniques adding up."""
    markets = rng.sample([*MARKETS, "unknown"], rng.randint(1, 8))
    weights = sorted((rng.random() for _ in markets), reverse=True)
    total = sum(weights)
    out: dict[str, Figures] = {}
    left = whole.unique
    for i, (market, w) in enumerate(zip(markets, weights, strict=True)):
        unique = left if i == len(markets) - 1 else min(left, round(whole.unique * w / total))
        left -= unique
        share = unique / max(1, whole.unique)
        out[market] = Figures(
            peak=round(whole.peak * share),
            peak_signed_in=round(whole.peak_signed_in * share),
            peak_at=start + rng.randrange(length),
            unique=unique,
            unique_signed_in=round(whole.unique_signed_in * share),
            unique_at=start + rng.randrange(length),
            listen_ms=round(whole.listen_ms * share),
            listen_ms_signed_in=round(whole.listen_ms_signed_in * share),
            minutes_at=whole.minutes_at,
        )
    return out


# Zipf (s = 0.7): the busiest host holds about 2.5 % of the rooms (≈ 3 a day), most a handful.
HOST_WEIGHTS = list(itertools.accumulate(1 / (i + 1) ** 0.7 for i in range(HOSTS)))


def host_of(rng: random.Random) -> str:
    return f"host-{rng.choices(range(HOSTS), cum_weights=HOST_WEIGHTS)[0]:05}"


async def seed(engine: AsyncEngine, rooms: int) -> dict[str, int]:
    rng = random.Random(9)
    sessions = session_factory(engine)
    store = SqlStatsStore(sessions)
    await SqlUserStore(sessions).upsert(
        UserRecord(f"host-{i:05}", f"Artist {i}", i % 7 == 0, False, None, 0, 0)
        for i in range(HOSTS)
    )
    markets = 0
    batch: list[RoomRecord] = []
    for i in range(rooms):
        length = rng.randint(10, 240) * 60_000
        start = NOW_MS - rng.randrange(SPAN_MS) - length
        live = i % 10_000 == 1
        whole = figures(rng, start, length)
        per_market = split(rng, whole, start, length)
        markets += len(per_market)
        batch.append(
            RoomRecord(
                info=RoomInfo(f"room-{i:06}", host_of(rng), f"Room {i}", None, start),
                figures=whole,
                markets=per_market,
                updated_at=start + length,
                ended_at=None if live else start + length,
            )
        )
        if len(batch) == SEED_BATCH:
            await store.write(Batch(records=tuple(batch)))
            batch = []
    await store.write(Batch(records=tuple(batch)))
    start = NOW_MS - DAY_MS
    await store.write(
        Batch(
            samples=tuple(
                Sample(SAMPLE_ROOM, start + k * 10_000, 1000 + k % 300, 1000 + k % 300)
                for k in range(8_640)
            )
        )
    )
    return {"rooms": rooms, "markets": markets, "samples": 8_640}


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    run: Callable[[], Awaitable[object]]
    statement: Query | None = None
    """For ``--explain``."""


def probes(rankings: SqlRankings) -> list[Probe]:
    """Every query the API can make, in each shape, worst cases included (the busiest host)."""
    out: list[Probe] = []

    def rooms(name: str, q: RankingQuery) -> None:
        out.append(Probe(name, partial(rankings.rooms, q, NOW_MS), rankings.rooms_query(q, NOW_MS)))

    for metric in Metric:
        for period in Period:
            rooms(f"rooms {metric} {period}", RankingQuery(metric, period, limit=50))
        rooms(f"rooms {metric} all host", RankingQuery(metric, Period.ALL, TOP_HOST, limit=50))
        rooms(f"rooms {metric} week host", RankingQuery(metric, Period.WEEK, TOP_HOST, limit=50))
        rooms(f"rooms {metric} all KR", RankingQuery(metric, Period.ALL, None, "KR", limit=50))
        rooms(f"rooms {metric} week KR", RankingQuery(metric, Period.WEEK, None, "KR", limit=50))
    for period in (Period.DAY, Period.WEEK, Period.YEAR, Period.ALL):
        for market in (None, "KR"):
            aq = ArtistQuery(period, market, limit=50)
            out.append(
                Probe(
                    f"artists {period}" + (f" {market}" if market else ""),
                    partial(rankings.artists, aq, NOW_MS),
                    rankings.artists_query(aq, NOW_MS),
                )
            )
    for name, mq in (
        ("markets room", MarketQuery(room_id=SAMPLE_ROOM)),
        ("markets host all", MarketQuery(host_id=TOP_HOST)),
        ("markets host month", MarketQuery(host_id=TOP_HOST, period=Period.MONTH)),
    ):
        out.append(
            Probe(name, partial(rankings.markets, mq, NOW_MS), rankings.markets_query(mq, NOW_MS))
        )
    out.append(
        Probe("listeners (8,640 samples)", partial(rankings.samples, SAMPLE_ROOM, SampleQuery()))
    )
    return out


async def explain(engine: AsyncEngine, stmt: Query) -> list[str]:
    sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
    async with engine.connect() as conn:
        rows = (await conn.execute(text(prefix + sql))).all()
    if engine.dialect.name == "sqlite":
        return [str(r[-1]) for r in rows]
    return [str(r[0]) for r in rows]


async def measure(engine: AsyncEngine, rooms: int, repeat: int, show_plans: bool) -> dict[str, Any]:
    await upgrade(engine)
    t0 = time.perf_counter()
    seeded = await seed(engine, rooms)
    seed_s = time.perf_counter() - t0
    if engine.dialect.name == "postgresql":
        # What autovacuum leaves after a bulk load: statistics, and a visibility map that lets
        # covering indexes answer without reading the table.
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM ANALYZE"))
    rankings = SqlRankings(session_factory(engine))
    timings: dict[str, dict[str, float]] = {}
    plans: dict[str, list[str]] = {}
    for probe in probes(rankings):
        await probe.run()  # warm the cache: the numbers are for a running server
        runs = []
        for _ in range(repeat):
            t = time.perf_counter()
            await probe.run()
            runs.append((time.perf_counter() - t) * 1000)
        timings[probe.name] = {
            "median_ms": round(statistics.median(runs), 2),
            "max_ms": round(max(runs), 2),
        }
        if show_plans and probe.statement is not None:
            plans[probe.name] = await explain(engine, probe.statement)
    return {
        "database": engine.dialect.name,
        **seeded,
        "seed_s": round(seed_s, 1),
        "queries": timings,
        **({"plans": plans} if show_plans else {}),
    }


@contextlib.asynccontextmanager
async def databases(tmp: Path) -> AsyncIterator[list[AsyncEngine]]:
    engines = [create_engine(f"sqlite+aiosqlite:///{tmp / 'rankings.db'}")]
    base = os.environ.get("LIVEROOM_TEST_DATABASE_URL")
    name = f"liveroom_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT") if base else None
    try:
        if admin is not None and base is not None:
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            url = make_url(base).set(database=name).render_as_string(hide_password=False)
            engines.append(create_engine(url))
        yield engines
    finally:
        for engine in engines:
            await engine.dispose()
        if admin is not None:
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.dispose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liveroom-rankings-") as tmp:
        async with databases(Path(tmp)) as engines:
            results = [await measure(e, args.rooms, args.repeat, args.explain) for e in engines]
    return {"rooms": args.rooms, "repeat": args.repeat, "results": results}


def summary(out: dict[str, Any]) -> str:
    results = out["results"]
    names = list(results[0]["queries"])
    header = ["query", *(f"{r['database']} median / max ms" for r in results)]

    def cell(r: dict[str, Any], name: str) -> str:
        return f"{r['queries'][name]['median_ms']:.2f} / {r['queries'][name]['max_ms']:.2f}"

    rows = [[name, *(cell(r, name) for r in results)] for name in names]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        f"{r['database']}: {r['rooms']} rooms, {r['markets']} market rows, "
        f"seeded in {r['seed_s']} s"
        for r in results
    ]
    for row in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for r in results:
        for name, plan in r.get("plans", {}).items():
            lines.append(f"\n[{r['database']}] {name}")
            lines.extend("    " + line for line in plan)
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--explain", action="store_true", help="also print every query plan")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = asyncio.run(run(args))
    if not args.json:
        print(summary(out))
    plans_free = {
        **out,
        "results": [{k: v for k, v in r.items() if k != "plans"} for r in out["results"]],
    }
    print(json.dumps(plans_free, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
