"""Opus in and out of the mixer's PCM (48 kHz mono int16, 20 ms frames), through PyAV."""

from __future__ import annotations

import fractions
from typing import TYPE_CHECKING

import av
import numpy as np

from liveroom.media.mixer import SAMPLE_RATE, Pcm

if TYPE_CHECKING:
    from av.stream import Stream

    EncodedPacket = av.Packet[Stream]  # the stubs' generic; av.Packet at run time

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
DEFAULT_BITRATE = 48_000  # speech and music in a voice room; aiortc's own encoder is fixed at 96k


class OpusEncoder:
    """One encoder: a PCM frame in, one Opus packet out, timestamped in 48 kHz ticks.

    The program mix has exactly one of these per room, whatever the number of listeners.
    """

    def __init__(self, bitrate: int = DEFAULT_BITRATE) -> None:
        self._codec = av.CodecContext.create("libopus", "w")
        assert isinstance(self._codec, av.AudioCodecContext)
        self._codec.sample_rate = SAMPLE_RATE
        self._codec.layout = "mono"
        self._codec.format = "s16"
        self._codec.bit_rate = bitrate
        self._codec.time_base = TIME_BASE
        self._codec.options = {"application": "audio"}

    def encode(self, pcm: Pcm, pts: int) -> EncodedPacket | None:
        """Encode one frame; the packet carries ``pts`` (RTP timestamp units) as given, so the
        RTP clock follows the mixer's ticks rather than the encoder's look-ahead offset."""
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = pts
        frame.time_base = TIME_BASE
        packets = self._codec.encode(frame)
        if not packets:
            return None
        packet = packets[-1]
        packet.pts = pts
        packet.dts = pts
        packet.time_base = TIME_BASE
        return packet


def to_pcm(frame: av.AudioFrame) -> Pcm:
    """A decoded frame as mono int16 (averaging channels), for the mixer."""
    data = frame.to_ndarray()
    if frame.format.name == "s16" and not frame.format.is_planar:
        samples = data.reshape(-1, len(frame.layout.channels))
    elif frame.format.is_planar:
        samples = data.T
    else:
        samples = data.reshape(-1, len(frame.layout.channels))
    mono = samples.astype(np.int32).mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return np.asarray(mono, dtype=np.int16)
