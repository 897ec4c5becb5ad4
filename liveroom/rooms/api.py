"""``GET /api/rooms`` and ``GET /api/rooms/{id}``: rooms as the audience sees them."""

from __future__ import annotations

from aiohttp import web

from liveroom.errors import Invalid
from liveroom.rooms.service import RoomService
from liveroom.rooms.stage import RoomStatus
from liveroom.rooms.views import snapshot


class RoomsApi:
    def __init__(self, rooms: RoomService) -> None:
        self._rooms = rooms

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/rooms", self.list_rooms)
        app.router.add_get("/api/rooms/{room_id}", self.get_room)

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
