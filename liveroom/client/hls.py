"""Reading a room's HLS from Python: one MPEG-TS segment decoded to the mixer's PCM (48 kHz mono
int16), for bots, benchmarks and tests that listen the way an HLS player does."""

from __future__ import annotations

import io

import av
import numpy as np

from liveroom.media.mixer import SAMPLE_RATE, Pcm


def decode_segment(data: bytes) -> Pcm:
    """The audio of one segment. Opened as TS, as a player told so by the playlist does (FFmpeg's
    guess from the bytes can take a tiny segment of silence for raw AAC)."""
    with av.open(io.BytesIO(data), mode="r", format="mpegts") as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        parts = [
            r.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for r in resampler.resample(frame)
        ]
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)
