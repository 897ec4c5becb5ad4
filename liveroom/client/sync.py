"""Keeping a player in step with the room: the server clock offset from ``time:sync`` samples,
and when to correct a player that drifted. Pure (no I/O); the web client mirrors it in
``web/js/sync.js`` with the same numbers.

Offset (NTP): a sample is ``t0`` (client send), ``t1``/``t2`` (server receive/send) and ``t3``
(client receive). ``offset = ((t1 − t0) + (t2 − t3)) / 2`` is what to add to the client clock
to read the server's; ``delay = (t3 − t0) − (t2 − t1)`` is the round trip spent on the wire.
The sample with the lowest delay of the last few is the least distorted by queueing, whatever
the asymmetry, so that one's offset is used.

Drift: ``drift = player position − where the room is now``. Far off (≥ ``seek_at``) → seek;
noticeably off (≥ ``nudge_at``) → play a little faster or slower until within ``settle_at``;
never more than one correction per ``min_interval`` (corrections that chase each other stutter).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    t0: float
    t1: float
    t2: float
    t3: float

    @property
    def offset(self) -> float:
        return ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2

    @property
    def delay(self) -> float:
        return (self.t3 - self.t0) - (self.t2 - self.t1)


class ClockOffset:
    """The server-minus-client offset (ms) from the best of the last ``keep`` samples."""

    def __init__(self, keep: int = 8) -> None:
        self._samples: deque[Sample] = deque(maxlen=keep)

    def add(self, sample: Sample) -> None:
        self._samples.append(sample)

    @property
    def ready(self) -> bool:
        return bool(self._samples)

    @property
    def offset_ms(self) -> float:
        if not self._samples:
            return 0.0
        return min(self._samples, key=lambda s: s.delay).offset

    @property
    def rtt_ms(self) -> float:
        """The best round trip seen lately (what the server's start-ahead margin is made of)."""
        return min((s.delay for s in self._samples), default=0.0)

    def server_time(self, client_ms: float) -> float:
        return client_ms + self.offset_ms


@dataclass(frozen=True, slots=True)
class DriftRules:
    seek_at_ms: float = 400
    nudge_at_ms: float = 60
    settle_at_ms: float = 20
    nudge: float = 0.05
    """How much faster or slower (±5 %) a nudged player runs."""
    min_interval_ms: float = 1500


@dataclass(frozen=True, slots=True)
class Seek:
    position_s: float


@dataclass(frozen=True, slots=True)
class SetRate:
    rate: float


Correction = Seek | SetRate


def correct(
    drift_ms: float,
    target_s: float,
    rate: float,
    room_rate: float,
    now_ms: float,
    last_correction_ms: float | None,
    rules: DriftRules = DriftRules(),
) -> Correction | None:
    """What a player ``drift_ms`` off (positive: ahead) should do now, if anything.

    ``rate`` is the player's rate, ``room_rate`` the room's; ``target_s`` where the room is.
    Returning to the room's rate once settled is always allowed (it ends a correction)."""
    size = abs(drift_ms)
    nudging = rate != room_rate
    if nudging and size <= rules.settle_at_ms:
        return SetRate(room_rate)
    if last_correction_ms is not None and now_ms - last_correction_ms < rules.min_interval_ms:
        return None
    if size >= rules.seek_at_ms:
        return Seek(target_s)
    if size >= rules.nudge_at_ms:
        wanted = room_rate * (1 - rules.nudge if drift_ms > 0 else 1 + rules.nudge)
        return None if rate == wanted else SetRate(wanted)
    return None
