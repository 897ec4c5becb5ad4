"""Other sites: same-origin by default, for the API and for Socket.IO; an operator names the
origins allowed (`--cors-origin`), and only those get CORS answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from liveroom.app import RunningServer, start_server
from liveroom.client import LiveroomClient, Refused
from liveroom.config import Config
from tests.conftest import make_token

FAN_SITE = "https://fans.example"


@pytest.fixture
async def open_to_fans(config: Config) -> AsyncIterator[RunningServer]:
    running = await start_server(replace(config, cors_origins=(FAN_SITE,)))
    yield running
    await running.stop()


async def preflight(server: RunningServer, origin: str) -> aiohttp.ClientResponse:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    async with (
        aiohttp.ClientSession() as http,
        http.options(f"{server.url}/api/tokens", headers=headers) as response,
    ):
        await response.read()
        return response


async def test_by_default_no_other_site_is_answered(server: RunningServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/rooms", headers={"Origin": FAN_SITE}) as response,
    ):
        assert response.status == 200
        assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in (await preflight(server, FAN_SITE)).headers
    with pytest.raises(Refused):
        await LiveroomClient.connect(server.url, make_token("fan"), headers={"Origin": FAN_SITE})
    same = await LiveroomClient.connect(  # the web client's own origin
        server.url, make_token("fan"), headers={"Origin": server.url}
    )
    await same.close()


async def test_a_named_origin_is_answered_and_no_other(open_to_fans: RunningServer) -> None:
    allowed = await preflight(open_to_fans, FAN_SITE)
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == FAN_SITE
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{open_to_fans.url}/api/rooms/0123456789abcdef", headers={"Origin": FAN_SITE}
        ) as missing,
    ):  # errors carry it too, so the page can read why
        assert missing.status == 404
        assert missing.headers["Access-Control-Allow-Origin"] == FAN_SITE
    other = await preflight(open_to_fans, "https://elsewhere.example")
    assert "Access-Control-Allow-Origin" not in other.headers
    for origin in (FAN_SITE, open_to_fans.url):  # the named site, and still the server's own
        fan = await LiveroomClient.connect(
            open_to_fans.url, make_token("fan"), headers={"Origin": origin}
        )
        await fan.close()
    with pytest.raises(Refused):
        await LiveroomClient.connect(
            open_to_fans.url, make_token("fan"), headers={"Origin": "https://elsewhere.example"}
        )
