"""Connecting: a valid token gets in, every bad one is refused with its reason."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import jwt
import pytest
import socketio

from liveroom.app import TOKENS, RunningServer, start_server
from liveroom.client import LiveroomClient, Refused, guest_token
from liveroom.config import Config
from tests.conftest import TEST_SECRET, make_token


async def test_guest_token_from_http_connects(server: RunningServer) -> None:
    token, user = await guest_token(server.url, "Mina")
    assert user["name"] == "Mina" and user["verified"] is False
    async with await LiveroomClient.connect(server.url, token) as client:
        ack = await client.call("time:sync", {"t0": 1})
        assert ack["ok"] is True


async def test_guest_token_carries_no_grants(server: RunningServer) -> None:
    token, _ = await guest_token(server.url, "Mina")
    identity = server.app[TOKENS].verify(token)
    assert not identity.grants.host and not identity.grants.admin and identity.guest
    async with aiohttp.ClientSession() as http:
        # Asking for more than a name is refused outright, never silently granted.
        resp = await http.post(
            f"{server.url}/api/tokens", json={"name": "Mina", "grants": {"host": True}}
        )
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        (None, "missing token"),
        ({}, "missing token"),
        ({"token": "garbage"}, "invalid token"),
        ({"token": make_token("u", ttl_s=-10)}, "expired"),
        ({"token": make_token("u", secret="wrong-key" * 8)}, "signature"),
        (
            {"token": jwt.encode({"sub": "u", "name": "n", "exp": 2**40}, "", "none")},
            "invalid token",
        ),
        (
            {
                "token": jwt.encode(
                    {
                        "sub": "g_1",
                        "name": "n",
                        "exp": 2**40,
                        "guest": True,
                        "grants": {"host": True},
                    },
                    TEST_SECRET,
                )
            },
            "guest",
        ),
    ],
    ids=["no-auth", "no-token", "garbage", "expired", "wrong-key", "alg-none", "guest-host"],
)
async def test_bad_tokens_are_refused_at_connect(
    server: RunningServer, auth: dict[str, str] | None, reason: str
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    reasons: list[str] = []
    client.on("connect_error", lambda data: reasons.append(str(data.get("message"))))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, auth=auth, transports=["websocket"], wait_timeout=5)
    assert len(reasons) == 1 and reason in reasons[0].lower()
    assert not client.connected


async def test_sdk_reports_the_refusal_reason(server: RunningServer) -> None:
    with pytest.raises(Refused, match="expired"):
        await LiveroomClient.connect(server.url, make_token("u", ttl_s=-10))


async def test_guest_tokens_can_be_turned_off(config: Config) -> None:
    running = await start_server(replace(config, guests=False))
    try:
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"{running.url}/api/tokens", json={"name": "x"})
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "forbidden"
    finally:
        await running.stop()
