"""``GET /api/rooms`` and ``GET /api/rooms/{id}``: rooms as the audience sees them; a room's
audit log for its host and its reports for its staff (bearer token), also after it ended."""

from __future__ import annotations

from aiohttp import web

from liveroom.api import bearer_identity, export_response
from liveroom.auth import TokenService
from liveroom.errors import Forbidden, Invalid
from liveroom.permissions import STAFF
from liveroom.rooms import model
from liveroom.rooms.service import RoomService
from liveroom.rooms.stage import RoomStatus
from liveroom.rooms.views import snapshot

AUDIT_FIELDS = ("at", "actor_id", "action", "target_id", "detail")
REPORT_FIELDS = ("id", "at", "reporter_id", "user_id", "question_id", "reason")


class RoomsApi:
    def __init__(self, rooms: RoomService, tokens: TokenService) -> None:
        self._rooms = rooms
        self._tokens = tokens

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/rooms", self.list_rooms)
        app.router.add_get("/api/rooms/{room_id}", self.get_room)
        app.router.add_get("/api/rooms/{room_id}/audit.{format:csv|json}", self.audit)
        app.router.add_get("/api/rooms/{room_id}/reports.{format:csv|json}", self.reports)

    async def audit(self, request: web.Request) -> web.Response:
        identity = bearer_identity(request, self._tokens)
        state = await self._rooms.find(request.match_info["room_id"])
        if not identity.grants.admin and state.host != identity.user_id:
            raise Forbidden("only the room's host exports its audit log")
        rows = await self._rooms.audit_log(state.id)
        return export_response(rows, AUDIT_FIELDS, request.match_info["format"], "audit", state.id)

    async def reports(self, request: web.Request) -> web.Response:
        identity = bearer_identity(request, self._tokens)
        state = await self._rooms.find(request.match_info["room_id"])
        if not identity.grants.admin and model.role_of(state, identity.user_id) not in STAFF:
            raise Forbidden("only the room's host, co-hosts and moderators see its reports")
        rows = await self._rooms.reports(state.id)
        fmt = request.match_info["format"]
        return export_response(rows, REPORT_FIELDS, fmt, "reports", state.id)

    async def list_rooms(self, request: web.Request) -> web.Response:
        raw = request.query.get("status", RoomStatus.LIVE.value)
        try:
            status = RoomStatus(raw)
        except ValueError:
            raise Invalid("status must be live, scheduled or ended") from None
        if status is RoomStatus.ENDED:
            rooms = await self._rooms.ended_listing()
        else:
            rooms = self._rooms.listing(status)
        return web.json_response({"rooms": rooms})

    async def get_room(self, request: web.Request) -> web.Response:
        state = await self._rooms.find(request.match_info["room_id"])
        count = self._rooms.presence.count(state.id)
        return web.json_response({"room": snapshot(state, None, count)})
