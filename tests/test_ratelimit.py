"""The rate limit mechanism: GCRA arithmetic, table-tested; the limiter with a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveroom.errors import RateLimited
from liveroom.ratelimit import (
    LIMITS,
    PER_IP,
    RateLimit,
    RateLimiter,
    RateLimits,
    admit,
    ip_key,
    parse_rate_limits,
    render_limits_doc,
)
from tests.fakes import FakeClock

THREE_PER_S = RateLimit(3, 1)


@pytest.mark.parametrize(
    ("tat", "now", "limit", "new_tat", "retry_after"),
    [
        (0.0, 0.0, THREE_PER_S, 1 / 3, None),  # fresh key: admitted
        (2 / 3, 0.0, THREE_PER_S, 1.0, None),  # third hit of a burst: admitted
        (1.0, 0.0, THREE_PER_S, 1.0, 1 / 3),  # fourth: refused, a slot frees in 1/3 s
        (1.0, 1 / 3, THREE_PER_S, 4 / 3, None),  # ... and is admitted 1/3 s later
        (5.0, 10.0, THREE_PER_S, 10 + 1 / 3, None),  # long idle: a full burst again
        (30.0, 0.0, RateLimit(1, 30), 30.0, 30.0),  # one per 30 s: wait the whole period
    ],
)
def test_admit(
    tat: float, now: float, limit: RateLimit, new_tat: float, retry_after: float | None
) -> None:
    got_tat, got_retry = admit(tat, now, limit)
    assert got_tat == pytest.approx(new_tat)
    assert got_retry == (None if retry_after is None else pytest.approx(retry_after))


async def test_limiter_refuses_past_the_burst_and_recovers(fake_clock: FakeClock) -> None:
    limiter = RateLimiter("questions", RateLimit(2, 10), fake_clock)
    limiter.hit("ana")
    limiter.hit("ana")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("ana")
    assert refused.value.retry_after == pytest.approx(5)
    assert refused.value.extras() == {"retry_after": 5.0}
    limiter.hit("ben")  # keys are independent
    await fake_clock.advance(5)
    limiter.hit("ana")
    with pytest.raises(RateLimited):
        limiter.hit("ana")


def test_refused_hits_do_not_count(fake_clock: FakeClock) -> None:
    limiter = RateLimiter("x", RateLimit(1, 1), fake_clock)
    limiter.hit("k")
    for _ in range(100):
        with pytest.raises(RateLimited) as refused:
            limiter.hit("k")
    assert refused.value.retry_after == pytest.approx(1)  # hammering does not extend the wait


async def test_memory_is_bounded_by_max_keys(fake_clock: FakeClock) -> None:
    limiter = RateLimiter("x", RateLimit(1, 1), fake_clock, max_keys=100)
    for i in range(1000):
        limiter.hit(f"ip-{i}")
    assert len(limiter) <= 100
    await fake_clock.advance(2)
    limiter.hit("late")
    assert len(limiter) <= 100


def test_named_limits_take_overrides() -> None:
    limits = RateLimits({"events": RateLimit(1000, 1)}, FakeClock())
    assert limits["events"].limit == RateLimit(1000, 1)
    assert limits["guest_tokens"].limit == RateLimit(10, 60)  # the documented default


def test_parse_rate_limits() -> None:
    assert parse_rate_limits("events=100/1, guest_tokens=5/60") == {
        "events": RateLimit(100, 1),
        "guest_tokens": RateLimit(5, 60),
    }


@pytest.mark.parametrize("text", ["events", "events=10", "nope=1/1", "events=0/1", "events=x/1"])
def test_parse_rate_limits_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (each message differs; the refusal matters)
        parse_rate_limits(text)


def test_docs_limits_md_is_current() -> None:
    on_disk = (Path(__file__).resolve().parent.parent / "docs" / "limits.md").read_text()
    assert on_disk == render_limits_doc(), "run: liveroom docs limits > docs/limits.md"


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # one subscriber's block, any address
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # an IPv4 client on a dual-stack socket
        (None, "unknown"),
        ("not an address", "unknown"),
    ],
)
def test_ip_key(remote: str | None, key: str) -> None:
    assert ip_key(remote) == key


def test_an_action_is_charged_per_user_and_per_address(fake_clock: FakeClock) -> None:
    limits = RateLimits({"votes": RateLimit(2, 10), "votes" + PER_IP: RateLimit(3, 10)}, fake_clock)
    limits.charge("votes", "ana", "198.51.100.1")
    limits.charge("votes", "ana", "198.51.100.1")
    with pytest.raises(RateLimited):  # ana's own limit
        limits.charge("votes", "ana", "198.51.100.1")
    limits.charge("votes", "ben", "198.51.100.1")  # ana's refusal spent none of the address's
    with pytest.raises(RateLimited):  # the address's limit: 3 votes
        limits.charge("votes", "cy", "198.51.100.1")
    limits.charge("votes", "cy", "198.51.100.2")  # another address
    # cy's refused vote was not counted against cy either: one more fits cy's own limit.
    limits.charge("votes", "cy", "198.51.100.3")
    with pytest.raises(RateLimited):
        limits.charge("votes", "cy", "198.51.100.4")


def test_every_per_ip_limit_belongs_to_an_action_limited_per_user() -> None:
    for name, spec in LIMITS.items():
        if name.endswith(PER_IP):
            assert spec.per == "IP"
            assert LIMITS[name.removesuffix(PER_IP)].per == "user"
