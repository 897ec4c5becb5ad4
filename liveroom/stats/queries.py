"""The rankings' questions, parsed at the edge: query strings into typed queries, or ``invalid``.

Pure, like the model: the API hands the query string in, the rankings get a frozen query back.
Unknown parameters are refused (a typo must not silently rank something else); empty values
(``host=``) mean absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from liveroom.errors import Invalid
from liveroom.stats.model import UNKNOWN_MARKET, Metric

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_ID_CHARS = 128
MAX_SAMPLES = 10_000
_MARKET = re.compile(r"[A-Z]{2}")
_WHOLE = re.compile(r"[0-9]{1,15}")  # ASCII digits only: str.isdigit() also takes "²"

E = TypeVar("E", bound=StrEnum)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ALL = "all"


_DAY_MS = 86_400_000
PERIOD_MS: dict[Period, int | None] = {
    Period.DAY: _DAY_MS,
    Period.WEEK: 7 * _DAY_MS,
    Period.MONTH: 30 * _DAY_MS,
    Period.YEAR: 365 * _DAY_MS,
    Period.ALL: None,
}


def window_start(period: Period, now_ms: int) -> int | None:
    """The start of the rolling window ``period`` ending at ``now_ms``; ``None`` for all time."""
    length = PERIOD_MS[period]
    return None if length is None else now_ms - length


@dataclass(frozen=True, slots=True)
class RankingQuery:
    metric: Metric = Metric.PEAK
    period: Period = Period.ALL
    host_id: str | None = None
    market: str | None = None
    """Listeners' market: rooms ranked by their audience from that market."""
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class ArtistQuery:
    period: Period = Period.ALL
    market: str | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class MarketQuery:
    """Exactly one of ``room_id`` and ``host_id``."""

    room_id: str | None = None
    host_id: str | None = None
    period: Period = Period.ALL


def _params(params: Mapping[str, str], allowed: set[str]) -> dict[str, str]:
    """The non-empty parameters; unknown names are refused."""
    extra = sorted(set(params) - allowed)
    if extra:
        raise Invalid(f"unknown parameter {extra[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return {k: v.strip() for k, v in params.items() if v.strip()}


def _choice(kind: type[E], name: str, raw: str | None, default: E) -> E:
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        options = ", ".join(e.value for e in kind)
        raise Invalid(f"{name} must be one of {options}, not {raw!r}") from None


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not _WHOLE.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _id(name: str, raw: str | None) -> str | None:
    if raw is not None and len(raw) > MAX_ID_CHARS:
        raise Invalid(f"{name} must be at most {MAX_ID_CHARS} characters")
    return raw


def parse_market(raw: str | None) -> str | None:
    """An ISO 3166 alpha-2 code (any case) or ``unknown``; ``None`` when absent."""
    if raw is None:
        return None
    if raw.lower() == UNKNOWN_MARKET:
        return UNKNOWN_MARKET
    code = raw.upper()
    if not raw.isascii() or not _MARKET.fullmatch(code):  # "ß".upper() is "SS"
        raise Invalid(f"market must be an ISO 3166 alpha-2 code or unknown, not {raw!r}")
    return code


def parse_rankings(params: Mapping[str, str]) -> RankingQuery:
    """``GET /api/rankings``'s query string."""
    p = _params(params, {"metric", "period", "host", "market", "limit"})
    return RankingQuery(
        metric=_choice(Metric, "metric", p.get("metric"), Metric.PEAK),
        period=_choice(Period, "period", p.get("period"), Period.ALL),
        host_id=_id("host", p.get("host")),
        market=parse_market(p.get("market")),
        limit=_limit(p.get("limit")),
    )


def parse_artists(params: Mapping[str, str]) -> ArtistQuery:
    """``GET /api/rankings/artists``'s query string."""
    p = _params(params, {"period", "market", "limit"})
    return ArtistQuery(
        period=_choice(Period, "period", p.get("period"), Period.ALL),
        market=parse_market(p.get("market")),
        limit=_limit(p.get("limit")),
    )


def parse_markets(params: Mapping[str, str]) -> MarketQuery:
    """``GET /api/rankings/markets``'s query string: ``room`` or ``host``, and a period."""
    p = _params(params, {"room", "host", "period"})
    room_id, host_id = _id("room", p.get("room")), _id("host", p.get("host"))
    if (room_id is None) == (host_id is None):
        raise Invalid("give exactly one of room and host")
    return MarketQuery(room_id, host_id, _choice(Period, "period", p.get("period"), Period.ALL))


@dataclass(frozen=True, slots=True)
class SampleQuery:
    since: int | None = None
    """Samples strictly after this time (a chart polling for what is new)."""
    limit: int = MAX_SAMPLES


def parse_samples(params: Mapping[str, str]) -> SampleQuery:
    """``GET /api/rooms/{id}/listeners``'s query string."""
    p = _params(params, {"since", "limit"})
    since, limit = p.get("since"), p.get("limit")
    if since is not None and not _WHOLE.fullmatch(since):
        raise Invalid("since must be epoch milliseconds")
    if limit is not None and (not _WHOLE.fullmatch(limit) or not 1 <= int(limit) <= MAX_SAMPLES):
        raise Invalid(f"limit must be a whole number from 1 to {MAX_SAMPLES}")
    return SampleQuery(
        since=int(since) if since is not None else None,
        limit=int(limit) if limit is not None else MAX_SAMPLES,
    )
