"""Uploaded media: ``POST /api/rooms/{id}/media`` (staff, multipart field ``file``) stores a file
after PyAV has read it (its kind and duration come from the probe, never from the client), and
``GET /media/{id}`` serves it to players (range requests, long cache: a media id never changes).

The upload is streamed to disk with a size limit; a file PyAV cannot read, or one with no audio
or video stream, is refused and deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import av
from aiohttp import BodyPartReader, web

from liveroom.api import bearer_identity
from liveroom.auth import TokenService
from liveroom.clock import Clock
from liveroom.db.models import MediaRow
from liveroom.errors import Forbidden, Full, Invalid, NotFound
from liveroom.permissions import STAFF
from liveroom.playlist.store import SqlPlaylistStore
from liveroom.ratelimit import RateLimits
from liveroom.rooms import model as stage_model
from liveroom.rooms.service import RoomService

CHUNK = 256 * 1024
TYPES_CACHED = 1024
PROBES_AT_ONCE = 2
"""FFmpeg reads untrusted files in worker threads: few at once, so serving media never waits."""
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "matroska,webm": "video/webm",
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4",
    "aac": "audio/aac",
}


@dataclass(frozen=True, slots=True)
class Probe:
    kind: str  # audio | video
    duration_s: float | None
    content_type: str


def probe(path: Path) -> Probe:
    """What PyAV finds in the file; :class:`Invalid` when it is not media it can read."""
    try:
        with av.open(str(path)) as container:
            video = any(s.type == "video" for s in container.streams)
            audio = any(s.type == "audio" for s in container.streams)
            if not (audio or video):
                raise Invalid("the file has no audio or video in it")
            duration = container.duration / av.time_base if container.duration else None
            content_type = CONTENT_TYPES.get(container.format.name)
            if content_type is None:  # images, playlists, anything a player should not get
                raise Invalid(
                    f"{container.format.name} files are not supported: send audio or video"
                )
            if audio and not video and content_type.startswith("video/"):
                content_type = "audio/" + content_type.split("/", 1)[1]
            return Probe("video" if video else "audio", duration, content_type)
    except av.error.FFmpegError:
        raise Invalid("the file is not audio or video that the server can read") from None


class MediaApi:
    def __init__(
        self,
        store: SqlPlaylistStore,
        rooms: RoomService,
        tokens: TokenService,
        limits: RateLimits,
        clock: Clock,
        media_dir: Path,
        max_bytes: int,
        room_bytes: int,
        total_bytes: int,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._tokens = tokens
        self._clock = clock
        self._dir = media_dir
        self._max_bytes = max_bytes
        self._room_bytes = room_bytes
        self._total_bytes = total_bytes
        self._limits = limits
        self._probes = asyncio.Semaphore(PROBES_AT_ONCE)
        self._types: OrderedDict[str, str] = OrderedDict()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/rooms/{room_id}/media", self.upload)
        app.router.add_get("/media/{media_id}", self.serve)

    async def upload(self, request: web.Request) -> web.Response:
        identity = bearer_identity(request, self._tokens)
        state = self._rooms.state(request.match_info["room_id"])
        if not identity.grants.admin and stage_model.role_of(state, identity.user_id) not in STAFF:
            raise Forbidden("only the room's host, co-hosts and moderators upload media")
        used = await self._store.media_bytes(state.id)
        if used >= self._room_bytes:
            raise Full(f"this room's uploads already take {used} of {self._room_bytes} bytes")
        total = await self._store.media_bytes(None)
        if total >= self._total_bytes:
            raise Full("the server's space for uploads is full: ask its operator")
        self._limits.hit("uploads", identity.user_id)
        if request.content_length is not None and request.content_length > self._max_bytes + 4096:
            raise Invalid(f"the file is larger than {self._max_bytes} bytes")
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError):
            raise Invalid("send multipart/form-data with a field named file") from None
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != "file":
            raise Invalid("send multipart/form-data with a field named file")
        media_id = secrets.token_hex(8)
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / media_id
        try:
            room_left, server_left = self._room_bytes - used, self._total_bytes - total
            size = await self._save(part, path, room_left, server_left)
            async with self._probes:
                found = await asyncio.to_thread(probe, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise
        title = " ".join(Path(unquote(part.filename or "upload")).stem.split())[:200] or "upload"
        row = MediaRow(
            id=media_id,
            room_id=state.id,
            title=title,
            kind=found.kind,
            content_type=found.content_type,
            duration_s=found.duration_s,
            size=size,
            uploaded_by=identity.user_id,
            created_at=self._clock.now_ms(),
        )
        await self._store.add_media(row)
        media = {"id": media_id, "title": title, "duration_s": found.duration_s, "kind": found.kind}
        return web.json_response({"media": media}, status=201)

    async def _content_type(self, media_id: str) -> str:
        """A media id's type: players fetch a file in many ranges, SQL is asked once (a media
        row never changes), and the cache is bounded."""
        known = self._types.get(media_id)
        if known is not None:
            self._types.move_to_end(media_id)
            return known
        media = await self._store.media(media_id)
        if media is None:
            raise NotFound("no such media")
        self._types[media_id] = media.content_type
        if len(self._types) > TYPES_CACHED:
            self._types.popitem(last=False)
        return media.content_type

    async def _save(
        self, part: BodyPartReader, path: Path, room_left: int, server_left: int
    ) -> int:
        size = 0
        with path.open("wb") as out:
            while chunk := await part.read_chunk(CHUNK):
                size += len(chunk)
                if size > self._max_bytes:
                    raise Invalid(f"the file is larger than {self._max_bytes} bytes")
                if size > room_left:
                    raise Full("the file does not fit in this room's space for uploads")
                if size > server_left:
                    raise Full("the server's space for uploads is full: ask its operator")
                out.write(chunk)
        if size == 0:
            raise Invalid("the file is empty")
        return size

    async def serve(self, request: web.Request) -> web.FileResponse:
        media_id = request.match_info["media_id"]
        content_type = await self._content_type(media_id)
        response = web.FileResponse(self._dir / media_id)
        response.content_type = content_type
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        # A file is only ever media: never a page, never a script, whatever it holds.
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
