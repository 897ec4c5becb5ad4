"""What the media engine counts, as plain numbers.

``liveroom.metrics`` reads them when scraped. No metrics library here: the engine may move into
its own process, and these travel as they are.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

TICK_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
"""Upper bounds of the mixer tick durations kept apart; a tick's budget is 0.02 s."""


@dataclass
class TickTimes:
    """How long mixer ticks took: a count per bucket of :data:`TICK_BUCKETS_S` (not
    cumulative; the last one for ticks longer than every bound) and the sum."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(TICK_BUCKETS_S) + 1))
    total_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(TICK_BUCKETS_S, seconds)] += 1
        self.total_s += seconds

    def add(self, other: TickTimes) -> None:
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.total_s += other.total_s

    @property
    def count(self) -> int:
        return sum(self.buckets)


@dataclass
class MixerStats:
    ticks: int = 0
    late_ticks: int = 0
    """Ticks lost to a late event loop (skipped, never burst)."""
    encodes: int = 0
    """Opus encodes: the program mix once a tick, plus one mix-minus per stage member."""
    tick_times: TickTimes = field(default_factory=TickTimes)
    fanout_packets: int = 0
    """RTP packets the listeners' fast path sent (one per listener per tick)."""
    fanout_s: float = 0.0
    """CPU time (the mixer thread's) the listeners' fast path took: stamp, protect, send."""

    def add(self, other: MixerStats) -> None:
        self.ticks += other.ticks
        self.late_ticks += other.late_ticks
        self.encodes += other.encodes
        self.tick_times.add(other.tick_times)
        self.fanout_packets += other.fanout_packets
        self.fanout_s += other.fanout_s


@dataclass
class RtpCounts:
    """RTP packets of the server's peer connections, from aiortc's own statistics."""

    sent: int = 0
    """To clients (program mix and mix-minus)."""
    sent_lost: int = 0
    """Of those, lost on the way, as the clients' RTCP receiver reports say."""
    received: int = 0
    """From speakers."""
    received_lost: int = 0
    """From speakers, never arrived (gaps in their sequence numbers)."""

    def add(self, other: RtpCounts) -> None:
        self.sent += other.sent
        self.sent_lost += other.sent_lost
        self.received += other.received
        self.received_lost += other.received_lost
