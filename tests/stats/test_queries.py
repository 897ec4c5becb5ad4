"""The rankings' query strings: defaults, every refusal, and the rolling windows."""

from __future__ import annotations

import pytest

from liveroom.errors import Invalid
from liveroom.stats.model import Metric
from liveroom.stats.queries import (
    Period,
    RankingQuery,
    parse_artists,
    parse_markets,
    parse_rankings,
    parse_samples,
    window_start,
)

T0 = 1_795_000_000_000


def test_ranking_parameters_and_their_defaults() -> None:
    assert parse_rankings({}) == RankingQuery(Metric.PEAK, Period.ALL, None, None, 20)
    assert parse_rankings(
        {"metric": "unique", "period": "week", "host": "h1", "market": "kr", "limit": "5"}
    ) == RankingQuery(Metric.UNIQUE, Period.WEEK, "h1", "KR", 5)
    assert parse_rankings({"host": "", "market": " "}) == RankingQuery()
    assert parse_rankings({"market": "Unknown"}).market == "unknown"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"metric": "listens"}, "metric must be one of peak, unique, minutes"),
        ({"period": "decade"}, "period must be one of"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"market": "KOR"}, "market"),
        ({"market": "ß"}, "market"),
        ({"host": "h" * 129}, "host"),
        ({"metrc": "peak"}, "unknown parameter 'metrc'"),
    ],
)
def test_bad_ranking_parameters_are_invalid(params: dict[str, str], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        parse_rankings(params)


def test_artist_market_and_sample_parameters() -> None:
    assert parse_artists({"period": "day", "market": "jp"}).market == "JP"
    with pytest.raises(Invalid, match="unknown parameter 'metric'"):
        parse_artists({"metric": "peak"})
    assert parse_markets({"room": "r1"}).room_id == "r1"
    assert parse_markets({"host": "h", "period": "month"}).period is Period.MONTH
    for bad in ({}, {"room": "r", "host": "h"}):
        with pytest.raises(Invalid, match="exactly one of room and host"):
            parse_markets(bad)
    assert parse_samples({"since": "123"}).since == 123
    with pytest.raises(Invalid, match="since"):
        parse_samples({"since": "yesterday"})


def test_periods_are_rolling_windows_ending_now() -> None:
    assert window_start(Period.DAY, T0) == T0 - 86_400_000
    assert window_start(Period.YEAR, T0) == T0 - 365 * 86_400_000
    assert window_start(Period.ALL, T0) is None
