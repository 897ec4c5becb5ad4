"""A live room survives the server restarting on the same data: roles and bans come back from
SQL, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from liveroom.app import start_server
from liveroom.client import LiveroomClient, Refused
from liveroom.config import Config
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine
from tests.conftest import fresh_pg_database, make_token


async def _client(
    url: str, user_id: str, name: str, *, host: bool = False, admin: bool = False
) -> LiveroomClient:
    return await LiveroomClient.connect(url, make_token(user_id, name, host=host, admin=admin))


async def _live_with_cohost(host: LiveroomClient, fan_a: LiveroomClient) -> str:
    """The host goes live and joins; fan A joins and accepts the host's co-host invitation."""
    created = await host.request("room:create", {"title": "Survives a restart"})
    room_id = str(created["room"]["id"])
    await host.request("room:join", {"room_id": room_id})
    await fan_a.request("room:join", {"room_id": room_id})
    await host.request("stage:invite", {"room_id": room_id, "user_id": "fan-a", "role": "cohost"})
    assert (await fan_a.next_event("stage:invited"))["role"] == "cohost"
    await fan_a.request("stage:accept", {"room_id": room_id})
    return room_id


async def _first_life(config: Config) -> str:
    """The host goes live, makes fan A a co-host and bans fan B; then the server stops."""
    server = await start_server(config)
    clients: list[LiveroomClient] = []
    try:
        host = await _client(server.url, "artist", "Artist", host=True)
        fan_a = await _client(server.url, "fan-a", "Fan A")
        fan_b = await _client(server.url, "fan-b", "Fan B")
        clients += [host, fan_a, fan_b]
        room_id = await _live_with_cohost(host, fan_a)
        await fan_b.request("room:join", {"room_id": room_id})
        await host.request("room:remove", {"room_id": room_id, "user_id": "fan-b", "ban": True})
        assert (await fan_b.next_event("room:removed"))["ban"] is True
        return room_id
    finally:
        await asyncio.gather(*(c.close() for c in clients))
        await server.stop()


async def _live_rooms(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/rooms?status=live") as resp:
        assert resp.status == 200
        body = await resp.json()
    rooms: list[dict[str, Any]] = body["rooms"]
    return rooms


async def _second_life(config: Config, room_id: str) -> None:
    """A new server on the same data: the room is listed, its seats held, its ban kept."""
    server = await start_server(config)
    clients: list[LiveroomClient] = []
    try:
        [listed] = await _live_rooms(server.url)
        assert listed["id"] == room_id
        assert listed["title"] == "Survives a restart"
        assert listed["host"]["name"] == "Artist"
        assert [c["id"] for c in listed["cohosts"]] == ["fan-a"]
        assert listed["away"] == ["artist", "fan-a"]  # seats held until they come back

        fan_b = await _client(server.url, "fan-b", "Fan B, new token")
        fan_a = await _client(server.url, "fan-a", "Fan A")
        host = await _client(server.url, "artist", "Artist", host=True)
        clients += [fan_b, fan_a, host]
        refused = await fan_b.call("room:join", {"room_id": room_id})
        assert refused["error"]["code"] == "forbidden"

        rejoined = (await fan_a.request("room:join", {"room_id": room_id}))["room"]
        assert rejoined["you"]["role"] == "cohost"
        assert "fan-a" in rejoined["muted"]  # back on stage with the microphone off

        back = (await host.request("room:join", {"room_id": room_id}))["room"]
        assert back["you"]["role"] == "host"
        assert back["status"] == "live"
        assert back["away"] == []
        assert [c["id"] for c in back["cohosts"]] == ["fan-a"]
    finally:
        await asyncio.gather(*(c.close() for c in clients))
        await server.stop()


async def test_a_live_room_survives_a_restart_on_sqlite(config: Config) -> None:
    room_id = await _first_life(config)
    assert (config.data_dir / "liveroom.db").is_file()  # the same file serves both lives
    await _second_life(config, room_id)


@pytest.mark.postgres
async def test_a_live_room_survives_a_restart_on_postgresql(config: Config) -> None:
    async with fresh_pg_database() as url:
        engine = create_engine(url)
        try:
            await upgrade(engine)  # serve refuses an un-migrated PostgreSQL
        finally:
            await engine.dispose()
        on_pg = replace(config, database_url=url)
        room_id = await _first_life(on_pg)
        assert not any(config.data_dir.glob("*.db"))  # the rooms really were in PostgreSQL
        await _second_life(on_pg, room_id)


async def test_a_cohost_banned_everywhere_loses_the_seat_for_good(config: Config) -> None:
    server = await start_server(config)
    clients: list[LiveroomClient] = []
    try:
        host = await _client(server.url, "artist", "Artist", host=True)
        fan_a = await _client(server.url, "fan-a", "Fan A")
        admin = await _client(server.url, "root", "Admin", admin=True)
        clients += [host, fan_a, admin]
        room_id = await _live_with_cohost(host, fan_a)
        ban = {"room_id": room_id, "user_id": "fan-a", "everywhere": True}
        await admin.request("room:remove", ban)
        assert (await fan_a.next_event("room:removed"))["ban"] is True
        [listed] = await _live_rooms(server.url)
        assert listed["cohosts"] == []
    finally:
        await asyncio.gather(*(c.close() for c in clients))
        await server.stop()

    server = await start_server(config)
    try:
        with pytest.raises(Refused, match="banned"):
            await _client(server.url, "fan-a", "Fan A")
        [listed] = await _live_rooms(server.url)
        assert listed["cohosts"] == []
    finally:
        await server.stop()
