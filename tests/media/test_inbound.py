"""A speaker's jitter buffer: bursts absorbed, and the delay they leave behind given back."""

from __future__ import annotations

import numpy as np

from liveroom.media.inbound import MAX_FRAMES, WINDOW_TICKS, SpeakerBuffer
from liveroom.media.mixer import FRAME_SAMPLES


def _frame(n: int) -> np.ndarray:
    return np.full(FRAME_SAMPLES, n, dtype=np.int16)


def _steady(buffer: SpeakerBuffer, ticks: int, start: int) -> list[int]:
    """One frame arrives per tick, then the mixer takes one: what it got."""
    taken = []
    for n in range(start, start + ticks):
        buffer.push(_frame(n))
        frame = buffer.take()
        taken.append(-1 if frame is None else int(frame[0]))
    return taken


def test_delay_left_by_a_burst_is_given_back_a_frame_per_window() -> None:
    buffer = SpeakerBuffer()
    for n in range(3):  # a burst: three frames at once, then one per tick
        buffer.push(_frame(n))
    taken = _steady(buffer, 5 * WINDOW_TICKS, 3)
    # Three frames of slack given back, one per window; then none: the stream needs its one.
    assert buffer.trimmed == 3
    assert len(buffer) == 0  # each tick's frame is taken as it arrives
    assert buffer.underruns == 0
    # In order throughout; each trim skipped exactly one frame.
    steps = np.diff([t for t in taken if t >= 0])
    assert set(steps.tolist()) <= {1, 2}
    assert int((steps == 2).sum()) == 3


def test_a_stream_without_slack_is_never_trimmed() -> None:
    buffer = SpeakerBuffer()
    taken = _steady(buffer, 5 * WINDOW_TICKS, 0)
    assert taken == list(range(5 * WINDOW_TICKS))
    assert buffer.trimmed == 0


def test_a_burst_past_the_limit_drops_the_oldest_and_a_gap_is_an_underrun() -> None:
    buffer = SpeakerBuffer()
    for n in range(MAX_FRAMES + 2):
        buffer.push(_frame(n))
    assert buffer.overflowed == 2
    taken = []
    while (frame := buffer.take()) is not None:
        taken.append(int(frame[0]))
    assert taken == list(range(2, MAX_FRAMES + 2))
    assert buffer.underruns == 1  # the take that found nothing
