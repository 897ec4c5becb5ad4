"""Listener records through a real server: 200 real sockets join and leave at once and the counts
stay exact; markets come from tokens and browsers' languages (never a guest's own choice); a
record is told once; rankings, markets and the listeners series over HTTP; a restart keeps it
all; the CLI prints the table."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from liveroom.app import ROOMS, STATS, RunningServer, start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from tests.conftest import make_token

KOREA, JAPAN, UNKNOWN = 100, 60, 40  # fans by market: token claim, browser language, neither


@pytest.fixture
def fast(config: Config) -> Config:
    return replace(config, stats_sample_interval_s=0.2, socket_inflight_limit=64)


@pytest.fixture
async def server(fast: Config) -> AsyncIterator[RunningServer]:
    running = await start_server(fast)
    yield running
    await running.stop()


async def get(server: RunningServer, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(server.url + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def fans(server: RunningServer) -> list[LiveroomClient]:
    """KOREA fans with a KR token; JAPAN guests whose browsers ask for ja-JP (their region is
    their market: a guest can't claim one); UNKNOWN signed-in fans with neither."""
    korea = [
        LiveroomClient.connect(server.url, make_token(f"kr{i:03}", market="KR"))
        for i in range(KOREA)
    ]
    japan = [
        LiveroomClient.connect(
            server.url,
            make_token(f"g_jp{i:03}", "Guest", guest=True),
            headers={"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"},
        )
        for i in range(JAPAN)
    ]
    rest = [LiveroomClient.connect(server.url, make_token(f"fan{i:03}")) for i in range(UNKNOWN)]
    return list(await asyncio.gather(*korea, *japan, *rest))


async def live_room(server: RunningServer, host_id: str, title: str) -> tuple[LiveroomClient, str]:
    host = await LiveroomClient.connect(server.url, make_token(host_id, host=True, market="KR"))
    room_id = (await host.request("room:create", {"title": title}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    return host, room_id


async def until(check: Any, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_200_sockets_count_exactly_and_a_record_is_told_once(server: RunningServer) -> None:
    stats, rooms = server.app[STATS], server.app[ROOMS]
    # Last week's record: 30 listeners and the host.
    old_host, old_room = await live_room(server, "veteran", "The old record")
    early = list(
        await asyncio.gather(
            *(LiveroomClient.connect(server.url, make_token(f"early{i:02}")) for i in range(30))
        )
    )
    await asyncio.gather(*(c.request("room:join", {"room_id": old_room}) for c in early))
    await until(lambda: stats.live(old_room) == 31)
    await old_host.request("room:end", {"room_id": old_room})
    await asyncio.gather(old_host.close(), *(c.close() for c in early))

    host, room_id = await live_room(server, "artist", "Comeback stage")
    clients = await fans(server)
    try:
        await asyncio.gather(*(c.request("room:join", {"room_id": room_id}) for c in clients))
        await until(lambda: stats.live(room_id) == 201)
        # Half of them leave at once, while the others' joins are long done: exact again.
        leaving, staying = clients[::2], clients[1::2]
        await asyncio.gather(*(c.request("room:leave", {"room_id": room_id}) for c in leaving))
        await until(lambda: stats.live(room_id) == 101)
        assert rooms.presence.count(room_id) == 101
        figures = stats.figures(room_id)
        assert figures is not None
        assert (figures.peak, figures.unique) == (201, 201)
        assert figures.unique_signed_in == 201 - JAPAN  # guests count, apart
        # The old record (31) was passed once per metric, however far past it the room went.
        await asyncio.sleep(0.5)
        told = [(e["metric"], e["value"]) for e in host.events("room:record")]
        metrics = [metric for metric, _ in told]
        assert metrics.count("peak") == 1 and metrics.count("unique") == 1, told
        assert all(value == 32 for metric, value in told if metric in ("peak", "unique"))
        # Rejoining within the grace period is the same presence: nothing counted twice.
        await asyncio.gather(*(c.request("room:join", {"room_id": room_id}) for c in leaving[:10]))
        await until(lambda: stats.live(room_id) == 111)
        figures = stats.figures(room_id)
        assert figures is not None and (figures.peak, figures.unique) == (201, 201)

        series = await get(server, f"/api/rooms/{room_id}/listeners")
        assert series["samples"] and max(s["listeners"] for s in series["samples"]) <= 201
        await host.request("room:end", {"room_id": room_id})
    finally:
        await asyncio.gather(host.close(), *(c.close() for c in clients))
    assert staying  # (kept until the end: their sockets held the room's presence)

    ranked = (await get(server, "/api/rankings?metric=peak&period=day"))["rankings"]
    assert [(r["room_id"], r["value"]) for r in ranked[:2]] == [(room_id, 201), (old_room, 31)]
    assert ranked[0]["value_signed_in"] == 201 - JAPAN and ranked[0]["host"]["id"] == "artist"
    in_japan = await get(server, "/api/rankings?metric=unique&period=week&market=JP")
    assert [(r["room_id"], r["value"]) for r in in_japan["rankings"]] == [(room_id, JAPAN)]
    markets = (await get(server, f"/api/rankings/markets?room={room_id}"))["markets"]
    by_market = {m["market"]: m["listeners"] for m in markets}
    assert by_market == {"KR": KOREA + 1, "JP": JAPAN, "unknown": UNKNOWN}
    artists = (await get(server, "/api/rankings/artists?period=all"))["rankings"]
    assert [(a["host"]["id"], a["value"]) for a in artists] == [("artist", 201), ("veteran", 31)]


async def test_records_survive_a_restart_and_the_cli_prints_them(fast: Config) -> None:
    first = await start_server(fast)
    try:
        host, room_id = await live_room(first, "artist", "Before the restart")
        listeners = list(
            await asyncio.gather(
                *(LiveroomClient.connect(first.url, make_token(f"fan{i}")) for i in range(5))
            )
        )
        await asyncio.gather(*(c.request("room:join", {"room_id": room_id}) for c in listeners))
        await until(lambda: first.app[STATS].live(room_id) == 6)
        await asyncio.gather(host.close(), *(c.close() for c in listeners))
    finally:
        await first.stop()
    second = await start_server(fast)
    try:
        host = await LiveroomClient.connect(second.url, make_token("artist", host=True))
        await host.request("room:join", {"room_id": room_id})
        back = await LiveroomClient.connect(second.url, make_token("fan0"))
        new = await LiveroomClient.connect(second.url, make_token("newcomer"))
        for c in (back, new):
            await c.request("room:join", {"room_id": room_id})
        stats = second.app[STATS]
        await until(lambda: stats.live(room_id) == 3)
        figures = stats.figures(room_id)
        assert figures is not None and (figures.peak, figures.unique) == (6, 7)  # fan0 once
        await host.request("room:end", {"room_id": room_id})
        await asyncio.gather(host.close(), back.close(), new.close())
    finally:
        await second.stop()

    table = await cli(fast, "--metric", "unique", "--period", "week")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "unique" in lines[0] and "Before the restart" in lines[1] and " 7 " in f" {lines[1]} "
    refused = await cli(fast, "--limit", "0")
    assert refused.returncode == 2 and "limit" in refused.stderr


async def cli(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    """``liveroom rankings`` on the server's database, in its own process."""
    db = ("--data-dir", str(config.data_dir), "--database-url", config.effective_database_url)
    command = [sys.executable, "-m", "liveroom", "rankings", *args, *db]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )
