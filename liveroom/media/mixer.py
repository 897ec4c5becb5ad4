"""The room mix, one 20 ms tick at a time: pure arithmetic on PCM, no I/O, no clock.

Each tick takes the latest decoded frame of every unmuted speaker (a speaker with no frame is
silence — the mixer never waits), sums them in int32 and clips to int16 once: the **program
mix** every listener hears. Each speaker hears the **mix-minus**: the same sum without their own
frame, so nobody hears themself an instant late. Speaking levels (dBov, RFC 6464's scale:
0 loudest, -127 silence) come from the PCM already at hand.

The room's own music (DJ mode) is one more input: in every mix — speakers hear it too — but it
is nobody's voice, so it has no speaking level and no mix-minus of its own.

Audio is 48 kHz mono, 960 samples (20 ms) per frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
SILENCE_DBOV = -127.0
_INT16_MIN, _INT16_MAX = -32768, 32767

Pcm = npt.NDArray[np.int16]


def silence() -> Pcm:
    return np.zeros(FRAME_SAMPLES, dtype=np.int16)


def dbov(frame: Pcm) -> float:
    """The frame's RMS level relative to a full-scale square wave, in dB (≤ 0; -127 silent)."""
    if frame.size == 0:
        return SILENCE_DBOV
    rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
    if rms < 1.0:
        return SILENCE_DBOV
    return max(SILENCE_DBOV, min(0.0, 20.0 * float(np.log10(rms / 32768.0))))


@dataclass(frozen=True, slots=True)
class Mix:
    program: Pcm
    """What listeners hear."""
    minus: Mapping[str, Pcm]
    """What each speaker hears: everyone but themself."""
    levels: Mapping[str, float]
    """dBov of each speaker's own frame this tick (muted speakers are silent)."""


def mix(
    frames: Mapping[str, Pcm],
    audible: Iterable[str],
    listeners_on_stage: Iterable[str] = (),
    music: Pcm | None = None,
) -> Mix:
    """Mix one tick.

    ``frames``: the latest frame of each source that has one. ``audible``: the sources that are
    in the mix now (unmuted speakers); a source absent from it is out of
    every mix, whatever it sends. ``listeners_on_stage``: who gets a mix-minus (every speaker,
    muted or not — a muted speaker still hears the room). ``music``: the room's playlist this
    tick, already ducked, or ``None``.
    """
    total = np.zeros(FRAME_SAMPLES, dtype=np.int32)
    if music is not None:
        _check("music", music)
        total += music
    included: dict[str, Pcm] = {}
    for source in audible:
        frame = frames.get(source)
        if frame is None:
            continue  # late or silent: never wait for it
        _check(source, frame)
        included[source] = frame
        total += frame
    program = _clip(total)
    minus = {
        who: (_clip(total - included[who]) if who in included else program)
        for who in listeners_on_stage
    }
    levels = {source: dbov(frame) for source, frame in included.items()}
    return Mix(program, minus, levels)


def _check(source: str, frame: Pcm) -> None:
    if frame.shape != (FRAME_SAMPLES,):
        raise ValueError(f"{source}: expected {FRAME_SAMPLES} samples, got {frame.shape}")


def _clip(total: npt.NDArray[np.int32]) -> Pcm:
    return np.clip(total, _INT16_MIN, _INT16_MAX).astype(np.int16)
