"""The room's deck: an uploaded file decoded ahead of the mixer (DJ mode's source).

A worker thread decodes with PyAV from the cued position, resamples to the mixer's 48 kHz mono
int16 and keeps at most ``ahead`` 20 ms frames ready; the mixer's tick only takes a ready frame
(:meth:`Deck.next_frame` never waits: a frame not decoded yet is an underrun, counted, and the
tick mixes without it). So a slow disk or a large file can make the music skip, never the mixer
tick late. Mono: the mix is mono, so a stereo file is downmixed here, once.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm

logger = logging.getLogger(__name__)

AHEAD_FRAMES = 75
"""1.5 s decoded ahead: enough to ride out a slow read, little enough to seek at once."""


@dataclass(frozen=True, slots=True)
class MusicCue:
    """What the room's deck plays: ``path`` from ``position_s``, starting at wall time ``at``
    (epoch ms, the playlist's scheduled start). ``key`` names the playlist item: a new cue with
    the same key, position and start is the same music, left playing."""

    key: str
    path: Path
    position_s: float
    at: int


@dataclass
class DeckStats:
    frames: int = 0
    underruns: int = 0
    skipped: int = 0
    """Frames dropped for ticks the room's clock lost."""


class Deck:
    def __init__(self, path: Path, *, ahead: int = AHEAD_FRAMES) -> None:
        self.path = path
        self.stats = DeckStats()
        self._ahead = ahead
        self._frames: queue.Queue[Pcm | None] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.finished = False
        """The cued file was decoded to its end and every frame taken."""
        self._debt = 0  # frames owed to lost ticks, dropped as soon as they are decoded

    def cue(self, position_s: float) -> None:
        """Decode from ``position_s`` on (whatever was decoded before is dropped)."""
        self._halt()
        self._frames = queue.Queue(maxsize=self._ahead)
        self._stop = threading.Event()
        self.finished = False
        self._worker = threading.Thread(
            target=_decode,
            args=(self.path, max(0.0, position_s), self._frames, self._stop),
            name=f"deck-{self.path.name}",
            daemon=True,
        )
        self._worker.start()

    def skip(self, frames: int) -> None:
        """The room's clock lost ``frames`` ticks: drop as much music, now or, for frames not
        decoded yet, as they come, so the music keeps the playlist's time."""
        self._debt += frames

    def next_frame(self) -> Pcm | None:
        """The next 20 ms of music, or ``None`` (not decoded yet, or the end)."""
        while self._debt:
            try:
                dropped = self._frames.get_nowait()
            except queue.Empty:
                break
            if dropped is None:
                self.finished = True
                return None
            self._debt -= 1
            self.stats.skipped += 1
        try:
            frame = self._frames.get_nowait()
        except queue.Empty:
            if self._worker is not None and not self.finished:
                self.stats.underruns += 1
            return None
        if frame is None:
            self.finished = True
            return None
        self.stats.frames += 1
        return frame

    @property
    def ready(self) -> int:
        return self._frames.qsize()

    @property
    def decoding(self) -> bool:
        """The worker thread is still running (it ends soon after :meth:`stop`)."""
        return self._worker is not None and self._worker.is_alive()

    def stop(self) -> None:
        """Tell the worker to end, without waiting for it: safe on the mixer's event loop."""
        self._stop.set()
        while True:  # unblock a worker waiting to put
            try:
                self._frames.get_nowait()
            except queue.Empty:
                break

    def close(self) -> None:
        """Stop and wait for the worker (blocking: call it from a thread, not the event loop)."""
        self._halt()

    def _halt(self) -> None:
        self.stop()
        worker = self._worker
        if worker is not None:
            worker.join(timeout=2)


def _decode(
    path: Path, start_s: float, out: queue.Queue[Pcm | None], stop: threading.Event
) -> None:
    def put(item: Pcm | None) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            if start_s > 0 and stream.time_base is not None:
                container.seek(int(start_s / stream.time_base), stream=stream)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            skip = None  # samples before start_s, found from the first frame's time
            pending = np.zeros(0, dtype=np.int16)
            for frame in container.decode(stream):
                if not isinstance(frame, av.AudioFrame):
                    continue
                if skip is None:
                    base = stream.time_base
                    first_s = float(frame.pts * base) if frame.pts is not None and base else 0.0
                    skip = max(0, round((start_s - first_s) * SAMPLE_RATE))
                for resampled in resampler.resample(frame):
                    pcm = resampled.to_ndarray().reshape(-1).astype(np.int16)
                    if skip:
                        dropped = min(skip, len(pcm))
                        pcm, skip = pcm[dropped:], skip - dropped
                    pending = np.concatenate([pending, pcm])
                    while len(pending) >= FRAME_SAMPLES:
                        if not put(pending[:FRAME_SAMPLES].copy()):
                            return
                        pending = pending[FRAME_SAMPLES:]
            put(None)
    except Exception:
        logger.exception("the deck could not decode %s", path)
        put(None)
