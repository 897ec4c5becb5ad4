"""SDK peers beside a test: connected clients and their audio sessions, all closed after it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from liveroom.app import RunningServer
from liveroom.client import LiveroomClient
from liveroom.client.audio import AudioSession, ToneTrack, open_audio
from tests.conftest import make_token


class Peers:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.clients: list[LiveroomClient] = []
        self.sessions: list[AudioSession] = []

    async def client(self, user: str, name: str | None = None, **claims: Any) -> LiveroomClient:
        client = await LiveroomClient.connect(self.server.url, make_token(user, name, **claims))
        self.clients.append(client)
        return client

    async def audio(self, client: LiveroomClient, room_id: str, hz: int | None) -> AudioSession:
        """Audio for ``client``: publishing a tone of ``hz`` (on stage), or only listening."""
        session = await open_audio(client, room_id, publish=ToneTrack(hz) if hz else None)
        self.sessions.append(session)
        return session

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()
        await asyncio.gather(*(c.close() for c in self.clients))

    async def __aenter__(self) -> Peers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def upload(
    http: aiohttp.ClientSession, url: str, room_id: str, token: str, name: str, body: bytes
) -> aiohttp.ClientResponse:
    """POST ``body`` as the file ``name`` to the room's media, as the bearer of ``token``."""
    form = aiohttp.FormData()
    form.add_field("file", body, filename=name, content_type="application/octet-stream")
    return await http.post(
        f"{url}/api/rooms/{room_id}/media", data=form, headers={"Authorization": f"Bearer {token}"}
    )


async def uploaded(
    server: RunningServer, room_id: str, token: str, name: str, body: bytes
) -> dict[str, Any]:
    """The media an upload became (the upload must succeed)."""
    async with aiohttp.ClientSession() as http:
        response = await upload(http, server.url, room_id, token, name, body)
        assert response.status == 201, await response.text()
        media: dict[str, Any] = (await response.json())["media"]
    return media
