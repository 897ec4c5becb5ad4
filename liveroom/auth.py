"""Tokens: JWT HS256 as PROTOCOL.md says, and the :class:`Identity` a verified token stands for."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from liveroom.clock import Clock
from liveroom.errors import Invalid, Unauthorized

ALGORITHM = "HS256"
GUEST_PREFIX = "g_"
MAX_NAME_CHARS = 50
_MARKET = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class Grants:
    host: bool = False
    admin: bool = False


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection or request is, as its token says."""

    user_id: str
    name: str
    verified: bool = False
    market: str | None = None
    grants: Grants = Grants()
    guest: bool = False

    def public(self) -> dict[str, Any]:
        """The protocol's ``User`` shape."""
        return {"id": self.user_id, "name": self.name, "verified": self.verified}


class _GrantsClaim(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    host: bool = False
    admin: bool = False


class _Claims(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    sub: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    exp: int
    market: str | None = Field(default=None, pattern=_MARKET.pattern)
    verified: bool = False
    grants: _GrantsClaim = _GrantsClaim()
    guest: bool = False


def clean_name(name: str) -> str:
    """A display name: trimmed, control characters refused, 1–50 code points."""
    text = " ".join(name.split())
    if not text or len(text) > MAX_NAME_CHARS:
        raise Invalid(f"name must be 1–{MAX_NAME_CHARS} characters")
    if any(not ch.isprintable() for ch in text):
        raise Invalid("name must not contain control characters")
    return text


def normalise_market(market: str) -> str:
    code = market.strip().upper()
    if not _MARKET.match(code):
        raise Invalid(f"market must be an ISO 3166 alpha-2 code, not {market!r}")
    return code


def accept_language_region(header: str | None) -> str | None:
    """The market a browser's ``Accept-Language`` points to: the region of its most preferred
    tag that has one (``ko-KR,ko;q=0.9`` → ``KR``; ``en`` alone → none; UN M.49 areas such as
    ``es-419`` are not markets). Bounded work whatever the header's length."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for n, part in enumerate(header[:512].split(",")[:16]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        subtags = tag.strip().split("-")
        region = next((t.upper() for t in subtags[1:] if _MARKET.match(t.upper())), None)
        if region is not None and quality > 0 and (best is None or quality > best[0]):
            best = (quality, n, region)
    return best[2] if best else None


class TokenService:
    """Signs and verifies tokens with the server's secret."""

    def __init__(self, secret: str, clock: Clock, guest_ttl_s: int) -> None:
        self._secret = secret
        self._clock = clock
        self._guest_ttl_s = guest_ttl_s

    def issue(self, identity: Identity, ttl_s: int) -> str:
        if identity.user_id.startswith(GUEST_PREFIX) != identity.guest:
            raise Invalid(f"user ids starting with {GUEST_PREFIX!r} are for guests only")
        if identity.guest and (
            identity.grants.host or identity.grants.admin or identity.verified or identity.market
        ):
            raise Invalid("guest tokens carry no grants, verification or market")
        claims: dict[str, Any] = {
            "sub": identity.user_id,
            "name": identity.name,
            "exp": self._clock.now_ms() // 1000 + ttl_s,
            "verified": identity.verified,
            "grants": {"host": identity.grants.host, "admin": identity.grants.admin},
        }
        if identity.market:
            claims["market"] = identity.market
        if identity.guest:
            claims["guest"] = True
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue_guest(self, name: str) -> tuple[str, Identity]:
        """A fan token for a new guest id: never a host, never verified, no market."""
        identity = Identity(GUEST_PREFIX + secrets.token_hex(8), clean_name(name), guest=True)
        return self.issue(identity, self._guest_ttl_s), identity

    def verify(self, token: object) -> Identity:
        """The identity of a valid token, else :class:`Unauthorized` with the reason."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("missing token")
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # pins HS256: "none" and any other alg are refused
                options={"require": ["sub", "exp", "name"], "verify_exp": False},
            )
        except jwt.InvalidTokenError as e:
            raise Unauthorized(f"invalid token: {e}") from None
        try:
            claims = _Claims.model_validate(payload)
        except ValidationError as e:
            first = e.errors()[0]
            raise Unauthorized(f"invalid token claim {first['loc'][0]}: {first['msg']}") from None
        # Expiry is checked against the injected clock, not PyJWT's own time.time().
        if claims.exp * 1000 <= self._clock.now_ms():
            raise Unauthorized("token expired")
        if claims.guest and (
            claims.grants.host or claims.grants.admin or claims.verified or claims.market
        ):
            raise Unauthorized("a guest token cannot carry grants, verification or a market")
        return Identity(
            user_id=claims.sub,
            name=claims.name,
            verified=claims.verified,
            market=claims.market,
            grants=Grants(host=claims.grants.host, admin=claims.grants.admin),
            guest=claims.guest,
        )
