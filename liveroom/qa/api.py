"""``GET /api/rooms/{id}/questions.csv`` and ``.json``: a room's Q&A for its staff (bearer token),
also after the room ended. Authors by their real names, anonymous flag kept; without the
questions of users the one exporting blocks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from liveroom.api import bearer_identity, export_response
from liveroom.auth import TokenService
from liveroom.errors import Forbidden
from liveroom.permissions import STAFF
from liveroom.qa.model import Question
from liveroom.qa.service import QaService
from liveroom.rooms import model as stage_model
from liveroom.rooms.service import RoomService

FIELDS = (
    "id",
    "text",
    "author_id",
    "author_name",
    "anonymous",
    "status",
    "votes",
    "created_at",
    "answered_at",
    "reason",
)


def export_row(q: Question) -> dict[str, Any]:
    return {
        "id": q.id,
        "text": q.text,
        "author_id": q.author.id,
        "author_name": q.author.name,
        "anonymous": q.anonymous,
        "status": q.status.value,
        "votes": q.votes,
        "created_at": q.created_at,
        "answered_at": q.answered_at,
        "reason": q.reason,
    }


BlocksOf = Callable[[str], Awaitable[Mapping[str, int]]]
"""Whom a user blocks (id → when), whether or not they are connected."""


async def _no_blocks(user_id: str) -> Mapping[str, int]:
    return {}


class QaApi:
    def __init__(
        self,
        qa: QaService,
        rooms: RoomService,
        tokens: TokenService,
        blocks_of: BlocksOf = _no_blocks,
    ) -> None:
        self._qa = qa
        self._rooms = rooms
        self._tokens = tokens
        self._blocks_of = blocks_of

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/rooms/{room_id}/questions.{format:csv|json}", self.export)

    async def export(self, request: web.Request) -> web.StreamResponse:
        identity = bearer_identity(request, self._tokens)
        state = await self._rooms.find(request.match_info["room_id"])
        if not identity.grants.admin and stage_model.role_of(state, identity.user_id) not in STAFF:
            raise Forbidden("only the room's host, co-hosts and moderators export its questions")
        blocked = await self._blocks_of(identity.user_id)
        rows = [export_row(q) for q in await self._qa.export(state.id, blocked)]
        return export_response(rows, FIELDS, request.match_info["format"], "questions", state.id)
