"""The rankings over HTTP: the shapes PROTOCOL.md fixes, and bad parameters as ``invalid``."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp.plugin import AiohttpClient
from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.api import error_middleware
from liveroom.db.session import session_factory
from liveroom.stats.api import RankingsApi
from liveroom.stats.model import Batch, Sample
from liveroom.stats.store import SqlStatsStore
from tests.fakes import FakeClock
from tests.stats.test_rankings import NOW, seeded


@pytest.fixture
async def client(
    engine: AsyncEngine, aiohttp_client: AiohttpClient, fake_clock: FakeClock
) -> TestClient[web.Request, web.Application]:
    assert fake_clock.now_ms() == NOW
    app = web.Application(middlewares=[error_middleware])
    RankingsApi(await seeded(engine), fake_clock).add_routes(app)
    await SqlStatsStore(session_factory(engine)).write(
        Batch(samples=(Sample("a", NOW, 3, 4), Sample("a", NOW + 10_000, 5, 6)))
    )
    return await aiohttp_client(app)


async def get(client: TestClient[web.Request, web.Application], url: str, status: int = 200) -> Any:
    async with client.get(url) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def test_rankings_as_protocol_md_says(
    client: TestClient[web.Request, web.Application],
) -> None:
    body = await get(client, "/api/rankings?metric=unique&period=day&limit=2")
    assert body == {
        "rankings": [
            {
                "rank": 1,
                "room_id": "a",
                "title": "Title a",
                "host": {"id": "ana", "name": "Ana", "verified": True},
                "value": 300,
                "value_signed_in": 150,
                "at": NOW - 2 * 3_600_000,
                "live": False,
            },
            {
                "rank": 2,
                "room_id": "b",
                "title": "Title b",
                "host": {"id": "bo", "name": "Bo", "verified": False},
                "value": 250,
                "value_signed_in": 125,
                "at": NOW - 3 * 3_600_000,
                "live": False,
            },
        ]
    }
    kr = await get(client, "/api/rankings?market=kr&host=bo&metric=peak&period=all&limit=")
    assert [r["room_id"] for r in kr["rankings"]] == ["b", "e"]


async def test_artists_markets_and_the_listeners_chart(
    client: TestClient[web.Request, web.Application],
) -> None:
    artists = await get(client, "/api/rankings/artists?period=all&market=KR")
    assert [(a["host"]["id"], a["value"]) for a in artists["rankings"]] == [
        ("ana", 350),
        ("bo", 80),
    ]
    markets = await get(client, "/api/rankings/markets?room=a")
    assert [(m["market"], m["listeners"]) for m in markets["markets"]] == [("KR", 200), ("JP", 100)]
    chart = await get(client, f"/api/rooms/a/listeners?since={NOW}")
    assert chart == {
        "room_id": "a",
        "samples": [{"at": NOW + 10_000, "listeners": 5, "peak": 6}],
    }
    missing = await get(client, "/api/rooms/nowhere/listeners", 404)
    assert missing["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "url",
    [
        "/api/rankings?metric=loudest",
        "/api/rankings?period=forever",
        "/api/rankings?limit=1000",
        "/api/rankings?market=Korea",
        "/api/rankings?sort=peak",
        "/api/rankings/artists?metric=peak",
        "/api/rankings/markets",
        "/api/rankings/markets?room=a&host=ana",
        "/api/rooms/a/listeners?since=soon",
    ],
)
async def test_bad_parameters_are_invalid(
    client: TestClient[web.Request, web.Application], url: str
) -> None:
    body = await get(client, url, 400)
    assert body["ok"] is False
    assert body["error"]["code"] == "invalid"
    assert body["error"]["message"]
