"""Player sync, pure: the clock offset from skewed, asymmetric samples; drift corrections."""

from __future__ import annotations

import random

import pytest

from liveroom.client.sync import ClockOffset, Correction, DriftRules, Sample, Seek, SetRate, correct


def sample(
    true_offset: float, up_ms: float, down_ms: float, at: float, server_ms: float = 0.3
) -> Sample:
    """A time:sync round trip: ``up_ms`` to the server, ``down_ms`` back; the server's clock is
    the client's plus ``true_offset``."""
    t0 = at
    t1 = t0 + up_ms + true_offset
    t2 = t1 + server_ms
    t3 = t2 - true_offset + down_ms
    return Sample(t0, t1, t2, t3)


@pytest.mark.parametrize("true_offset", [-2000.0, 0.0, 2000.0, 123456.7])
def test_the_least_delayed_sample_wins_over_asymmetric_queueing(true_offset: float) -> None:
    rng = random.Random(7)
    clock = ClockOffset()
    for i in range(20):
        # Mostly a congested, lopsided path (up 5–300 ms, down 1–20 ms)...
        clock.add(sample(true_offset, rng.uniform(5, 300), rng.uniform(1, 20), at=i * 1000.0))
    # ...and one quiet round trip among the last eight.
    clock.add(sample(true_offset, 2.0, 2.4, at=99_000.0))
    assert clock.offset_ms == pytest.approx(true_offset, abs=1.0)
    assert clock.rtt_ms == pytest.approx(4.4)
    assert clock.server_time(1000.0) == pytest.approx(1000.0 + true_offset, abs=1.0)


def test_only_the_last_eight_samples_count() -> None:
    clock = ClockOffset(keep=8)
    clock.add(sample(500.0, 1, 1, at=0))  # the best, but old
    for i in range(8):
        clock.add(sample(0.0, 50, 10, at=1000.0 * (i + 1)))
    assert clock.offset_ms == pytest.approx(20.0)  # (50 − 10) / 2 of error, the old one gone
    assert ClockOffset().offset_ms == 0.0 and not ClockOffset().ready


RULES = DriftRules()


@pytest.mark.parametrize(
    ("drift", "rate", "last", "expected"),
    [
        (0, 1.0, None, None),
        (59, 1.0, None, None),  # within tolerance
        (60, 1.0, None, SetRate(0.95)),  # ahead: slow down
        (-60, 1.0, None, SetRate(1.05)),  # behind: speed up
        (-399, 1.0, None, SetRate(1.05)),
        (400, 1.0, None, Seek(10.0)),
        (-5000, 1.0, None, Seek(10.0)),
        (500, 1.0, 9_000, None),  # a correction 1 s ago: wait
        (500, 1.0, 8_500, Seek(10.0)),  # 1.5 s ago: allowed
        (100, 0.95, None, None),  # already slowing down
        (20, 0.95, 9_900, SetRate(1.0)),  # settled: back to the room's rate, whenever
        (-15, 1.05, None, SetRate(1.0)),
        (30, 1.05, 9_900, None),  # not settled, too soon to reverse
    ],
)
def test_drift_decisions(
    drift: float, rate: float, last: float | None, expected: Correction | None
) -> None:
    assert correct(drift, 10.0, rate, 1.0, 10_000, last, RULES) == expected
