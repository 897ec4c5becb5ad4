"""Judging audio by what was heard: energy near a pitch over seconds, with patience for a
loaded machine (never tight wall-clock asserts)."""

from __future__ import annotations

import asyncio

import numpy as np

from liveroom.client.audio import Recording
from liveroom.media.mixer import SAMPLE_RATE


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
