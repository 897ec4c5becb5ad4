"""The rate limit mechanism: GCRA arithmetic, table-tested; the limiter with a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveroom.errors import RateLimited
from liveroom.ratelimit import (
    RateLimit,
    RateLimiter,
    RateLimits,
    admit,
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
