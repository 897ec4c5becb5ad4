"""The test scaffolding later features stand on: a private Redis, a fake clock that orders
sleepers, a fresh PostgreSQL database per test."""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes import FakeClock


async def test_private_redis_is_reachable_and_not_the_shared_one(redis_url: str) -> None:
    if "LIVEROOM_TEST_REDIS_URL" not in os.environ:
        assert not redis_url.startswith("redis://127.0.0.1:6379")
    client = redis.from_url(redis_url)
    try:
        await client.set("liveroom:test:key", "value", ex=30)
        assert await client.get("liveroom:test:key") == b"value"
    finally:
        await client.aclose()


async def test_fake_clock_wakes_sleepers_in_time_order(fake_clock: FakeClock) -> None:
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await fake_clock.sleep(seconds)
        woke.append((name, fake_clock.now_ms()))

    start = fake_clock.now_ms()
    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("late", 3), ("early", 1))]
    await asyncio.sleep(0)
    await fake_clock.advance(2)
    assert woke == [("early", start + 1000)]
    await fake_clock.advance(5)
    assert woke == [("early", start + 1000), ("late", start + 3000)]
    assert fake_clock.now_ms() == start + 7000
    await asyncio.gather(*tasks)


async def test_each_postgres_test_gets_its_own_empty_database(pg_url: str) -> None:
    engine = create_async_engine(pg_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.scalar(
                text("select count(*) from information_schema.tables where table_schema = 'public'")
            )
            name = await conn.scalar(text("select current_database()"))
    finally:
        await engine.dispose()
    assert tables == 0
    assert str(name).startswith("liveroom_test_")
