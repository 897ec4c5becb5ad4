"""One speaker's decoded audio waiting for the mixer: a small jitter buffer that gives latency
back once the network has calmed down.

Frames arrive in bursts and leave one per mixer tick. Whatever a burst leaves behind would stay
as delay for as long as the speaker speaks (arrivals and ticks run at the same rate), so the
buffer watches its own depth: when it never ran below two frames over a whole window, one frame
was never needed, and the oldest is dropped (20 ms of delay given back; Opus' concealment and
the mix hide a single frame). A burst larger than :data:`MAX_FRAMES` drops the oldest at once.
Pure: no I/O, no clock but the ticks it is called on.
"""

from __future__ import annotations

from collections import deque

from liveroom.media.mixer import Pcm

MAX_FRAMES = 4
"""At most 80 ms waiting per speaker."""
WINDOW_TICKS = 50
"""A second of ticks between two looks at the depth."""


class SpeakerBuffer:
    def __init__(self, max_frames: int = MAX_FRAMES, window_ticks: int = WINDOW_TICKS) -> None:
        self._frames: deque[Pcm] = deque(maxlen=max_frames)
        self._window = window_ticks
        self._ticks = 0
        self._lowest = max_frames
        self.overflowed = 0
        """Frames dropped because a burst filled the buffer."""
        self.trimmed = 0
        """Frames dropped to give delay back."""
        self.underruns = 0
        """Ticks that found nothing waiting (after the first frame arrived)."""
        self._started = False

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: Pcm) -> None:
        if len(self._frames) == self._frames.maxlen:
            self.overflowed += 1
        self._frames.append(frame)
        self._started = True

    def take(self) -> Pcm | None:
        """The frame for this tick (one per tick), if one arrived in time."""
        self._lowest = min(self._lowest, len(self._frames))
        self._ticks += 1
        if self._ticks >= self._window:
            if self._lowest >= 2:
                self._frames.popleft()
                self.trimmed += 1
            self._ticks = 0
            self._lowest = len(self._frames)
        if self._frames:
            return self._frames.popleft()
        if self._started:
            self.underruns += 1
        return None

    def clear(self) -> None:
        self._frames.clear()
        self._started = False
        self._ticks = 0
        self._lowest = self._frames.maxlen or 0
