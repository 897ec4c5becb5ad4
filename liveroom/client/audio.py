"""Audio for SDK clients: publish a tone or a file, listen, record what is heard.

``open_audio`` negotiates one WebRTC connection through ``rtc:offer`` (complete SDP: aiortc
gathers every candidate before the offer is sent). On stage, pass a track to publish and the
connection is ``sendrecv`` (you hear the mix-minus); otherwise it is ``recvonly`` (the program
mix).
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from liveroom.client import LiveroomClient
from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from liveroom.media.opus import to_pcm

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


@functools.cache
def _tone_second(hz: float, amplitude: int) -> tuple[Pcm, ...]:
    """One second of the tone as 20 ms frames; a whole-number frequency repeats exactly each
    second, so the frames are computed once and replayed."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    second = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return tuple(np.split(second, SAMPLE_RATE // FRAME_SAMPLES))


class ToneTrack(MediaStreamTrack):
    """A sine tone (whole hertz), paced in real time, 20 ms per frame (a stand-in microphone).
    Costs next to nothing per frame, so benchmarks can run one per listener."""

    kind = "audio"

    def __init__(self, hz: int, amplitude: int = 6000) -> None:
        super().__init__()
        self._frames = _tone_second(hz, amplitude)
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME_SAMPLES
            wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        pcm = self._frames[(self._pts // FRAME_SAMPLES) % len(self._frames)]
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        return frame


@dataclass
class Recording:
    """What a remote track delivered: mono PCM, the RTP time of each frame, and when it came."""

    chunks: list[Pcm] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    def pcm(self) -> Pcm:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)

    @property
    def seconds(self) -> float:
        return sum(len(c) for c in self.chunks) / SAMPLE_RATE

    def sample_at(self, wall_time: float) -> int:
        """The index in :meth:`pcm` of audio that arrived at ``wall_time`` (monotonic)."""
        count = 0
        for chunk, arrived in zip(self.chunks, self.arrivals, strict=True):
            if arrived >= wall_time:
                break
            count += len(chunk)
        return count


async def record(track: MediaStreamTrack, into: Recording) -> None:
    """Consume ``track`` until it ends (every received track must be consumed)."""
    try:
        while True:
            frame = await track.recv()
            if isinstance(frame, av.AudioFrame) and frame.pts is not None:
                into.chunks.append(to_pcm(frame))
                into.stamps.append(frame.pts)
                into.arrivals.append(time.monotonic())
    except MediaStreamError:
        return


@dataclass
class AudioSession:
    pc: RTCPeerConnection
    recording: Recording
    recorder: asyncio.Task[None]

    async def close(self) -> None:
        await self.pc.close()
        self.recorder.cancel()
        await asyncio.gather(self.recorder, return_exceptions=True)


async def open_audio(
    client: LiveroomClient,
    room_id: str,
    *,
    publish: MediaStreamTrack | None = None,
    ice_servers: Sequence[dict[str, Any]] = (),
    into: Recording | None = None,
    timeout: float = 15,
) -> AudioSession:
    """Negotiate audio for ``room_id`` and start recording what is received (into ``into``, to
    keep one recording across renegotiations)."""
    pc = RTCPeerConnection(
        RTCConfiguration(
            iceServers=[
                RTCIceServer(
                    urls=s["urls"], username=s.get("username"), credential=s.get("credential")
                )
                for s in ice_servers
            ]
        )
    )
    if publish is not None:
        pc.addTrack(publish)
    else:
        pc.addTransceiver("audio", direction="recvonly")
    arrived: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        if not arrived.done():
            arrived.set_result(track)

    try:
        await pc.setLocalDescription(await pc.createOffer())
        answer = await client.request(
            "rtc:offer",
            {"room_id": room_id, "sdp": pc.localDescription.sdp, "type": "offer"},
            timeout=timeout,
        )
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        track = await asyncio.wait_for(arrived, timeout)
    except BaseException:
        await pc.close()
        raise
    recording = into if into is not None else Recording()
    return AudioSession(pc, recording, asyncio.create_task(record(track, recording)))
