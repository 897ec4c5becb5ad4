"""The JSON API's platform routes, and the one place an error becomes an HTTP reply."""

from __future__ import annotations

import csv
import io
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_remotes import XForwardedFiltered
from pydantic import BaseModel, ConfigDict, ValidationError

from liveroom.auth import Identity, TokenService
from liveroom.errors import (
    HTTP_STATUS,
    Forbidden,
    Internal,
    Invalid,
    LiveroomError,
    NotFound,
    Unauthorized,
    error_body,
)
from liveroom.ratelimit import RateLimits, ip_key

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: LiveroomError) -> web.Response:
    headers = {}
    if error.code == "rate_limited":
        headers["Retry-After"] = str(max(1, round(error.extras()["retry_after"] + 0.5)))
    return web.json_response(error_body(error), status=HTTP_STATUS[error.code], headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as JSON for ``/api``; unexpected exceptions logged with an id, never leaked."""
    try:
        return await handler(request)
    except LiveroomError as e:
        return error_response(e)
    except web.HTTPException as e:
        if not request.path.startswith("/api/") or e.status < 400:
            raise
        kind: LiveroomError = NotFound("no such endpoint") if e.status == 404 else Invalid(e.reason)
        return error_response(kind)
    except Exception:
        error_id = uuid.uuid4().hex[:12]
        logger.exception("internal error %s on %s %s", error_id, request.method, request.path)
        return error_response(Internal(f"internal error, logged as {error_id}"))


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",  # no inline script, no eval: user text can never run
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: https: http:",  # playlists play links from elsewhere
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self), camera=()",
}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The web client's protections on every reply (the Socket.IO upgrade excepted)."""
    response = await handler(request)
    if not response.prepared:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


CORS_MAX_AGE_S = 600


def cors(origins: Collection[str]) -> Middleware:
    """Other sites' pages may call ``/api`` only from ``origins`` (same-origin by default):
    those get ``Access-Control-Allow-Origin`` and their preflights an answer; anyone else gets
    no CORS headers at all, so their browsers refuse to read the reply."""
    allowed = frozenset(origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        api = request.path.startswith("/api/")
        if not api or origin not in allowed:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_S)
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response

    return middleware


def forwarded_for(trusted: Collection[str]) -> Middleware:
    """Behind reverse proxies at ``trusted`` (addresses or networks), a request they pass on is
    from the address their ``X-Forwarded-For`` names (the last one that is not a proxy of ours),
    and so are its rate limits; a request from anywhere else is taken at its word's address,
    its ``X-Forwarded-For`` ignored. Without ``trusted``, nothing is rewritten."""
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]
    rewrite = XForwardedFiltered(set(networks)).middleware if networks else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if rewrite is None or not peer or not _within(peer[0], networks):
            return await handler(request)
        return await rewrite(request, handler)

    return middleware


def _within(
    address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: web.Request) -> str:
    """What the request's address is rate-limited by (see :func:`ip_key`)."""
    return ip_key(request.remote)


def bearer_identity(request: web.Request, tokens: TokenService) -> Identity:
    """The identity of an ``Authorization: Bearer`` token, else :class:`Unauthorized`."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("an Authorization: Bearer token is required")
    return tokens.verify(token.strip())


async def json_body(request: web.Request, model: type[M]) -> M:
    try:
        data = await request.json()
    except ValueError:
        raise Invalid("the body must be JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Invalid(f"{where}: {first['msg'].lower()}") from None


class GuestTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str


class PlatformApi:
    """``/healthz`` and ``POST /api/tokens``."""

    def __init__(
        self,
        tokens: TokenService,
        limits: RateLimits,
        guests: bool,
        media_troubles: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self._tokens = tokens
        self._limits = limits
        self._guests = guests
        self._media_troubles = media_troubles

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.healthz)
        app.router.add_post("/api/tokens", self.guest_token)

    async def healthz(self, request: web.Request) -> web.Response:
        """Alive. Rooms whose HLS or recording cannot be written are listed under ``media``
        (their live WebRTC audio goes on; writing resumes when the disk lets it)."""
        troubles = self._media_troubles()
        return web.json_response({"ok": True, "media": {"ok": not troubles, "rooms": troubles}})

    async def guest_token(self, request: web.Request) -> web.Response:
        if not self._guests:
            raise Forbidden("guest tokens are disabled on this server")
        self._limits.hit("guest_tokens", client_ip(request))
        body = await json_body(request, GuestTokenRequest)
        token, identity = self._tokens.issue_guest(body.name)
        logger.info("issued a guest token to user %s", identity.user_id)
        return web.json_response({"token": token, "user": identity.public()})


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ is quoted as text."""
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_response(
    rows: list[dict[str, Any]], fields: tuple[str, ...], fmt: str, name: str, room_id: str
) -> web.Response:
    """A room's records for download: ``{"room_id", name: rows}`` as JSON, or CSV with
    ``fields`` as columns (cells that could be formulas quoted as text)."""
    if fmt == "json":
        return web.json_response({"room_id": room_id, name: rows})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_cell(row[f]) for f in fields])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}-{room_id}.csv"'},
    )
