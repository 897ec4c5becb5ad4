"""HLS over HTTP, shaped for nginx or a CDN in front: ``/hls/{room_id}/live.m3u8``, its
segments, and ``replay.m3u8`` once the room has ended; the host deletes a replay with
``DELETE /api/rooms/{id}/replay``; a cleanup job deletes replays past their retention.

Playlists are short-lived in caches (``max-age`` ≤ the target duration, so a cache never holds
the live edge back by more than one segment), segments immutable (a name is never reused for
other audio). aiohttp's file responses give ``ETag``, ``Last-Modified``, conditional requests
and ranges. Only names the packager writes are served — nothing else in the directory, no
path of the client's making — and no URL carries anything per user: every listener fetches the
same bytes (presence is counted from Socket.IO sessions, which every client keeps).

Several nodes: a room's HLS is written by the node that runs it. Any node answers for any room:
from the media dir when it is shared (as uploads need it to be), else by **proxying** the request
to the room's node (``X-Liveroom-Proxied``, never proxied twice). A proxy, not a redirect: the
URL a CDN caches stays the public one, and no client is sent to an internal address.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from liveroom.api import bearer_identity, error_response
from liveroom.auth import TokenService
from liveroom.clock import Clock
from liveroom.errors import Conflict, Forbidden, NotFound
from liveroom.media.hls import LIVE_PLAYLIST, REPLAY_PLAYLIST, SEGMENT_NAME
from liveroom.rooms.service import RoomService
from liveroom.rooms.stage import RoomStatus
from liveroom.tasks import Periodic

logger = logging.getLogger(__name__)

ROOM_ID = re.compile(r"[0-9a-f]{16}")
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"
SEGMENT_CACHE = "public, max-age=86400, immutable"
"""A name never means other audio; a day, not a year, so a deleted replay leaves caches too."""
NOT_FOUND_CACHE = "no-store"  # a room about to go live must not stay "not found" in a cache
REPLAY_CACHE = "public, max-age=60"  # the host may delete it: caches let go within a minute
SWEEP_S = 3600.0
UNRECORDED_KEEP_S = 3600.0
PROXIED = "X-Liveroom-Proxied"
PROXY_TIMEOUT_S = 2.0
PROXY_MAX_BYTES = 4 * 1024 * 1024
PROXY_HEADERS = ("Cache-Control", "Content-Type", "ETag", "Last-Modified")

NodeUrl = Callable[[str], Awaitable[str | None]]
"""Several nodes: the base URL of the node running a room (``None``: this one, or nobody)."""


class HlsApi:
    def __init__(
        self,
        directory: Path,
        rooms: RoomService,
        tokens: TokenService,
        target_duration_s: int,
        on_replay_played: Callable[[str], None],
    ) -> None:
        self._dir = directory
        self._rooms = rooms
        self._tokens = tokens
        self._live_cache = f"public, max-age={max(1, target_duration_s // 2)}"
        self._played = on_replay_played
        self.node_url: NodeUrl | None = None
        self._http: aiohttp.ClientSession | None = None
        self.requests: dict[tuple[str, str], int] = {}
        """Requests served, by ``(kind, outcome)``: kind ``live``, ``replay``, ``segment`` or
        ``other``; outcome ``ok`` or ``not_found``."""

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/hls/{room_id}/{name}", self.serve)
        app.router.add_delete("/api/rooms/{room_id}/replay", self.delete_replay)

    def room_dir(self, room_id: str) -> Path:
        if not ROOM_ID.fullmatch(room_id):
            raise NotFound("no such room")
        return self._dir / room_id

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def serve(self, request: web.Request) -> web.StreamResponse:
        kind = _kind(request.match_info["name"])
        try:
            try:
                response: web.StreamResponse = await self._serve(request)
            except NotFound:
                response = await self._from_its_node(request)
        except NotFound as e:
            self._count(kind, "not_found")
            missing = error_response(e)
            missing.headers["Cache-Control"] = NOT_FOUND_CACHE
            return missing
        self._count(kind, "ok")
        return response

    async def _from_its_node(self, request: web.Request) -> web.Response:
        """Several nodes, a file not here: the room's node's answer (``NotFound`` otherwise)."""
        room_id, name = request.match_info["room_id"], request.match_info["name"]
        if self.node_url is None or PROXIED in request.headers or not ROOM_ID.fullmatch(room_id):
            raise NotFound("no such file")
        if _kind(name) == "other":  # only names the packager writes: nothing else is asked for
            raise NotFound("no such file")
        base = await self.node_url(room_id)
        if base is None:
            raise NotFound("no such file")
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(PROXY_TIMEOUT_S))
        url = f"{base}/hls/{room_id}/{name}"
        try:
            async with self._http.get(url, headers={PROXIED: "1"}) as reply:
                if reply.status != 200 or (reply.content_length or 0) > PROXY_MAX_BYTES:
                    raise NotFound("no such file")
                body = await reply.read()
                if len(body) > PROXY_MAX_BYTES:
                    raise NotFound("no such file")
                headers = {h: reply.headers[h] for h in PROXY_HEADERS if h in reply.headers}
        except (aiohttp.ClientError, TimeoutError) as e:
            logger.warning("HLS of room %s: its node did not answer: %s", room_id, e)
            raise NotFound("no such file") from None
        response = web.Response(body=body, headers=headers)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    def _count(self, kind: str, outcome: str) -> None:
        key = (kind, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1

    async def _serve(self, request: web.Request) -> web.FileResponse:
        name = request.match_info["name"]
        path = self.room_dir(request.match_info["room_id"]) / name
        if name == LIVE_PLAYLIST:
            cache, content_type = self._live_cache, PLAYLIST_TYPE
        elif name == REPLAY_PLAYLIST:
            cache, content_type = REPLAY_CACHE, PLAYLIST_TYPE
        elif SEGMENT_NAME.fullmatch(name):
            cache, content_type = SEGMENT_CACHE, SEGMENT_TYPE
        else:
            raise NotFound("no such file")
        if not await asyncio.to_thread(path.is_file):
            raise NotFound("no such file")
        if name == REPLAY_PLAYLIST and _starts_a_play(request):
            self._played(path.parent.name)
        response = web.FileResponse(path)
        response.content_type = content_type
        response.headers["Cache-Control"] = cache
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Access-Control-Allow-Origin"] = "*"  # the same bytes for everyone
        return response

    async def delete_replay(self, request: web.Request) -> web.Response:
        identity = bearer_identity(request, self._tokens)
        state = await self._rooms.find(request.match_info["room_id"])
        if not identity.grants.admin and state.host != identity.user_id:
            raise Forbidden("only the room's host deletes its replay")
        if state.status is not RoomStatus.ENDED:
            raise Conflict("the room is live: turn recording off instead")
        directory = self.room_dir(state.id)
        if not await asyncio.to_thread(directory.is_dir):
            raise NotFound("this room has no replay")
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
        logger.info(
            "user %s deleted the replay of room %s",
            identity.user_id,
            state.id,
            extra={"room_id": state.id, "user_id": identity.user_id},
        )
        return web.Response(status=204)


def _kind(name: str) -> str:
    if name == LIVE_PLAYLIST:
        return "live"
    if name == REPLAY_PLAYLIST:
        return "replay"
    return "segment" if SEGMENT_NAME.fullmatch(name) else "other"


def _starts_a_play(request: web.Request) -> bool:
    """A player starting the replay fetches its playlist once, whole: not a HEAD, a range or a
    cache's revalidation. (Behind a CDN only the CDN's fetches reach here: count plays there.)"""
    conditional = any(h in request.headers for h in ("If-None-Match", "If-Modified-Since", "Range"))
    return request.method == "GET" and not conditional


class ReplayRetention:
    """Deletes replays older than ``retention_s`` (and what rooms that ended unrecorded left),
    at start and hourly: the media dir never grows without end."""

    def __init__(self, directory: Path, retention_s: float, clock: Clock) -> None:
        self._dir = directory
        self._retention_s = retention_s
        self._clock = clock
        self._sweeper = Periodic("replay-retention", SWEEP_S, self.sweep, clock)
        self._first: asyncio.Task[None] | None = None
        """The sweep at start: a server restarted more often than hourly still sweeps."""

    def start(self) -> None:
        self._sweeper.start()
        self._first = asyncio.create_task(self.sweep(), name="replay-retention-first")

    async def stop(self) -> None:
        await self._sweeper.stop()
        first, self._first = self._first, None
        if first is not None:
            await asyncio.gather(first, return_exceptions=True)

    async def sweep(self) -> None:
        now_s = self._clock.now_ms() / 1000
        await asyncio.to_thread(delete_expired, self._dir, now_s, self._retention_s)


def expired_replays(directory: Path, now_s: float, retention_s: float) -> list[Path]:
    """Rooms' HLS directories past their time: a replay written longer ago than the retention,
    or the live window of a room that ended unrecorded an hour ago (its last listeners, a few
    seconds behind, are long done) — never a live room's (its playlist is rewritten each
    segment)."""
    if not directory.is_dir():
        return []
    old = []
    for room in directory.iterdir():
        if not room.is_dir() or not ROOM_ID.fullmatch(room.name):
            continue
        replay, live = room / REPLAY_PLAYLIST, room / LIVE_PLAYLIST
        keep_s = retention_s if replay.exists() else min(retention_s, UNRECORDED_KEEP_S)
        newest = max((p.stat().st_mtime for p in (replay, live) if p.exists()), default=0.0)
        if newest < now_s - keep_s:
            old.append(room)
    return old


def delete_expired(directory: Path, now_s: float, retention_s: float) -> int:
    """Delete what :func:`expired_replays` finds; blocking (run it in a thread)."""
    gone = expired_replays(directory, now_s, retention_s)
    for room in gone:
        shutil.rmtree(room, ignore_errors=True)
        logger.info(
            "deleted the replay of room %s (older than its retention)",
            room.name,
            extra={"room_id": room.name},
        )
    return len(gone)
