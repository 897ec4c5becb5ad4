"""``GET /api/rankings`` (rooms), ``/api/rankings/artists``, ``/api/rankings/markets`` and
``GET /api/rooms/{id}/listeners``: public reads, no token. A bad parameter is ``invalid`` (400),
through the app's one error adapter."""

from __future__ import annotations

from aiohttp import web

from liveroom.clock import Clock
from liveroom.errors import NotFound
from liveroom.stats.queries import parse_artists, parse_markets, parse_rankings, parse_samples
from liveroom.stats.rankings import SqlRankings


class RankingsApi:
    def __init__(self, rankings: SqlRankings, clock: Clock) -> None:
        self._rankings = rankings
        self._clock = clock

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/rankings", self.rooms)
        app.router.add_get("/api/rankings/artists", self.artists)
        app.router.add_get("/api/rankings/markets", self.markets)
        app.router.add_get("/api/rooms/{room_id}/listeners", self.listeners)

    async def rooms(self, request: web.Request) -> web.Response:
        query = parse_rankings(request.query)
        ranks = await self._rankings.rooms(query, self._clock.now_ms())
        return web.json_response({"rankings": [r.view() for r in ranks]})

    async def artists(self, request: web.Request) -> web.Response:
        query = parse_artists(request.query)
        ranks = await self._rankings.artists(query, self._clock.now_ms())
        return web.json_response({"rankings": [r.view() for r in ranks]})

    async def markets(self, request: web.Request) -> web.Response:
        query = parse_markets(request.query)
        shares = await self._rankings.markets(query, self._clock.now_ms())
        return web.json_response({"markets": [s.view() for s in shares]})

    async def listeners(self, request: web.Request) -> web.Response:
        room_id = request.match_info["room_id"]
        samples = await self._rankings.samples(room_id, parse_samples(request.query))
        if samples is None:
            raise NotFound("no listener counts for this room")
        return web.json_response(
            {
                "room_id": room_id,
                "samples": [
                    {"at": s.at, "listeners": s.listeners, "peak": s.peak} for s in samples
                ],
            }
        )
