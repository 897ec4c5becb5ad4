"""SDK peers beside a test: connected clients and their audio sessions, all closed after it."""

from __future__ import annotations

import asyncio
from typing import Any

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
