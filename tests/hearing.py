"""Judging audio by what was heard: energy near a pitch over seconds, with patience for a
loaded machine (never tight wall-clock asserts)."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Sequence

import numpy as np

from liveroom.client.audio import Recording
from liveroom.media.mixer import SAMPLE_RATE, Pcm


def band(samples: np.ndarray, hz: float) -> float:
    """Share of the spectrum's energy within ±15 Hz of ``hz``."""
    if len(samples) < SAMPLE_RATE // 4:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    total = float(spectrum.sum()) or 1.0
    return float(spectrum[(freqs > hz - 15) & (freqs < hz + 15)].sum()) / total


async def until_heard(recording: Recording, seconds: float, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while recording.seconds < seconds:
            await asyncio.sleep(0.05)


def band_energy(samples: np.ndarray, hz: float) -> float:
    """Energy within ±15 Hz of ``hz`` (compare equal-length windows: a level, not a share)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    return float(spectrum[(freqs > hz - 15) & (freqs < hz + 15)].sum())


def tones(parts: Sequence[tuple[float, float]], amplitude: float = 0.5) -> Pcm:
    """Sines one after another: ``(hz, seconds)`` each (``hz=0``: silence), at ``amplitude`` of
    full scale."""
    pieces = []
    for hz, seconds in parts:
        t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        pieces.append(np.round(amplitude * 32767 * np.sin(2 * np.pi * hz * t)))
    return np.concatenate(pieces).astype("<i2")


def wav(pcm: Pcm) -> bytes:
    """48 kHz mono 16-bit PCM as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return out.getvalue()
